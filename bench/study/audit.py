"""`bench audit`: take a study's records at their word only after checking them, and rerun trials.

For every chosen trial the audit (1) checks the manifest's seal and config hash, (2) verifies every
stored file against the sha256 the manifest recorded when the trial ended, and every byte appended
to the metrics log since against the manifest's append seals (`bench eval` seals what it appends;
bytes no seal explains, or a seal that does not match its bytes, fail; records.check_appends), (3) checks the storage's outcome and
value against the metrics log, (4) compares the manifest with one made here from config.json and
names every difference, failing on identity fields (config, seeds, data fingerprint, metric
protocol, extractor checksum) and reporting environment drift (versions, device, commit), and
(5) reruns the trial K times from config.json into `audit/scratch/` and compares every logged
number within a relative tolerance, the sealed `bench eval` values included (recomputed from the
rerun's own checkpoints). Results go to `results/<study>/audit/audit.{md,json}`
(layout in records.py); the exit code is 1 when anything fails (with --strict, drift too).

Reruns follow the paper's own reading of a run (Lucic et al. 2018): the same configuration and
seed must give the same best-over-checkpoints FID; PROTOCOL.md's "best" is what the storage holds.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import optuna

from bench import records, storage
from bench.config import NAME_RE, load_study, parse_study
from bench.errors import ConfigError, HarnessError
from bench.trial import manifest

_log = logging.getLogger(__name__)

PHASES = {  # phase -> (Optuna study-name suffix, trial folder)
    "search": ("", records.trial_dir),
    "seeds": (":seeds", records.seed_trial_dir),
}
NOT_COMPARED = ("kind", "step", "seconds")  # fields of a log record that are not results
SHOWN = 10  # findings per trial and kind printed; audit.md lists up to MD_SHOWN, audit.json all
MD_SHOWN = 200


@dataclass
class TrialRef:
    variant: str
    number: int
    phase: str
    state: str  # Optuna state, lower case
    outcome: str | None  # the runner's outcome attribute (complete, diverged, pruned, failed)
    value: float | None
    folder: Path


@dataclass
class Check:
    field: str
    status: str  # "fail" or "drift"
    message: str


@dataclass
class TrialAudit:
    ref: TrialRef
    checks: list[Check] = field(default_factory=list)
    reruns: list[dict[str, Any]] = field(default_factory=list)
    files_verified: int = 0
    sealed: list[records.Append] = field(default_factory=list)  # the metrics log's appends that match their seals

    def fail(self, fld: str, message: str) -> None:
        self.checks.append(Check(fld, "fail", message))

    def drift(self, fld: str, message: str) -> None:
        self.checks.append(Check(fld, "drift", message))

    @property
    def verdict(self) -> str:
        return "fail" if any(c.status == "fail" for c in self.checks) else "pass"

    @property
    def label(self) -> str:
        return f"{self.ref.variant} trial {self.ref.number}" + ("" if self.ref.phase == "search" else f" ({self.ref.phase})")


class _StopRerun(Exception):
    """Ends a rerun of a pruned trial at the step where the original was pruned."""


# ---------------------------------------------------------------- which study, which trials

def resolve_study(study: str, storage_url: str | None) -> tuple[str, str]:
    """(name, storage URL) from a study file or name; a study known only by its results folder
    (e.g. one brought in by `bench import`) works too."""
    try:
        cfg = load_study(study)
        return cfg.name, storage.resolve_url(cfg, storage_url)
    except ConfigError:
        if study.endswith(".toml") or not NAME_RE.match(study) or not records.study_dir(study).is_dir():
            raise
    return study, storage.url_of(study, storage_url)


def select(name: str, url: str, phase: str, trials: str, variants: list[str] | None) -> list[TrialRef]:
    suffix, folder_of = PHASES[phase]
    st = storage.open_storage(url, heartbeat=False)
    found = {}
    for sname in storage.study_names(st):
        head, _, rest = sname.partition(":")
        if head != name or not rest.endswith(suffix) or ":" in rest[: len(rest) - len(suffix)]:
            continue
        variant = rest[: len(rest) - len(suffix)] if suffix else rest
        if variant and (variants is None or variant in variants):
            found[variant] = sname
    if not found:
        raise HarnessError(f"storage {storage.mask(url)} holds no {phase} study of {name!r}"
                           + (f" for variant(s) {', '.join(variants)}" if variants else "")
                           + ("; run `bench seeds` first" if phase == "seeds" else ""))
    if trials not in ("best", "all"):
        try:
            wanted = {int(x) for x in trials.split(",") if x.strip()}
        except ValueError:
            raise ConfigError(f"--trials {trials!r}: expected 'best', 'all' or trial numbers such as 0,3") from None
    refs = []
    for variant, sname in sorted(found.items()):
        S = optuna.trial.TrialState
        done = [t for t in optuna.load_study(study_name=sname, storage=st).get_trials(deepcopy=False)
                if t.state not in (S.WAITING, S.RUNNING)]
        if trials == "best":
            scored = [t for t in done if t.state == S.COMPLETE and t.value is not None and math.isfinite(t.value)]
            done = [min(scored, key=lambda t: (t.value, t.number))] if scored else []
        elif trials != "all":
            done = [t for t in done if t.number in wanted]
        for t in done:
            refs.append(TrialRef(variant, t.number, phase, t.state.name.lower(), t.user_attrs.get("outcome"), t.value,
                                 folder_of(name, variant, t.number)))
    if not refs:
        raise ConfigError(f"--trials {trials}: no finished {phase} trial of study {name!r} matches")
    return refs


# ---------------------------------------------------------------- checks of one trial

def check_appends(a: TrialAudit, path: Path, recorded: int, appends: list[dict[str, Any]]) -> None:
    """The metrics log past its recorded size: every appended byte explained by a seal that matches it."""
    found = records.check_appends(path.read_bytes(), recorded, appends, path)
    a.sealed = found.sealed
    for line in found.unexplained:
        a.fail("files.metrics.jsonl", line)
    if found.torn:
        a.drift("files.metrics.jsonl", f"{found.torn} bytes of an unfinished last line (a write that never ended; no reader reads it)")


def check_files(a: TrialAudit, recorded: dict[str, dict[str, Any]], appends: list[dict[str, Any]] = ()) -> None:
    tdir = a.ref.folder
    for rel, rec in sorted(recorded.items()):
        path = tdir / rel
        if not path.is_file():
            a.fail(f"files.{rel}", "recorded in the manifest, missing from the trial folder")
            continue
        size = path.stat().st_size
        if rel == records.METRICS_LOG and size >= rec["bytes"] and manifest.sha256_file(path, rec["bytes"]) == rec["sha256"]:
            a.files_verified += 1
            check_appends(a, path, rec["bytes"], appends)
        elif size == rec["bytes"] and manifest.sha256_file(path) == rec["sha256"]:
            a.files_verified += 1
        elif size > rec["bytes"] and manifest.sha256_file(path, rec["bytes"]) == rec["sha256"]:
            a.files_verified += 1
            a.drift(f"files.{rel}", f"{size - rec['bytes']} bytes appended after the trial ended (the recorded part is intact)")
        else:
            a.fail(f"files.{rel}", f"sha256 differs from the manifest (recorded {rec['sha256'][:12]}…, "
                                   f"{rec['bytes']} bytes; found {manifest.sha256_file(path)[:12]}…, {size} bytes)")
    for rel in manifest.trial_files(tdir):
        if rel not in recorded:
            a.drift(f"files.{rel}", "in the trial folder but not in the manifest (added after the trial ended)")


def recorded_log(tdir: Path, files: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The metrics log as it was when the trial ended (its recorded prefix)."""
    path = records.metrics_path(tdir)
    if not path.is_file():
        return []
    data = path.read_bytes()
    n = files.get(records.METRICS_LOG, {}).get("bytes", len(data))
    return list(records.parse_jsonl(data[:n], path))  # a damaged line raises HarnessError naming it (issue #10)


def best_of(log: list[dict[str, Any]], objective: str) -> float:
    vals = [float(r[objective]) for r in log if r.get("kind") == "eval" and objective in r]
    finite = [v for v in vals if math.isfinite(v)]
    return min(finite) if finite else math.inf


def rel_diff(a: Any, b: Any) -> float:
    """|a - b| relative to the larger magnitude, absolute below 1 (loss terms near 0 are not all noise)."""
    a, b = float(a), float(b)
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / max(abs(a), abs(b), 1.0)


def compare_logs(recorded: list[dict[str, Any]], rerun: list[dict[str, Any]], tolerance: float,
                 until: int | None) -> tuple[list[Check], float, int]:
    """Every logged number of the original against the rerun: (failures, largest relative difference, numbers compared)."""
    mine = {(r["kind"], r["step"]): r for r in rerun if r.get("kind") in ("train", "eval")}
    fails, worst, n = [], 0.0, 0
    for r in recorded:
        if r.get("kind") not in ("train", "eval") or (until is not None and r["step"] > until):
            continue
        other = mine.get((r["kind"], r["step"]))
        where = f"metrics.jsonl[{r['kind']} step {r['step']}]"
        if other is None:
            fails.append(Check(where, "fail", "the rerun has no such record (it stopped or diverged earlier)"))
            continue
        for key, value in r.items():
            if key in NOT_COMPARED or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            d = _against_rerun(fails, f"{where}.{key}", "recorded", value, other.get(key), tolerance)
            n += 1
            worst = max(worst, d)
    return fails, worst, n


def _against_rerun(fails: list[Check], where: str, what: str, value: float, rerun: Any, tolerance: float) -> float:
    """The relative difference of one logged number and its rerun; a failure appended above `tolerance`."""
    d = rel_diff(value, math.nan if rerun is None else rerun)
    if d > tolerance:
        fails.append(Check(where, "fail", f"{what} {value!r}, rerun {rerun!r} (relative difference {d:.3g} > tolerance {tolerance:g})"))
    return d


def recompute_sealed(sealed: list[records.Append], cfg: Any, variant: str, sdir: Path, device: Any,
                     tolerance: float) -> tuple[list[Check], float, int]:
    """Every sealed `bench eval` value recomputed from the rerun's checkpoint of its step, with the
    z and generator mode its seal names: (failures, largest relative difference, numbers compared)."""
    from bench import data as data_mod
    from bench.trial import reeval
    from bench.trial.train import fixed_z, metric_context

    fails, worst, n = [], 0.0, 0
    ctxs: dict[tuple[Any, ...], Any] = {}
    for ap in sealed:
        s = ap.seal
        where = f"metrics.jsonl[{s.get('source') or 'append'} step {s.get('step')}]"
        ckpt = records.scored_checkpoint_path(sdir, int(s.get("step", -1)), cfg.train.g_ema)  # what the trial scored
        if not ckpt.is_file():
            fails.append(Check(where, "fail", "the rerun saved no checkpoint at this step to recompute the sealed evaluation from"))
            continue
        try:
            ecfg = cfg.replace("eval", seed=int(s.get("eval_seed", cfg.eval.seed)),
                               generator_mode=s.get("generator_mode", cfg.eval.generator_mode))
            key = (ecfg.eval.seed, ecfg.eval.generator_mode)
            if key not in ctxs:
                ctxs[key] = metric_context(ecfg, data_mod.load(cfg.data.dataset, data_mod.resolve_root(cfg.data.root)), device)
            z = fixed_z(int(s["z_samples"]), cfg.model.z_dim, ecfg.eval.seed, device)
            values = reeval.evaluate_checkpoint(ecfg, variant, ckpt, list(s["metrics"]), ctxs[key], z, device)
        except Exception as e:  # a metric unknown here, a seal without its z: a finding, not a crash
            fails.append(Check(where, "fail", f"cannot recompute the sealed evaluation: {type(e).__name__}: {e}"))
            continue
        for r in ap.records:
            for name in records.values_of(r):
                if not isinstance(r[name], (int, float)) or isinstance(r[name], bool):
                    fails.append(Check(f"{where}.{name}", "fail", f"sealed {r[name]!r} is not a number"))
                    continue
                d = _against_rerun(fails, f"{where}.{name}", "sealed", r[name], values.get(name), tolerance)
                n += 1
                worst = max(worst, d)
    return fails, worst, n


def audit_trial(ref: TrialRef, url: str, reruns: int, tolerance: float, device_spec: str | None, scratch: Path,
                log: Callable[[str], None]) -> TrialAudit:
    """Check one trial's records, compare its manifest with one made here, and rerun it `reruns` times."""
    a = TrialAudit(ref)
    stored = _check_records(a)
    if stored is None:
        return a
    rec, log_rec = stored
    if not records.config_path(ref.folder).is_file():
        a.fail("config.json", "missing: the trial cannot be rerun")
        return a
    made = _compare_with_manifest_made_here(a, rec, url, device_spec)
    if made is None:
        return a
    if ref.state == "fail" and reruns:
        log(f"  {a.label}: failed with an error when it ran; its records are verified, it is not rerun")
        reruns = 0
    until = None  # a pruned trial is rerun up to the step where it was pruned
    if ref.outcome == "pruned":
        until = max((r["step"] for r in log_rec if r.get("kind") == "eval"), default=0)
    for k in range(reruns):
        _rerun(a, k, made, rec, log_rec, until, tolerance, scratch, log)
    return a


def _check_records(a: TrialAudit) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The stored records against each other: manifest seal and config hash, file checksums and sealed
    appends, the storage's outcome and value against the metrics log. (manifest, recorded log), or
    None when there is nothing further to check."""
    ref, tdir = a.ref, a.ref.folder
    if ref.state == "fail" and ref.outcome != "failed":  # killed, interrupted, aborted or over budget: redone as another trial
        a.drift("state", f"the trial did not end ({ref.outcome or 'killed; stale'}) and was redone as another trial; "
                         "it holds no result to audit")
        return None
    if not tdir.is_dir():
        a.fail("folder", f"{tdir} does not exist")
        return None
    if not records.manifest_path(tdir).is_file():
        a.fail("manifest.json", "missing: the trial was made before manifests, or the file was removed")
        return None
    try:  # issue #10: a damaged record is a finding of the audit, not a crash
        rec = manifest.read(tdir)
    except HarnessError as e:
        a.fail("manifest.json", str(e))
        return None
    if not manifest.seal_ok(rec):
        a.fail("manifest.seal", "manifest.json was edited after the trial ended (its seal does not match its content)")
    if rec.get("config_sha256") != manifest.sha256_bytes(manifest.canonical(rec.get("config", {}))):
        a.fail("config_sha256", "does not match the recorded config")
    check_files(a, rec.get("files") or {}, list(rec.get("appends") or []))
    if rec.get("appends") and records.METRICS_LOG not in (rec.get("files") or {}):
        a.fail("appends", "the manifest seals appends to a metrics log it recorded no checksum of")
    if rec.get("files") is None:
        a.fail("files", "no checksums recorded: the trial never ended (killed?)")
    if ref.outcome is not None and rec.get("status") != ref.outcome:
        a.fail("status", f"manifest says {rec.get('status')!r}, the storage says {ref.outcome!r}")
    try:
        log_rec = recorded_log(tdir, rec.get("files") or {})
    except HarnessError as e:
        a.fail("metrics.jsonl", str(e))
        log_rec = []
    objective = rec.get("metrics", {}).get("objective")
    if ref.state == "complete" and objective and ref.value is not None and rel_diff(ref.value, best_of(log_rec, objective)) > 0:
        a.fail("storage.value", f"the storage holds {ref.value!r}, the metrics log's best {objective} is {best_of(log_rec, objective)!r}")
    return rec, log_rec


@dataclass
class _Rerunnable:
    """What a rerun needs, read back from config.json."""
    cfg: Any
    hp: dict[str, Any]
    seeds: dict[str, int]
    device: Any


def _compare_with_manifest_made_here(a: TrialAudit, rec: dict[str, Any], url: str, device_spec: str | None) -> _Rerunnable | None:
    """A manifest made here from config.json, compared with the recorded one: every difference is
    named, identity fields fail and the environment drifts. None when config.json cannot be read back."""
    from bench.study.status import optuna_study_name
    from bench.trial.train import resolve_device

    ref = a.ref
    cpath = records.config_path(ref.folder)
    try:
        cj = records.read_json(cpath)
        cfg = parse_study(cj["config"], str(cpath))
        hp, seeds = cj["hparams"], cj["seeds"]
        device = resolve_device(device_spec or cfg.train.device)
        suffix = PHASES[ref.phase][0]
        here = manifest.build(cfg, ref.variant, ref.number, hp, seeds, device, url, ref.phase,
                              optuna_study_name(cfg, ref.variant) + suffix)
    except (HarnessError, KeyError) as e:
        a.fail("config.json", f"cannot be read back: {type(e).__name__}: {e}")
        return None
    for d in manifest.compare(rec, here):
        (a.fail if d.kind == "identity" else a.drift)(d.field, d.text())
    return _Rerunnable(cfg, hp, seeds, device)


def _rerun(a: TrialAudit, k: int, made: _Rerunnable, rec: dict[str, Any], log_rec: list[dict[str, Any]], until: int | None,
           tolerance: float, scratch: Path, log: Callable[[str], None]) -> None:
    """Rerun k of the trial into scratch/: every logged number, every sealed evaluation, the outcome,
    the extractors and the checkpoints' checksums against the records."""
    from bench.gan.variants import VARIANTS
    from bench.trial.train import run_trial

    ref = a.ref
    sdir = records.audit_rerun_dir(scratch, ref.phase, ref.variant, ref.number, k)
    shutil.rmtree(sdir, ignore_errors=True)
    sdir.mkdir(parents=True)
    t0 = time.perf_counter()

    def stop(step: int, value: float) -> None:
        if until is not None and step >= until:
            raise _StopRerun()

    result, error = None, ""
    try:
        result = run_trial(made.cfg, VARIANTS[ref.variant], made.hp, made.seeds, sdir, made.device, stop)
    except _StopRerun:
        pass
    except Exception as e:  # the rerun failing is a finding, not a crash of the audit
        error = f"{type(e).__name__}: {e}"
    seconds = time.perf_counter() - t0
    new_log = list(records.read_jsonl(records.metrics_path(sdir))) if records.metrics_path(sdir).is_file() else []
    fails, worst, n = compare_logs(log_rec, new_log, tolerance, until)
    if a.sealed and not error:
        more, w2, n2 = recompute_sealed(a.sealed, made.cfg, ref.variant, sdir, made.device, tolerance)
        fails, worst, n = fails + more, max(worst, w2), n + n2
    info = {"index": k, "seconds": round(seconds, 2), "numbers_compared": n, "max_rel_diff": worst,
            "first_difference": fails[0].field if fails else None,
            "bit_identical": n > 0 and worst == 0.0 and not fails, "sealed_evaluations": len(a.sealed), "outcome": result.outcome if result else ("pruned" if until is not None and not error else "failed")}
    if error:
        a.fail(f"rerun {k}", f"raised {error}")
    for c in fails:
        a.checks.append(Check(f"rerun {k}: {c.field}", c.status, c.message))
    if result is not None:
        if ref.outcome in ("complete", "diverged") and result.outcome != ref.outcome:
            a.fail(f"rerun {k}: status", f"recorded {ref.outcome!r}, rerun {result.outcome!r} ({result.reason})")
        for d in manifest.compare({"metrics": {"extractors": rec.get("metrics", {}).get("extractors", {})}},
                                  {"metrics": {"extractors": manifest.extractors_of(result)}}):
            (a.fail if d.kind == "identity" else a.drift)(f"rerun {k}: {d.field}", d.text())
    ckpts = records.checkpoint_files(sdir)
    recorded_files = rec.get("files") or {}
    same = [manifest.sha256_file(p) == recorded_files.get(p.relative_to(sdir).as_posix(), {}).get("sha256") for p in ckpts]
    info["checkpoints_identical"] = f"{sum(same)}/{len(same)}"
    a.reruns.append(info)
    verdict = "bit-identical" if info["bit_identical"] else f"max relative difference {worst:.3g}"
    log(f"  {a.label}: rerun {k} {verdict} over {n} numbers, weights identical {info['checkpoints_identical']} ({seconds:.1f}s)"
        + (f"; first beyond tolerance: {fails[0].field}" if fails else ""))


# ---------------------------------------------------------------- the whole audit

def run_audit(study: str, trials: str = "best", reruns: int = 1, tolerance: float = 1e-6, variants: list[str] | None = None,
              phase: str = "search", storage_url: str | None = None, device: str | None = None, strict: bool = False,
              log: Callable[[str], None] = _log.info) -> tuple[dict[str, Any], Path]:
    if reruns < 0:
        raise ConfigError(f"--reruns {reruns}: expected 0 (verify records only) or more")
    if not (tolerance >= 0):
        raise ConfigError(f"--tolerance {tolerance}: expected a relative tolerance >= 0")
    name, url = resolve_study(study, storage_url)
    refs = select(name, url, phase, trials, variants)
    adir = records.audit_dir(name)
    scratch = adir / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    log(f"audit {name}: {len(refs)} {phase} trial(s) ({trials}), {reruns} rerun(s) each, tolerance {tolerance:g} (relative, absolute below 1)")
    audits = [audit_trial(r, url, reruns, tolerance, device, scratch, log) for r in refs]
    failures = [f"{a.label}: {c.field}: {c.message}" for a in audits for c in a.checks if c.status == "fail"]
    drift = [f"{a.label}: {c.field}: {c.message}" for a in audits for c in a.checks if c.status == "drift"]
    verdict = "fail" if failures or (strict and drift) else "pass"
    report = {
        "study": name, "when": manifest.now(), "storage_kind": storage.kind(url), "harness": manifest.harness_git(),
        "options": {"trials": trials, "reruns": reruns, "tolerance": tolerance, "phase": phase, "strict": strict,
                    "variants": variants, "device": device},
        "verdict": verdict, "failures": failures, "drift": drift,
        "trials": [{
            "variant": a.ref.variant, "trial": a.ref.number, "phase": a.ref.phase, "outcome": a.ref.outcome,
            "value": a.ref.value, "folder": str(a.ref.folder.relative_to(records.study_dir(name))),
            "verdict": a.verdict, "files_verified": a.files_verified, "sealed_appends": len(a.sealed), "reruns": a.reruns,
            "checks": [asdict(c) for c in a.checks],
        } for a in audits],
    }
    records.write_json(adir / "audit.json", report)
    records.atomic_write_bytes(adir / "audit.md", render_markdown(report).encode())
    for a in audits:
        n_drift = sum(c.status == "drift" for c in a.checks)
        n_fail = sum(c.status == "fail" for c in a.checks)
        log(f"  {a.label}: {a.verdict.upper()}, {a.files_verified} files verified"
            + (f", {len(a.sealed)} sealed appends" if a.sealed else "")
            + (f", {len(a.reruns)} rerun(s) max relative difference {max(r['max_rel_diff'] for r in a.reruns):.3g}" if a.reruns else "")
            + (f", {n_fail} failed checks" if n_fail else "") + (f", {n_drift} drift" if n_drift else ""))
        for status, word in (("drift", "drift"), ("fail", "FAIL")):
            lines = [c for c in a.checks if c.status == status]
            for c in lines[:SHOWN]:
                log(f"  {word}: {a.label}: {c.field}: {c.message}")
            if len(lines) > SHOWN:
                log(f"  {word}: {a.label}: ... and {len(lines) - SHOWN} more (audit.md, audit.json)")
    log(f"verdict: {verdict.upper()} ({sum(a.verdict == 'fail' for a in audits)} of {len(audits)} trials failed, "
        f"{len(drift)} drift) -> {adir / 'audit.md'}")
    return report, adir


def _fmt(v: Any) -> str:
    return "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def render_markdown(r: dict[str, Any]) -> str:
    o = r["options"]
    lines = [
        f"# Audit of study `{r['study']}`", "",
        f"- when: {r['when']}; harness commit {r['harness'].get('git_commit') or 'unknown'}"
        + (" (dirty)" if r["harness"].get("git_dirty") else "") + f"; storage kind {r['storage_kind']}",
        f"- trials: `{o['trials']}` ({o['phase']}), reruns per trial: {o['reruns']}, tolerance (relative, absolute below 1): {o['tolerance']:g}"
        + (", strict (drift fails)" if o["strict"] else ""),
        f"- verdict: **{r['verdict'].upper()}** ({len(r['failures'])} failures, {len(r['drift'])} drift)", "",
        "| variant | trial | outcome | value | files verified | reruns | max rel. diff | bit-identical | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in r["trials"]:
        rr = t["reruns"]
        lines.append(f"| {t['variant']} | {t['trial']} | {t['outcome'] or ''} | {_fmt(t['value'])} | {t['files_verified']} | {len(rr)} | "
                     f"{_fmt(max((x['max_rel_diff'] for x in rr), default=None))} | "
                     f"{'yes' if rr and all(x['bit_identical'] for x in rr) else ('no' if rr else '')} | **{t['verdict'].upper()}** |")
    for title, items in (("Failures", r["failures"]), ("Drift (environment differences; they fail only with --strict)", r["drift"])):
        lines += ["", f"## {title}", ""] + ([f"- {x}" for x in items[:MD_SHOWN]] or ["none"])
        if len(items) > MD_SHOWN:
            lines.append(f"- ... and {len(items) - MD_SHOWN} more in audit.json")
    return "\n".join(lines) + "\n"
