"""FD in DINOv2 ViT-B/14 features, on random weights of the checkpoint's structure (the real file needs
the network): Meta's key layout loads strictly, features have the right shape, do
not depend on the batch size, and the harness's FD equals torch-fidelity's end to end on the same
network. A ViT-B forward on the CPU is heavy: the 224 px shape check runs on 2 images, the rest at
28 px (2 x 2 patches; the position embedding is resampled by timm at run time)."""

from __future__ import annotations

import pytest
import torch

from bench.data.base import Data
from bench.errors import HarnessError
from bench.metrics import base, extractors, fidelity, image
from bench.metrics.extractors import EXTRACTORS, ExtractorSpec

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


def test_fd_is_batch_size_independent_and_equals_torch_fidelity(env, weights, monkeypatch):
    monkeypatch.setitem(EXTRACTORS, "dinov2-small", ExtractorSpec(
        "dinov2-small", "test", lambda device, w="": extractors.dinov2_extractor(weights, device, size=28)))
    g = torch.Generator().manual_seed(1)
    data = Data("dino", torch.rand(4, 3, 28, 28, generator=g), torch.rand(12, 3, 28, 28, generator=g))
    gen = torch.rand(12, 3, 28, 28, generator=g) ** 2  # another distribution
    values = []
    for bs in (12, 5):
        ctx = base.MetricContext(data, torch.device("cpu"), batch_size=bs)
        ctx.begin()
        values.append(image.fid("dinov2-small", 12)(ctx, gen)["value"])
    assert values[0] == pytest.approx(values[1], rel=1e-5) and values[0] > 0
    ext = ctx.extractor("dinov2-small")
    name = fidelity.register_with_torch_fidelity("bench-dinov2-small", ext.run, ext.layers)

    class U8(torch.utils.data.Dataset):
        def __init__(self, x):
            self.x = extractors.to_uint8(x)

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i]

    theirs = fidelity.calculate_metrics(input1=U8(gen), input2=U8(data.test), fid=True, cuda=False, cache=False,
                                        verbose=False, save_cpu_ram=True, batch_size=4, feature_extractor=name)
    assert values[0] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-4)
