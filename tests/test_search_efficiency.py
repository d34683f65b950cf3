"""The budget_efficiency benchmark's arithmetic (issue 18, point 1): its table and its choice of a
recommended combination, by hand; and, on a tiny ring8 task, that random search without pruning
from the target's own seed meets the target within its own budget (it draws the same trials)."""

from __future__ import annotations

import math

from bench.benchmarks import search as eff


def rows(task, sampler, pruner, fractions):
    return [{"task": task, "seed": i, "sampler": sampler, "pruner": pruner, "fraction": f} for i, f in enumerate(fractions)]


def test_table_gives_median_range_and_seeds_reached():
    lines = eff.table(rows("ring8", "tpe", "hyperband", [0.2, math.inf, 0.1, 0.4, 0.3]))
    assert lines == [{"task": "ring8", "sampler": "tpe", "pruner": "hyperband", "median": 0.3, "min": 0.1, "max": math.inf,
                      "reached": "4/5"}]


def test_the_recommendation_is_the_lowest_worst_task_median_and_never_the_paper_protocol():
    r = (rows("ring8", "random", "none", [0.01] * 3) + rows("digits5k", "random", "none", [0.01] * 3)
         + rows("ring8", "tpe", "none", [0.1] * 3) + rows("digits5k", "tpe", "none", [0.6] * 3)
         + rows("ring8", "gp", "hyperband", [0.3] * 3) + rows("digits5k", "gp", "hyperband", [0.35] * 3))
    assert eff.best_overall(eff.table(r)) == ("gp", "hyperband")  # worst task 0.35 beats tpe's 0.6


def test_random_without_pruning_from_the_same_seed_meets_its_own_best(env):
    base = eff._baseline(("ring8", 0, 2, 40, 20))
    got = eff._combo(("ring8", 0, "random", "none", base["target"], 2 * 40, 40, 20, 1.0))
    assert got["steps_to_target"] is not None and 0 < got["fraction"] <= 1.0
    assert got["steps_to_target"] % 20 == 0  # counted at a checkpoint


def test_beta1_at_the_closed_end_of_the_wide_range_trains():
    """Optuna's GP sampler drew beta1 = 1.0 (the wide space's closed upper bound) in the benchmark,
    which Adam refuses; the trial now builds and takes steps, every other beta1 is used unchanged."""
    import torch

    from bench.gan.variants import VARIANTS
    from bench.trial.train import adam_beta1, build_nets

    assert adam_beta1(0.3) == 0.3 and adam_beta1(0.0) == 0.0
    assert adam_beta1(1.0) < 1.0 and f"{adam_beta1(1.0):.15f}" == "1.000000000000000"
    v = VARIANTS["ns_gan"]
    nets = build_nets(v, "mlp", (2,), 0.25, 8, {**v.defaults, "beta1": 1.0}, torch.device("cpu"))
    assert nets.opt_g.param_groups[0]["betas"][0] == adam_beta1(1.0)
    before = [p.detach().clone() for p in nets.G.parameters()]
    loss = nets.G(torch.rand(16, 8) * 2 - 1).square().mean()
    loss.backward()
    nets.opt_g.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, nets.G.parameters()))  # bias correction: it moves


def test_a_replayed_trial_counts_exactly_as_a_trained_one(env):
    """The benchmark's TrialCache serves trials already trained in the job; every search's figure
    must equal the one it gives with every trial trained afresh: the same D steps spent, the same
    step at which the target is met, the same checkpoint values, trial by trial."""
    cfg = eff.task_config("ring8", 40, 20).replace("study", pruner="successive_halving")
    cache = eff.TrialCache()
    base = eff.search(eff.task_config("ring8", 40, 20), "random", 0, 4 * 40, prune=False, cache=cache)
    assert cache.trained == 4 and cache.replayed == 0
    for sampler, prune in [("random", True), ("tpe", True), ("random", False)]:
        c = cfg if prune else eff.task_config("ring8", 40, 20)
        fresh = eff.search(c, sampler, 0, 4 * 40, prune=prune, target=base["best"])
        trained, replayed = cache.trained, cache.replayed
        cached = eff.search(c, sampler, 0, 4 * 40, prune=prune, target=base["best"], cache=cache)
        assert {k: cached[k] for k in ("spent", "reached", "trials", "curves", "best")} == \
               {k: fresh[k] for k in ("spent", "reached", "trials", "curves", "best")}, sampler
        assert fresh["reached"] is not None or sampler == "tpe"
        if sampler == "random":  # the target search's trials: nothing trained again
            assert cache.trained == trained and cache.replayed > replayed


def test_hyperband_brackets_do_not_depend_on_a_random_study_name(env):
    """Optuna's Hyperband assigns trial n to a bracket by crc32 of (study name, n); the benchmark's
    in-memory studies were unnamed (a random uuid each), so its hyperband rows changed from run to
    run while every other row reproduced exactly. The name is now fixed per task and seed."""
    import optuna

    cfg = eff.task_config("ring8", eff.TASKS["ring8"]["steps"], eff.TASKS["ring8"]["every"]).replace("study", pruner="hyperband")  # two brackets
    brackets = []
    for _ in range(2):
        p = eff.pruner(cfg)
        study = optuna.create_study(study_name=f"{cfg.study.name}-seed0", pruner=p)
        for _ in range(12):
            study.ask()
        trials = study.get_trials(deepcopy=False)
        p.prune(study, trials[0])  # builds the brackets
        brackets.append([p._get_bracket_id(study, t) for t in trials])
    assert brackets[0] == brackets[1] and len(set(brackets[0])) > 1
