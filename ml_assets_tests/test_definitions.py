"""The whole code location loads, and its inventory matches the checked-in snapshot, so a
renamed or lost asset, check, job, sensor or schedule shows up in review, and so does a
changed dependency, partitioning or automation condition.
Run with UPDATE_SNAPSHOT=1 to rewrite the snapshot after an intended change."""

import os
from pathlib import Path

import dagster as dg

from ml_assets.definitions import build_definitions, defs
from ml_assets.settings import Settings

SNAPSHOT = Path(__file__).with_name("definitions_snapshot.txt")


def partitions(definition: dg.PartitionsDefinition | None) -> str:
    if definition is None:
        return "unpartitioned"
    if isinstance(definition, dg.DailyPartitionsDefinition):
        return f"daily from {definition.start.date().isoformat()}"
    return str(definition)


def automation(condition: dg.AutomationCondition | None) -> str:
    if condition is None:
        return ""
    return f" | automation: {condition.get_label() or condition.name}"


def asset_line(node) -> str:
    deps = ", ".join(sorted(key.to_user_string() for key in node.parent_keys)) or "none"
    return (
        f"asset {node.key.to_user_string()} | deps: {deps} | {partitions(node.partitions_def)}"
        f"{automation(node.automation_condition)}"
    )


def inventory() -> str:
    # Default settings, not the environment's: the snapshot must not depend on ML_ASSETS_*.
    fixed = build_definitions(Settings())
    graph = fixed.resolve_asset_graph()
    lines = [asset_line(graph.get(key)) for key in graph.get_all_asset_keys()]
    lines += [
        f"check {key.asset_key.to_user_string()}:{key.name}" for key in graph.asset_check_keys
    ]
    lines += [
        f"job {job.name}" for job in fixed.resolve_all_job_defs() if not job.name.startswith("__")
    ]
    lines += [f"sensor {s.name}" for s in fixed.sensors or []]
    lines += [f"schedule {s.name}" for s in fixed.schedules or []]
    return "\n".join(sorted(lines)) + "\n"


def test_definitions_match_snapshot():
    current = inventory()
    if os.environ.get("UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(current)
    assert current == SNAPSHOT.read_text()


def test_every_asset_has_a_description_and_group():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, f"{key.to_user_string()} has no description"
        assert node.group_name != "default", f"{key.to_user_string()} has no group"
