"""The sensor that evaluates the assets' automation conditions, declared running.

Without this declaration Dagster adds `default_automation_condition_sensor` itself, stopped,
and nothing re-judges `model_performance` or `served_performance` as late labels land until
someone finds the toggle in the UI. Declared here under the same name and running, the
daemon that `make ui` starts drives every condition from its first tick.
"""

import dagster as dg

AUTOMATION_SENSOR = "default_automation_condition_sensor"

automation_condition_sensor = dg.AutomationConditionSensorDefinition(
    AUTOMATION_SENSOR,
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Evaluates every asset's automation condition (features as new days land, "
    "the performance assets as late labels arrive) and launches what they request.",
)
