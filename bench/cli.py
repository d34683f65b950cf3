"""`bench`: the command line. Subcommands stay thin; the work lives in the modules they call.

Exit codes: 0 success, 1 runtime failure (HarnessError, an OS error such as an unwritable
folder, or a bug), 2 bad input (ConfigError or a bad argument), 130 interrupted (Ctrl-C). Every
error prints one line naming the file, key or argument and what is allowed; `--debug` adds the
traceback. Argument errors are one line too (with a pointer to `--help`), not argparse's usage block.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
import typing
from pathlib import Path
from typing import Iterator, Sequence

from bench.errors import ConfigError, HarnessError

log = logging.getLogger("bench")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2), like every other error of the harness."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _load(args: argparse.Namespace):
    from bench.config import load_study

    if getattr(args, "trials", None) is not None and args.trials <= 0:
        raise ConfigError(f"--trials {args.trials}: expected a positive integer")
    cfg = load_study(args.study)  # before anything imports torch: a bad file fails in a fraction of a second
    if getattr(args, "trials", None) is not None:
        cfg = cfg.replace("study", trials=args.trials)
    if getattr(args, "tensorboard", False):  # watching only: outside the study's digest (config.OBSERVATION_ONLY)
        cfg = cfg.replace("train", tensorboard=True)
    return cfg


def cmd_list(args: argparse.Namespace) -> int:
    from bench import registries
    from bench.config import list_studies

    for kind in registries.KINDS:
        print(f"{kind}:")
        for name in registries.names(kind):
            print(f"  {name:<30} {registries.doc(kind, name)}")
    print("studies:")
    for name in list_studies():
        print(f"  {name}")
    return 0


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler's preemption, `scancel`, `kill`) ends a worker like Ctrl-C: the
    running trial is recorded as interrupted and re-queued. The previous handler comes back after."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_study(args: argparse.Namespace) -> int:
    cfg = _load(args)
    if args.device is not None:
        from bench.config import check_value

        problem = check_value("train", "device", args.device)  # the rule of the file's [train] device
        if problem:
            raise ConfigError(f"--device {args.device!r} is not allowed; expected {problem}")
    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: expected a positive integer")
    from bench import storage
    from bench.gan.variants import VARIANTS
    from bench.study import runner, status, workers
    from bench.trial.train import resolve_device

    variants = runner.main_variants(cfg, args.variant)
    device = resolve_device(args.device or cfg.train.device)  # once, before anything is written (issue #10)
    if not args.create_only:  # --create-only may run on another machine than the trials (a login node)
        from bench.study import fits

        fits.check(cfg, variants, device)  # a width or batch this device cannot hold: refused before the storage opens
    if args.dry_run:
        from bench.study import plan

        notes: list[str] = []
        stored = {}
        try:
            url = storage.resolve_url(cfg, args.storage, create=False)
            existing = status.status_lines(cfg, url, variants)
        except HarnessError:  # no results yet: nothing is created by a dry run
            url, existing = storage.url_of(cfg.name, args.storage, cfg.study.storage), []
        else:
            notes = _budget_notes(cfg, variants, url, args.variant)
            stored = plan.stored_progress(cfg, url, variants)  # the estimate covers what is left of each budget
        for line in plan.plan_lines(cfg, variants, url, args.workers, args.device, args.calibrate_steps, existing, notes, stored):
            print(line, flush=True)
        return 0
    if not args.create_only:  # --create-only may run where the data is not (a login node); workers check it
        _check_data(cfg)
    url = storage.resolve_url(cfg, args.storage)
    changed = status.check_budget_change(cfg, variants, url, args.variant)  # refuses unequal budgets before anything is written
    if changed:
        log.info(changed)
    with _sigterm_as_interrupt():
        for v in variants:
            runner.open_study(cfg, VARIANTS[v], url, create=True)
        if args.create_only:
            for line in status.status_lines(cfg, url, variants):
                print(line)
            return 0
        if args.workers == 1:
            runner.run_variants(cfg, variants, url, device, progress=not args.no_progress)
        else:
            codes = workers.run_local(cfg, args.variant, url, args.workers, args.device,
                                     lambda: status.status_lines(cfg, url, variants), debug=args.debug)
            _check_worker_codes(codes)
    failed, line = status.every_trial_failed(cfg, url, variants)
    if len(failed) < len(variants):  # some variant has a result to show
        _print_summary(cfg, url)
    if failed:
        raise HarnessError(line)
    return 0


def _budget_notes(cfg, variants: list[str], url: str, variant_arg: str) -> list[str]:
    """What --dry-run says about the budget beside the plan: the refusal or change this run would
    make, and the stored budgets when they are unequal (issue 14, point 1)."""
    from bench.study import status

    notes = []
    try:
        changed = status.check_budget_change(cfg, variants, url, variant_arg)
    except ConfigError as e:
        notes.append(f"this run would be refused: {e}")
    else:
        if changed:
            notes.append(f"this run changes it: {changed}")
    unequal = status.unequal_budgets_line(cfg, url)
    return notes + ([unequal] if unequal else [])


def _check_worker_codes(codes: list[int]) -> None:
    if any(c == 130 for c in codes):
        raise KeyboardInterrupt
    bad = [c for c in codes if c != 0]
    if bad:
        raise HarnessError(f"{len(bad)} of {len(codes)} workers failed (exit codes {', '.join(map(str, bad))}); their messages are above")


def cmd_worker(args: argparse.Namespace) -> int:
    cfg = _load(args)
    from bench import storage
    from bench.study import fits, runner
    from bench.trial.train import resolve_device

    variants = runner.main_variants(cfg, args.variant)
    device = resolve_device(args.device or cfg.train.device)  # once: checked here, run and recorded by the runner
    fits.check(cfg, variants, device)
    _check_data(cfg)
    url = storage.resolve_url(cfg, args.storage)
    with _sigterm_as_interrupt():
        runner.run_variants(cfg, variants, url, device, progress=not args.no_progress, wait=not args.no_wait)
    from bench.study import status

    failed, line = status.every_trial_failed(cfg, url, variants)
    if failed:  # as `bench study`: a worker whose variants have no result exits 1, so a job scheduler sees it
        raise HarnessError(line)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import time

    cfg = _load(args)
    from bench import storage
    from bench.study import status  # not the runner: no torch, so status answers in about a second

    variants = status.main_variants(cfg, args.variant)
    url = storage.resolve_url(cfg, args.storage, create=False)
    shown: list[str] = []
    while True:
        unequal = status.unequal_budgets_line(cfg, url)
        lines = status.status_lines(cfg, url, variants, created_only=True) + ([unequal] if unequal else [])
        if lines != shown:
            stamp = time.strftime("%H:%M:%S ") if args.watch else ""
            for line in lines:
                print(stamp + line, flush=True)
            shown = lines
        if not args.watch or all("budget spent" in line for line in lines if line != unequal):
            return 0
        time.sleep(args.watch)


def _check_data(cfg) -> None:
    """Load the study's data once before any trial, so missing files stop the run with one message
    instead of failing every trial; trials in this process reuse the loaded data."""
    from bench import data

    data.load(cfg.data.dataset, data.resolve_root(cfg.data.root))
    _check_weights(cfg)


def _check_weights(cfg) -> None:
    """Find (or fetch) the Inception weights before any trial when a metric needs them: offline and
    missing, the run stops here with one line, before the storage is touched (issue #10)."""
    from bench.metrics import METRICS
    from bench.metrics.extractors import EXTRACTORS

    for name in sorted({METRICS[m].extractor for m in cfg.eval.metrics} - {""}):
        if EXTRACTORS[name].locate is not None:
            EXTRACTORS[name].locate(cfg.eval.inception_weights)


def cmd_fetch(args: argparse.Namespace) -> int:
    from bench import data

    if args.dataset not in data.DATASETS:
        raise ConfigError(f"dataset {args.dataset!r} is not in the registry; expected one of {', '.join(data.DATASETS)}")
    root = data.resolve_root(args.root or "")
    spec = data.DATASETS[args.dataset]
    if spec.needs_download:
        from bench.data import vision

        print(f"{args.dataset}: files in {vision.fetch(args.dataset, root)}")
    else:
        loaded = data.load(args.dataset, root)
        print(f"{args.dataset}: needs no download ({loaded.source})")
    return 0


SUMMARY_COLUMNS = ("dataset", "variant", "trials", "n", "complete", "diverged", "failed", "pruned", "{m}_min", "{m}_median",
                   "{m}_max", "best_trial", "best_hparams")


def _print_summary(cfg, url: str) -> None:
    """Print the per-variant summary; write results/<study>/summary.csv and trials.csv (one row per trial)."""
    import pandas as pd

    from bench import records, report

    frame = report.load(cfg, storage_url=url)
    best = report.per_trial(frame)
    table = report.summary_table(best)
    m = frame.attrs["objective"]
    path = records.study_dir(cfg.name) / "summary.csv"
    records.atomic_write_bytes(path, table.to_csv(index=False).encode())
    records.atomic_write_bytes(path.with_name("trials.csv"), best.to_csv(index=False).encode())
    cols = [c.format(m=m) for c in SUMMARY_COLUMNS if c.format(m=m) in table]
    with pd.option_context("display.max_columns", None, "display.width", 200, "display.max_colwidth", 80):
        print(table[cols].to_string(index=False))
    from bench.report.budgets import unequal_budgets

    unequal = unequal_budgets(best)
    if unequal:
        print(unequal)
    print(f"summary: {path}")
    print(f"trials:  {path.with_name('trials.csv')}")


def _print_report_paths(paths: dict) -> None:
    folder = paths["report.md"].parent
    names = [n for n in ("report.html", "report.md", "report.ipynb", "summary.csv", "trials.parquet") if n in paths]
    print(f"report:  {folder}/  ({', '.join(names)}, figures/)")
    print(f"open:    {paths['report.html']}")


def cmd_report(args: argparse.Namespace) -> int:
    import pandas as pd

    from bench import report

    source = args.study
    if "://" not in source and not Path(source).is_dir():
        source = _load(args)
    rep, paths = report.write_report(source, Path(args.out) if args.out else None, study=args.name, storage_url=args.storage,
                                     notebook=not args.no_notebook, resamples=args.resamples, evaluator=args.importance,
                                     include_pruned=args.include_pruned, dpi=args.dpi)
    if not args.brief:
        m = rep.metric
        cols = [c.format(m=m) for c in SUMMARY_COLUMNS if c.format(m=m) in rep.summary]
        with pd.option_context("display.max_columns", None, "display.width", 200, "display.max_colwidth", 80):
            print(rep.summary[cols].to_string(index=False))
    for line in rep.conclusions:  # the same lines as report.md's "Comparisons" (stats.conclusions)
        print(f"- {line}")
    from bench.report.budgets import unequal_budgets

    unequal = unequal_budgets(rep.best)
    if unequal:  # with --brief too: a comparison on unequal budgets is never reported without a word
        print(unequal)
    _print_report_paths(paths)
    return 0


def cmd_figure(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg", force=True)
    from bench import records
    from bench.figures import critic

    setting = critic.Setting(**{k: v for k, v in (("steps", args.steps), ("seed", args.seed)) if v is not None})
    paths = critic.write(Path(args.out) if args.out else records.figure_dir(args.name), setting)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from bench import storage

    source = args.study
    folder = None  # the results folder, whose artifacts/ the dashboard serves (the trials' sample grids)
    if "://" in source:
        url = source
    else:
        from bench.report.tidy import resolve

        url, _, folder = resolve(source if Path(source).is_dir() else _load(args), args.storage)
    try:
        import optuna_dashboard
    except ImportError:
        raise HarnessError("optuna-dashboard is not installed; `pip install optuna-dashboard` (or `make setup`)") from None
    log.info(f"optuna-dashboard for {storage.mask(url)} at http://{args.host}:{args.port}/ (Ctrl-C to stop)")
    from bench.study.dashboard import served_artifact_store

    optuna_dashboard.run_server(storage.open_storage(url, heartbeat=False), host=args.host, port=args.port,
                                artifact_store=served_artifact_store(folder))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from bench.study import audit

    variants = [v for v in args.variant.split(",") if v] if args.variant else None
    report, _ = audit.run_audit(args.study, args.trials, args.reruns, args.tolerance, variants, args.phase,
                                args.storage, args.device, args.strict)
    return 0 if report["verdict"] == "pass" else 1


def cmd_seeds(args: argparse.Namespace) -> int:
    import pandas as pd

    from bench import records, report, storage
    from bench.study import runner, seeds

    cfg = _load(args)
    variants = runner.main_variants(cfg, args.variant)
    url = storage.resolve_url(cfg, args.storage)
    with _sigterm_as_interrupt():
        for v in variants:
            seeds.run_seeds(cfg, v, url, args.seeds, args.trial, args.device)
    rows = seeds.write_rows(cfg, url)
    table = report.seeds_table(report.per_trial(report.load(cfg, storage_url=url, phase="seeds")))
    records.atomic_write_bytes(records.seeds_summary_path(cfg.name), table.to_csv(index=False).encode())
    with pd.option_context("display.max_columns", None, "display.width", 200):
        print(table.to_string(index=False))
    print(f"seed reruns: {rows}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from bench.study import archive

    archive.export_study(args.study, args.archive, args.storage)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from bench.study import archive

    archive.import_archive(args.archive, args.storage)
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from bench import storage
    from bench.study import probe, runner

    cfg = _load(args)
    if args.z_seeds < 2:
        raise ConfigError(f"--z-seeds {args.z_seeds}: expected an integer of at least 2")
    if args.samples < 0:
        raise ConfigError(f"--samples {args.samples}: expected a positive integer (0 = the objective's sample count)")
    url = storage.resolve_url(cfg, args.storage, create=False)
    for v in runner.main_variants(cfg, args.variant):
        probe.probe_variant(cfg, v, url, args.z_seeds, args.samples, args.device)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    cfg = _load(args)
    from bench import storage
    from bench.study import sample

    url = storage.resolve_url(cfg, args.storage, create=False)
    out = sample.write_samples(cfg, args.variant, url, Path(args.out), args.n, args.trial, args.step, args.seed, args.device)
    log.info(f"{cfg.name}/{args.variant} trial {out['trial']} step {out['step']} ({out['weights'].name}), {out['n']} samples from {out['z']}")
    print(f"samples: {Path(args.out)}/  ({len(out['files'])} files)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from bench.gan.variants import VARIANTS
    from bench.trial import reeval

    cfg = _load(args)
    if args.variant:
        variants = [v for v in args.variant.split(",") if v]
        bad = [v for v in variants if v not in VARIANTS]
        if bad:
            raise ConfigError(f"--variant {bad[0]!r} is not a variant; expected one or more of {', '.join(VARIANTS)}")
    else:
        variants = list(dict.fromkeys([*cfg.study.variants, *VARIANTS]))
    added = reeval.eval_study(cfg, variants, args.metrics or list(cfg.eval.metrics), args.device, args.again)
    print(f"{len(added)} checkpoint evaluations appended to the trials' metrics.jsonl" if added
          else "every checkpoint already has these metrics (use --again to add another record)")
    return 0


def cmd_fid(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench.trial import reeval

    out = reeval.fid_between(Path(args.a), Path(args.b), args.features, args.device, args.batch_size, args.weights or "",
                             Path(args.save_stats) if args.save_stats else None)
    print(f"FID {out['fid']:.6f}")
    print(f"  A: {out['a']}")
    print(f"  B: {out['b']}")
    print(f"  features: {out['extractor']} (sha256 {out['sha256'][:16]}…)" + (f", {out['code']}" if out.get("code") else ""))
    return 0


def version_line() -> str:
    """`bench --version`: the installed package's version, and the commit of a git checkout when the
    code runs from one (what a bug report or a paper's methods section needs); no torch is imported."""
    import importlib.metadata
    import subprocess

    try:
        version = importlib.metadata.version("gan-bench")
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    line = f"bench (gan-bench) {version}"
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "bench", "pyproject.toml"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return line
    if commit.returncode == 0 and commit.stdout.strip():
        line += f", git {commit.stdout.strip()}" + (" (modified)" if dirty.stdout.strip() else "")
    return line


class _Version(argparse.Action):
    """--version, computed only when asked (it runs git)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_line())  # stdout, as --help: a script may read it
        parser.exit(0)


def _global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """The options every command takes, before or after the subcommand (`bench import A --results DIR`
    as well as `bench --results DIR import A`). On the subcommands they default to SUPPRESS, so a value
    given before the subcommand is not overwritten by the subparser's default."""
    default = {"default": argparse.SUPPRESS} if suppress else {}
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors", **default)
    parser.add_argument("--results", metavar="DIR", help="results folder (default: ./results or $BENCH_RESULTS)", **default)
    parser.add_argument("-v", "--verbose", action="count", help="more diagnostics on stderr (-v: debug messages)",
                        **(default or {"default": 0}))
    parser.add_argument("-q", "--quiet", action="count", help="fewer messages on stderr (-q: warnings and errors only)",
                        **(default or {"default": 0}))


STUDY_HELP = "a study name under studies/ (quick, cases/lucic_small), a study file (.toml) or the results folder it wrote (results/quick)"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bench", description="The GAN study harness: budgeted, reproducible comparisons of GAN variants (after Lucic et al., 2018).")
    p.add_argument("--version", action=_Version, help="print the harness version (and git commit) and exit")
    _global_options(p, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    _add = sub.add_parser
    sub.add_parser = lambda *a, **k: _add(*a, parents=[common], **k)  # every command takes the global options

    s = sub.add_parser("list", help="print the registries (variants, datasets, architectures, metrics, extractors, samplers, pruners) and study files")
    s.set_defaults(fn=cmd_list)

    s = sub.add_parser("study", help="create or resume a study and run its trials up to the budget, then print the summary")
    s.add_argument("study", help=STUDY_HELP)
    s.add_argument("--variant", required=True, help="variant name, or 'all' for every variant listed in the study file")
    s.add_argument("--trials", type=int, help="override the per-variant trial budget of the study file")
    s.add_argument("--storage", help="Optuna storage URL (default: the study file's, $BENCH_STORAGE, or results/<study>/optuna.db)")
    s.add_argument("--device", help="'cpu', 'cuda' or 'cuda:N' (default: the study file's [train] device)")
    s.add_argument("--workers", type=int, default=1, help="local worker processes on this study (default 1); they may share one GPU")
    s.add_argument("--create-only", action="store_true", help="create the study and record its budget, run nothing (then start `bench worker` anywhere)")
    s.add_argument("--dry-run", action="store_true", help="print the plan and a compute estimate from a short measured calibration; write nothing")
    s.add_argument("--calibrate-steps", type=int, default=20, metavar="N", help="D steps per variant timed by --dry-run (0 skips the estimate)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar per trial")
    s.add_argument("--tensorboard", action="store_true", help="log every trial to TensorBoard under results/<study>/tensorboard/ (as [train] tensorboard = true)")
    s.set_defaults(fn=cmd_study)

    s = sub.add_parser("fetch", help="download a dataset's files into the data root now (run where the network is reachable)")
    s.add_argument("dataset", help="dataset registry name (see `bench list`)")
    s.add_argument("--root", help="data root (default: $BENCH_DATA or ~/.cache/bench/data)")
    s.set_defaults(fn=cmd_fetch)

    s = sub.add_parser("worker", help="join a created study and run its trials until the budget is spent (start one per GPU, on any machine)")
    s.add_argument("study", help=STUDY_HELP)
    s.add_argument("--variant", required=True, help="variant name, or 'all' for every variant listed in the study file, in order")
    s.add_argument("--storage", help="Optuna storage URL (default: the study file's, $BENCH_STORAGE, or results/<study>/optuna.db)")
    s.add_argument("--device", help="'cpu', 'cuda' or 'cuda:N' (default: the study file's [train] device); several workers may share one")
    s.add_argument("--no-progress", action="store_true", help="no progress bar per trial")
    s.add_argument("--no-wait", action="store_true", help="leave as soon as no trial can start (default: stay while others' trials run, to rerun any whose worker dies)")
    s.add_argument("--tensorboard", action="store_true", help="log every trial to TensorBoard under results/<study>/tensorboard/ (as [train] tensorboard = true)")
    s.set_defaults(fn=cmd_worker)

    s = sub.add_parser("status", help="one line per variant: trials done of the budget, running, failed, spend")
    s.add_argument("study", help=STUDY_HELP)
    s.add_argument("--variant", default="all", help="variant name or 'all' (default)")
    s.add_argument("--storage", help="Optuna storage URL (default as for `bench study`)")
    s.add_argument("--watch", type=float, metavar="SECONDS", help="print again whenever it changes, polling every SECONDS, until the budget is spent")
    s.set_defaults(fn=cmd_status)

    s = sub.add_parser("report", help="write results/<study>/report/: tables, budget curves, comparisons, figures, report.md/html and an executed notebook")
    s.add_argument("study", help="study name or .toml path, a results folder (holding optuna.db), or a storage URL")
    s.add_argument("--storage", help="Optuna storage URL (default as for `bench study`)")
    s.add_argument("--name", help="the study to report when a storage URL holds several")
    s.add_argument("--out", metavar="DIR", help="output folder (default: results/<study>/report)")
    s.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples for bands and intervals (default 2000)")
    s.add_argument("--importance", default="ped_anova", choices=["ped_anova", "fanova", "mdi"], help="Optuna importance evaluator (default ped_anova)")
    s.add_argument("--no-notebook", action="store_true", help="skip executing report.ipynb")
    s.add_argument("--brief", action="store_true", help="print only the conclusions and where the report is")
    s.add_argument("--dpi", type=_positive_int, default=150, help="resolution of the PNG figures [150]; each is also written as SVG")
    s.add_argument("--include-pruned", action="store_true",
                   help="score pruned trials with their partial-training best like full-length ones (default: counted and shown apart)")
    s.set_defaults(fn=cmd_report)

    s = sub.add_parser("figure", help="draw a stand-alone figure: critic = the seed's Figure 2 (GAN discriminator vs WGAN critics on two Gaussians), PNG + CSV + JSON")
    s.add_argument("name", choices=["critic"], help="which figure")
    s.add_argument("--out", metavar="DIR", help="output folder (default: results/figures/<name>)")
    s.add_argument("--steps", type=_positive_int, help="D updates per network (default 2000)")
    s.add_argument("--seed", type=int, help="random seed (default 0)")
    s.set_defaults(fn=cmd_figure)

    s = sub.add_parser("seeds", help="the paper's phase 3: rerun each variant's best configuration with K seeds (a separate Optuna study)")
    s.add_argument("study", help=STUDY_HELP)
    s.add_argument("--variant", required=True, help="variant name, or 'all' for every variant listed in the study file")
    s.add_argument("--seeds", type=int, required=True, help="seed reruns per variant (the paper used 50); rerunning resumes up to this")
    s.add_argument("--trial", type=int, help="rerun this search trial instead of the best one")
    s.add_argument("--storage", help="Optuna storage URL (default as for `bench study`)")
    s.add_argument("--device", help="'cpu', 'cuda' or 'cuda:N' (default: the study file's [train] device)")
    s.set_defaults(fn=cmd_seeds)

    s = sub.add_parser("audit", help="verify a study's records (seals, checksums, manifests) and rerun chosen trials; exit 1 on any failure")
    s.add_argument("study", help=STUDY_HELP)
    s.add_argument("--trials", default="best", help="'best' (per variant, the default), 'all', or trial numbers such as 0,3")
    s.add_argument("--reruns", type=int, default=1, help="reruns per trial (0: verify the records only) [1]")
    s.add_argument("--tolerance", type=float, default=1e-6, help="tolerance for every logged number of a rerun, relative (absolute below 1) [1e-6]")
    s.add_argument("--variant", help="comma-separated variants (default: every variant in the storage)")
    s.add_argument("--phase", choices=["search", "seeds"], default="search", help="the search trials, or the seed reruns of `bench seeds`")
    s.add_argument("--strict", action="store_true", help="environment drift (versions, device, commit) fails the audit too")
    s.add_argument("--storage", help="Optuna storage URL (default as for `bench study`)")
    s.add_argument("--device", help="device for the reruns (default: the recorded config's [train] device)")
    s.set_defaults(fn=cmd_audit)

    s = sub.add_parser("export", help="write a study (its Optuna studies and trial folders) to a checksummed archive")
    s.add_argument("study", help=STUDY_HELP)
    s.add_argument("archive", help="the archive to write (.tar.gz); ARCHIVE.sha256 is written beside it")
    s.add_argument("--storage", help="Optuna storage URL to export from (default as for `bench study`)")
    s.set_defaults(fn=cmd_export)

    s = sub.add_parser("import", help="bring an exported study into this results folder and a storage, verifying every checksum")
    s.add_argument("archive", help="an archive written by `bench export`")
    s.add_argument("--storage", help="Optuna storage URL to import into (default: $BENCH_STORAGE or results/<study>/optuna.db)")
    s.set_defaults(fn=cmd_import)

    s = sub.add_parser("dashboard", help="open optuna-dashboard on a study's storage")
    s.add_argument("study", help="study name or .toml path, a results folder, or a storage URL")
    s.add_argument("--storage", help="Optuna storage URL (default as for `bench study`)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    s.set_defaults(fn=cmd_dashboard)

    s = sub.add_parser("probe", help="each variant's best checkpoint: the objective over K evaluation seeds (sampling spread) and a memorization check; `bench report` shows them")
    s.add_argument("study", help=STUDY_HELP)
    s.add_argument("--variant", default="all", help="variant name, or 'all' (default) for every variant listed in the study file")
    s.add_argument("--z-seeds", type=int, default=5, help="evaluation seeds (the study's own first) [5]")
    s.add_argument("--samples", type=int, default=0, help="generated samples for the memorization check (default: the objective's count)")
    s.add_argument("--storage", help="Optuna storage URL (default as for `bench study`)")
    s.add_argument("--device", help="'cpu', 'cuda' or 'cuda:N' (default: the study file's [train] device)")
    s.set_defaults(fn=cmd_probe)

    s = sub.add_parser("sample", help="write N generated samples of a trial's checkpoint (best by default) to a folder: PNGs, or points.csv/.npy for 2-D data")
    s.add_argument("study", help=STUDY_HELP)
    s.add_argument("--variant", required=True, help="the variant whose trial to sample")
    s.add_argument("--trial", type=int, help="trial number (default: the variant's best trial)")
    s.add_argument("--step", type=int, help="checkpoint step (default: the trial's best step; the EMA copy where [train] g_ema > 0)")
    s.add_argument("--n", type=_positive_int, default=1000, help="how many samples [1000]")
    s.add_argument("--seed", type=int, help="draw z from this seed (default: the study's fixed evaluation z, [eval] seed)")
    s.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder")
    s.add_argument("--storage", help="Optuna storage URL (default as for `bench study`)")
    s.add_argument("--device", help="'cpu', 'cuda' or 'cuda:N' (default: the study file's [train] device)")
    s.set_defaults(fn=cmd_sample)

    s = sub.add_parser("eval", help="compute metrics on a study's saved checkpoints without retraining; appends records, never overwrites")
    s.add_argument("study", help=STUDY_HELP)
    s.add_argument("--variant", help="comma-separated variants (default: every variant with trial folders)")
    s.add_argument("--metrics", nargs="+", metavar="METRIC", help="metrics to compute (default: the study file's [eval] metrics); see `bench list`")
    s.add_argument("--again", action="store_true", help="append a new record even where the metric was already logged for that step")
    s.add_argument("--device", help="'cpu', 'cuda' or 'cuda:N' (default: the study file's [train] device)")
    s.set_defaults(fn=cmd_eval)

    s = sub.add_parser("fid", help="FID between two image folders or saved statistics (.npz with mu, sigma)")
    s.add_argument("a", help="a folder of png/jpg images or a .npz of statistics")
    s.add_argument("b", help="a folder of png/jpg images or a .npz of statistics")
    s.add_argument("--features", default="inception", help="a registered feature extractor (`bench list`): 'inception' (torch-fidelity's inception-v3-compat pool3, the default), 'lenet-digits5k', ...")
    s.add_argument("--weights", help="Inception weights file (default: $BENCH_INCEPTION_WEIGHTS, else torch-fidelity's download)")
    s.add_argument("--save-stats", metavar="NPZ", help="write A's statistics (mu, sigma, provenance) to this .npz for reuse")
    s.add_argument("--batch-size", type=int, default=200, help="feature-extraction batch size [200]")
    s.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda' or 'cuda:N' [auto]")
    s.set_defaults(fn=cmd_fid)
    return p


# Commands that never touch Optuna: configure() leaves it unimported, so they stay fast (issue 18).
_OPTUNA_FREE = ("list", "fetch", "figure", "fid")


class _Streams(logging.Handler):
    """The harness's messages: progress and notes (INFO, DEBUG) on stdout, where they always were,
    warnings and errors on stderr. The stream is looked up at each message, so a caller that swaps
    sys.stdout (pytest's capture, a notebook) sees them."""

    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
        try:
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # a closed pipe must not turn a message into a second error
            self.handleError(record)


def configure_logging(verbose: int = 0, quiet: int = 0) -> None:
    """Messages of every `bench.*` logger through one handler, at the level -v/-q ask for: INFO by
    default, DEBUG with -v; -q keeps warnings and errors, -qq errors only (an error is never hidden)."""
    level = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO}.get(max(-2, min(verbose, 1) - quiet), logging.DEBUG)
    logger = logging.getLogger("bench")
    for h in [h for h in logger.handlers if isinstance(h, _Streams)]:
        logger.removeHandler(h)  # main() may run many times in one process (tests)
    handler = _Streams()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def configure(command: str, results: str | None, debug: bool, verbose: int = 0, quiet: int = 0) -> None:
    """The process-wide settings of one command, made once, here, before it runs; no module of the
    package sets any when imported (issue 13, point 5).

    `results`: the results folder, as $BENCH_RESULTS (what records.results_root reads, and what the
    worker processes of `bench study --workers N` inherit). `debug`: Optuna's own warnings (a failed
    trial's traceback) shown; otherwise only its errors, since the harness records failed and given-back
    trials itself and reports each in one line."""
    configure_logging(verbose, quiet)
    if results:
        os.environ["BENCH_RESULTS"] = results
    if command not in _OPTUNA_FREE:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING if debug else optuna.logging.ERROR)


def _results_of_folder(args: argparse.Namespace) -> None:
    """A study given by its results folder (`bench status results/quick`, `elsewhere/quick`): the
    folder's parent is the results root of this command, so every path the study's records name
    (records.study_dir) is found there; a --results naming another root is a contradiction."""
    study = getattr(args, "study", None)
    if not study or "://" in study or study.endswith(".toml"):
        return
    from bench.config import is_results_folder

    if not is_results_folder(study):
        return
    root = Path(study).resolve().parent
    if args.results and Path(args.results).resolve() != root:
        raise ConfigError(f"{study} is a results folder under {root}, but --results is {args.results}; "
                          "pass one of them (the folder alone is enough)")
    os.environ["BENCH_RESULTS"] = str(root)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure(args.command, args.results, args.debug, args.verbose or 0, args.quiet or 0)
    try:
        _results_of_folder(args)
        return args.fn(args)
    except KeyboardInterrupt:
        log.error("bench: interrupted; run the same command again to resume")
        return 130
    except Exception as e:
        if args.debug:
            traceback.print_exc()
        log.error(f"bench: error: {_one_line(e)}")
        return e.exit_code if isinstance(e, HarnessError) else 1


def _one_line(e: Exception) -> str:
    """The message of an error: ours as written; an OS error with its file; anything else is a bug."""
    if isinstance(e, HarnessError):
        return str(e)
    if isinstance(e, OSError) and e.strerror:
        where = f"{e.filename}" + (f" -> {e.filename2}" if e.filename2 else "")
        return f"{where or 'the system'}: {e.strerror}; check the folder's permissions and free space"
    text = " ".join(str(e).split()) or "(no message)"
    return f"unexpected {type(e).__name__}: {text} (a bug; rerun with --debug for the traceback)"


if __name__ == "__main__":
    sys.exit(main())
