"""The live evidence a rollout step is judged on, and where it is kept.

Monitoring writes two small tables under the reports folder: one row per day of the shadow
comparison (`shadow_comparison`) and one per day of the pooled A/B analysis
(`ab_analysis`). The rollout reads them here (training sits below monitoring, so the
contract lives on this side): a shadow version moves to canary only when `readiness` says
so, a canary to champion only when the A/B verdict is `promote`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ml_assets.settings import Settings

SHADOW_FOLDER, AB_FOLDER, DAILY = "shadow_comparison", "ab_analysis", "daily.parquet"
READY, BLOCKED, WAITING = "ready", "blocked", "waiting"
PROMOTE, WORSE, NO_VERDICT = "promote", "worse", "none"


def shadow_table_path(reports_dir: Path) -> Path:
    return Path(reports_dir) / SHADOW_FOLDER / DAILY


def ab_table_path(reports_dir: Path) -> Path:
    return Path(reports_dir) / AB_FOLDER / DAILY


def _read(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path) if path.exists() else pl.DataFrame()


@dataclass(frozen=True)
class ShadowLimits:
    """When a shadow day blocks the move to canary, and how much traffic the move needs."""

    max_flip_rate: float = 0.02
    latency_budget_ms: float = 20.0
    min_requests: int = 1_000

    @classmethod
    def from_settings(cls, settings: Settings) -> ShadowLimits:
        return cls(
            settings.shadow_max_flip_rate,
            settings.shadow_latency_budget_ms,
            settings.shadow_min_requests,
        )


@dataclass(frozen=True)
class Readiness:
    """Whether a shadow version may move to canary, over every day it was compared."""

    version: str
    state: str  # READY | BLOCKED | WAITING
    compared: int
    days: tuple[str, ...]
    failed_days: tuple[str, ...]
    summary: str


def readiness(table: pl.DataFrame, version: str, limits: ShadowLimits) -> Readiness:
    """From the daily shadow table (columns day, shadow_version, compared, passed): blocked
    by any failed day, ready once `limits.min_requests` answers were compared, else waiting."""
    if table.height:
        rows = table.filter(pl.col("shadow_version") == str(version)).sort("day")
    else:
        rows = pl.DataFrame(schema={"day": pl.Date, "compared": pl.Int64, "passed": pl.Boolean})
    days = tuple(str(d) for d in rows["day"].to_list())
    failed = tuple(d for d, ok in zip(days, rows["passed"].to_list(), strict=True) if not ok)
    compared = int(rows["compared"].sum() or 0)
    if failed:
        state, why = BLOCKED, f"blocked on {', '.join(failed)}"
    elif compared >= limits.min_requests:
        state, why = READY, f"{compared} compared answers over {len(days)} days, none blocked"
    else:
        state, why = WAITING, f"{compared} of {limits.min_requests} compared answers so far"
    return Readiness(str(version), state, compared, days, failed, f"shadow v{version}: {why}")


def shadow_readiness(reports_dir: Path, version: str, limits: ShadowLimits) -> Readiness:
    return readiness(_read(shadow_table_path(reports_dir)), version, limits)


def ab_verdict(reports_dir: Path, version: str) -> tuple[str, str]:
    """The latest A/B verdict of canary `version` and its summary (NO_VERDICT without one)."""
    table = _read(ab_table_path(reports_dir))
    if not table.height:
        return NO_VERDICT, f"no A/B analysis of canary v{version} yet"
    rows = table.filter(pl.col("canary_version") == str(version)).sort("day")
    if not rows.height:
        return NO_VERDICT, f"no A/B analysis of canary v{version} yet"
    last = rows.row(-1, named=True)
    return str(last["verdict"]), str(last.get("summary") or "")
