"""Write generated days into the landing zone, as an upstream system would."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from ml_assets.data.generator import GeneratorConfig, generate_labels, generate_transactions
from ml_assets.data.landing import LABELS, TRANSACTIONS, write_landing_file
from ml_assets.data.scenarios import Scenario


def land_days(
    landing_dir: Path, start: date, days: int, config: GeneratorConfig, fmt: str = "parquet"
) -> Iterator[tuple[date, int]]:
    """Land `days` consecutive days from `start`; yields each day and its row count."""
    for offset in range(days):
        day = start + timedelta(days=offset)
        transactions = generate_transactions(day, config)
        write_landing_file(landing_dir, day, TRANSACTIONS, transactions, fmt)
        write_landing_file(landing_dir, day, LABELS, generate_labels(day, config), fmt)
        yield day, transactions.height


def demo_scenarios(last_day: date) -> tuple[Scenario, ...]:
    """The demo's drift: prices inflate over the last 5 days, and an upstream bug breaks
    columns on the last 3, so drift reports and the quarantine have something to show."""
    return (
        Scenario("amount_inflation", last_day - timedelta(days=4), last_day),
        Scenario("broken_upstream", last_day - timedelta(days=2), last_day),
    )
