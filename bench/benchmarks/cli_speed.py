"""How long the light commands take from a cold start (issue 18, point 3): `bench --help`,
`bench list` and `bench status` each run in a fresh `python -m bench` process, as a user types them.

None of them imports torch (tests/test_catalogue.py checks that; the names and docs they show come
from bench/catalogue.py), so what is left is the interpreter, argparse, the config, and for status
Optuna and the storage. Goals on an idle machine: under 1 s for --help and list, under 2 s for status.
A bare `python -c pass` is timed beside them, and the 1-minute load average is recorded, because
these machines are shared: read the figures against both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import optuna

from bench import records, storage
from bench.benchmarks import benchmark
from bench.benchmarks.timing import median, side_by_side, timed

ROOT = Path(__file__).resolve().parents[2]


def _run(argv: list[str], env: dict[str, str]) -> float:
    def go() -> None:
        r = subprocess.run([sys.executable, *argv], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed (exit {r.returncode}): {r.stderr.strip()[-500:]}")

    return timed(go)


@benchmark("cli_speed")
def cli_speed(quick: bool) -> dict[str, Any]:
    repeats = 2 if quick else 5
    with tempfile.TemporaryDirectory(prefix="bench-cli-speed-") as tmp:
        # A started study to report on: `quick` with one of its variants created, the rest counted.
        (Path(tmp) / "quick").mkdir()
        st = storage.open_storage(records.default_storage_url("quick", Path(tmp)), heartbeat=False)
        optuna.create_study(study_name="quick:wgan", storage=st)
        st.engine.dispose()
        env = {**os.environ, "BENCH_RESULTS": tmp, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        env.pop("BENCH_STORAGE", None)
        load_before = os.getloadavg()[0]
        times = side_by_side({
            "python": lambda: _run(["-c", "pass"], env),
            "help": lambda: _run(["-m", "bench", "--help"], env),
            "list": lambda: _run(["-m", "bench", "list"], env),
            "status": lambda: _run(["-m", "bench", "status", "quick"], env),
        }, repeats=repeats, warmup=1)
        load_after = os.getloadavg()[0]
    return {
        "help_s": round(median(times["help"]), 3),
        "list_s": round(median(times["list"]), 3),
        "status_s": round(median(times["status"]), 3),
        "python_startup_s": round(median(times["python"]), 3),
        "load_1min": round((load_before + load_after) / 2, 2),
        "goal": "help, list < 1 s; status < 2 s (idle machine)",
        "command": "python -m bench.benchmarks cli_speed",
        "detail": {"seconds": {k: [round(x, 3) for x in v] for k, v in times.items()}, "repeats": repeats,
                   "load_1min_before_after": [load_before, load_after]},
    }
