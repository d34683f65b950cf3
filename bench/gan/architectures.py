"""Architectures: one registry, the same networks for every variant (PROTOCOL.md, "Architecture").

`infogan` is the InfoGAN-style pair used by Lucic et al. for every dataset:
  D: conv64 4x4 s2 -> lrelu(0.2) -> conv128 4x4 s2 -> [BN] -> lrelu -> FC1024 -> [BN] -> lrelu -> FC1
  G: FC1024 -> BN -> lrelu -> FC 128*(H/4)*(W/4) -> BN -> lrelu -> deconv64 4x4 s2 -> BN -> lrelu
     -> deconv C 4x4 s2 -> sigmoid
Init N(0, 0.02) with zero biases; BN momentum 0.999 in TensorFlow's convention (PyTorch momentum
0.001) and eps 1e-3. D returns raw logits (no sigmoid), so any loss can be put on it. `width`
scales every channel/unit count for fast CPU runs; width 1.0 is the paper's network.

`dcgan` and `sndcgan` are the two convolutional pairs of Kurach et al. 2019 ("A Large-Scale Study
on Regularization and Normalization in GANs"), as in google/compare_gan's `architectures/dcgan.py`
and `sndcgan.py`, for CIFAR-10 and CelebA; `mlp` is the small pair of Metz et al. 2017 (unrolled
GANs, appendix A) for the 2-D mixtures `ring8` and `grid25`. Each entry says which sample shapes
it accepts (`accepts`), so a study pairing an architecture with data it cannot take is refused
when the study file is loaded.

Besides the discriminator, an architecture may offer the other D roles a variant can ask for
(`Variant.d_role`): an `autoencoder` (BEGAN's D, whose output is the per-example reconstruction
error) and an `encoder` (the VAE's q(z|x): the D trunk with a 2·z_dim head, `GaussianEncoder`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

BN_MOMENTUM = 1.0 - 0.999  # TF's decay 0.999 expressed as PyTorch's momentum
BN_EPS = 1e-3
LRELU = 0.2


def _w(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) weights and zero biases for conv/linear layers; BN starts at gamma 1, beta 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            # a spectrally normalised layer computes `weight`; initialise the stored original
            spectral = nn.utils.parametrize.is_parametrized(m, "weight")
            nn.init.normal_(m.parametrizations.weight.original if spectral else m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _bn(n: int, dim: int, on: bool) -> nn.Module:
    if not on:
        return nn.Identity()
    cls = nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d
    return cls(n, eps=BN_EPS, momentum=BN_MOMENTUM)


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"lrelu": lambda: nn.LeakyReLU(LRELU), "relu": nn.ReLU}


class InfoGANGenerator(nn.Module):
    """compare_gan v1's `AbstractGAN.generator` (LeakyReLU 0.2 after each BN); with activation="relu"
    its VAE `decoder`, the same layers with ReLU (compare_gan/src/gans/VAE.py)."""

    def __init__(self, z_dim: int, shape: tuple[int, int, int], width: float = 1.0, activation: str = "lrelu"):
        super().__init__()
        act = ACTIVATIONS[activation]
        c, h, w = shape
        if h % 4 or w % 4:
            raise ValueError(f"infogan needs image sides divisible by 4, got {h}x{w}")
        self.shape = shape
        fc, ch, dc = _w(1024, width), _w(128, width), _w(64, width)
        self.ch, self.h4, self.w4 = ch, h // 4, w // 4
        self.fc = nn.Sequential(
            nn.Linear(z_dim, fc), _bn(fc, 1, True), act(),
            nn.Linear(fc, ch * self.h4 * self.w4), _bn(ch * self.h4 * self.w4, 1, True), act(),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(ch, dc, 4, 2, 1), _bn(dc, 2, True), act(),
            nn.ConvTranspose2d(dc, c, 4, 2, 1), nn.Sigmoid(),
        )
        init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, z_dim) -> (B, C, H, W) in [0, 1]
        x = self.fc(z).view(z.shape[0], self.ch, self.h4, self.w4)
        return self.deconv(x)


class InfoGANDiscriminator(nn.Module):
    def __init__(self, shape: tuple[int, int, int], width: float = 1.0, batchnorm: bool = True):
        super().__init__()
        c, h, w = shape
        c1, c2, fc = _w(64, width), _w(128, width), _w(1024, width)
        self.conv = nn.Sequential(
            nn.Conv2d(c, c1, 4, 2, 1), nn.LeakyReLU(LRELU),
            nn.Conv2d(c1, c2, 4, 2, 1), _bn(c2, 2, batchnorm), nn.LeakyReLU(LRELU),
        )
        if h % 4 or w % 4:
            raise ValueError(f"infogan needs image sides divisible by 4, got {h}x{w}")
        flat = c2 * (h // 4) * (w // 4)
        self.fc = nn.Sequential(nn.Linear(flat, fc), _bn(fc, 1, batchnorm), nn.LeakyReLU(LRELU), nn.Linear(fc, 1))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B,) raw logits
        return self.fc(self.conv(x).flatten(1)).squeeze(1)


def last_linear(module: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    """The last nn.Linear registered in `module` (a D's output layer), with its parent and attribute
    name, so a D option or the VAE encoder can replace the head of any architecture that ends in one."""
    found = None
    for parent in module.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Linear):
                found = (parent, name, child)
    if found is None:
        raise ValueError(f"{type(module).__name__} has no nn.Linear output layer to replace")
    return found


class GaussianEncoder(nn.Module):
    """The VAE's encoder q(z|x) = N(μ, σ²) built from a discriminator: its output layer is replaced
    by a Linear with 2·z_dim outputs, μ the first half and σ = 1e-6 + softplus(second half)
    (compare_gan v1's VAE, whose encoder is the InfoGAN D trunk)."""

    def __init__(self, trunk: nn.Module, z_dim: int):
        super().__init__()
        parent, name, head = last_linear(trunk)
        new = nn.Linear(head.in_features, 2 * z_dim)
        init_weights(new)
        setattr(parent, name, new)
        self.trunk, self.z_dim = trunk, z_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (B, C, H, W) -> 2 x (B, z_dim)
        params = self.trunk(x).reshape(x.shape[0], 2 * self.z_dim)
        return params[:, : self.z_dim], 1e-6 + nn.functional.softplus(params[:, self.z_dim :])


class InfoGANAutoEncoder(nn.Module):
    """BEGAN's D in compare_gan v1, InfoGAN-style (PROTOCOL.md): conv64 -> lrelu -> conv128 ->
    FC64 (code) -> [BN] -> lrelu -> FC 128*(H/4)*(W/4) -> [BN] -> lrelu -> deconv64 -> [BN] -> lrelu
    -> deconv C -> sigmoid. forward returns the per-example L1 reconstruction error
    mean |AE(x) - x| over C, H, W, shape (B,); its batch mean is BEGAN's L(x)."""

    def __init__(self, shape: tuple[int, int, int], width: float = 1.0, batchnorm: bool = True):
        super().__init__()
        c, h, w = shape
        if h % 4 or w % 4:
            raise ValueError(f"infogan needs image sides divisible by 4, got {h}x{w}")
        c1, c2, code = _w(64, width), _w(128, width), _w(64, width)
        self.c2, self.h4, self.w4 = c2, h // 4, w // 4
        flat = c2 * self.h4 * self.w4
        self.encode = nn.Sequential(
            nn.Conv2d(c, c1, 4, 2, 1), nn.LeakyReLU(LRELU), nn.Conv2d(c1, c2, 4, 2, 1), nn.Flatten(),
            nn.Linear(flat, code), _bn(code, 1, batchnorm), nn.LeakyReLU(LRELU),
        )
        self.decode_fc = nn.Sequential(nn.Linear(code, flat), _bn(flat, 1, batchnorm), nn.LeakyReLU(LRELU))
        self.decode_conv = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, 4, 2, 1), _bn(c1, 2, batchnorm), nn.LeakyReLU(LRELU),
            nn.ConvTranspose2d(c1, c, 4, 2, 1), nn.Sigmoid(),
        )
        init_weights(self)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, H, W) in [0, 1]
        h = self.decode_fc(self.encode(x)).view(x.shape[0], self.c2, self.h4, self.w4)
        return self.decode_conv(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B,) reconstruction errors
        return (self.reconstruct(x) - x).abs().flatten(1).mean(dim=1)


@dataclass(frozen=True)
class Architecture:
    name: str
    doc: str
    generator: Callable[..., nn.Module]  # (z_dim, shape, width, activation) -> G
    discriminator: Callable[[tuple[int, int, int], float, bool], nn.Module]
    accepts: Callable[[tuple[int, ...]], str | None] = lambda shape: None  # None: fits, else what it needs
    # Other D roles (Variant.d_role); None where the architecture has none.
    autoencoder: Callable[[tuple[int, int, int], float, bool], nn.Module] | None = None  # (shape, width, batchnorm)
    encoder: Callable[[tuple[int, int, int], float, bool, int], nn.Module] | None = None  # (shape, width, batchnorm, z_dim)
    # The hidden activations its generator builder takes, its own first (a VAE decoder may ask for another).
    g_activations: tuple[str, ...] = ("relu",)


ARCHITECTURES: dict[str, Architecture] = {
    "infogan": Architecture(
        "infogan",
        "InfoGAN-style conv G/D of Lucic et al. (28x28, 32x32, 64x64; D outputs logits)",
        lambda z_dim, shape, width, activation="lrelu": InfoGANGenerator(z_dim, shape, width, activation),
        lambda shape, width, batchnorm: InfoGANDiscriminator(shape, width, batchnorm),
        accepts=lambda shape: _image_sides_divisible(shape, 4),
        autoencoder=lambda shape, width, batchnorm: InfoGANAutoEncoder(shape, width, batchnorm),
        encoder=lambda shape, width, batchnorm, z_dim: GaussianEncoder(InfoGANDiscriminator(shape, width, batchnorm), z_dim),
        g_activations=("lrelu", "relu"),
    ),
}


# --- Kurach et al. 2019 (compare_gan v3) and Metz et al. 2017: dcgan, sndcgan, mlp ----------------


def _image_sides_divisible(shape: tuple[int, ...], k: int) -> str | None:
    if len(shape) != 3 or shape[1] % k or shape[2] % k:
        return f"images (C, H, W) with H and W divisible by {k}"
    return None


def _sn(module: nn.Module, on: bool) -> nn.Module:
    """Spectral normalization (Miyato et al. 2018): one power iteration per forward, as compare_gan."""
    return nn.utils.parametrizations.spectral_norm(module) if on else module


class DCGANGenerator(nn.Module):
    """compare_gan `dcgan.Generator`: FC 512*(H/16)*(W/16) -> BN -> ReLU -> deconv5x5 s2 256 -> BN -> ReLU
    -> deconv 128 -> BN -> ReLU -> deconv 64 -> BN -> ReLU -> deconv C -> 0.5 tanh + 0.5 (in [0, 1])."""

    def __init__(self, z_dim: int, shape: tuple[int, int, int], width: float = 1.0):
        super().__init__()
        c, h, w = shape
        if _image_sides_divisible(shape, 16):
            raise ValueError(f"dcgan needs image sides divisible by 16, got {h}x{w}")
        c8, c4, c2, c1 = (_w(n, width) for n in (512, 256, 128, 64))
        self.c8, self.h16, self.w16 = c8, h // 16, w // 16
        self.fc = nn.Linear(z_dim, c8 * self.h16 * self.w16)

        def up(cin: int, cout: int) -> nn.ConvTranspose2d:  # 5x5 stride 2, output exactly twice the input
            return nn.ConvTranspose2d(cin, cout, 5, 2, 2, output_padding=1)

        self.net = nn.Sequential(
            _bn(c8, 2, True), nn.ReLU(),
            up(c8, c4), _bn(c4, 2, True), nn.ReLU(),
            up(c4, c2), _bn(c2, 2, True), nn.ReLU(),
            up(c2, c1), _bn(c1, 2, True), nn.ReLU(),
            up(c1, c), nn.Tanh(),
        )
        init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, z_dim) -> (B, C, H, W) in [0, 1]
        x = self.fc(z).view(z.shape[0], self.c8, self.h16, self.w16)
        return 0.5 * self.net(x) + 0.5


class DCGANDiscriminator(nn.Module):
    """compare_gan `dcgan.Discriminator`: conv5x5 s2 64 -> lrelu(0.2) -> conv 128 -> [BN] -> lrelu ->
    conv 256 -> [BN] -> lrelu -> conv 512 -> [BN] -> lrelu -> FC1 (raw logit). Images enter in [0, 1]."""

    def __init__(self, shape: tuple[int, int, int], width: float = 1.0, batchnorm: bool = True, spectral: bool = False):
        super().__init__()
        c, h, w = shape
        if _image_sides_divisible(shape, 16):
            raise ValueError(f"dcgan needs image sides divisible by 16, got {h}x{w}")
        c1, c2, c4, c8 = (_w(n, width) for n in (64, 128, 256, 512))

        def down(cin: int, cout: int) -> nn.Module:
            return _sn(nn.Conv2d(cin, cout, 5, 2, 2), spectral)

        self.conv = nn.Sequential(
            down(c, c1), nn.LeakyReLU(LRELU),
            down(c1, c2), _bn(c2, 2, batchnorm), nn.LeakyReLU(LRELU),
            down(c2, c4), _bn(c4, 2, batchnorm), nn.LeakyReLU(LRELU),
            down(c4, c8), _bn(c8, 2, batchnorm), nn.LeakyReLU(LRELU),
        )
        self.fc = _sn(nn.Linear(c8 * (h // 16) * (w // 16), 1), spectral)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B,) raw logits
        return self.fc(self.conv(x).flatten(1)).squeeze(1)


class SNDCGANGenerator(nn.Module):
    """compare_gan `sndcgan.Generator` (Miyato et al. 2018): FC 512*(H/8)*(W/8) -> BN -> ReLU -> reshape ->
    deconv4x4 s2 256 -> BN -> ReLU -> deconv 128 -> BN -> ReLU -> deconv 64 -> BN -> ReLU ->
    deconv3x3 s1 C -> (tanh + 1) / 2. The first BN normalises the flat FC output, as in the original."""

    def __init__(self, z_dim: int, shape: tuple[int, int, int], width: float = 1.0):
        super().__init__()
        c, h, w = shape
        if _image_sides_divisible(shape, 8):
            raise ValueError(f"sndcgan needs image sides divisible by 8, got {h}x{w}")
        c8, c4, c2, c1 = (_w(n, width) for n in (512, 256, 128, 64))
        self.c8, self.h8, self.w8 = c8, h // 8, w // 8
        flat = c8 * self.h8 * self.w8
        self.fc = nn.Sequential(nn.Linear(z_dim, flat), _bn(flat, 1, True), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(c8, c4, 4, 2, 1), _bn(c4, 2, True), nn.ReLU(),
            nn.ConvTranspose2d(c4, c2, 4, 2, 1), _bn(c2, 2, True), nn.ReLU(),
            nn.ConvTranspose2d(c2, c1, 4, 2, 1), _bn(c1, 2, True), nn.ReLU(),
            nn.ConvTranspose2d(c1, c, 3, 1, 1), nn.Tanh(),
        )
        init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, z_dim) -> (B, C, H, W) in [0, 1]
        x = self.fc(z).view(z.shape[0], self.c8, self.h8, self.w8)
        return (self.net(x) + 1.0) / 2.0


class SNDCGANDiscriminator(nn.Module):
    """compare_gan `sndcgan.Discriminator`: x -> 2x - 1 -> conv3x3 s1 64 -> conv4x4 s2 128 -> conv3 128 ->
    conv4 s2 256 -> conv3 256 -> conv4 s2 512 -> conv3 512 (each followed by lrelu(0.1)) -> FC1 (raw logit),
    spectral normalization on every layer. The released D has no batch-norm layer, so the trial's
    `d_batchnorm` does not change it (compare_gan's "batch_norm" option is a no-op for this D too)."""

    def __init__(self, shape: tuple[int, int, int], width: float = 1.0, batchnorm: bool = True, spectral: bool = True):
        super().__init__()
        c, h, w = shape
        if _image_sides_divisible(shape, 8):
            raise ValueError(f"sndcgan needs image sides divisible by 8, got {h}x{w}")
        c1, c2, c4, c8 = (_w(n, width) for n in (64, 128, 256, 512))
        layers: list[nn.Module] = []
        for cin, cout, k, s in ((c, c1, 3, 1), (c1, c2, 4, 2), (c2, c2, 3, 1), (c2, c4, 4, 2),
                                (c4, c4, 3, 1), (c4, c8, 4, 2), (c8, c8, 3, 1)):
            layers += [_sn(nn.Conv2d(cin, cout, k, s, 1), spectral), nn.LeakyReLU(0.1)]
        self.conv = nn.Sequential(*layers)
        self.fc = _sn(nn.Linear(c8 * (h // 8) * (w // 8), 1), spectral)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B,) raw logits
        return self.fc(self.conv(x * 2.0 - 1.0).flatten(1)).squeeze(1)


class MLPGenerator(nn.Module):
    """Metz et al. 2017, appendix A: FC128 -> ReLU -> FC128 -> ReLU -> FC D (linear), orthogonal init x0.8."""

    def __init__(self, z_dim: int, shape: tuple[int, ...], width: float = 1.0):
        super().__init__()
        (d,) = shape
        n = _w(128, width)
        self.net = nn.Sequential(nn.Linear(z_dim, n), nn.ReLU(), nn.Linear(n, n), nn.ReLU(), nn.Linear(n, d))
        init_orthogonal(self, 0.8)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, z_dim) -> (B, D)
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """Metz et al. 2017, appendix A: x / 4 (the mixtures span about [-4, 4]) -> FC128 -> ReLU -> FC1 (raw
    logit), orthogonal init x0.8. No batch norm: the published D has none, and with BN (per `d_batchnorm`,
    as this D had before) ns_gan's G stayed a blurry disc over ring8 that covered none of the 8 modes. `d_batchnorm` does not change it, as for `sndcgan`."""

    def __init__(self, shape: tuple[int, ...], width: float = 1.0, batchnorm: bool = True):
        super().__init__()
        (d,) = shape
        n = _w(128, width)
        self.net = nn.Sequential(nn.Linear(d, n), nn.ReLU(), nn.Linear(n, 1))
        init_orthogonal(self, 0.8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, D) -> (B,) raw logits
        return self.net(x / 4.0).squeeze(1)


def init_orthogonal(module: nn.Module, gain: float) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight, gain)
            nn.init.zeros_(m.bias)


def _points(shape: tuple[int, ...]) -> str | None:
    return None if len(shape) == 1 else "points (D,), e.g. the 2-D mixtures ring8 and grid25"


ARCHITECTURES["dcgan"] = Architecture(
    "dcgan",
    "DCGAN of Kurach et al. 2019 (compare_gan): 5x5 convs, BN in D per trial; for CIFAR-10 (32x32), CelebA (64x64)",
    lambda z_dim, shape, width, activation="relu": DCGANGenerator(z_dim, shape, width),
    lambda shape, width, batchnorm: DCGANDiscriminator(shape, width, batchnorm),
    accepts=lambda shape: _image_sides_divisible(shape, 16),
)
ARCHITECTURES["sndcgan"] = Architecture(
    "sndcgan",
    "SNDCGAN of Miyato et al./Kurach et al.: 7-conv D with spectral norm on every layer, no BN in D",
    lambda z_dim, shape, width, activation="relu": SNDCGANGenerator(z_dim, shape, width),
    lambda shape, width, batchnorm: SNDCGANDiscriminator(shape, width, batchnorm),
    accepts=lambda shape: _image_sides_divisible(shape, 8),
)
ARCHITECTURES["mlp"] = Architecture(
    "mlp",
    "MLP of Metz et al. 2017 for 2-D data: G 2x128 ReLU, D (x/4) 1x128 ReLU, no BN in D; logits",
    lambda z_dim, shape, width, activation="relu": MLPGenerator(z_dim, shape, width),
    lambda shape, width, batchnorm: MLPDiscriminator(shape, width, batchnorm),
    accepts=_points,
)
