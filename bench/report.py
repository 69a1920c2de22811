"""Results: one table row per figure, each with its same-run baseline, and the percentiles they are made of."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Result:
    """One line of the table: a measured value, its same-run baseline, the target and whether it was met."""

    row: str
    name: str
    value: float | None
    unit: str
    target: str
    met: bool | None
    baseline: float | None = None
    baseline_name: str = ""
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "ratio": self.ratio,
            "target": self.target,
            "met": self.met,
            "note": self.note,
            "details": self.details,
        }


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}".strip()


def table(results: list[Result]) -> str:
    """The results as one Markdown table (also readable in a terminal)."""
    lines = [
        "| # | measure | value | baseline (same run) | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        base = f"{fmt(r.baseline, r.unit)} ({r.baseline_name})" if r.baseline is not None else r.baseline_name or "-"
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else "-"
        met = {True: "yes", False: "**no**", None: "-"}[r.met]
        lines.append(f"| {r.row} | {r.name} | {fmt(r.value, r.unit)} | {base} | {ratio} | {r.target} | {met} |")
    return "\n".join(lines)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50), 3),
        "p99_ms": round(percentile(values, 99), 3),
        "max_ms": round(max(values), 3) if values else math.nan,
    }
