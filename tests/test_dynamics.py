"""The seed's Figure 1 in the report of a 2-D study (issue 15, point 4): every checkpoint of a
mixture trial keeps the generated points' histogram, and `bench report` draws the densities over
training with the modes covered per checkpoint under them."""

from __future__ import annotations

import math

import numpy as np
import torch

from bench import records
from bench.cli import main as bench_main
from bench.report.dynamics import modes_per_step, shown_steps
from bench.trial.preview import DENSITY_BINS, density_npz


def test_density_counts_by_hand(tmp_path):
    """Reference points span [-2, 2] x [-1, 1]: the window is the square of half-width 0.75 x 4 = 3
    around (0, 0), bins 6/64 wide. Four generated points: two at (0.01, 0.01) (bin 32, 32), one at
    (-2.99, 2.99) (bin 0, 63), one at (10, 0) outside; and a NaN one, outside too."""
    ref = torch.tensor([[-2.0, -1.0], [2.0, 1.0], [0.0, 0.0]])
    pts = torch.tensor([[0.01, 0.01], [0.01, 0.01], [-2.99, 2.99], [10.0, 0.0], [math.nan, 0.0]])
    path = tmp_path / "d.npz"
    path.write_bytes(density_npz(pts, ref))
    d = records.load_arrays(path)
    assert d["counts"].shape == (DENSITY_BINS, DENSITY_BINS) and d["counts"].dtype == np.uint16
    assert d["counts"][32, 32] == 2 and d["counts"][0, 63] == 1 and d["counts"].sum() == 3
    assert int(d["total"]) == 5 and int(d["outside"]) == 2
    assert np.allclose(d["edges_x"][[0, -1]], [-3, 3]) and np.allclose(d["edges_y"][[0, -1]], [-3, 3])
    # The real points on the same bins: (-2, -1) in bin (10, 21), (2, 1) in (53, 42), (0, 0) in (32, 32).
    ref_counts = d["reference_counts"]
    assert ref_counts[10, 21] == ref_counts[53, 42] == ref_counts[32, 32] == 1 and ref_counts.sum() == 3


def test_shown_steps_keep_the_first_and_the_last():
    assert shown_steps([5, 10]) == [5, 10]
    s = shown_steps(list(range(1, 101)), most=5)
    assert s[0] == 1 and s[-1] == 100 and len(s) == 5


def test_a_ring8_study_keeps_densities_and_its_report_draws_them(env, tiny_study, tmp_path):
    path = tiny_study(variants='["ns_gan"]', dataset="ring8", architecture="mlp", width=0.25, steps=10, checkpoint_every=5,
                      metrics='["swd_ring8_10k_test", "modes_ring8_10k"]')
    assert bench_main(["study", str(path), "--variant", "ns_gan", "--no-progress"]) == 0
    tdir = tmp_path / "results" / "tiny" / "ns_gan" / "trial-0000"
    dens = records.densities(tdir)
    assert [s for s, _ in dens] == [5, 10]
    for _, p in dens:
        d = records.load_arrays(p)
        assert int(d["total"]) == 10_000 and int(d["counts"].sum()) + int(d["outside"]) == 10_000
        assert p.stat().st_size < 20_000  # small enough to keep at every checkpoint
    metric, modes = modes_per_step(tdir)
    logged = [r for r in records.read_jsonl(tdir / "metrics.jsonl") if r["kind"] == "eval"]
    assert metric == "modes_ring8_10k" and modes == {r["step"]: r["modes_ring8_10k"] for r in logged}

    assert bench_main(["report", str(path), "--resamples", "50", "--no-notebook", "--brief"]) == 0
    out = tmp_path / "results" / "tiny" / "report"
    assert (out / "figures" / "dynamics.png").is_file()
    md = (out / "report.md").read_text()
    assert "Training dynamics on 2-D data" in md and "figures/dynamics.png" in md


def test_an_image_study_has_no_dynamics_figure():
    import pandas as pd

    from bench.report.dynamics import figure

    best = pd.DataFrame({"dataset": ["digits5k"], "variant": ["ns_gan"], "trial": [0], "score": [1.0], "trial_dir": [""]})
    best.attrs["objective"] = "fid"
    assert figure(best) == {}
