"""The code location: the one place that assembles assets, checks, jobs, sensors, resources.

`build_definitions(settings)` is the one path settings take into the platform: the daily
partitions and the label lookbacks shape the asset graph, and every other setting reaches
asset bodies, checks and sensors through the `settings` resource.
"""

import dagster as dg

from ml_assets.automation.automation_sensor import automation_condition_sensor
from ml_assets.automation.jobs import build_jobs
from ml_assets.automation.landing_sensor import landing_sensor
from ml_assets.automation.promotion_sensor import endpoint_reload_sensor, promotion_sensor
from ml_assets.automation.retrain_sensor import drift_retrain_sensor
from ml_assets.automation.rollout_sensors import rollout_sensors
from ml_assets.automation.schedules import build_schedules
from ml_assets.data.assets import build_data_assets
from ml_assets.data.partitions import daily_partitions, range_backfill
from ml_assets.executors import build_executor
from ml_assets.features.assets import build_feature_assets
from ml_assets.monitoring.assets import build_monitoring_assets
from ml_assets.monitoring.rollout_assets import build_rollout_monitoring_assets
from ml_assets.rag.assets import rag_chunks, rag_corpus, rag_eval_set, rag_index
from ml_assets.rag.evaluation_assets import answer_evaluation, retrieval_evaluation
from ml_assets.resources import (
    LandingZone,
    MlflowResource,
    OnlineStoreResource,
    SettingsResource,
    WarehouseIOManager,
    WarehouseReader,
)
from ml_assets.settings import Settings, get_settings
from ml_assets.training.assets import assets as model_assets
from ml_assets.training.deployment import champion_scores_probe, deployed_model

# Unpartitioned: the demo's "models" stage (every non-partitioned asset) builds them too.
RAG_ASSETS = [rag_corpus, rag_chunks, rag_index, rag_eval_set, retrieval_evaluation,
              answer_evaluation]  # fmt: skip


def build_resources(settings: Settings) -> dict[str, object]:
    """Every resource, pointed at the settings' data dir (tests pass a temporary one)."""
    return {
        # Tables: one Parquet file per partition. Small values (model refs): pickles.
        "warehouse_io_manager": WarehouseIOManager(root=str(settings.warehouse_dir)),
        "io_manager": dg.FilesystemIOManager(base_dir=str(settings.home / "asset_values")),
        "warehouse": WarehouseReader(root=str(settings.warehouse_dir)),
        "landing": LandingZone(path=str(settings.landing_dir)),
        "online_store": OnlineStoreResource(url=settings.online_store_url, home=str(settings.home)),
        "mlflow": MlflowResource(
            tracking_uri=settings.mlflow_tracking_uri,
            artifact_location=settings.mlflow_artifact_location,
        ),
        "settings": SettingsResource.from_settings(settings),
    }


def build_assets(settings: Settings) -> list:
    """Every asset of the platform, partitioned from `settings.partitions_start`."""
    partitions = daily_partitions(settings.partitions_start)
    backfill = range_backfill(settings.backfill_days_per_run)
    return [
        *build_data_assets(partitions, backfill),
        *build_feature_assets(partitions, settings.label_delay_max_days, backfill),
        *model_assets,
        deployed_model,
        *build_monitoring_assets(partitions, settings.label_delay_max_days),
        *build_rollout_monitoring_assets(partitions, settings.label_delay_max_days),
        *RAG_ASSETS,
    ]


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or get_settings()
    jobs = build_jobs(daily_partitions(settings.partitions_start))
    return dg.Definitions(
        assets=build_assets(settings),
        asset_checks=[champion_scores_probe],
        jobs=jobs,
        schedules=build_schedules(jobs),
        sensors=[
            landing_sensor,
            promotion_sensor,
            endpoint_reload_sensor,
            *rollout_sensors,
            drift_retrain_sensor,
            automation_condition_sensor,
        ],
        resources=build_resources(settings),
        executor=build_executor(settings.executor),
    )


defs = build_definitions()
