"""Fixtures of the serving tests: one real world per session (registry, online store; see
`ml_assets_tests.support.worlds`), its aliases reset before each test."""

from __future__ import annotations

import pytest

from ml_assets_tests.support.worlds import World, build_world


@pytest.fixture(scope="session")
def _world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("serving_world"))


@pytest.fixture
def world(_world: World) -> World:
    """The shared world with aliases reset: champion = v1, no canary, no shadow."""
    _world.reset_aliases()
    return _world
