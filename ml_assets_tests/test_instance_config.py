"""The Dagster instance as a user meets it: no "Join the Dagster community" modal over the UI
on a first visit, for the embedded instance and for every instance file under deploy/."""

import shutil
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.config import dagster_instance_config

from ml_assets.settings import REPO_ROOT

INSTANCE_FILES = [REPO_ROOT / "dagster.yaml", *sorted((REPO_ROOT / "deploy").glob("dagster*.yaml"))]


def test_the_embedded_instance_shows_no_community_modal(tmp_path: Path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.chdir(tmp_path)  # its storage folders are relative to the working directory
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert not instance.nux_enabled


@pytest.mark.parametrize("path", INSTANCE_FILES, ids=lambda p: p.name)
def test_every_shipped_instance_file_switches_the_modal_off(path: Path):
    # Dagster's own schema check: a misspelt key fails here instead of being ignored.
    config, _ = dagster_instance_config(str(path.parent), path.name)
    assert config.get("nux") == {"enabled": False}, f"{path.name} leaves the modal on"
