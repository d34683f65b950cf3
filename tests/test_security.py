"""Issue #10, security: nothing loaded from disk can run code, no storage password is written
anywhere, reports escape what a study supplies, and study names cannot write outside results/.

The end-to-end check runs one tiny study whose file names a PostgreSQL storage with a password
(overridden by --storage, as a user testing locally would) and whose storage file name carries
HTML, then writes its report: the password must appear in no file under results/, in no output,
and not in the SQLite storage itself; the HTML must come out as text.
"""

from __future__ import annotations

import ast
import pickle

import pytest
import torch

from bench import records
from bench.errors import ConfigError, HarnessError
from bench.storage import mask as mask_url

from .conftest import ROOT, run_cli, tiny_study_text
from .faultkit import Payload

SECRET = "S3cret-Pa55-in-url"
HOSTILE = "<img src=x onerror=alert(1)>"
BENCH = ROOT / "bench"


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


@pytest.mark.parametrize("path", sorted(BENCH.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_is_unpickled_unsafely(path):
    """torch.load only with weights_only=True; no pickle, no numpy pickles, no TorchScript or YAML code."""
    tree = ast.parse(path.read_text())
    for call, name in _calls(tree):
        kw = {k.arg: k.value for k in call.keywords}
        where = f"{path.relative_to(ROOT)}:{call.lineno}"
        if name.endswith("torch.load"):
            assert "weights_only" in kw and ast.literal_eval(kw["weights_only"]) is True, f"{where}: torch.load without weights_only=True"
        if name.endswith("np.load") or name.endswith("numpy.load"):
            assert "allow_pickle" not in kw or ast.literal_eval(kw["allow_pickle"]) is False, f"{where}: np.load(allow_pickle=True)"
        assert name not in ("pickle.load", "pickle.loads", "torch.jit.load", "pd.read_pickle", "yaml.load", "dill.load"), f"{where}: {name}"


def test_a_checkpoint_holding_code_is_refused(tmp_path):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "g-0000010.pt"
    torch.save({"weight": Payload(marker)}, evil)
    with pytest.raises(HarnessError) as e:
        records.load_weights(evil)
    assert str(evil) in str(e.value) and not marker.exists()
    torch.load(evil, weights_only=False)  # the file really is hostile: the unsafe load runs its code
    assert marker.is_dir()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "pickle"])
def test_a_damaged_checkpoint_fails_naming_the_file(tmp_path, damage):
    good = tmp_path / "good.pt"
    torch.save({"w": torch.ones(64, 64)}, good)
    bad = tmp_path / "bad.pt"
    data = good.read_bytes()
    bad.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\x00garbage" * 100, "empty": b"",
                     "pickle": pickle.dumps({"w": [1, 2, 3]}, protocol=2)}[damage])
    assert torch.equal(records.load_weights(good)["w"], torch.ones(64, 64))
    with pytest.raises(HarnessError) as e:
        records.load_weights(bad)
    assert str(bad) in str(e.value) and "delete it" in str(e.value)


@pytest.mark.parametrize("name", ["../outside", "a/../../outside", "/tmp/outside", "..", "a/b/../../.."])
def test_study_names_cannot_leave_results(tmp_path, name):
    with pytest.raises(ConfigError):
        records.study_dir(name, tmp_path / "results")


@pytest.mark.parametrize("url, shown", [
    ("postgresql://bench:pw@db.example/x", "postgresql://bench:***@db.example/x"),
    ("postgresql+psycopg2://bench:p@ss/w:rd@db:5432/x", "postgresql+psycopg2://bench:***@db:5432/x"),
    ("postgresql://db/x?user=bench&password=pw&sslmode=require", "postgresql://db/x?user=bench&password=***&sslmode=require"),
    ("mysql://:pw@db/x", "mysql://:***@db/x"),
    ("sqlite:///results/quick/optuna.db", "sqlite:///results/quick/optuna.db"),
])
def test_mask_url(url, shown):
    assert mask_url(url) == shown


@pytest.fixture(scope="module")
def hostile_study(tmp_path_factory, shared_cache):
    from .faultkit import cli_env

    d = tmp_path_factory.mktemp("hostile")
    text = tiny_study_text(name="hostile", variants='["wgan"]', trials=1, steps=5, checkpoint_every=5)
    text = text.replace('sampler = "random"', f'sampler = "random"\nstorage = "postgresql+psycopg2://bench:{SECRET}@127.0.0.1:1/x"')
    study = d / "hostile.toml"
    study.write_text(text)
    db = d / f"store{HOSTILE}.db"
    env = cli_env(d / "results", shared_cache)
    runs = [run_cli("study", study, "--variant", "wgan", "--storage", f"sqlite:///{db}", env=env),
            run_cli("report", study, "--storage", f"sqlite:///{db}", "--no-notebook", "--resamples", "50", env=env)]
    return {"dir": d, "results": d / "results", "db": db, "runs": runs}


def test_hostile_study_ran(hostile_study):
    for r in hostile_study["runs"]:
        assert r.returncode == 0, r.stderr


def test_no_password_in_results_outputs_or_storage(hostile_study):
    files = [p for p in hostile_study["results"].rglob("*") if p.is_file()] + [hostile_study["db"]]
    assert any(p.name == "config.json" for p in files) and any(p.name == "report.html" for p in files)
    leaks = [str(p) for p in files if SECRET.encode() in p.read_bytes()]
    assert leaks == []
    for r in hostile_study["runs"]:
        assert SECRET not in r.stdout + r.stderr
    recorded = records.read_json(next(hostile_study["results"].rglob("config.json")))["config"]["study"]["storage"]
    assert recorded == "postgresql+psycopg2://bench:***@127.0.0.1:1/x"


def test_report_escapes_study_supplied_strings(hostile_study):
    html_text = next(hostile_study["results"].rglob("report.html")).read_text()
    md_text = next(hostile_study["results"].rglob("report.md")).read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html_text
    assert HOSTILE not in html_text and HOSTILE not in md_text


def test_checkpoints_of_a_real_trial_load_safely(hostile_study):
    cks = list(hostile_study["results"].rglob("g-*.pt"))
    assert cks
    for p in cks:
        state = records.load_weights(p)
        assert state and all(isinstance(v, torch.Tensor) for v in state.values())
