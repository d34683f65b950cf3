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
    got = eff._combo(("ring8", 0, "random", "none", base["target"], 2 * 40, 40, 20))
    assert got["steps_to_target"] is not None and 0 < got["fraction"] <= 1.0
    assert got["steps_to_target"] % 20 == 0  # counted at a checkpoint
