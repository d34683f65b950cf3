"""Issue #10: bad input through the real CLI and the Makefile gives a clear one-line error and
changes nothing stored.

Every case runs against a results folder that already holds a finished study, and must: exit 2
(usage or configuration) or 1 (runtime), print exactly one line naming the file, key or argument
and what is allowed, print no traceback (unless --debug), print nothing on stdout, and leave
every file under results/ byte-identical (sha256 of every file and the set of folders, before
and after each case). The cases run through `bench.cli.main` in one process (tests/cli_batch.py:
one torch import instead of sixty); `test_batch_matches_real_process` proves that process gives
the same bytes as `python -m bench`, and the Makefile cases run `make` itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from .conftest import ROOT, tiny_study_text
from .fakepg import PasswordRefusingServer
from .faultkit import Payload, assert_one_line_error, changed, cli_env, run_batch, run_in_process, tree_digest

GOOD = dict(trials=1, variants='["wgan"]')
SECRET = "Hunter2-not-for-logs"

# id -> (replace this, with that), or a list of them, in the good study file; the case's file is {dir}/<id>.toml.
BAD_FILES = {
    "malformed-toml": ('trials = 1', 'trials = 1\n[[['),
    "duplicate-key": ('trials = 1', 'trials = 1\ntrials = 2'),
    "unknown-section": ('[eval]', '[evaluation]'),
    "unknown-key": ('trials = 1', 'trials = 1\nbogus = 3'),
    "section-not-table": ('[data]', '[[data]]'),
    "type-str-for-int": ('trials = 1', 'trials = "many"'),
    "type-bool-for-int": ('trials = 1', 'trials = true'),
    "type-float-for-int": ('trials = 1', 'trials = 2.5'),
    "type-str-for-list": ('variants = ["wgan"]', 'variants = "wgan"'),
    "type-str-for-bool": ('device = "cpu"', 'device = "cpu"\nkeep_checkpoints = "yes"'),
    "type-int-for-str": ('sampler = "random"', 'sampler = 3'),
    "negative-budget": ('trials = 1', 'trials = -4'),
    "zero-steps": ('steps = 10', 'steps = 0'),
    "negative-width": ('width = 0.125', 'width = -1.0'),
    "infinite-width": ('width = 0.125', 'width = inf'),
    "nan-width": ('width = 0.125', 'width = nan'),
    "zero-z-dim": ('width = 0.125', 'width = 0.125\nz_dim = 0'),
    "negative-eval-seed": ('generator_mode = "train"', 'generator_mode = "train"\nseed = -1'),
    "zero-batch": ('batch_size = 16', 'batch_size = 0'),
    "unknown-variant": ('variants = ["wgan"]', 'variants = ["wgan", "stylegan"]'),
    "repeated-variant": ('variants = ["wgan"]', 'variants = ["wgan", "wgan"]'),
    "no-variants": ('variants = ["wgan"]', 'variants = []'),
    "unknown-dataset": ('dataset = "digits5k"', 'dataset = "imagenet"'),
    "unknown-metric": ('metrics = ["fid_lenet_digits5k_1k_test"]', 'metrics = ["fid_magic"]'),
    "no-metrics": ('metrics = ["fid_lenet_digits5k_1k_test"]', 'metrics = []'),
    "unknown-sampler": ('sampler = "random"', 'sampler = "grid"'),
    "unknown-architecture": ('architecture = "infogan"', 'architecture = "resnet"'),
    "unknown-space": ('space = "narrow"', 'space = "medium"'),
    "unknown-device": ('device = "cpu"', 'device = "tpu"'),
    "unknown-generator-mode": ('generator_mode = "train"', 'generator_mode = "test"'),
    "unknown-precision": ('device = "cpu"', 'device = "cpu"\nprecision = "fp8"'),
    "type-str-for-compile": ('device = "cpu"', 'device = "cpu"\ncompile = "yes"'),
    "conflict-checkpoint-after-end": ('checkpoint_every = 5', 'checkpoint_every = 50'),
    "name-dotdot": ('name = "tiny"', 'name = "../escape"'),
    "name-absolute": ('name = "tiny"', 'name = "/tmp/escape"'),
    "incompatible-stored-study": ('steps = 10', 'steps = 20'),
    "missing-dataset-offline": [('dataset = "digits5k"', 'dataset = "mnist"\nroot = "/nonexistent/bench-data"'),
                                ('metrics = ["fid_lenet_digits5k_1k_test"]', 'metrics = ["fid_inception_10k_test"]')],
    "missing-inception-offline": ('metrics = ["fid_lenet_digits5k_1k_test"]', 'metrics = ["fid_inception_10k_test"]'),
    "missing-inception-file": ('metrics = ["fid_lenet_digits5k_1k_test"]', 'metrics = ["fid_inception_10k_test"]\ninception_weights = "/nonexistent/w.pth"'),
}
OFFLINE = {"BENCH_OFFLINE": "1", "TORCH_HOME": "{dir}/torch-home"}  # no network, no Inception weights in the hub cache
RUNTIME_FILES = {"missing-dataset-offline", "missing-inception-offline", "missing-inception-file"}

# (id, kind, argv, exit code, words the one line must hold, extra environment). Templates:
# {good} the good study file, {file} the case's bad file, {dir} the workspace, {port} the
# password-refusing server, {results} the results folder.
CASES = [
    # --- arguments (argparse and the CLI's own checks) ---
    ("no-command", "usage", [], 2, ["required: COMMAND", "--help"], {}),
    ("unknown-command", "usage", ["bogus"], 2, ["invalid choice: 'bogus'", "'study'"], {}),
    ("unknown-flag", "usage", ["--bogus", "list"], 2, ["unrecognized arguments: --bogus"], {}),
    ("list-extra-arg", "usage", ["list", "extra"], 2, ["unrecognized arguments: extra"], {}),
    ("study-no-args", "usage", ["study"], 2, ["study, --variant", "bench study --help"], {}),
    ("missing-variant", "usage", ["study", "{good}"], 2, ["--variant"], {}),
    ("empty-variant-value", "usage", ["study", "{good}", "--variant"], 2, ["--variant", "expected one argument"], {}),
    ("trials-not-int", "usage", ["study", "{good}", "--variant", "wgan", "--trials", "abc"], 2, ["--trials", "invalid int value: 'abc'"], {}),
    ("trials-zero", "usage", ["study", "{good}", "--variant", "wgan", "--trials", "0"], 2, ["--trials 0", "positive integer"], {}),
    ("trials-negative", "usage", ["study", "{good}", "--variant", "wgan", "--trials", "-3"], 2, ["--trials -3", "positive integer"], {}),
    ("unknown-cli-variant", "usage", ["study", "{good}", "--variant", "stylegan"], 2, ["--variant 'stylegan'", "wgan_gp", "'all'"], {}),
    ("unknown-cli-device", "usage", ["study", "{good}", "--variant", "wgan", "--device", "tpu"], 2, ["--device 'tpu'", "'cuda:N'"], {}),
    ("report-no-study", "usage", ["report"], 2, ["required: study"], {}),
    ("workers-not-int", "usage", ["study", "{good}", "--variant", "wgan", "--workers", "two"], 2, ["--workers", "invalid int value: 'two'"], {}),
    ("workers-zero", "usage", ["study", "{good}", "--variant", "wgan", "--workers", "0"], 2, ["--workers"], {}),
    ("worker-no-variant", "usage", ["worker", "{good}"], 2, ["--variant"], {}),
    ("worker-unknown-variant", "usage", ["worker", "{good}", "--variant", "stylegan"], 2, ["--variant 'stylegan'", "wgan_gp"], {}),
    ("worker-bad-heartbeat", "usage", ["worker", "{good}", "--variant", "wgan"], 2, ["$BENCH_HEARTBEAT_S = 'soon'", "seconds > 0"],
     {"BENCH_HEARTBEAT_S": "soon"}),
    ("worker-storage-unreachable", "storage", ["worker", "{good}", "--variant", "wgan", "--storage", f"postgresql+psycopg2://bench:{SECRET}@127.0.0.1:1/bench"], 1,
     ["bench:***@127.0.0.1:1/bench", "cannot be opened"], {}),
    # --- study names and files ---
    ("missing-study-name", "study file", ["study", "nope", "--variant", "wgan"], 2, ["nope.toml", "does not exist", "quick"], {}),
    ("missing-study-file", "study file", ["study", "{dir}/absent.toml", "--variant", "wgan"], 2, ["{dir}/absent.toml", "does not exist"], {}),
    ("study-name-dotdot", "study file", ["study", "../quick", "--variant", "wgan"], 2, ["'../quick'", "no '..'"], {}),
    ("study-name-absolute", "study file", ["study", "/etc/passwd", "--variant", "wgan"], 2, ["'/etc/passwd'", "no absolute path"], {}),
    ("report-name-dotdot", "study file", ["report", "../../etc/cron"], 2, ["no '..'"], {}),
    ("study-file-is-folder", "study file", ["study", "{dir}/folder.toml", "--variant", "wgan"], 2, ["{dir}/folder.toml", "not a file"], {}),
    ("study-file-binary", "study file", ["study", "{dir}/binary.toml", "--variant", "wgan"], 2, ["{dir}/binary.toml", "not a UTF-8"], {}),
    # --- storage ---
    ("storage-unreachable", "storage", ["study", "{good}", "--variant", "wgan", "--storage", f"postgresql+psycopg2://bench:{SECRET}@127.0.0.1:1/bench"], 1,
     ["storage postgresql+psycopg2://bench:***@127.0.0.1:1/bench", "cannot be opened", "Connection refused"], {}),
    ("storage-wrong-password", "storage", ["study", "{good}", "--variant", "wgan", "--storage", f"postgresql+psycopg2://bench:{SECRET}@127.0.0.1:{{port}}/bench"], 1,
     ["bench:***@127.0.0.1:{port}", "password authentication failed"], {}),
    ("storage-env-unreachable", "storage", ["study", "{good}", "--variant", "wgan"], 1, ["127.0.0.1:1", "cannot be opened"],
     {"BENCH_STORAGE": f"postgresql+psycopg2://bench:{SECRET}@127.0.0.1:1/bench"}),
    ("storage-unknown-scheme", "storage", ["study", "{good}", "--variant", "wgan", "--storage", "mongodb://127.0.0.1/x"], 1, ["mongodb://127.0.0.1/x", "cannot be opened", "Can't load plugin"], {}),
    ("storage-not-a-url", "storage", ["study", "{good}", "--variant", "wgan", "--storage", "results.db"], 1, ["storage results.db", "cannot be opened"], {}),
    ("storage-sqlite-no-folder", "storage", ["study", "{good}", "--variant", "wgan", "--storage", "sqlite:///{dir}/no/such/folder/x.db"], 1, ["{dir}/no/such/folder/x.db", "cannot be opened"], {}),
    ("storage-not-a-database", "storage", ["study", "{good}", "--variant", "wgan", "--storage", "sqlite:///{dir}/garbage.db"], 1, ["{dir}/garbage.db", "cannot be opened"], {}),
    ("report-never-run", "storage", ["report", "{dir}/neverrun.toml"], 1, ["'neverrun'", "has no results yet", "bench study neverrun"], {}),
    # --- data ---
    ("fetch-unknown-dataset", "usage", ["fetch", "imagenet"], 2, ["'imagenet'", "digits5k", "mnist"], {}),
    ("fetch-offline", "missing data", ["fetch", "mnist", "--root", "{dir}/data"], 1,
     ["dataset mnist", "{dir}/data/MNIST/raw", "bench fetch mnist"], {"BENCH_OFFLINE": "1"}),
    # --- results folder ---
    ("results-is-a-file", "results folder", ["--results", "{dir}/a-file", "study", "{good}", "--variant", "wgan"], 1, ["{dir}/a-file", "not writable", "--results"], {}),
    ("results-under-proc", "results folder", ["--results", "/proc/bench-results", "study", "{good}", "--variant", "wgan"], 1, ["/proc/bench-results", "not writable"], {}),
]
CASES += [(name, "study file" if name.startswith("name-") else "config value", ["study", "{file}", "--variant", "wgan"],
           2, ["{file}"], {}) for name in BAD_FILES if name not in RUNTIME_FILES]
CASES += [
    # --- missing data and weights, offline; damaged or hostile files given to bench fid / bench eval ---
    ("missing-dataset-offline", "missing data", ["study", "{file}", "--variant", "wgan"], 1,
     ["dataset mnist", "/nonexistent/bench-data/MNIST/raw", "bench fetch mnist"], OFFLINE),
    ("missing-inception-offline", "missing weights", ["study", "{file}", "--variant", "wgan"], 1,
     ["weights-inception-2015-12-05-6726825d.pth", "is not available", "$BENCH_OFFLINE is set", "inception_weights"], OFFLINE),
    ("missing-inception-file", "missing weights", ["study", "{file}", "--variant", "wgan"], 1,
     ["[eval] inception_weights = '/nonexistent/w.pth'", "no such file"], OFFLINE),
    ("eval-inception-offline", "missing weights", ["eval", "{good}", "--metrics", "fid_inception_10k_test"], 1,
     ["is not available", "$BENCH_OFFLINE is set"], OFFLINE),
    ("eval-unknown-metric", "usage", ["eval", "{good}", "--metrics", "fid_magic"], 2, ["--metrics 'fid_magic'", "fid_lenet_digits5k_1k_test"], {}),
    ("fid-inception-offline", "missing weights", ["fid", "{dir}", "{dir}"], 1, ["is not available", "$BENCH_OFFLINE is set"], OFFLINE),
    ("fid-hostile-weights", "hostile file", ["fid", "{dir}", "{dir}", "--weights", "{dir}/hostile.pt"], 1,
     ["{dir}/hostile.pt", "not a loadable weights file"], {}),
    ("fid-damaged-stats", "damaged file", ["fid", "{dir}/garbage.npz", "{dir}/garbage.npz", "--features", "lenet-digits5k"], 1,
     ["{dir}/garbage.npz", "not a loadable .npz"], {}),
    ("fid-pickled-stats", "hostile file", ["fid", "{dir}/pickled.npz", "{dir}/pickled.npz", "--features", "lenet-digits5k"], 1,
     ["{dir}/pickled.npz", "holding objects"], {}),
    ("fid-unknown-features", "usage", ["fid", "{dir}", "{dir}", "--features", "lenet-imagenet"], 2, ["--features 'lenet-imagenet'", "digits5k"], {}),
]
# What each bad file's line must also say (the key and what is allowed).
FILE_WORDS = {
    "malformed-toml": ["malformed TOML"], "duplicate-key": ["malformed TOML"], "unknown-section": ["unknown section [evaluation]", "allowed sections"],
    "unknown-key": ["[study] bogus", "allowed keys"], "section-not-table": ["[data] must be a table"],
    "type-str-for-int": ["[study] trials", "an integer"], "type-bool-for-int": ["[study] trials", "an integer"],
    "type-float-for-int": ["[study] trials", "an integer"], "type-str-for-list": ["[study] variants", "a list of a string"],
    "type-str-for-bool": ["[train] keep_checkpoints", "true or false"], "type-int-for-str": ["[study] sampler", "a string"],
    "negative-budget": ["[study] trials = -4", "> 0"], "zero-steps": ["[train] steps = 0", "> 0"], "negative-width": ["[model] width", "> 0"],
    "infinite-width": ["[model] width = inf", "finite"], "nan-width": ["[model] width = nan", "finite"], "zero-z-dim": ["[model] z_dim", "> 0"],
    "negative-eval-seed": ["[eval] seed", ">= 0"], "zero-batch": ["[train] batch_size", "> 0"],
    "unknown-variant": ["[study] variants", "'stylegan'", "wgan_gp"], "repeated-variant": ["[study] variants", "once"],
    "no-variants": ["[study] variants", "non-empty"], "unknown-dataset": ["[data] dataset", "'imagenet'", "digits5k"],
    "unknown-metric": ["[eval] metrics", "'fid_magic'", "fid_lenet_digits5k_1k_test"], "no-metrics": ["[eval] metrics", "non-empty"],
    "unknown-sampler": ["[study] sampler", "random", "tpe"], "unknown-architecture": ["[model] architecture", "infogan"],
    "unknown-space": ["[study] space", "'wide'", "'narrow'"], "unknown-device": ["[train] device", "'cuda:N'"],
    "unknown-generator-mode": ["[eval] generator_mode", "'eval'"],
    "unknown-precision": ["[train] precision = 'fp8'", "'fp32'", "'bf16'"], "missing-dataset-offline": [], "missing-inception-offline": [],
    "missing-inception-file": [], "type-str-for-compile": ["[train] compile", "true or false"], "conflict-checkpoint-after-end": ["checkpoint_every = 50", "steps = 10"],
    "name-dotdot": ["[study] name", "no path separators"], "name-absolute": ["[study] name", "no path separators"],
    "incompatible-stored-study": ["'tiny:wgan'", "different configuration"],
}

if os.geteuid() != 0:  # root ignores permission bits; /proc and a file stand in for it above
    CASES.append(("results-read-only", "results folder", ["--results", "{dir}/read-only/results", "study", "{good}", "--variant", "wgan"], 1,
                  ["{dir}/read-only/results", "not writable"], {}))

try:
    import torch

    _HAS_CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover
    _HAS_CUDA = False
if not _HAS_CUDA:
    CASES.append(("device-cuda-absent", "usage", ["study", "{good}", "--variant", "wgan", "--device", "cuda:0"], 2, ["'cuda:0'", "no CUDA device"], {}))


def _cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _hostile(path: Path) -> None:
    torch.save({"weight": Payload(path.parent / "code-ran")}, path)  # would make a folder if unpickled unsafely


def _garbage_line(path: Path) -> None:
    path.write_bytes(b"#garbage\n" + path.read_bytes())


# A damaged record under results/: (argv, the damaged file under results/tiny/, the damage, exit
# code, words the output must hold). `bench audit` reports it as a finding (verdict FAIL, exit 1)
# and writes only its own audit/ folder; anything else fails in one line and writes nothing.
DAMAGED = {
    "truncated-metrics-log": (["audit", "{good}", "--reruns", "0"], "wgan/trial-0000/metrics.jsonl", _cut, 1,
                              ["FAIL", "files.metrics.jsonl: sha256 differs"]),
    "damaged-metrics-log": (["audit", "{good}", "--reruns", "0"], "wgan/trial-0000/metrics.jsonl", _garbage_line, 1,
                            ["metrics.jsonl: line 1 is not a JSON record"]),
    "truncated-checkpoint": (["audit", "{good}", "--reruns", "0"], "wgan/trial-0000/checkpoints/g-0000010.pt", _cut, 1,
                             ["files.checkpoints/g-0000010.pt: sha256 differs"]),
    "damaged-manifest": (["audit", "{good}", "--reruns", "0"], "wgan/trial-0000/manifest.json", _cut, 1,
                         ["manifest.json", "not valid JSON"]),
    "deleted-trial-folder": (["audit", "{good}", "--reruns", "0"], "wgan/trial-0000", shutil.rmtree, 1,
                             ["trial-0000 does not exist"]),
    "truncated-checkpoint-eval": (["eval", "{good}", "--again"], "wgan/trial-0000/checkpoints/g-0000005.pt", _cut, 1,
                                  ["g-0000005.pt", "not a loadable weights file", "delete it"]),
    "hostile-checkpoint-eval": (["eval", "{good}", "--again"], "wgan/trial-0000/checkpoints/g-0000005.pt", _hostile, 1,
                                ["g-0000005.pt", "not a loadable weights file"]),
    "damaged-storage-report": (["report", "{good}"], "optuna.db", _cut, 1, ["storage sqlite:///", "optuna.db cannot be opened"]),
    "damaged-storage-resume": (["study", "{good}", "--variant", "wgan", "--trials", "2"], "optuna.db", _cut, 1,
                               ["optuna.db cannot be opened"]),
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, shared_cache):
    """A results folder holding one finished tiny study, the bad files, and every case's outcome."""
    d = tmp_path_factory.mktemp("bad-input")
    good = d / "tiny.toml"
    text = tiny_study_text(**GOOD)
    good.write_text(text)
    for name, change in BAD_FILES.items():
        bad = text
        for old, new in change if isinstance(change, list) else [change]:
            assert old in bad, name
            bad = bad.replace(old, new, 1)
        (d / f"{name}.toml").write_text(bad)
    (d / "folder.toml").mkdir()
    (d / "binary.toml").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe[study]\n")
    (d / "garbage.db").write_bytes(b"this is not an sqlite database\n" * 100)
    (d / "a-file").write_text("a file where the results folder should be\n")
    (d / "neverrun.toml").write_text(tiny_study_text(name="neverrun", **GOOD))
    (d / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip archive" * 10)
    np.savez(d / "pickled.npz", mu=np.zeros(3), sigma=np.array([{"a": 1}], dtype=object))
    torch.save({"weight": Payload(d / "code-ran")}, d / "hostile.pt")
    if os.geteuid() != 0:
        (d / "read-only").mkdir()
        (d / "read-only").chmod(0o500)
    results = d / "results"
    env = cli_env(results, shared_cache)
    first = run_in_process(["study", str(good), "--variant", "wgan"], env)  # the study every case must leave intact
    damaged = {}
    for name, (_, target, damage, _, _) in DAMAGED.items():
        root = d / f"damaged-{name}"
        shutil.copytree(results, root)
        damage(root / "tiny" / target)
        damaged[name] = (root, tree_digest(root))
    with PasswordRefusingServer() as pg:
        fill = {"good": str(good), "dir": str(d), "port": str(pg.port), "results": str(results)}
        batch = []
        for name, _, argv, _, _, extra in CASES:
            f = {**fill, "file": str(d / f"{name}.toml")}
            batch.append({"argv": [a.format(**f) for a in argv], "env": {k: v.format(**f) for k, v in extra.items()}})
        for name, (argv, *_rest) in DAMAGED.items():
            batch.append({"argv": [a.format(**fill) for a in argv], "env": {"BENCH_RESULTS": str(damaged[name][0])}})
        outside = {p: p.read_bytes() for p in (d / "garbage.db", d / "a-file")}
        out = run_batch(batch, env)
        passwords = list(pg.passwords)
    yield {"dir": d, "fill": fill, "results": results, "first": first, "outcomes": dict(zip([c[0] for c in CASES], out)),
           "damaged": {name: (*damaged[name], r) for name, r in zip(DAMAGED, out[len(CASES):])},
           "passwords": passwords, "outside": outside, "env": env, "good": good}
    if os.geteuid() != 0:
        (d / "read-only").chmod(0o700)


def test_the_good_study_ran_first(workspace):
    code, _, err = workspace["first"]
    assert code == 0, err
    assert (workspace["results"] / "tiny" / "wgan" / "trial-0000" / "metrics.jsonl").is_file()


@pytest.mark.parametrize("name, kind, argv, code, words, extra", CASES, ids=[c[0] for c in CASES])
def test_bad_input(workspace, name, kind, argv, code, words, extra):
    r = workspace["outcomes"][name]
    f = {**workspace["fill"], "file": str(workspace["dir"] / f"{name}.toml")}
    words = [w.format(**f) for w in words + FILE_WORDS.get(name, [])]
    assert_one_line_error(r["code"], r["stderr"], code, words)
    assert r["stdout"] == "", r["stdout"]
    assert r["changed"] == [], f"{name} changed stored results: {r['changed']}"
    assert SECRET not in r["stderr"] + r["stdout"]


@pytest.mark.parametrize("name", list(DAMAGED))
def test_damaged_record(workspace, name):
    """A damaged record is named (audit: as a finding) and nothing else under results/ changes."""
    argv, target, _, code, words = DAMAGED[name]
    root, before, r = workspace["damaged"][name]
    assert r["code"] == code and "Traceback" not in r["stdout"] + r["stderr"], r
    if argv[0] == "audit":
        out = r["stdout"] + r["stderr"]
        assert "verdict: FAIL" in out and target.split("/")[-1] in out, out
        for w in words:
            assert w in out, f"{w!r} not in {out!r}"
        assert all(p.startswith("tiny/audit") for p in changed(before, tree_digest(root))), changed(before, tree_digest(root))
    else:
        assert_one_line_error(r["code"], r["stderr"], code, words)
        assert tree_digest(root) == before


def test_nothing_outside_results_was_touched_and_no_password_stored(workspace):
    for path, data in workspace["outside"].items():
        assert path.read_bytes() == data
    # The password reached the server (so the refusal was real) but nothing under results/.
    assert workspace["passwords"] == [SECRET]
    for p in workspace["results"].rglob("*"):
        if p.is_file():
            assert SECRET.encode() not in p.read_bytes(), p
    assert not (workspace["dir"] / "escape").exists() and not Path("/tmp/escape").exists()
    assert not (workspace["dir"] / "code-ran").exists()  # the hostile weights file never ran its code


def test_batch_matches_real_process(workspace):
    """The in-process driver reports what `python -m bench` prints and returns, byte for byte."""
    d = workspace["dir"]
    for name, argv in [("unknown-key", ["study", str(d / "unknown-key.toml"), "--variant", "wgan"]),
                       ("missing-study-name", ["study", "nope", "--variant", "wgan"]),
                       ("trials-not-int", ["study", str(workspace["good"]), "--variant", "wgan", "--trials", "abc"]),
                       ("unknown-cli-variant", ["study", str(workspace["good"]), "--variant", "stylegan"])]:
        r = subprocess.run([sys.executable, "-m", "bench", *argv], env=workspace["env"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        batch = workspace["outcomes"][name]
        assert (r.returncode, r.stdout, r.stderr) == (batch["code"], batch["stdout"], batch["stderr"]), name


def test_debug_shows_the_traceback(workspace):
    d = workspace["dir"]
    r = subprocess.run([sys.executable, "-m", "bench", "--debug", "study", str(d / "unknown-key.toml"), "--variant", "wgan"],
                       env=workspace["env"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" in r.stderr and "ConfigError" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("bench: error: ") and "[study] bogus" in r.stderr


MAKE_CASES = [
    # (id, make arguments, bench's exit code, words)
    ("make-missing-study", ["study", "STUDY=nope", "VARIANT=wgan"], 2, ["nope.toml", "does not exist"]),
    ("make-bad-file", ["study", "STUDY={dir}/type-str-for-int.toml", "VARIANT=wgan"], 2, ["[study] trials", "an integer"]),
    ("make-empty-variant", ["study", "STUDY={good}", "VARIANT="], 2, ["--variant", "expected one argument"]),
    ("make-negative-trials", ["study", "STUDY={good}", "TRIALS=-1", "VARIANT=wgan"], 2, ["--trials -1", "positive integer"]),
    ("make-report-dotdot", ["report", "STUDY=../x"], 2, ["'../x'", "no '..'"]),
    ("make-report-never-run", ["report", "STUDY={dir}/neverrun.toml"], 1, ["'neverrun'", "has no results yet"]),
]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("name, args, code, words", MAKE_CASES, ids=[c[0] for c in MAKE_CASES])
def test_bad_input_through_make(workspace, name, args, code, words):
    """`make study|report` passes bench's one line through; make adds its own 'Error N' line and exits 2."""
    before = tree_digest(workspace["results"])
    args = [a.format(**workspace["fill"]) for a in args]
    r = subprocess.run(["make", "-s", "-o", "setup", f"PY={sys.executable}", *args], env=workspace["env"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2  # make's own status for any failed recipe
    bench_lines = [ln for ln in r.stderr.splitlines() if not ln.startswith("make")]
    make_lines = [ln for ln in r.stderr.splitlines() if ln.startswith("make")]
    assert make_lines and make_lines[-1].endswith(f"Error {code}"), r.stderr
    assert_one_line_error(code, "\n".join(bench_lines), code, words, prefix="bench")
    assert tree_digest(workspace["results"]) == before
