"""The platform harness: a temporary data dir and a real Dagster instance with generated
days landed and their data and features materialized, on which tests materialize models,
evaluations, deployments and monitoring as a user would.

The model, promotion and monitoring tests each build one per module (`platform_for`); the
constants below are the model platform the first two share.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
from mlflow import MlflowClient

from ml_assets.data.demo_source import land_days
from ml_assets.data.generator import GeneratorConfig
from ml_assets.data.scenarios import Scenario
from ml_assets.definitions import build_assets, build_resources
from ml_assets.features.assets import ONLINE_FEATURES
from ml_assets.settings import Settings
from ml_assets.training.assets import (
    MODEL_EVALUATION,
    STUDENT_MODEL,
    TEACHER_MODEL,
    GateConfig,
    StudentTrainingConfig,
    TeacherTrainingConfig,
)
from ml_assets.training.deployment import DEPLOYED_MODEL
from ml_assets.training.model_contracts import ModelRef
from ml_assets.training.registry_aliases import set_alias
from ml_assets.training.registry_reader import CHAMPION, STUDENT_MODEL_NAME, resolve_version

# The model platform: 12 landed days, small on purpose (the suite shares two cores; the
# data's signal does not need more), trained on the newest 8.
START = date(2026, 3, 1)
DAYS = 12
ROWS_PER_DAY = 3_000
WINDOW_DAYS = 8
TEACHER = TeacherTrainingConfig(
    window_days=WINDOW_DAYS, holdout_days=2, validation_days=2, num_boost_round=300
)
STUDENT = StudentTrainingConfig(epochs=3, max_rows=30_000)
TRAINING = dg.RunConfig(ops={TEACHER_MODEL.path[-1]: TEACHER, STUDENT_MODEL.path[-1]: STUDENT})
# What models train on; the online store is left out, no model test reads it.
DATA_AND_FEATURES = dg.AssetSelection.groups("data", "features") - dg.AssetSelection.assets(
    ONLINE_FEATURES
)


@dataclass(frozen=True)
class Platform:
    """A temporary data dir and Dagster instance with landed days and built features."""

    settings: Settings
    instance: dg.DagsterInstance
    # The latest evaluation of each check by name, per partition, from partitioned runs.
    partition_checks: dict[str, dict[str, dg.AssetCheckEvaluation]] = field(default_factory=dict)

    @property
    def tracking_uri(self) -> str:
        return self.settings.mlflow_tracking_uri

    @property
    def mlflow(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def materialize(
        self, selection, *, partition: str | None = None, run_config=None
    ) -> dg.ExecuteInProcessResult:
        """One in-process run of `selection`, as the UI launches it; a failure is returned
        (check `result.success`), not raised."""
        result = dg.materialize(
            build_assets(self.settings),
            selection=selection,
            partition_key=partition,
            run_config=run_config or {},
            resources=build_resources(self.settings),
            instance=self.instance,
            raise_on_error=False,
        )
        if partition is not None:
            evaluations = result.get_asset_check_evaluations()
            self.partition_checks.setdefault(partition, {}).update(
                {c.check_name: c for c in evaluations}
            )
        return result

    def materialize_range(self, selection, first: str, last: str) -> dg.ExecuteInProcessResult:
        """One in-process run of `selection` over the days `first..last`, as a backfill run
        of the assets' range policy executes it; a failure is returned, not raised."""
        return dg.materialize(
            build_assets(self.settings),
            selection=selection,
            tags={
                "dagster/asset_partition_range_start": first,
                "dagster/asset_partition_range_end": last,
            },
            resources=build_resources(self.settings),
            instance=self.instance,
            raise_on_error=False,
        )

    def metadata(self, key: dg.AssetKey, day: str | None = None) -> dict[str, object]:
        """The metadata values of `key`'s latest materialization (of partition `day`)."""
        records = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day] if day else None),
            limit=1,
        ).records
        assert records, f"{key.to_user_string()} {day or ''} was never materialized"
        return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}

    def sensor_context(self, cursor: str | None = None) -> dg.SensorEvaluationContext:
        """A sensor tick's context on this instance and resources, as the daemon builds it."""
        return dg.build_sensor_context(
            instance=self.instance, cursor=cursor, resources=build_resources(self.settings)
        )

    def evaluate(self, gates: GateConfig | None = None, deploy: bool = True):
        """Re-evaluate the latest candidate (and try to deploy it) under `gates`."""
        selection = [MODEL_EVALUATION, DEPLOYED_MODEL] if deploy else [MODEL_EVALUATION]
        config = dg.RunConfig(ops={MODEL_EVALUATION.path[-1]: gates or GateConfig()})
        return self.materialize(selection, run_config=config)

    def champion(self) -> str | None:
        return resolve_version(self.tracking_uri, STUDENT_MODEL_NAME, CHAMPION)

    def make_champion(self, version: str | None) -> None:
        """Set up who serves (no gates: this is the test's starting state, not a promotion)."""
        if version is None:
            self.mlflow.delete_registered_model_alias(STUDENT_MODEL_NAME, CHAMPION)
        else:
            set_alias(self.tracking_uri, STUDENT_MODEL_NAME, CHAMPION, version)


def failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """What failed in a run, for an assertion message."""
    return [str(event.event_specific_data) for event in result.all_events if event.is_failure]


def materialized(result: dg.ExecuteInProcessResult) -> set[dg.AssetKey]:
    """The assets a run materialized."""
    return {event.asset_key for event in result.get_asset_materialization_events()}


def evaluated(result: dg.ExecuteInProcessResult) -> ModelRef:
    """The candidate a model_evaluation run judged (its value is stored before its checks)."""
    return result.output_for_node(MODEL_EVALUATION.path[-1]).candidate


def day_keys(start: date, days: int) -> list[str]:
    """The partition keys of `days` consecutive days from `start`."""
    return [(start + timedelta(days=offset)).isoformat() for offset in range(days)]


@contextmanager
def platform_for(
    home: Path,
    *,
    start: date = START,
    days: int = DAYS,
    rows_per_day: int = ROWS_PER_DAY,
    scenarios: Sequence[Scenario] = (),
    daily: dg.AssetSelection = DATA_AND_FEATURES,
    one_run: bool = False,
) -> Iterator[Platform]:
    """Land `days` generated days from `start` under `home` (with `scenarios` switched on)
    and materialize `daily` for each (all days in one range run with `one_run`, as a
    backfill does); the environment points at `home` until the block ends."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ML_ASSETS_HOME", str(home / "data"))
        env.setenv("ML_ASSETS_TRANSACTIONS_PER_DAY", str(rows_per_day))
        env.delenv("ML_ASSETS_ENDPOINTS", raising=False)  # no endpoint to notify
        settings = Settings.from_env()
        (home / "dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance:
            platform = Platform(settings, instance)
            generator = GeneratorConfig(
                transactions_per_day=rows_per_day, scenarios=tuple(scenarios)
            )
            list(land_days(settings.landing_dir, start, days, generator))
            keys = day_keys(start, days)
            if one_run:
                results = iter([platform.materialize_range(daily, keys[0], keys[-1])])
            else:
                results = (platform.materialize(daily, partition=day) for day in keys)
            for result in results:
                assert result.success, failures(result)
            yield platform
