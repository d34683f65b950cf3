"""The package's import graph, read from the source (an AST scan, lazy imports included).

The package is laid out by pipeline stage, and imports point down the stages only:

    errors < records, reconnect, search < storage, data < gan, metrics < registries < config
           < trial < study < report < cli, benchmarks

A module may import its own package's modules, or a package of a lower layer; two packages of the
same layer never import each other. No module imports itself back through a chain (no cycle).
Reports read the storage and the records only: nothing the report package imports reaches the
runner or the training loop, and importing it loads no torch.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "bench"

LAYERS = {
    "bench": 0,
    "bench.errors": 0, "bench.catalogue": 0,
    "bench.records": 1, "bench.reconnect": 1, "bench.search": 1,
    "bench.storage": 2, "bench.data": 2,
    "bench.gan": 3, "bench.metrics": 3,
    "bench.registries": 4,
    "bench.config": 5,
    "bench.trial": 6,
    "bench.study": 7,
    "bench.report": 8, "bench.figures": 8,
    "bench.cli": 9, "bench.benchmarks": 9,
    "bench.__main__": 10,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def unit(mod: str) -> str:
    """The LAYERS key a module belongs to (longest matching prefix)."""
    keys = [k for k in LAYERS if mod == k or mod.startswith(k + ".")]
    assert keys, f"{mod} is in no layer: add its package to LAYERS in {__file__}"
    return max(keys, key=len)


def resolve(mod: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(mod: str) -> set[str]:
    """The bench modules `mod` imports anywhere in its body (`from P import m` counts as P.m when m is a module)."""
    path = MODULES[mod]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "bench"}
        elif isinstance(node, ast.ImportFrom):
            frm = resolve(mod, path, node)
            if frm.split(".")[0] != "bench":
                continue
            for a in node.names:
                out.add(f"{frm}.{a.name}" if f"{frm}.{a.name}" in MODULES else frm)
    out = {m for m in out if m in MODULES}
    out.discard(mod)
    return out


GRAPH = {m: imports(m) for m in MODULES}


def test_every_module_has_a_layer():
    for m in MODULES:
        unit(m)


def test_imports_point_down_the_layers():
    bad = []
    for m, deps in GRAPH.items():
        for d in deps:
            um, ud = unit(m), unit(d)
            if um != ud and LAYERS[ud] >= LAYERS[um]:
                bad.append(f"{m} (layer {LAYERS[um]}) imports {d} (layer {LAYERS[ud]})")
    assert not bad, "imports that do not point down a layer:\n" + "\n".join(sorted(bad))


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for d in sorted(graph.get(n, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_no_import_cycle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def closure(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for d in GRAPH[todo.pop()] - seen:
            seen.add(d)
            todo.append(d)
    return seen


@pytest.mark.parametrize("mod", [m for m in MODULES if m.startswith("bench.report")])
def test_report_does_not_reach_the_runner_or_the_training_loop(mod):
    reached = sorted(d for d in closure(mod) if d.startswith(("bench.study", "bench.trial")))
    assert not reached, f"{mod} reaches {reached}"


def test_importing_the_report_package_loads_no_torch():
    code = "import sys, bench.report; print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('bench.trial') or m.startswith('bench.study')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", out
