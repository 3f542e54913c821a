"""The gateway in front of the scoring routes: API key, failed-auth lockout per client
address, per-key rate limit, body size.

A plain ASGI middleware, so a refused request costs no body parsing and no route work, and
an unauthenticated client learns nothing about the body it sent. Keys are compared with
`hmac.compare_digest` against every configured key (no early exit), so timing does not
reveal how much of a key was right. A client address that failed authentication
`auth_failures_per_min` times within a minute gets 429 for everything it sends to the
protected routes until the oldest of those failures is a minute old: refusing it before the
key is looked at is what stops guessing (a right guess would otherwise still show).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.exceptions import HTTPException

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROTECTED_PREFIXES = ("/predict", "/events", "/admin", "/review", "/rag")
KEY_HEADER = b"x-api-key"


class TokenBucket:
    """Per-key token buckets: `rate` requests a second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 if allowed, else seconds until a token is available."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate if self.rate > 0 else 60.0


class FailureWindow:
    """Failed authentications per client address in a sliding window of `window_s`.

    Memory is bounded: at most `limit` timestamps per address and at most `max_clients`
    addresses, the least recently failing one forgotten first. `limit <= 0` disables it.
    """

    def __init__(
        self,
        limit: int,
        window_s: float = 60.0,
        max_clients: int = 65_536,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_clients = max_clients
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._failures)

    def blocked(self, client: str) -> float:
        """0 if `client` may try, else seconds until its oldest counted failure expires."""
        if self.limit <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            failures = self._failures.get(client)
            if failures is None:
                return 0.0
            while failures and failures[0] <= now - self.window_s:
                failures.popleft()
            if not failures:
                del self._failures[client]
                return 0.0
            if len(failures) < self.limit:
                return 0.0
            return failures[0] + self.window_s - now

    def record(self, client: str) -> None:
        """One more failed authentication from `client`."""
        if self.limit <= 0:
            return
        now = self._clock()
        with self._lock:
            failures = self._failures.get(client)
            if failures is None:
                failures = self._failures[client] = deque(maxlen=self.limit)
            else:
                self._failures.move_to_end(client)
            failures.append(now)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)


def client_address(scope: Scope) -> str:
    """The peer address (uvicorn puts the X-Forwarded-For client here when the request
    comes from a trusted proxy: `--forwarded-allow-ips`)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def key_matches(candidate: str, keys: Sequence[str]) -> bool:
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate.encode(), key.encode())
    return matched


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def presented_key(scope: Scope) -> str | None:
    """The key from `X-API-Key`, or from `Authorization: Bearer <key>`."""
    key = _header(scope, KEY_HEADER)
    if key is None:
        auth = _header(scope, b"authorization")
        if auth and auth.lower().startswith("bearer "):
            key = auth[7:].strip()
    return key


def _seconds(wait: float) -> bytes:
    """A Retry-After value: whole seconds, at least 1, never earlier than `wait`."""
    return str(max(1, math.ceil(wait))).encode()


async def _refuse(
    send: Send, status: int, detail: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(HTTPException):
    """Raised while the body streams in; an HTTPException so the framework answers 413
    instead of wrapping it as a body-parsing error."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes; split the batch")


class Gateway:
    """ASGI middleware; `on_refused(path, status)` feeds the metrics."""

    def __init__(
        self,
        app: ASGIApp,
        api_keys: Sequence[str],
        limiter: TokenBucket,
        max_body_bytes: int,
        on_refused: Callable[[str, int], None] | None = None,
        auth_failures: FailureWindow | None = None,
    ) -> None:
        self.app = app
        self.api_keys = tuple(api_keys)
        self.limiter = limiter
        self.max_body_bytes = max_body_bytes
        self.on_refused = on_refused or (lambda path, status: None)
        self.auth_failures = auth_failures if auth_failures is not None else FailureWindow(0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIXES):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        key = presented_key(scope)
        if self.api_keys:
            client = client_address(scope)
            locked = self.auth_failures.blocked(client)
            if locked > 0:
                self.on_refused(path, 429)
                await _refuse(send, 429, "too many failed authentications from this address; "
                              "retry later", [(b"retry-after", _seconds(locked))])  # fmt: skip
                return
            if not key:
                self.auth_failures.record(client)
                self.on_refused(path, 401)
                await _refuse(send, 401, "missing API key: send it in the X-API-Key header",
                              [(b"www-authenticate", b"ApiKey")])  # fmt: skip
                return
            if not key_matches(key, self.api_keys):
                self.auth_failures.record(client)
                self.on_refused(path, 403)
                await _refuse(send, 403, "API key not accepted")
                return
        bucket = hashlib.sha256((key or "anonymous").encode()).hexdigest()[:16]
        wait = self.limiter.take(bucket)
        if wait > 0:
            self.on_refused(path, 429)
            await _refuse(send, 429, "rate limit exceeded for this API key; retry later",
                          [(b"retry-after", _seconds(wait))])  # fmt: skip
            return
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            self.on_refused(path, 413)
            await _refuse(send, 413, f"request body over {self.max_body_bytes} bytes; "
                          "split the batch")  # fmt: skip
            return
        await self._call_limited(scope, receive, send)

    async def _call_limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count streamed body bytes too: a chunked body has no Content-Length to check."""
        received = 0
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            self.on_refused(scope["path"], 413)
            await _refuse(send, 413, f"request body over {self.max_body_bytes} bytes")
