"""Fixtures of the feature-store tests: generated transactions and a real redis-server."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import date, timedelta

import polars as pl
import pytest

from ml_assets.data.generator import GeneratorConfig, generate_transactions
from ml_assets_tests.conftest import in_ci
from ml_assets_tests.local_servers import start_redis

DAY = date(2026, 2, 10)
HISTORY_DAYS = 31
CONFIG = GeneratorConfig(transactions_per_day=600)


@pytest.fixture(scope="session")
def day() -> date:
    """The partition the tests compute features for."""
    return DAY


@pytest.fixture(scope="session")
def generator_config() -> GeneratorConfig:
    return CONFIG


@pytest.fixture(scope="session")
def transactions() -> pl.DataFrame:
    """Validated-shape transactions of DAY and the 31 days before it (enough for 30d windows)."""
    days = [DAY - timedelta(days=i) for i in range(HISTORY_DAYS, -1, -1)]
    return pl.concat([generate_transactions(day, CONFIG) for day in days])


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
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
