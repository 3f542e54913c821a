"""Where the platform's files live: a local folder (the default) or an object-store URL.

A local location stays a `pathlib.Path`, so the embedded default behaves exactly as before
(fsync and rename, see `atomic_files`). A URL (`s3://bucket/prefix`, or any protocol fsspec
knows) becomes a universal-pathlib `UPath` with the same `/` layout, so the warehouse and
the reports build their paths one way for both.

Whole files are read and written through `read_bytes` / `write_bytes` here: one GET or one
PUT per file on S3, where pathlib-style calls on a `UPath` (`exists()` then `read_bytes()`)
cost extra HEAD and LIST requests. The listing cache of fsspec is off: another process
(a backfill run, the daemon) may add a partition at any time.

S3 credentials and endpoint come from botocore's standard environment (`AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`, and `AWS_ENDPOINT_URL` for an S3-compatible
server), the same variables MLflow's S3 artifact store reads.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import polars as pl

if TYPE_CHECKING:
    from upath import UPath

    StoragePath: TypeAlias = Path | UPath
else:
    StoragePath = Path


def is_url(location: str | Path) -> bool:
    """Whether `location` names an object store rather than a local folder."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def is_remote(path: StoragePath) -> bool:
    """Whether `path` is on an object store (a `UPath` that is not a local one)."""
    return getattr(path, "protocol", "") not in ("", "file", "local")


def storage_path(location: str | StoragePath) -> StoragePath:
    """A local `Path` for a folder, a `UPath` for an object-store URL."""
    if not isinstance(location, str):
        return location
    if not is_url(location):
        return Path(location.removeprefix("file://"))
    from upath import UPath

    return UPath(location, use_listings_cache=False)


def read_bytes(path: StoragePath) -> bytes:
    """The whole file (one GET on S3); FileNotFoundError when it does not exist."""
    if not is_remote(path):
        return Path(path).read_bytes()
    # s3fs sizes the object first (a HEAD) to split big reads into ranges; one GET is
    # enough for a partition.
    options = {"max_concurrency": 1} if path.protocol in ("s3", "s3a") else {}
    return path.fs.cat_file(path.path, **options)


def write_bytes(path: StoragePath, data: bytes) -> None:
    """Store `data` at a remote `path` in one request.

    An S3 PUT replaces the object atomically: a reader gets the old object or the new one,
    never part of either. Past s3fs's block size (50 MB) the upload is multipart, which S3
    also publishes at once when it completes; a writer killed before that leaves the old
    object and an invisible incomplete upload (expire those with a bucket lifecycle rule).
    """
    path.fs.pipe_file(path.path, data)


def exists(path: StoragePath) -> bool:
    """Whether a file exists (one HEAD on S3, two when it does not)."""
    return path.exists() if not is_remote(path) else path.fs.isfile(path.path)


def read_parquet(path: StoragePath) -> pl.DataFrame:
    if not is_remote(path):
        return pl.read_parquet(path)
    return pl.read_parquet(io.BytesIO(read_bytes(path)))


def subfolders(folder: StoragePath, prefix: str) -> list[StoragePath]:
    """The folders directly in `folder` whose name starts with `prefix` (one LIST on S3)."""
    if not is_remote(folder):
        return [p for p in Path(folder).glob(f"{prefix}*") if p.is_dir()]
    try:
        entries = folder.fs.ls(folder.path, detail=True)
    except FileNotFoundError:
        return []
    return [
        folder / name
        for entry in entries
        if entry["type"] == "directory"
        and (name := entry["name"].rstrip("/").rsplit("/", 1)[-1]).startswith(prefix)
    ]
