"""Serving benchmark: our endpoint (student, teacher) vs `mlflow models serve`, on loopback.

    python bench/serving.py [--quick]

Builds the serving world of the tests in a temp dir (`build_world`: generated days, a real
MLflow SQLite registry with two distilled students `fraud_student`, their events in a SQLite
online store), retrains the teacher the students were distilled from the same way (the
world does not keep it) and registers it as `fraud_teacher`, then measures:
  1. fixed-rate (open-loop) load from a separate process at several rates -> p50/p95/p99 and
     achieved throughput, for our endpoint with the student, with the teacher, and for
     `mlflow models serve --env-manager local` on the same registered teacher;
  2. the hot path at batch 1, real-time update included: in process
     (`OnlineFeatureReader.score_and_record` + predict) with and without recording the event,
     and over HTTP (POST /predict, one request at a time); the cost HTTP adds;
  3. saturation throughput with micro-batching on vs off (closed loop, many connections);
  4. overload at 2x and 4x the measured capacity (open loop): admitted p99, shed share (503)
     and answers that approve without the model having scored them (must be none);
  5. the highest rate each server holds at p99 <= 10 ms (offered rate stepped up), ours with
     the student vs `mlflow models serve` with the teacher;
and prints the issue's targets beside the figures, MET or MISSED.

Every request carries a new transaction id and the current time as `event_time`, so each one
reads its entities' events as of that instant and appends its own event (the real-time
update is never skipped as a duplicate). Each server starts on a fresh copy of the world's
store. Latency is measured from each request's scheduled start, so queueing behind a slow
server counts (no coordinated omission). Everything binds 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from ml_assets_tests.support.servers import free_port  # noqa: E402

API_KEY = "bench-key"
ID_MARK, TIME_MARK = "@ID@", "@TIME@"  # filled per request by the load generator
SCORED_PATHS = ("model", "review", "cache")  # answers the model gave
# The targets.
TARGET_IN_PROCESS_P50_MS = 0.3
TARGET_HTTP_ADDED_MS = 1.0
TARGET_RATE, P99_BUDGET_MS = 500, 10.0
TARGET_VS_MLFLOW = 10.0
TARGET_STUDENT_TEACHER = 0.2
OVERLOAD_MAX_QUEUE = 64
OVERLOAD_CONNECTIONS = 512  # more than the queue bound + a batch, or shedding cannot show
LADDER = (25, 50, 100, 200, 300, 400, 500, 700, 1000, 1400, 2000, 2800, 4000)
LADDER_SAMPLES = 300  # requests per step at least: p99 = the 3rd-slowest, not the slowest
_RUNS = itertools.count()


# -- load generator (runs in its own process: `--loadgen`) ---------------------------------
class _Connection:
    """A keep-alive HTTP/1.1 connection with a minimal parser: cheaper than any client lib,
    so the generator is not what limits the numbers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def call(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)


async def _connect(port: int) -> _Connection:
    return _Connection(*await asyncio.open_connection("127.0.0.1", port))


def _raw_request(port: int, path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {API_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000 if seconds else np.array([np.nan])
    return {f"p{q}": float(np.percentile(ms, q)) for q in (50, 95, 99)}


async def _load(
    port: int, path: str, templates: list[bytes], rate: float, seconds: float,
    connections: int, inspect: bool, tag: str,
) -> dict[str, Any]:  # fmt: skip
    pool: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await _connect(port))
    ok: list[float] = []  # latencies of 200 answers
    statuses: Counter[int] = Counter()
    paths: Counter[str] = Counter()
    failures = unscored_approvals = 0
    templated = ID_MARK.encode() in templates[0]

    def request(i: int) -> bytes:
        body = templates[i % len(templates)]
        if templated:  # a new transaction, happening now
            now = datetime.now(UTC).isoformat().encode()
            body = body.replace(ID_MARK.encode(), f"{tag}-{i}".encode())
            body = body.replace(TIME_MARK.encode(), now)
        return _raw_request(port, path, body)

    async def one(raw: bytes, scheduled: float) -> None:
        nonlocal failures, unscored_approvals
        connection = await pool.get()
        try:
            status, payload = await connection.call(raw)
        except (OSError, asyncio.IncompleteReadError):
            failures += 1
            try:
                connection = await _connect(port)
            except OSError:
                return  # the pool shrinks; the deadline below bounds the run
        else:
            statuses[status] += 1
            if status == 200:
                ok.append(time.perf_counter() - scheduled)
                if inspect:
                    answer = json.loads(payload)
                    reason = answer.get("reason")
                    paths[answer["path"] + (f":{reason}" if reason else "")] += 1
                    if answer["path"] not in SCORED_PATHS and answer["decision"] == "approve":
                        unscored_approvals += 1
        pool.put_nowait(connection)

    start = time.perf_counter()
    tasks = []
    late: list[float] = []  # how far behind schedule the generator sent each request
    if rate > 0:  # open loop: request i is due at start + i / rate
        for i in range(int(rate * seconds)):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            late.append(time.perf_counter() - due)
            tasks.append(asyncio.create_task(one(request(i), due)))
    else:  # closed loop: every connection always busy for `seconds`

        async def worker(w: int) -> None:
            for i in itertools.count(w, connections):
                if time.perf_counter() - start >= seconds:
                    return
                raw = request(i)
                await one(raw, time.perf_counter())

        tasks = [asyncio.create_task(worker(w)) for w in range(connections)]
    dispatched = time.perf_counter() - start
    _, pending = await asyncio.wait(tasks, timeout=seconds * 5 + 10)
    for task in pending:
        task.cancel()
    elapsed = time.perf_counter() - start
    sent = sum(statuses.values()) + failures + len(pending) if rate > 0 else None
    answered = sum(statuses.values())
    return {
        "sent": sent if sent is not None else answered + failures,
        "send_rate": (sent / dispatched) if sent else None,
        "answered": answered,
        "unanswered": len(pending),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": answered - statuses[200] + failures + len(pending),
        "throughput": len(ok) / elapsed,
        **_percentiles(ok),
        "paths": dict(paths),
        "unscored_approvals": unscored_approvals,
        "late_p99": _percentiles(late)["p99"] if late else None,
    }


def _loadgen_main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--path")
    parser.add_argument("--bodies")
    parser.add_argument("--rate", type=float)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--connections", type=int)
    parser.add_argument("--inspect", action="store_true")
    parser.add_argument("--tag")
    args = parser.parse_args(argv)
    bodies = [line.encode() for line in Path(args.bodies).read_text().splitlines() if line]
    result = asyncio.run(
        _load(args.port, args.path, bodies, args.rate, args.seconds, args.connections,
              args.inspect, args.tag)
    )  # fmt: skip
    print(json.dumps(result))


def run_load(port: int, path: str, bodies_file: Path, rate: float, seconds: float,
             connections: int, inspect: bool = False) -> dict[str, Any]:  # fmt: skip
    """The load generator in a separate process (it must not share our GIL). `rate` 0 is a
    closed loop; with `inspect` each 200 answer's path and decision are checked."""
    command = [sys.executable, __file__, "--loadgen", "--port", str(port), "--path", path,
               "--bodies", str(bodies_file), "--rate", str(rate), "--seconds", str(seconds),
               "--connections", str(connections), "--tag", f"L{next(_RUNS)}"]  # fmt: skip
    if inspect:
        command.append("--inspect")
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds * 6 + 60,
                         check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- the world -----------------------------------------------------------------------------
@dataclass
class Built:
    world: Any
    teacher: Any
    teacher_version: str
    student: Any
    student_version: str
    requests: list[dict[str, Any]]  # request templates (ID_MARK / TIME_MARK to fill)
    bodies: Path  # the same, one JSON body a line, for the load generator
    peer_bodies: Path  # pre-encoded feature vectors for the teacher's pyfunc
    pristine: Path  # the world's online store as built: each server starts on a copy


def build(home: Path) -> Built:
    from ml_assets.settings import Settings
    from ml_assets.training.registry_aliases import set_alias
    from ml_assets.training.registry_reader import (
        CHAMPION,
        TEACHER_MODEL_NAME,
        Lineage,
        load_model_version,
    )
    from ml_assets.training.registry_writer import log_teacher
    from ml_assets_tests.support.worlds import MODEL_NAME, build_world

    world = build_world(home / "world")
    teacher = world.teacher
    registered = log_teacher(
        teacher, tracking_uri=world.tracking_uri, lineage=Lineage(),
        artifact_location=Settings(home=world.home).mlflow_artifact_location,
        registered_name=TEACHER_MODEL_NAME,
    )  # fmt: skip
    set_alias(world.tracking_uri, TEACHER_MODEL_NAME, CHAMPION, registered.version)
    student_version = world.versions[0]  # the world's champion
    student = load_model_version(MODEL_NAME, student_version, world.tracking_uri)
    pristine = home / "pristine_store.sqlite"
    _copy_store(world.home / "online_store.sqlite", pristine)
    requests = [world.transaction(i, transaction_id=ID_MARK, event_time=TIME_MARK)
                for i in range(2_000)]  # fmt: skip
    bodies = home / "bodies.jsonl"
    bodies.write_text("\n".join(json.dumps(r) for r in requests))
    # The peer gets what the teacher's pyfunc takes: the already-encoded feature vector.
    rows = _rows_with_features(fresh_store(pristine, home, "peer"), home, requests[:500],
                               world.now)  # fmt: skip
    matrix = np.nan_to_num(teacher.matrix(teacher.inputs.arrays(rows)), nan=0.0)
    peer_bodies = home / "peer_bodies.jsonl"
    peer_bodies.write_text("\n".join(
        json.dumps({"dataframe_split": {"columns": teacher.feature_names,
                                        "data": [row.tolist()]}})
        for row in matrix
    ))  # fmt: skip
    return Built(world, teacher, registered.version, student, student_version, requests,
                 bodies, peer_bodies, pristine)  # fmt: skip


def _copy_store(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite store (its WAL included)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def fresh_store(pristine: Path, home: Path, tag: str) -> str:
    """A new copy of the world's store as built; returns its ONLINE_STORE_URL."""
    path = home / f"store-{tag}.sqlite"
    _copy_store(pristine, path)
    return f"sqlite:///{path}"


def _event(request: dict[str, Any], transaction_id: str, moment: datetime) -> tuple[dict, Any]:
    """The model's request fields and the feature store's event, as the service builds them."""
    from ml_assets.serving.feature_reader import Event
    from ml_assets.serving.service import REQUEST_FIELDS

    fields = {name: request[name] for name in REQUEST_FIELDS}
    fields["event_time"] = moment
    event = Event(transaction_id, request["customer_id"], request["merchant_id"], moment, fields)
    return fields, event


def _rows_with_features(store_url: str, home: Path, requests: list[dict[str, Any]],
                        start: datetime) -> list[dict[str, Any]]:  # fmt: skip
    from ml_assets.serving.feature_reader import OnlineFeatureReader

    reader = OnlineFeatureReader.open(store_url, home)
    pairs = [_event(r, f"peer-{i}", start + timedelta(milliseconds=10 * i))
             for i, r in enumerate(requests)]  # fmt: skip
    features = reader.score_and_record([event for _, event in pairs], record=False)
    reader.close()
    return [{**fields, **f.values} for (fields, _), f in zip(pairs, features, strict=True)]


def log_sizes(built: Built) -> str:
    """Events per requested entity in the store as built: what each read decodes."""
    from ml_assets.features.online import open_online_store, read_logs
    from ml_assets.features.registry import FEATURE_SETS

    store = open_online_store(f"sqlite:///{built.pristine}", built.world.home)
    parts = []
    for entity, keys in (("customer", built.world.customers), ("merchant", built.world.merchants)):
        logs = read_logs(store, FEATURE_SETS[entity], keys)
        sizes = [len(log) for log in logs.values()]
        parts.append(f"{len(keys)} {entity}s: median {np.median(sizes):.0f}, max {max(sizes)}")
    store.close()
    return "; ".join(parts)


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


def start_ours(built: Built, home: Path, model: str, batching: bool = True,
               **env: str) -> tuple[subprocess.Popen, int]:  # fmt: skip
    """Our endpoint serving `model`'s champion, on a fresh copy of the world's store."""
    port = free_port()
    environment = {
        **os.environ, "PYTHONPATH": str(REPO), "ML_ASSETS_HOME": str(home / f"srv-{port}"),
        "MLFLOW_TRACKING_URI": built.world.tracking_uri,
        "ONLINE_STORE_URL": fresh_store(built.pristine, home, f"srv-{port}"),
        "ML_ASSETS_SERVING_MODEL": model, "ML_ASSETS_API_KEY": API_KEY,
        "ML_ASSETS_RATE_LIMIT_PER_S": "1e9", "ML_ASSETS_RATE_LIMIT_BURST": "1000000000",
        "ML_ASSETS_CACHE_SIZE": "0", "ML_ASSETS_SHADOW": "0", "ML_ASSETS_RELOAD_POLL_S": "0",
        "ML_ASSETS_MICRO_BATCHING": "1" if batching else "0",
        "ML_ASSETS_REQUEST_TIMEOUT_S": "5", **env,
    }  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "ml_assets.serving", "--port", str(port)],
        env=environment, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    if not _wait_http(port, "/ready", process, 120):
        _stop(process)
        raise RuntimeError(f"our endpoint ({model}) did not become ready")
    run_load(port, "/predict", built.bodies, 20, 1.0, 4)  # warm-up
    return process, port


def start_peer(built: Built) -> tuple[subprocess.Popen | None, int, str]:
    from ml_assets.training.registry_reader import TEACHER_MODEL_NAME

    port = free_port()
    bin_dir = str(Path(sys.executable).parent)  # mlflow serve execs `uvicorn` from PATH
    path = bin_dir + os.pathsep + os.environ.get("PATH", "")
    env = {**os.environ, "MLFLOW_TRACKING_URI": built.world.tracking_uri,
           "PYTHONPATH": str(REPO), "PATH": path}  # fmt: skip
    mlflow = Path(sys.executable).with_name("mlflow")
    model = f"models:/{TEACHER_MODEL_NAME}/{built.teacher_version}"
    command = [str(mlflow), "models", "serve", "-m", model, "--env-manager", "local",
               "-h", "127.0.0.1", "-p", str(port), "-w", "1"]  # fmt: skip
    log = Path(tempfile.mkdtemp(prefix="mlflow-serve-")) / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    if not _wait_http(port, "/ping", process, 120):
        _stop(process)
        return None, port, log.read_text()[-1500:]
    run_load(port, "/invocations", built.peer_bodies, 20, 1.0, 4)  # warm-up
    return process, port, ""


# -- in process ----------------------------------------------------------------------------
def hot_path_in_process(built: Built, home: Path, scorer: Any, n: int) -> dict[str, dict]:
    """Batch of 1, no HTTP: `score_and_record` + predict per request, alternating requests
    that record their event (the real-time update) with requests that only read, so both
    see logs of the same size. Also the two parts of the recording path on their own."""
    from ml_assets.serving.feature_reader import OnlineFeatureReader

    tag = f"I{next(_RUNS)}"
    reader = OnlineFeatureReader.open(fresh_store(built.pristine, home, tag), home)
    times: dict[str, list[float]] = {"update": [], "read": [], "features": [], "predict": []}
    warmup = 200
    for i in range(warmup + n):
        request = built.requests[i % len(built.requests)]
        for record in (True, False):
            fields, event = _event(request, f"{tag}-{int(record)}-{i}", datetime.now(UTC))
            t0 = time.perf_counter()
            features = reader.score_and_record([event], record=record)
            t1 = time.perf_counter()
            scorer.predict_proba([{**fields, **features[0].values}])
            t2 = time.perf_counter()
            if i < warmup:
                continue
            times["update" if record else "read"].append(t2 - t0)
            if record:
                times["features"].append(t1 - t0)
                times["predict"].append(t2 - t1)
    reader.close()
    return {k: {**_percentiles(v), "throughput": 1 / np.mean(v), "sent": len(v), "errors": 0}
            for k, v in times.items()}  # fmt: skip


# -- report --------------------------------------------------------------------------------
def _row(label: str, r: dict[str, Any], base: dict[str, Any] | None = None) -> str:
    ratio = ""
    if base and base.get("p50") and r.get("p50"):
        p50, throughput = r["p50"] / base["p50"], r["throughput"] / base["throughput"]
        ratio = f"  p50 x{p50:.2f}  thr x{throughput:.2f}"
    late = f"  (generator late p99 {r['late_p99']:.1f} ms)" if r.get("late_p99") else ""
    return (f"  {label:<34} p50 {r['p50']:8.3f}  p95 {r['p95']:8.3f}  p99 {r['p99']:8.3f} ms"
            f"  {r['throughput']:8.0f} req/s  errors {r['errors']}{ratio}{late}")  # fmt: skip


def _verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def ladder(port: int, path: str, bodies: Path, seconds: float) -> tuple[int, list[str]]:
    """Step the offered rate up until p99 exceeds the budget (or anything fails, or the
    server falls behind); returns the highest rate that held and a line per step. A step
    lasts at least `seconds` and long enough for LADDER_SAMPLES requests, so its p99 is not
    just its slowest request."""
    held, lines = 0, []
    for rate in LADDER:
        r = run_load(port, path, bodies, rate, max(seconds, LADDER_SAMPLES / rate), 64)
        ok = r["p99"] <= P99_BUDGET_MS and r["errors"] == 0 and r["throughput"] >= 0.9 * rate
        lines.append(f"{rate}: p99 {r['p99']:.1f} ms, {r['throughput']:.0f} req/s"
                     f"{'' if r['errors'] == 0 else ', errors ' + str(r['errors'])}"
                     f"{'' if ok else ' X'}")  # fmt: skip
        if not ok:
            break
        held = rate
    return held, lines


@dataclass
class Scale:
    rates: list[int]
    seconds: float  # per fixed rate, saturation and overload run
    step_seconds: float  # per step of the p99 ladder
    sequential_seconds: float  # HTTP one request at a time
    in_process: int  # requests per in-process figure


def fixed_rate(built: Built, home: Path, scale: Scale) -> dict[str, Any]:
    """Section 1 (and the HTTP half of section 2, on the same servers); leaves the mlflow
    server running for the ladder."""
    from ml_assets.training.registry_reader import STUDENT_MODEL_NAME, TEACHER_MODEL_NAME

    results: dict[str, dict[float, dict]] = {}
    sequential: dict[str, dict] = {}
    for label, model in (
        ("ours/student", STUDENT_MODEL_NAME),
        ("ours/teacher", TEACHER_MODEL_NAME),
    ):
        process, port = start_ours(built, home, model)
        try:
            sequential[label] = run_load(
                port, "/predict", built.bodies, 0, scale.sequential_seconds, 1
            )
            results[label] = {
                rate: run_load(port, "/predict", built.bodies, rate, scale.seconds, 64)
                for rate in scale.rates
            }
        finally:
            _stop(process)
    peer, peer_port, why = start_peer(built)
    if peer is None:
        print(f"mlflow models serve did not start offline; not compared:\n{why}")
    else:
        results["mlflow serve/teacher"] = {
            rate: run_load(peer_port, "/invocations", built.peer_bodies, rate, scale.seconds, 64)
            for rate in scale.rates
        }
    print(f"\n1. fixed-rate load, {scale.seconds:.0f}s per rate, separate load process, loopback")
    print(
        "   (ratios vs ours/student at the same rate; the peer gets pre-encoded vectors, "
        "does no feature read and no update)"
    )
    for rate in scale.rates:
        print(f" offered {rate} req/s")
        base = results["ours/student"][rate]
        for label, per_rate in results.items():
            print(_row(label, per_rate[rate], None if label == "ours/student" else base))
    return {"results": results, "sequential": sequential, "peer": peer, "peer_port": peer_port}


def hot_path(built: Built, home: Path, scale: Scale, sequential: dict[str, dict]) -> dict:
    """Section 2: in process with and without the update, over HTTP, student vs teacher."""
    from ml_assets.serving.model_source import ModelScorer
    from ml_assets.training.registry_reader import STUDENT_MODEL_NAME, TEACHER_MODEL_NAME

    print("\n2. hot path, batch of 1, one request at a time")
    print(
        f"   in process: OnlineFeatureReader.score_and_record + predict, {scale.in_process} "
        "requests each, a new event at the current time"
    )
    models = {
        "ours/student": (built.student, STUDENT_MODEL_NAME, built.student_version),
        "ours/teacher": (built.teacher, TEACHER_MODEL_NAME, built.teacher_version),
    }
    hot: dict[str, dict[str, dict]] = {}
    for label, (model, name, version) in models.items():
        scorer = ModelScorer(name, version, model)
        hot[label] = h = hot_path_in_process(built, home, scorer, scale.in_process)
        print(_row(f"{label} read + update + predict", h["update"]))
        print(_row(f"{label} read + predict (no update)", h["read"], h["update"]))
        print(
            f"    of which score_and_record p50 {h['features']['p50']:.3f} ms, "
            f"predict p50 {h['predict']['p50']:.3f} ms"
        )
    print(
        f"   over HTTP: POST /predict, one connection, {scale.sequential_seconds:.0f}s closed loop"
    )
    for label in models:
        inproc, http = hot[label]["update"], sequential[label]
        print(_row(f"{label} HTTP", http, inproc))
        print(
            f"    HTTP adds {http['p50'] - inproc['p50']:.3f} ms to the in-process p50 "
            f"(p99: {http['p99'] - inproc['p99']:+.3f} ms)"
        )
    student, teacher = hot["ours/student"], hot["ours/teacher"]
    e2e = student["update"]["p50"] / teacher["update"]["p50"]
    predict = student["predict"]["p50"] / teacher["predict"]["p50"]
    http = sequential["ours/student"]["p50"] / sequential["ours/teacher"]["p50"]
    print(
        f"   student / teacher p50 at batch 1: end-to-end in process x{e2e:.2f}, "
        f"predict only x{predict:.2f}, over HTTP x{http:.2f}"
    )
    return {"hot": hot, "e2e": e2e}


def saturation(built: Built, home: Path, scale: Scale) -> float:
    """Section 3; returns the student's capacity (batching on)."""
    from ml_assets.training.registry_reader import STUDENT_MODEL_NAME, TEACHER_MODEL_NAME

    print(
        f"\n3. saturation (closed loop, 64 connections, {scale.seconds:.0f}s): micro-batching "
        "on vs off"
    )
    capacity = 0.0
    for label, model in (
        ("ours/student", STUDENT_MODEL_NAME),
        ("ours/teacher", TEACHER_MODEL_NAME),
    ):
        sat = {}
        for batching in (True, False):
            process, port = start_ours(built, home, model, batching=batching)
            try:
                sat[batching] = run_load(port, "/predict", built.bodies, 0, scale.seconds, 64)
            finally:
                _stop(process)
        print(_row(f"{label} batching on", sat[True]))
        print(_row(f"{label} batching off", sat[False], sat[True]))
        if label == "ours/student":
            capacity = sat[True]["throughput"]
    return capacity


def overload(built: Built, home: Path, scale: Scale, capacity: float) -> int:
    """Section 4; returns the unscored approvals seen."""
    from ml_assets.serving.config import ServingConfig
    from ml_assets.training.registry_reader import STUDENT_MODEL_NAME

    defaults = ServingConfig()
    print(
        f"\n4. overload, ours/student: open loop at 2x and 4x the capacity measured above "
        f"({capacity:.0f} req/s), {scale.seconds:.0f}s, {OVERLOAD_CONNECTIONS} connections"
    )
    print(
        f"   ML_ASSETS_MAX_QUEUE={OVERLOAD_MAX_QUEUE} (default {defaults.max_queue}), "
        f"request timeout {defaults.request_timeout_s} s (default)"
    )
    unscored = 0
    for factor in (2, 4):
        process, port = start_ours(
            built, home, STUDENT_MODEL_NAME, ML_ASSETS_MAX_QUEUE=str(OVERLOAD_MAX_QUEUE),
            ML_ASSETS_REQUEST_TIMEOUT_S=str(defaults.request_timeout_s),
        )  # fmt: skip
        try:
            r = run_load(
                port, "/predict", built.bodies, factor * capacity, scale.seconds,
                OVERLOAD_CONNECTIONS, inspect=True,
            )  # fmt: skip
        finally:
            _stop(process)
        unscored += r["unscored_approvals"]
        shed = r["statuses"].get("503", 0) / max(r["sent"], 1)
        print(
            f"  {factor}x: {factor * capacity:.0f} req/s offered, sent at "
            f"{r['send_rate'] or 0:.0f} req/s; admitted (200) p50 {r['p50']:.1f} ms, "
            f"p99 {r['p99']:.1f} ms, {r['throughput']:.0f} req/s; shed (503) {shed:.1%}"
            f" (generator late p99 {r['late_p99'] or 0:.1f} ms)"
        )
        print(
            f"      statuses {r['statuses']}, unanswered {r['unanswered']}; path:reason of "
            f"200 answers {r['paths']}; unscored approvals {r['unscored_approvals']}"
        )
    return unscored


def held_rates(built: Built, home: Path, scale: Scale, fixed: dict[str, Any]) -> tuple:
    """Section 5: the highest rate held at p99 <= budget, ours/student and mlflow/teacher."""
    from ml_assets.training.registry_reader import STUDENT_MODEL_NAME

    print(
        f"\n5. highest offered rate held at p99 <= {P99_BUDGET_MS:.0f} ms "
        f"({scale.step_seconds:.0f}s per step, at least {LADDER_SAMPLES} requests; stops at "
        "the first step over budget, with errors, or under 90% of the offered rate: marked X)"
    )
    process, port = start_ours(built, home, STUDENT_MODEL_NAME)
    try:
        ours, steps = ladder(port, "/predict", built.bodies, scale.step_seconds)
    finally:
        _stop(process)
    print(f"  ours/student          held {ours or 'none'} req/s   [{'; '.join(steps)}]")
    theirs: int | None = None
    if fixed["peer"] is not None:
        theirs, steps = ladder(
            fixed["peer_port"], "/invocations", built.peer_bodies, scale.step_seconds
        )
        _stop(fixed["peer"])
        print(f"  mlflow serve/teacher  held {theirs or 'none'} req/s   [{'; '.join(steps)}]")
        if theirs:
            print(f"  ours / mlflow: x{ours / theirs:.1f}")
        else:
            print(f"  mlflow held none of the ladder (< {LADDER[0]} req/s): no ratio")
    return ours, theirs


def print_targets(fixed: dict, hot: dict, unscored: int, ours: int, theirs: int | None) -> None:
    student = hot["hot"]["ours/student"]["update"]["p50"]
    added = fixed["sequential"]["ours/student"]["p50"] - student
    at_rate = fixed["results"]["ours/student"][TARGET_RATE]
    if theirs:
        mlflow = (f"x{ours / theirs:.1f} ({ours} vs {theirs} req/s)",
                  _verdict(ours / theirs >= TARGET_VS_MLFLOW))  # fmt: skip
    elif theirs == 0 and ours == 0:
        mlflow = (f"neither held {LADDER[0]} req/s", _verdict(False))
    elif theirs == 0:
        mlflow = (f"> x{ours / LADDER[0]:.0f} (mlflow < {LADDER[0]} req/s)",
                  _verdict(ours / LADDER[0] >= TARGET_VS_MLFLOW))  # fmt: skip
    else:
        mlflow = ("not measured", "NOT MEASURED")
    targets = [
        ("in-process predict+update p50 (student)", f"{student:.3f} ms",
         f"<= {TARGET_IN_PROCESS_P50_MS} ms", _verdict(student <= TARGET_IN_PROCESS_P50_MS)),
        ("HTTP added to the in-process p50 (student)", f"{added:.3f} ms",
         f"<= {TARGET_HTTP_ADDED_MS:.0f} ms", _verdict(added <= TARGET_HTTP_ADDED_MS)),
        (f"p99 at {TARGET_RATE} req/s (ours/student)",
         f"{at_rate['p99']:.2f} ms, errors {at_rate['errors']}", f"<= {P99_BUDGET_MS:.0f} ms",
         _verdict(at_rate["p99"] <= P99_BUDGET_MS and at_rate["errors"] == 0)),
        (f"throughput at p99 <= {P99_BUDGET_MS:.0f} ms vs mlflow", mlflow[0],
         f">= x{TARGET_VS_MLFLOW:.0f}", mlflow[1]),
        ("student / teacher batch-1 latency (e2e p50)", f"x{hot['e2e']:.2f}",
         f"<= {TARGET_STUDENT_TEACHER}", _verdict(hot["e2e"] <= TARGET_STUDENT_TEACHER)),
        ("overload: unscored approvals", str(unscored), "= 0", _verdict(unscored == 0)),
    ]  # fmt: skip
    print("\ntargets (the issue's)")
    for name, figure, target, verdict in targets:
        print(f"  {name:<44} {figure:<34} {target:<10} {verdict}")


def _load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, fewer rates")
    args = parser.parse_args(argv)
    if args.quick:
        scale = Scale([50, 200, TARGET_RATE], 3.0, 2.0, 3.0, 2_000)
    else:
        scale = Scale([50, 200, TARGET_RATE, 1000], 8.0, 5.0, 10.0, 10_000)
    print(f"load average at start (1/5/15 min): {_load_average()} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        home = Path(tmp)
        print("building the world (generating, training, registering, loading the store) ...")
        started = time.perf_counter()
        built = build(home)
        print(
            f"  built in {time.perf_counter() - started:.0f} s; events per requested entity "
            f"in the store: {log_sizes(built)}"
        )
        fixed = fixed_rate(built, home, scale)
        try:
            hot = hot_path(built, home, scale, fixed["sequential"])
            capacity = saturation(built, home, scale)
            unscored = overload(built, home, scale, capacity)
            ours, theirs = held_rates(built, home, scale, fixed)
        finally:
            if fixed["peer"] is not None:
                _stop(fixed["peer"])
        print_targets(fixed, hot, unscored, ours, theirs)
    print(f"load average at end (1/5/15 min): {_load_average()}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--loadgen":
        _loadgen_main(sys.argv[2:])
    else:
        sys.exit(main())
