"""Two replicas as separate processes over one registry, one online store, one data dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ml_assets_tests.support.servers import free_port
from ml_assets_tests.support.worlds import API_KEY, MODEL_NAME, World, read_prediction_log

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serving")]
REPO = Path(__file__).resolve().parents[2]


def _replica(world: World, home: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "ML_ASSETS_HOME": str(home),
        "MLFLOW_TRACKING_URI": world.tracking_uri,
        "ONLINE_STORE_URL": world.online_store_url,
        "ML_ASSETS_SERVING_MODEL": MODEL_NAME,
        "ML_ASSETS_API_KEY": API_KEY,
        "ML_ASSETS_RELOAD_POLL_S": "0",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "ml_assets.serving", "--port", str(port)],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_replicas_share_registry_store_and_log(world: World, tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    replicas = [_replica(world, tmp_path, port) for port in ports]
    clients = [
        httpx.Client(base_url=f"http://127.0.0.1:{p}", headers={"X-API-Key": API_KEY}, timeout=30)
        for p in ports
    ]
    try:
        deadline = time.monotonic() + 90
        for process, client in zip(replicas, clients, strict=True):
            while True:
                assert process.poll() is None, process.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "replica not ready in 90 s"
                try:
                    if client.get("/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        answers = [  # round robin, as a load balancer would
            clients[i % 2].post("/predict", json=world.transaction(i)).json() for i in range(40)
        ]
        assert {a["model_version"] for a in answers} == {world.versions[0]}
    finally:
        for client in clients:
            client.close()
        for process in replicas:
            process.send_signal(signal.SIGTERM)  # graceful: the log buffer is flushed
        for process in replicas:
            process.wait(30)
    log = read_prediction_log(tmp_path)
    assert log.height == 40
    files = list((tmp_path / "prediction_log").glob("date=*/*.parquet"))
    assert len({f.name.split("-")[1] for f in files}) == 2  # one writer pid per replica
