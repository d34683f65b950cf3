"""`bench export STUDY ARCHIVE` / `bench import ARCHIVE`: move a study between machines and storages.

An archive is a gzipped tar holding
    export.json    format, study name, the Optuna studies and their trial counts, the source storage
                   kind (never its URL), the harness commit, and the sha256 and size of every member
    storage.db     a SQLite copy of every Optuna study of the study (`optuna.copy_study`): the
                   search studies `<study>:<variant>` and the seed reruns `<study>:<variant>:seeds`
    files/...      everything under results/<study>/ but the embedded storage and audit/, plus a
                   `study.toml` written from the stored configuration (storage key emptied) when the
                   folder has none, so the study can be resumed, reported and audited on arrival
and `ARCHIVE.sha256` beside it (`sha256sum -c` format). Import verifies the archive's checksum
when the sidecar is there, then every member against export.json before it writes anything,
refuses a destination that already holds the study, copies the Optuna studies into the
destination storage (any URL) and moves the files into place. Trial user attribute `trial_dir`
keeps the path where the trial ran; folders are found by the layout (records.py).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Callable

import optuna

from bench import records, storage
from bench.config import NAME_RE
from bench.errors import ConfigError, HarnessError
from bench.trial import manifest

_log = logging.getLogger(__name__)

FORMAT = "bench-export/1"
SKIP_TOP = {records.STORAGE_FILE, *(records.STORAGE_FILE + x for x in ("-journal", "-wal", "-shm")), records.AUDIT_DIR}


def study_files(sdir: Path) -> list[str]:
    """Files of a study folder to move: all but the embedded storage, audits, trials' resume states
    (training scratch) and hidden/lock files."""
    out = []
    for p in sorted(sdir.rglob("*")):
        rel = p.relative_to(sdir)
        if p.is_file() and rel.parts[0] not in SKIP_TOP and not any(x.startswith(".") for x in rel.parts) and p.suffix != ".lock" and p.name != records.RESUME_FILE:
            out.append(rel.as_posix())
    return out


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # an inline table ([study] fixed); a quoted key is a TOML key too
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def config_toml(config: dict[str, Any]) -> str:
    """A study file from a stored configuration (sections of scalars, lists and tables), storage emptied."""
    lines = ["# Written by `bench export` from the configuration stored with the study."]
    for section, values in config.items():
        lines.append(f"\n[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {_toml_value('' if (section, key) == ('study', 'storage') else value)}")
    return "\n".join(lines) + "\n"


def _optuna_studies(name: str, st: Any) -> list[str]:
    return [n for n in storage.study_names(st) if n.split(":", 1)[0] == name and ":" in n]


def export_study(study: str, archive: Path, storage_url: str | None = None, log: Callable[[str], None] = _log.info) -> dict[str, Any]:
    from bench.study.audit import resolve_study

    name, url = resolve_study(study, storage_url)
    src = storage.open_storage(url, heartbeat=False)
    names = _optuna_studies(name, src)
    if not names:
        raise HarnessError(f"storage {storage.mask(url)} holds no study of {name!r}")
    counts, config = {}, None
    for n in names:
        s = optuna.load_study(study_name=n, storage=src)
        trials = s.get_trials(deepcopy=False)
        running = [t.number for t in trials if t.state == optuna.trial.TrialState.RUNNING]
        if running:
            raise HarnessError(f"study {n!r} has running trials ({', '.join(map(str, running))}); export it when its workers are done")
        counts[n] = len(trials)
        config = config or s.user_attrs.get("config")
    sdir = records.study_dir(name)
    archive = Path(archive)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=archive.parent, prefix=".export-") as tmp:
        db = Path(tmp) / "storage.db"
        dst = storage.open_storage(f"sqlite:///{db}", heartbeat=False)
        with storage.optuna_log_level(optuna.logging.WARNING):  # copy_study announces every study it creates
            for n in names:
                optuna.copy_study(from_study_name=n, from_storage=src, to_storage=dst)
        dst.engine.dispose()
        members: dict[str, Path] = {"storage.db": db}
        members.update({f"files/{rel}": sdir / rel for rel in study_files(sdir)} if sdir.is_dir() else {})
        if f"files/{records.STUDY_FILE}" not in members and config:
            (Path(tmp) / records.STUDY_FILE).write_text(config_toml(config))
            members[f"files/{records.STUDY_FILE}"] = Path(tmp) / records.STUDY_FILE
        meta = {
            "format": FORMAT, "study": name, "created": manifest.now(), "optuna_studies": counts,
            "source_storage_kind": storage.kind(url), "harness": manifest.harness_git(),
            "members": {m: {"sha256": manifest.sha256_file(p), "bytes": p.stat().st_size} for m, p in members.items()},
        }
        (Path(tmp) / "export.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        part = Path(tmp) / "archive.tar.gz"
        with tarfile.open(part, "w:gz") as tar:
            tar.add(Path(tmp) / "export.json", arcname="export.json")
            for m, p in members.items():
                tar.add(p, arcname=m)
        os.replace(part, archive)
    digest = manifest.sha256_file(archive)
    records.atomic_write_bytes(archive.with_name(archive.name + ".sha256"), f"{digest}  {archive.name}\n".encode())
    log(f"exported {name}: {len(names)} Optuna studies ({sum(counts.values())} trials), {len(meta['members']) - 1} files "
        f"-> {archive} (sha256 {digest})")
    return meta


def _verify_members(root: Path, meta: dict[str, Any], present: set[str]) -> None:
    expected = set(meta["members"])
    extra = present - expected - {"export.json"}
    if extra:
        raise HarnessError(f"archive member {sorted(extra)[0]} is not listed in export.json; the archive was altered")
    for m, rec in sorted(meta["members"].items()):
        p = root / m
        if not p.is_file():
            raise HarnessError(f"archive member {m} is listed in export.json but missing")
        if p.stat().st_size != rec["bytes"] or manifest.sha256_file(p) != rec["sha256"]:
            raise HarnessError(f"archive member {m}: sha256 differs from export.json; the archive is damaged or altered")


def import_archive(archive: Path, storage_url: str | None = None, log: Callable[[str], None] = _log.info) -> dict[str, Any]:
    """Verify an archive, copy its Optuna studies into the storage and move its files into place."""
    archive = Path(archive)
    _check_sidecar(archive)
    root = records.results_root().resolve()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".import-") as tmp:
        tmpdir = Path(tmp)
        meta = _unpack(archive, tmpdir)
        name = meta["study"]
        sdir = records.study_dir(name)
        if sdir.exists() and any(sdir.iterdir()):
            raise ConfigError(f"{sdir} already exists; import into another results folder (--results DIR) or move it away")
        url = storage.url_of(name, storage_url)
        _copy_studies(meta, tmpdir / "storage.db", url, sdir)
        files = tmpdir / "files"
        if files.is_dir():
            for entry in files.iterdir():
                shutil.move(str(entry), str(sdir / entry.name))
    n_files = 0
    for m, rec in meta["members"].items():
        if m.startswith("files/"):
            p = sdir / m[len("files/"):]
            if manifest.sha256_file(p) != rec["sha256"]:
                raise HarnessError(f"{p}: sha256 differs from the archive after the move")
            n_files += 1
    log(f"imported {name}: {len(meta['optuna_studies'])} Optuna studies ({sum(meta['optuna_studies'].values())} trials) "
        f"into {storage.mask(url)}, {n_files} files into {sdir}, every checksum verified")
    return meta


def _check_sidecar(archive: Path) -> None:
    """The archive exists and, when ARCHIVE.sha256 is beside it, matches it."""
    if not archive.is_file():
        raise ConfigError(f"archive {archive} does not exist")
    sidecar = archive.with_name(archive.name + ".sha256")
    if sidecar.is_file():
        want = sidecar.read_text().split()[0]
        if manifest.sha256_file(archive) != want:
            raise HarnessError(f"{archive}: sha256 differs from {sidecar.name}; the archive is damaged or altered")


def _unpack(archive: Path, tmpdir: Path) -> dict[str, Any]:
    """Extract the archive into tmpdir and verify every member against export.json; export.json's content."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            present = {m.name for m in tar.getmembers() if m.isfile()}
            tar.extractall(tmpdir, filter="data")  # refuses absolute paths, '..' and links out of the tree
    except (tarfile.TarError, OSError) as e:
        raise HarnessError(f"{archive} cannot be read as a bench archive: {e}") from None
    meta_path = tmpdir / "export.json"
    if not meta_path.is_file():
        raise HarnessError(f"{archive} has no export.json; it was not written by `bench export`")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT:
        raise HarnessError(f"{archive}: format {meta.get('format')!r}, expected {FORMAT!r}")
    if not NAME_RE.match(meta["study"]):
        raise HarnessError(f"{archive}: study name {meta['study']!r} is not a valid study name")
    _verify_members(tmpdir, meta, present)
    return meta


def _copy_studies(meta: dict[str, Any], db: Path, url: str, sdir: Path) -> None:
    """The archive's Optuna studies into the destination storage, refusing one it already holds; a
    study folder made here is removed again when that fails."""
    created = not sdir.exists()
    sdir.mkdir(parents=True, exist_ok=True)
    try:
        dst = storage.open_storage(url, heartbeat=False)
        clash = sorted(set(meta["optuna_studies"]) & set(storage.study_names(dst)))
        if clash:
            raise ConfigError(f"storage {storage.mask(url)} already holds study {clash[0]!r}; import into another storage (--storage URL)")
        src = storage.open_storage(f"sqlite:///{db}", heartbeat=False)
        with storage.optuna_log_level(optuna.logging.WARNING):
            for n in meta["optuna_studies"]:
                optuna.copy_study(from_study_name=n, from_storage=src, to_storage=dst)
        src.engine.dispose()
    except BaseException:
        if created:  # leave no half-made study folder (or embedded storage) behind
            shutil.rmtree(sdir, ignore_errors=True)
        raise
