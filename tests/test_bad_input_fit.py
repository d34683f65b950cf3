"""Issue 14, point 8: bad input, second round.

A study file that is empty or sets nothing, an explicitly empty `[study] name`, a batch larger than
the training split, and a width or batch whose memory cannot fit on this machine are refused in one
line naming the file and key and what is allowed (exit 2), before anything is written: each CLI
case checks that the results tree (holding a created study of the same name) is byte-identical.
A study whose every trial failed exits 1 and says so in one line.
"""

from __future__ import annotations

import pytest
import torch

from bench import data as data_mod
from bench import registries
from bench.config import list_studies, load_study
from bench.errors import ConfigError
from bench.gan.architectures import ARCHITECTURES
from bench.gan.variants import VARIANTS
from bench.study import fits

from .conftest import tiny_study_text
from .faultkit import assert_one_line_error, cli_env, run_in_process, tree_digest

# id -> (the file's text, or a (replace, with) edit of the tiny study; words its one line must hold)
CASES = {
    "empty-file": ("", ["sets nothing", "at least one key"]),
    "comments-only": ("# a study, some day\n", ["sets nothing"]),
    "empty-sections": ("[study]\n[data]\n[train]\n", ["sets nothing"]),
    "empty-name": (('name = "tiny"', 'name = ""'), ["[study] name = ''", "not allowed", "leave the key out", "'tiny'"]),
    "batch-over-split": (('batch_size = 16', 'batch_size = 4001'),
                         ["[train] batch_size = 4001", "train split", "'digits5k'", "(4,000 samples)", "at most 4,000"]),
    "width-cannot-fit": (('width = 0.125', 'width = 1000.0'),
                         ["[model] width = 1000", "[eval] batch_size = 250", "needs at least", "GiB", "RAM", "smaller [model] width"]),
    "eval-batch-cannot-fit": (('batch_size = 250', 'batch_size = 1000000000'),
                              ["[eval] batch_size = 1000000000", "G's largest output", "needs at least", "GiB"]),
}


def _text(case) -> str:
    if isinstance(case, str):
        return case
    old, new = case
    text = tiny_study_text()
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_file_is_refused_on_load_or_before_the_storage(name, tmp_path):
    """Each file is named tiny.toml (its stem would be the study's name, were it accepted)."""
    path = tmp_path / name / "tiny.toml"
    path.parent.mkdir()
    path.write_text(_text(CASES[name][0]))
    if name in ("width-cannot-fit", "eval-batch-cannot-fit"):
        cfg = load_study(str(path))  # it passes its type and range: the device check refuses it
        with pytest.raises(ConfigError) as e:
            fits.check(cfg, list(cfg.study.variants), torch.device("cpu"))
    else:
        with pytest.raises(ConfigError) as e:
            load_study(str(path))
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    for w in CASES[name][1]:
        assert w in str(e.value), f"{w!r} not in {e.value}"


def test_through_the_cli_each_refusal_is_one_line_and_changes_nothing_stored(tmp_path, shared_cache):
    results = tmp_path / "results"
    env = cli_env(results, shared_cache)
    good = tmp_path / "tiny.toml"
    good.write_text(tiny_study_text())
    code, _, err = run_in_process(["study", str(good), "--variant", "all", "--create-only"], env)
    assert code == 0, err
    before = tree_digest(results)
    assert any(k.endswith("optuna.db") for k in before)
    for name, (case, words) in CASES.items():
        path = tmp_path / name / "tiny.toml"
        path.parent.mkdir()
        path.write_text(_text(case))
        for argv in (["study", str(path), "--variant", "wgan"], ["study", str(path), "--variant", "all", "--dry-run"],
                     ["worker", str(path), "--variant", "wgan"]):
            code, out, err = run_in_process(argv, env)
            assert_one_line_error(code, err, 2, [str(path), *words])
            assert out == "", (name, argv, out)
            assert tree_digest(results) == before, f"{name} {argv[0]} changed stored results"


@pytest.mark.parametrize("v", list(VARIANTS))
def test_the_memory_estimate_counts_the_real_networks_weights_and_scales_with_the_batch(tmp_path, v):
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text())
    cfg = load_study(str(path))
    arch, shape = ARCHITECTURES["infogan"], registries.dataset_shape("digits5k")
    spec = VARIANTS[v]
    G = spec.build_g(arch, cfg.model.z_dim, shape, cfg.model.width)  # real ones, on the CPU: an independent count
    D = spec.build_d(arch, shape, cfg.model.width, cfg.model.z_dim, spec.defaults_in(cfg.study.space))
    n = sum(p.numel() for p in G.parameters()) + sum(p.numel() for p in D.parameters())
    one, two = fits.need(cfg, v), fits.need(cfg.replace("train", batch_size=32).replace("eval", batch_size=500), v)
    assert one.weights == 16 * n  # weights, gradients and Adam's two moments, fp32
    assert two.train == 2 * one.train and two.eval == 2 * one.eval and one.train > 0  # activations per sample


def test_the_refusal_sits_at_the_estimate(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text())
    cfg = load_study(str(path))
    # A device with as many bytes as the estimate runs it, one byte less does not.
    total = max(fits.need(cfg, v).total for v in cfg.study.variants)
    fits.check(cfg, list(cfg.study.variants), torch.device("cpu"), have=(total, "a test device"))
    with pytest.raises(ConfigError, match="but a test device has"):
        fits.check(cfg, list(cfg.study.variants), torch.device("cpu"), have=(total - 1, "a test device"))


@pytest.mark.parametrize("name", ["digits5k", "ring8", "grid25"])
def test_the_catalogued_train_split_size_is_the_loaded_one(name):
    assert registries.dataset_train_size(name) == len(data_mod.load(name, data_mod.resolve_root("")).train)


def test_a_study_whose_every_trial_failed_exits_1_and_says_so(tmp_path, shared_cache, monkeypatch):
    from bench.study import runner

    real = runner.run_trial

    def wgan_fails(cfg, variant, *args, **kw):  # an error in every wgan trial (the hyperparameters' fault, say)
        if variant.name == "wgan":
            raise ValueError("wgan blew up in this test")
        return real(cfg, variant, *args, **kw)

    monkeypatch.setattr(runner, "run_trial", wgan_fails)
    results = tmp_path / "results"
    env = cli_env(results, shared_cache)
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text(trials=2, variants='["wgan"]'))
    code, out, err = run_in_process(["study", str(path), "--variant", "wgan", "--no-progress"], env)
    assert_one_line_error(code, err, 1, ["tiny: every trial failed (wgan 2 of 2)", "no result",
                                         "the first error: ValueError: wgan blew up in this test", "metrics.jsonl"])
    assert "summary:" not in out  # nothing to summarise

    # One variant failing every trial fails the run too, after the summary of those that ran.
    path.write_text(tiny_study_text(name="mixed", trials=1))
    code, out, err = run_in_process(["study", str(path), "--variant", "all", "--no-progress"], env)
    assert_one_line_error(code, err, 1, ["mixed: every trial failed (wgan 1 of 1)"])
    assert "summary:" in out and "ns_gan" in out

    # A worker (`bench worker`, one per machine) whose variants failed every trial exits 1 too.
    path.write_text(tiny_study_text(name="joined", trials=1, variants='["wgan"]'))
    code, out, err = run_in_process(["study", str(path), "--variant", "wgan", "--create-only"], env)
    assert code == 0, err
    code, out, err = run_in_process(["worker", str(path), "--variant", "wgan", "--no-progress"], env)
    assert_one_line_error(code, err, 1, ["joined: every trial failed (wgan 1 of 1)", "the first error: ValueError: wgan blew up"])


def test_a_variant_the_architecture_cannot_build_is_named_with_the_file_before_anything_runs(tmp_path):
    path = tmp_path / "points.toml"
    path.write_text(tiny_study_text(dataset="ring8", architecture="mlp", metrics='["swd_ring8_10k_test"]', variants='["ns_gan", "began"]'))
    cfg = load_study(str(path))
    with pytest.raises(ConfigError, match=f"^{path}: variant 'began' needs an autoencoder but architecture 'mlp' has none$"):
        fits.check(cfg, list(cfg.study.variants), torch.device("cpu"))


@pytest.mark.parametrize("name", list_studies())
def test_every_shipped_study_passes_the_memory_check(name):
    """Every variant of every shipped study gets an estimate (a variant without a D, IMLE, included),
    and none needs more than 2 GiB on the CPU, so none is refused on a machine that can run it."""
    cfg = load_study(name)
    fits.check(cfg, list(cfg.study.variants), torch.device("cpu"), have=(2 * 2**30, "2 GiB"))


def test_a_network_the_meta_device_cannot_run_is_bounded_by_its_weights(tmp_path, monkeypatch):
    from bench.gan import architectures

    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text())
    cfg = load_study(str(path))
    full = fits.need(cfg, "ns_gan")

    def no_meta_kernel(self, z):
        raise NotImplementedError("Could not run 'aten::made_up' with arguments from the 'Meta' backend")

    monkeypatch.setattr(architectures.InfoGANGenerator, "forward", no_meta_kernel)
    bounded = fits.need(cfg, "ns_gan")
    assert (bounded.weights, bounded.train, bounded.eval) == (full.weights, 0, 0)
