"""Micro-batching: concurrent single requests share one feature read and one model call.

One worker thread takes whatever is queued the moment it is free (up to `max_size`), so a
lone request never waits for company; under load, requests that queued while the model was
busy go in together. `max_wait_s > 0` trades latency for bigger batches by waiting for more.
`max_size=1` turns batching off (one model call per request), for comparison.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def _deliver(futures: Sequence[asyncio.Future], results: Sequence[Any] | BaseException) -> None:
    for i, future in enumerate(futures):
        if future.done():  # the caller timed out and moved on
            continue
        if isinstance(results, BaseException):
            future.set_exception(results)
        else:
            future.set_result(results[i])


class MicroBatcher(Generic[T, R]):
    """`process(items) -> results` runs on the worker thread, one call per batch."""

    def __init__(
        self,
        process: Callable[[list[T]], list[R]],
        max_size: int = 64,
        max_wait_s: float = 0.0,
        on_batch: Callable[[int], None] | None = None,
        name: str = "micro-batcher",
    ) -> None:
        self.process = process
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self._on_batch = on_batch or (lambda size: None)
        self._queue: deque[tuple[T, asyncio.Future, asyncio.AbstractEventLoop]] = deque()
        self._ready = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def submit(self, item: T) -> asyncio.Future:
        """Queue `item`; the returned future resolves (on the caller's loop) to its result."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._ready:
            self._queue.append((item, future, loop))
            self._ready.notify()
        return future

    def _take(self) -> list[tuple[T, asyncio.Future, asyncio.AbstractEventLoop]] | None:
        with self._ready:
            while not self._queue and not self._stopping:
                self._ready.wait()
            if not self._queue:
                return None
            if self.max_wait_s > 0 and len(self._queue) < self.max_size:
                deadline = time.monotonic() + self.max_wait_s
                while len(self._queue) < self.max_size and not self._stopping:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._ready.wait(left)
            take = min(self.max_size, len(self._queue))
            return [self._queue.popleft() for _ in range(take)]

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            live = [entry for entry in batch if not entry[1].done()]
            if not live:
                continue
            self._on_batch(len(live))
            try:
                results: list[Any] | BaseException = self.process([e[0] for e in live])
            except Exception as error:  # the callers decide how to degrade
                results = error
            by_loop: dict[asyncio.AbstractEventLoop, tuple[list, list]] = {}
            for i, (_, future, loop) in enumerate(live):
                futures, picked = by_loop.setdefault(loop, ([], []))
                futures.append(future)
                if not isinstance(results, BaseException):
                    picked.append(results[i])
            for loop, (futures, picked) in by_loop.items():
                payload = results if isinstance(results, BaseException) else picked
                with contextlib.suppress(RuntimeError):  # that loop has closed (shutdown)
                    loop.call_soon_threadsafe(_deliver, futures, payload)
