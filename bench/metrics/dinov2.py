"""DINOv2 ViT-B/14 features (Oquab et al. 2023) for FD in a self-supervised feature space.

Stein et al. 2023 ("Exposing flaws of generative model evaluation metrics") found the Fréchet
distance in DINOv2 ViT-L/14 features to agree with human judgement where Inception FID does not;
ViT-B/14 is the size torch-fidelity also offers. torch-fidelity 0.4's `dinov2-vit-b-14` loads only
through `torch.hub` (network, and code from GitHub) and refuses a local weights path, so the
network is built here with timm (`vit_base_patch14_dinov2`, offline, no code download) and loaded
from a local file: Meta's `dinov2_vitb14_pretrain.pth` or timm's `model.safetensors` of
`timm/vit_base_patch14_dinov2.lvd142m` (timm's `checkpoint_filter_fn` converts Meta's keys),
strictly. Input as torch-fidelity's extractor: uint8 RGB (grey tiled), TF1-style bilinear resize
to 224 (its own function, fidelity.py), ImageNet normalisation on the 0-255 scale; output the
normed CLS token (768-d), as the hub model's forward returns. The position embedding is built for
518 px (37 x 37 patches) as in the checkpoint and resampled by timm at run time (bicubic) for 224 px
(16 x 16); Meta's hub code interpolates its own way, so values are close to, not bit-identical
with, torch-fidelity's `dinov2-vit-b-14` (not checked here: no network).

Weights, in this order: $BENCH_DINOV2_WEIGHTS, the torch hub cache
(<hub>/checkpoints/dinov2_vitb14_pretrain.pth), else a download from DINOV2_URL unless $BENCH_OFFLINE.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch

from bench import records
from bench.errors import HarnessError
from bench.metrics import fidelity

NAME = "dinov2-vitb14"
TIMM_MODEL = "vit_base_patch14_dinov2"
DINOV2_URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth"
DINOV2_FILE = DINOV2_URL.rsplit("/", 1)[-1]
WEIGHTS_ENV = "BENCH_DINOV2_WEIGHTS"
INPUT_SIZE = 224  # torch-fidelity's FeatureExtractorDinoV2.INPUT_IMAGE_SIZE
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _hub_file() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / DINOV2_FILE


def _missing(tried: str) -> str:
    return (f"the DINOv2 weights file {DINOV2_FILE} is not available ({tried}); download it once from {DINOV2_URL} "
            f"and set ${WEIGHTS_ENV}=/path/{DINOV2_FILE} (or copy it to {_hub_file()})")


def resolve_weights(allow_download: bool | None = None) -> Path:
    """The weights file: $BENCH_DINOV2_WEIGHTS, the torch hub cache, else a download (unless $BENCH_OFFLINE)."""
    return fidelity.resolve_weights_file([(f"${WEIGHTS_ENV}", os.environ.get(WEIGHTS_ENV, ""))], _hub_file(), DINOV2_URL,
                                         _missing, allow_download)


def network() -> torch.nn.Module:
    """The ViT-B/14 of DINOv2 with random weights, shaped like the checkpoint (518 px position embedding)."""
    import timm

    return timm.create_model(TIMM_MODEL, pretrained=False, num_classes=0, img_size=518, dynamic_img_size=True)


def load(path: Path) -> torch.nn.Module:
    """The network with the weights of `path` (.pth from Meta or timm, or .safetensors), loaded strictly;
    a file of another structure raises HarnessError naming it."""
    from timm.models.vision_transformer import checkpoint_filter_fn

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = records.load_weights(path)  # weights_only: a file cannot run code (issue #10)
    net = network()
    try:
        net.load_state_dict(checkpoint_filter_fn(dict(state), net), strict=True)
    except (RuntimeError, KeyError, ValueError, AttributeError) as e:
        raise HarnessError(f"{path}: not DINOv2 ViT-B/14 weights ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                           + _missing("this file cannot be used")) from None
    return net.eval().requires_grad_(False)


def write_random_weights(path: Path, seed: int = 0) -> Path:
    """A file of the structure of Meta's checkpoint (with its `mask_token`) holding timm's random
    initialisation: for tests only, its features are not DINOv2 features."""
    torch.manual_seed(seed)
    state = {k: v.clone() for k, v in network().state_dict().items()}
    state["mask_token"] = torch.zeros(1, 768)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def runner(path: Path, device: torch.device, size: int = INPUT_SIZE) -> tuple[Callable[[torch.Tensor], dict[str, torch.Tensor]], dict[str, str]]:
    """The network on weights `path` as an extractor's `run` ((B, 1|3, H, W) uint8 -> {"cls": (B, 768)}),
    and what identifies it (name, sha256, preprocess, meta); `size` (input px) other than 224 only for tests."""
    import timm

    net = load(path).to(device)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1) * 255

    def run(x: torch.Tensor) -> dict[str, torch.Tensor]:  # (B, 1|3, H, W) uint8
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grey tiled to 3 channels, as for Inception
        x = fidelity.resize_like_tf1(x.float(), size)  # (B, 3, size, size), 0-255
        return {"cls": net((x - mean) / std)}  # (B, 768): the normed CLS token

    return run, {
        "name": NAME if size == INPUT_SIZE else f"{NAME}-{size}px", "sha256": fidelity.file_sha256(path),
        "preprocess": f"uint8; grey tiled to RGB; TF1 bilinear resize to {size} (torch-fidelity); ImageNet mean/std on 0-255",
        "code": f"timm {timm.__version__} {TIMM_MODEL}; torch-fidelity {fidelity.VERSION} resize", "weights": path.name,
    }
