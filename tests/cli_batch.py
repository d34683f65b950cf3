"""Run many `bench` command lines in one process, each as `python -m bench ARGS` would run it.

Starting Python and importing torch costs seconds per command; issue #10's suite feeds dozens of
bad inputs through the CLI, so this driver imports once and calls `bench.cli.main(argv)` per case
with the process's file descriptors 1 and 2 redirected to files (so library output and warnings
are caught exactly as a terminal would see them), the environment reset per case, an uncaught
exception printed as Python prints it (exit 1), and a digest of the results tree before and after.
`tests/test_bad_input.py` checks that a few cases give byte-identical output through the real
`python -m bench` too.

Input (stdin): JSON list of {"argv": [...], "env": {...}}. Output (stdout, last line): JSON list
of {"code", "stdout", "stderr", "changed"}.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path


def tree_digest(root: Path) -> dict[str, str]:
    """relative path -> sha256 of the bytes (or 'dir'): what "byte-identical results" compares."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def run_case(argv: list[str], env: dict[str, str], base_env: dict[str, str], base_filters: list) -> dict:
    from bench.cli import main

    os.environ.clear()
    os.environ.update(base_env)
    os.environ.update(env)
    warnings.filters[:] = base_filters  # every case sees each warning afresh, as a new process would
    warnings._filters_mutated()  # type: ignore[attr-defined]
    results = Path(argv[argv.index("--results") + 1] if "--results" in argv else os.environ.get("BENCH_RESULTS", "results"))
    before, t0 = tree_digest(results), time.perf_counter()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(out.fileno(), 1), os.dup2(err.fileno(), 2)
        try:
            code = main(argv)
        except SystemExit as e:  # argparse, and anything calling sys.exit
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if not isinstance(e.code, (int, type(None))):
                print(e.code, file=sys.stderr)
        except BaseException:  # what the interpreter does with an uncaught exception
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])
        out.seek(0), err.seek(0)
        result = {"seconds": round(time.perf_counter() - t0, 2), "code": code, "stdout": out.read().decode(errors="replace"), "stderr": err.read().decode(errors="replace")}
    result["changed"] = changed(before, tree_digest(results))
    return result


def main() -> None:
    cases = json.loads(sys.stdin.read())
    base_env, base_filters = dict(os.environ), list(warnings.filters)
    results = [run_case(c["argv"], c.get("env", {}), base_env, base_filters) for c in cases]
    sys.stdout.write("\n" + json.dumps(results) + "\n")


if __name__ == "__main__":
    main()
