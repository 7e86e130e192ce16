"""Per-app-key request pacing that can never exceed KIS's per-second limit.

KIS counts the requests of an app key that *arrive* within any one second (§6.1). The pacer holds
``rate`` permits; a permit used by a request comes back one window after that request's reply
arrived. Since a request arrives at the server before its reply reaches us, any two requests on
the same permit arrive more than a window apart, so no window ever holds more than ``rate``
arrivals, whatever the network latency. Throughput is ``rate / (window + latency)``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager


class RequestPacer:
    def __init__(self, rate: int, window: float = 1.0, margin: float = 0.002,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate < 1:
            raise ValueError("rate must be at least 1 request per window")
        self.rate = rate
        self.window = window
        self.margin = margin
        self.clock = clock
        self._free = rate
        self._returns: deque[float] = deque()
        self._lock = asyncio.Lock()
        self._released = asyncio.Event()
        self.acquired = 0
        self.waited_seconds = 0.0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    async def acquire(self) -> None:
        async with self._lock:  # FIFO: waiters are served in arrival order
            started = self.clock()
            while True:
                now = self.clock()
                while self._returns and self._returns[0] <= now:
                    self._returns.popleft()
                    self._free += 1
                if self._free > 0:
                    self._free -= 1
                    self.acquired += 1
                    self.waited_seconds += now - started
                    return
                if self._returns:
                    await asyncio.sleep(self._returns[0] - now)
                else:  # every permit is held by a request still in flight
                    self._released.clear()
                    await self._released.wait()

    def release(self) -> None:
        self._returns.append(self.clock() + self.window + self.margin)
        self._released.set()
