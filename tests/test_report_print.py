"""Report figures for print (issue 19, point 5): every figure as PNG and SVG, a dpi that takes
effect, titles inside the figure, score axes that say which way is better, and a report.html that
holds its figures itself (base64), so it can be mailed as one file."""

from __future__ import annotations

import base64
import re

import matplotlib
import pytest
from PIL import Image

from bench import report
from bench.report import synthetic


@pytest.fixture(scope="module")
def rep():
    matplotlib.use("Agg", force=True)
    frame = report.tidy.frame_from_export(synthetic.synthetic_export(12, variants=("ns_gan", "wgan"), seed=2, checkpoints=2))
    return report.build(frame, resamples=100)


def test_every_figure_is_written_as_png_and_svg_and_embedded_in_the_html(rep, tmp_path):
    paths = report.write(rep, tmp_path / "report", notebook=False)
    pngs = sorted(k for k in paths if k.startswith("figures/") and k.endswith(".png"))
    assert len(pngs) >= 4
    html = paths["report.html"].read_text()
    assert 'src="figures/' not in html  # nothing linked by a relative path
    embedded = [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]
    for name in pngs:
        svg = paths[name[:-4] + ".svg"].read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        assert paths[name].read_bytes() in embedded, name


def test_dpi_sets_the_png_resolution(rep, tmp_path):
    low = report.write(rep, tmp_path / "low", notebook=False, dpi=50)["figures/budget.png"]
    high = report.write(rep, tmp_path / "high", notebook=False, dpi=200)["figures/budget.png"]
    (w1, h1), (w2, h2) = Image.open(low).size, Image.open(high).size
    assert w2 == pytest.approx(4 * w1, rel=0.02) and h2 == pytest.approx(4 * h1, rel=0.02)


def test_titles_fit_and_score_axes_say_which_way_is_better(rep):
    figs = {k: f for k, f in report.draw(rep).items() if not hasattr(f, "suffix")}
    for name, fig in figs.items():
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        box = fig.bbox
        for ax in fig.axes:
            if ax.get_visible() and ax.get_title():
                t = ax.title.get_window_extent(renderer)
                assert box.x0 - 1 <= t.x0 and t.x1 <= box.x1 + 1, f"{name}: title {ax.get_title()!r} is clipped"
    for name in ("distribution", "budget", "learning_rate"):
        labels = [ax.get_ylabel() for ax in figs[name].axes if ax.get_ylabel()]
        assert labels and all("lower is better" in y and rep.metric in y for y in labels), (name, labels)
    matplotlib.pyplot.close("all")
