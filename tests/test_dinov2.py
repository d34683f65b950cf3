"""FD in DINOv2 ViT-B/14 features, on random weights of the checkpoint's structure (the real file needs
the network): Meta's key layout loads strictly, features have the right shape, and the metric reaches
the report of a tiny study. That its FD does not depend on the batch size and equals torch-fidelity's
end to end on the same network is test_metrics.py's FID test, parametrized over LeNet and DINOv2.
A ViT-B forward on the CPU is heavy: the 224 px shape check runs on 2 images, the study on a few."""

from __future__ import annotations

import dataclasses
import math
import tomllib

import pandas as pd
import pytest
import torch

from bench.errors import HarnessError
from bench.metrics import extractors, fidelity, image

from .conftest import tiny_study_text

pytest.importorskip("timm")
from bench.metrics import dinov2  # noqa: E402


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return dinov2.write_random_weights(tmp_path_factory.mktemp("dinov2") / dinov2.DINOV2_FILE)


def test_features_are_768_d_at_224_px_for_grey_and_rgb(weights):
    ext = extractors.dinov2_extractor(weights, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=g)
    with torch.no_grad():
        out = ext.run(rgb)["cls"]
        small = extractors.dinov2_extractor(weights, torch.device("cpu"), size=28)
        grey, tiled = small.run(rgb[:, :1])["cls"], small.run(rgb[:, :1].expand(-1, 3, -1, -1))["cls"]
    assert out.shape == (2, 768) and torch.isfinite(out).all() and not torch.allclose(out[0], out[1])
    assert torch.equal(grey, tiled) and small.name == "dinov2-vitb14-28px"
    assert ext.name == "dinov2-vitb14" and ext.sha256 == fidelity.file_sha256(weights)


def test_a_foreign_file_or_no_file_is_one_clear_error(tmp_path, monkeypatch):
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(3)}, bad)
    with pytest.raises(HarnessError, match=r"bad.pth: not DINOv2 ViT-B/14 weights.*dinov2_vitb14_pretrain.pth"):
        dinov2.load(bad)
    monkeypatch.setenv("BENCH_DINOV2_WEIGHTS", str(tmp_path / "missing.pth"))
    with pytest.raises(HarnessError, match=r"BENCH_DINOV2_WEIGHTS.*no such file.*https://dl.fbaipublicfiles.com/dinov2"):
        dinov2.resolve_weights()
    monkeypatch.delenv("BENCH_DINOV2_WEIGHTS")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv("BENCH_OFFLINE", "1")
    with pytest.raises(HarnessError, match=r"BENCH_OFFLINE is set"):
        dinov2.resolve_weights()


# ViT-B/14 at 224 px runs at about 2 s an image on the shared 2-core CPU (timed with 25 digits), so the
# report check uses 20 generated and 20 test images, not 10,000: a protocol for this test only.
SMALL = 20


@pytest.mark.slow
def test_fd_in_dinov2_features_appears_in_the_report_of_a_tiny_study(env, weights, monkeypatch, tmp_path):
    """fd_dinov2_vitb14_10k_test's own extractor (224 px) and Fréchet code on SMALL images, registered at
    run time, in a one-trial study run in-process: report.md's secondary metrics table and summary.csv show it."""
    from bench import metrics, records, report, storage
    from bench.config import parse_study
    from bench.gan.variants import VARIANTS
    from bench.report.tables import fmt
    from bench.study import runner

    real = metrics.METRICS["fd_dinov2_vitb14_10k_test"]
    name = f"fd_dinov2_vitb14_{SMALL}_test"
    monkeypatch.setitem(metrics.METRICS, name, dataclasses.replace(
        real, name=name, doc=f"{real.doc} (test protocol: {SMALL} vs {SMALL})", num_samples=SMALL,
        compute=image.fid(real.extractor, SMALL)))
    monkeypatch.setenv(dinov2.WEIGHTS_ENV, str(weights))
    text = tiny_study_text(variants='["ns_gan"]', checkpoint_every=10, metrics=f'["fid_lenet_digits5k_1k_test", "{name}"]')
    cfg = parse_study(tomllib.loads(text), "tiny.toml")
    url = storage.resolve_url(cfg)
    runner.open_study(cfg, VARIANTS["ns_gan"], url, create=True)
    runner.run_variants(cfg, ["ns_gan"], url, progress=False)
    log = records.study_dir(cfg.name) / "ns_gan" / "trial-0000" / "metrics.jsonl"
    (logged,) = [x[name] for x in records.read_jsonl(log) if name in x]
    assert math.isfinite(logged) and logged > 0
    report.write_report(cfg, tmp_path / "report", notebook=False, resamples=100)
    secondary = (tmp_path / "report" / "report.md").read_text().split("## Secondary metrics", 1)[1].split("\n## ", 1)[0]
    (row,) = [line for line in secondary.splitlines() if f"| {name} |" in line]
    print(row)
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    assert summary[f"{name}_best_trial"].iloc[0] == pytest.approx(logged)
    assert row.startswith("| digits5k | ns_gan |") and f"| {fmt(logged)} |" in row  # best trial's value
