"""The distributed configuration, tested for real on one machine: the Dagster instance of
deploy/dagster.postgres.yaml against a PostgreSQL server this test starts."""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import date
from glob import glob
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from ml_assets.data.assets import VALIDATED_TRANSACTIONS
from ml_assets.data.assets import assets as data_assets
from ml_assets.data.demo_source import land_days
from ml_assets.definitions import build_resources
from ml_assets.settings import REPO_ROOT
from ml_assets_tests.conftest import free_port, in_ci

DAY = date(2026, 3, 2)


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture(scope="module")
def postgres_port() -> Iterator[int]:
    """A throwaway PostgreSQL cluster on a free loopback port."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        message = "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
        if in_ci():
            pytest.fail(f"{message}; .ci/run installs the postgresql package")
        pytest.skip(message)
    # PostgreSQL refuses to run as root: run it as the `postgres` user the package creates.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="ml_assets_pg_"))
    if as_user:
        shutil.chown(data, "postgres", "postgres")
    port = free_port()
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "dagster"],
                   check=True, capture_output=True)  # fmt: skip
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    # A log file, not a pipe: the server outlives pg_ctl and would hold a pipe open.
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(data / "log"),
                    "-w", "start"], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="dagster", dbname="postgres")
        conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
        conn.cursor().execute("CREATE DATABASE dagster")
        conn.close()
        yield port
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(data, ignore_errors=True)


def test_assets_run_on_the_postgres_instance(
    postgres_port, settings, generator_config, tmp_path, monkeypatch
):
    for name, value in {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(postgres_port),
                        "DAGSTER_PG_USERNAME": "dagster", "DAGSTER_PG_PASSWORD": "",
                        "DAGSTER_PG_DB": "dagster"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "dagster.postgres.yaml", home / "dagster.yaml")
    list(land_days(settings.landing_dir, DAY, 1, generator_config))
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        result = dg.materialize(
            data_assets, partition_key=DAY.isoformat(), resources=build_resources(settings),
            instance=instance,
        )  # fmt: skip
        assert result.success
        assert instance.get_materialized_partitions(VALIDATED_TRANSACTIONS) == {DAY.isoformat()}
    finally:
        instance.dispose()
    with psycopg2.connect(
        host="127.0.0.1", port=postgres_port, user="dagster", dbname="dagster"
    ) as conn:
        cursor = conn.cursor()
        cursor.execute(
            "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
        )
        assert cursor.fetchone()[0] >= 4  # raw, validated, quarantined, labels
