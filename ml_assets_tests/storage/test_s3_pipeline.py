"""The platform with its warehouse, reports and MLflow artifacts on S3 and MLflow's tracking
and registry on PostgreSQL, tested for real: a local S3 (moto's server mode) and a
PostgreSQL server started on loopback. Ingest -> features -> training -> evaluation run
through `dg.materialize` on a real Dagster instance, the evaluation deploys the champion,
and the endpoint (uvicorn on a loopback port) serves it from the bucket.

The S3 requests of the daily data + feature runs are counted by the server and printed:
the round trips per partition of the closing note.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg2
import pytest

from ml_assets.data.assets import VALIDATED_TRANSACTIONS
from ml_assets.features.assets import ONLINE_FEATURES
from ml_assets.resources import WarehouseReader, table_name
from ml_assets.serving.app import create_app
from ml_assets.serving.config import ServingConfig
from ml_assets.storage import is_remote
from ml_assets.training.assets import (
    STUDENT_MODEL,
    TEACHER_MODEL,
    StudentTrainingConfig,
    TeacherTrainingConfig,
)
from ml_assets.training.registry_reader import STUDENT_MODEL_NAME
from ml_assets_tests.support.object_store import (
    LocalS3,
    S3Request,
    forget_s3_clients,
    per_partition,
    round_trips,
)
from ml_assets_tests.support.platforms import Platform, day_keys, failures, platform_for
from ml_assets_tests.support.servers import (
    in_ci,
    postgres_binaries,
    run_server,
    running_postgres,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("object_storage")]

START = datetime(2026, 3, 1).date()
DAYS, ROWS_PER_DAY = 10, 2_000
TRAINING = dg.RunConfig(
    ops={
        TEACHER_MODEL.path[-1]: TeacherTrainingConfig(
            window_days=6, holdout_days=2, validation_days=2, num_boost_round=200
        ),
        STUDENT_MODEL.path[-1]: StudentTrainingConfig(epochs=3, max_rows=20_000),
    }
)


@dataclass(frozen=True)
class RemotePlatform:
    platform: Platform
    s3: LocalS3
    mlflow_db: dict[str, object]  # psycopg2.connect keywords of MLflow's database
    daily_requests: list[S3Request]  # what the daily data + feature runs asked of S3


@pytest.fixture(scope="module")
def postgres_port() -> Iterator[int]:
    binaries = postgres_binaries()
    if binaries is None:
        message = "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
        if in_ci():
            pytest.fail(f"{message}; .ci/run installs the postgresql package")
        pytest.skip(message)
    with running_postgres(*binaries) as port:
        yield port


@pytest.fixture(scope="module")
def remote(local_s3, postgres_port, tmp_path_factory) -> Iterator[RemotePlatform]:
    database = {"host": "127.0.0.1", "port": postgres_port, "user": "dagster", "dbname": "dagster"}
    conn = psycopg2.connect(**database)
    conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
    conn.cursor().execute("CREATE DATABASE mlflow")
    conn.close()
    mlflow_db = {**database, "dbname": "mlflow"}
    with pytest.MonkeyPatch.context() as env:
        for name, value in local_s3.env.items():
            env.setenv(name, value)
        env.setenv("ML_ASSETS_WAREHOUSE_URL", local_s3.url("warehouse"))
        env.setenv("ML_ASSETS_REPORTS_URL", local_s3.url("reports"))
        env.setenv("ML_ASSETS_MLFLOW_ARTIFACTS_URL", local_s3.url("mlflow"))
        env.setenv(
            "ML_ASSETS_MLFLOW_TRACKING_URI",
            f"postgresql+psycopg2://dagster@127.0.0.1:{postgres_port}/mlflow",
        )
        forget_s3_clients()
        mark = local_s3.mark()
        home = tmp_path_factory.mktemp("s3_platform")
        with platform_for(home, start=START, days=DAYS, rows_per_day=ROWS_PER_DAY) as platform:
            daily = local_s3.requests(mark)
            yield RemotePlatform(platform, local_s3, mlflow_db, daily)
    forget_s3_clients()


@pytest.fixture(scope="module")
def deployed(remote: RemotePlatform) -> str:
    """Train the teacher and the student, evaluate and deploy: the champion's version."""
    platform = remote.platform
    result = platform.materialize([TEACHER_MODEL, STUDENT_MODEL], run_config=TRAINING)
    assert result.success, failures(result)
    result = platform.evaluate()
    assert result.success, failures(result)
    champion = platform.champion()
    assert champion is not None, "the evaluation did not deploy the candidate"
    return champion


def test_data_and_features_live_in_the_bucket_one_object_per_day(remote):
    settings = remote.platform.settings
    assert is_remote(settings.warehouse_dir)
    assert not (settings.home / "warehouse").exists()  # nothing fell back to the data dir
    reader = WarehouseReader(root=str(settings.warehouse_dir))
    expected = day_keys(START, DAYS)
    assert reader.partitions(table_name(VALIDATED_TRANSACTIONS)) == expected
    metadata = remote.platform.metadata(VALIDATED_TRANSACTIONS, expected[-1])
    assert str(metadata["path"]).startswith(remote.s3.url("warehouse/"))
    digest = reader.partition_digests(table_name(VALIDATED_TRANSACTIONS), [expected[-1]])
    assert metadata["data_version"] == digest[expected[-1]]

    written, kinds = round_trips(remote.daily_requests, "warehouse/")
    assert written >= 4 * DAYS  # raw, validated, quarantine, labels and the features each day
    print(f"\nS3 requests of {DAYS} daily data + feature runs: {per_partition(written, kinds)}")
    # Nothing written twice, and no absent day asked for one by one (a LIST finds them).
    assert kinds["GET 404"] == 0
    assert len({r.key for r in remote.daily_requests if r.method == "PUT"}) == written


def test_training_and_registry_run_on_postgres_with_artifacts_on_s3(remote, deployed):
    settings = remote.platform.settings
    assert not (settings.home / "mlflow").exists()  # no SQLite, no local artifacts
    with psycopg2.connect(**remote.mlflow_db) as conn:
        cursor = conn.cursor()
        cursor.execute(
            "SELECT version, storage_location FROM model_versions WHERE name = %s",
            (STUDENT_MODEL_NAME,),
        )
        versions = dict(cursor.fetchall())
        cursor.execute(
            "SELECT version FROM registered_model_aliases WHERE name = %s AND alias = %s",
            (STUDENT_MODEL_NAME, "champion"),
        )
        (champion,) = cursor.fetchone()
    assert str(champion) == deployed
    assert all(location.startswith(remote.s3.url("mlflow/")) for location in versions.values())
    uploaded = {r.key for r in remote.s3.requests() if r.method == "PUT"}
    assert any(key.startswith("mlflow/") and key.endswith("MLmodel") for key in uploaded)


def test_the_endpoint_serves_the_champion_from_the_bucket(remote, deployed):
    platform = remote.platform
    last = day_keys(START, DAYS)[-1]
    result = platform.materialize([ONLINE_FEATURES], partition=last)
    assert result.success, failures(result)
    transaction = (
        WarehouseReader(root=str(platform.settings.warehouse_dir))
        .read(table_name(VALIDATED_TRANSACTIONS), [last])
        .row(0, named=True)
    )
    mark = remote.s3.mark()
    config = ServingConfig(
        home=platform.settings.home,
        tracking_uri=platform.settings.mlflow_tracking_uri,
        model_name=STUDENT_MODEL_NAME,
        reload_poll_s=0,
        log_flush_s=0.2,
        request_timeout_s=30.0,  # storage is under test, not latency: a cold first call is slow
    )
    body = {
        "transaction_id": "S3-1",
        "customer_id": transaction["customer_id"],
        "merchant_id": transaction["merchant_id"],
        "amount": 42.0,
        "channel": "online",
        "device": "mobile",
        "merchant_category": "grocery",
        "merchant_country": "US",
        "customer_country": "US",
        "event_time": (datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
    }
    with run_server(create_app(config)) as client:
        response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    prediction = response.json()
    assert (prediction["path"], prediction["reason"]) == ("model", None), prediction
    assert (prediction["model_name"], prediction["model_version"]) == (
        STUDENT_MODEL_NAME,
        deployed,
    )
    # The model came out of the bucket.
    fetched = [r for r in remote.s3.requests(mark) if r.method == "GET"]
    assert any(r.key.startswith("mlflow/") for r in fetched)
