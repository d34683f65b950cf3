"""Datasets: splits and their sizes, generated data against the released generator, seeds, the offline
error, torchvision files read from disk, the CelebA preprocessing, and the two data paths."""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest
import torch

from bench import data
from bench.data import base, stream, synthetic, vision
from bench.errors import HarnessError

OFFLINE_SETS = {  # name: (train, test, holdout or None)
    "digits5k": (4000, 1000, None),
    "triangles": (60_000, 10_000, 10_000),
    "ring8": (60_000, 10_000, None),
    "grid25": (60_000, 10_000, None),
}


@pytest.mark.parametrize("name", list(data.DATASETS))
def test_registry_entries_are_documented(name):
    spec = data.DATASETS[name]
    assert spec.name == name and spec.doc and len(spec.shape) in (1, 3)
    assert spec.needs_download == (name in vision.SOURCES)


@pytest.mark.parametrize("name", list(OFFLINE_SETS))
def test_offline_datasets_split_sizes_shapes_and_ranges(name, env, tmp_path):
    d = data.load(name, tmp_path)
    n_train, n_test, n_holdout = OFFLINE_SETS[name]
    assert (len(d.train), len(d.test)) == (n_train, n_test)
    assert tuple(d.train.shape[1:]) == tuple(d.test.shape[1:]) == data.DATASETS[name].shape == d.shape
    if n_holdout is None:
        with pytest.raises(ValueError, match="holdout"):
            d.split("holdout")
    else:
        assert len(d.split("holdout")) == n_holdout
    if len(d.shape) == 3:
        assert d.train.dtype == torch.float32 and 0 <= d.train.min() and d.train.max() <= 1
    # train and test are different samples, not views of one another
    assert d.train.data_ptr() != d.test.data_ptr()
    assert not torch.equal(d.train[: len(d.test)], d.test)
    assert len(d.fingerprint()) == 64 and d.fingerprint() == d.fingerprint()


def _released_triangles(n: int, seed: int) -> np.ndarray:
    """google/compare_gan colabs/Convex_Polygons_Dataset.ipynb, GenerateDataset(n, 3, 20, 0.75, 28, 8, True, seed),
    rewritten here as the reference: one polygon at a time, matplotlib's point-in-polygon, scipy's 8x8 convolution."""
    from matplotlib import path
    from scipy import ndimage

    np.random.seed(seed)
    out = []
    for _ in range(n):
        angles = np.array([i * 120.0 + 10.0 + np.random.rand() * 110.0 for i in range(3)]) * np.pi / 180.0
        x = (np.column_stack((np.cos(angles), np.sin(angles))) + 1.0) / 2.0
        theta = np.radians(np.random.rand() * 2 * np.pi)
        x = x @ np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        v = x * 21.0
        v += 14.0 - v.mean(axis=0)
        gx, gy = np.mgrid[0:224, 0:224]
        inside = path.Path(v * 8).contains_points(np.column_stack((gx.ravel(), gy.ravel()))).reshape(224, 224)
        outside = ndimage.convolve((~inside).astype(np.float32), np.ones((8, 8)), mode="constant", cval=1.0)
        out.append(outside[::8, ::8] / 64.0)
    return np.array(out)[np.random.permutation(n)]


def test_triangles_equal_the_released_generator():
    ours = synthetic.generate_triangles(40, seed=3) / 64.0
    np.testing.assert_array_equal(ours, _released_triangles(40, seed=3))


def test_triangles_are_dark_centred_and_within_the_scaled_circle():
    img = synthetic.generate_triangles(300, seed=0) / 64.0
    assert set(np.unique(img)) <= {k / 64 for k in range(65)} and img.mean() > 0.8  # dark triangles on white
    dark = 1 - img
    area = dark.sum(axis=(1, 2))
    # vertices lie on a circle of radius 28 * 0.75 / 2 = 10.5: at most the equilateral area 3*sqrt(3)/4 * 10.5^2
    assert 0 < area.min() and area.max() <= 3 * 3**0.5 / 4 * 10.5**2
    # the vertex mean (= the area centroid) is moved to 14; pixel p's 8x8 window is centred on p + 1/16
    rows = (dark.sum(axis=2) * np.arange(28)).sum(axis=1) / area
    cols = (dark.sum(axis=1) * np.arange(28)).sum(axis=1) / area
    np.testing.assert_allclose(rows, 14 - 1 / 16, atol=0.05)
    np.testing.assert_allclose(cols, 14 - 1 / 16, atol=0.05)


@pytest.mark.parametrize("make", [
    lambda seed: synthetic.generate_triangles(30, seed),
    lambda seed: synthetic.MIXTURES["ring8"].sample(500, seed)[0],
    lambda seed: synthetic.MIXTURES["grid25"].sample(500, seed)[0],
], ids=["triangles", "ring8", "grid25"])
def test_generated_sets_identical_for_one_seed_different_for_another(make):
    a, b, c = make(1), make(1), make(2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name, k, std, radius", [("ring8", 8, 0.02, 2.0), ("grid25", 25, 0.05, None)])
def test_mixture_geometry(name, k, std, radius):
    m = synthetic.MIXTURES[name]
    assert len(m.centres) == k and m.std == std
    if radius:
        np.testing.assert_allclose(np.linalg.norm(m.means, axis=1), radius)
    else:
        assert sorted({c[0] for c in m.centres}) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    x, y = m.sample(20_000, seed=0)
    assert x.shape == (20_000, 2) and x.dtype == np.float32
    resid = x - m.means[y]
    assert abs(resid.std() - std) < 0.05 * std and np.bincount(y, minlength=k).min() > 0.7 * 20_000 / k


@pytest.mark.parametrize("name", list(vision.SOURCES))
def test_offline_missing_files_give_one_clear_error(name, tmp_path, monkeypatch):
    import torchvision.datasets  # noqa: F401  (its first import is slow; the error path is timed)

    monkeypatch.setenv("BENCH_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(HarnessError) as e:
        data.DATASETS[name].load(tmp_path)
    msg = str(e.value)
    assert time.perf_counter() - t0 < 5
    assert msg.startswith(f"dataset {name}:") and str(tmp_path / vision.SOURCES[name].folder) in msg
    assert f"bench fetch {name}" in msg and "BENCH_OFFLINE" in msg and "\n" not in msg


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_failed_download_is_quick_and_named(name, tmp_path, monkeypatch):
    """The real torchvision download path, pointed at a closed local port: nothing can be fetched."""
    import torchvision.datasets

    monkeypatch.delenv("BENCH_OFFLINE", raising=False)
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    t0 = time.perf_counter()
    with pytest.raises(HarnessError, match=f"dataset {name}: .*the download failed") as e:
        data.DATASETS[name].load(tmp_path)
    assert time.perf_counter() - t0 < 10 and "bench fetch" in str(e.value)


def _write_idx(path, array: np.ndarray) -> None:
    """MNIST's idx format: magic (0x08 = uint8, ndim), big-endian sizes, then the bytes."""
    header = struct.pack(">HBB", 0, 8, array.ndim) + b"".join(struct.pack(">I", s) for s in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_torchvision_files_on_disk_are_read_with_splits_apart(name, folder, tmp_path):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train_x, test_x = rng.integers(0, 256, (12, 28, 28)), rng.integers(0, 256, (5, 28, 28))
    _write_idx(raw / "train-images-idx3-ubyte", train_x)
    _write_idx(raw / "train-labels-idx1-ubyte", np.arange(12) % 10)
    _write_idx(raw / "t10k-images-idx3-ubyte", test_x)
    _write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(5))
    d = data.DATASETS[name].load(tmp_path)
    assert d.train.shape == (12, 1, 28, 28) and d.test.shape == (5, 1, 28, 28)
    np.testing.assert_allclose(d.train[:, 0].numpy(), train_x / 255.0, rtol=1e-6)
    np.testing.assert_allclose(d.test[:, 0].numpy(), test_x / 255.0, rtol=1e-6)
    assert d.train_labels.tolist() == (np.arange(12) % 10).tolist() and d.test_labels.tolist() == list(range(5))


def test_celeba_crop_and_tf1_bilinear_resize_by_hand():
    rows, cols = torch.meshgrid(torch.arange(218.0), torch.arange(178.0), indexing="ij")
    image = torch.stack([rows, cols, torch.full_like(rows, 200.0)])  # (3, 218, 178): ramps and a constant
    out = vision.crop_160_resize_64(image)
    assert out.shape == (3, 64, 64)
    # crop offsets (218-160)//2 = 29 and (178-160)//2 = 9; TF1 bilinear samples source 2.5 * target
    expect = torch.arange(64, dtype=torch.float32) * 2.5
    torch.testing.assert_close(out[0, :, 5], (29 + expect) / 255)
    torch.testing.assert_close(out[1, 7, :], (9 + expect) / 255)
    torch.testing.assert_close(out[2], torch.full((64, 64), 200 / 255))


def test_lazy_images_slice_to_tensors():
    class Fake:
        def __len__(self):
            return 7

        def __getitem__(self, i):
            return torch.full((3, 4, 4), float(i)), 0

    lazy = vision.LazyImages(Fake(), (3, 4, 4), "fake")
    assert lazy.shape == (7, 3, 4, 4) and lazy[2:5].shape == (3, 3, 4, 4) and lazy[6][0, 0, 0] == 6
    d = base.Data("fake", lazy, lazy)
    assert d.shape == (3, 4, 4) and len(d.fingerprint()) == 64


def _epochs(stream, n: int) -> list[torch.Tensor]:
    return [stream.next() for _ in range(n)]


def test_device_resident_and_streamed_paths_draw_the_same_seeded_batches():
    images = torch.arange(10, dtype=torch.float32).view(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous()
    cpu = torch.device("cpu")
    a = _epochs(stream.BatchStream(images, 3, seed=5, device=cpu), 6)  # 3 batches per epoch, one image dropped
    b = _epochs(stream.LoaderStream(vision.LazyImages(torch.utils.data.TensorDataset(images), (1, 2, 2), "t"), 3, 5, cpu, workers=0), 6)
    c = _epochs(stream.BatchStream(images, 3, seed=6, device=cpu), 6)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    first_epoch = torch.cat(a[:3]).flatten(1)[:, 0]
    assert len(set(first_epoch.tolist())) == 9  # without replacement within an epoch
    assert stream.BatchStream(images, 3, 5, cpu).describe()["first_epoch_sha256"] == stream.first_epoch_digest(10, 5)


def test_resolve_root_prefers_study_file_then_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "env"))
    assert data.resolve_root(str(tmp_path / "file")) == tmp_path / "file"
    assert data.resolve_root("") == tmp_path / "env"
    monkeypatch.delenv("BENCH_DATA")
    assert data.resolve_root("").name == "data"
