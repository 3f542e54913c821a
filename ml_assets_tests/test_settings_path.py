"""Settings take one path into the platform: `build_definitions(settings)` and the
`settings` resource for assets, `GeneratorConfig.from_settings` for the generator, and one
`DecisionThresholds` for the endpoint and batch scoring alike."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import date

import numpy as np
import polars as pl
import pytest

from ml_assets import cli
from ml_assets.data.generator import GeneratorConfig
from ml_assets.data.landing import read_labels, read_transactions
from ml_assets.definitions import build_definitions, build_resources
from ml_assets.monitoring.monitored_rows import score_frame
from ml_assets.resources import SettingsResource
from ml_assets.serving.config import ServingConfig
from ml_assets.settings import DecisionThresholds, Settings


def test_settings_resource_mirrors_every_setting():
    settings = Settings(
        seed=11, label_delay_max_days=5, decisions=DecisionThresholds(0.2, 0.6),
        partitions_start=date(2025, 6, 1),
    )  # fmt: skip
    resource = SettingsResource.from_settings(settings)
    assert resource.settings == settings
    mirrored = {f.name for f in fields(Settings)} - {"decisions"} | {"review_low", "decline_at"}
    assert set(SettingsResource.model_fields) == mirrored


def test_definitions_are_built_from_the_settings_given(tmp_path):
    settings = Settings(home=tmp_path, partitions_start=date(2025, 6, 1), label_delay_max_days=5)
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    validated = graph.get(next(k for k in graph.get_all_asset_keys()
                               if k.to_user_string() == "validated_transactions"))  # fmt: skip
    assert validated.partitions_def.start.date() == date(2025, 6, 1)
    resource = defs.resources["settings"]
    assert resource.settings == settings and resource.label_delay_max_days == 5


def test_endpoint_and_batch_scoring_read_the_same_thresholds(tmp_path, monkeypatch):
    monkeypatch.setenv("ML_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv("ML_ASSETS_REVIEW_LOW", "0.11")
    monkeypatch.setenv("ML_ASSETS_DECLINE_AT", "0.22")
    batch = build_resources(Settings.from_env())["settings"].settings.decisions
    assert batch == ServingConfig.from_env().decisions == DecisionThresholds(0.11, 0.22)


def test_batch_decisions_follow_the_configured_thresholds():
    rows = pl.DataFrame(
        {
            "transaction_id": ["a", "b", "c"],
            "event_time": [None, None, None],
            "customer_id": ["c"] * 3,
            "merchant_id": ["m"] * 3,
            "amount": [1.0] * 3,
            "channel": ["online"] * 3,
            "merchant_category": ["grocery"] * 3,
        }
    )
    scores = np.array([0.05, 0.15, 0.25])
    default = score_frame(rows, scores, "m", "1", DecisionThresholds())
    assert default["decision"].to_list() == ["approve"] * 3
    strict = score_frame(rows, scores, "m", "1", DecisionThresholds(0.1, 0.2))
    assert strict["decision"].to_list() == ["approve", "review", "decline"]


def test_generator_config_carries_every_source_setting():
    settings = Settings(
        seed=3, transactions_per_day=321, label_delay_min_days=2, label_delay_max_days=6,
        never_labelled_share=0.2,
    )  # fmt: skip
    config = GeneratorConfig.from_settings(settings)
    assert (config.seed, config.transactions_per_day) == (3, 321)
    assert (config.label_delay_min_days, config.label_delay_max_days) == (2, 6)
    assert config.never_labelled_share == 0.2
    assert GeneratorConfig.from_settings(settings, seed=9).seed == 9
    assert replace(config, scenarios=()) == config


@pytest.mark.parametrize("max_delay", [1, 5])
def test_generate_lands_labels_with_the_configured_delays(tmp_path, monkeypatch, max_delay):
    """The CLI used to map the generator's settings by hand; the label delays now come from
    the settings, as they do for the demo."""
    monkeypatch.setenv("ML_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv("ML_ASSETS_LABEL_DELAY_MIN_DAYS", "1")
    monkeypatch.setenv("ML_ASSETS_LABEL_DELAY_MAX_DAYS", str(max_delay))
    days = 8
    argv = ["generate", "--start", "2026-03-01", "--days", str(days),
            "--transactions-per-day", "400"]  # fmt: skip
    assert cli.main(argv) == 0
    landing = Settings.from_env().landing_dir
    transactions = pl.concat(
        read_transactions(landing, f"2026-03-0{d + 1}").frame for d in range(days)
    )
    labels = pl.concat(read_labels(landing, f"2026-03-0{d + 1}").frame for d in range(days))
    joined = labels.join(transactions.select("transaction_id", "event_time"), on="transaction_id")
    delays = (joined["label_time"].dt.date() - joined["event_time_right"].dt.date()).dt.total_days()
    assert delays.min() >= 1 and delays.max() == max_delay
