"""Latency percentiles and path shares per day; drift episodes for the retrain trigger."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from ml_assets.monitoring.episodes import DriftEpisode, drift_episodes
from ml_assets.monitoring.latency import (
    PATHS,
    daily_latency,
    latency_by_day,
    latency_table,
    plot_latency,
)
from ml_assets_tests.support.synthetic import CLEAN_DAYS, toy_prediction_log

D0 = date(2026, 3, 1)


def test_latency_matches_numpy(days: dict[date, pl.DataFrame], tmp_path) -> None:
    log = pl.concat([toy_prediction_log(days[d], seed=i) for i, d in enumerate(CLEAN_DAYS[:3])])
    by_day = latency_by_day(log)
    assert [d.day for d in by_day] == CLEAN_DAYS[:3]
    for daily in by_day:
        part = log.filter(pl.col("received_at").dt.date() == daily.day)
        expected = np.percentile(part["latency_ms"].to_numpy(), [50, 95, 99])
        assert [daily.p50_ms, daily.p95_ms, daily.p99_ms] == pytest.approx(list(expected))
        assert sum(daily.path_shares.values()) == pytest.approx(1.0)
        assert daily.path_shares["model"] == pytest.approx((part["path"] == "model").mean())
    table = latency_table(by_day)
    assert table.columns[-4:] == [f"{p}_share" for p in PATHS]
    assert plot_latency(table, tmp_path / "latency.png").read_bytes()[:4] == b"\x89PNG"


def test_absent_path_has_zero_share() -> None:
    log = pl.DataFrame({"latency_ms": [1.0, 2.0, 3.0], "path": ["model", "model", "cache"]})
    daily = daily_latency(log, D0)
    assert daily.path_shares == {"model": 2 / 3, "fallback": 0.0, "cache": 1 / 3, "review": 0.0}


def _shares(values: list[float]) -> dict[date, float]:
    return {D0 + timedelta(days=i): v for i, v in enumerate(values)}


def test_one_episode_per_contiguous_run() -> None:
    shares = _shares([0.0, 0.3, 0.4, 0.5, 0.0, 0.2, 0.0, 0.3, 0.3, 0.3, 0.3])
    episodes = drift_episodes(shares, threshold=0.2, min_days=2)
    assert episodes == [
        DriftEpisode(D0 + timedelta(days=1), D0 + timedelta(days=3), 3, 0.5),
        DriftEpisode(D0 + timedelta(days=7), D0 + timedelta(days=10), 4, 0.3),
    ]
    assert episodes[0].run_key == "drift-episode-2026-03-02"


def test_short_runs_do_not_qualify_and_threshold_is_inclusive() -> None:
    assert drift_episodes(_shares([0.2, 0.0, 0.2]), threshold=0.2, min_days=2) == []
    assert len(drift_episodes(_shares([0.2, 0.0, 0.2]), threshold=0.2, min_days=1)) == 2


def test_a_missing_day_breaks_a_run() -> None:
    shares = {D0: 0.5, D0 + timedelta(days=1): 0.5, D0 + timedelta(days=3): 0.5}
    assert [e.days for e in drift_episodes(shares, 0.2, 1)] == [2, 1]


def test_an_ongoing_episode_keeps_its_start() -> None:
    before = drift_episodes(_shares([0.0, 0.5, 0.5]), 0.2, 2)
    after = drift_episodes(_shares([0.0, 0.5, 0.5, 0.5]), 0.2, 2)
    assert before[0].run_key == after[0].run_key and after[0].days == 3


def test_order_of_input_does_not_matter() -> None:
    shares = _shares([0.5, 0.5, 0.0])
    assert drift_episodes(dict(reversed(shares.items())), 0.2, 2) == drift_episodes(shares, 0.2, 2)


def test_min_days_must_be_positive() -> None:
    with pytest.raises(ValueError, match="min_days"):
        drift_episodes({}, 0.2, 0)
