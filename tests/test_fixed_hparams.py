"""`[study] fixed`: hyperparameters held at one value in every trial of every variant (trial 0
included) while the rest of the space is searched, e.g. Metz et al.'s Adam settings on a mixture."""

from __future__ import annotations

import json
import tomllib

import optuna
import pytest

from bench.config import parse_study
from bench.errors import ConfigError
from bench.gan.variants import VARIANTS
from bench.search import space as space_mod

from .conftest import run_cli, tiny_study_text


def _cfg(fixed: str):
    text = tiny_study_text().replace('space = "narrow"', f'space = "narrow"\nfixed = {fixed}')
    return parse_study(tomllib.loads(text), "tiny.toml")


def test_fixed_is_a_table_of_values():
    assert _cfg("{learning_rate = 1e-4, beta1 = 0.5}").study.fixed == {"learning_rate": 1e-4, "beta1": 0.5}
    assert _cfg("{}").study.fixed == {}
    with pytest.raises(ConfigError, match=r"tiny.toml: \[study\] fixed .* wrong type; expected a table"):
        _cfg("{learning_rate = [1e-4]}")


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("kind", ["wide", "narrow"])
def test_every_trial_holds_the_fixed_value(name, kind):
    v = VARIANTS[name]
    lr = 2e-4
    fixed = {"learning_rate": lr}
    assert v.fixed_problem(fixed) is None
    assert v.defaults_in(kind, fixed)["learning_rate"] == lr  # trial 0
    sp = v.space(kind, fixed)
    assert "learning_rate" not in space_mod.searched(sp) and set(sp) == set(v.space(kind))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(3):
        hp = space_mod.suggest(study.ask(), sp)
        assert hp["learning_rate"] == lr and set(hp) == set(v.space(kind))


def test_fixed_values_that_do_not_apply_are_named():
    assert "clip is not a hyperparameter of ns_gan" in VARIANTS["ns_gan"].fixed_problem({"clip": 0.1})
    assert "disc_iters = 3 is not one of ns_gan's values" in VARIANTS["ns_gan"].fixed_problem({"disc_iters": 3})
    assert "outside ns_gan's widest range" in VARIANTS["ns_gan"].fixed_problem({"learning_rate": 1.0})


def test_bad_fixed_value_is_refused_before_anything_is_written(env, tiny_study, tmp_path):
    path = tiny_study()
    path.write_text(path.read_text().replace('space = "narrow"', 'space = "narrow"\nfixed = {clip = 0.1}'))
    r = run_cli("study", path, "--variant", "all", env=env)
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert "[study] fixed" in line and "clip is not a hyperparameter of ns_gan" in line and str(path) in line
    assert not (tmp_path / "results").exists()  # no storage, no trial folder


def test_a_study_runs_with_fixed_values(env, tiny_study, tmp_path):
    path = tiny_study(trials=2, variants='["ns_gan"]')
    path.write_text(path.read_text().replace('space = "narrow"', 'space = "wide"\nfixed = {learning_rate = 3e-4, beta1 = 0.5}'))
    r = run_cli("study", path, "--variant", "ns_gan", "--dry-run", "--calibrate-steps", "0", env=env)
    assert r.returncode == 0 and "held in every trial: learning_rate = 0.0003, beta1 = 0.5" in r.stdout, r.stdout + r.stderr
    r = run_cli("study", path, "--variant", "ns_gan", env=env)
    assert r.returncode == 0, r.stderr
    configs = sorted((tmp_path / "results" / "tiny" / "ns_gan").glob("trial-*/config.json"))
    assert len(configs) == 2
    hps = [json.loads(c.read_text())["hparams"] for c in configs]
    assert all(hp["learning_rate"] == 3e-4 and hp["beta1"] == 0.5 for hp in hps)
    assert hps[0]["disc_iters"] == VARIANTS["ns_gan"].defaults["disc_iters"]  # trial 0: the defaults, fixed values held


@pytest.mark.parametrize("fixed", ["{}", "{learning_rate = 1e-4, beta1 = 0.5, disc_iters = 1, d_batchnorm = false}"])
def test_exported_study_file_keeps_the_fixed_values(fixed):
    from bench.study.archive import config_toml

    cfg = _cfg(fixed)
    again = parse_study(tomllib.loads(config_toml(cfg.to_dict())), "exported.toml")
    assert again.study.fixed == cfg.study.fixed and again.to_dict() == cfg.to_dict()
