"""Micro-batching: concurrent single requests share one feature read and one model call.

One worker thread takes whatever is queued the moment it is free (up to `max_size`), so a
lone request never waits for company; under load, requests that queued while the model was
busy go in together. `max_wait_s > 0` trades latency for bigger batches by waiting for more.
`max_size=1` turns batching off (one model call per request), for comparison.

The queue is bounded: at most `max_queue` items wait for the worker (items being scored do
not count). `submit_many` admits a request's items all together or raises `Overloaded` at
once, so a saturated endpoint answers 503 in microseconds instead of queueing work it cannot
finish before the caller's deadline.
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
Entry = tuple[Any, asyncio.Future, asyncio.AbstractEventLoop]


class Overloaded(RuntimeError):
    """The queue cannot take the items: the caller answers 503 with `Retry-After`."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def _deliver(futures: Sequence[asyncio.Future], results: Sequence[Any] | BaseException) -> None:
    for i, future in enumerate(futures):
        if future.done():  # the caller timed out and moved on
            continue
        if isinstance(results, BaseException):
            future.set_exception(results)
        else:
            future.set_result(results[i])


class MicroBatcher(Generic[T, R]):
    """`process(items) -> results` runs on the worker thread, one call per batch; at most
    `max_queue` items wait, and `Overloaded.retry_after_s` is `retry_after_s`."""

    def __init__(
        self,
        process: Callable[[list[T]], list[R]],
        max_size: int = 64,
        max_wait_s: float = 0.0,
        on_batch: Callable[[int], None] | None = None,
        name: str = "micro-batcher",
        *,
        max_queue: int = 1024,
        retry_after_s: float = 1.0,
    ) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue={max_queue} must be at least 1")
        self.process = process
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.retry_after_s = retry_after_s
        self._on_batch = on_batch or (lambda size: None)
        self._queue: deque[Entry] = deque()
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

    @property
    def queued(self) -> int:
        """Items waiting for the worker (including any whose caller gave up)."""
        return len(self._queue)

    def submit(self, item: T) -> asyncio.Future:
        """Queue `item`; the returned future resolves (on the caller's loop) to its result.
        Raises Overloaded when the queue is full."""
        return self.submit_many([item])[0]

    def submit_many(self, items: Sequence[T]) -> list[asyncio.Future]:
        """Queue all `items` or none: one future per item, in order, or Overloaded when
        `queued + len(items) > max_queue` (nothing is queued then)."""
        loop = asyncio.get_running_loop()
        with self._ready:
            if len(self._queue) + len(items) > self.max_queue:
                self._drop_abandoned()
            if len(self._queue) + len(items) > self.max_queue:
                raise Overloaded(self._refusal(len(items)), self.retry_after_s)
            futures = [loop.create_future() for _ in items]
            self._queue.extend(zip(items, futures, [loop] * len(items), strict=True))
            self._ready.notify()
        return futures

    def _refusal(self, count: int) -> str:
        if count > self.max_queue:
            return (f"{count} transactions in one request exceed the scoring queue "
                    f"({self.max_queue}); split the batch")  # fmt: skip
        return (f"the scoring queue is full ({len(self._queue)} of {self.max_queue} waiting); "
                "retry later")  # fmt: skip

    def _drop_abandoned(self) -> None:
        """Forget entries whose caller already gave up (timed out): they hold no one's place.
        Called with the lock held, only when the queue looks full."""
        if any(entry[1].done() for entry in self._queue):
            self._queue = deque(entry for entry in self._queue if not entry[1].done())

    def _take(self) -> list[Entry] | None:
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
            batch: list[Entry] = []
            while self._queue and len(batch) < self.max_size:
                entry = self._queue.popleft()
                if not entry[1].done():  # skip callers that gave up
                    batch.append(entry)
            return batch

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
