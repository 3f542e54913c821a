"""Parity as a number: a generated day replayed through the real endpoint (uvicorn on
loopback, the real registry and online store) gives that day's batch scores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from ml_assets.automation.replay import run_replay
from ml_assets.monitoring.assets import SCORED_TRANSACTIONS
from ml_assets.training.assets import MODEL_EVALUATION, STUDENT_MODEL, TEACHER_MODEL
from ml_assets.training.deployment import DEPLOYED_MODEL
from ml_assets_tests.support.platforms import (
    START,
    TRAINING,
    Platform,
    failures,
    platform_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("replay")]
DAY = START + timedelta(days=9)  # its labels land on the three days after it


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform_for(tmp_path_factory.mktemp("replay")) as built:
        models = built.materialize(
            [TEACHER_MODEL, STUDENT_MODEL, MODEL_EVALUATION, DEPLOYED_MODEL], run_config=TRAINING
        )
        assert models.success, failures(models)
        scored = built.materialize([SCORED_TRANSACTIONS], partition=DAY.isoformat())
        assert scored.success, failures(scored)
        yield built


def test_a_replayed_day_gets_its_batch_scores(platform: Platform) -> None:
    parity = run_replay(platform.settings, DAY, batch=250)
    assert parity.rows > 2_500
    assert parity.off_1e6 <= 0.001, parity.lines()
    assert parity.off_001 == 0.0, parity.lines()
    assert parity.labelled > 1_000
    assert round(parity.served_auc, 4) == round(parity.batch_auc, 4)
    assert set(parity.paths) <= {"model", "review"}  # every answer came from the model


def test_a_replay_starts_from_the_day_before(platform: Platform) -> None:
    """Replaying again gives the same answers: the day's own events are forgotten first,
    so no transaction sees itself or a later one."""
    first = run_replay(platform.settings, DAY, batch=500)
    again = run_replay(platform.settings, DAY, batch=100)
    assert (again.off_1e6, again.served_auc) == (first.off_1e6, first.served_auc)


def test_a_day_without_batch_scores_says_what_to_do(platform: Platform) -> None:
    with pytest.raises(FileNotFoundError, match="scored_transactions"):
        run_replay(platform.settings, date(2026, 3, 2))
