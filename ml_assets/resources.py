"""Dagster resources: where tables live and how partitions are read and written.

`WarehouseIOManager` is the one place that turns an asset's polars frame into a partition
file, so every table gets the same atomic write and the same metadata (row count, column
schema, path, data version) without asset code repeating it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import date
from pathlib import Path
from typing import Any, get_origin

import dagster as dg
import polars as pl

from ml_assets.settings import DecisionThresholds, Settings
from ml_assets.storage import StoragePath, exists, is_remote, read_parquet, storage_path, subfolders
from ml_assets.warehouse import (
    PARTITION_FILE,
    concat_partitions,
    file_digest,
    listed_keys,
    partition_path,
    read_partition,
    read_partitions,
    store_partition,
)


def table_name(key: dg.AssetKey) -> str:
    return "__".join(key.path)


def column_schema(frame: pl.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(name, str(dtype)) for name, dtype in frame.schema.items()]
    )


def _wants_days(context: dg.InputContext) -> bool:
    """Whether the input is annotated as a mapping of partition key to frame (range runs)."""
    typing_type = context.dagster_type.typing_type
    return (get_origin(typing_type) or typing_type) in (dict, Mapping)


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Stores each asset partition as one Parquet file under `<root>/<table>/date=<day>/`.

    A run may cover a range of days (the assets' backfill policies): its output is then a
    mapping of partition key to frame, one atomic file per day, and an input annotated
    `dict[str, pl.DataFrame]` receives its days by key, so the asset computes each day from
    exactly the rows a single-day run would read.
    """

    root: str  # a folder, or an object-store URL (s3://bucket/warehouse)

    @property
    def _root(self) -> StoragePath:
        return storage_path(self.root)

    def handle_output(
        self, context: dg.OutputContext, obj: pl.DataFrame | Mapping[str, pl.DataFrame] | None
    ) -> None:
        if obj is None:
            return
        table = table_name(context.asset_key)
        if not context.has_asset_partitions:
            self._write_day(context, table, None, obj)
            return
        keys = list(context.asset_partition_keys)
        frames = obj if isinstance(obj, Mapping) else {keys[0]: obj} if len(keys) == 1 else None
        if frames is None or sorted(frames) != sorted(keys):
            got = sorted(frames) if frames is not None else "one frame"
            raise ValueError(
                f"{context.asset_key.to_user_string()}: a run over {keys[0]}..{keys[-1]} must "
                f"return a frame per partition key ({len(keys)}), got {got}"
            )
        if len(keys) == 1:
            self._write_day(context, table, keys[0], frames[keys[0]])
            return
        for key in keys:
            # Each day is its own atomic file: a run killed mid-range leaves whole days only.
            stored = store_partition(self._root, table, key, frames[key])
            context.step_context.add_asset_metadata(
                _partition_metadata(frames[key], *stored),
                asset_key=context.asset_key,
                partition_key=key,
            )
        context.log.info(f"{table}: wrote {len(keys)} partitions {keys[0]}..{keys[-1]}")

    def _write_day(
        self, context: dg.OutputContext, table: str, day: str | None, frame: pl.DataFrame
    ) -> None:
        context.add_output_metadata(
            _partition_metadata(frame, *store_partition(self._root, table, day, frame))
        )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | dict[str, pl.DataFrame]:
        table = table_name(context.asset_key)
        if not context.has_asset_partitions:
            return read_partition(self._root, table, None)
        keys = context.asset_partition_keys
        if len(keys) == 1 and not _wants_days(context):
            return read_partition(self._root, table, keys[0])
        # A window or range of days: days before the data began simply have no file; say how
        # many were found so a short history shows.
        frames = read_partitions(self._root, table, keys)
        context.log.info(
            f"{table}: read {len(frames)} of {len(keys)} partitions {keys[0]}..{keys[-1]}"
        )
        if not frames:
            raise FileNotFoundError(f"{table} has none of the partitions {keys[0]}..{keys[-1]}")
        return frames if _wants_days(context) else concat_partitions(frames.values())


def _partition_metadata(frame: pl.DataFrame, path: StoragePath, version: str) -> dict[str, Any]:
    """What every stored partition says about itself: rows, columns, file and data version."""
    return {
        "dagster/row_count": frame.height,
        "dagster/column_schema": column_schema(frame),
        "path": dg.MetadataValue.path(str(path)),
        "data_version": version,
    }


class LandingZone(dg.ConfigurableResource):
    """The folder where upstream systems (or the demo generator) drop daily files."""

    path: str

    @property
    def root(self) -> Path:
        return Path(self.path)


class WarehouseReader(dg.ConfigurableResource):
    """Read access to stored partitions outside an asset input (checks over trailing days)."""

    root: str  # a folder, or an object-store URL (s3://bucket/warehouse)

    @property
    def _root(self) -> StoragePath:
        return storage_path(self.root)

    def partition_row_counts(self, table: str, days: list[date]) -> dict[date, int]:
        counts = {}
        listed = set(listed_keys(self._root, table, days))
        for day in (d for d in days if d.isoformat() in listed):
            path = partition_path(self._root, table, day)
            if is_remote(path):
                try:  # one GET; a HEAD first would add a request per day
                    counts[day] = read_parquet(path).height
                except FileNotFoundError:
                    continue
            elif path.exists():
                counts[day] = pl.scan_parquet(path).select(pl.len()).collect().item()
        return counts

    def partitions(self, table: str) -> list[str]:
        """The days a table has a partition for, sorted."""
        return sorted(
            p.name.removeprefix("date=")
            for p in subfolders(self._root / table, "date=")
            if exists(p / PARTITION_FILE)
        )

    def partitions_exist(self, table: str, days: list[str]) -> bool:
        return all(exists(partition_path(self._root, table, d)) for d in days)

    def days_present(self, tables: list[str], days: list[str]) -> list[str]:
        """The `days` for which every one of `tables` has a partition, in order."""
        return [d for d in days if all(self.partitions_exist(t, [d]) for t in tables)]

    def read(self, table: str, days: list[str]) -> pl.DataFrame:
        """The named partitions of a table, concatenated (a model's training window)."""
        return concat_partitions(read_partition(self._root, table, d) for d in days)

    def partition_digests(self, table: str, days: list[str]) -> dict[str, str]:
        """Content hash of each existing partition: the data versions an output was built from."""
        digests = {}
        for day in listed_keys(self._root, table, days):
            try:  # read once: no existence check first (a request more on S3)
                digests[str(day)] = file_digest(partition_path(self._root, table, day))
            except FileNotFoundError:
                continue
        return digests


class OnlineStoreResource(dg.ConfigurableResource):
    """The online feature store: SQLite in the data dir by default, Redis when `url` is
    `redis://...` (from ONLINE_STORE_URL)."""

    url: str = ""
    home: str

    def open(self):  # -> OnlineStore; typed loosely to keep dagster out of the store module
        from ml_assets.features.online import open_online_store

        return open_online_store(self.url, Path(self.home))


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking and registry (SQLite under the data dir, artifacts beside it). It owns
    what every MLflow run of an asset needs: where to log, and the tags that lead back to the
    Dagster run, asset and partition; assets never build a tracking URI or tags themselves."""

    tracking_uri: str
    artifact_location: str
    ui_url: str = "http://127.0.0.1:5000"

    def run_tags(self, context: dg.AssetExecutionContext) -> dict[str, str]:
        tags = {
            "dagster.run_id": context.run.run_id,
            "dagster.asset": context.asset_key.to_user_string(),
        }
        if context.has_partition_key:
            tags["dagster.partition"] = context.partition_key
        return tags

    def run_settings(self, context: dg.AssetExecutionContext) -> dict[str, Any]:
        """Keyword arguments for the registry writer: where to log, and the run's tags."""
        return {
            "tracking_uri": self.tracking_uri,
            "artifact_location": self.artifact_location,
            "tags": self.run_tags(context),
        }

    def client(self):  # -> mlflow.MlflowClient; mlflow is imported only where it is used
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def run_url(self, run_id: str) -> str:
        """Where the MLflow UI (`make mlflow-ui`) shows this run."""
        experiment = self.client().get_run(run_id).info.experiment_id
        return f"{self.ui_url}/#/experiments/{experiment}/runs/{run_id}"


class SettingsResource(dg.ConfigurableResource):
    """The platform's settings as `build_definitions(settings)` received them: the one path by
    which thresholds and paths reach asset bodies, checks and sensors (never a global read).
    Each field mirrors one of `Settings` (a test keeps them in step)."""

    home: str
    partitions_start: str
    seed: int
    transactions_per_day: int
    label_delay_min_days: int
    label_delay_max_days: int
    never_labelled_share: float
    max_quarantine_share: float
    row_count_tolerance: float
    row_count_trailing_days: int
    max_null_share: float
    min_daily_auc: float
    max_fallback_share: float
    retrain_drift_days: int
    online_store_url: str
    max_event_lag_s: float
    executor: str
    backfill_days_per_run: int
    rag_corpus_dir: str
    rag_sla_ms: float
    shadow_max_flip_rate: float
    shadow_latency_budget_ms: float
    shadow_min_requests: int
    canary_share: float
    ab_mde: float
    ab_alpha: float
    ab_power: float
    review_low: float
    decline_at: float
    warehouse_url: str
    reports_url: str
    mlflow_artifacts_url: str
    mlflow_tracking_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> SettingsResource:
        values = {f.name: getattr(settings, f.name) for f in fields(settings)}
        decisions = values.pop("decisions")
        return cls(
            **{
                **values,
                "home": str(settings.home),
                "partitions_start": str(settings.partitions_start),
            },
            review_low=decisions.review_low,
            decline_at=decisions.decline_at,
        )

    @property
    def settings(self) -> Settings:
        values = self.model_dump()
        decisions = DecisionThresholds(values.pop("review_low"), values.pop("decline_at"))
        return Settings(
            **{
                **values,
                "home": Path(self.home),
                "partitions_start": date.fromisoformat(self.partitions_start),
            },
            decisions=decisions,
        )
