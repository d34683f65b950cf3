"""TensorBoard for one trial ([train] tensorboard = true, or `bench study --tensorboard`).

The training loop (train.py) tells a `Board` what it already writes to metrics.jsonl, and the
board mirrors it into one TensorBoard run per trial, under the study's results folder
(records.tensorboard_run_dir: tensorboard/<variant>/trial-NNNN):

    train/<term>     every loss term and logged state (d_loss, g_loss, BEGAN's k, ...), every log_every steps
    eval/<metric>    every metric of the study at each checkpoint
    samples          the sample grid from the fixed evaluation z at each checkpoint (the picture samples.png holds)
    hparams          the trial's hyperparameters, fixed ones included, in TensorBoard's HParams tab
                     (with eval/<objective> as its metric) and as a text table

The board only watches: it reads values the loop has already brought to the host at a log
interval, never adds a device sync, and never changes a number (so [train] tensorboard is outside
the study's compatibility digest, config.OBSERVATION_ONLY). Writing is torch.utils.tensorboard's
SummaryWriter, whose events go to disk from a background thread; its cost per step is measured by
`python -m bench.benchmarks tensorboard` (README: TensorBoard). With the key off, `open_board` returns
`OFF`, whose methods do nothing, and the `tensorboard` package is never imported.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch

from bench import records
from bench.trial import preview

TRAIN, EVAL, SAMPLES, HPARAMS = "train", "eval", "samples", "hparams"  # the tags (prefixes) a run holds


class Off:
    """The board of a trial that is not watched: every call does nothing."""

    run_dir: Path | None = None

    def train(self, step: int, values: Mapping[str, float]) -> None:
        pass

    def checkpoint(self, step: int, metrics: Mapping[str, float], images: torch.Tensor, reference: Any = None) -> None:
        pass

    def replay(self, log: Iterable[Mapping[str, Any]]) -> None:
        pass

    def close(self) -> None:
        pass


OFF = Off()


class Board(Off):
    """One trial's TensorBoard run."""

    def __init__(self, run_dir: Path, variant: str, hp: Mapping[str, Any], objective: str):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # torch's module needs the `tensorboard` package
            from bench.errors import ConfigError

            raise ConfigError(f"[train] tensorboard = true needs the 'tensorboard' package ({e}); "
                              "`pip install tensorboard` (or `make setup`), or set it to false") from None
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(log_dir=str(run_dir))
        self._hparams(variant, hp, objective)

    def _hparams(self, variant: str, hp: Mapping[str, Any], objective: str) -> None:
        from torch.utils.tensorboard.summary import hparams

        values = {"variant": variant, **{k: _hparam_value(v) for k, v in hp.items()}}
        # The HParams tab lists the run with these values and reads its metric from the run's own scalar.
        for summary in hparams(values, {f"{EVAL}/{objective}": float("nan")}):
            self.writer._get_file_writer().add_summary(summary)
        table = "| hyperparameter | value |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in values.items())
        self.writer.add_text(HPARAMS, table, 0)

    def train(self, step: int, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(f"{TRAIN}/{name}", value, step)

    def checkpoint(self, step: int, metrics: Mapping[str, float], images: torch.Tensor, reference: Any = None) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(f"{EVAL}/{name}", value, step)
        if torch.isfinite(images).all():
            self.writer.add_image(SAMPLES, _png_to_hwc(preview.samples_png(images, reference)), step, dataformats="HWC")

    def replay(self, log: Iterable[Mapping[str, Any]]) -> None:
        """Write the train and eval records of a metrics log: a trial that continues a stopped one
        (resume.py) starts a new folder with the old one's records up to its step, and so its run
        shows the whole curve (the earlier sample grids stay in the stopped trial's own run)."""
        for rec in log:
            if rec.get("kind") == TRAIN:
                self.train(int(rec["step"]), {k: v for k, v in rec.items() if k not in ("kind", "step")})
            elif rec.get("kind") == EVAL:
                for name in records.values_of(rec):
                    self.writer.add_scalar(f"{EVAL}/{name}", rec[name], int(rec["step"]))

    def close(self) -> None:
        self.writer.close()


def open_board(on: bool, study: str, tdir: Path, variant: str, hp: Mapping[str, Any], objective: str) -> Off:
    """The trial's board: a `Board` when `on` and the trial folder is one of the study's (a dry run's
    calibration, an audit's rerun and a benchmark's scratch trial are not watched), `OFF` otherwise."""
    run_dir = records.tensorboard_run_dir(study, tdir) if on else None
    return OFF if run_dir is None else Board(run_dir, variant, hp, objective)


def _hparam_value(v: Any) -> bool | int | float | str:
    """TensorBoard's HParams take numbers, booleans and strings; anything else is shown as text."""
    return v if isinstance(v, (bool, int, float, str)) else str(v)


def _png_to_hwc(png: bytes) -> np.ndarray:
    """The sample grid as an (H, W, 3) uint8 array: the same picture as samples.png, images or 2-D points."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
