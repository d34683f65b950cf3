"""Issue #10: faults during a study cost a clear message and a rerun, never a corrupted record.

- Ctrl-C (SIGINT) in the middle of a trial: exit 130 with one line, the trial marked
  `interrupted` in the storage and its log, the same hyperparameters queued again, and the
  same command resumes and finishes the study.
- A write that fails half-way (a full disk, simulated by a file object that writes half the bytes
  and raises ENOSPC): whole-file writes leave the old file or none, never a part; a failed append
  is cut back so the log still parses; in a real trial the run stops with one line, the trial is
  marked `aborted` (not spent), and a rerun redoes it.
- A torn or damaged metrics log: a torn last line (a crash mid-append) is skipped and cut off by
  the next append; a damaged line elsewhere fails naming the file and the line.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from bench import records
from bench.study import budget
from bench.errors import HarnessError

from .conftest import ROOT, run_cli, sigint_default
from .faultkit import assert_one_line_error


class HalfThenFull:
    """A file object whose next write puts half the bytes on disk, then fails as a full disk does."""

    def __init__(self, f):
        self._f = f

    def write(self, data):
        self._f.write(data[: len(data) // 2])
        self._f.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as the kernel reports it: no file name

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def fill_disk_on(monkeypatch, fragment: str) -> list[str]:
    """From now on, a whole-file write whose temporary file's name holds `fragment` fails half-way."""
    real = os.fdopen
    hits: list[str] = []

    def fdopen(fd, *a, **k):
        f = real(fd, *a, **k)
        name = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else ""
        if fragment in os.path.basename(name):
            hits.append(name)
            return HalfThenFull(f)
        return f

    monkeypatch.setattr(records.os, "fdopen", fdopen)
    return hits


def test_atomic_write_that_fails_halfway_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    records.write_json(target, {"value": 1.0})
    old = target.read_bytes()
    hits = fill_disk_on(monkeypatch, "summary.json")
    with pytest.raises(OSError) as e:
        records.write_json(target, {"value": 2.0, "pad": "x" * 10_000})
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(target) and hits
    assert target.read_bytes() == old and records.read_json(target) == {"value": 1.0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]  # no half-written temporary left
    with pytest.raises(OSError):
        records.atomic_write_bytes(tmp_path / "new" / "summary.json", b"y" * 1000)
    assert list((tmp_path / "new").iterdir()) == []  # a new file is either whole or absent


def test_append_that_fails_halfway_is_cut_back(tmp_path, monkeypatch):
    log = tmp_path / "metrics.jsonl"
    records.append_jsonl(log, {"kind": "train", "step": 5})
    before = log.read_bytes()
    real_open = open
    monkeypatch.setattr(records, "open", lambda *a, **k: HalfThenFull(real_open(*a, **k)), raising=False)
    with pytest.raises(OSError):
        records.append_jsonl(log, {"kind": "eval", "step": 10, "pad": "x" * 5000})
    monkeypatch.undo()
    assert log.read_bytes() == before
    records.append_jsonl(log, {"kind": "eval", "step": 10})
    assert [r["step"] for r in records.read_jsonl(log)] == [5, 10]


def test_torn_last_line_is_skipped_then_cut_by_the_next_append(tmp_path):
    log = tmp_path / "metrics.jsonl"
    records.append_jsonl(log, {"kind": "train", "step": 5})
    records.append_jsonl(log, {"kind": "train", "step": 10})
    with open(log, "ab") as f:
        f.write(b'{"kind": "eval", "st')  # a crash in the middle of an append
    assert [r["step"] for r in records.read_jsonl(log)] == [5, 10]
    records.append_jsonl(log, {"kind": "failed", "error": "after the crash"})
    lines = log.read_bytes().splitlines()
    assert len(lines) == 3 and all(json.loads(ln) for ln in lines)


def test_damaged_line_in_the_middle_names_file_and_line(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_bytes(b'{"kind": "train", "step": 5}\n{"kind": "tr\n{"kind": "train", "step": 15}\n')
    with pytest.raises(HarnessError) as e:
        list(records.read_jsonl(log))
    assert str(log) in str(e.value) and "line 2" in str(e.value)
    log.write_bytes(b'{"kind": "train", "step": 5}\n[1, 2]\n')
    with pytest.raises(HarnessError, match="line 2 is not a JSON object"):
        list(records.read_jsonl(log))


def _trials(db: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}").get_trials(deepcopy=False)


def _all_records_parse(root: Path) -> None:
    """Every record a later command reads is whole: JSON parses, logs parse, checkpoints load safely."""
    assert not [p for p in root.rglob("*.tmp")], "a temporary file was left behind"
    for p in root.rglob("*.json"):
        json.loads(p.read_text())
    for p in root.rglob("*.jsonl"):
        list(records.read_jsonl(p))
    for p in root.rglob("*.pt"):
        records.load_weights(p)


def test_full_disk_during_a_trial_stops_the_run_and_a_rerun_redoes_the_trial(env, tiny_study, tmp_path, monkeypatch, capsys):
    from bench.cli import main

    path = tiny_study(name="fulldisk", variants='["wgan"]', trials=1)
    hits = fill_disk_on(monkeypatch, "g-0000010.pt")  # the second checkpoint hits a full disk
    code = main(["study", str(path), "--variant", "wgan"])
    err = capsys.readouterr().err
    assert hits
    assert_one_line_error(code, err, 1, ["g-0000010.pt", "No space left on device", "run the same command again"])
    sdir = tmp_path / "results" / "fulldisk"
    t = _trials(sdir / "optuna.db", "fulldisk:wgan")
    assert [x.state.name for x in t] == ["FAIL", "WAITING"]
    assert t[0].user_attrs["outcome"] == "aborted" and "No space left" in t[0].user_attrs["reason"]
    tdir = sdir / "wgan" / "trial-0000"
    assert sorted(p.name for p in (tdir / "checkpoints").iterdir()) == ["g-0000005.pt"]  # no half checkpoint
    assert list(records.read_jsonl(tdir / "metrics.jsonl"))[-1]["kind"] == "aborted"
    _all_records_parse(sdir)

    monkeypatch.undo()  # space freed: the same command redoes the trial with the same hyperparameters
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("BENCH_CACHE", env["BENCH_CACHE"])
    assert main(["study", str(path), "--variant", "wgan"]) == 0, capsys.readouterr().err
    t = _trials(sdir / "optuna.db", "fulldisk:wgan")
    assert [x.state.name for x in t] == ["FAIL", "COMPLETE"]
    assert t[1].user_attrs.get("paper_default")
    assert records.read_json(sdir / "wgan" / "trial-0001" / "config.json")["hparams"] == records.read_json(tdir / "config.json")["hparams"]
    _all_records_parse(sdir)


def test_sigint_marks_the_trial_interrupted_and_the_same_command_resumes(env, tiny_study, tmp_path):
    path = tiny_study(name="sigint", variants='["wgan"]', trials=1, steps=150, checkpoint_every=150)
    log = tmp_path / "results" / "sigint" / "wgan" / "trial-0000" / "metrics.jsonl"
    p = subprocess.Popen([sys.executable, "-m", "bench", "study", str(path), "--variant", "wgan"], env=env, cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
    deadline = time.monotonic() + 300
    while not (log.is_file() and b'"train"' in log.read_bytes()):  # inside the training loop
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert err.strip() == "bench: interrupted; run the same command again to resume"
    sdir = tmp_path / "results" / "sigint"
    t = _trials(sdir / "optuna.db", "sigint:wgan")
    assert [x.state.name for x in t] == ["FAIL", "WAITING"]
    assert t[0].user_attrs["outcome"] == "interrupted" and t[1].user_attrs.get("paper_default") is True
    assert t[1].system_attrs["fixed_params"] == t[0].params  # the same hyperparameters, queued
    logged = list(records.read_jsonl(log))
    assert logged[-1]["kind"] == "interrupted" and not [r for r in logged if r["kind"] == "eval"]
    _all_records_parse(sdir)

    stopped_at = max(r["step"] for r in logged if r["kind"] == "train")
    assert (sdir / "wgan" / "trial-0000" / "resume.pt").is_file()  # the full state, saved at the end of the step Ctrl-C hit

    r = run_cli("study", path, "--variant", "wgan", env=env)
    assert r.returncode == 0, r.stderr
    assert "trial 1: complete" in r.stdout and "trial 0" not in r.stdout
    t = _trials(sdir / "optuna.db", "sigint:wgan")
    assert [x.state.name for x in t] == ["FAIL", "COMPLETE"]
    assert records.read_json(sdir / "wgan" / "trial-0001" / "config.json")["paper_default"] is True
    # The rerun continued the interrupted trial (issue 19): from the step it stopped at, its D steps
    # the trial's length (counted once in the budget), its state files gone once it completed.
    resumed = t[1].user_attrs["resumed_from"]
    assert resumed["from"] == str(sdir / "wgan" / "trial-0000") and resumed["step"] >= stopped_at
    assert t[1].user_attrs["steps"] == 150 and budget.tally(t).steps == 150
    assert [r["step"] for r in records.read_jsonl(sdir / "wgan" / "trial-0001" / "metrics.jsonl") if r["kind"] == "resumed"] == [resumed["step"]]
    assert not list(sdir.rglob("resume.pt"))
    _all_records_parse(sdir)


def test_kill_9_mid_trial_leaves_whole_records_and_the_rerun_recovers(env, tiny_study, tmp_path):
    """kill -9 in the middle of a trial (no handler runs): every record left is whole, and the same
    command, once the heartbeat has gone stale, fails the lost trial and redoes its hyperparameters.
    (tests/test_workers.py kills one of four workers sharing a study; this checks the records.)"""
    env = {**env, "BENCH_HEARTBEAT_S": "1", "BENCH_GRACE_S": "3"}
    path = tiny_study(name="kill9", variants='["wgan"]', trials=1, steps=150, checkpoint_every=50)
    log = tmp_path / "results" / "kill9" / "wgan" / "trial-0000" / "metrics.jsonl"
    p = subprocess.Popen([sys.executable, "-m", "bench", "study", str(path), "--variant", "wgan", "--no-progress"], env=env,
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (log.parent / "resume.pt").is_file():  # past the first checkpoint, its full state saved
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=60)
    assert p.returncode == -signal.SIGKILL
    sdir = tmp_path / "results" / "kill9"
    assert [x.state.name for x in _trials(sdir / "optuna.db", "kill9:wgan")] == ["RUNNING"]
    _all_records_parse(sdir)  # a torn last line of the log, if any, is skipped by every reader

    time.sleep(4)  # past the grace period: the heartbeat is stale
    r = run_cli("study", path, "--variant", "wgan", "--no-progress", env=env)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    t = _trials(sdir / "optuna.db", "kill9:wgan")
    assert [x.state.name for x in t] == ["FAIL", "COMPLETE"]
    assert t[1].user_attrs.get("paper_default") is True
    assert records.read_json(sdir / "wgan" / "trial-0001" / "config.json")["hparams"] == records.read_json(log.parent / "config.json")["hparams"]
    resumed = t[1].user_attrs["resumed_from"]  # the lost trial is continued from its last saved state
    assert resumed["from"] == str(log.parent) and resumed["step"] % 50 == 0 and resumed["step"] >= 50
    assert t[1].user_attrs["steps"] == 150
    _all_records_parse(sdir)
