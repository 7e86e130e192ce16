"""Server-side per-app-key request limit: a sliding one-second window, as KIS counts (§6.1)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable


class SlidingWindowThrottle:
    def __init__(self, limit: int, clock: Callable[[], float], window: float = 1.0) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self.refused = 0

    def allow(self, key: str) -> bool:
        now = self.clock()
        hits = self._hits.setdefault(key, deque())
        while hits and now - hits[0] >= self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            self.refused += 1
            return False
        hits.append(now)
        return True
