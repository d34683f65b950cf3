"""The generator's moving average (`[train] g_ema`, issue 15 point 3): the update by hand, decay 0
leaves every record of a trial as it was, a decay leaves training alone and changes only what is
scored, and `bench eval` scores the averaged copy that training scored."""

from __future__ import annotations

import math
import tomllib

import pytest
import torch
from torch import nn

from bench import records
from bench.config import parse_study
from bench.errors import ConfigError
from bench.trial.ema import GeneratorEMA

from .conftest import tiny_study_text

METRIC = "fid_lenet_digits5k_1k_test"


def test_the_average_by_hand():
    """θ_ema after two updates is d(d θ0 + (1 - d) θ1) + (1 - d) θ2, BN's running statistics too;
    BN's integer step count is copied, and the copy takes no gradient."""
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    d = 0.75
    ema = GeneratorEMA(G, d)
    history = [{k: v.clone() for k, v in G.state_dict().items()}]
    for _ in range(2):
        with torch.no_grad():
            for p in G.parameters():
                p.add_(torch.randn_like(p))
        G(torch.randn(5, 3))  # moves the running statistics and num_batches_tracked
        history.append({k: v.clone() for k, v in G.state_dict().items()})
        ema.update(G)
    got = ema.module.state_dict()
    for k, v in got.items():
        if k.endswith("num_batches_tracked"):
            assert int(v) == 2
            continue
        want = d * (d * history[0][k] + (1 - d) * history[1][k]) + (1 - d) * history[2][k]
        assert torch.allclose(v, want, atol=1e-6), k
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_decay_must_be_below_one(tmp_path):
    text = tiny_study_text().replace('device = "cpu"', 'device = "cpu"\ng_ema = 1.0')
    with pytest.raises(ConfigError, match=r"\[train\] g_ema = 1.0 is not allowed; expected a number in \[0, 1\)"):
        parse_study(tomllib.loads(text), "tiny.toml")


def test_off_keeps_the_digest_of_studies_made_before_the_key():
    from bench.study.runner import compat_digest

    cfg = parse_study(tomllib.loads(tiny_study_text()), "tiny.toml")
    assert cfg.train.g_ema == 0.0
    assert compat_digest(cfg) != compat_digest(cfg.replace("train", g_ema=0.9))
    before = cfg.to_dict()  # as studies made before [train] g_ema (and [study] fixed, [train] tensorboard) stored it
    del before["train"]["g_ema"]
    del before["study"]["fixed"]
    del before["train"]["tensorboard"]
    for key in ("trials", "description", "storage", "variants", "budget_steps", "budget_seconds"):
        before["study"].pop(key)
    import hashlib
    import json

    assert compat_digest(cfg) == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]


@pytest.fixture(autouse=True)
def restore_torch_determinism():
    state = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(state)


def run(cfg, tdir):
    from bench.gan.variants import VARIANTS
    from bench.trial.train import resolve_device, run_trial, trial_seeds

    tdir.mkdir()
    result = run_trial(cfg, VARIANTS["ns_gan"], VARIANTS["ns_gan"].defaults, trial_seeds(0, 3), tdir, resolve_device("cpu"))
    log = [{k: v for k, v in r.items() if k != "seconds"} for r in records.read_jsonl(tdir / "metrics.jsonl")]
    files = {p.name: p.read_bytes() for p in sorted((tdir / "checkpoints").iterdir())}
    return result, log, files


def test_a_decay_changes_what_is_scored_and_nothing_else(env, tmp_path):
    """Decay 0 and decay 0.9 train the same G bit for bit (same G checkpoints, same loss terms):
    the average draws no random number and touches no gradient. Decay 0 writes no averaged copy
    and scores G, as before the key; decay 0.9 scores the averaged copy and keeps it beside G, and
    `bench eval --again` re-scores that copy to the same value."""
    from bench.trial.reeval import eval_study

    text = tiny_study_text(trials=1).replace('device = "cpu"', 'device = "cpu"\ndeterministic = true')
    cfg = parse_study(tomllib.loads(text), "tiny.toml")
    off, log_off, files_off = run(cfg, tmp_path / "off")
    on, log_on, files_on = run(cfg.replace("train", g_ema=0.9), tmp_path / "on")

    assert sorted(files_off) == ["g-0000005.pt", "g-0000010.pt"]
    assert sorted(files_on) == ["ema-g-0000005.pt", "ema-g-0000010.pt", "g-0000005.pt", "g-0000010.pt"]
    assert all(files_on[k] == files_off[k] for k in files_off)  # G itself, bit for bit
    train = lambda log: [r for r in log if r["kind"] in ("data", "train")]  # noqa: E731
    assert train(log_on) == train(log_off) and len(train(log_off)) >= 3
    values_off = [e[METRIC] for e in off.evaluations]
    values_on = [e[METRIC] for e in on.evaluations]
    assert all(math.isfinite(v) for v in values_off + values_on)
    assert values_on != values_off  # the averaged copy is scored, not G

    # `bench eval` loads what training scored: the averaged copy for decay 0.9, G for decay 0.
    for name, c, values in (("off", cfg, values_off), ("on", cfg.replace("train", g_ema=0.9), values_on)):
        study = records.study_dir(c.name)
        (study / "ns_gan").mkdir(parents=True, exist_ok=True)
        (tmp_path / name).rename(study / "ns_gan" / "trial-0000")
        added = eval_study(c, ["ns_gan"], [METRIC], "cpu", again=True, log=lambda s: None)
        assert [a[METRIC] for a in added] == values, name
        (study / "ns_gan" / "trial-0000").rename(tmp_path / name)
