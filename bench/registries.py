"""Every registry by kind, so config validation and `bench list` see the same names.

The registries themselves import torch (a variant is a recipe of torch functions), which takes
seconds to import, tens of seconds on a loaded machine. What config validation and `bench list`
need from them (names, one-line docs, dataset shapes, which architecture and metric fit which
dataset) is therefore also kept as plain data in bench/catalogue.py, generated from the live
registries by `python -m bench.registries` and checked against them by tests/test_catalogue.py,
so those paths never import torch. `get(kind)` gives the live registry, for the code that runs.
"""

from __future__ import annotations

import pprint
import sys
from pathlib import Path
from typing import Any

from bench.catalogue import CATALOGUE


def get(kind: str) -> dict[str, Any]:
    if kind == "variants":
        from bench.gan.variants import VARIANTS

        return VARIANTS
    if kind == "datasets":
        from bench.data import DATASETS

        return DATASETS
    if kind == "architectures":
        from bench.gan.architectures import ARCHITECTURES

        return ARCHITECTURES
    if kind == "metrics":
        from bench.metrics import METRICS

        return METRICS
    if kind == "extractors":
        from bench.metrics.extractors import EXTRACTORS

        return EXTRACTORS
    if kind == "samplers":
        from bench.search.samplers import SAMPLERS

        return SAMPLERS
    if kind == "pruners":
        from bench.search.samplers import PRUNERS

        return PRUNERS
    raise KeyError(kind)


KINDS = ("variants", "datasets", "architectures", "metrics", "extractors", "samplers", "pruners")
_MODULES = {
    "variants": "bench.gan.variants",
    "datasets": "bench.data",
    "architectures": "bench.gan.architectures",
    "metrics": "bench.metrics",
    "extractors": "bench.metrics.extractors",
    "samplers": "bench.search.samplers",
    "pruners": "bench.search.samplers",
}


def names(kind: str) -> list[str]:
    """The registry's names in registration order, from the catalogue (no torch).

    An entry registered at run time (a user's own variant or metric added to the live registry
    before the study file is read, or a test's) is included when its registry module is already
    loaded: the catalogue lists what the package ships, the live registry what this process runs.
    """
    if kind not in KINDS:
        raise KeyError(kind)
    out = list(CATALOGUE["docs"][kind])
    if _MODULES[kind] in sys.modules:
        out += [n for n in get(kind) if n not in out]
    return out


def _shipped(kind: str, *names: str) -> bool:
    """True when every name is in the catalogue; False sends the caller to the live registry
    (an entry registered at run time, which `names` accepts only once its module is loaded)."""
    return all(n in CATALOGUE["docs"][k] for k, n in zip((kind, "datasets"), names))


def doc(kind: str, name: str) -> str:
    if _shipped(kind, name):
        return CATALOGUE["docs"][kind][name]
    return getattr(get(kind)[name], "doc", "") or ""


def dataset_shape(name: str) -> tuple[int, ...]:
    if _shipped("datasets", name):
        return tuple(CATALOGUE["dataset_shape"][name])
    return tuple(get("datasets")[name].shape)


def dataset_train_size(name: str) -> int:
    """Samples in the dataset's train split (0: not known before loading it)."""
    if _shipped("datasets", name):
        return int(CATALOGUE["dataset_train_size"][name])
    return int(getattr(get("datasets")[name], "train_size", 0) or 0)


def architecture_needs(arch: str, dataset: str) -> str | None:
    """None when `arch` takes `dataset`'s samples, else what it needs (ARCHITECTURES[arch].accepts)."""
    if _shipped("architectures", arch, dataset):
        return CATALOGUE["architecture_needs"][arch][dataset]
    return get("architectures")[arch].accepts(dataset_shape(dataset))


def metric_supports(metric: str, dataset: str) -> bool:
    if _shipped("metrics", metric, dataset):
        return dataset in CATALOGUE["metric_datasets"][metric]
    return get("metrics")[metric].supports(dataset)


def metric_lower_is_better(metric: str) -> bool:
    if _shipped("metrics", metric):
        return CATALOGUE["metric_lower_is_better"][metric]
    return bool(get("metrics")[metric].lower_is_better)


def metric_counts_modes(metric: str) -> bool:
    """Whether the metric's value is the number of mixture modes covered."""
    if _shipped("metrics", metric):
        return metric in CATALOGUE["metric_counts_modes"]
    return metric in get("metrics") and bool(get("metrics")[metric].counts_modes)


def live_catalogue() -> dict[str, Any]:
    """The catalogue computed from the registries themselves (imports torch)."""
    docs = {kind: {name: getattr(entry, "doc", "") or "" for name, entry in get(kind).items()} for kind in KINDS}
    datasets, archs, metrics = get("datasets"), get("architectures"), get("metrics")
    return {
        "docs": docs,
        "dataset_shape": {d: list(ds.shape) for d, ds in datasets.items()},
        "dataset_train_size": {d: int(ds.train_size) for d, ds in datasets.items()},
        "architecture_needs": {a: {d: arch.accepts(ds.shape) for d, ds in datasets.items()} for a, arch in archs.items()},
        "metric_datasets": {m: [d for d in datasets if metric.supports(d)] for m, metric in metrics.items()},
        "metric_lower_is_better": {m: bool(metric.lower_is_better) for m, metric in metrics.items()},
        "metric_counts_modes": [m for m, metric in metrics.items() if metric.counts_modes],
    }


CATALOGUE_PATH = Path(__file__).with_name("catalogue.py")
HEADER = '''"""Names, one-line docs and fit facts of every registry, as plain data: what `bench list` and config
validation need, without importing torch. GENERATED by `python -m bench.registries` from the live
registries; tests/test_catalogue.py fails when it is out of date. Do not edit by hand."""

'''


def write_catalogue(path: Path = CATALOGUE_PATH) -> None:
    text = HEADER + "CATALOGUE = " + pprint.pformat(live_catalogue(), width=120, sort_dicts=False) + "\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_catalogue()
    print(f"wrote {CATALOGUE_PATH}", file=sys.stderr)
