"""The gateway in front of the scoring routes: API key, per-key rate limit, body size.

A plain ASGI middleware, so a refused request costs no body parsing and no route work, and
an unauthenticated client learns nothing about the body it sent. Keys are compared with
`hmac.compare_digest` against every configured key (no early exit), so timing does not
reveal how much of a key was right.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.exceptions import HTTPException

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROTECTED_PREFIXES = ("/predict", "/admin", "/review")
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
    """ASGI middleware; `on_refused(status)` feeds the metrics."""

    def __init__(
        self,
        app: ASGIApp,
        api_keys: Sequence[str],
        limiter: TokenBucket,
        max_body_bytes: int,
        on_refused: Callable[[str, int], None] | None = None,
    ) -> None:
        self.app = app
        self.api_keys = tuple(api_keys)
        self.limiter = limiter
        self.max_body_bytes = max_body_bytes
        self.on_refused = on_refused or (lambda path, status: None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIXES):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        key = presented_key(scope)
        if self.api_keys:
            if not key:
                self.on_refused(path, 401)
                await _refuse(send, 401, "missing API key: send it in the X-API-Key header",
                              [(b"www-authenticate", b"ApiKey")])  # fmt: skip
                return
            if not key_matches(key, self.api_keys):
                self.on_refused(path, 403)
                await _refuse(send, 403, "API key not accepted")
                return
        bucket = hashlib.sha256((key or "anonymous").encode()).hexdigest()[:16]
        wait = self.limiter.take(bucket)
        if wait > 0:
            self.on_refused(path, 429)
            retry = str(max(1, round(wait))).encode()
            await _refuse(send, 429, "rate limit exceeded for this API key; retry later",
                          [(b"retry-after", retry)])  # fmt: skip
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
