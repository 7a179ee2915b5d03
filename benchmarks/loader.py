"""An open-loop, rate-limited HTTP loader: wrk cannot pace requests against gunicorn sync workers.

wrk's `delay()` hook waits *after* reconnecting, so with gunicorn's sync workers (one request
per connection) an idle, already-accepted connection would block a worker for the whole delay,
and wrk2 (the rate-limited fork) is not packaged by Debian. This loader sends request i at
t0 + i/rate on a fresh connection whatever happened to earlier ones, and measures latency from
the *scheduled* send time to the end of the response, so a stalled server is not hidden
(no coordinated omission).
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.stats import percentile


@dataclass(frozen=True)
class PacedResult:
    """What a paced run measured."""

    offered_rate: float
    achieved_rate: float
    latencies_ms: tuple[float, ...]  # sorted, from scheduled send to response end
    statuses: dict[int, int]
    failures: int
    max_send_lag_ms: float
    p99_send_lag_ms: float

    @property
    def p50_ms(self) -> float:
        """Return the median latency."""
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        """Return the 99th percentile latency."""
        return percentile(self.latencies_ms, 99)


class _Exchange(asyncio.Protocol):
    """Send one request on a fresh connection and note when the response has ended."""

    def __init__(self, payload: bytes, done: asyncio.Future[bytes]) -> None:
        self.payload = payload
        self.done = done
        self.head = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(self.payload)

    def data_received(self, data: bytes) -> None:
        if len(self.head) < 16:
            self.head += data[:16]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if exc is None and self.head.startswith(b"HTTP/1."):
                self.done.set_result(self.head)
            else:
                self.done.set_exception(exc or ConnectionError("no HTTP response"))


async def _paced(
    host: str, port: int, payloads: Sequence[bytes], rate: float, timeout: float
) -> PacedResult:
    loop = asyncio.get_running_loop()
    interval = 1.0 / rate
    start = loop.time() + 0.05
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    failures = 0
    lags: list[float] = []
    last_end = start

    async def exchange(payload: bytes, scheduled: float) -> None:
        nonlocal failures, last_end
        done: asyncio.Future[bytes] = loop.create_future()
        try:
            await loop.create_connection(lambda: _Exchange(payload, done), host, port)
            head = await asyncio.wait_for(done, timeout)
        except (OSError, TimeoutError, ConnectionError):
            failures += 1
            return
        end = loop.time()
        last_end = max(last_end, end)
        latencies.append((end - scheduled) * 1000.0)
        statuses[int(head[9:12])] += 1

    tasks = []
    for index, payload in enumerate(payloads):
        scheduled = start + index * interval
        wait = scheduled - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        lags.append(loop.time() - scheduled)
        tasks.append(loop.create_task(exchange(payload, scheduled)))
    await asyncio.gather(*tasks)
    elapsed = max(last_end - start, 1e-9)
    return PacedResult(
        offered_rate=rate,
        achieved_rate=len(latencies) / elapsed,
        latencies_ms=tuple(sorted(latencies)),
        statuses=dict(statuses),
        failures=failures,
        max_send_lag_ms=max(lags) * 1000.0,
        p99_send_lag_ms=percentile(sorted(lags), 99) * 1000.0,
    )


def paced_load(
    host: str, port: int, payloads: Sequence[bytes], rate: float, timeout: float = 10.0
) -> PacedResult:
    """Send every payload once, `rate` per second on a fixed schedule; measure each response."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    # A full collection in the middle of a run would stall the schedule for tens of
    # milliseconds and be counted as the server's latency: collect now, then not at all.
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return asyncio.run(_paced(host, port, payloads, rate, timeout))
    finally:
        gc.enable()
        gc.unfreeze()
