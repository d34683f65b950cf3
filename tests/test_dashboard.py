"""What the dashboard shows (issue 19, point 3), read back through plain Optuna after a tiny real study:
the objective's name, the study note, every hyperparameter (params plus `fixed:` attributes, equal to the
trial's config.json), and each trial's sample grid as an artifact whose bytes are samples.png's. A study
made before these existed opens, gains the name and note, and keeps a note someone edited."""

from __future__ import annotations

import io
import json
import wsgiref.util

import optuna

from bench import records
from bench.config import load_study
from bench.gan.variants import VARIANTS
from bench.search import space
from bench.study import dashboard, runner
from bench.study.status import optuna_study_name
from tests.conftest import run_cli, tiny_study_text

METRIC = "fid_lenet_digits5k_1k_test"


def _study_file(tmp_path, name="tiny"):
    text = tiny_study_text(name=name).replace('sampler = "random"\n', 'sampler = "random"\nfixed = {clip = 0.1}\n'
                                              'description = "Tiny WGAN check for the dashboard"\n')
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_dashboard_shows_the_study_through_plain_optuna(env, tmp_path):
    path = _study_file(tmp_path)
    r = run_cli("study", path, "--variant", "wgan", "--trials", "2", "--no-progress", env=env)
    assert r.returncode == 0, r.stderr
    sdir = tmp_path / "results" / "tiny"
    study = optuna.load_study(study_name="tiny:wgan", storage=f"sqlite:///{sdir / 'optuna.db'}")
    assert optuna_study_name(load_study(str(path)), "wgan") == "tiny:wgan"

    assert study.metric_names == [METRIC]
    from optuna_dashboard import get_note

    note = get_note(study)
    assert note.startswith("## tiny / wgan\n\nTiny WGAN check for the dashboard\n")
    assert f"`{METRIC}`" in note and "| train.steps | 10 |" in note and "| study.fixed | {'clip': 0.1} |" in note

    trials = sorted(study.get_trials(), key=lambda t: t.number)
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    store = optuna.artifacts.FileSystemArtifactStore(str(sdir / "artifacts"))
    for t in trials:
        tdir = sdir / "wgan" / f"trial-{t.number:04d}"
        hp = json.loads((tdir / "config.json").read_text())["hparams"]
        # Searched values are params; everything else a `fixed:` attribute; together, config.json's hparams.
        fixed = {k[len("fixed:"):]: v for k, v in t.user_attrs.items() if k.startswith("fixed:")}
        assert set(t.params) == {"learning_rate", "d_batchnorm"}
        assert {**t.params, **fixed} == hp == dashboard.hyperparameters(t)
        assert fixed["clip"] == 0.1 and fixed["beta1"] == 0.5
        # The sample grid, byte for byte.
        (meta,) = optuna.artifacts.get_all_artifact_meta(t, storage=study._storage)
        assert (meta.filename, meta.mimetype) == ("samples.png", "image/png")
        out = tmp_path / f"grid-{t.number}.png"
        optuna.artifacts.download_artifact(artifact_store=store, artifact_id=meta.artifact_id, file_path=str(out))
        assert out.read_bytes() == (tdir / "samples.png").read_bytes()
    # Trial 0 is the paper default: disc_iters 5 (the narrow space holds 1) and lr 5e-5, below the range.
    assert trials[0].user_attrs["fixed:disc_iters"] == 5 and trials[1].user_attrs["fixed:disc_iters"] == 1
    assert trials[0].params["learning_rate"] == 5e-5 and trials[0].user_attrs["paper_default"] is True

    # What `bench dashboard` serves: optuna-dashboard's own app hands out the grid from the folder's store.
    from optuna_dashboard import wsgi

    app = wsgi(study._storage, artifact_store=dashboard.served_artifact_store(sdir))
    (meta,) = optuna.artifacts.get_all_artifact_meta(trials[0], storage=study._storage)
    body = _get(app, f"/artifacts/{study._study_id}/{trials[0]._trial_id}/{meta.artifact_id}")
    assert body == (sdir / "wgan" / "trial-0000" / "samples.png").read_bytes()


def _get(app, path: str) -> bytes:
    environ: dict = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "wsgi.input": io.BytesIO()}
    wsgiref.util.setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    assert status and status[0].startswith("200"), status
    return body


def test_a_study_made_before_this_opens_and_gains_name_and_note(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "results"))
    cfg = load_study(str(_study_file(tmp_path, "old")))
    url = f"sqlite:///{tmp_path / 'old.db'}"
    # As the runner made it before issue 19: its attributes, no metric names, no note, a finished trial.
    old = optuna.create_study(study_name="old:wgan", storage=url, direction="minimize")
    for key, value in {"compat_digest": runner.compat_digest(cfg), "config": cfg.to_dict(), "variant": "wgan",
                       "storage_kind": "sqlite"}.items():
        old.set_user_attr(key, value)
    dists = space.distributions(VARIANTS["wgan"].space(cfg.study.space, cfg.study.fixed))  # drawn from wgan's space, as a real trial
    params = {k: (d.low if isinstance(d, optuna.distributions.FloatDistribution) else d.choices[0]) for k, d in dists.items()}
    old.add_trial(optuna.create_trial(value=3.0, params=params, distributions=dists, user_attrs={"hparams": params}))
    assert old.metric_names is None
    study = runner.open_study(cfg, VARIANTS["wgan"], url, create=True)
    assert study.metric_names == [METRIC]
    from optuna_dashboard import get_note, save_note

    assert get_note(study) == dashboard.study_note(cfg, VARIANTS["wgan"], runner.budget_of(cfg).describe())
    (t,) = study.get_trials()
    assert t.value == 3.0 and not [k for k in t.user_attrs if k.startswith("fixed:")]
    assert dashboard.hyperparameters(t) == params
    # A note edited in the dashboard is never written over; opening again writes nothing.
    save_note(study, "my own note")
    runner.open_study(cfg, VARIANTS["wgan"], url, create=True)
    assert get_note(study) == "my own note"
    # No artifacts folder (no trial of this study uploaded one): `bench dashboard` serves none.
    assert dashboard.served_artifact_store(records.study_dir("old")) is None and dashboard.served_artifact_store(None) is None


def test_record_fixed_names_exactly_the_non_params():
    study = optuna.create_study()
    trial = study.ask({"a": optuna.distributions.IntDistribution(1, 1)})
    assert dashboard.record_fixed(trial, {"a": 1, "b": 2.5, "c": True}) == {"b": 2.5, "c": True}
    assert study.trials[0].user_attrs == {"fixed:b": 2.5, "fixed:c": True}
    assert dashboard.hyperparameters(study.trials[0]) == {"a": 1, "b": 2.5, "c": True}
