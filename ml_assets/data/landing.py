"""The landing zone: where files enter the platform, one folder per day.

`landing/date=YYYY-MM-DD/transactions*.parquet|csv` and `labels*.parquet|csv`. The demo's
generator writes here and so can a user. Reading coerces each known column to its contract
type; a value that cannot be read is kept, with the reason, for the quarantine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from ml_assets.atomic_files import replace_atomically, write_parquet_atomically
from ml_assets.data.contracts import (
    INGEST_ERROR,
    LABEL_SCHEMA,
    OPTIONAL_TRANSACTION_COLUMNS,
    REQUIRED_TRANSACTION_COLUMNS,
)
from ml_assets.data.labels import SOURCE, SOURCED_LABEL_SCHEMA, with_source

SUFFIXES = (".parquet", ".csv")
TRANSACTIONS = "transactions"
LABELS = "labels"


class MissingColumnsError(ValueError):
    """A landing file lacks a column the contract requires."""


@dataclass(frozen=True)
class LandingRead:
    """What was read from a day's landing files, and how its shape differed from the contract."""

    frame: pl.DataFrame
    files: list[Path]
    added_columns: list[str]
    absent_optional_columns: list[str]


def day_dir(landing_dir: Path, day: date | str) -> Path:
    return landing_dir / f"date={day if isinstance(day, str) else day.isoformat()}"


def landing_files(landing_dir: Path, day: date | str, kind: str) -> list[Path]:
    """The files of one kind (`transactions` or `labels`) that landed for a day, sorted."""
    folder = day_dir(landing_dir, day)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith(kind) and p.suffix in SUFFIXES)


def fingerprint(files: list[Path]) -> str:
    """Changes when a file is added, removed or rewritten; the landing sensor's run key."""
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:12]


def landing_fingerprint(landing_dir: Path, day: date | str) -> str:
    """The fingerprint of everything that landed for a day (transactions and labels)."""
    return fingerprint(
        landing_files(landing_dir, day, TRANSACTIONS) + landing_files(landing_dir, day, LABELS)
    )


def write_landing_file(
    landing_dir: Path, day: date, kind: str, frame: pl.DataFrame, fmt: str = "parquet"
) -> Path:
    """Drop a file into the landing zone the way an upstream system would."""
    path = day_dir(landing_dir, day) / f"{kind}.{fmt}"
    if fmt == "parquet":
        return write_parquet_atomically(frame, path)
    if fmt == "csv":
        return replace_atomically(path, frame.write_csv)
    raise ValueError(f"landing format {fmt!r} is not supported: use parquet or csv")


def _read_file(path: Path) -> pl.DataFrame:
    if path.suffix == ".csv":
        # Read CSV as text so one bad value does not fail the file: coercion records it.
        return pl.read_csv(path, infer_schema=False)
    return pl.read_parquet(path)


def _coerce(column: pl.Series, dtype: pl.DataType) -> pl.Series:
    if column.dtype == dtype:
        return column
    if isinstance(dtype, pl.Datetime):
        if column.dtype == pl.String:
            parsed = column.str.to_datetime(time_unit="us", strict=False)
            return (
                parsed.dt.replace_time_zone("UTC")
                if parsed.dtype.time_zone is None
                else (parsed.dt.convert_time_zone("UTC"))
            )
        if isinstance(column.dtype, pl.Datetime):
            column = column.dt.cast_time_unit("us")
            if column.dtype.time_zone is None:
                return column.dt.replace_time_zone("UTC")
            return column.dt.convert_time_zone("UTC")
    return column.cast(dtype, strict=False)


def _unreadable_note(
    name: str, original: pl.Series, cast: pl.Series, dtype: pl.DataType
) -> pl.Expr | None:
    """Per row, what a column held that its contract type could not read (null where it read
    fine), or None when every value read: columns that parsed cleanly add no expression."""
    failed = original.is_not_null() & cast.is_null()
    if not failed.any():
        return None
    return pl.when(pl.Series(failed)).then(
        pl.format(
            "{}={} is not {}",
            pl.lit(name),
            pl.Series(original.cast(pl.String)),
            pl.lit(str(dtype)),
        )
    )


def _joined_notes(notes: list[pl.Expr]) -> pl.Expr:
    """The row's notes joined, and null when it has none. `concat_str(ignore_nulls=True)` gives
    "" rather than null when every part is null, and the schema quarantines any row whose
    `_ingest_error` is not null: without the guard, one bad value quarantines the whole file."""
    any_note = pl.any_horizontal([note.is_not_null() for note in notes])
    return (
        pl.when(any_note)
        .then(pl.concat_str(notes, separator="; ", ignore_nulls=True))
        .otherwise(pl.lit(None, dtype=pl.String))
        .alias(INGEST_ERROR)
    )


def coerce_to_contract(
    frame: pl.DataFrame, contract: dict[str, pl.DataType], source: str
) -> pl.DataFrame:
    """Cast known columns to their contract types. Values that do not parse become null and
    the row's `_ingest_error` says which column held what, so nothing is lost silently; rows
    that read cleanly keep a null `_ingest_error`."""
    missing = [name for name in contract if name not in frame.columns]
    if missing:
        raise MissingColumnsError(
            f"{source} lacks required column(s) {', '.join(missing)}; "
            f"it has {', '.join(frame.columns)}. Fix the upstream export or map the columns."
        )
    notes: list[pl.Expr] = []
    coerced = {}
    for name, dtype in contract.items():
        coerced[name] = _coerce(frame[name], dtype)
        note = _unreadable_note(name, frame[name], coerced[name], dtype)
        if note is not None:
            notes.append(note)
    result = frame.with_columns(**coerced)
    if notes:
        result = result.with_columns(_joined_notes(notes))
    return result


def read_transactions(landing_dir: Path, day: date | str) -> LandingRead:
    """Read a day's transaction files into one frame typed by the contract."""
    files = landing_files(landing_dir, day, TRANSACTIONS)
    if not files:
        raise FileNotFoundError(
            f"no transaction files landed for {day} in {day_dir(landing_dir, day)}: "
            "drop transactions*.parquet or .csv there, or run `ml-assets generate`"
        )
    contract = {**REQUIRED_TRANSACTION_COLUMNS}
    frames = []
    for path in files:
        raw = _read_file(path)
        present_optional = {
            k: v for k, v in OPTIONAL_TRANSACTION_COLUMNS.items() if k in raw.columns
        }
        frames.append(coerce_to_contract(raw, {**contract, **present_optional}, str(path)))
    frame = pl.concat(frames, how="diagonal_relaxed")
    if INGEST_ERROR not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(INGEST_ERROR))
    known = {*REQUIRED_TRANSACTION_COLUMNS, *OPTIONAL_TRANSACTION_COLUMNS, INGEST_ERROR}
    return LandingRead(
        frame=frame,
        files=files,
        added_columns=[c for c in frame.columns if c not in known],
        absent_optional_columns=[c for c in OPTIONAL_TRANSACTION_COLUMNS if c not in frame.columns],
    )


def read_labels(landing_dir: Path, day: date | str) -> LandingRead:
    """Read the labels that arrived on a day; a day with no label file has no labels. A
    file's optional `source` column says where its labels come from (`chargeback` when
    absent: the delayed outcomes; see `ml_assets.data.labels`)."""
    files = landing_files(landing_dir, day, LABELS)
    if not files:
        empty = pl.DataFrame(schema=SOURCED_LABEL_SCHEMA)
        return LandingRead(empty, [], [], [])
    frames = []
    for path in files:
        frame = coerce_to_contract(_read_file(path), LABEL_SCHEMA, str(path))
        if INGEST_ERROR in frame.columns:
            bad = frame.filter(pl.col(INGEST_ERROR).is_not_null())
            raise ValueError(
                f"{path}: {bad.height} label row(s) could not be read, first: "
                f"{bad[INGEST_ERROR][0]}. Labels are not quarantined: fix the file and re-land it."
            )
        source = [SOURCE] if SOURCE in frame.columns else []
        frames.append(with_source(frame.select(*LABEL_SCHEMA, *source)))
    return LandingRead(pl.concat(frames), files, [], [])
