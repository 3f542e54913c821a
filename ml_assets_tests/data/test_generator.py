from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from ml_assets.data.demo_source import land_days
from ml_assets.data.generator import (
    GeneratorConfig,
    _generate_with_truth,
    generate_labels,
    generate_transactions,
)
from ml_assets.data.scenarios import Scenario

DAY = date(2026, 3, 4)


def test_same_day_and_seed_give_identical_rows_and_bytes(tmp_path, generator_config):
    first = generate_transactions(DAY, generator_config)
    second = generate_transactions(DAY, generator_config)
    assert first.equals(second)
    a = next(land_days(tmp_path / "a", DAY, 1, generator_config))
    b = next(land_days(tmp_path / "b", DAY, 1, generator_config))
    assert a == b
    for kind in ("transactions", "labels"):
        path = f"date={DAY}/{kind}.parquet"
        assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes()


def test_days_are_independent(generator_config):
    alone = generate_transactions(DAY, generator_config)
    for offset in range(3):  # generating other days first changes nothing
        generate_transactions(DAY - timedelta(days=offset + 1), generator_config)
    assert generate_transactions(DAY, generator_config).equals(alone)
    other = generate_transactions(DAY + timedelta(days=1), generator_config)
    assert not set(other["transaction_id"]) & set(alone["transaction_id"])


def test_seed_changes_the_rows(generator_config):
    other_seed = GeneratorConfig(
        seed=99, transactions_per_day=generator_config.transactions_per_day
    )
    assert not generate_transactions(DAY, generator_config).equals(
        generate_transactions(DAY, other_seed)
    )


def test_rows_fall_on_their_day_and_entities_are_stable(generator_config):
    frame = generate_transactions(DAY, generator_config)
    assert frame["event_time"].dt.date().unique().to_list() == [DAY]
    later = generate_transactions(DAY + timedelta(days=5), generator_config)
    homes = (
        pl.concat([frame, later]).group_by("customer_id").agg(pl.col("customer_country").n_unique())
    )
    assert homes["customer_country"].max() == 1


def test_fraud_follows_behaviour_features_can_see():
    truth = pl.concat(
        _generate_with_truth(DAY + timedelta(days=i), GeneratorConfig(transactions_per_day=5_000))
        for i in range(3)
    ).sort("customer_id", "event_time")
    prior = truth.with_columns(
        burst=(pl.col("event_time").diff().over("customer_id") < pl.duration(minutes=40)).fill_null(
            False
        )
    )
    rate = (
        prior.group_by("burst").agg(pl.col("_is_fraud").mean()).sort("burst")["_is_fraud"].to_list()
    )
    assert rate[1] > 3 * rate[0]  # velocity bursts carry far more fraud
    online = truth.group_by(pl.col("channel") == "online").agg(
        pl.col("true_fraud_probability").mean()
    )
    assert (
        online.sort("channel")["true_fraud_probability"].to_list()[1]
        > online.sort("channel")["true_fraud_probability"].to_list()[0]
    )


def test_labels_arrive_late_and_some_never(generator_config):
    config = GeneratorConfig(
        transactions_per_day=generator_config.transactions_per_day,
        label_delay_min_days=1,
        label_delay_max_days=3,
        never_labelled_share=0.1,
    )
    labels = generate_labels(DAY, config)
    assert labels["label_time"].dt.date().unique().to_list() == [DAY]
    origin_days = set(labels["event_time"].dt.date().unique().to_list())
    assert origin_days == {DAY - timedelta(days=k) for k in (1, 2, 3)}
    # Every transaction of a day is labelled at most once, and about 10% never.
    origin = DAY - timedelta(days=3)
    seen = pl.concat(generate_labels(origin + timedelta(days=k), config) for k in (1, 2, 3))
    seen = seen.filter(pl.col("event_time").dt.date() == origin)
    assert seen["transaction_id"].is_unique().all()
    share = 1 - seen.height / generate_transactions(origin, config).height
    assert 0.05 < share < 0.15


def test_scenarios_change_only_their_days(generator_config):
    scenario = Scenario("amount_inflation", DAY, DAY)
    drifted = GeneratorConfig(
        transactions_per_day=generator_config.transactions_per_day, scenarios=(scenario,)
    )
    clean = generate_transactions(DAY, generator_config)
    inflated = generate_transactions(DAY, drifted)
    assert np.isclose(inflated["amount"].sum() / clean["amount"].sum(), 1.6, rtol=0.01)
    other_day = DAY - timedelta(days=1)
    assert generate_transactions(other_day, drifted).equals(
        generate_transactions(other_day, generator_config)
    )


def test_new_category_and_broken_upstream(generator_config):
    config = GeneratorConfig(
        transactions_per_day=generator_config.transactions_per_day,
        scenarios=(
            Scenario("new_merchant_category", DAY, DAY),
            Scenario("broken_upstream", DAY, DAY),
        ),
    )
    frame = generate_transactions(DAY, config)
    assert "crypto_exchange" in frame["merchant_category"].to_list()
    assert 0.05 < frame["amount"].null_count() / frame.height < 0.2
    assert frame["channel"].str.ends_with("_V2").any()


def test_scenario_parsing_names_the_problem():
    assert Scenario.parse("amount_inflation@2026-03-01..2026-03-05").end == date(2026, 3, 5)
    with pytest.raises(ValueError, match="unknown scenario 'typo'"):
        Scenario.parse("typo@2026-03-01")
    with pytest.raises(ValueError, match="expected name@START..END"):
        Scenario.parse("amount_inflation")
