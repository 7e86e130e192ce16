"""Per-app-key request pacing under KIS's per-second limit, paced on *sends*.

KIS counts the requests of an app key that *arrive* within any one second (§6.1); it does not limit
requests in flight. The pacer holds ``rate`` permits. A permit is taken before a request and comes
back ``window + margin`` after that request was *sent* (the moment its headers went on the wire,
reported by httpcore's ``trace`` extension), whether or not its reply has arrived. So no window of
``window + margin`` holds more than ``rate`` sends, and arrivals keep that spacing as long as the
one-way latency of two requests ``rate`` sends apart differs by less than ``margin``; the margin is
a small base plus the spread of recent round trips (an arrival lies between its send and its
reply, so that spread bounds how unevenly requests sent evenly can arrive). Throughput is
``rate / (window + margin)`` whatever the latency (waiting for replies gave ``rate / (window +
latency)``: 88.7 % of the limit at 100 ms).

An idle pacer lets up to ``burst`` requests go at once; beyond that, sends are spaced ``(window +
margin) / rate`` apart (a token bucket in front of the permits). A full window of requests sent at
once queues at the gateway and arrives spread out, and the next window's first requests could
then land within a second of that spread's tail; an even spacing does not pile up. The rate under
saturation is the same either way.

When the gateway refuses a request anyway (``EGW00201``: jitter beyond the margin, or another
process using the same app key), :meth:`RequestPacer.refused` widens the margin for a while.

The client asks for send times only while fewer than half the permits are free (tracing costs a
dozen callbacks a request; far from the limit nothing waits on a permit anyway). A request whose
send time is not reported (not traced, or a transport without httpcore's trace events) keeps its
permit until it completes, and the permit comes back ``window + margin`` after that: the reply
comes after the arrival, so that is safe whatever the latency. A request that failed before
anything was sent (could not connect) gives its permit back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

SEND_EVENTS = frozenset({"http11.send_request_headers.started", "http2.send_request_headers.started"})
MAX_MARGIN = 0.5  # seconds: the widest a run of refusals makes the margin
QUIET_AFTER_REFUSAL = 60.0  # seconds without a refusal before the margin narrows again
DEFAULT_BURST = 5  # requests an idle app key may send at once


class Permit:
    """One request's permit; pass :meth:`trace` as httpx's ``trace`` extension."""

    __slots__ = ("_pacer", "returned", "sent_at", "traced")

    def __init__(self, pacer: RequestPacer) -> None:
        self._pacer = pacer
        self.sent_at: float | None = None
        self.traced = False  # the transport reports its steps
        self.returned = False

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        self.traced = True
        if event in SEND_EVENTS and self.sent_at is None:
            self.sent_at = self._pacer.clock()
            self._give_back(self.sent_at)

    def finish(self) -> None:
        """The exchange is over (reply, error or cancellation)."""
        now = self._pacer.clock()
        if self.sent_at is not None:
            self._pacer.observe(now - self.sent_at)
        if self.returned:
            return
        self.returned = True
        if self.traced and self.sent_at is None:
            self._pacer.give_back_unused()  # never sent
        else:
            self._pacer.give_back(now)  # sent at some moment before now

    def _give_back(self, sent_at: float) -> None:
        self.returned = True
        self._pacer.give_back(sent_at)


class RequestPacer:
    def __init__(self, rate: int, window: float = 1.0, margin: float = 0.01, burst: int = DEFAULT_BURST,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate < 1:
            raise ValueError("rate must be at least 1 request per window")
        self.rate = rate
        self.window = window
        self.base_margin = margin
        self._penalty = 0.0  # added after refusals, for a while
        self._round_trips: deque[float] = deque(maxlen=min(64, max(8, 2 * rate)))
        self.jitter = 0.0  # spread of recent round trips: how unevenly requests may arrive
        self.burst = max(1, min(burst, rate))
        self.clock = clock
        self._free = rate
        self._returns: list[float] = []  # heap: when each permit in its cool-down comes back
        self._tokens = float(self.burst)  # the burst allowance, refilled at rate / span
        self._tokens_at = clock()
        self._lock = asyncio.Lock()
        self._released = asyncio.Event()
        self._last_refusal = float("-inf")
        self.acquired = 0
        self.refusals = 0
        self.waited_seconds = 0.0

    @property
    def margin(self) -> float:
        """Slack for arrival-time differences: the base, the spread of recent round trips (a
        request's arrival lies between its send and its reply) and any refusal penalty."""
        return min(MAX_MARGIN, self.base_margin + self.jitter + self._penalty)

    @property
    def crowded(self) -> bool:
        """Fewer than half the permits are free: send times are worth tracing (away from the limit
        a permit held until its reply, the untraced fallback, costs nothing, and tracing costs a
        dozen callbacks a request)."""
        return self._free * 2 < self.rate

    @property
    def span(self) -> float:
        """The spacing kept between a send and the send ``rate`` permits later."""
        return self.window + self.margin

    def observe(self, round_trip: float) -> None:
        """A request's send → reply time."""
        trips = self._round_trips
        trips.append(round_trip)
        self.jitter = max(trips) - min(trips)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Permit]:
        permit = await self.acquire()
        try:
            yield permit
        finally:
            permit.finish()

    async def acquire(self) -> Permit:
        async with self._lock:  # FIFO: waiters are served in arrival order
            started = self.clock()
            waited_for_permit = False
            while True:
                now = self.clock()
                if self._penalty and now - self._last_refusal > QUIET_AFTER_REFUSAL:
                    self._penalty = 0.0
                returns = self._returns
                while returns and returns[0] <= now:
                    heapq.heappop(returns)
                    self._free += 1
                spacing = self.span / self.rate
                self._tokens = min(float(self.burst), self._tokens + (now - self._tokens_at) / spacing)
                self._tokens_at = now
                if waited_for_permit:  # a saturated pacer does not save up a burst while it waits
                    self._tokens = min(self._tokens, 1.0)
                    waited_for_permit = False
                if self._free > 0 and self._tokens >= 1.0:
                    self._free -= 1
                    self._tokens -= 1.0
                    self.acquired += 1
                    self.waited_seconds += now - started
                    return Permit(self)
                self._released.clear()
                if self._free > 0:  # the next burst token
                    await asyncio.sleep((1.0 - self._tokens) * spacing)
                elif returns:  # the earliest cool-down ends, or a request in flight reports its send
                    waited_for_permit = True
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(returns[0] - now):
                            await self._released.wait()
                else:  # every permit is held by a request not yet sent
                    waited_for_permit = True
                    await self._released.wait()

    def give_back(self, sent_at: float) -> None:
        """A permit's request was sent at ``sent_at``: it can be used again one span later."""
        heapq.heappush(self._returns, sent_at + self.span)
        self._released.set()

    def give_back_unused(self) -> None:
        """A permit's request was never sent: it is free at once, and so is its share of the burst."""
        heapq.heappush(self._returns, self.clock())
        self._tokens = min(float(self.burst), self._tokens + 1.0)
        self._released.set()

    def refused(self) -> None:
        """KIS refused a request for the rate (EGW00201) despite the pacing: widen the margin."""
        self.refusals += 1
        self._last_refusal = self.clock()
        self._penalty = min(MAX_MARGIN, self._penalty * 2 + 0.05)
