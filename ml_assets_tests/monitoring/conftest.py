"""Fixtures of the monitoring tests: generated days with drift scenarios switched on, with
simple per-row features (see `ml_assets_tests.support.synthetic`)."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from ml_assets.monitoring.drift_methods import DriftMethods, calibrate_thresholds
from ml_assets_tests.support.synthetic import COLUMNS, reference_frames, watched_days


@pytest.fixture(scope="session")
def reference_days() -> list[pl.DataFrame]:
    return reference_frames()


@pytest.fixture(scope="session")
def reference(reference_days: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(reference_days)


@pytest.fixture(scope="session")
def methods(reference_days: list[pl.DataFrame]) -> DriftMethods:
    """Default methods with thresholds raised where clean reference days vary (weekly rhythm
    of per-customer counts): the way the platform calibrates before watching."""
    return calibrate_thresholds(reference_days, COLUMNS)


@pytest.fixture(scope="session")
def days() -> dict[date, pl.DataFrame]:
    """Clean days after the reference window, then amount-inflation days."""
    return watched_days()
