"""A trial's full training state, so that a preempted trial continues instead of starting over.

At every checkpoint, and at the end of the step during which Ctrl-C or SIGTERM arrived, the
training loop writes `resume.pt` in the trial folder (one file, the latest state only, replaced
atomically): G, D, both Adam states, G's moving average, the variant's own state (BEGAN's k_t,
historical averaging's parameter means), the loss terms of the current log interval, the data
stream's position, every random number generator's state (torch on each device, numpy, python),
the evaluations so far and the device-seconds spent. The G weights of every evaluated step stay
where they always were (`checkpoints/`, `[train] keep_checkpoints`); `resume.pt` is training
scratch: not in the manifest's checksums, not exported, removed when the trial ends in a way that
is never rerun (complete, diverged, pruned, failed).

A trial the runner re-queues (interrupted, aborted by the machine, or lost when its worker died)
runs under a new number with the same hyperparameters and seeds; `runner` finds the latest
`resume.pt` of its chain of reruns and the loop continues from that step. Continued in the same
deterministic mode on the same kind of device, it ends bit-identical to the trial run straight
through (tests/test_resume.py), its log and checkpoints up to that step are copied from the folder
it continues, and its recorded D steps and device-seconds are the trial's, counted once.

The file is read with `weights_only=True` (no code runs from it); a state whose trial identity
(configuration digest, variant, hyperparameters, seeds) differs from the trial's is refused.
"""

from __future__ import annotations

import contextlib
import io
import logging
import random
import shutil
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from bench import records
from bench.errors import HarnessError
from bench.gan.penalties import ParamMean

_log = logging.getLogger(__name__)

FORMAT = 1
SAFE_TYPES = [ParamMean]  # the variant-state types a state may hold (torch's weights_only allow-list)
KINDS_COPIED = ("train", "eval")  # records of the continued trial's log carried into the new one (up to the step)


def identity(digest: str, variant: str, hp: Mapping[str, Any], seeds: Mapping[str, int]) -> dict[str, Any]:
    """What a state must match to be continued: the same computation (`digest`: the study's
    compatibility digest, which leaves out the budget and description), the same trial."""
    return {"config_digest": digest, "variant": variant, "hparams": {k: hp[k] for k in sorted(hp)},
            "seeds": {k: int(seeds[k]) for k in sorted(seeds)}}


@dataclass(frozen=True)
class Plan:
    """What the runner tells the training loop: save states for trial `who`, and continue from
    the state in `source` (a trial folder) if there is one."""
    who: dict[str, Any]
    source: Path | None = None


def rng_state() -> dict[str, Any]:
    """Every generator a training step may draw from, in a form weights_only loading accepts."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
            "python": [version, list(internal), gauss_next]}


def set_rng_state(s: Mapping[str, Any]) -> None:
    torch.set_rng_state(s["torch"])
    if s["cuda"]:
        torch.cuda.set_rng_state_all(s["cuda"])
    name, keys, pos, has_gauss, gauss = s["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = s["python"]
    random.setstate((version, tuple(internal), gauss_next))


@dataclass
class State:
    """A loaded resume state (see `save` for the fields)."""
    step: int
    body: dict[str, Any]
    source: Path


def save(tdir: Path, step: int, who: Mapping[str, Any], nets: Any, ema: Any, variant_state: Mapping[str, Any],
         acc: Mapping[str, torch.Tensor], stream: Any, result: Any, seconds: float) -> None:
    """Write the full training state after D step `step`, atomically (a crash leaves the previous one)."""
    body = {
        "format": FORMAT, "step": step, "identity": dict(who), "seconds": seconds,
        "G": nets.G.state_dict(), "D": nets.D.state_dict(),
        "opt_g": nets.opt_g.state_dict(), "opt_d": nets.opt_d.state_dict() if nets.opt_d is not None else None,
        "ema": ema.module.state_dict() if ema is not None else None,
        "variant_state": dict(variant_state), "acc": dict(acc), "stream": stream.state(), "rng": rng_state(),
        "result": {"value": result.value, "best_step": result.best_step, "evaluations": list(result.evaluations)},
    }
    buf = io.BytesIO()
    torch.save(body, buf)
    records.atomic_write_bytes(records.resume_path(tdir), buf.getvalue())


def load(path: Path, who: Mapping[str, Any], device: torch.device) -> State:
    """The state in `path` for the trial `who`; HarnessError (naming the file) when it cannot be
    read or belongs to another computation."""
    import pickle
    import zipfile

    try:
        with torch.serialization.safe_globals(SAFE_TYPES):
            body = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise HarnessError(f"{path}: no such resume state") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HarnessError(f"{path}: not a loadable resume state ({first[:160]})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise HarnessError(f"{path}: resume state format {body.get('format') if isinstance(body, dict) else '?'}, expected {FORMAT}")
    if body["identity"] != dict(who):
        diff = sorted(k for k in who if body["identity"].get(k) != who[k])
        raise HarnessError(f"{path}: a state of another trial or configuration (differs in {', '.join(diff)})")
    return State(int(body["step"]), body, path)


def restore(st: State, nets: Any, ema: Any, stream: Any, device: torch.device) -> dict[str, Any]:
    """Put the state back into the freshly built nets, optimizers, EMA and stream, then the random
    generators (last: building the nets drew from them). Returns the body for the loop's own fields."""
    b = st.body
    nets.G.load_state_dict(b["G"])
    nets.D.load_state_dict(b["D"])
    nets.opt_g.load_state_dict(b["opt_g"])
    if nets.opt_d is not None:
        nets.opt_d.load_state_dict(b["opt_d"])
    if ema is not None:
        ema.module.load_state_dict(b["ema"])
    stream.restore(b["stream"])
    set_rng_state(b["rng"])
    return b


def carry_over(src: Path, dst: Path, step: int) -> None:
    """Copy into the new trial folder what the continued trial recorded up to `step`: its train and
    eval records (after the new log's own first record), G's checkpoints and the 2-D densities."""
    log = records.metrics_path(src)
    if log.is_file():
        for rec in records.read_jsonl(log):
            if rec.get("kind") in KINDS_COPIED and int(rec.get("step", 0)) <= step:
                records.append_jsonl(records.metrics_path(dst), rec)
    for folder, files in (("checkpoints", records.checkpoint_files(src)), ("densities", [p for _, p in records.densities(src)])):
        for p in files:
            if int(p.stem.rsplit("-", 1)[1]) <= step:
                (dst / folder).mkdir(parents=True, exist_ok=True)
                shutil.copy2(p, dst / folder / p.name)


def discard(tdir: Path) -> None:
    """Remove a trial's resume state (the trial ended in a way that is never rerun)."""
    records.resume_path(tdir).unlink(missing_ok=True)


class DeferredInterrupt:
    """Ctrl-C and SIGTERM during training end the trial at the end of the current step, after its
    full state is saved, so that it continues from exactly there; a second one stops at once.
    Outside the main thread (signals cannot be caught there) it does nothing."""

    def __init__(self) -> None:
        self.pending = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True
        _log.info("%s: stopping after this step, once its training state is saved (again to stop at once)",
                  signal.Signals(signum).name)

    @contextlib.contextmanager
    def installed(self) -> Iterator["DeferredInterrupt"]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        # a signal the process was started to ignore (a job launched with `&` from a script ignores
        # SIGINT) stays ignored: deferring it would make Ctrl-C stop a job that was meant to ignore it
        previous = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)
                    if signal.getsignal(s) != signal.SIG_IGN}
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
