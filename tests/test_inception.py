"""The Inception FID path offline: torch-fidelity's real loading code on a weights file of the right
structure with random values, the errors for a missing or foreign file, equality with
torch-fidelity's `calculate_metrics` on the same images and network, batch-size independence and
the extractor recorded with the value.
Inception on a CPU is slow (about 0.2 s an image), so a handful of images is used."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import Dataset

from bench import metrics
from bench.data.base import Data
from bench.errors import HarnessError
from bench.metrics import base, extractors, fidelity, image

N = 6  # images per side


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return fidelity.write_random_inception_weights(tmp_path_factory.mktemp("w") / fidelity.INCEPTION_FILE, seed=0)


@pytest.fixture(scope="module")
def images():
    """Grey digits-like images on 8-bit levels: a generated set and a 'test split'."""
    g = torch.Generator().manual_seed(0)
    blobs = torch.nn.functional.avg_pool2d(torch.rand(2 * N, 1, 28, 28, generator=g), 5, 1, 2)
    x = torch.round((blobs - blobs.amin((1, 2, 3), keepdim=True)) / blobs.amax((1, 2, 3), keepdim=True).clamp_min(1e-6) * 255) / 255
    return x[:N], x[N:]


@pytest.fixture
def ctx(images, weights, env, monkeypatch):
    monkeypatch.setenv(fidelity.WEIGHTS_ENV, str(weights))
    data = Data("blobs", train=images[1], test=images[1])
    return base.MetricContext(data, torch.device("cpu"), batch_size=N, seed=3)


class U8(Dataset):
    def __init__(self, x: torch.Tensor):
        self.x = extractors.to_uint8(x).expand(-1, 3, -1, -1).contiguous()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def test_random_weights_load_through_torch_fidelity(weights, env, monkeypatch):
    monkeypatch.setenv(fidelity.WEIGHTS_ENV, str(weights))
    path = fidelity.resolve_inception_weights("")
    assert path == weights
    net = fidelity.inception(path, torch.device("cpu"))
    x = (torch.rand(2, 3, 28, 28, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    pool3, logits = net(x)
    assert pool3.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.isfinite(pool3).all() and pool3.std() > 1e-3  # random but not degenerate
    # The study key wins over the environment; a missing file named by either is an error naming it.
    assert fidelity.resolve_inception_weights(str(weights)) == weights
    with pytest.raises(HarnessError, match=r"\[eval\] inception_weights = '/nope.pth'.*weights-inception-2015-12-05"):
        fidelity.resolve_inception_weights("/nope.pth")


def test_float64_internal_dtype_is_really_float64(weights):
    net = fidelity.inception(weights, torch.device("cpu"), internal_dtype=torch.float64)
    assert next(net.parameters()).dtype == torch.float64
    x = (torch.rand(1, 3, 28, 28, generator=torch.Generator().manual_seed(1)) * 255).to(torch.uint8)
    f64 = net(x)[0]
    f32 = fidelity.inception(weights, torch.device("cpu"))(x)[0]
    assert torch.allclose(f64, f32, rtol=1e-3, atol=1e-4)


def test_offline_without_weights_names_the_file_and_how_to_get_it(env, monkeypatch, tmp_path):
    monkeypatch.delenv(fidelity.WEIGHTS_ENV, raising=False)
    monkeypatch.setenv(fidelity.OFFLINE_ENV, "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(HarnessError) as e:
        fidelity.resolve_inception_weights("")
    msg = str(e.value)
    for word in (fidelity.INCEPTION_FILE, fidelity.INCEPTION_URL, fidelity.WEIGHTS_ENV, "inception_weights", "[eval]"):
        assert word in msg


def test_foreign_weights_file_is_refused_by_name(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(3)}, bad)
    with pytest.raises(HarnessError, match="bad.pth: not a torch-fidelity inception-v3-compat weights file"):
        fidelity.inception(bad, torch.device("cpu"))


def test_fid_kid_is_prc_equal_torch_fidelity_and_do_not_depend_on_batch_size(ctx, images, weights):
    gen, real = images
    ours = {}
    for name, compute in {"fid": image.fid("inception", N), "kid": image.kid("inception", N, 5, N // 2),
                          "is": image.inception_score(N), "prc": image.prc("inception", N)}.items():
        ours[name] = compute(ctx, gen)
    theirs = fidelity.calculate_metrics(
        input1=U8(gen), input2=U8(real), fid=True, kid=True, isc=True, prc=True, cuda=False, cache=False, verbose=False,
        save_cpu_ram=True, batch_size=N, feature_extractor=fidelity.INCEPTION_NAME, feature_extractor_weights_path=str(weights),
        feature_layer_prc="2048", kid_subsets=5, kid_subset_size=N // 2, rng_seed=3, isc_splits=1, samples_shuffle=False)
    assert ours["fid"]["value"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-6)
    # KID: the harness takes the kernel in float64, torch-fidelity in the features' float32; same subsets.
    assert ours["kid"]["value"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=2e-3)
    assert ours["kid"]["std"] == pytest.approx(theirs["kernel_inception_distance_std"], rel=2e-2)
    assert ours["is"]["value"] == pytest.approx(theirs["inception_score_mean"], rel=1e-6)
    assert ours["prc"]["precision"] == theirs["precision"] and ours["prc"]["recall"] == theirs["recall"]
    assert ours["fid"]["value"] > 0 and math.isfinite(ours["fid"]["value"])
    # One Inception pass served all four metrics of this evaluation.
    assert len(ctx._features) == 1
    # The extractor is recorded with the values.
    prov = metrics.provenance(ctx, ["fid_inception_10k_test", "fid_lenet_digits5k_1k_test"])
    assert list(prov) == ["fid_inception_10k_test"]
    assert prov["fid_inception_10k_test"]["extractor"] == "inception-v3-compat"
    assert prov["fid_inception_10k_test"]["sha256"] == fidelity.file_sha256(weights)
    assert prov["fid_inception_10k_test"]["code"] == f"torch-fidelity {fidelity.VERSION}"
    # Independent of the batch size (the reference statistics are reused, the generated side recomputed).
    ctx.batch_size = 4
    ctx.begin()
    assert image.fid("inception", N)(ctx, gen)["value"] == pytest.approx(ours["fid"]["value"], rel=1e-6)
