"""Study files: valid ones load into frozen dataclasses; bad ones fail naming the file, key and what is allowed."""

from __future__ import annotations

import dataclasses

import pytest

from bench.config import StudyConfig, list_studies, load_study
from bench.errors import ConfigError

from .conftest import tiny_study_text


@pytest.mark.parametrize("name", list_studies())
def test_every_shipped_study_loads(name):
    cfg = load_study(name)
    assert isinstance(cfg, StudyConfig) and cfg.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.steps = 1  # type: ignore[misc]


def test_quick_is_offline_and_small():
    cfg = load_study("quick")
    assert cfg.data.dataset == "digits5k" and cfg.model.architecture == "infogan" and cfg.model.width < 1
    assert cfg.study.trials <= 10 and cfg.train.steps <= 2000


def test_name_defaults_to_file_stem(tmp_path):
    p = tmp_path / "mystudy.toml"
    p.write_text(tiny_study_text(name="").replace('name = ""\n', ""))
    assert load_study(str(p)).name == "mystudy"


BAD = [
    # (replace this, with that, words the message must contain)
    ('trials = 1', 'trials = 1\nbogus = 3', ["[study] bogus", "allowed keys"]),
    ('trials = 1', 'trials = "many"', ["[study] trials", "wrong type", "an integer"]),
    ('trials = 1', 'trials = -4', ["[study] trials", "> 0"]),
    ('trials = 1', 'trials = true', ["[study] trials", "wrong type"]),
    ('steps = 10', 'steps = 0', ["[train] steps", "> 0"]),
    ('width = 0.125', 'width = -1.0', ["[model] width", "> 0"]),
    ('space = "narrow"', 'space = "medium"', ["[study] space", "'wide'", "'narrow'"]),
    ('sampler = "random"', 'sampler = "grid"', ["[study] sampler", "random", "tpe"]),
    ('dataset = "digits5k"', 'dataset = "imagenet"', ["[data] dataset", "digits5k"]),
    ('architecture = "infogan"', 'architecture = "resnet"', ["[model] architecture", "infogan"]),
    ('variants = ["ns_gan", "wgan"]', 'variants = ["ns_gan", "stylegan"]', ["[study] variants", "'stylegan'", "wgan_gp"]),
    ('metrics = ["fid_lenet_digits5k_1k_test"]', 'metrics = ["fid_magic"]', ["[eval] metrics", "fid_lenet_digits5k_1k_test"]),
    ('device = "cpu"', 'device = "tpu"', ["[train] device", "'cuda:N'"]),
    ('checkpoint_every = 5', 'checkpoint_every = 50', ["checkpoint_every", "steps"]),
    ('[eval]', '[evaluation]', ["unknown section [evaluation]"]),
    ('name = "tiny"', 'name = "../escape"', ["[study] name", "no path separators"]),
    ('trials = 1', 'trials = 1\n[[[', ["malformed TOML"]),
]


@pytest.mark.parametrize("old, new, words", BAD, ids=[b[1].split("\n")[-1][:30] for b in BAD])
def test_bad_study_files_name_file_key_and_allowed(tmp_path, old, new, words):
    text = tiny_study_text()
    assert old in text
    p = tmp_path / "bad.toml"
    p.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as e:
        load_study(str(p))
    msg = str(e.value)
    assert str(p) in msg
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"


@pytest.mark.parametrize("name", ["nope", "../quick", "/etc/passwd"])
def test_missing_or_escaping_study_names(name):
    with pytest.raises(ConfigError) as e:
        load_study(name)
    assert "quick" in str(e.value) or "no '..'" in str(e.value)


def test_replace_validates(tmp_path):
    cfg = load_study("quick")
    assert cfg.replace("study", trials=2).study.trials == 2
    with pytest.raises(ConfigError, match="trials"):
        cfg.replace("study", trials=0)
