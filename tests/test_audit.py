"""Reproducibility (issue 8): manifests, deterministic mode and `bench audit` on a tiny study.

One tiny deterministic study is made once by the real CLI; each test audits its own copy, so a
test that alters a file or a manifest field never disturbs another.
"""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import tomllib

import pandas as pd
import pytest
import torch

from bench import records
from bench.cli import main as bench_main
from bench.config import parse_study
from bench.errors import HarnessError
from bench.trial import manifest

from .conftest import tiny_study_text

DETERMINISTIC = 'device = "cpu"\ndeterministic = true'
METRIC = "fid_lenet_digits5k_1k_test"


def tiny_text() -> str:
    return tiny_study_text(trials=1).replace('device = "cpu"', DETERMINISTIC)


@pytest.fixture(autouse=True)
def restore_torch_determinism():
    """In-process trials switch deterministic mode on; leave the test process as it was."""
    state = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    yield
    torch.use_deterministic_algorithms(state[0])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = state[1], state[2]


@pytest.fixture(scope="module")
def made(tmp_path_factory, shared_cache):
    """A tiny deterministic study (one wgan trial) made by `bench study` (in this process: a
    subprocess would add seconds of imports; test_study.py runs that path)."""
    base = tmp_path_factory.mktemp("made")
    toml = base / "tiny.toml"
    toml.write_text(tiny_text())
    state = torch.are_deterministic_algorithms_enabled()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_RESULTS", str(base / "results"))
        mp.setenv("BENCH_CACHE", str(shared_cache))
        mp.delenv("BENCH_STORAGE", raising=False)
        assert bench_main(["study", str(toml), "--variant", "wgan"]) == 0
    torch.use_deterministic_algorithms(state)
    return base


@pytest.fixture
def study(made, tmp_path, env):
    """This test's own copy of the made study's results (BENCH_RESULTS points at it)."""
    shutil.copytree(made / "results", tmp_path / "results")
    return tmp_path / "results" / "tiny"


def audit(capsys, *args: str) -> tuple[int, str, dict]:
    rc = bench_main(["audit", "tiny", *args])
    out = capsys.readouterr().out
    report = json.loads((records.audit_dir("tiny") / "audit.json").read_text())
    return rc, out, report


def reseal(tdir, edit) -> None:
    m = manifest.read(tdir)
    edit(m)
    records.write_json(records.manifest_path(tdir), manifest.seal(m))


def test_two_cpu_runs_of_one_trial_are_bit_identical(env, tmp_path):
    from bench.gan.variants import VARIANTS
    from bench.trial.train import resolve_device, run_trial, trial_seeds

    cfg = parse_study(tomllib.loads(tiny_text()), "tiny.toml")
    hp = VARIANTS["ns_gan"].defaults
    runs = []
    for k in range(2):
        tdir = tmp_path / f"run{k}"
        tdir.mkdir()
        result = run_trial(cfg, VARIANTS["ns_gan"], hp, trial_seeds(0, 3), tdir, resolve_device("cpu"))
        log = [{k2: v for k2, v in r.items() if k2 != "seconds"} for r in records.read_jsonl(tdir / "metrics.jsonl")]
        runs.append((result, log, {p.name: p.read_bytes() for p in sorted((tdir / "checkpoints").iterdir())}))
    (r0, log0, ck0), (r1, log1, ck1) = runs
    assert torch.are_deterministic_algorithms_enabled()
    assert math.isfinite(r0.value) and r0.value == r1.value  # the FID, bit for bit
    assert [e[METRIC] for e in r0.evaluations] == [e[METRIC] for e in r1.evaluations]
    assert log0 == log1 and len(log0) >= 4
    assert ck0 == ck1 and len(ck0) == 2
    assert (tmp_path / "run0" / "samples.png").read_bytes() == (tmp_path / "run1" / "samples.png").read_bytes()


def test_evaluation_leaves_the_training_random_stream_alone(monkeypatch):
    """A metric that seeds torch (the extractor trains on first use) must not change training's draws."""
    from bench.metrics import METRICS
    from bench.metrics.base import Metric, MetricContext
    from bench.trial.train import evaluate

    def reseeding(ctx, images):
        torch.manual_seed(0)
        return {"value": float(torch.rand(()))}

    monkeypatch.setitem(METRICS, "reseeding", Metric("reseeding", "test metric", 8, reseeding))
    cfg = parse_study(tomllib.loads(tiny_text()), "tiny.toml").replace("eval", metrics=["reseeding"])
    G = torch.nn.Sequential(torch.nn.Linear(4, 784), torch.nn.Unflatten(1, (1, 28, 28)))
    torch.manual_seed(1)
    before = torch.get_rng_state()
    evaluate(G, cfg, MetricContext(None, torch.device("cpu")), torch.zeros(8, 4))
    assert torch.equal(torch.get_rng_state(), before)


def test_manifest_records_how_the_trial_was_made(study):
    from bench import data as data_mod
    from bench.metrics import lenet

    tdir = study / "wgan" / "trial-0000"
    m = manifest.read(tdir)
    cj = json.loads((tdir / "config.json").read_text())
    assert manifest.seal_ok(m) and m["status"] == "complete" and m["schema"] == manifest.SCHEMA
    assert m["config"]["hparams"] == cj["hparams"] and m["config"]["study"]["train"]["deterministic"] is True
    assert m["config_sha256"] == manifest.sha256_bytes(manifest.canonical(m["config"]))
    assert m["seeds"] == {**cj["seeds"], "eval_z": 42} and set(m["seeds"]) == {"torch", "numpy", "python", "data_order", "eval_z"}
    assert m["software"]["packages"]["torch"] and m["software"]["packages"]["optuna"] and m["software"]["python"]
    assert m["torch"]["version"] == torch.__version__ and {"cuda", "cudnn"} <= set(m["torch"])
    assert m["device"]["type"] == "cpu" and m["device"]["name"]
    assert m["determinism"]["use_deterministic_algorithms"] is True and m["determinism"]["cublas_workspace_config"] == ":4096:8"
    assert re.fullmatch(r"[0-9a-f]{40}", m["harness"]["git_commit"]) and isinstance(m["harness"]["git_dirty"], bool)
    data = data_mod.load("digits5k", data_mod.resolve_root(parse_study(tomllib.loads(tiny_text()), "tiny.toml").data.root))
    assert m["data"]["fingerprint"] == data.fingerprint()
    assert m["metrics"]["extractors"]["lenet-digits5k"]["sha256"] == lenet.WEIGHTS_SHA256
    assert m["metrics"]["objective"] == METRIC and METRIC in m["metrics"]["protocol"]
    assert m["storage"] == {"kind": "sqlite", "optuna_study": "tiny:wgan"}
    assert set(m["files"]) == {"config.json", "metrics.jsonl", "samples.png", "checkpoints/g-0000005.pt", "checkpoints/g-0000010.pt"}
    for rel, rec in m["files"].items():
        assert rec == {"sha256": manifest.sha256_file(tdir / rel), "bytes": (tdir / rel).stat().st_size}


def test_manifest_never_holds_storage_credentials():
    cfg = parse_study(tomllib.loads(tiny_text()), "tiny.toml").replace("study", storage="postgresql://ann:s3cret@db:5432/bench")
    blob = manifest.canonical(manifest.trial_config(cfg, "wgan", {}))
    assert b"s3cret" not in blob and b"ann:***@db" in blob


def test_audit_passes_on_an_untouched_study(study, capsys):
    rc, out, report = audit(capsys, "--trials", "best", "--reruns", "1")
    assert rc == 0, out
    assert "wgan trial 0: PASS" in out and "verdict: PASS" in out
    assert report["verdict"] == "pass" and report["failures"] == []
    (t,) = report["trials"]
    assert t["files_verified"] == 5 and t["reruns"][0]["bit_identical"] and t["reruns"][0]["checkpoints_identical"] == "2/2"
    assert "**PASS**" in (study / "audit" / "audit.md").read_text()


def _alter_log(tdir):
    p = tdir / "metrics.jsonl"
    p.write_text(re.sub(rf'"{METRIC}": ([0-9.]+)', lambda g: f'"{METRIC}": {float(g[1]) * 0.9}', p.read_text(), count=1))


@pytest.mark.parametrize("what, alter, fields", [
    ("metrics log", _alter_log, ["files.metrics.jsonl"]),
    ("sample grid", lambda t: (t / "samples.png").write_bytes(b"\x89PNG not the grid"), ["files.samples.png"]),
    ("checkpoint", lambda t: (t / "checkpoints" / "g-0000010.pt").unlink(), ["files.checkpoints/g-0000010.pt"]),
    ("manifest seed", lambda t: _edit_manifest(t, lambda m: m["seeds"].update(torch=m["seeds"]["torch"] + 1)),
     ["manifest.seal", "seeds.torch"]),
    ("manifest fingerprint", lambda t: _edit_manifest(t, lambda m: m["data"].update(fingerprint="0" * 64)),
     ["manifest.seal", "data.fingerprint"]),
    ("manifest hyperparameter", lambda t: _edit_manifest(t, lambda m: m["config"]["hparams"].update(learning_rate=1e-3)),
     ["manifest.seal", "config_sha256", "config.hparams.learning_rate"]),
])
def test_audit_fails_naming_the_trial_and_the_field(study, capsys, what, alter, fields):
    alter(study / "wgan" / "trial-0000")
    rc, out, report = audit(capsys, "--reruns", "0")
    assert rc == 1 and report["verdict"] == "fail", out
    for f in fields:
        assert f"FAIL: wgan trial 0: {f}:" in out
        assert any(x.startswith(f"wgan trial 0: {f}:") for x in report["failures"])


def _edit_manifest(tdir, edit) -> None:
    m = manifest.read(tdir)
    edit(m)
    records.write_json(records.manifest_path(tdir), m)  # not resealed: an edit after the trial


def test_a_rerun_catches_a_forged_result_whose_checksums_were_updated(study, capsys):
    tdir = study / "wgan" / "trial-0000"
    _alter_log(tdir)
    reseal(tdir, lambda m: m.update(files=manifest.file_checksums(tdir)))
    rc, out, report = audit(capsys, "--reruns", "1")
    assert rc == 1
    assert f"FAIL: wgan trial 0: rerun 0: metrics.jsonl[eval step 5].{METRIC}:" in out


def test_audit_names_package_version_drift(study, capsys):
    """A study made with another torch: the audit names the drift; it fails only with --strict."""
    tdir = study / "wgan" / "trial-0000"
    reseal(tdir, lambda m: m["software"]["packages"].update(torch="2.0.0"))
    rc, out, report = audit(capsys, "--reruns", "0")
    assert rc == 0 and report["verdict"] == "pass", out
    line = f"wgan trial 0: software.packages.torch: recorded 2.0.0, here {manifest.software()['packages']['torch']}"
    assert f"drift: {line}" in out and line in report["drift"]
    assert line in (study / "audit" / "audit.md").read_text()
    rc, out, report = audit(capsys, "--reruns", "0", "--strict")
    assert rc == 1 and report["verdict"] == "fail"


KID = "kid_lenet_digits5k_1k_test"


def _forge(tdir, **values) -> dict:
    """A record appended by hand: the last checkpoint again, with a better FID (issue 14, point 9)."""
    last = [r for r in records.read_jsonl(tdir / "metrics.jsonl") if r.get("kind") == "eval" and METRIC in r][-1]
    forged = {"kind": "eval", "source": "bench eval", "step": last["step"], METRIC: last[METRIC] / 2,
              "extractors": last["extractors"], **values}
    records.append_jsonl(tdir / "metrics.jsonl", forged)
    return forged


def _bench_eval(made, names) -> list:
    """`bench eval` in this process (the CLI's own function; test_eval_cli.py runs the command)."""
    from bench.config import load_study
    from bench.trial import reeval

    return reeval.eval_study(load_study(str(made / "tiny.toml")), ["wgan"], names, "cpu", log=lambda _: None)


@pytest.mark.parametrize("reruns", ["0", "1"])
def test_a_forged_append_fails_the_audit(study, capsys, reruns):
    tdir = study / "wgan" / "trial-0000"
    size = manifest.read(tdir)["files"]["metrics.jsonl"]["bytes"]
    _forge(tdir)
    end = (tdir / "metrics.jsonl").stat().st_size
    rc, out, report = audit(capsys, "--reruns", reruns)
    assert rc == 1 and report["verdict"] == "fail", out
    line = f"wgan trial 0: files.metrics.jsonl: {end - size} bytes appended after the trial ended (bytes {size}..{end}) that no seal explains"
    assert f"FAIL: {line}" in out and line in report["failures"]


def test_a_bench_eval_append_is_sealed_passes_and_is_recomputed_by_a_rerun(made, study, capsys):
    tdir = study / "wgan" / "trial-0000"
    size = manifest.read(tdir)["files"]["metrics.jsonl"]["bytes"]
    added = _bench_eval(made, [METRIC, KID])  # FID was logged in training: KID only, at steps 5 and 10
    assert [(r["step"], KID in r, METRIC in r) for r in added] == [(5, True, False), (10, True, False)]
    m = manifest.read(tdir)
    assert manifest.seal_ok(m) and len(m["appends"]) == 2
    data = (tdir / "metrics.jsonl").read_bytes()
    assert m["appends"][0]["offset"] == size and m["appends"][1]["offset"] == size + m["appends"][0]["bytes"]
    assert m["appends"][1]["offset"] + m["appends"][1]["bytes"] == len(data)
    for seal in m["appends"]:
        chunk = data[seal["offset"]: seal["offset"] + seal["bytes"]]
        assert seal["sha256"] == manifest.sha256_bytes(chunk) and json.loads(chunk)[KID] == seal_value(added, seal["step"])
        assert seal["metrics"] == [KID] and seal["source"] == "bench eval" and seal["command"].startswith("bench eval tiny ")
        assert seal["z_samples"] == 1000 and seal["eval_seed"] == 42
    rc, out, report = audit(capsys, "--reruns", "1")
    assert rc == 0 and report["failures"] == [] and report["drift"] == [], out
    (t,) = report["trials"]
    assert t["sealed_appends"] == 2 and t["reruns"][0]["sealed_evaluations"] == 2 and t["reruns"][0]["bit_identical"]


def seal_value(added, step):
    return next(r[KID] for r in added if r["step"] == step)


def test_a_rerun_catches_a_forged_append_whose_seal_was_forged_too(made, study, capsys):
    """A forger who also rewrites the manifest (a seal for the forged bytes, manifest re-sealed)
    passes the checksums; the rerun recomputes the sealed value and fails it."""
    tdir = study / "wgan" / "trial-0000"
    start = (tdir / "metrics.jsonl").stat().st_size
    forged = _forge(tdir)
    line = (tdir / "metrics.jsonl").read_bytes()[start:]
    reseal(tdir, lambda m: m.update(appends=[{"command": "bench eval tiny", "source": "bench eval", "step": forged["step"],
                                             "metrics": [METRIC], "eval_seed": 42, "z_samples": 1000, "generator_mode": "train",
                                             "offset": start, "bytes": len(line), "sha256": manifest.sha256_bytes(line)}]))
    rc, out, report = audit(capsys, "--reruns", "1")
    assert rc == 1, out
    assert f"FAIL: wgan trial 0: rerun 0: metrics.jsonl[bench eval step 10].{METRIC}: sealed {forged[METRIC]!r}, rerun " in out


@pytest.mark.parametrize("tamper", ["seal", "bytes", "removed"])
def test_a_seal_that_does_not_match_its_bytes_fails(made, study, capsys, tamper):
    tdir = study / "wgan" / "trial-0000"
    _bench_eval(made, [KID])
    log = tdir / "metrics.jsonl"
    seal = manifest.read(tdir)["appends"][1]
    if tamper == "seal":
        reseal(tdir, lambda m: m["appends"][1].update(sha256="0" * 64))
    elif tamper == "bytes":  # the sealed KID edited in place, same length
        data = log.read_bytes()
        i = data.index(b'"kid_lenet', seal["offset"]) + len(f'"{KID}": ')
        log.write_bytes(data[:i] + (b"9" if data[i:i + 1] != b"9" else b"8") + data[i + 1:])
    else:  # the last sealed record cut off
        log.write_bytes(log.read_bytes()[: seal["offset"]])
    rc, out, report = audit(capsys, "--reruns", "0")
    assert rc == 1, out
    label = f"wgan trial 0: files.metrics.jsonl: append seal 1 ({seal['command']}, step 10)"
    expected = {"seal": f"{label}: bytes {seal['offset']}..", "bytes": f"{label}: bytes {seal['offset']}..",
                "removed": f"{label} covers bytes {seal['offset']}..{seal['offset'] + seal['bytes']}, the log has only {seal['offset']}"}
    assert any(f.startswith(expected[tamper]) for f in report["failures"]), report["failures"]


def test_reports_read_only_sealed_records(made, study):
    """records.sealed_records (what a report reads from a log): the trial's own records and sealed
    `bench eval` appends, never a record appended by hand."""
    tdir = study / "wgan" / "trial-0000"
    own = list(records.read_jsonl(tdir / "metrics.jsonl"))
    forged = _forge(tdir)
    assert records.sealed_records(tdir) == own
    (why,) = records.sealed_log(tdir).unexplained
    assert why.startswith(f"{tdir / 'metrics.jsonl'}: ") and "that no seal explains" in why
    added = _bench_eval(made, [KID])  # sealed after the forged line; the forged line stays out
    got = records.sealed_records(tdir)
    assert got[: len(own)] == own and [(r["step"], r[KID]) for r in got[len(own):]] == [(r["step"], r[KID]) for r in added]
    assert forged[METRIC] not in [r.get(METRIC) for r in got]


def test_a_forged_append_does_not_reach_the_report(made, study):
    """The report reads a sealed `bench eval` metric from the log, and neither a forged better FID
    for the last checkpoint nor a forged value of the sealed metric (appended after its seal)."""
    from bench import report
    from bench.report import tidy
    from bench.report.document import render_markdown

    tdir = study / "wgan" / "trial-0000"
    trained = {r["step"]: r[METRIC] for r in records.read_jsonl(tdir / "metrics.jsonl") if r.get("kind") == "eval"}
    added = _bench_eval(made, [KID])
    forged = _forge(tdir, **{KID: -1.0})
    assert forged["step"] == 10 and forged[METRIC] < trained[10]
    frame = tidy.load(str(study))
    rows = frame[frame["variant"] == "wgan"].set_index("step")
    assert rows[METRIC].to_dict() == trained  # not the forged FID at step 10
    assert rows[KID].to_dict() == {r["step"]: r[KID] for r in added}  # the sealed values, not the forged one
    best = tidy.per_trial(frame)
    assert best.loc[best["variant"] == "wgan", "score"].item() == min(trained.values())
    (why,) = frame.attrs["unsealed"]
    assert why.startswith(f"{tdir / 'metrics.jsonl'}: ") and "that no seal explains" in why
    md = render_markdown(report.build(frame, resamples=50), {})
    assert "Left out: 1 part(s) of trials' metrics logs that no seal vouches for" in md and why in md


def test_bench_eval_will_not_reseal_an_edited_manifest(study):
    tdir = study / "wgan" / "trial-0000"
    _edit_manifest(tdir, lambda m: m["seeds"].update(torch=1))
    before = (tdir / "metrics.jsonl").read_bytes(), records.manifest_path(tdir).read_bytes()
    with pytest.raises(HarnessError, match="manifest.json: edited after the trial ended"):
        manifest.append_sealed(tdir, {"kind": "eval", "step": 10, KID: 0.0}, {"source": "bench eval", "step": 10, "metrics": [KID]})
    assert ((tdir / "metrics.jsonl").read_bytes(), records.manifest_path(tdir).read_bytes()) == before


def _trials(url: str) -> dict:
    import optuna

    from bench import storage

    st = storage.open_storage(url, heartbeat=False)
    out = {}
    for name in storage.study_names(st):
        s = optuna.load_study(study_name=name, storage=st)
        out[name] = (s.user_attrs, [(t.number, t.state, t.value, t.params, t.intermediate_values, t.user_attrs)
                                    for t in s.get_trials()])
    return out


def test_export_then_import_reproduces_the_study(study, tmp_path, monkeypatch, capsys):
    import tarfile

    from bench.config import load_study
    from bench.study.archive import study_files

    archive = tmp_path / "moved" / "tiny.tar.gz"
    assert bench_main(["export", "tiny", str(archive)]) == 0
    assert (tmp_path / "moved" / "tiny.tar.gz.sha256").read_text().split()[0] == manifest.sha256_file(archive)
    before = _trials(records.default_storage_url("tiny"))

    dest = tmp_path / "elsewhere"
    monkeypatch.setenv("BENCH_RESULTS", str(dest))
    other = f"sqlite:///{tmp_path / 'other.db'}"  # another storage than the default layout's
    assert bench_main(["import", str(archive), "--storage", other]) == 0
    assert _trials(other) == before and len(before) == 1
    for rel in study_files(study):
        assert (dest / "tiny" / rel).read_bytes() == (study / rel).read_bytes(), rel
    cfg = load_study(str(dest / "tiny" / "study.toml"))  # the stored configuration, resumable here
    assert cfg.train.deterministic is True and cfg.name == "tiny" and cfg.study.storage == ""
    capsys.readouterr()
    rc, out, report = audit(capsys, "--reruns", "0", "--storage", other)
    assert rc == 0 and report["trials"][0]["files_verified"] == 5, out

    # Importing again is refused; so is an archive whose member was altered (export.json unchanged).
    assert bench_main(["import", str(archive), "--storage", other]) == 2
    forged = tmp_path / "forged.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(forged, "w:gz") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if m.name.endswith("samples.png"):
                data = data[:-1] + b"\x00"
            m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "third"))
    assert bench_main(["import", str(forged)]) == 1
    err = capsys.readouterr().err
    assert "files/wgan/trial-0000/samples.png: sha256 differs" in err
    assert not (tmp_path / "third" / "tiny").exists()


def test_seed_reruns_are_a_separate_study_of_the_best_configuration(made, study, capsys):
    import optuna

    from bench import storage
    from bench.study import seeds

    toml = str(made / "tiny.toml")
    assert bench_main(["seeds", toml, "--variant", "wgan", "--seeds", "2"]) == 0
    url = records.default_storage_url("tiny")
    st = storage.open_storage(url, heartbeat=False)
    search = optuna.load_study(study_name="tiny:wgan", storage=st)
    s = optuna.load_study(study_name="tiny:wgan:seeds", storage=st)
    assert s.user_attrs["source_trial"] == 0 and s.user_attrs["hparams"] == search.trials[0].user_attrs["hparams"]
    assert len(search.trials) == 1  # the search study is untouched
    values = [t.value for t in s.trials]
    assert len(values) == 2 and all(math.isfinite(v) for v in values) and values[0] != values[1]
    seen = {json.dumps(search.trials[0].user_attrs["seeds"], sort_keys=True)}
    for t in s.trials:
        tdir = records.seed_trial_dir("tiny", "wgan", t.number)
        m = manifest.read(tdir)
        assert m["phase"] == "seeds" and m["status"] == "complete" and manifest.seal_ok(m)
        assert m["storage"]["optuna_study"] == "tiny:wgan:seeds" and t.user_attrs["seed_index"] == t.number
        seen.add(json.dumps(t.user_attrs["seeds"], sort_keys=True))
    assert len(seen) == 3  # every rerun has its own seeds, none a search trial's
    frame = seeds.seeds_frame("tiny", url)
    assert list(frame["value"]) == values and set(frame["phase"]) == {"seeds"}
    table = pd.read_csv(records.seeds_dir("tiny") / "summary.csv")
    assert table.loc[0, f"{METRIC}_mean"] == pytest.approx(sum(values) / 2)
    # The same command again resumes: nothing reruns.
    assert bench_main(["seeds", toml, "--variant", "wgan", "--seeds", "2"]) == 0
    assert len(optuna.load_study(study_name="tiny:wgan:seeds", storage=st).trials) == 2
    capsys.readouterr()
    rc, out, report = audit(capsys, "--phase", "seeds", "--trials", "all", "--reruns", "0")
    assert rc == 0 and len(report["trials"]) == 2, out


def test_keys_newer_than_a_record_are_not_drift_at_their_neutral_value():
    """A trial recorded before [study] fixed and [train] g_ema existed computed what fixed = {} and
    g_ema = 0 compute: its audit must not list them (the lucic_small case listed both for every
    trial); another value, or a key the record has with another value, still shows."""
    from bench.config import NEUTRAL_WHEN_ABSENT
    from bench.trial.manifest import compare

    here = {"config": {"study": {"study": {"fixed": {}, "seed": 0}, "train": {"g_ema": 0.0, "steps": 10}}}}
    old = {"config": {"study": {"study": {"seed": 0}, "train": {"steps": 10}}}}
    assert {("study", "fixed"), ("train", "g_ema")} <= set(NEUTRAL_WHEN_ABSENT)
    assert compare(old, here) == []
    changed = {"config": {"study": {"study": {"fixed": {"beta1": 0.5}, "seed": 0}, "train": {"g_ema": 0.999, "steps": 10}}}}
    assert {d.field for d in compare(old, changed)} == {"config.study.study.fixed.beta1", "config.study.train.g_ema"}
