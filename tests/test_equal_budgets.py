"""Issue 14, point 1: equal budgets, enforced and visible.

A budget change (`--trials`, or the file's budget) that would leave the variants of a study with
unequal budgets is refused in one line that says how to change it for every variant (exit 2,
nothing stored changes); `--variant all` changes it for every variant. Where budgets differ anyway
(an older study, an import: made here by editing the stored budget), `bench status`,
`bench study --dry-run`, the study's summary and `bench report` (report.md and --brief) say
"unequal budgets" and name each variant's budget and n.
"""

from __future__ import annotations

import optuna
import pytest

from bench.study import budget as B

from .conftest import tiny_study_text
from .faultkit import assert_one_line_error, cli_env, run_in_process, tree_digest


def test_left_unequal_names_the_stored_variants_a_change_would_leave_behind():
    one, two = B.Budget(1), B.Budget(2)
    assert B.left_unequal({}, two, ["ns_gan"]) == {}  # the first variant sets the budget
    assert B.left_unequal({"ns_gan": one}, two, ["ns_gan"]) == {}  # the only stored variant: nothing left unequal
    assert B.left_unequal({"ns_gan": one, "wgan": one}, two, ["ns_gan"]) == {"wgan": one}
    assert B.left_unequal({"ns_gan": one, "wgan": one}, one, ["ns_gan"]) == {}  # resuming at the stored budget
    assert B.left_unequal({"ns_gan": one, "wgan": one}, two, ["ns_gan", "wgan"]) == {}  # --variant all
    assert B.left_unequal({"ns_gan": one, "wgan": two}, two, ["ns_gan"]) == {}  # restores equality
    assert B.left_unequal({"ns_gan": one, "wgan": one}, B.Budget(1, steps=20), ["ns_gan"]) == {"wgan": one}  # steps count too
    # A stored variant the file no longer lists is left behind even by --variant all.
    assert B.left_unequal({"ns_gan": one, "lsgan": one}, two, ["ns_gan", "wgan"]) == {"lsgan": one}


def _set_budget(db, variant: str, trials: int) -> None:
    """What an older harness or an import may have left: one variant's stored budget changed alone."""
    st = optuna.storages.RDBStorage(f"sqlite:///{db}")
    study = optuna.load_study(study_name=f"tiny:{variant}", storage=st)
    study.set_user_attr("budget", {"trials": trials, "steps": 0, "seconds": 0.0})
    st.engine.dispose()


def _budgets(db) -> dict[str, int]:
    st = optuna.storages.RDBStorage(f"sqlite:///{db}")
    out = {s.study_name: s.user_attrs["budget"]["trials"] for s in st.get_all_studies()}
    st.engine.dispose()
    return out


@pytest.fixture
def workspace(tmp_path, shared_cache):
    study = tmp_path / "tiny.toml"
    study.write_text(tiny_study_text(trials=3))
    results = tmp_path / "results"
    return study, results, cli_env(results, shared_cache)


def test_a_change_for_one_variant_is_refused_and_all_variants_change_together(workspace):
    study, results, env = workspace
    db = results / "tiny" / "optuna.db"
    for v in ("ns_gan", "wgan"):
        code, out, err = run_in_process(["study", str(study), "--variant", v, "--trials", "1", "--create-only"], env)
        assert code == 0, err
    assert _budgets(db) == {"tiny:ns_gan": 1, "tiny:wgan": 1}
    before = tree_digest(results)
    for argv, words in [
        (["--variant", "ns_gan", "--trials", "2"], ["--variant ns_gan", "budget of 2 trials", "(wgan 1 trials stored)",
                                                    "--variant all --trials N", "--trials 1"]),
        (["--variant", "wgan"], ["--variant wgan", "budget of 3 trials", "(ns_gan 1 trials stored)", "--trials 1"]),  # the file's 3
    ]:
        code, out, err = run_in_process(["study", str(study), *argv], env)
        line = assert_one_line_error(code, err, 2, [str(study), "unequal", *words])
        assert out == "", out
        assert tree_digest(results) == before, f"{argv} changed stored results"
    code, out, err = run_in_process(["study", str(study), "--variant", "all", "--trials", "2", "--create-only"], env)
    assert code == 0, err
    assert "tiny: budget changed to 2 trials per variant, for every variant (was 1 trials for ns_gan, wgan)" in out
    assert _budgets(db) == {"tiny:ns_gan": 2, "tiny:wgan": 2}
    code, out, err = run_in_process(["status", str(study)], env)
    assert code == 0 and "unequal budgets" not in out, out
    code, out, err = run_in_process(["study", str(study), "--variant", "all", "--dry-run", "--calibrate-steps", "0"], env)
    assert code == 0 and "budget    3 trials per variant, identical for every variant" in out, out  # the file's 3 for all...
    assert "budget    this run changes it: tiny: budget changed to 3 trials per variant, for every variant (was 2 trials for ns_gan, wgan)" in out, out


def test_unequal_budgets_are_named_by_status_dry_run_and_report(workspace):
    study, results, env = workspace
    db = results / "tiny" / "optuna.db"
    code, out, err = run_in_process(["study", str(study), "--variant", "all", "--trials", "1", "--no-progress"], env)
    assert code == 0, err
    assert "unequal budgets" not in out
    _set_budget(db, "wgan", 2)

    code, out, err = run_in_process(["status", str(study)], env)
    assert code == 0, err
    assert "tiny: unequal budgets: ns_gan 1 trials (n = 1 done), wgan 2 trials (n = 1 done)" in out, out
    assert "--variant all --trials N" in out

    code, out, err = run_in_process(["study", str(study), "--variant", "ns_gan", "--trials", "1", "--dry-run", "--calibrate-steps", "0"], env)
    assert code == 0, err
    assert "identical for every variant" not in out, out
    assert "budget    this run would be refused" in out and "unequal budgets: ns_gan 1 trials (n = 1 done), wgan 2 trials" in out, out

    before = tree_digest(results)
    code, out, err = run_in_process(["study", str(study), "--variant", "ns_gan", "--trials", "1"], env)  # would keep them unequal
    assert_one_line_error(code, err, 2, ["--variant ns_gan", "(wgan 2 trials stored)", "--variant all --trials N", "--trials 2"])
    assert tree_digest(results) == before

    code, out, err = run_in_process(["report", str(study), "--brief", "--no-notebook"], env)
    assert code == 0, err
    expected = "unequal budgets: tiny: ns_gan 1 trials (n = 1 scored), wgan 2 trials (n = 1 scored)"
    assert expected in out, out
    md = (results / "tiny" / "report" / "report.md").read_text()
    assert f"Warning: {expected}" in md
    assert "These comparisons rest on unequal n" in md
    assert expected in (results / "tiny" / "report" / "report.html").read_text()
    # report.ipynb reads trials.parquet and prints the same line (its Comparisons cell): the budgets travel with it.
    from bench import report
    from bench.report.budgets import unequal_budgets

    assert unequal_budgets(report.per_trial(report.load(str(results / "tiny" / "report" / "trials.parquet")))).startswith(expected)
    from bench.report.notebook import template

    assert any("print(unequal_budgets(rep.best)" in c.source for c in template().cells if c.cell_type == "code")
