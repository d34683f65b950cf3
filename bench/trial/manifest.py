"""Trial manifests and deterministic mode: how every number was made, written beside it.

A manifest (`<trial>/manifest.json`, layout in records.py) records the resolved config and its
hash, every seed, the Python, package, torch, CUDA and cuDNN versions, the device, the harness's
git commit and dirty flag, the dataset's fingerprint, the metric protocol with the
feature-extractor checksum, and the storage kind (never its URL or credentials). `begin` writes it
when a trial starts; `finish` adds the outcome and the sha256 and size of every file of the trial
(metrics log, samples, checkpoints, config.json) when it ends. It is sealed: `seal` is the sha256
of its canonical JSON, so an edit after the trial is detected by `bench audit` (audit.py), which
names the field by comparing with a manifest made here (`build`) and classifies it (`compare`).
An append to a finished trial's metrics log (`bench eval`) goes through `append_sealed`, which
records the append's command, step, metrics, byte range and sha256 under `appends` and re-seals;
records.sealed_log reads only what the seals explain, and the audit fails on anything else.

Deterministic mode follows PyTorch's reproducibility notes (docs: notes/randomness.html):
`torch.use_deterministic_algorithms(True)`, cuDNN deterministic without autotuning, and
`CUBLAS_WORKSPACE_CONFIG=:4096:8`; seeds are set for python, numpy and torch (all devices) in
every mode. Recording resolved options and environment beside results follows
NVlabs/stylegan2-ada-pytorch (STYLE.md, item 7).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import importlib.metadata
import json
import os
import platform
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from bench import records, storage
from bench.config import NEUTRAL_WHEN_ABSENT, OBSERVATION_ONLY
from bench.errors import HarnessError
from bench.trial import speed

SCHEMA = "bench-manifest/1"
# Packages whose versions can change a number (or the reading of one); the harness itself last.
PACKAGES = ("torch", "torchvision", "numpy", "scipy", "torch-fidelity", "optuna", "pandas", "mlxtend", "sqlalchemy", "gan-bench")
CUBLAS_WORKSPACE = ":4096:8"  # PyTorch's documented setting for deterministic cuBLAS (CUDA >= 10.2)

# How `compare` reads a difference between a recorded manifest and one made here. Identity fields
# define what was computed (a difference fails an audit); ignored fields differ by nature
# (times, the seal and checksums, checked on their own); everything else is environment drift.
IDENTITY = ("config.", "seeds.", "data.dataset", "data.fingerprint", "data.train_shape", "data.test_shape",
            "metrics.", "determinism.deterministic", "study", "variant", "trial", "phase")
IGNORED = ("schema", "started", "finished", "seal", "files", "appends", "status", "config_sha256", "data.source",
           *(f"config.study.{section}.{key}" for section, key in OBSERVATION_ONLY))  # watching only: any value, or none


# ---------------------------------------------------------------- seeding and deterministic mode

def seed_everything(seeds: Mapping[str, int], deterministic: bool) -> None:
    """Seed python, numpy and torch (every device) from a trial's seeds; set deterministic mode."""
    random.seed(seeds["python"])
    np.random.seed(seeds["numpy"] % 2**32)
    torch.manual_seed(seeds["torch"])
    set_deterministic(deterministic)


def set_deterministic(on: bool) -> None:
    """Deterministic kernels on or off for this process (a trial sets the study's choice each time).

    cuBLAS reads CUBLAS_WORKSPACE_CONFIG when its first handle is made, so a process that ran
    CUDA matrix products before turning this on keeps its workspace; `bench` sets it before any.
    """
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.deterministic = on
    if on:
        torch.backends.cudnn.benchmark = False  # the autotuner may pick different kernels per run


def determinism_state(deterministic: bool) -> dict[str, Any]:
    return {
        "deterministic": deterministic,
        "use_deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "torch_num_threads": torch.get_num_threads(),
    }


# ---------------------------------------------------------------- the environment

def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def software() -> dict[str, Any]:
    return {
        "python": platform.python_version(), "implementation": platform.python_implementation(),
        "platform": platform.platform(), "packages": {p: _version(p) for p in PACKAGES},
    }


def torch_info() -> dict[str, Any]:
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"version": torch.__version__, "git_version": torch.version.git_version, "cuda": torch.version.cuda,
            "cudnn": cudnn, "hip": torch.version.hip}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return {"type": "cuda", "name": props.name, "capability": f"{props.major}.{props.minor}",
                "memory_gib": round(props.total_memory / 2**30, 1)}
    return {"type": device.type, "name": _cpu_name(), "cpu_count": os.cpu_count()}


def environment(device: torch.device) -> dict[str, Any]:
    """The environment in short, as config.json and the storage's `device_name` show it: the same
    facts as the manifest's (device_info, software, torch_info), from the same functions."""
    env = {"python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
           "optuna": _version("optuna"), "device": str(device), "device_name": device_info(device)["name"]}
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
    return env


def harness_git() -> dict[str, Any]:
    """The commit of the harness checkout and whether its code differs from it (untracked files in bench/ count)."""
    root = Path(__file__).resolve().parent.parent
    info: dict[str, Any] = {"version": _version("gan-bench"), "git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=20)
        if commit.returncode != 0:
            info["note"] = "not a git checkout"
            return info
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "bench", "pyproject.toml"],
                                capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        info["note"] = f"git unavailable: {type(e).__name__}"
        return info
    dirty = [line[3:] for line in status.stdout.splitlines() if line.strip()]
    info.update(git_commit=commit.stdout.strip(), git_dirty=bool(dirty), dirty_paths=dirty[:20])
    return info


# ---------------------------------------------------------------- building, sealing, finishing

canonical, sha256_bytes, seal_ok = records.canonical, records.sha256_bytes, records.seal_ok  # report reads seals torch-free


def sha256_file(path: Path, limit: int | None = None) -> str:
    """sha256 of a file, or of its first `limit` bytes (an append-only log's recorded prefix)."""
    h, left = hashlib.sha256(), limit
    with open(path, "rb") as f:
        while left is None or left > 0:
            chunk = f.read(1 << 20 if left is None else min(1 << 20, left))
            if not chunk:
                break
            h.update(chunk)
            if left is not None:
                left -= len(chunk)
    return h.hexdigest()


def trial_files(tdir: Path) -> list[str]:
    """Files of a trial folder relative to it: everything but the manifest, the resume state
    (training scratch, replaced at every checkpoint) and temporary files."""
    out = []
    for p in sorted(tdir.rglob("*")):
        rel = p.relative_to(tdir).as_posix()
        if p.is_file() and rel not in (records.MANIFEST_FILE, records.RESUME_FILE) and not p.name.startswith("."):
            out.append(rel)
    return out


def file_checksums(tdir: Path) -> dict[str, dict[str, Any]]:
    return {rel: {"sha256": sha256_file(tdir / rel), "bytes": (tdir / rel).stat().st_size} for rel in trial_files(tdir)}


def seal(m: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in m.items() if k != "seal"}
    return {**body, "seal": sha256_bytes(canonical(body))}


def trial_config(cfg: Any, variant: str, hp: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved config of one trial (storage URL masked) and what its hash covers."""
    study = cfg.to_dict()
    study["study"]["storage"] = storage.mask(study["study"]["storage"])
    return {"study": study, "variant": variant, "hparams": dict(hp)}


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def build(cfg: Any, variant: str, number: int, hp: Mapping[str, Any], seeds: Mapping[str, int], device: torch.device,
          url: str | None, phase: str = "search", optuna_study: str | None = None) -> dict[str, Any]:
    """A manifest of this process's environment for one trial (no outcome, no files yet).

    It applies the trial's deterministic setting first, so the state it records is the one the
    trial runs under (training applies it again when it seeds)."""
    from bench import data as data_mod
    from bench.metrics import METRICS

    set_deterministic(cfg.train.deterministic)
    data = data_mod.load(cfg.data.dataset, data_mod.resolve_root(cfg.data.root))
    config = trial_config(cfg, variant, hp)
    return {
        "schema": SCHEMA, "study": cfg.name, "variant": variant, "trial": number, "phase": phase,
        "status": "running", "started": now(),
        "config": config, "config_sha256": sha256_bytes(canonical(config)),
        "seeds": {**dict(seeds), "eval_z": cfg.eval.seed},
        "determinism": determinism_state(cfg.train.deterministic),
        "software": software(), "torch": torch_info(), "device": device_info(device), "harness": harness_git(),
        "speed": speed.settings(cfg.train, device),  # Adam implementation and speed keys as run (speed.py)
        "data": {"dataset": data.name, "fingerprint": data.fingerprint(), "source": data.source,
                 "train_shape": list(data.train.shape), "test_shape": list(data.test.shape)},
        "metrics": {
            "objective": cfg.eval.metrics[0], "eval_seed": cfg.eval.seed, "generator_mode": cfg.eval.generator_mode,
            "protocol": {m: {"doc": METRICS[m].doc, "num_samples": METRICS[m].num_samples} for m in cfg.eval.metrics},
            "extractors": {},
        },
        "storage": {"kind": storage.kind(url) if url else None, "optuna_study": optuna_study},
    }


def begin(tdir: Path, cfg: Any, variant: str, number: int, hp: Mapping[str, Any], seeds: Mapping[str, int],
          device: torch.device, url: str | None, phase: str = "search", optuna_study: str | None = None) -> None:
    """Write the manifest of a trial that starts now (before training)."""
    m = build(cfg, variant, number, hp, seeds, device, url, phase, optuna_study or f"{cfg.name}:{variant}")
    records.write_json(records.manifest_path(tdir), seal(m))


def extractors_of(result: Any) -> dict[str, Any]:
    """{extractor kind: provenance} as metrics.extractor_provenance gives it."""
    return dict(getattr(result, "extractors", None) or {})


def finish(tdir: Path, result: Any = None, outcome: str | None = None) -> None:
    """Record the outcome, the extractors used and the checksum of every file of the trial; re-seal."""
    path = records.manifest_path(tdir)
    if not path.is_file():  # a trial folder made before manifests existed: nothing to complete
        return
    m = records.read_json(path)
    m["status"] = (result.outcome if result is not None else None) or outcome or "failed"
    m["finished"] = now()
    if result is not None:
        m["metrics"]["extractors"] = extractors_of(result)
    m["files"] = file_checksums(tdir)
    records.write_json(path, seal(m))


def read(tdir: Path) -> dict[str, Any]:
    return records.read_json(records.manifest_path(tdir))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on a trial's log while one process appends and seals (two `bench eval`s at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def append_sealed(tdir: Path, record: dict[str, Any], what: dict[str, Any]) -> dict[str, Any] | None:
    """Append `record` to a trial's metrics log and, when the trial has ended, seal the append in its
    manifest: `what` (command, source, step, metrics, and what a rerun needs to recompute them) with
    the byte range and sha256 of the appended line. Returns the seal (None: the trial is still
    running, or predates manifests, and the checksums at its end cover the line).

    A manifest edited since it was sealed is refused before anything is written: re-sealing it would
    vouch for the edit."""
    log, mpath = records.metrics_path(tdir), records.manifest_path(tdir)
    with _locked(log):
        if mpath.is_file() and not seal_ok(read(tdir)):
            raise HarnessError(f"{mpath}: edited after the trial ended (its seal does not match); not appending to "
                               f"{log} (run `bench audit` to see what changed)")
        offset, line = records.append_jsonl(log, record)
        m = read(tdir) if mpath.is_file() else None  # read after the append: a trial that ended meanwhile is sealed too
        if m is None or m.get("files") is None or m["files"].get(records.METRICS_LOG, {}).get("bytes", 0) > offset:
            return None
        entry = {**what, "offset": offset, "bytes": len(line), "sha256": sha256_bytes(line), "when": now()}
        m.setdefault("appends", []).append(entry)
        records.write_json(mpath, seal(m))
    return entry


# ---------------------------------------------------------------- comparing two manifests

@dataclass(frozen=True)
class Difference:
    field: str  # dotted path, e.g. software.packages.torch
    recorded: Any
    here: Any
    kind: str  # "identity" (what was computed differs) or "drift" (the environment differs)

    def text(self) -> str:
        return f"recorded {_short(self.recorded)}, here {_short(self.here)}"


def _short(v: Any) -> str:
    s = "(absent)" if v is _ABSENT else json.dumps(v) if not isinstance(v, str) else v
    return s if len(s) <= 80 else s[:77] + "..."


_ABSENT = object()
_NEUTRAL = {f"config.study.{section}.{key}": value for (section, key), value in NEUTRAL_WHEN_ABSENT.items()}


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _matches(key: str, patterns: tuple[str, ...]) -> bool:
    return any(key == p or (p.endswith(".") and key.startswith(p)) or key.startswith(p + ".") for p in patterns)


def compare(recorded: Mapping[str, Any], here: Mapping[str, Any]) -> list[Difference]:
    """Every field where the recorded manifest and one made here differ, classified.

    A key on one side only is drift (the harness gained or lost a field since); extractors are
    compared only when `here` measured them (a rerun ran the metrics).
    """
    r = flatten(records._jsonable(dict(recorded)))
    h = flatten(records._jsonable(dict(here)))
    measured_extractors = any(k.startswith("metrics.extractors.") for k in h)
    out = []
    for key in sorted(set(r) | set(h)):
        if _matches(key, IGNORED) or (key.startswith("metrics.extractors") and not measured_extractors):
            continue
        rv, hv = r.get(key, _ABSENT), h.get(key, _ABSENT)
        if rv == hv or (rv is _ABSENT and key in _NEUTRAL and hv == _NEUTRAL[key]):
            continue  # a key newer than the record, at the value that computes what the record's trial did
        both = rv is not _ABSENT and hv is not _ABSENT
        out.append(Difference(key, rv, hv, "identity" if both and _matches(key, IDENTITY) else "drift"))
    return out
