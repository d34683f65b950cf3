"""The VAE as compare_gan v1 ran it (issue 14, point 7): its decoder is the architecture's generator
with ReLU where compare_gan's VAE.decoder had tf.nn.relu (its GANs' generator has lrelu), and its
narrow-space trial 0 has BN in the encoder off, as compare_gan's params.py VAEHyperParams."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from bench.config import parse_study
from bench.errors import ConfigError
from bench.gan.architectures import ARCHITECTURES
from bench.gan.variants import VARIANTS
from bench.study import runner


def _activations(G: nn.Module) -> list[type]:
    return [type(m) for m in G.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]


def test_the_vae_decoder_is_the_infogan_generator_with_relu():
    arch = ARCHITECTURES["infogan"]
    torch.manual_seed(0)
    dec = VARIANTS["vae"].build_g(arch, 8, (1, 28, 28), 0.125)
    gen = VARIANTS["ns_gan"].build_g(arch, 8, (1, 28, 28), 0.125)
    assert _activations(dec) == [nn.ReLU] * 3 and _activations(gen) == [nn.LeakyReLU] * 3
    # the same architecture entry: the same layers and parameter shapes, only the activation differs
    assert {k: v.shape for k, v in dec.state_dict().items()} == {k: v.shape for k, v in gen.state_dict().items()}
    with torch.no_grad():
        for p in dec.parameters():  # weights large enough that units go negative by a visible margin
            p.normal_(0.0, 0.5)
    gen.load_state_dict(dec.state_dict())
    dec.eval(), gen.eval()
    z = torch.rand(5, 8) * 2 - 1
    fc1, bn1, _, fc2, bn2, _ = dec.fc
    dc3, bn3, _, dc4, _ = dec.deconv
    h = F.relu(bn2(fc2(F.relu(bn1(fc1(z)))))).view(5, dec.ch, dec.h4, dec.w4)
    by_hand = torch.sigmoid(dc4(F.relu(bn3(dc3(h)))))
    with torch.no_grad():
        assert torch.allclose(dec(z), by_hand, atol=1e-6)
        assert not torch.allclose(gen(z), by_hand, atol=1e-3)  # LeakyReLU(0.2) differs on negative units
    assert VARIANTS["vae"].recipe()["g_activation"] == "relu"


def test_an_architecture_whose_generator_has_no_relu_form_refuses_the_vae():
    lrelu_only = dataclasses.replace(ARCHITECTURES["infogan"], name="lrelu-only", g_activations=("lrelu",))
    with pytest.raises(ConfigError, match="variant 'vae' needs a generator with relu activations but architecture 'lrelu-only'"):
        VARIANTS["vae"].build_g(lrelu_only, 8, (1, 28, 28), 0.125)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_builds_its_generator_from_the_architecture_entry(name):
    v = VARIANTS[name]
    arch = ARCHITECTURES["infogan"]
    G = v.build_g(arch, 8, (1, 28, 28), 0.125)
    assert _activations(G) == [nn.ReLU if v.g_activation == "relu" else nn.LeakyReLU] * 3


@pytest.mark.parametrize("space,bn", [("narrow", False), ("wide", True)])
def test_vae_trial_0_has_encoder_bn_as_compare_gans_params_py(tmp_path, space, bn):
    cfg = parse_study({"study": {"name": "v", "variants": ["vae"], "space": space, "trials": 1}}, "v.toml", "v")
    assert VARIANTS["vae"].defaults_in(space)["d_batchnorm"] is bn
    study = runner.open_study(cfg, VARIANTS["vae"], f"sqlite:///{tmp_path}/o.db")
    (t0,) = study.get_trials(deepcopy=False)
    assert t0.user_attrs["paper_default"] and t0.params.get("d_batchnorm", t0.system_attrs.get("fixed_params", {}).get("d_batchnorm")) is bn
