"""Whether a report's variants ran under equal budgets, and on which n its comparisons rest.

Lucic et al. (2018) compare variants at an equal budget. `bench study` refuses a budget that would
leave the variants of a study unequal (issue 14), but older studies and imports may hold unequal
ones: the report then says so in one line, naming each variant's stored budget and its n (the trials
its analyses use: run to full length, and pruned ones with --include-pruned), instead of comparing n = 1 with n = 5 without a word.
"""

from __future__ import annotations

import pandas as pd


def _describe(b: dict) -> str:
    """A stored budget as bench/study/budget.py's Budget.describe words it (reports do not import the runner's package)."""
    parts = [f"{int(b['trials'])} trials"]
    if b.get("steps"):
        parts.append(f"{int(b['steps']):,} D steps")
    if b.get("seconds"):
        parts.append(f"{float(b['seconds']):,.0f} device-s")
    return " / ".join(parts)


def unequal_budgets(best: pd.DataFrame) -> str | None:
    """'unequal budgets: ...' naming each variant's budget and n, when the variants of one study
    were given different budgets; None when every study's variants share one budget."""
    lines = []
    for study, per_variant in (best.attrs.get("budgets") or {}).items():
        if len({tuple(sorted(b.items())) for b in per_variant.values()}) <= 1:
            continue
        mine = best[best["study"] == study]
        n = {v: int(g["score"].notna().sum()) for v, g in mine.groupby("variant")}  # the trials the report analyses
        each = ", ".join(f"{v} {_describe(b)} (n = {n.get(v, 0)} scored)" for v, b in per_variant.items())
        lines.append(f"{study}: {each}")
    if not lines:
        return None
    return ("unequal budgets: " + "; ".join(lines) + ". The comparisons rest on these n, not on equal budgets; "
            "`bench study FILE --variant all --trials N` gives every variant one budget")
