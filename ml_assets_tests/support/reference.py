"""The plain-Python reference the feature tests compare the real computation with."""

from __future__ import annotations

import statistics


def aggregate(aggregation: str, values: list[float]) -> float | None:
    """One registry aggregation over a window's values, written as plainly as possible."""
    if aggregation == "count":
        return len(values)
    if aggregation == "sum":
        return sum(values)
    if aggregation in ("mean", "share"):
        return sum(values) / len(values)
    if aggregation == "max":
        return max(values)
    return statistics.stdev(values) if len(values) > 1 else None
