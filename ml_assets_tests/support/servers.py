"""Real servers on loopback for tests and benches: a free port, a throwaway redis-server, a
throwaway PostgreSQL cluster, nginx with a site of ours, and uvicorn in a thread."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from glob import glob
from pathlib import Path
from typing import Any

import httpx

from ml_assets.serving.local_server import free_port, serve_in_thread

__all__ = ["free_port"]


def in_ci() -> bool:
    """True under CI, where a missing server binary fails the run instead of skipping."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def stop_process(process: subprocess.Popen, timeout: float = 5) -> None:
    """Terminate `process`, and kill it if it has not exited after `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_process_ready(process: subprocess.Popen, url: str, seconds: float = 90) -> None:
    """Poll GET `url` until it answers 200; fails with the process's stderr if it exits."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            error = process.stderr.read().decode()[-2000:] if process.stderr else ""
            raise AssertionError(f"{process.args} exited with {process.returncode}: {error}")
        if time.monotonic() > deadline:
            stop_process(process)
            raise AssertionError(f"{url} did not answer 200 within {seconds}s")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)


def start_redis(executable: str) -> tuple[subprocess.Popen, str]:
    """Start `redis-server` without persistence on a free loopback port; returns the process
    and its URL once it answers PING."""
    import redis

    for _ in range(3):  # another process may grab the free port between probe and bind
        port = free_port()
        process = subprocess.Popen(
            [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            try:
                client.ping()
                return process, f"redis://127.0.0.1:{port}/0"
            except redis.ConnectionError:
                time.sleep(0.05)
        process.kill()
        process.wait()
    raise RuntimeError("redis-server did not start on a free loopback port after 3 attempts")


def _postgres_binary(name: str) -> str | None:
    versioned = sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return shutil.which(name) or (versioned[-1] if versioned else None)


def postgres_binaries() -> tuple[str, str] | None:
    """`initdb` and `pg_ctl` from PATH or Debian's newest versioned folder; None if absent."""
    initdb, pg_ctl = _postgres_binary("initdb"), _postgres_binary("pg_ctl")
    return (initdb, pg_ctl) if initdb and pg_ctl else None


@contextlib.contextmanager
def running_postgres(initdb: str, pg_ctl: str, user: str = "dagster") -> Iterator[int]:
    """A throwaway PostgreSQL cluster on a free loopback port, trusting `user`, with an empty
    database named like the user; yields the port and deletes the cluster afterwards."""
    import psycopg2

    # PostgreSQL refuses to run as root: run it as the `postgres` user the package creates.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="ml_assets_pg_"))
    if as_user:
        shutil.chown(data, "postgres", "postgres")
    port = free_port()
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", user],
                   check=True, capture_output=True)  # fmt: skip
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    # A log file, not a pipe: the server outlives pg_ctl and would hold a pipe open.
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(data / "log"),
                    "-w", "start"], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=port, user=user, dbname="postgres")
        conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
        conn.cursor().execute(f"CREATE DATABASE {user}")
        conn.close()
        yield port
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(data, ignore_errors=True)


@contextlib.contextmanager
def run_server(
    app: Any, *, api_key: str | None = None, ready: bool = True
) -> Iterator[httpx.Client]:
    """`app` on uvicorn on a free loopback port in a thread; yields a client (with `api_key`
    sent as X-API-Key) once the server answers, and after GET /ready answers 200 when `ready`.
    Leaving the block shuts the server down gracefully (lifespan end: logs flushed)."""
    headers = {"X-API-Key": api_key} if api_key else {}
    with serve_in_thread(app) as url, httpx.Client(base_url=url, headers=headers,
                                                  timeout=30) as client:  # fmt: skip
        if ready:
            wait_ready(client)
        yield client


def wait_ready(client: httpx.Client, seconds: float = 60) -> dict[str, Any]:
    """Poll GET /ready until it answers 200; returns its body."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = client.get("/ready")
        if response.status_code == 200:
            return response.json()
        time.sleep(0.05)
    raise AssertionError(f"endpoint not ready after {seconds}s: {response.text}")


def nginx_binary() -> str | None:
    """nginx from PATH or Debian's /usr/sbin (not on a non-root PATH); None if absent."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")


@contextlib.contextmanager
def running_nginx(executable: str, site: str, port: int) -> Iterator[Path]:
    """nginx in the foreground with `site` (upstream and server blocks, as in
    deploy/nginx.conf, listening on `port`) included in its http block; pid, logs and
    temporary files in a throwaway folder, which it yields. Stopped and deleted afterwards."""
    root = Path(tempfile.mkdtemp(prefix="ml_assets_nginx_"))
    root.chmod(0o755)  # run as root, nginx's workers are `nobody`: they must reach the temp dirs
    (root / "site.conf").write_text(site)
    temp_paths = "\n".join(
        f"    {kind}_temp_path {root / kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                          "uwsgi", "scgi")
    )  # fmt: skip
    (root / "nginx.conf").write_text(
        f"pid {root / 'nginx.pid'};\nerror_log {root / 'error.log'} warn;\n"
        "worker_processes 1;\nevents { worker_connections 1024; }\n"
        f"http {{\n    access_log off;\n{temp_paths}\n    include {root / 'site.conf'};\n}}\n"
    )
    process = subprocess.Popen(
        [executable, "-p", str(root), "-c", str(root / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited: {process.stderr.read().decode()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not listen on 127.0.0.1:{port} within 10 s")
            time.sleep(0.05)
        yield root
    finally:
        stop_process(process)  # SIGTERM: nginx's fast shutdown
        shutil.rmtree(root, ignore_errors=True)


DEPLOY_PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def require_binary(name: str, package: str) -> str:
    """The path of executable `name`; skips the test locally, fails it under CI (where
    .ci/run installs the Debian `package`)."""
    import pytest

    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install -y {package})"
        if in_ci():
            pytest.fail(f"{message}; .ci/run installs it")
        pytest.skip(message)
    return path


def prometheus_config(targets: dict[str, str], interval_s: float = 1.0) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with each job's targets replaced by `targets`
    (job -> host:port), every interval set to `interval_s` and the rules file made absolute:
    the checked-in configuration, pointed at servers on loopback."""
    import yaml

    config = yaml.safe_load((DEPLOY_PROMETHEUS / "prometheus.yml").read_text())
    interval = f"{int(interval_s * 1000)}ms"
    config["global"].update(scrape_interval=interval, evaluation_interval=interval)
    config["rule_files"] = [str(DEPLOY_PROMETHEUS / f) for f in config["rule_files"]]
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
        job.pop("scrape_interval", None)
    return config


@contextlib.contextmanager
def running_prometheus(executable: str, config: dict[str, Any]) -> Iterator[httpx.Client]:
    """Prometheus with `config` on a free loopback port and throwaway storage; yields a
    client on its HTTP API once /-/ready answers 200."""
    import yaml

    folder = Path(tempfile.mkdtemp(prefix="ml_assets_prometheus_"))
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(folder / "log", "wb")  # noqa: SIM115 (outlives this statement: the server's)
    process = subprocess.Popen(
        [executable, f"--config.file={folder / 'prometheus.yml'}",
         f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/-/ready").status_code == 200:
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"prometheus did not start: {(folder / 'log').read_text()}")
                time.sleep(0.1)
            yield client
    finally:
        stop_process(process)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def prometheus_query(client: httpx.Client, expr: str) -> list[dict[str, Any]]:
    """The result vector of an instant query through Prometheus's HTTP API (/api/v1/query)."""
    response = client.get("/api/v1/query", params={"query": expr})
    body = response.json()
    if response.status_code != 200 or body.get("status") != "success":
        raise AssertionError(f"query {expr!r} failed: {response.text}")
    return body["data"]["result"]


def wait_for_query(
    client: httpx.Client, expr: str, accept: Any = bool, seconds: float = 60
) -> list[dict[str, Any]]:
    """Poll `expr` until `accept(result)` holds (by default: a non-empty result)."""
    deadline = time.monotonic() + seconds
    while True:
        result = prometheus_query(client, expr)
        if accept(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{expr!r} never satisfied the test within {seconds}s: {result}")
        time.sleep(0.2)
