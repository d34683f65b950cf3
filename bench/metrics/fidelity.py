"""The one place that imports torch-fidelity (toshas/torch-fidelity 0.4; Obukhov et al.).

The harness extracts features itself (so generated images never leave the device and never touch
disk) and then hands them to torch-fidelity's own small steps: `fid_features_to_statistics` and
`fid_statistics_to_metric` (FID; matches the TensorFlow reference to about 1e-6 relative),
`kid_features_to_metric`, `isc_features_to_metric` and `prc_features_to_metric`. The Inception
network is torch-fidelity's `inception-v3-compat` (the 2015-12-05 TensorFlow graph ported
bit-exactly, bilinear resize to 299 as TF 1.x did), built through its own registry.

torch-fidelity pitfalls handled here rather than met:
- mu/sigma dtypes: `fid_statistics_to_metric` asserts equal dtypes, and float32 features give a
  float32 mu beside a float64 sigma; statistics from other tools may be float32. Features are cast
  to float64 before the statistics and every statistic to float64 before the distance.
- `feature_extractor_internal_dtype='float64'` silently yields float32 (its `text_to_dtype` maps
  both to float32); `inception(..., internal_dtype=torch.float64)` casts the network and its input
  dtype itself.
- A fresh `np.random.RandomState(rng_seed)` per call: KID subsets and IS/PRC shuffles repeat
  exactly for one seed, so callers pass the seed explicitly (the study's evaluation seed) and vary
  it for repeated evaluations.
- The `np.int` crash with class-conditional generators and the name-only disk cache both live in
  torch-fidelity's input pipeline, which the harness never calls: it generates and extracts itself
  and caches reference statistics by content (base.py).
"""

from __future__ import annotations

import hashlib
import math
import os
import socket
import sys
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch_fidelity
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, isc_features_to_metric
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric
from torch_fidelity.metric_prc import KEY_METRIC_F_SCORE, KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric
from torch_fidelity.utils import create_feature_extractor

from bench.errors import HarnessError

__all__ = [
    "statistics", "frechet_distance", "kid", "inception_score", "precision_recall", "inception",
    "resolve_inception_weights", "resolve_weights_file", "resize_like_tf1", "write_random_inception_weights", "register_with_torch_fidelity", "INCEPTION_NAME", "INCEPTION_FILE", "VERSION",
]

VERSION = torch_fidelity.__version__
INCEPTION_NAME = "inception-v3-compat"  # torch-fidelity's registry name for the TF-compatible network
INCEPTION_URL = URL_INCEPTION_V3
INCEPTION_FILE = INCEPTION_URL.rsplit("/", 1)[-1]  # weights-inception-2015-12-05-6726825d.pth
INCEPTION_LAYERS = ("2048", "logits_unbiased")  # pool3 (FID, KID, PRC) and pre-bias logits (IS, as TF's IS code)
WEIGHTS_ENV = "BENCH_INCEPTION_WEIGHTS"
OFFLINE_ENV = "BENCH_OFFLINE"


# ---------------------------------------------------------------- FID, KID, IS, precision/recall


def statistics(features: torch.Tensor) -> dict[str, np.ndarray]:
    """mu (D,) and sigma (D, D), float64, of an (N, D) feature matrix."""
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be (N >= 2, D), got {tuple(features.shape)}")
    return fid_features_to_statistics(features.detach().cpu().to(torch.float64))


def frechet_distance(stats_1: dict[str, np.ndarray], stats_2: dict[str, np.ndarray]) -> float:
    """‖mu1 - mu2‖² + Tr(S1 + S2 - 2 (S1 S2)^½); NaN when either side holds a non-finite value."""
    for s in (stats_1, stats_2):
        if not (np.isfinite(s["mu"]).all() and np.isfinite(s["sigma"]).all()):
            return math.nan
    s1 = {k: np.asarray(stats_1[k], dtype=np.float64) for k in ("mu", "sigma")}
    s2 = {k: np.asarray(stats_2[k], dtype=np.float64) for k in ("mu", "sigma")}
    if s1["mu"].shape != s2["mu"].shape or s1["sigma"].shape != s2["sigma"].shape:
        raise HarnessError(f"statistics of different feature sizes: mu {s1['mu'].shape} vs {s2['mu'].shape}")
    return float(fid_statistics_to_metric(s1, s2, verbose=False)[KEY_METRIC_FID])


def kid(gen: torch.Tensor, real: torch.Tensor, subsets: int, subset_size: int, seed: int) -> dict[str, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD² with the cubic polynomial
    kernel, mean and std over `subsets` random subsets of `subset_size` (drawn with `seed`)."""
    out = kid_features_to_metric(gen.detach().cpu().double(), real.detach().cpu().double(), kid_subsets=subsets,
                                 kid_subset_size=subset_size, rng_seed=seed, verbose=False)
    return {"mean": out[KEY_METRIC_KID_MEAN], "std": out[KEY_METRIC_KID_STD]}


def inception_score(logits: torch.Tensor, splits: int = 1) -> float:
    """exp(E_x KL(p(y|x) ‖ p(y))) from logits; one split over all samples, in order (PROTOCOL.md)."""
    return float(isc_features_to_metric(logits.detach().cpu(), splits=splits, shuffle=False)[KEY_METRIC_ISC_MEAN])


def precision_recall(gen: torch.Tensor, real: torch.Tensor, neighborhood: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): k-NN balls around each set's
    features; precision = share of generated inside the real manifold, recall the converse."""
    out = prc_features_to_metric(gen.detach().cpu().float(), real.detach().cpu().float(), prc_neighborhood=neighborhood,
                                 prc_batch_size=10000, save_cpu_ram=False, verbose=False)
    return {"precision": out[KEY_METRIC_PRECISION], "recall": out[KEY_METRIC_RECALL], "f_score": out[KEY_METRIC_F_SCORE]}


def resize_like_tf1(x: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, H, W) float -> (B, C, size, size) by torch-fidelity's TF 1.x bilinear resize, the one its
    Inception and DINOv2 extractors use."""
    return interpolate_bilinear_2d_like_tensorflow1x(x, size=(size, size), align_corners=False)


# ---------------------------------------------------------------- the Inception network and its weights


def _hub_file() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


STUDY_KEY = "[eval] inception_weights"  # where a study names its weights file


def _missing_message(tried: str, key: str = STUDY_KEY) -> str:
    where = (f"with `inception_weights = \"/path/{INCEPTION_FILE}\"` under [eval] in the study file" if key == STUDY_KEY
             else f"with `{key} /path/{INCEPTION_FILE}`")
    return (f"the Inception weights file {INCEPTION_FILE} is not available ({tried}). Download it once from "
            f"{INCEPTION_URL} and point the harness at it {where} or with ${WEIGHTS_ENV}=/path/{INCEPTION_FILE}, or copy it to "
            f"{_hub_file()} (where torch-fidelity keeps its download)")


def resolve_weights_file(sources: list[tuple[str, str]], hub: Path, url: str, missing: Callable[[str], str],
                         allow_download: bool | None = None) -> Path:
    """A network's weights file, in this order: the first of `sources` that is set (pairs of how the user
    names it, such as a study key, a flag or `$ENV`, and its value), the torch hub cache file `hub`, else
    a download of `url` into `hub` (unless $BENCH_OFFLINE is set). `missing(tried)` is the message that
    names the file, the keys that set it and where to get it; every failure raises HarnessError with it.
    The download is loaded with weights_only=True, as every weights file is (records.load_weights)."""
    for source, value in sources:
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise HarnessError(f"{source} = {value!r}: no such file; " + missing(f"{path} does not exist"))
            return path
    if hub.is_file():
        return hub
    if allow_download is None:
        allow_download = os.environ.get(OFFLINE_ENV, "") in ("", "0")
    if not allow_download:
        raise HarnessError(missing(f"${OFFLINE_ENV} is set and {hub} does not exist"))
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)  # an offline node should fail in seconds, not hang
    try:
        with redirect_stdout(sys.stderr):
            torch.hub.load_state_dict_from_url(url, progress=False, map_location="cpu", weights_only=True)
    except Exception as e:  # URLError, timeouts, proxies: all mean "no network" to the user
        raise HarnessError(missing(f"downloading it failed: {type(e).__name__}: {e}")) from None
    finally:
        socket.setdefaulttimeout(old)
    return hub


def resolve_inception_weights(configured: str = "", allow_download: bool | None = None, key: str = STUDY_KEY) -> Path:
    """The weights file to use, in this order: the study's `[eval] inception_weights`, $BENCH_INCEPTION_WEIGHTS,
    torch-fidelity's download in the torch hub cache, and else a download through torch-fidelity
    (unless $BENCH_OFFLINE is set). Raises HarnessError naming the file and how to get it. `key`: how
    the caller's user names the file (the study key, or a command's flag such as `bench fid --weights`)."""
    return resolve_weights_file([(key, configured), (f"${WEIGHTS_ENV}", os.environ.get(WEIGHTS_ENV, ""))], _hub_file(),
                                INCEPTION_URL, lambda tried: _missing_message(tried, key), allow_download)


_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_MEMO:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _SHA_MEMO[key] = h.hexdigest()
    return _SHA_MEMO[key]


def inception(weights: Path, device: torch.device, internal_dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """torch-fidelity's `inception-v3-compat` with its real loading code (`torch.load` + strict
    `load_state_dict`), returning the INCEPTION_LAYERS for a (B, 3, H, W) uint8 batch.

    A file of the wrong structure raises HarnessError naming it."""
    from bench import records

    # torch-fidelity loads the file with weights_only=False, which would run code a file carries:
    # load it safely first, so only a file of plain tensors ever reaches that load (issue #10).
    records.load_weights(weights)
    try:
        net = create_feature_extractor(INCEPTION_NAME, list(INCEPTION_LAYERS), cuda=False,
                                       feature_extractor_weights_path=str(weights), verbose=False)
    except (RuntimeError, KeyError, EOFError, OSError, ValueError) as e:
        # torch.load and load_state_dict raise these for a truncated or foreign file
        raise HarnessError(f"{weights}: not a torch-fidelity {INCEPTION_NAME} weights file ({type(e).__name__}: "
                           f"{str(e).splitlines()[0][:200]}); " + _missing_message("this file cannot be used")) from None
    if internal_dtype != torch.float32:
        net.to(internal_dtype)
        net.feature_extractor_internal_dtype = internal_dtype  # what text_to_dtype('float64') fails to set
    return net.to(device)


def write_random_inception_weights(path: Path, seed: int = 0) -> Path:
    """A weights file of the exact structure torch-fidelity loads, with random values (He-normal
    convolutions, so activations keep their scale through the 94 layers). For tests and offline
    benchmarks only: features from it are not Inception features."""
    class _Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # build the structure, skip loading
            return None

    empty = Path(str(path) + ".empty")
    torch.save({}, empty)
    try:
        net = _Unloaded(INCEPTION_NAME, ["2048"], feature_extractor_weights_path=str(empty))
    finally:
        empty.unlink(missing_ok=True)
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, v in net.state_dict().items():
        if k.endswith("conv.weight"):
            fan_in = v[0].numel()
            v = torch.randn(v.shape, generator=g) * math.sqrt(2.0 / fan_in)
        elif k.endswith("bn.running_var"):
            v = 0.5 + torch.rand(v.shape, generator=g)
        elif k.endswith("bn.running_mean"):
            v = 0.1 * torch.randn(v.shape, generator=g)
        elif k == "fc.weight":
            v = torch.randn(v.shape, generator=g) / math.sqrt(v.shape[1])
        elif k == "fc.bias":
            v = 0.1 * torch.randn(v.shape, generator=g)
        state[k] = v.clone()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def register_with_torch_fidelity(name: str, run: Callable[[torch.Tensor], dict[str, torch.Tensor]], layers: tuple[str, ...]) -> str:
    """Register one of the harness's extractors in torch-fidelity's registry under `name` (replacing
    an earlier one), so `calculate_metrics(feature_extractor=name, ...)` runs the very same network:
    tests and the benchmark compare torch-fidelity's end-to-end path with the harness's."""
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    class Wrapped(FeatureExtractorBase):
        def __init__(self, name_: str, features_list: list[str], **kwargs: Any):
            super().__init__(name_, features_list)

        @staticmethod
        def get_provided_features_list() -> tuple[str, ...]:
            return layers

        @staticmethod
        def get_default_feature_layer_for_metric(metric: str) -> str:
            return layers[0]

        @staticmethod
        def can_be_compiled() -> bool:
            return False

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            out = run(x)
            return tuple(out[k].float() for k in self.features_list)

    if name == INCEPTION_NAME:
        raise ValueError(f"{INCEPTION_NAME} is torch-fidelity's own; pass feature_extractor_weights_path instead")
    FEATURE_EXTRACTORS_REGISTRY.pop(name, None)
    register_feature_extractor(name, Wrapped)
    return name


def calculate_metrics(**kwargs: Any) -> dict[str, float]:
    """torch-fidelity's own end-to-end entry point (for cross-checks and the benchmark only)."""
    return torch_fidelity.calculate_metrics(**kwargs)
