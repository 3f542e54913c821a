"""Fixtures of the feature-store tests: generated transactions and a real redis-server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import date, timedelta

import polars as pl
import pytest

from ml_assets.data.generator import GeneratorConfig, generate_transactions

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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_redis(executable: str) -> tuple[subprocess.Popen, int]:
    import redis

    for _ in range(3):  # another process may grab the free port between probe and bind
        port = _free_port()
        process = subprocess.Popen(
            [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            try:
                client.ping()
                return process, port
            except redis.ConnectionError:
                time.sleep(0.05)
        process.kill()
        process.wait()
    raise RuntimeError("redis-server did not start on a free loopback port after 3 attempts")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throwaway redis-server on a free loopback port; skipped locally if not installed."""
    executable = shutil.which("redis-server")
    if executable is None:
        message = "redis-server is not installed (apt-get install -y redis-server)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI must test the Redis online store")
        pytest.skip(message)
    process, port = _start_redis(executable)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
