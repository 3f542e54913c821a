"""The code location: the one place that assembles assets, checks, jobs, sensors, resources."""

from __future__ import annotations

import dagster as dg

from ml_assets.automation.jobs import jobs
from ml_assets.automation.landing_sensor import landing_sensor
from ml_assets.data.assets import assets as data_assets
from ml_assets.features.assets import assets as feature_assets
from ml_assets.resources import LandingZone, OnlineStoreResource, Warehouse, WarehouseIOManager
from ml_assets.settings import Settings, get_settings


def build_resources(settings: Settings) -> dict[str, object]:
    """Every resource, pointed at the settings' data dir (tests pass a temporary one)."""
    return {
        "warehouse_io_manager": WarehouseIOManager(root=str(settings.warehouse_dir)),
        "warehouse": Warehouse(root=str(settings.warehouse_dir)),
        "landing": LandingZone(path=str(settings.landing_dir)),
        "online_store": OnlineStoreResource(url=settings.online_store_url, home=str(settings.home)),
    }


ASSETS = [*data_assets, *feature_assets]


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=ASSETS,
        jobs=jobs,
        sensors=[landing_sensor],
        resources=build_resources(settings or get_settings()),
    )


defs = build_definitions()
