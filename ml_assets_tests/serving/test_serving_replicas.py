"""Two replicas as separate processes over one registry, one online store, one data dir."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from ml_assets_tests.support.servers import free_port
from ml_assets_tests.support.worlds import API_KEY, World, read_prediction_log

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serving")]


def test_replicas_share_registry_store_and_log(world: World, tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    # A generous answer deadline: on a loaded machine a cold replica's first calls can pass
    # the default 0.5 s and be answered by the rules, which is not what this test is about.
    replicas = [
        world.start_replica(tmp_path, port, ML_ASSETS_REQUEST_TIMEOUT_S="10") for port in ports
    ]
    clients = [
        httpx.Client(base_url=f"http://127.0.0.1:{p}", headers={"X-API-Key": API_KEY}, timeout=30)
        for p in ports
    ]
    try:
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
