"""Serving benchmark: our endpoint (student, teacher) vs `mlflow models serve`, on loopback.

    python bench/serving.py [--quick]

Builds a throwaway world in a temp dir (tiny teacher + distilled student registered in a
real MLflow SQLite registry, a SQLite online store), then measures:
  1. fixed-rate (open-loop) load from a separate process at several rates -> p50/p95/p99 and
     achieved throughput, for our endpoint with the student, with the teacher, and for
     `mlflow models serve --env-manager local` on the same registered teacher;
  2. the in-process limit: online read + predict per request, no HTTP;
  3. saturation throughput with micro-batching on vs off (closed loop, many connections).
Latency is measured from each request's scheduled start, so queueing behind a slow server
counts (no coordinated omission). Everything binds 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from ml_assets_tests.support.servers import free_port  # noqa: E402

API_KEY = "bench-key"


# -- load generator (runs in its own process: `--loadgen`) ---------------------------------
class _Connection:
    """A keep-alive HTTP/1.1 connection with a minimal parser: cheaper than any client lib,
    so the generator is not what limits the numbers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def call(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status


def _raw_request(port: int, path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {API_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _load(
    port: int, path: str, bodies: list[bytes], rate: float, seconds: float, connections: int
) -> dict[str, Any]:
    pool: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(_Connection(*await asyncio.open_connection("127.0.0.1", port)))
    latencies: list[float] = []
    errors = 0
    total = int(rate * seconds) if rate > 0 else 10**9
    requests = [_raw_request(port, path, b) for b in bodies]

    async def one(i: int, scheduled: float) -> None:
        nonlocal errors
        connection = await pool.get()
        try:
            status = await connection.call(requests[i % len(requests)])
            if status != 200:
                errors += 1
            latencies.append(time.perf_counter() - scheduled)
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            pool.put_nowait(connection)

    start = time.perf_counter()
    tasks = []
    if rate > 0:  # open loop: request i is due at start + i / rate
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
    else:  # closed loop at saturation: every connection always busy for `seconds`

        async def worker(w: int) -> None:
            i = w
            while time.perf_counter() - start < seconds:
                await one(i, time.perf_counter())
                i += connections

        tasks = [asyncio.create_task(worker(w)) for w in range(connections)]
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {
        "sent": len(latencies) + errors,
        "errors": errors,
        "throughput": len(latencies) / elapsed,
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "p99": float(np.percentile(ms, 99)),
    }


def _loadgen_main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--path")
    parser.add_argument("--bodies")
    parser.add_argument("--rate", type=float)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--connections", type=int)
    args = parser.parse_args(argv)
    bodies = [line.encode() for line in Path(args.bodies).read_text().splitlines() if line]
    result = asyncio.run(
        _load(args.port, args.path, bodies, args.rate, args.seconds, args.connections)
    )
    print(json.dumps(result))


def run_load(port: int, path: str, bodies_file: Path, rate: float, seconds: float,
             connections: int) -> dict[str, Any]:  # fmt: skip
    """The load generator in a separate process (it must not share our GIL or cores)."""
    out = subprocess.run(
        [sys.executable, __file__, "--loadgen", "--port", str(port), "--path", path,
         "--bodies", str(bodies_file), "--rate", str(rate), "--seconds", str(seconds),
         "--connections", str(connections)],
        capture_output=True, text=True, timeout=seconds * 4 + 60, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- the world -----------------------------------------------------------------------------
def build(home: Path, quick: bool) -> dict[str, Any]:
    """Teacher v1 + student v1 (distilled from it) as champions, and a filled online store."""
    from ml_assets.training.registry_aliases import set_alias
    from ml_assets.training.registry_reader import STUDENT_MODEL_NAME, Lineage, load_model_version
    from ml_assets.training.registry_writer import log_student
    from ml_assets.training.student import StudentConfig, train_student
    from ml_assets.training.synthetic import labelled_frame
    from ml_assets_tests.support.worlds import MODEL_NAME, build_world

    world = build_world(home)
    teacher = load_model_version(MODEL_NAME, world.versions[1], world.tracking_uri)
    set_alias(world.tracking_uri, MODEL_NAME, "champion", world.versions[1])
    frame = labelled_frame(date(2026, 3, 1), 4, transactions_per_day=1500, history_days=2)
    student = train_student(frame, teacher, StudentConfig(epochs=3 if quick else 8))
    registered = log_student(
        student, tracking_uri=world.tracking_uri, lineage=Lineage(),
        teacher_version=world.versions[1], registered_name=STUDENT_MODEL_NAME,
        artifact_location=(home / "mlflow" / "artifacts").as_uri(),
    )  # fmt: skip
    set_alias(world.tracking_uri, STUDENT_MODEL_NAME, "champion", registered.version)
    bodies = [json.dumps(world.transaction(i)) for i in range(2_000)]
    bodies_file = home / "bodies.jsonl"
    bodies_file.write_text("\n".join(bodies))
    # The peer gets what the teacher's pyfunc takes: the already-encoded feature vector.
    rows = _rows_with_features(world, [json.loads(b) for b in bodies[:500]])
    matrix = np.nan_to_num(teacher.matrix(teacher.inputs.arrays(rows)), nan=0.0)
    peer_bodies = [
        json.dumps({"dataframe_split": {"columns": teacher.feature_names,
                                        "data": [row.tolist()]}})
        for row in matrix
    ]  # fmt: skip
    peer_file = home / "peer_bodies.jsonl"
    peer_file.write_text("\n".join(peer_bodies))
    return {
        "world": world, "teacher": teacher, "student": student, "bodies": bodies_file,
        "peer_bodies": peer_file, "rows": rows, "teacher_version": world.versions[1],
    }  # fmt: skip


def _rows_with_features(world: Any, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from ml_assets.serving.feature_reader import OnlineFeatureReader

    reader = OnlineFeatureReader.open(world.online_store_url, world.home)
    features = reader.read([(r["customer_id"], r["merchant_id"]) for r in requests],
                           datetime.now(UTC))  # fmt: skip
    reader.close()
    return [
        {**{k: r[k] for k in ("amount", "channel", "device", "merchant_category",
                              "merchant_country", "customer_country")},
         "event_time": datetime.fromisoformat(r["event_time"]), **f.values}
        for r, f in zip(requests, features, strict=True)
    ]  # fmt: skip


# -- servers -------------------------------------------------------------------------------
def _wait_http(port: int, path: str, process: subprocess.Popen, seconds: float) -> bool:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return False


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_ours(world: Any, home: Path, model: str, batching: bool) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {
        **os.environ, "PYTHONPATH": str(REPO), "ML_ASSETS_HOME": str(home / f"srv-{port}"),
        "MLFLOW_TRACKING_URI": world.tracking_uri, "ONLINE_STORE_URL": world.online_store_url,
        "ML_ASSETS_SERVING_MODEL": model, "ML_ASSETS_API_KEY": API_KEY,
        "ML_ASSETS_RATE_LIMIT_PER_S": "1e9", "ML_ASSETS_RATE_LIMIT_BURST": "1000000000",
        "ML_ASSETS_CACHE_SIZE": "0", "ML_ASSETS_SHADOW": "0", "ML_ASSETS_RELOAD_POLL_S": "0",
        "ML_ASSETS_MICRO_BATCHING": "1" if batching else "0",
        "ML_ASSETS_REQUEST_TIMEOUT_S": "5",
    }  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "ml_assets.serving", "--port", str(port)],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    if not _wait_http(port, "/ready", process, 120):
        _stop(process)
        raise RuntimeError(f"our endpoint ({model}) did not become ready")
    return process, port


def start_peer(world: Any, version: str) -> tuple[subprocess.Popen | None, int, str]:
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)  # mlflow serve execs `uvicorn` from PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": world.tracking_uri, "PYTHONPATH": str(REPO),
           "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}  # fmt: skip
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow), "models", "serve", "-m", f"models:/fraud_teacher/{version}",
               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]  # fmt: skip
    log = Path(tempfile.mkdtemp(prefix="mlflow-serve-")) / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    if not _wait_http_get(port, process, 120):
        _stop(process)
        return None, port, log.read_text()[-1500:]
    return process, port, ""


def _wait_http_get(port: int, process: subprocess.Popen, seconds: float) -> bool:
    return _wait_http(port, "/ping", process, seconds)


# -- in-process limit ----------------------------------------------------------------------
def in_process(world: Any, scorer: Any, requests: list[dict[str, Any]], n: int) -> dict:
    """Online read + predict per request with no HTTP: the ceiling any server could reach."""
    from ml_assets.serving.feature_reader import OnlineFeatureReader

    reader = OnlineFeatureReader.open(world.online_store_url, world.home)
    base = _rows_with_features(world, requests[:1])[0]
    times = []
    start = time.perf_counter()
    for i in range(n):
        r = requests[i % len(requests)]
        t0 = time.perf_counter()
        f = reader.read([(r["customer_id"], r["merchant_id"])], datetime.now(UTC))[0]
        scorer.predict_proba([{**base, "amount": r["amount"], **f.values}])
        times.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    reader.close()
    ms = np.array(times) * 1000
    return {"throughput": n / elapsed, "p50": float(np.percentile(ms, 50)),
            "p95": float(np.percentile(ms, 95)), "p99": float(np.percentile(ms, 99)),
            "sent": n, "errors": 0}  # fmt: skip


# -- report --------------------------------------------------------------------------------
def _row(label: str, r: dict[str, Any], base: dict[str, Any] | None = None) -> str:
    ratio = ""
    if base and base.get("p50") and r.get("p50"):
        p50, throughput = r["p50"] / base["p50"], r["throughput"] / base["throughput"]
        ratio = f"  p50 x{p50:.2f}  thr x{throughput:.2f}"
    return (f"  {label:<34} p50 {r['p50']:8.2f}  p95 {r['p95']:8.2f}  p99 {r['p99']:8.2f} ms"
            f"  {r['throughput']:8.0f} req/s  errors {r['errors']}{ratio}")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, fewer rates")
    args = parser.parse_args(argv)
    rates = [50, 200] if args.quick else [50, 200, 500, 1000]
    seconds = 3.0 if args.quick else 8.0
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        home = Path(tmp)
        print("building the world (training, registering, filling the online store) ...")
        built = build(home, args.quick)
        world = built["world"]
        results: dict[str, dict[float, dict]] = {}
        systems = [("ours/student", "fraud_student"), ("ours/teacher", "fraud_teacher")]
        for label, model in systems:
            process, port = start_ours(world, home, model, batching=True)
            try:
                run_load(port, "/predict", built["bodies"], 20, 1.0, 4)  # warm-up
                results[label] = {
                    rate: run_load(port, "/predict", built["bodies"], rate, seconds, 64)
                    for rate in rates
                }
            finally:
                _stop(process)
        peer, port, why = start_peer(world, built["teacher_version"])
        if peer is None:
            print(f"mlflow models serve did not start offline; not compared:\n{why}")
        else:
            try:
                run_load(port, "/invocations", built["peer_bodies"], 20, 1.0, 4)
                results["mlflow serve/teacher"] = {
                    rate: run_load(port, "/invocations", built["peer_bodies"], rate, seconds, 64)
                    for rate in rates
                }
            finally:
                _stop(peer)

        print(f"\nfixed-rate load, {seconds:.0f}s per rate, separate load process, loopback")
        print("(ratios vs ours/student at the same rate; peer gets pre-encoded vectors, "
              "does no feature read)")  # fmt: skip
        for rate in rates:
            print(f" offered {rate} req/s")
            base = results["ours/student"][rate]
            for label, per_rate in results.items():
                print(_row(label, per_rate[rate], None if label == "ours/student" else base))

        from ml_assets.serving.model_source import ModelScorer

        requests = [json.loads(line) for line in built["bodies"].read_text().splitlines()]
        n = 2_000 if args.quick else 10_000
        print("\nin-process limit (online read + predict, one request at a time, no HTTP)")
        for label, model in (("student", built["student"]), ("teacher", built["teacher"])):
            limit = in_process(world, ModelScorer(label, "1", model), requests, n)
            print(_row(f"in-process/{label}", limit))
            best = max(results[f"ours/{label}"].values(), key=lambda r: r["throughput"])
            print(f"    HTTP endpoint p50 / in-process p50: x{best['p50'] / limit['p50']:.1f}")

        print("\nsaturation (closed loop, 64 connections): micro-batching on vs off")
        for label, model in systems:
            sat = {}
            for batching in (True, False):
                process, port = start_ours(world, home, model, batching=batching)
                try:
                    run_load(port, "/predict", built["bodies"], 20, 1.0, 4)
                    sat[batching] = run_load(port, "/predict", built["bodies"], 0, seconds, 64)
                finally:
                    _stop(process)
            print(_row(f"{label} batching on", sat[True]))
            print(_row(f"{label} batching off", sat[False], sat[True]))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--loadgen":
        _loadgen_main(sys.argv[2:])
    else:
        sys.exit(main())
