"""`dagster asset materialize` through the real CLI, against a temporary DAGSTER_HOME."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ml_assets.data.demo_source import land_days
from ml_assets.settings import REPO_ROOT

pytestmark = pytest.mark.slow
DAYS = ["2026-03-01", "2026-03-02"]


def test_cli_materializes_two_partitions(settings, generator_config, tmp_path, monkeypatch):
    from datetime import date

    list(land_days(settings.landing_dir, date.fromisoformat(DAYS[0]), 2, generator_config))
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    dagster = Path(sys.executable).with_name("dagster")
    for day in DAYS:
        completed = subprocess.run(
            [str(dagster), "asset", "materialize", "-m", "ml_assets.definitions",
             "--select", "group:data", "--partition", day],
            cwd=dagster_home, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert completed.returncode == 0, completed.stderr[-3000:]
    # dagster.yaml keeps storage under ./.dagster, relative to where commands run.
    monkeypatch.chdir(dagster_home)
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    materialized = instance.get_materialized_partitions(dg.AssetKey("validated_transactions"))
    assert materialized == set(DAYS)
    assert (dagster_home / ".dagster" / "storage").is_dir()
