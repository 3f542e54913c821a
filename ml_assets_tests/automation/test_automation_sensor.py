"""The automation the UI shows is live: the code location declares the automation-condition
sensor running (Dagster's own would start stopped), and evaluating that sensor's conditions
on a real instance re-judges `model_performance` for exactly the days whose late labels just
landed."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg

from ml_assets.automation.automation_sensor import AUTOMATION_SENSOR
from ml_assets.data.assets import TRANSACTION_LABELS
from ml_assets.definitions import build_definitions
from ml_assets.features.assets import CUSTOMER_FEATURES_KEY
from ml_assets.monitoring.assets import MODEL_PERFORMANCE, SCORED_TRANSACTIONS, SERVED_PERFORMANCE
from ml_assets.settings import Settings

# The latest daily partition at this instant is 2026-03-09.
EVALUATED_AT = datetime(2026, 3, 10, 6, tzinfo=UTC)


def _days(first: date, count: int) -> list[str]:
    return [(first + timedelta(days=k)).isoformat() for k in range(count)]


def _land(instance: dg.DagsterInstance, key: dg.AssetKey, days: list[str]) -> None:
    for day in days:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=day))


def test_the_automation_sensor_is_declared_running_and_is_the_only_one(settings: Settings):
    defs = build_definitions(settings)
    repository = defs.get_repository_def()
    automation = [
        s for s in repository.sensor_defs if isinstance(s, dg.AutomationConditionSensorDefinition)
    ]
    assert [s.name for s in automation] == [AUTOMATION_SENSOR]
    sensor = automation[0]
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    covered = sensor.asset_selection.resolve(defs.resolve_asset_graph())
    assert {MODEL_PERFORMANCE, SERVED_PERFORMANCE, CUSTOMER_FEATURES_KEY} <= covered


def test_late_labels_request_model_performance_for_the_days_they_judge(
    settings: Settings, instance: dg.DagsterInstance
):
    defs = build_definitions(settings)
    sensor = defs.get_repository_def().get_sensor_def(AUTOMATION_SENSOR)

    def evaluate(cursor=None):
        return dg.evaluate_automation_conditions(
            defs=defs,
            instance=instance,
            asset_selection=sensor.asset_selection,
            evaluation_time=EVALUATED_AT,
            cursor=cursor,
        )

    # The state after the daily pipeline: scored days, labels up to the 8th.
    _land(instance, SCORED_TRANSACTIONS, ["2026-02-01", *_days(date(2026, 3, 1), 9)])
    _land(instance, TRANSACTION_LABELS, _days(date(2026, 2, 2), 35))
    first = evaluate()

    # The 9th's labels judge the 6th-8th (delays of 1-3 days); the 2nd's judge the 1st of
    # February too, but a day that old is no longer re-judged.
    _land(instance, TRANSACTION_LABELS, ["2026-03-09", "2026-02-02"])
    late = evaluate(first.cursor)
    expected = {"2026-03-06", "2026-03-07", "2026-03-08"}
    assert late.get_requested_partitions(MODEL_PERFORMANCE) == expected
    assert late.get_requested_partitions(SERVED_PERFORMANCE) == expected

    # Nothing landed since: nothing is requested again.
    assert evaluate(late.cursor).get_requested_partitions(MODEL_PERFORMANCE) == set()
