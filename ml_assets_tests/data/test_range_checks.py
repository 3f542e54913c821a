"""A range run's blocking checks: one result per check that fails if any day fails, and the
days-per-run setting that bounds a range."""

from datetime import date

import pytest

from ml_assets.data.partitions import range_backfill
from ml_assets.data.quality import Outcome, combined_outcome

PASS, FAIL = Outcome(True, "fine", {"rows": 10}), Outcome(False, "too few rows", {"rows": 1})


def test_one_day_keeps_its_own_outcome():
    assert combined_outcome({date(2026, 3, 1): FAIL}) is FAIL


def test_a_range_fails_when_any_day_fails_and_names_it():
    outcome = combined_outcome({date(2026, 3, 1): PASS, date(2026, 3, 2): FAIL})
    assert not outcome.passed
    assert outcome.metadata["failed_days"] == ["2026-03-02"]
    assert "1 of 2 days failed" in outcome.description and "2026-03-02" in outcome.description
    assert "| 2026-03-02 | False | too few rows |" in outcome.metadata["by_day"]


def test_a_range_passes_when_every_day_passes():
    outcome = combined_outcome({date(2026, 3, d): PASS for d in (1, 2, 3)})
    assert outcome.passed and outcome.metadata["days"] == 3 and not outcome.metadata["failed_days"]


def test_days_per_run_must_be_positive():
    assert range_backfill(1).max_partitions_per_run == 1
    with pytest.raises(ValueError, match="ML_ASSETS_BACKFILL_DAYS_PER_RUN must be at least 1"):
        range_backfill(0)
