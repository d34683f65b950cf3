"""Resumable trials (issue 19, point 1): a trial stopped by SIGTERM or Ctrl-C, or at a checkpoint,
and continued from its saved training state ends bit-identical to the same trial run straight
through (deterministic CPU mode), for every variant of the registry: the same evaluations, loss
terms, checkpoints and sample grid, its D steps the trial's length and its device-seconds counted
once. The runner's side (a re-queued trial finds the state of the trial it reruns) is tested with
the real CLI in tests/test_faults.py."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from bench import records
from bench.config import load_study
from bench.gan.variants import VARIANTS
from bench.trial import resume
from bench.trial.train import run_trial, trial_seeds

from .conftest import tiny_study_text

MLP_LESS = {"began", "began_clipped", "vae"}  # they need an autoencoder or encoder the mlp pair does not have


def config(tmp_path, name: str):
    """12 D steps, checkpoints at 6 and 12, log records every 4: ring8 and the mlp pair, or tiny
    digits for the variants that need an image architecture."""
    if name in MLP_LESS:
        over = dict(dataset="digits5k", architecture="infogan", width=0.125)
    else:
        over = dict(dataset="ring8", architecture="mlp", width=0.25, metrics='["swd_ring8_10k_test"]')
    path = tmp_path / "resume.toml"
    path.write_text(tiny_study_text(name="resume", variants=f'["{name}"]', steps=12, checkpoint_every=6, **over)
                    .replace("log_every = 5", "log_every = 4").replace('device = "cpu"', 'device = "cpu"\ndeterministic = true'))
    return load_study(str(path))


def run(cfg, name, tdir, plan, **hooks):
    v = VARIANTS[name]
    tdir.mkdir(parents=True, exist_ok=True)
    return run_trial(cfg, v, dict(v.defaults), trial_seeds(0, 3), tdir, torch.device("cpu"), plan=plan, **hooks)


def footprint(tdir):
    """What the trial leaves, as a straight run and a continued one must share it."""
    log = [{k: v for k, v in r.items() if k != "seconds"} for r in records.read_jsonl(records.metrics_path(tdir))
           if r["kind"] != "resumed"]
    files = {p.relative_to(tdir).as_posix(): p.read_bytes() for p in sorted(tdir.rglob("*"))
             if p.is_file() and p.name not in ("metrics.jsonl", records.RESUME_FILE)}
    return log, files


def sigterm_at(step_wanted):
    def hook(step, *_):
        if step == step_wanted:
            os.kill(os.getpid(), signal.SIGTERM)
    return hook


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_trial_stopped_mid_interval_and_continued_ends_bit_identical(env, tmp_path, name):
    """SIGTERM arrives during D step 8 (between the checkpoints at 6 and 12, in the middle of a
    log interval): the loop finishes that step, saves the full state and stops; the trial
    continued from it ends as the straight run does."""
    cfg = config(tmp_path, name)
    who = resume.identity("d", name, VARIANTS[name].defaults, trial_seeds(0, 3))
    straight = run(cfg, name, tmp_path / "straight", resume.Plan(who))

    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, name, tmp_path / "stopped", resume.Plan(who), on_progress=sigterm_at(8))
    assert torch.load(records.resume_path(tmp_path / "stopped"), weights_only=False)["step"] == 8
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers  # the loop's handlers are gone

    reported = []
    cont = run(cfg, name, tmp_path / "continued", resume.Plan(who, tmp_path / "stopped"),
               on_eval=lambda step, value: reported.append((step, value)))
    assert cont.resumed == {"from": str(tmp_path / "stopped"), "step": 8}
    assert (cont.outcome, cont.steps, cont.best_step) == (straight.outcome, 12, straight.best_step)
    assert cont.evaluations == straight.evaluations and cont.value == straight.value
    assert reported == [(e["step"], e[cfg.eval.metrics[0]]) for e in straight.evaluations]  # the pruner sees every evaluation
    assert footprint(tmp_path / "continued") == footprint(tmp_path / "straight")
    stopped_seconds = torch.load(records.resume_path(tmp_path / "stopped"), weights_only=False)["seconds"]
    assert cont.seconds >= stopped_seconds > 0  # the stopped run's device time is in the continued trial's, once


def test_a_trial_stopped_after_its_last_evaluation_completes_without_training(env, tmp_path):
    """Stopped during the last step (after its evaluation): the continued trial runs no step and
    writes the same sample grid from the final G."""
    cfg = config(tmp_path, "ns_gan_ha")  # with historical averaging's parameter means in its state
    who = resume.identity("d", "ns_gan_ha", VARIANTS["ns_gan_ha"].defaults, trial_seeds(0, 3))
    straight = run(cfg, "ns_gan_ha", tmp_path / "straight", resume.Plan(who))
    with pytest.raises(KeyboardInterrupt):
        run(cfg, "ns_gan_ha", tmp_path / "stopped", resume.Plan(who), on_eval=sigterm_at(12))
    cont = run(cfg, "ns_gan_ha", tmp_path / "continued", resume.Plan(who, tmp_path / "stopped"))
    assert cont.resumed["step"] == 12 and cont.evaluations == straight.evaluations
    assert footprint(tmp_path / "continued") == footprint(tmp_path / "straight")


def test_a_state_of_another_trial_is_not_continued(env, tmp_path, caplog):
    """A state saved for other hyperparameters (or another configuration) is refused with a
    warning naming the file, and the trial starts from step 0: it still ends as the straight run."""
    cfg = config(tmp_path, "ns_gan")
    hp = VARIANTS["ns_gan"].defaults
    who = resume.identity("d", "ns_gan", hp, trial_seeds(0, 3))
    straight = run(cfg, "ns_gan", tmp_path / "straight", resume.Plan(who))
    with pytest.raises(KeyboardInterrupt):
        run(cfg, "ns_gan", tmp_path / "stopped", resume.Plan(resume.identity("other", "ns_gan", hp, trial_seeds(0, 3))),
            on_progress=sigterm_at(8))
    with caplog.at_level("WARNING", logger="bench"):
        cont = run(cfg, "ns_gan", tmp_path / "continued", resume.Plan(who, tmp_path / "stopped"))
    assert cont.resumed is None and cont.evaluations == straight.evaluations
    assert str(records.resume_path(tmp_path / "stopped")) in caplog.text and "config_digest" in caplog.text
    assert footprint(tmp_path / "continued") == footprint(tmp_path / "straight")


def test_a_damaged_state_is_refused_naming_the_file(tmp_path):
    bad = tmp_path / records.RESUME_FILE
    bad.write_bytes(b"not a state")
    with pytest.raises(Exception) as e:
        resume.load(bad, {}, torch.device("cpu"))
    assert str(bad) in str(e.value)


def test_an_ignored_sigint_stays_ignored_while_sigterm_is_deferred():
    """A job started to ignore SIGINT (`bench worker ... &` from a script) keeps ignoring it inside
    the training loop; SIGTERM (a scheduler's stop) is still deferred to the end of the step."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        d = resume.DeferredInterrupt()
        with d.installed():
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) == d._handler
            os.kill(os.getpid(), signal.SIGINT)
            assert not d.pending
            os.kill(os.getpid(), signal.SIGTERM)
            assert d.pending
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
