"""Figure 2 of the seed (Arjovsky et al. 2017, "Wasserstein GAN", Figure 2): on two 1-D Gaussians
far apart, a GAN discriminator trained to (near) optimality saturates, so the gradient the
generator gets through it vanishes at the fake mode, while a WGAN critic is close to linear
between the modes and gives a clean gradient everywhere.

Self-contained and small enough for a CPU in seconds: real data N(+2, 0.3²), the generator's
(fixed) samples N(-2, 0.3²); three small MLPs (1 -> 64 -> 64 -> 1, ReLU, PyTorch's default init)
trained on fresh batches of both with the harness's own losses and penalties:
  - GAN discriminator: `losses.gan_d` (D = sigmoid(logit));
  - clipped WGAN critic: `losses.wasserstein_d`, every weight clipped by `penalties.clip_weights`;
  - WGAN-GP critic: `losses.wasserstein_d` + `penalties.wgangp_penalty` (λ = 10).
Adam lr 1e-3, β = (0.5, 0.999) for all three (Arjovsky et al. used RMSProp for the clipped critic;
Adam reaches near optimality in fewer steps, and the figure is about the trained function, not the
path). The gradient the generator would receive at a sample x is -∂/∂x of its loss per sample:
`losses.minimax_g` and `losses.non_saturating_g` through D, `losses.wasserstein_g` through each critic.

`write(out)` writes critic.png, critic.csv (every curve on a grid of x) and critic.json (settings
and the summary numbers that tests/test_figure_critic.py checks).
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench import records
from bench.gan import losses, penalties


@dataclass(frozen=True)
class Setting:
    real_mean: float = 2.0
    fake_mean: float = -2.0
    std: float = 0.3
    hidden: int = 64
    steps: int = 2000  # D updates per network
    batch: int = 256
    learning_rate: float = 1e-3
    clip: float = 0.1  # weight clipping of the WGAN critic (0.01, the paper's, leaves a 1-D MLP nearly flat)
    gp_lambda: float = 10.0
    seed: int = 0
    grid: int = 401  # points of x in [fake_mean - 2, real_mean + 2]


def mlp(hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))


def _train(kind: str, s: Setting, gen: torch.Generator) -> nn.Module:
    net = mlp(s.hidden)
    opt = torch.optim.Adam(net.parameters(), lr=s.learning_rate, betas=(0.5, 0.999))
    hp = {"clip": s.clip, "gp_lambda": s.gp_lambda}
    for _ in range(s.steps):
        real = s.real_mean + s.std * torch.randn(s.batch, 1, generator=gen)  # (B, 1)
        fake = s.fake_mean + s.std * torch.randn(s.batch, 1, generator=gen)
        loss = (losses.gan_d if kind == "gan" else losses.wasserstein_d)(net(real), net(fake))["loss"]
        if kind == "wgan_gp":
            loss = loss + penalties.wgangp_penalty(net, real, fake, hp)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if kind == "wgan":
            penalties.clip_weights(net, hp)
    return net


def _g_gradient(net: nn.Module, g_loss: Any, x: torch.Tensor) -> torch.Tensor:
    """-∂/∂x of the generator's loss at each point: the direction and size of the push a fake
    sample at x gets (the batch-mean loss times N, so the gradient is per sample)."""
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(g_loss(net(x))["loss"] * len(x), x)
    return -grad.squeeze(1)


# The three networks: which D loss they train with is in _train (the kind), which G loss reads them here.
KINDS = {"gan": "GAN discriminator", "wgan": "WGAN critic (clipped)", "wgan_gp": "WGAN-GP critic"}


def compute(s: Setting = Setting()) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """The curves on the grid and the summary numbers."""
    torch.manual_seed(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    nets = {kind: _train(kind, s, gen) for kind in KINDS}
    x = torch.linspace(s.fake_mean - 2.0, s.real_mean + 2.0, s.grid).unsqueeze(1)  # (N, 1)
    with torch.no_grad():
        curves = {
            "x": x.squeeze(1),
            "p_real": torch.exp(-0.5 * ((x.squeeze(1) - s.real_mean) / s.std) ** 2) / (s.std * math.sqrt(2 * math.pi)),
            "p_fake": torch.exp(-0.5 * ((x.squeeze(1) - s.fake_mean) / s.std) ** 2) / (s.std * math.sqrt(2 * math.pi)),
            "d_gan": torch.sigmoid(nets["gan"](x).squeeze(1)),
            "critic_wgan": nets["wgan"](x).squeeze(1),
            "critic_wgan_gp": nets["wgan_gp"](x).squeeze(1),
        }
    curves.update({
        "grad_gan_minimax": _g_gradient(nets["gan"], losses.minimax_g, x),
        "grad_gan_non_saturating": _g_gradient(nets["gan"], losses.non_saturating_g, x),
        "grad_wgan": _g_gradient(nets["wgan"], losses.wasserstein_g, x),
        "grad_wgan_gp": _g_gradient(nets["wgan_gp"], losses.wasserstein_g, x),
    })
    at = lambda v: float(torch.tensor([v]).unsqueeze(1).sub(x).abs().argmin())  # noqa: E731  grid index nearest v
    i_fake = int(at(s.fake_mean))
    between = (x.squeeze(1) >= s.fake_mean) & (x.squeeze(1) <= s.real_mean)

    def spread(g: torch.Tensor) -> float:  # relative spread of a gradient between the modes
        g = g[between]
        return float(g.std() / g.abs().mean())

    summary = {
        "setting": asdict(s),
        "d_gan_at_fake_mode": float(curves["d_gan"][i_fake]),
        "d_gan_at_real_mode": float(torch.sigmoid(nets["gan"](torch.tensor([[s.real_mean]]))).item()),
        "grad_at_fake_mode": {k[5:]: float(curves[k][i_fake]) for k in curves if k.startswith("grad_")},
        "grad_spread_between_modes": {k[5:]: spread(curves[k]) for k in curves if k.startswith("grad_")},
    }
    return {k: [float(v) for v in t.detach()] for k, t in curves.items()}, summary


def plot(curves: dict[str, list[float]], summary: dict[str, Any]) -> Any:
    import matplotlib.pyplot as plt  # the caller picks the backend (Agg from the CLI)

    x = curves["x"]
    fig, (top, mid, bottom) = plt.subplots(3, 1, figsize=(7, 8.5), sharex=True)
    scale = 1.0 / max(curves["p_real"])
    for ax in (top, mid):
        ax.fill_between(x, [p * scale for p in curves["p_real"]], alpha=0.25, color="tab:green", label="real density (scaled)")
        ax.fill_between(x, [p * scale for p in curves["p_fake"]], alpha=0.25, color="tab:red", label="fake density (scaled)")
    top.plot(x, curves["d_gan"], color="tab:blue", label="GAN discriminator D(x)")
    top.set_ylabel("D(x)")
    top.legend(fontsize=8, loc="center left")
    top.set_title("Two Gaussians: the GAN discriminator saturates, the WGAN critics do not\n(the seed's Figure 2; Arjovsky et al. 2017)", fontsize=10)
    for key, label, color in (("critic_wgan", "WGAN critic (clipped), rescaled", "tab:orange"),
                              ("critic_wgan_gp", "WGAN-GP critic, rescaled", "tab:purple")):
        c = curves[key]
        lo, hi = min(c), max(c)
        mid.plot(x, [(v - lo) / (hi - lo) for v in c], color=color, label=label)
    mid.set_ylabel("critic (min-max scaled)")
    mid.legend(fontsize=8, loc="center left")
    for key, label, color, style in (("grad_gan_minimax", "GAN, minimax G loss", "tab:blue", "-"),
                                     ("grad_gan_non_saturating", "GAN, non-saturating G loss", "tab:blue", ":"),
                                     ("grad_wgan", "WGAN (clipped)", "tab:orange", "-"),
                                     ("grad_wgan_gp", "WGAN-GP", "tab:purple", "-")):
        bottom.semilogy(x, [max(abs(v), 1e-12) for v in curves[key]], color=color, linestyle=style, label=label)
    bottom.set_ylabel("|gradient G receives at x|")
    bottom.set_xlabel("x")
    bottom.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def write(out: Path, s: Setting = Setting()) -> dict[str, Path]:
    """Train, then write critic.png, critic.csv and critic.json into `out`; returns their paths."""
    import io

    curves, summary = compute(s)
    out = records.ensure_writable(out)
    paths = {"png": out / "critic.png", "csv": out / "critic.csv", "json": out / "critic.json"}
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(list(curves))
    w.writerows(zip(*curves.values()))
    records.atomic_write_bytes(paths["csv"], buf.getvalue().encode())
    records.write_json(paths["json"], summary)
    fig = plot(curves, summary)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=90)
    records.atomic_write_bytes(paths["png"], png.getvalue())
    return paths
