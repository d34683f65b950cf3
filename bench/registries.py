"""Every registry by kind, so config validation and `bench list` see the same names.

Imports are lazy, so importing the config module stays cheap until a name is checked.
"""

from __future__ import annotations

from typing import Any


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


def names(kind: str) -> list[str]:
    return list(get(kind))


def doc(kind: str, name: str) -> str:
    entry = get(kind)[name]
    return getattr(entry, "doc", "") or ""
