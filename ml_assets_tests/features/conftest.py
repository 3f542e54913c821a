"""Fixtures of the feature-store tests: generated transactions and a real redis-server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date

import polars as pl
import pytest

from ml_assets.data.generator import GeneratorConfig
from ml_assets_tests.support.servers import in_ci, start_redis, stop_process
from ml_assets_tests.support.synthetic import FEATURE_CONFIG, FEATURE_DAY, feature_history


@pytest.fixture(scope="session")
def day() -> date:
    """The partition the tests compute features for."""
    return FEATURE_DAY


@pytest.fixture(scope="session")
def generator_config() -> GeneratorConfig:
    return FEATURE_CONFIG


@pytest.fixture(scope="session")
def transactions() -> pl.DataFrame:
    """Validated-shape transactions of the day and the 31 days before it."""
    return feature_history()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throwaway redis-server on a free loopback port; skipped locally if not installed."""
    executable = shutil.which("redis-server")
    if executable is None:
        message = "redis-server is not installed (apt-get install -y redis-server)"
        if in_ci():
            pytest.fail(f"{message}; CI must test the Redis online store")
        pytest.skip(message)
    process, url = start_redis(executable)
    try:
        yield url
    finally:
        stop_process(process)
