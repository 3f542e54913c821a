"""Fixtures of the object-storage tests: one local S3 (moto's server mode on loopback) for
the session, and the environment that points botocore, s3fs and MLflow at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ml_assets_tests.support.object_store import LocalS3, forget_s3_clients, running_moto


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test on the local S3 starts a server: slow, like the suite's other server tests."""
    for item in items:
        if "local_s3" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def local_s3() -> Iterator[LocalS3]:
    with running_moto() as server:
        yield server


@pytest.fixture
def s3(local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalS3]:
    """The local S3, with this test's environment pointing at it."""
    for name, value in local_s3.env.items():
        monkeypatch.setenv(name, value)
    forget_s3_clients()
    yield local_s3
    forget_s3_clients()
