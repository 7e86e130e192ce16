"""What the benchmarks share: percentiles, an event-loop lag probe, throw-away databases."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

PG_BASE = "postgresql://root@127.0.0.1:5432/test"


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank) of ``values``; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


class LoopLag:
    """How late the event loop runs a 1 ms timer: the longest stall of everything else on the loop.

    Beside each lag, the CPU time the loop's thread spent meanwhile (``time.thread_time``): on a busy
    machine a stall can be the scheduler's (the process waited for a core, or on I/O), which costs the
    loop no CPU; a stall of our own making (a long callback) costs about its length in CPU."""

    def __init__(self, period: float = 0.001) -> None:
        self.period = period
        self.lags: list[float] = []
        self.cpu: list[float] = []  # the loop thread's CPU time during each probe's wait
        self.at: list[float] = []  # perf_counter at each probe's start
        self._task: asyncio.Task[None] | None = None

    def start(self) -> LoopLag:
        self._task = asyncio.create_task(self._run(), name="loop-lag")
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def reset(self) -> None:
        self.lags.clear()
        self.cpu.clear()
        self.at.clear()

    async def _run(self) -> None:
        while True:
            t0, c0 = time.perf_counter(), time.thread_time()
            await asyncio.sleep(self.period)
            self.lags.append(max(0.0, time.perf_counter() - t0 - self.period))
            self.cpu.append(time.thread_time() - c0)
            self.at.append(t0)

    def summary(self) -> str:
        over = sum(lag > 0.010 for lag in self.lags)
        busy = [min(lag, cpu) for lag, cpu in zip(self.lags, self.cpu, strict=True)]  # the part the loop spent working
        return (f"loop lag p99 {ms(pct(self.lags, 0.99))}, max {ms(max(self.lags, default=0.0))}, "
                f"{over} stall(s) over 10 ms in {len(self.lags):,} probes; of the loop's own CPU work: "
                f"max {ms(max(busy, default=0.0))}, {sum(b > 0.010 for b in busy)} over 10 ms")


def postgres_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            pass
        import psycopg

        with psycopg.connect(PG_BASE, connect_timeout=2):
            return True
    except (OSError, ImportError):
        return False
    except psycopg.Error:
        return False


@contextlib.asynccontextmanager
async def scratch_database(backend: str) -> AsyncIterator[str]:
    """A database URL for one run: a temporary SQLite file, or a fresh PostgreSQL schema (dropped after);
    a URL is used as it is."""
    if "://" in backend:
        yield backend
        return
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.sqlite3"
        return
    import psycopg

    schema = f"bench_{secrets.token_hex(5)}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def backends() -> list[str]:
    return ["sqlite", "postgres"] if postgres_answers() else ["sqlite"]


def file_size(path: str | Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
