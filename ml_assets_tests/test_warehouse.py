import os

import polars as pl
import pytest

from ml_assets.warehouse import file_digest, partition_path, read_partition, write_partition


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
