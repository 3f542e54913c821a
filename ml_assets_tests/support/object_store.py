"""A local S3 for the tests and the bench: moto's server mode on a loopback port, with every
request it answers read back from its log, so round trips are counted by the server itself
(whichever client made them: s3fs for the warehouse, boto3 inside MLflow)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote

import httpx

from ml_assets.serving.local_server import free_port

BUCKET = "ml-assets-test"
# werkzeug's access log: `127.0.0.1 - - [date] "PUT /bucket/key HTTP/1.1" 200 -`, coloured.
REQUEST = re.compile(
    r'"(?:\x1b\[[0-9;]*m)*(GET|PUT|HEAD|POST|DELETE) (\S+) HTTP/[0-9.]+(?:\x1b\[[0-9;]*m)*" (\d+)'
)


@dataclass(frozen=True)
class S3Request:
    method: str
    target: str  # path and query, e.g. /bucket/warehouse/t/date=2026-03-01/data.parquet
    status: int

    @property
    def kind(self) -> str:
        """PUT, GET (an object), GET 404 (an absent one), LIST, HEAD, ..."""
        if self.method == "GET" and "list-type" in self.target:
            return "LIST"
        return f"{self.method} 404" if self.status == 404 else self.method

    @property
    def key(self) -> str:
        """The object key or listing prefix under the bucket (query left out)."""
        path, _, query = self.target.partition("?")
        key = path.removeprefix(f"/{BUCKET}").lstrip("/")
        return unquote(key) or parse_qs(query).get("prefix", [""])[0]


@dataclass
class LocalS3:
    """A running moto server: its endpoint, the test bucket, and its request log."""

    endpoint: str
    log: Path
    process: subprocess.Popen

    @property
    def env(self) -> dict[str, str]:
        """The variables botocore (s3fs) and MLflow's S3 store read to reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def url(self, prefix: str) -> str:
        return f"s3://{BUCKET}/{prefix}"

    def mark(self) -> int:
        """A position in the log; `requests(since=mark)` counts only what came after."""
        return len(self.requests())

    def requests(self, since: int = 0) -> list[S3Request]:
        lines = self.log.read_text(encoding="utf-8", errors="replace")
        found = [S3Request(m[1], m[2], int(m[3])) for m in REQUEST.finditer(lines)]
        return found[since:]


def count_by_method(requests: list[S3Request]) -> Counter[str]:
    return Counter(r.method for r in requests)


def round_trips(requests: list[S3Request], prefix: str) -> tuple[int, Counter[str]]:
    """Objects written under `prefix`, and the requests under it by kind."""
    under = [r for r in requests if r.key.startswith(prefix)]
    return sum(r.method == "PUT" for r in under), Counter(r.kind for r in under)


def per_partition(written: int, kinds: Counter[str]) -> str:
    """`28.6 requests per partition written (PUT 1.00, GET 2.10, ...)`."""
    total = sum(kinds.values())
    parts = ", ".join(f"{kind} {count / written:.2f}" for kind, count in sorted(kinds.items()))
    return f"{total / written:.2f} per partition written ({total} for {written}: {parts})"


@contextlib.contextmanager
def running_moto(bucket: str = BUCKET) -> Iterator[LocalS3]:
    """`moto_server` on a free loopback port in its own process group, with `bucket`
    created; stopped (the whole group) and its log deleted when the block ends."""
    folder = Path(tempfile.mkdtemp(prefix="ml_assets_moto_"))
    log = folder / "moto.log"
    port = free_port()
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{endpoint}/moto-api/", timeout=2).status_code < 500:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        server = LocalS3(endpoint, log, process)
        _create_bucket(server, bucket)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _create_bucket(server: LocalS3, bucket: str) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=bucket)


def forget_s3_clients() -> None:
    """Drop cached s3fs filesystems: they keep the endpoint they were created with."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
