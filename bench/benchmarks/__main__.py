"""`python -m bench.benchmarks [NAME ...] [--quick]`: run benchmarks, write results/bench/."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench import records
from bench.benchmarks import host, load_all


def write_table(out_dir: Path) -> str:
    """results/bench/README.md from every <name>.json in out_dir (each at its own date and load)."""
    rows, total = [], 0.0
    for path in sorted(out_dir.glob("*.json")):
        r = records.read_json(path)
        figs = ", ".join(f"{k}={v}" for k, v in r.items() if k not in ("name", "host", "date", "wall_s", "command", "detail"))
        rows.append(f"| {r['name']} | {figs} | `{r.get('command', 'make bench')}` | {r.get('wall_s', '')} | {r.get('date', '')} |")
        total += float(r.get("wall_s") or 0.0)
    # wall_s per benchmark and their sum: whether `make bench` fits its 15 minutes (issue 18) is read here
    table = ("| benchmark | figures | command | wall_s | date |\n|---|---|---|---|---|\n" + "\n".join(rows)
             + f"\n\n{len(rows)} benchmark(s), {total:.0f} s of wall time in all (each at its own date and load).\n")
    records.atomic_write_bytes(out_dir / "README.md", table.encode())
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.benchmarks", description=__doc__)
    p.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    p.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke run")
    args = p.parse_args(argv)
    registry = load_all()
    unknown = [n for n in args.names if n not in registry]
    if unknown:
        print(f"bench: error: unknown benchmark {unknown[0]!r}; expected one of {', '.join(registry)}", file=sys.stderr)
        return 2
    out_dir = records.results_root() / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    where = host()
    for name in args.names or list(registry):
        t0 = time.perf_counter()
        figures = registry[name](args.quick)
        result = {"name": name, "host": where, "wall_s": round(time.perf_counter() - t0, 2),
                  "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures}
        records.write_json(out_dir / f"{name}.json", result)
        print(json.dumps({k: v for k, v in result.items() if k != "host"}))
    print(write_table(out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
