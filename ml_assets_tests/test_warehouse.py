import os
import time
from datetime import date

import dagster as dg
import polars as pl
import pytest

from ml_assets.atomic_files import STALE_AFTER_S
from ml_assets.resources import WarehouseIOManager
from ml_assets.warehouse import (
    file_digest,
    partition_path,
    read_partition,
    window_frame,
    write_partition,
)


def test_rewrite_replaces_the_partition_whole(tmp_path):
    write_partition(tmp_path, "t", "2026-03-01", pl.DataFrame({"a": [1, 2, 3]}))
    write_partition(tmp_path, "t", "2026-03-01", pl.DataFrame({"a": [4]}))
    assert read_partition(tmp_path, "t", "2026-03-01")["a"].to_list() == [4]
    assert os.listdir(partition_path(tmp_path, "t", "2026-03-01").parent) == ["data.parquet"]


def test_write_interrupted_before_rename_keeps_the_old_partition(tmp_path, monkeypatch):
    write_partition(tmp_path, "t", "2026-03-01", pl.DataFrame({"a": [1, 2, 3]}))
    before = file_digest(partition_path(tmp_path, "t", "2026-03-01"))

    def killed(*_args):
        raise KeyboardInterrupt("killed between write and rename")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_partition(tmp_path, "t", "2026-03-01", pl.DataFrame({"a": [9] * 1000}))
    monkeypatch.undo()
    assert file_digest(partition_path(tmp_path, "t", "2026-03-01")) == before
    assert read_partition(tmp_path, "t", "2026-03-01")["a"].to_list() == [1, 2, 3]
    assert os.listdir(partition_path(tmp_path, "t", "2026-03-01").parent) == ["data.parquet"]


def test_missing_partition_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="materialize t for it first"):
        read_partition(tmp_path, "t", "2026-03-01")


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    """A crash between the temporary write and the rename leaves a `.tmp` behind; the next
    write of that partition (or log folder) removes it once it is stale, and leaves alone a
    young one that may belong to a writer still running."""
    frame = pl.DataFrame({"a": [1, 2]})
    path = write_partition(tmp_path, "t", "2026-03-01", frame)
    stale = path.parent / f".{path.name}.dead.tmp"
    young = path.parent / f".{path.name}.alive.tmp"
    stale.write_bytes(b"half a file")
    young.write_bytes(b"being written")
    old = time.time() - STALE_AFTER_S - 60
    os.utime(stale, (old, old))
    write_partition(tmp_path, "t", "2026-03-01", frame)
    assert not stale.exists() and young.exists()
    assert read_partition(tmp_path, "t", "2026-03-01").equals(frame)


def _days(n: int) -> dict[str, pl.DataFrame]:
    return {f"2026-03-0{i}": pl.DataFrame({"day": [i], "x": [i * 1.5]}) for i in range(1, n + 1)}


def test_window_frame_is_the_days_a_single_day_run_reads():
    """A range run hands each day of the range the same days, in the same order, that its
    single-day window would load; days before the data began are simply absent."""
    frames = _days(5)
    window = window_frame(frames, "t", date(2026, 3, 4), 2)
    assert window["day"].to_list() == [2, 3, 4]
    assert window_frame(frames, "t", date(2026, 3, 2), 30)["day"].to_list() == [1, 2]
    assert window_frame(frames, "t", date(2026, 3, 5), 0).equals(frames["2026-03-05"])
    with pytest.raises(FileNotFoundError, match="materialize t for them first"):
        window_frame(frames, "t", date(2026, 3, 9), 1)


def _range_run(tmp_path, body) -> dg.ExecuteInProcessResult:
    @dg.asset(partitions_def=dg.DailyPartitionsDefinition("2026-03-01"), io_manager_key="io")
    def t(context: dg.AssetExecutionContext):
        return body(context.partition_keys)

    with dg.instance_for_test() as instance:
        return dg.materialize(
            [t],
            resources={"io": WarehouseIOManager(root=str(tmp_path))},
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": "2026-03-01",
                "dagster/asset_partition_range_end": "2026-03-03",
            },
            raise_on_error=False,
        )


def test_a_range_run_writes_one_file_per_day(tmp_path):
    result = _range_run(tmp_path, lambda keys: {k: pl.DataFrame({"day": [k]}) for k in keys})
    assert result.success
    for key in ("2026-03-01", "2026-03-02", "2026-03-03"):
        assert read_partition(tmp_path, "t", key)["day"].to_list() == [key]


@pytest.mark.parametrize(
    "body",
    [
        lambda keys: pl.DataFrame({"day": keys}),  # one frame for three days
        lambda keys: {k: pl.DataFrame({"day": [k]}) for k in keys[:2]},  # a day missing
    ],
)
def test_a_range_run_must_return_a_frame_per_day(tmp_path, body):
    result = _range_run(tmp_path, body)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "must return a frame per partition key (3)" in str(failure.event_specific_data)
    assert not (tmp_path / "t").exists()  # nothing half-written
