"""Budget efficiency: the D steps each sampler and pruner of the registries needs to reach the best
objective of N random-search trials, as a share of those N trials' D steps (issue 18, point 1).

For each task and study seed, a random search (the paper's protocol: no pruning) runs N = 30 full
trials of ns_gan in the wide space; its best value over all checkpoints is the target and its
cost the D steps it trained (N x steps). Then every combination of a sampler (SAMPLERS: random,
TPE, multivariate TPE, Optuna's GP sampler, QMC) and a pruner (PRUNERS: none, successive halving,
Hyperband) searches the same space from the same seed, and the D steps it has trained when a
checkpoint first scores at or below the target are counted: every step of every earlier trial
(complete, pruned or diverged) plus the steps of the current one. The figure is that count over the
random search's, per seed; the table gives its median and range over 5 seeds (goal <= 0.25). A
search stops at CAP = 0.4 of the random search's D steps and counts as `inf` ("> 0.4") if it has
not met the target by then: the goal is 0.25, and the cap bounds the cost of the searches that
fail (most of the benchmark's time). random + none from the same seed draws the same trials as the target's search (it replays
them, no training), so it runs to the end: its figure is where random search itself first met its
best (<= 1).

Each (task, study seed) is one job: the target's search, then the 15 combinations, sharing a
TrialCache so that a trial already trained in the job (the same hyperparameters and seeds) is
replayed rather than trained again. Trials are deterministic, so replaying changes no figure
(tests/test_search_efficiency.py checks each search against one that trains every trial afresh);
it only saves time: random search's trials recur under every pruner, QMC's too, and TPE's and
GP's random start-up trials.

Two tasks: `ring8` (8 Gaussians, Metz et al. 2017) with the `mlp` pair and the sliced Wasserstein
objective, and tiny digits (digits5k, the InfoGAN pair at width x0.125, LeNet FID on 500 samples); ring8 trials
are 200 D steps with a checkpoint every 50, digits trials 100 with one every 25 (TASKS).
Trials run through `train.run_trial`, the loop every study uses, with Optuna's in-memory storage
(the subject is the sampler and pruner, not the storage), one thread each, spread over the cores
in worker processes (one per core, at most 8; $BENCH_EFFICIENCY_WORKERS sets another number; $BENCH_EFFICIENCY_TASKS,
e.g. "ring8", runs some of the tasks).
Neither search enqueues the paper's default as trial 0.
"""

from __future__ import annotations

import math
import statistics
import tempfile
from pathlib import Path
from typing import Any

import optuna
import torch

from bench import storage
from bench.benchmarks import benchmark
from bench.config import StudyConfig, parse_study
from bench.gan.variants import VARIANTS
from bench.search import space
from bench.search.samplers import PRUNERS, SAMPLERS
from bench.trial import train

VARIANT = "ns_gan"
SEEDS = (0, 1, 2, 3, 4)


class Reached(Exception):
    """Raised from the evaluation hook when the target is first met, to stop the search at once."""


def pruner(cfg: StudyConfig) -> optuna.pruners.BasePruner:
    """The study's pruner from the registry (`[study] pruner`; successive halving where it says none
    but the search prunes)."""
    name = cfg.study.pruner if cfg.study.pruner != "none" else "successive_halving"
    return PRUNERS[name].make(cfg.train.steps, cfg.train.checkpoint_every)


class TrialCache:
    """The checkpoint values of every trial trained so far in one (task, study seed) job, so that a
    search that asks for a trial already trained replays its values instead of training it again.

    A trial is a pure function of (task, hyperparameters, seeds): one CPU thread, deterministic
    kernels, no state carried between trials; so replaying is exact, and the figure (D steps to the
    target) is counted the same way whether a checkpoint was trained or replayed. Which trials repeat:
    random search draws trial n's hyperparameters from (seed, n), so random with any pruner asks for
    the target search's trials; QMC, and the random start-up trials of TPE and GP, do not depend on
    the pruner. A trial stopped early (pruned, or the target met) is kept as far as it ran; a later
    request that needs more of it trains it again from the start."""

    def __init__(self) -> None:
        self.trials: dict[str, dict[str, Any]] = {}
        self.trained = self.replayed = 0  # trials trained / served from the cache, for the detail

    @staticmethod
    def key(hp: dict[str, Any], seeds: dict[str, int]) -> str:
        return repr((sorted(hp.items()), sorted(seeds.items())))


def search(cfg: StudyConfig, sampler: str, seed: int, budget_steps: int, prune: bool,
           target: float = -math.inf, workdir: Path | None = None, cache: TrialCache | None = None) -> dict[str, Any]:
    """Run trials until `budget_steps` D steps are spent or a checkpoint scores <= target.

    Returns the best value, the D steps spent, the D steps at which the target was met (None if
    never), the trial count and every trial's checkpoint values (`curves`). With `cache`, trials
    already trained with the same hyperparameters and seeds are replayed (TrialCache)."""
    variant = VARIANTS[VARIANT]
    sp = variant.space(cfg.study.space, cfg.study.fixed)
    device = torch.device(cfg.train.device)
    state: dict[str, Any] = {"spent": 0, "best": math.inf, "reached": None, "trials": 0, "curves": []}
    cache = cache if cache is not None else TrialCache()

    def objective(trial: optuna.Trial) -> float:
        hp = space.suggest(trial, sp)
        seeds = train.trial_seeds(seed, trial.number)
        ran = {"steps": 0}
        curve: list[tuple[int, float]] = []
        state["curves"].append(curve)

        def on_eval(step: int, value: float) -> None:
            if step <= ran["steps"]:  # retraining a cached prefix: these checkpoints were replayed already
                return
            ran["steps"] = step
            curve.append((step, value))
            state["best"] = min(state["best"], value)
            if value <= target:
                state["reached"] = state["spent"] + step
                raise Reached
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned

        state["trials"] += 1
        key = cache.key(hp, seeds)
        have = cache.trials.get(key)
        try:
            if have is not None:
                for step, value in have["evals"]:
                    on_eval(step, value)
                if have["complete"]:
                    cache.replayed += 1
                    state["spent"] += have["steps"] - ran["steps"]
                    return have["value"]
            cache.trained += 1
            with tempfile.TemporaryDirectory(dir=workdir) as d:
                result = train.run_trial(cfg, variant, hp, seeds, Path(d), device, on_eval)
        except (Reached, optuna.TrialPruned):
            if have is None or len(curve) > len(have["evals"]):
                cache.trials[key] = {"evals": list(curve), "complete": False}
            raise
        finally:
            state["spent"] += ran["steps"]
        cache.trials[key] = {"evals": list(curve), "complete": True, "steps": result.steps, "value": result.value}
        state["spent"] += result.steps - ran["steps"]  # a divergence after the last checkpoint
        return result.value

    with storage.optuna_log_level(optuna.logging.ERROR):  # the stop by `Reached` is not a failure to report
        # a fixed name: Hyperband puts trial n in a bracket by a hash of (study name, n), and an
        # unnamed in-memory study gets a random name, which made the hyperband rows differ run to run
        study = optuna.create_study(study_name=f"{cfg.study.name}-seed{seed}", direction="minimize",
                                    sampler=SAMPLERS[sampler].make(seed), pruner=pruner(cfg) if prune else optuna.pruners.NopPruner())
        try:
            while state["spent"] + cfg.train.steps <= budget_steps:
                study.optimize(objective, n_trials=1, catch=())
        except Reached:
            pass
    return state


TASKS: dict[str, dict[str, Any]] = {
    # name -> each trial's D steps and checkpoint interval, and the study's sections; quick mode shortens
    # training and keeps ring8 only. digits is the costly task: 100 D steps of batch 16 and the 500-sample
    # FID at 4 checkpoints keep `make bench` within its 15 minutes
    "ring8": {"steps": 200, "every": 50,
              "data": {"dataset": "ring8"}, "model": {"architecture": "mlp", "width": 1.0, "z_dim": 64},
              "train": {"batch_size": 64}, "eval": {"metrics": ["swd_ring8_10k_test"], "batch_size": 10_000, "generator_mode": "eval"}},
    "digits5k": {"steps": 100, "every": 25,
                 "data": {"dataset": "digits5k"}, "model": {"architecture": "infogan", "width": 0.125, "z_dim": 64},
                 "train": {"batch_size": 16},
                 "eval": {"metrics": ["fid_lenet_digits5k_500_test"], "batch_size": 500, "generator_mode": "train"}},
}
TRIALS = 30  # random search's N
QUICK = {"trials": 2, "steps": 40, "every": 20, "seeds": SEEDS[:1], "tasks": ("ring8",)}
GOAL = 0.25
CAP = 0.4  # a search not at the target by this share of random search's D steps is reported as "> CAP"


def task_config(name: str, steps: int, every: int) -> StudyConfig:
    t = TASKS[name]
    raw = {"study": {"name": f"budget-efficiency-{name}", "space": "wide", "variants": [VARIANT]},
           "data": dict(t["data"]), "model": dict(t["model"]),
           "train": {**t["train"], "steps": steps, "checkpoint_every": every, "log_every": every, "device": "cpu",
                     "keep_checkpoints": False},
           "eval": dict(t["eval"])}
    return parse_study(raw, f"<budget_efficiency {name}>", raw["study"]["name"])


def _one_thread() -> None:
    torch.set_num_threads(1)


def _baseline(job: tuple[str, int, int, int, int], cache: TrialCache | None = None) -> dict[str, Any]:
    name, seed, trials, steps, every = job
    _one_thread()
    rand = search(task_config(name, steps, every), "random", seed, trials * steps, prune=False, cache=cache)
    return {"task": name, "seed": seed, "target": rand["best"], "random_steps": rand["spent"], "random_trials": rand["trials"]}


def _combo(job: tuple[str, int, str, str, float, int, int, int, float], cache: TrialCache | None = None) -> dict[str, Any]:
    name, seed, sampler, pruner_name, target, budget, steps, every, cap = job
    _one_thread()
    cfg = task_config(name, steps, every).replace("study", pruner=pruner_name)
    got = search(cfg, sampler, seed, int(cap * budget), prune=pruner_name != "none", target=target, cache=cache)
    fraction = got["reached"] / budget if got["reached"] is not None else math.inf
    return {"task": name, "seed": seed, "sampler": sampler, "pruner": pruner_name, "steps_to_target": got["reached"],
            "trials": got["trials"], "fraction": round(fraction, 4)}


def _task_seed(job: tuple[str, int, int, int, int]) -> dict[str, Any]:
    """One (task, study seed): the random search that sets the target, then every sampler x pruner
    against it, sharing one TrialCache (every trial is trained at most once per job, as far as asked)."""
    import time

    name, seed, trials, steps, every = job
    t0 = time.process_time()
    cache = TrialCache()
    base = _baseline(job, cache)
    # every search but the target's own (random + none, which replays it: no training) stops at CAP of
    # the random search's D steps; the figure's denominator stays the random search's D steps
    rows = [_combo((name, seed, sampler, pruner_name, base["target"], trials * steps, steps, every,
                    1.0 if (sampler, pruner_name) == ("random", "none") else CAP), cache)
            for sampler in SAMPLERS for pruner_name in PRUNERS]
    base.update(trained=cache.trained, replayed=cache.replayed, cpu_s=round(time.process_time() - t0, 1))
    return {"base": base, "rows": rows}


def _map(fn: Any, jobs: list[Any], workers: int) -> list[Any]:
    if workers <= 1:
        return [fn(j) for j in jobs]
    import concurrent.futures
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
        return list(ex.map(fn, jobs))


def table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per (task, sampler, pruner): median, range and seeds that reached the target."""
    out = []
    keys = sorted({(r["task"], r["sampler"], r["pruner"]) for r in rows}, key=lambda k: (list(TASKS).index(k[0]), k[1], k[2]))
    for task_name, sampler, pruner_name in keys:
        fr = [r["fraction"] for r in rows if (r["task"], r["sampler"], r["pruner"]) == (task_name, sampler, pruner_name)]
        out.append({"task": task_name, "sampler": sampler, "pruner": pruner_name, "median": statistics.median(fr),
                    "min": min(fr), "max": max(fr), "reached": f"{sum(math.isfinite(f) for f in fr)}/{len(fr)}"})
    return out


def best_overall(lines: list[dict[str, Any]]) -> tuple[str, str]:
    """The combination (other than the paper's random + none) with the lowest worst-task median."""
    combos = {(x["sampler"], x["pruner"]) for x in lines} - {("random", "none")}
    return min(combos, key=lambda c: (max(x["median"] for x in lines if (x["sampler"], x["pruner"]) == c),
                                      sum(x["median"] for x in lines if (x["sampler"], x["pruner"]) == c)))


def _write_table(lines: list[dict[str, Any]], q: dict[str, Any], length: dict[str, tuple[int, int]], workers: int) -> None:
    from bench import records

    def fmt(x: float) -> str:
        return f"> {CAP}" if not math.isfinite(x) else f"{x:.3f}"

    out = [f"# budget_efficiency: D steps to reach the best of {q['trials']} random-search trials, as a share of their D steps",
           "", "ns_gan, wide space; " + "; ".join(f"{t}: {n} D steps per trial, a checkpoint every {e}" for t, (n, e) in length.items())
           + "; study seeds "
           f"{', '.join(map(str, q['seeds']))}; {workers} worker process(es), one thread each. Lower is better; goal <= {GOAL}. "
           f"A search stops at {CAP} of random search's D steps (\"> {CAP}\": not reached by then); random + none replays "
           "the target's own search, so its figure is where random search first met its best of all its trials.",
           "", "| task | sampler | pruner | median | range over seeds | seeds reaching the target |", "|---|---|---|---|---|---|"]
    out += [f"| {x['task']} | {x['sampler']} | {x['pruner']} | {fmt(x['median'])} | {fmt(x['min'])} to {fmt(x['max'])} | {x['reached']} |"
            for x in lines]
    path = records.results_root() / "bench" / "budget_efficiency.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    records.atomic_write_bytes(path, ("\n".join(out) + "\n").encode())


@benchmark("budget_efficiency")
def budget_efficiency(quick: bool) -> dict[str, Any]:
    """D steps each sampler x pruner needs to reach the best of 30 random-search trials / those trials' D steps; ring8 and tiny digits, 5 seeds."""
    import os

    tasks = tuple(t for t in (os.environ.get("BENCH_EFFICIENCY_TASKS") or ",".join(TASKS)).split(",") if t)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"$BENCH_EFFICIENCY_TASKS: unknown task {unknown[0]!r}; expected names from {', '.join(TASKS)}")
    q = QUICK if quick else {"trials": TRIALS, "seeds": SEEDS, "tasks": tasks}
    length = {t: (q["steps"], q["every"]) if quick else (TASKS[t]["steps"], TASKS[t]["every"]) for t in q["tasks"]}
    workers = 1 if quick else int(os.environ.get("BENCH_EFFICIENCY_WORKERS") or max(1, min(os.cpu_count() or 1, 8)))
    # the heavier task first, so the worker processes finish together
    jobs = [(t, s, q["trials"], *length[t]) for t in sorted(q["tasks"], key=lambda t: t != "digits5k") for s in q["seeds"]]
    done = _map(_task_seed, jobs, workers)
    base = [d["base"] for d in done]
    rows = [r for d in done for r in d["rows"]]
    lines = table(rows)
    best = best_overall(lines)
    headline = next(x["median"] for x in lines if (x["task"], x["sampler"], x["pruner"]) == (q["tasks"][0], *best))
    _write_table(lines, q, length, workers)
    return {
        "ratio": headline,
        "goal": f"<= {GOAL}",
        "best": f"{best[0]} + {best[1]}: " + ", ".join(f"{x['task']} {x['median']:.3g}" for x in lines if (x["sampler"], x["pruner"]) == best),
        "table": "results/bench/budget_efficiency.md",
        "detail": {"lines": lines, "tasks": {t: TASKS[t] for t in q["tasks"]}, "variant": f"{VARIANT}, wide space", "random_trials": q["trials"],
                   "steps_per_trial": {t: n for t, (n, e) in length.items()}, "checkpoint_every": {t: e for t, (n, e) in length.items()},
                   "seeds": list(q["seeds"]),
                   "worker_processes": workers, "targets": base, "per_seed": rows},
        "command": "python -m bench.benchmarks budget_efficiency",
    }
