"""deploy/nginx.conf, as shipped, in front of two endpoint replicas (separate processes, the
world's real model): requests spread across both, and a replica killed mid-load costs no
request, because nginx hands a request that hit the dead replica to the live one."""

from __future__ import annotations

import signal
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from ml_assets_tests.support.servers import (
    free_port,
    in_ci,
    nginx_binary,
    running_nginx,
    stop_process,
)
from ml_assets_tests.support.worlds import API_KEY, REPO, World, metric_value

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("serving")]

NGINX_CONF = REPO / "deploy" / "nginx.conf"
WARM_UP, UNDER_KILL, KILL_AT, CLIENTS = 80, 240, 40, 4


@pytest.fixture(scope="module")
def nginx() -> str:
    binary = nginx_binary()
    if binary is None:
        if in_ci():
            pytest.fail("nginx is not installed: .ci/run installs the Debian package")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    return binary


def site_for(upstreams: list[int], listen: int) -> str:
    """deploy/nginx.conf with its example ports replaced by this test's free ones."""
    text = NGINX_CONF.read_text()
    replacements = {
        "server 127.0.0.1:8001 ": f"server 127.0.0.1:{upstreams[0]} ",
        "server 127.0.0.1:8002 ": f"server 127.0.0.1:{upstreams[1]} ",
        "listen 127.0.0.1:8000;": f"listen 127.0.0.1:{listen};",
    }
    for example, ours in replacements.items():
        assert text.count(example) == 1, f"{NGINX_CONF} no longer has `{example}`"
        text = text.replace(example, ours)
    return text


def answered_by(port: int) -> float:
    """How many /predict requests this replica answered with 200."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return metric_value(text, "ml_assets_serving_http_requests_total", route="/predict",
                        status="200")  # fmt: skip


def load(url: str, world: World, ids: range, on_done=None) -> list[int]:
    """POST /predict for each id from CLIENTS threads (a client each); the status codes.
    `on_done(n)` is called as the n-th answer arrives."""
    local = threading.local()

    def send(i: int) -> int:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=30)
        now = datetime.now(UTC).isoformat()
        body = world.transaction(i, transaction_id=f"NGINX-{i}", event_time=now)
        try:
            return local.client.post("/predict", json=body).status_code
        except httpx.TransportError:
            return -1

    statuses = []
    with ThreadPoolExecutor(CLIENTS) as pool:
        for n, future in enumerate(as_completed([pool.submit(send, i) for i in ids]), 1):
            statuses.append(future.result())
            if on_done:
                on_done(n)
    return statuses


def test_nginx_spreads_requests_and_survives_a_killed_replica(
    world: World, nginx: str, tmp_path: Path
) -> None:
    ports, listen = [free_port(), free_port()], free_port()
    replicas: list[subprocess.Popen] = []
    try:
        for port in ports:
            replicas.append(world.start_replica(tmp_path, port))
        victim = replicas[1]
        with running_nginx(nginx, site_for(ports, listen), listen) as nginx_dir:
            url = f"http://127.0.0.1:{listen}"
            warm = load(url, world, range(WARM_UP))
            assert warm == [200] * WARM_UP
            before = [answered_by(port) for port in ports]
            assert sum(before) == WARM_UP
            assert min(before) > 0, f"least_conn sent everything to one replica: {before}"

            def kill(n: int) -> None:
                if n == KILL_AT:  # CLIENTS requests are in flight: some reach the victim
                    victim.send_signal(signal.SIGKILL)

            statuses = load(url, world, range(WARM_UP, WARM_UP + UNDER_KILL), on_done=kill)
            assert victim.wait(10) == -signal.SIGKILL
            failed = {s: statuses.count(s) for s in set(statuses) if s != 200}
            assert not failed, f"failed requests while a replica died: {failed}"
            # The survivor answered every request sent after the victim's death.
            assert answered_by(ports[0]) - before[0] >= UNDER_KILL - KILL_AT - CLIENTS
            # and nginx did meet the dead replica (so its retry is what saved the requests).
            assert f"127.0.0.1:{ports[1]}" in (nginx_dir / "error.log").read_text()
    finally:
        for process in replicas:
            stop_process(process, timeout=30)
