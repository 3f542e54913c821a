"""The distributed configuration, tested for real on one machine: the Dagster instance of
deploy/dagster.postgres.yaml against a PostgreSQL server this test starts."""

import shutil
from collections.abc import Iterator
from datetime import date

import dagster as dg
import psycopg2
import pytest

from ml_assets.data.assets import VALIDATED_TRANSACTIONS, build_data_assets
from ml_assets.data.demo_source import land_days
from ml_assets.data.partitions import daily_partitions
from ml_assets.definitions import build_resources
from ml_assets.settings import REPO_ROOT
from ml_assets_tests.support.servers import in_ci, postgres_binaries, running_postgres

pytestmark = pytest.mark.slow
DAY = date(2026, 3, 2)


@pytest.fixture(scope="module")
def postgres_port() -> Iterator[int]:
    """A throwaway PostgreSQL cluster on a free loopback port."""
    binaries = postgres_binaries()
    if binaries is None:
        message = "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
        if in_ci():
            pytest.fail(f"{message}; .ci/run installs the postgresql package")
        pytest.skip(message)
    with running_postgres(*binaries) as port:
        yield port


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
            build_data_assets(daily_partitions(settings.partitions_start)),
            partition_key=DAY.isoformat(), resources=build_resources(settings),
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
