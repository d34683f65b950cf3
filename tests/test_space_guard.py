"""A variant's search space is code, not part of the study file's compatibility digest: a study
resumed after its range changed would mix trials drawn from two spaces into one distribution.
open_study compares the space with the distributions Optuna recorded for the stored trials and
refuses a change, naming the parameter, before it writes anything."""

from __future__ import annotations

import dataclasses
import tomllib

import optuna
import pytest

from bench.config import parse_study
from bench.errors import ConfigError
from bench.gan.variants import VARIANTS
from bench.search import space
from bench.study import runner

from .conftest import tiny_study_text


def _study_with_one_trial(tmp_path):
    cfg = parse_study(tomllib.loads(tiny_study_text(variants='["ns_gan"]')), "tiny.toml")
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    v = VARIANTS["ns_gan"]
    study = runner.open_study(cfg, v, url, create=True)
    trial = study.ask()
    study.tell(trial, 1.0 + len(space.suggest(trial, v.space(cfg.study.space, cfg.study.fixed))))
    return cfg, url, v, study


def test_the_same_space_reopens_and_a_changed_range_is_refused_without_writing(tmp_path):
    cfg, url, v, study = _study_with_one_trial(tmp_path)
    runner.open_study(cfg, v, url, create=True)  # unchanged: resumes
    narrow = dict(v.narrow)
    name, p = next((k, p) for k, p in narrow.items() if isinstance(p, space.Float))
    narrow[name] = space.Float(p.low, p.high * 2, p.log)
    moved = dataclasses.replace(v, narrow=narrow)
    before = (len(study.get_trials()), dict(study.user_attrs))
    with pytest.raises(ConfigError, match=rf"tiny.toml: .*study 'tiny:ns_gan' was searched in another space.*trial 0 drew {name} from"):
        runner.open_study(cfg, moved, url, create=True)
    again = optuna.load_study(study_name="tiny:ns_gan", storage=url)
    assert (len(again.get_trials()), dict(again.user_attrs)) == before


def test_a_parameter_no_longer_searched_or_newly_searched_is_refused(tmp_path):
    cfg, url, v, _ = _study_with_one_trial(tmp_path)
    narrow = dict(v.narrow)
    name = next(k for k, p in narrow.items() if not isinstance(p, space.Fixed))
    held = dataclasses.replace(v, narrow={**narrow, name: space.Fixed(v.defaults[name])})
    with pytest.raises(ConfigError, match=rf"trial 0 searched {name} .*which the space no longer searches"):
        runner.open_study(cfg, held, url, create=True)
    extra = dataclasses.replace(v, narrow={**narrow, "brand_new": space.Float(0.0, 1.0)})
    with pytest.raises(ConfigError, match="trial 0 did not search brand_new"):
        runner.open_study(cfg, extra, url, create=True)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_space_matches_the_distributions_its_own_trials_record(name):
    """For every registered variant and both spaces: a trial drawn from the space is recognised as drawn
    from it (no false alarm on resume), e.g. categorical choices and log ranges round-trip."""
    v = VARIANTS[name]
    for kind in ("wide", "narrow"):
        sp = v.space(kind)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(3):
            t = study.ask()
            space.suggest(t, sp)
            study.tell(t, 0.0)
        assert space.space_change(sp, study.get_trials()) is None, (name, kind)


def test_a_trial_between_two_suggestions_is_no_change(tmp_path):
    """Another worker's running trial (or a killed one) may hold only the parameters suggested so
    far: that is not a change of space; a trial that ended without one is."""
    v = VARIANTS["ns_gan"]
    sp = v.space("narrow")
    first, dist = next(iter(space.distributions(sp).items()))
    study = optuna.create_study()
    running = study.ask()
    running.suggest_float(first, dist.low, dist.high, log=dist.log)
    assert space.space_change(sp, study.get_trials()) is None
    study.tell(running, 1.0)
    assert "did not search" in space.space_change(sp, study.get_trials())

