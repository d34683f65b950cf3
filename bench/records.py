"""The one place that knows the file layout of results, and how files are written.

    results/<study>/optuna.db                       embedded Optuna storage (SQLite)
    results/<study>/study.toml                      the study file, written by `bench import` when the archive had none
    results/<study>/summary.csv                     per-variant summary written after each run
    results/<study>/report/                         `bench report`: tables, figures, report.md/html/ipynb
    results/<study>/<variant>/trial-NNNN/config.json   resolved config, hyperparameters, seeds
    results/<study>/<variant>/trial-NNNN/metrics.jsonl append-only log: loss terms and evaluations
    results/<study>/<variant>/trial-NNNN/samples.png   final sample grid from the fixed evaluation z
    results/<study>/<variant>/trial-NNNN/checkpoints/g-SSSSSSS.pt  G weights at each evaluated step
    results/<study>/<variant>/trial-NNNN/checkpoints/ema-g-SSSSSSS.pt  G's moving average there ([train] g_ema > 0)
    results/<study>/<variant>/trial-NNNN/densities/density-SSSSSSS.npz  2-D data: generated points' histogram per checkpoint
    results/<study>/<variant>/trial-NNNN/manifest.json  how the trial was made, sealed, with file checksums
                                                    and a seal of every later append (`appends`)
    results/<study>/seeds/<variant>/trial-NNNN/     phase 3: the best configuration rerun with seed NNNN
    results/<study>/seeds/seeds.csv, summary.csv    one row per seed rerun; per-variant distribution
    results/<study>/audit/audit.md, audit.json      the last `bench audit`; audit/scratch/ holds its reruns
    results/<study>/tensorboard/<variant>/trial-NNNN/  [train] tensorboard: the trial's TensorBoard run (seeds/... for reruns)
    results/<study>/artifacts/                      Optuna's file-system artifact store: each trial's sample grid, for optuna-dashboard
    $BENCH_CACHE (default ~/.cache/bench)           feature extractors and reference statistics
    $BENCH_CACHE/datasets/<name>-<key><ext>          generated datasets (triangles), keyed by their recipe

Writes of whole files are atomic (temporary file + rename), so a crash never leaves half a file
that is read later; the metrics log is append-only JSON lines, and an append that fails part-way
(a full disk) is cut back to the last whole line, so the log always parses.

Sealed appends (issue 14, point 9): a finished trial's manifest records the size and sha256 of its
metrics log, and every later legitimate append (`bench eval`) adds an entry to the manifest's
`appends` list: the command, the step and metric names, the byte range (offset, bytes) and the
sha256 of the appended bytes. `sealed_log` reads a log as far as the manifest explains it, so a
record appended by hand (say, the last checkpoint again with a better FID) never reaches a report;
`check_appends` says what no seal explains, for `bench audit`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from bench.errors import ConfigError, HarnessError


def results_root() -> Path:
    return Path(os.environ.get("BENCH_RESULTS", "results"))


def cache_root() -> Path:
    return Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "bench"))


def dataset_cache_path(name: str, key: str, ext: str) -> Path:
    """Where a generated dataset is cached; `key` hashes everything that determines its content."""
    return cache_root() / "datasets" / f"{name}-{key}{ext}"


def study_dir(study: str, root: Path | None = None) -> Path:
    root = (root or results_root()).resolve()
    path = (root / study).resolve()
    if root not in path.parents:
        raise ConfigError(f"study name {study!r} would write outside {root}; use letters, digits, '_', '-', '.'")
    return path


def ensure_writable(folder: Path) -> Path:
    """Make `folder` (and parents) and prove a file can be written there, or fail in one clear line."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise HarnessError(f"results folder {folder} is not writable ({e.strerror}); "
                           "pass --results DIR or set $BENCH_RESULTS to a writable folder") from None
    return folder


def trial_dir(study: str, variant: str, number: int, root: Path | None = None) -> Path:
    return study_dir(study, root) / variant / trial_dir_name(number)


def trial_dir_name(number: int) -> str:
    return f"trial-{number:04d}"


def trial_dirs(study: str, variant: str, root: Path | None = None) -> list[Path]:
    """The search trial folders of a variant on this machine, by number (stale copies left out)."""
    vdir = study_dir(study, root) / variant
    return sorted(p for p in vdir.glob("trial-[0-9][0-9][0-9][0-9]") if p.is_dir())


def seeds_dir(study: str, root: Path | None = None) -> Path:
    """Phase 3 (seed reruns of a variant's best configuration), apart from the search trials."""
    return study_dir(study, root) / "seeds"


def seed_trial_dir(study: str, variant: str, number: int, root: Path | None = None) -> Path:
    return seeds_dir(study, root) / variant / trial_dir_name(number)


def seeds_rows_path(study: str, root: Path | None = None) -> Path:
    """Phase 3, one row per seed rerun (`bench seeds`)."""
    return seeds_dir(study, root) / "seeds.csv"


def seeds_summary_path(study: str, root: Path | None = None) -> Path:
    """Phase 3, per variant: the report's seed-rerun table."""
    return seeds_dir(study, root) / "summary.csv"


MANIFEST_FILE = "manifest.json"  # a trial's sealed manifest, outside its own file checksums


STUDY_FILE = "study.toml"  # in a study folder: its study file, written by `bench import` (archive.py)


def trial_config_files(sdir: Path) -> list[Path]:
    """Every trial's config.json in a study folder: search trials, then seed reruns, by path."""
    return sorted(sdir.glob(f"*/trial-*/{CONFIG_FILE}")) + sorted(sdir.glob(f"seeds/*/trial-*/{CONFIG_FILE}"))


def manifest_path(tdir: Path) -> Path:
    return tdir / MANIFEST_FILE


CONFIG_FILE = "config.json"


def config_path(tdir: Path) -> Path:
    """A trial's resolved config, hyperparameters and seeds."""
    return tdir / CONFIG_FILE


METRICS_LOG = "metrics.jsonl"  # a trial's append-only log, as the manifest's file checksums name it


def metrics_path(tdir: Path) -> Path:
    return tdir / METRICS_LOG


AUDIT_DIR = "audit"  # in a study folder: the last `bench audit` and its reruns (never exported)


def audit_dir(study: str, root: Path | None = None) -> Path:
    return study_dir(study, root) / AUDIT_DIR


def audit_rerun_dir(scratch: Path, phase: str, variant: str, number: int, k: int) -> Path:
    """Rerun k of a trial by `bench audit`, under audit/scratch/."""
    return scratch / phase / variant / trial_dir_name(number) / f"rerun-{k}"


TENSORBOARD_DIR = "tensorboard"  # in a study folder: one TensorBoard run per trial ([train] tensorboard)
ARTIFACTS_DIR = "artifacts"  # in a study folder: Optuna's FileSystemArtifactStore (sample grids for the dashboard)


def tensorboard_dir(study: str, root: Path | None = None) -> Path:
    """The study's TensorBoard log folder (`tensorboard --logdir` it; `make tensorboard`)."""
    return study_dir(study, root) / TENSORBOARD_DIR


def tensorboard_run_dir(study: str, tdir: Path, root: Path | None = None) -> Path | None:
    """A trial's TensorBoard run, mirroring its folder: tensorboard/<variant>/trial-NNNN, and
    tensorboard/seeds/<variant>/trial-NNNN for a seed rerun. None for a trial folder outside the
    study's layout (a dry run's calibration, an audit's rerun, a benchmark's scratch): those are not watched."""
    sdir = study_dir(study, root)
    try:
        rel = Path(tdir).resolve().relative_to(sdir)
    except ValueError:
        return None
    if rel.parts[:1] in ((AUDIT_DIR,), (TENSORBOARD_DIR,)) or not rel.name.startswith("trial-"):
        return None
    return tensorboard_dir(study, root) / rel


def artifacts_dir(study: str, root: Path | None = None) -> Path:
    return study_dir(study, root) / ARTIFACTS_DIR


def checkpoint_path(tdir: Path, step: int) -> Path:
    return tdir / "checkpoints" / f"g-{step:07d}.pt"


def ema_checkpoint_path(tdir: Path, step: int) -> Path:
    """G's exponential moving average at `step` ([train] g_ema > 0), beside G's own weights."""
    return tdir / "checkpoints" / f"ema-g-{step:07d}.pt"


def scored_checkpoint_path(tdir: Path, step: int, g_ema: float) -> Path:
    """The weights the trial's evaluation scored at `step`: the moving average where [train] g_ema > 0."""
    return ema_checkpoint_path(tdir, step) if g_ema > 0 else checkpoint_path(tdir, step)


def scored_checkpoints(tdir: Path, g_ema: float) -> list[tuple[int, Path]]:
    """(step, path) of every saved checkpoint the trial's evaluation scored, by step."""
    pattern = "ema-g-*.pt" if g_ema > 0 else "g-*.pt"
    return sorted((int(p.stem.rsplit("-", 1)[1]), p) for p in (tdir / "checkpoints").glob(pattern))


def density_path(tdir: Path, step: int) -> Path:
    """2-D data: the 2-D histogram of the generated points at checkpoint `step` (preview.density_npz)."""
    return tdir / "densities" / f"density-{step:07d}.npz"


def densities(tdir: Path) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint's density a 2-D trial left, by step."""
    folder = tdir / "densities"
    return sorted((int(p.stem.rsplit("-", 1)[1]), p) for p in folder.glob("density-*.npz")) if folder.is_dir() else []


def checkpoint_files(tdir: Path) -> list[Path]:
    """Every saved weights file of a trial (G's and its moving average's), by name."""
    folder = tdir / "checkpoints"
    return sorted(folder.glob("*.pt")) if folder.is_dir() else []


RESUME_FILE = "resume.pt"  # a trial's latest full training state (trial/resume.py): scratch, not checksummed or exported


def resume_path(tdir: Path) -> Path:
    return tdir / RESUME_FILE


def sample_grid_path(tdir: Path) -> Path:
    return tdir / "samples.png"


def figure_dir(name: str, root: Path | None = None) -> Path:
    """Where `bench figure NAME` writes by default: results/figures/NAME/."""
    return (root or results_root()) / "figures" / name


def probe_dir(study: str, root: Path | None = None) -> Path:
    """`bench probe`: per variant, the best checkpoint re-scored with several evaluation seeds and
    its memorization check (probe/<variant>.json, probe/<variant>-nearest.png)."""
    return study_dir(study, root) / "probe"


def probe_path(study: str, variant: str, root: Path | None = None) -> Path:
    return probe_dir(study, root) / f"{variant}.json"


def probe_image_path(study: str, variant: str, root: Path | None = None) -> Path:
    return probe_dir(study, root) / f"{variant}-nearest.png"


def report_dir(study: str, root: Path | None = None) -> Path:
    return study_dir(study, root) / "report"


STORAGE_FILE = "optuna.db"  # the embedded storage of a study folder (SQLite)


def storage_file(sdir: Path) -> Path:
    """The embedded storage in a study's results folder."""
    return sdir / STORAGE_FILE


def default_storage_url(study: str, root: Path | None = None) -> str:
    return f"sqlite:///{storage_file(study_dir(study, root))}"


def _jsonable(obj: Any) -> Any:
    """JSON without NaN/Infinity literals: non-finite floats become the strings 'nan', 'inf', '-inf'."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def from_json_number(v: Any) -> Any:
    return float(v) if v in ("nan", "inf", "-inf") else v


def _create_temporary(folder: Path, name: str) -> tuple[int, str]:
    """A new hidden file beside `name`, opened for writing. Made with mode 0666 so the process's
    umask applies, as for any file the user makes (mkstemp's 0600 would hide shared results)."""
    while True:
        tmp = str(folder / f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:  # a full disk names no file: name the one being written
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(_jsonable(obj), indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> Any:
    """A JSON record; a damaged one (edited, or cut by a copy) fails naming the file (exit 1)."""
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HarnessError(f"{path}: not valid JSON ({e}); the file was edited or damaged, restore it from a copy") from None


def append_jsonl(path: Path, record: dict[str, Any]) -> tuple[int, bytes]:
    """Append one record as a single line; returns (offset of the line, the line's bytes). A torn
    last line left by a crash is cut off first, and an append that fails part-way (a full disk) is
    cut back, so every line of the log stays whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(_jsonable(record), sort_keys=True) + "\n").encode()
    with open(path, "ab+") as f:
        end = f.seek(0, os.SEEK_END)
        start = _last_line_end(f, end)
        if start != end:
            f.truncate(start)
        try:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        except BaseException as e:
            f.truncate(start)
            if isinstance(e, OSError) and e.filename is None:
                raise OSError(e.errno, e.strerror, str(path)) from e
            raise
    return start, line


def _last_line_end(f: Any, end: int) -> int:
    """Offset just after the last newline of an open file (0 if none)."""
    pos = end
    while pos > 0:
        step = min(4096, pos)
        f.seek(pos - step)
        chunk = f.read(step)
        i = chunk.rfind(b"\n")
        if i >= 0:
            return pos - step + i + 1
        pos -= step
    return 0


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a metrics log; a torn last line (a crash mid-write) is skipped, others must parse."""
    return parse_jsonl(path.read_bytes(), path)


def parse_jsonl(data: bytes, path: Path) -> Iterator[dict[str, Any]]:
    """Records of the bytes of a metrics log (or a recorded prefix of one), as read_jsonl reads them."""
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            if i == len(lines) - 1:  # no newline after it: the write never finished
                return
            raise HarnessError(f"{path}: line {i + 1} is not a JSON record; the log was edited or damaged "
                               "(restore it, or remove that line)") from None
        if not isinstance(rec, dict):
            raise HarnessError(f"{path}: line {i + 1} is not a JSON object")
        yield {k: from_json_number(v) for k, v in rec.items()}


def load_arrays(path: Path) -> dict[str, Any]:
    """Every array of a .npz written by the harness (cached statistics), never unpickling an
    object array; a truncated or foreign file fails naming the file (exit 1)."""
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise HarnessError(f"{path}: no such file") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HarnessError(f"{path}: not a loadable .npz of arrays (truncated, corrupted, or holding objects: {first[:160]}); "
                           "delete it to recompute, or restore it from a copy") from None


def load_weights(path: Path, map_location: Any = "cpu") -> Any:
    """A tensor state dict saved by the harness, loaded safely: `weights_only=True` never runs code
    from the file; a truncated, corrupted or foreign file fails naming the file (exit 1)."""
    import pickle
    import zipfile

    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise HarnessError(f"{path}: no such checkpoint") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HarnessError(f"{path}: not a loadable weights file (truncated, corrupted, or holding code: {first[:160]}); "
                           "delete it to recompute, or restore it from a copy") from None


# ---------------------------------------------------------------- seals: what a trial's records are held to

def canonical(obj: Any) -> bytes:
    """The JSON a seal covers: keys sorted, no spaces, non-finite floats as strings."""
    return json.dumps(_jsonable(obj), sort_keys=True, separators=(",", ":")).encode()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def seal_ok(m: dict[str, Any]) -> bool:
    """Whether a manifest's `seal` is the sha256 of the rest of it (no edit since it was sealed)."""
    return m.get("seal") == sha256_bytes(canonical({k: v for k, v in m.items() if k != "seal"}))


@dataclass
class Append:
    """One sealed append that matches its bytes: the manifest's entry and the records it holds."""
    seal: dict[str, Any]
    records: list[dict[str, Any]]


@dataclass
class AppendCheck:
    sealed: list[Append] = field(default_factory=list)  # appends whose bytes match their seal, in log order
    unexplained: list[str] = field(default_factory=list)  # one line per range of bytes no seal explains, or seal that fails
    torn: int = 0  # bytes of an unfinished last line after everything sealed (no reader reads them)


NOT_VALUES = ("kind", "step", "source", "seconds", "extractors")  # fields of an eval record that are not metric values


def values_of(record: dict[str, Any]) -> list[str]:
    """The metric-value keys of an eval record: each metric's name and its `<name>_<part>` extras."""
    return [k for k in record if k not in NOT_VALUES]


def _of_metrics(key: str, names: set[str]) -> bool:
    return key in names or any(key.startswith(n + "_") for n in names)


def _seal_label(i: int, s: dict[str, Any]) -> str:
    return f"append seal {i} ({s.get('command') or s.get('source') or 'unnamed'}, step {s.get('step')})"


def check_appends(data: bytes, recorded: int, appends: list[dict[str, Any]], path: Path) -> AppendCheck:
    """Hold the bytes of a metrics log after its recorded size (`recorded`, the size when the trial
    ended) to the manifest's append seals: each seal must start where the log stood, cover bytes
    that are there, match their sha256, and hold whole eval records of its step and metrics. Every
    byte after `recorded` that no good seal covers is named (an unfinished last line apart)."""
    out = AppendCheck()
    pos, size = recorded, len(data)
    for i, s in sorted(enumerate(appends), key=lambda x: (x[1].get("offset", -1) if isinstance(x[1], dict) else -1, x[0])):
        if not isinstance(s, dict) or not all(isinstance(s.get(k), int) for k in ("offset", "bytes")) or s["bytes"] <= 0:
            out.unexplained.append(f"append seal {i} has no byte range (offset, bytes)")
            continue
        label, off, end = _seal_label(i, s), s["offset"], s["offset"] + s["bytes"]
        if off < pos:
            out.unexplained.append(f"{label} covers bytes {off}..{end}, which overlap the trial's own log or another seal")
            continue
        if off > pos:
            out.unexplained.append(f"{off - pos} bytes appended after the trial ended (bytes {pos}..{off}) that no seal explains")
        if end > size:
            out.unexplained.append(f"{label} covers bytes {off}..{end}, the log has only {size}: sealed records were removed")
            pos = max(pos, min(off, size))
            continue
        chunk = data[off:end]
        pos = end
        if sha256_bytes(chunk) != s.get("sha256"):
            out.unexplained.append(f"{label}: bytes {off}..{end} do not match the seal (sha256 recorded "
                                   f"{str(s.get('sha256'))[:12]}…, found {sha256_bytes(chunk)[:12]}…)")
            continue
        try:
            recs = list(parse_jsonl(chunk + (b"" if chunk.endswith(b"\n") else b"\n"), path))
        except HarnessError:
            recs = []
        names = set(s.get("metrics") or [])
        wrong = [r for r in recs if r.get("kind") != "eval" or r.get("step") != s.get("step")
                 or not all(_of_metrics(k, names) for k in values_of(r))]
        if not recs or wrong or not chunk.endswith(b"\n"):
            out.unexplained.append(f"{label}: bytes {off}..{end} are not whole eval records of step {s.get('step')} "
                                   f"and metrics {', '.join(sorted(names)) or '(none)'}")
            continue
        out.sealed.append(Append(s, recs))
    if pos < size:
        if b"\n" in data[pos:]:
            out.unexplained.append(f"{size - pos} bytes appended after the trial ended (bytes {pos}..{size}) that no seal explains")
        else:
            out.torn = size - pos
    return out


@dataclass
class SealedLog:
    records: list[dict[str, Any]]  # the records a report may read, in log order
    unexplained: list[str]  # why some of the log was left out, one line each (empty: nothing was)


def sealed_log(tdir: Path) -> SealedLog:
    """The records of a trial's metrics log that its manifest vouches for: the log as it stood when
    the trial ended (size and sha256 in the manifest's `files`) and every append whose seal matches
    its bytes. A log that no longer matches its recorded part, or a manifest edited after it was
    sealed, vouches for nothing (no records). A trial still running (no checksums yet) and a folder
    from before manifests have nothing to hold their log to: it is read whole (`bench audit`
    fails the latter)."""
    path = tdir / "metrics.jsonl"
    if not path.is_file():
        return SealedLog([], [])
    data = path.read_bytes()
    mpath = manifest_path(tdir)
    if not mpath.is_file():
        return SealedLog(list(parse_jsonl(data, path)), [])
    m = read_json(mpath)
    if m.get("files") is None and seal_ok(m):
        return SealedLog(list(parse_jsonl(data, path)), [])
    if not seal_ok(m):
        return SealedLog([], [f"{mpath}: edited after the trial ended (its seal does not match); its log is not read"])
    rec = m["files"].get("metrics.jsonl") or {"bytes": 0, "sha256": sha256_bytes(b"")}
    n = rec.get("bytes")
    if not isinstance(n, int) or len(data) < n or sha256_bytes(data[:n]) != rec.get("sha256"):
        return SealedLog([], [f"{path}: differs from the log recorded when the trial ended; it is not read"])
    check = check_appends(data, n, list(m.get("appends") or []), path)
    out = list(parse_jsonl(data[:n], path))
    for a in check.sealed:
        out += a.records
    return SealedLog(out, [f"{path}: {x}" for x in check.unexplained])


def sealed_records(tdir: Path) -> list[dict[str, Any]]:
    """The records of a trial's metrics log that its manifest vouches for (see sealed_log)."""
    return sealed_log(tdir).records
