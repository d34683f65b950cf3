"""The metric registry: names carry their protocol, NaN in gives NaN out (and a diverged trial),
reference statistics are keyed by content and made once under concurrency, domain-feature FID
equals torch-fidelity's on the same extractor and does not depend on the batch size, and every
evaluation records its extra values and extractors."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import textwrap

import pytest
import torch

from bench import data as data_mod
from bench import metrics, records
from bench.config import parse_study
from bench.data.base import Data
from bench.errors import ConfigError
from bench.metrics import base, extractors, fidelity, image
from bench.metrics.extractors import EXTRACTORS, ExtractorSpec

from .conftest import ROOT, tiny_study_text


@pytest.mark.parametrize("name", list(metrics.METRICS))
def test_every_metric_names_its_protocol_and_gives_nan_for_nan_samples(name):
    m = metrics.METRICS[name]
    assert re.match(r"^(fid|fd|kid|is|prc|dc|triangles_prf|triangles_dist|swd|modes|hq_fraction)_", name), name
    count = re.search(r"_(\d+)(k?)(_test)?$", name)
    assert count and m.num_samples == int(count.group(1)) * (1000 if count.group(2) else 1), name
    assert m.doc and (m.extractor == "" or m.extractor in EXTRACTORS)
    dataset = m.datasets[0] if m.datasets else "digits5k"
    shape = data_mod.DATASETS[dataset].shape
    ref = torch.zeros(m.num_samples, *shape)
    ctx = base.MetricContext(Data(dataset, ref, ref), torch.device("cpu"))
    ctx.begin(lambda z: z)
    out = m.compute(ctx, torch.full((m.num_samples, *shape), math.nan))
    assert "value" in out and all(math.isnan(v) for v in out.values())


def test_metrics_must_fit_the_dataset():
    raw = {"eval": {"metrics": ["triangles_prf_100_test"]}, "data": {"dataset": "digits5k"}}
    with pytest.raises(ConfigError, match=r"study.toml: \[eval\] metrics: 'triangles_prf_100_test' does not apply.*'fid_lenet_digits5k_1k_test'"):
        parse_study(raw, "study.toml", "s")
    assert metrics.METRICS["fid_inception_10k_test"].supports("triangles")
    assert not metrics.METRICS["fid_inception_10k_test"].supports("ring8")  # images only


def _ext(name="x", sha="s" * 64, pre="uint8", code="c1") -> extractors.Extractor:
    return extractors.Extractor(name, sha, pre, ("f",), run=lambda x: {"f": x.flatten(1).float()[:, :4]}, meta={"code": code})


BASE = dict(data=Data("d", torch.zeros(4, 1, 2, 2), torch.ones(4, 1, 2, 2)), ext=_ext(), split="test", count=4)


@pytest.mark.parametrize("part, change", [
    ("dataset", lambda a: {**a, "data": Data("e", a["data"].train, a["data"].test)}),
    ("fingerprint", lambda a: {**a, "data": Data("d", a["data"].train, torch.full((4, 1, 2, 2), 0.5))}),
    ("split", lambda a: {**a, "split": "train"}),
    ("count", lambda a: {**a, "count": 3}),
    ("preprocess", lambda a: {**a, "ext": _ext(pre="uint8, tiled")}),
    ("extractor", lambda a: {**a, "ext": _ext(name="y")}),
    ("weights checksum", lambda a: {**a, "ext": _ext(sha="t" * 64)}),
    ("extractor code", lambda a: {**a, "ext": _ext(code="c2")}),
])
def test_reference_cache_key_changes_with_each_part(part, change):
    key = lambda a: base.stats_key(base.stats_key_parts(a["data"], a["ext"], a["split"], a["count"]))  # noqa: E731
    assert key(BASE) == key(dict(BASE))
    assert key(change(BASE)) != key(BASE), part


CONCURRENT = textwrap.dedent("""
    import json, sys, time, pathlib, torch
    from bench.metrics import base, extractors
    from bench.data.base import Data
    go = pathlib.Path(sys.argv[1])
    calls = pathlib.Path(sys.argv[2])
    real_extract = base.extract
    def counting_extract(*a, **k):
        with open(calls, "a") as f:
            f.write("x\\n")
        time.sleep(0.5)  # hold the lock long enough for the other process to arrive
        return real_extract(*a, **k)
    base.extract = counting_extract
    g = torch.Generator().manual_seed(0)
    data = Data("race", torch.rand(8, 1, 4, 4, generator=g), torch.rand(64, 1, 4, 4, generator=g))
    w = torch.randn(16, 5, generator=g)
    ext = extractors.Extractor("lin", "0" * 64, "uint8", ("f",), run=lambda x: {"f": (x.flatten(1).float() / 255) @ w})
    ctx = base.MetricContext(data, torch.device("cpu"), batch_size=16)
    while not go.exists():
        time.sleep(0.01)
    s = base.reference_statistics(ctx, ext, "test", 64)
    print(json.dumps({"mu": s["mu"].tolist(), "sigma": s["sigma"].tolist()}))
""")


def test_two_processes_make_the_same_reference_statistics_once(env, tmp_path):
    go, calls = tmp_path / "go", tmp_path / "calls"
    script = tmp_path / "race.py"
    script.write_text(CONCURRENT)
    procs = [subprocess.Popen([sys.executable, str(script), str(go), str(calls)], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    a, b = (json.loads(o[0]) for o in outs)
    assert a == b
    assert calls.read_text().count("x") == 1  # computed by one process, read by the other
    stats = list((records.cache_root() / "stats").glob("race-test-64-lin-*.npz"))
    assert len(stats) == 1 and not list(stats[0].parent.glob(".race*.tmp"))


@pytest.fixture(scope="module")
def digits():
    return data_mod.load("digits5k", ROOT)


def _lenet_case(request, tmp_path, monkeypatch):
    """The shipped LeNet on 1,000 training digits of every class (the file is ordered by class) against
    the test split, which are close in its features: 0 < FID < 10."""
    digits = request.getfixturevalue("digits")
    return dict(kind="lenet-digits5k", data=digits, gen=digits.train[::4], batch_sizes=(1000, 7, 333), most=10.0,
                # torch-fidelity averages float32 features in float32, the harness in float64: ~1e-6 apart
                rel_theirs=5e-6, rel_batch=1e-6, their_batch=250)


def _dinov2_case(request, tmp_path, monkeypatch):
    """DINOv2 ViT-B/14 on random weights of the checkpoint's structure (dinov2.py), at 28 px (2 x 2
    patches) because a ViT-B forward on the CPU is heavy; generated images of another distribution."""
    pytest.importorskip("timm")
    from bench.metrics import dinov2

    weights = dinov2.write_random_weights(tmp_path / dinov2.DINOV2_FILE)
    monkeypatch.setitem(EXTRACTORS, "dinov2-small", ExtractorSpec(
        "dinov2-small", "test", lambda device, w="": extractors.dinov2_extractor(weights, device, size=28)))
    g = torch.Generator().manual_seed(1)
    data = Data("dino", torch.rand(4, 3, 28, 28, generator=g), torch.rand(12, 3, 28, 28, generator=g))
    return dict(kind="dinov2-small", data=data, gen=torch.rand(12, 3, 28, 28, generator=g) ** 2, batch_sizes=(12, 5),
                most=math.inf, rel_theirs=1e-4, rel_batch=1e-5, their_batch=4)


class U8(torch.utils.data.Dataset):
    """Images as torch-fidelity takes them: uint8, one per item."""

    def __init__(self, x):
        self.x = extractors.to_uint8(x)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i]


@pytest.mark.parametrize("case", [_lenet_case, _dinov2_case], ids=["lenet-digits5k", "dinov2-vitb14-28px"])
def test_fid_equals_torch_fidelity_on_the_same_extractor_and_batch_size_does_not_matter(env, case, request, tmp_path, monkeypatch):
    c = case(request, tmp_path, monkeypatch)
    kind, data, gen = c["kind"], c["data"], c["gen"]
    n = len(gen)
    ctx = base.MetricContext(data, torch.device("cpu"), batch_size=c["batch_sizes"][0])
    ours = image.fid(kind, n)(ctx, gen)["value"]
    ext = ctx.extractor(kind)
    name = fidelity.register_with_torch_fidelity(f"bench-{kind}", ext.run, ext.layers)

    theirs = fidelity.calculate_metrics(input1=U8(gen), input2=U8(data.test[:n]), fid=True, cuda=False, cache=False,
                                        verbose=False, save_cpu_ram=True, batch_size=c["their_batch"], feature_extractor=name)
    assert ours == pytest.approx(theirs["frechet_inception_distance"], rel=c["rel_theirs"])
    for bs in c["batch_sizes"][1:]:
        ctx.batch_size = bs
        ctx.begin()
        assert image.fid(kind, n)(ctx, gen)["value"] == pytest.approx(ours, rel=c["rel_batch"])
    assert 0 < ours < c["most"]


def test_the_500_sample_lenet_fid_is_torch_fidelitys_on_500_vs_the_first_500_test_images(env, digits):
    gen = digits.train[::8][:500]
    ctx = base.MetricContext(digits, torch.device("cpu"), batch_size=500)
    ours = metrics.METRICS["fid_lenet_digits5k_500_test"].compute(ctx, gen)["value"]
    ext = ctx.extractor("lenet-digits5k")
    name = fidelity.register_with_torch_fidelity("bench-lenet-500", ext.run, ext.layers)
    theirs = fidelity.calculate_metrics(input1=U8(gen), input2=U8(digits.test[:500]), fid=True, cuda=False, cache=False, verbose=False,
                                        batch_size=250, feature_extractor=name)
    assert ours == pytest.approx(theirs["frechet_inception_distance"], rel=5e-6)
    # the same images scored on 1,000 vs 1,000 come out lower: FID's finite-sample bias shrinks with N
    assert metrics.METRICS["fid_lenet_digits5k_1k_test"].compute(ctx, digits.train[::4][:1000])["value"] < ours


def _tiny_cfg(**over):
    import tomllib

    return parse_study(tomllib.loads(tiny_study_text(**over)), "tiny.toml", "tiny")


def test_nan_samples_give_nan_and_a_diverged_trial(env, monkeypatch, tmp_path):
    from bench.gan.variants import VARIANTS
    from bench.trial import train

    cfg = _tiny_cfg(steps=5, checkpoint_every=5)
    monkeypatch.setattr(train, "generate", lambda G, z, bs, mode: torch.full((len(z), 1, 28, 28), math.nan))
    hp = dict(VARIANTS["ns_gan"].defaults)
    result = train.run_trial(cfg, VARIANTS["ns_gan"], hp, train.trial_seeds(0, 0), tmp_path, torch.device("cpu"))
    assert result.outcome == "diverged" and "fid_lenet_digits5k_1k_test" in result.reason
    log = list(records.read_jsonl(tmp_path / "metrics.jsonl"))
    evals = [r for r in log if r["kind"] == "eval"]
    assert len(evals) == 1 and math.isnan(evals[0]["fid_lenet_digits5k_1k_test"])
    assert log[-1]["kind"] == "diverged"


def test_extra_values_and_extractors_are_recorded_with_every_evaluation(env, tmp_path):
    from bench.gan.variants import VARIANTS
    from bench.trial import train

    cfg = _tiny_cfg(steps=10, checkpoint_every=5, metrics='["fid_lenet_digits5k_1k_test", "prc_lenet_digits5k_1k_test"]')
    hp = dict(VARIANTS["ns_gan"].defaults)
    result = train.run_trial(cfg, VARIANTS["ns_gan"], hp, train.trial_seeds(0, 0), tmp_path, torch.device("cpu"))
    assert result.value == min(e["fid_lenet_digits5k_1k_test"] for e in result.evaluations)
    evals = [r for r in records.read_jsonl(tmp_path / "metrics.jsonl") if r["kind"] == "eval"]
    assert len(evals) == 2
    for e in evals:
        assert {"prc_lenet_digits5k_1k_test_precision", "prc_lenet_digits5k_1k_test_recall"} <= set(e)
        assert e["prc_lenet_digits5k_1k_test"] == pytest.approx(T_f1(e["prc_lenet_digits5k_1k_test_precision"], e["prc_lenet_digits5k_1k_test_recall"]), abs=1e-6)
        assert e["extractors"]["fid_lenet_digits5k_1k_test"]["extractor"] == "lenet-digits5k"
        assert len(e["extractors"]["fid_lenet_digits5k_1k_test"]["sha256"]) == 64
    # A higher-is-better metric may be reported but not be the (minimised) objective.
    with pytest.raises(ConfigError, match="higher-is-better"):
        _tiny_cfg(metrics='["prc_lenet_digits5k_1k_test"]')


def T_f1(p: float, r: float) -> float:
    return 2 * p * r / max(1e-5, p + r)  # torch-fidelity's F-score
