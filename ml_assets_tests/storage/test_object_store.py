"""The warehouse on an object store, against a real S3-compatible server (moto) on
loopback: the same layout and data versions as on disk, one PUT per partition written and
one GET per partition read, and no half partition after a failed or killed write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from ml_assets.atomic_files import replace_atomically
from ml_assets.resources import WarehouseReader
from ml_assets.settings import Settings
from ml_assets.storage import is_remote, read_bytes, storage_path
from ml_assets.warehouse import (
    file_digest,
    partition_path,
    read_partition,
    read_partitions,
    write_partition,
)
from ml_assets_tests.support.object_store import count_by_method

FRAME = pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})


def test_local_locations_stay_plain_paths(tmp_path):
    settings = Settings(home=tmp_path)
    assert type(settings.warehouse_dir) is type(tmp_path)
    assert settings.warehouse_dir == tmp_path / "warehouse"
    assert settings.reports_dir == tmp_path / "reports"
    assert settings.mlflow_tracking_uri.startswith("sqlite:///")
    assert not is_remote(storage_path(str(tmp_path)))


def test_urls_in_settings_become_object_store_paths(tmp_path):
    settings = Settings(
        home=tmp_path,
        warehouse_url="s3://bucket/wh",
        reports_url="s3://bucket/reports",
        mlflow_artifacts_url="s3://bucket/mlflow/",
        mlflow_tracking_url="postgresql://u@127.0.0.1:5432/mlflow",
    )
    assert is_remote(settings.warehouse_dir) and str(settings.warehouse_dir) == "s3://bucket/wh"
    path = partition_path(settings.warehouse_dir, "t", "2026-03-01")
    assert str(path) == "s3://bucket/wh/t/date=2026-03-01/data.parquet"
    assert str(settings.reports_dir) == "s3://bucket/reports"
    assert settings.mlflow_artifact_location == "s3://bucket/mlflow"
    assert settings.mlflow_tracking_uri == "postgresql://u@127.0.0.1:5432/mlflow"


def test_a_data_dir_url_is_refused_with_the_variables_to_use(monkeypatch):
    monkeypatch.setenv("ML_ASSETS_HOME", "s3://bucket/home")
    with pytest.raises(ValueError, match="ML_ASSETS_WAREHOUSE_URL"):
        Settings.from_env()


def test_partitions_on_s3_have_the_layout_and_versions_of_local_ones(s3, tmp_path):
    root = storage_path(s3.url("layout"))
    for day in ("2026-03-01", "2026-03-02"):
        write_partition(root, "t", day, FRAME)
        write_partition(tmp_path, "t", day, FRAME)
    assert read_partition(root, "t", "2026-03-01").equals(FRAME)
    # The same bytes as on disk: a data version does not depend on where a table lives.
    assert file_digest(partition_path(root, "t", "2026-03-02")) == file_digest(
        partition_path(tmp_path, "t", "2026-03-02")
    )
    reader = WarehouseReader(root=s3.url("layout"))
    assert reader.partitions("t") == ["2026-03-01", "2026-03-02"]
    assert reader.partitions("missing") == []
    assert reader.partitions_exist("t", ["2026-03-01", "2026-03-02"])
    assert not reader.partitions_exist("t", ["2026-03-03"])
    assert set(read_partitions(root, "t", ["2026-02-28", "2026-03-01", "2026-03-02"])) == {
        "2026-03-01",
        "2026-03-02",
    }
    with pytest.raises(FileNotFoundError, match="materialize t"):
        read_partition(root, "t", "2026-03-03")


def test_a_partition_costs_one_put_to_write_and_one_get_to_read(s3):
    root = storage_path(s3.url("round_trips"))
    mark = s3.mark()
    write_partition(root, "t", "2026-03-01", FRAME)
    assert count_by_method(s3.requests(mark)) == {"PUT": 1}
    mark = s3.mark()
    read_partition(root, "t", "2026-03-01")
    assert count_by_method(s3.requests(mark)) == {"GET": 1}


def test_a_window_lists_the_table_once_instead_of_asking_for_each_absent_day(s3):
    root = storage_path(s3.url("window"))
    for day in ("2026-03-30", "2026-03-31"):
        write_partition(root, "t", day, FRAME)
    window = [f"2026-03-{d:02d}" for d in range(1, 32)]
    mark = s3.mark()
    assert list(read_partitions(root, "t", window)) == ["2026-03-30", "2026-03-31"]
    assert Counter(r.kind for r in s3.requests(mark)) == {"LIST": 1, "GET": 2}


def test_a_failed_write_leaves_the_previous_object_and_nothing_else(s3):
    root = storage_path(s3.url("failed"))
    path = write_partition(root, "t", "2026-03-01", FRAME)
    before = read_bytes(path)

    def dies_half_way(temporary: Path) -> None:
        temporary.write_bytes(before[: len(before) // 2])
        raise KeyboardInterrupt("killed mid-write")

    mark = s3.mark()
    with pytest.raises(KeyboardInterrupt):
        replace_atomically(path, dies_half_way)
    assert s3.requests(mark) == []  # nothing reached the bucket
    assert read_bytes(path) == before
    assert [p.name for p in (root / "t" / "date=2026-03-01").iterdir()] == ["data.parquet"]


def test_a_killed_writer_process_leaves_no_half_partition(s3, tmp_path):
    root = storage_path(s3.url("killed"))
    path = write_partition(root, "t", "2026-03-01", FRAME)
    before = read_bytes(path)
    # A run killed (SIGKILL, no cleanup) while it writes a new version of the partition.
    script = textwrap.dedent(f"""
        import sys, time
        import polars as pl
        from ml_assets.atomic_files import replace_atomically
        from ml_assets.storage import storage_path
        def slow(temporary):
            pl.DataFrame({{"a": list(range(100_000))}}).write_parquet(temporary)
            print("writing", flush=True)
            time.sleep(600)
        replace_atomically(storage_path({str(path)!r}), slow)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             env=os.environ, start_new_session=True)  # fmt: skip
    try:
        assert child.stdout.readline().strip() == b"writing"
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    assert read_bytes(path) == before
    assert read_partition(root, "t", "2026-03-01").equals(FRAME)
    assert [p.name for p in (root / "t" / "date=2026-03-01").iterdir()] == ["data.parquet"]
