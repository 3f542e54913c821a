"""The code location: the one place that assembles assets, checks, jobs, sensors, resources."""

from __future__ import annotations

import dagster as dg

from ml_assets.automation.jobs import jobs
from ml_assets.automation.landing_sensor import landing_sensor
from ml_assets.data.assets import assets as data_assets
from ml_assets.resources import LandingZone, Warehouse, WarehouseIOManager
from ml_assets.settings import get_settings


def build_definitions() -> dg.Definitions:
    settings = get_settings()
    return dg.Definitions(
        assets=[*data_assets],
        jobs=jobs,
        sensors=[landing_sensor],
        resources={
            "warehouse_io_manager": WarehouseIOManager(root=str(settings.warehouse_dir)),
            "warehouse": Warehouse(root=str(settings.warehouse_dir)),
            "landing": LandingZone(path=str(settings.landing_dir)),
        },
    )


defs = build_definitions()
