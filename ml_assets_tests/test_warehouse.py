import os
import time

import polars as pl
import pytest

from ml_assets.atomic_files import STALE_AFTER_S
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
