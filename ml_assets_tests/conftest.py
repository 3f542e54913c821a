"""Shared fixtures: a temporary data dir, a real Dagster instance, small generated days.

Harnesses shared with other modules or the benches live in `ml_assets_tests.support`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from ml_assets.data.generator import GeneratorConfig
from ml_assets.settings import Settings

# Small days keep the suite fast; the data's signal does not depend on the volume.
TEST_ROWS_PER_DAY = 1_500
# Fixtures that train models or start servers. A test using one is marked slow wherever it
# lives, so `pytest -m "not slow"` stays the fast loop; modules that build their own
# platform or server mark themselves with `pytestmark`.
SLOW_FIXTURES = frozenset({"trained", "_world", "redis_url"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


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
