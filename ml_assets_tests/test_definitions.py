"""The whole code location loads, and its inventory matches the checked-in snapshot, so a
renamed or lost asset, check, job, sensor or schedule shows up in review.
Run with UPDATE_SNAPSHOT=1 to rewrite the snapshot after an intended change."""

import os
from pathlib import Path

from ml_assets.definitions import defs

SNAPSHOT = Path(__file__).with_name("definitions_snapshot.txt")


def inventory() -> str:
    graph = defs.resolve_asset_graph()
    lines = [f"asset {k.to_user_string()}" for k in graph.get_all_asset_keys()]
    lines += [
        f"check {key.asset_key.to_user_string()}:{key.name}" for key in graph.asset_check_keys
    ]
    lines += [
        f"job {job.name}" for job in defs.resolve_all_job_defs() if not job.name.startswith("__")
    ]
    lines += [f"sensor {s.name}" for s in defs.sensors or []]
    lines += [f"schedule {s.name}" for s in defs.schedules or []]
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
