"""Seed reruns (`bench seeds`, the paper's phase 3) run through the runner's objective (issue 13,
point 3): a rerun stopped by Ctrl-C is recorded as interrupted, queued again with its seed index,
and the next `bench seeds` reruns it with the same seeds."""

from __future__ import annotations

import optuna
import pandas as pd

from bench import records, storage
from bench.cli import main as bench_main
from bench.study import budget, seeds
from bench.trial import manifest, train


def test_an_interrupted_seed_rerun_is_queued_again_and_rerun_with_its_seeds(env, tiny_study, monkeypatch, capsys):
    toml = str(tiny_study(name="sd", variants='["wgan"]', steps=10, checkpoint_every=5))
    assert bench_main(["study", toml, "--variant", "wgan"]) == 0, capsys.readouterr().err

    real_step = train.train_step

    def interrupted_at_step_3(*args, **kwargs):
        if args[4] == 3:  # step: inside the training loop, after a logged step or two
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    with monkeypatch.context() as mp:
        mp.setattr(train, "train_step", interrupted_at_step_3)
        assert bench_main(["seeds", toml, "--variant", "wgan", "--seeds", "1"]) == 130
    assert "interrupted; run the same command again to resume" in capsys.readouterr().err

    st = storage.open_storage(records.default_storage_url("sd"), heartbeat=False)
    t = optuna.load_study(study_name="sd:wgan:seeds", storage=st).get_trials(deepcopy=False)
    assert [x.state.name for x in t] == ["FAIL", "WAITING"]
    assert budget.outcome(t[0]) == "interrupted" and t[0].user_attrs["seed_index"] == 0
    assert storage.origin(t[1]) == 0  # the queued copy keeps seed index 0
    first = records.seed_trial_dir("sd", "wgan", 0)
    assert list(records.read_jsonl(records.metrics_path(first)))[-1]["kind"] == "interrupted"
    assert manifest.read(first)["status"] == "interrupted"

    assert bench_main(["seeds", toml, "--variant", "wgan", "--seeds", "1"]) == 0, capsys.readouterr().err
    t = optuna.load_study(study_name="sd:wgan:seeds", storage=st).get_trials(deepcopy=False)
    assert [x.state.name for x in t] == ["FAIL", "COMPLETE"]
    assert t[1].user_attrs["seed_index"] == 0 and t[1].user_attrs["seeds"] == seeds.rerun_seeds(0, 0)
    assert records.read_json(records.config_path(records.seed_trial_dir("sd", "wgan", 1)))["seeds"] == seeds.rerun_seeds(0, 0)
    frame = seeds.seeds_frame("sd", records.default_storage_url("sd"))
    assert list(frame["seed_index"]) == [0] and list(frame["value"]) == [t[1].value]
    table = pd.read_csv(records.seeds_summary_path("sd"))
    assert list(table["reruns"]) == [1] and list(table["failed"]) == [0]
