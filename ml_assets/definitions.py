"""The code location: the one place that assembles assets, checks, jobs, sensors, resources."""

import dagster as dg

from ml_assets.automation.deployment import deploy_job, deployed_model, promotion_sensor
from ml_assets.automation.jobs import jobs
from ml_assets.automation.landing_sensor import landing_sensor
from ml_assets.automation.retrain_sensor import drift_retrain_sensor
from ml_assets.automation.schedules import schedules
from ml_assets.data.assets import assets as data_assets
from ml_assets.features.assets import assets as feature_assets
from ml_assets.monitoring.assets import assets as monitoring_assets
from ml_assets.resources import (
    LandingZone,
    MlflowResource,
    OnlineStoreResource,
    Warehouse,
    WarehouseIOManager,
)
from ml_assets.settings import Settings, get_settings
from ml_assets.training.assets import assets as model_assets


def build_resources(settings: Settings) -> dict[str, object]:
    """Every resource, pointed at the settings' data dir (tests pass a temporary one)."""
    return {
        # Tables: one Parquet file per partition. Small values (model refs): pickles.
        "warehouse_io_manager": WarehouseIOManager(root=str(settings.warehouse_dir)),
        "io_manager": dg.FilesystemIOManager(base_dir=str(settings.home / "asset_values")),
        "warehouse": Warehouse(root=str(settings.warehouse_dir)),
        "landing": LandingZone(path=str(settings.landing_dir)),
        "online_store": OnlineStoreResource(url=settings.online_store_url, home=str(settings.home)),
        "mlflow": MlflowResource(directory=str(settings.mlflow_dir)),
    }


ASSETS = [*data_assets, *feature_assets, *model_assets, deployed_model, *monitoring_assets]


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=ASSETS,
        jobs=[*jobs, deploy_job],
        schedules=schedules,
        sensors=[landing_sensor, promotion_sensor, drift_retrain_sensor],
        resources=build_resources(settings or get_settings()),
    )


defs = build_definitions()
