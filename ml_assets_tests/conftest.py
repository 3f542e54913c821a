"""Shared fixtures: a temporary data dir, a real Dagster instance, small generated days."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from ml_assets.data.generator import GeneratorConfig
from ml_assets.settings import Settings
from ml_assets_tests.local_servers import free_port  # noqa: F401 (shared with test modules)

# Small days keep the suite fast; the data's signal does not depend on the volume.
TEST_ROWS_PER_DAY = 1_500
FIRST_DAY = date(2026, 3, 1)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings pointing at a fresh data dir; also exported so code that reads the
    environment (assets, CLI) sees the same dir."""
    home = tmp_path / "home"
    monkeypatch.setenv("ML_ASSETS_HOME", str(home))
    monkeypatch.setenv("ML_ASSETS_TRANSACTIONS_PER_DAY", str(TEST_ROWS_PER_DAY))
    return Settings.from_env()


@pytest.fixture
def generator_config() -> GeneratorConfig:
    return GeneratorConfig(transactions_per_day=TEST_ROWS_PER_DAY)


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A real (SQLite-backed) Dagster instance in a temporary DAGSTER_HOME."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as test_instance:
        yield test_instance


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}
