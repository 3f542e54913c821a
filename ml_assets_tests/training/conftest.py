"""Fixtures of the training tests: a labelled window and models trained on it once per
session (see `ml_assets_tests.support.models`)."""

from __future__ import annotations

import polars as pl
import pytest

from ml_assets_tests.support.models import Trained, labelled_window, train_small_models


@pytest.fixture(scope="session")
def frame() -> pl.DataFrame:
    return labelled_window()


@pytest.fixture(scope="session")
def trained(frame: pl.DataFrame) -> Trained:
    return train_small_models(frame)
