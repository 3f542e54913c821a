from datetime import date

import polars as pl
import pytest

from ml_assets.data.contracts import INGEST_ERROR
from ml_assets.data.generator import GeneratorConfig, generate_transactions
from ml_assets.data.landing import (
    MissingColumnsError,
    read_labels,
    read_transactions,
    write_landing_file,
)
from ml_assets.data.scenarios import Scenario
from ml_assets.data.validation import SchemaMismatchError, split_valid_quarantine

DAY = date(2026, 3, 4)


@pytest.fixture
def transactions(generator_config) -> pl.DataFrame:
    return generate_transactions(DAY, generator_config)


def test_added_column_is_kept_and_recorded(tmp_path, transactions):
    write_landing_file(
        tmp_path, DAY, "transactions", transactions.with_columns(loyalty_tier=pl.lit("gold"))
    )
    read = read_transactions(tmp_path, DAY)
    assert read.added_columns == ["loyalty_tier"]
    split = split_valid_quarantine(read.frame, DAY)
    assert "loyalty_tier" in split.valid.columns and split.quarantined.height == 0


def test_missing_required_column_fails_with_its_name(tmp_path, transactions):
    write_landing_file(tmp_path, DAY, "transactions", transactions.drop("channel"))
    with pytest.raises(MissingColumnsError, match="lacks required column\\(s\\) channel"):
        read_transactions(tmp_path, DAY)


def test_absent_optional_column_is_fine(tmp_path, transactions):
    write_landing_file(tmp_path, DAY, "transactions", transactions.drop("true_fraud_probability"))
    read = read_transactions(tmp_path, DAY)
    assert read.absent_optional_columns == ["true_fraud_probability"]
    assert split_valid_quarantine(read.frame, DAY).quarantined.height == 0


def test_no_files_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no transaction files landed for 2026-03-04"):
        read_transactions(tmp_path, DAY)


def test_csv_and_parquet_read_the_same(tmp_path, transactions):
    write_landing_file(tmp_path / "p", DAY, "transactions", transactions, "parquet")
    write_landing_file(tmp_path / "c", DAY, "transactions", transactions, "csv")
    from_parquet = read_transactions(tmp_path / "p", DAY).frame
    from_csv = read_transactions(tmp_path / "c", DAY).frame
    assert from_csv.equals(from_parquet)


def test_quarantine_conserves_rows_and_names_reasons(tmp_path, transactions):
    broken = GeneratorConfig(
        transactions_per_day=transactions.height, scenarios=(Scenario("broken_upstream", DAY, DAY),)
    )
    frame = generate_transactions(DAY, broken)
    # A CSV with text where a number belongs, a duplicate id and a negative amount.
    frame = frame.with_columns(pl.col("amount").cast(pl.String))
    frame = frame.with_columns(
        amount=pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("12,50")).otherwise("amount"),
        transaction_id=pl.when(pl.int_range(pl.len()) == 7)
        .then(pl.lit(frame["transaction_id"][8]))
        .otherwise("transaction_id"),
    ).with_columns(
        amount=pl.when(pl.int_range(pl.len()) == 9).then(pl.lit("-3.0")).otherwise("amount")
    )
    write_landing_file(tmp_path, DAY, "transactions", frame, "csv")
    raw = read_transactions(tmp_path, DAY).frame
    split = split_valid_quarantine(raw, DAY)
    assert split.valid.height + split.quarantined.height == raw.height
    assert set(split.valid.columns).isdisjoint({INGEST_ERROR, "quarantine_reason"})
    reasons = dict(
        zip(
            split.quarantined["transaction_id"], split.quarantined["quarantine_reason"], strict=True
        )
    )
    assert "amount=12,50 is not Float64" in reasons[frame["transaction_id"][5]]
    assert "amount: greater_than(0)" in reasons[frame["transaction_id"][9]]
    assert "transaction_id" in reasons[frame["transaction_id"][8]]
    assert (
        split.quarantined.filter(pl.col("quarantine_reason").str.contains("channel: isin")).height
        > 0
    )
    assert split.quarantined.filter(pl.col("failed_columns").str.contains("amount")).height > 0


def test_unreadable_amounts_quarantine_only_their_rows(tmp_path, transactions):
    # A clean generated day landed as CSV, every 40th amount replaced by text: exactly those
    # rows are quarantined, each naming `amount`, and every other row stays valid.
    broken_rows = pl.int_range(pl.len()) % 40 == 0
    frame = transactions.with_columns(
        amount=pl.when(broken_rows)
        .then(pl.lit("not-a-number"))
        .otherwise(pl.col("amount").cast(pl.String))
    )
    broken_ids = frame.filter(broken_rows)["transaction_id"].to_list()
    assert len(broken_ids) > 1
    write_landing_file(tmp_path, DAY, "transactions", frame, "csv")
    raw = read_transactions(tmp_path, DAY).frame
    split = split_valid_quarantine(raw, DAY)
    assert raw.height == transactions.height
    assert split.valid.height == raw.height - len(broken_ids)
    assert split.quarantined["transaction_id"].to_list() == broken_ids
    assert all(
        "amount=not-a-number is not Float64" in reason
        for reason in split.quarantined["quarantine_reason"]
    )


def test_event_on_another_day_is_quarantined(transactions):
    shifted = transactions.with_columns(
        event_time=pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.col("event_time") - pl.duration(days=2))
        .otherwise("event_time")
    )
    split = split_valid_quarantine(shifted, DAY)
    assert split.quarantined["quarantine_reason"].to_list() == [
        "event_time: event_time must fall on 2026-03-04"
    ]


def test_wrong_column_type_fails_the_whole_day(transactions):
    with pytest.raises(SchemaMismatchError, match="amount"):
        split_valid_quarantine(transactions.with_columns(pl.col("amount").cast(pl.Int64)), DAY)


def test_labels_without_file_are_empty_and_bad_labels_fail(tmp_path):
    assert read_labels(tmp_path, DAY).frame.height == 0
    bad = pl.DataFrame({
        "transaction_id": ["T1"], "event_time": ["2026-03-03T10:00:00"], "customer_id": ["C1"],
        "merchant_id": ["M1"], "label_time": ["2026-03-04T01:00:00"], "is_fraud": ["maybe"],
    })  # fmt: skip
    write_landing_file(tmp_path, DAY, "labels", bad, "csv")
    with pytest.raises(ValueError, match="is_fraud=maybe is not Int8"):
        read_labels(tmp_path, DAY)
