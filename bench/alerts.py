"""Alert engine under load: 100,000 alerts, 2,000 ticks/s over 40 symbols from the simulator's
WebSocket (``chatbot sim`` in its own process), with a burst (10,000 alerts crossed by one tick)
and a feed reconnect in the measured window; on SQLite and on PostgreSQL when it answers, three
rounds by default (the spread is part of the figure).

Figures: tick → fired and push committed (outbox row written, the loop told) p50/p99 outside the
burst's drain, how long the burst took to drain, the event loop's lag (a 1 ms timer) with each
stall over 10 ms split into the loop's own CPU work, its wait for a core (Linux schedstat) and the
rest (blocked: the GIL, I/O). Where the time went: every crossing over 15 ms is split into stages
(waiting behind a burst chunk or another chunk, the worker's wake-up, the write lock and the queue
to the database, BEGIN, the statements, COMMIT, back to the loop) and each fire transaction's
wall time into the driver thread's CPU, its wait for a core and the rest. Anchors, same run: a
bare one-row commit on the same database, and the same engine, feed and load with a no-op fire
path (no database: the floor this machine gives tick → worker).

The measured window starts only once the engine has nothing pending (the first ticks fire the
alerts set closest to the price): the figures do not depend on whether a warm-up drained.

    python -m bench.alerts [--db sqlite|postgres|URL] [--runs 3] [--mode engine|noop|sqlalchemy]

BENCH_DEBUG=1 adds the loop's stalls, the checkpoints, latency by the size of the crossing each alert came
with, the slowest alerts' transactions stage by stage and, on SQLite, what each wrote and whether it started
the WAL over.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import gc
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import delete, event, insert, select

from bench.common import LoopLag, backends, ms, pct, scratch_database
from chatbot.alerts import engine as enginemod
from chatbot.alerts.engine import AlertEngine
from chatbot.kis.frames import Tick
from chatbot.kis.realtime import RealtimeClient
from chatbot.kis.rest import KisEndpoint, KisRestClient
from chatbot.storage import Database
from chatbot.storage import db as dbmod
from chatbot.storage.tables import AlertRow, OutboxRow
from chatbot.storage.types import utcnow
from tests.helpers import new_credentials

SYMBOLS = 40
STORM = 10_000
FIRE_CHUNK = 0  # 0: the engine's own; --fire-chunk N tries another
PIPELINE = 0  # 0: the engine's own; --pipeline N tries another (SQLite)


async def _start_simulator(port: int) -> asyncio.subprocess.Process:
    """``chatbot sim`` in its own process: 40 subscribed symbols × 50 steps/s = 2,000 ticks/s."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatbot", "sim", "--port", str(port), "--seed", "7", "--tick-interval", "0.02",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    for _ in range(3):
        if not await asyncio.wait_for(proc.stdout.readline(), 30):  # it exited: most likely a port in use
            raise RuntimeError(f"the simulator did not start on port {port} (in use by another process?)")
    return proc


def _alert(i: int, code: str, direction: str, threshold: int, price: int) -> dict[str, Any]:
    now = utcnow()
    return {"owner_id": 1 + i % 500, "chat_id": 1 + i % 500, "language": "ko", "code": code, "name": code,
            "direction": direction, "threshold": threshold, "reference_price": price, "percent": None,
            "repeat": False, "cooldown_seconds": 600, "status": "armed", "fired_count": 0, "created_at": now,
            "updated_at": now}


async def bare_commits(db: Database, n: int = 300) -> list[float]:
    """The anchor: one outbox row inserted and committed, n times (then removed)."""
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        async with db.engine.begin() as conn:
            await conn.execute(insert(OutboxRow), [{
                "dedupe_key": f"anchor:{i}", "owner_id": 1, "chat_id": 1, "kind": "alert", "status": "dead",
                "attempts": 0, "created_at": utcnow(), "payload": {"anchor": i}}])
        times.append(time.perf_counter() - t0)
    async with db.engine.begin() as conn:
        await conn.execute(delete(OutboxRow).where(OutboxRow.dedupe_key.like("anchor:%")))  # type: ignore[attr-defined]
    return times


# -- where the time goes: stages of each crossing, the threads' waits for a core -------------------------


def _schedstat_reader() -> Callable[[], tuple[int, int]]:
    """The calling thread's (CPU ns, ns waiting on the run queue for a core) from Linux's schedstat;
    (0, 0) where it is not available."""
    path = "/proc/thread-self/schedstat"
    try:
        with open(path, "rb") as f:
            f.read()
    except OSError:
        return lambda: (0, 0)

    def read() -> tuple[int, int]:
        fd = os.open(path, os.O_RDONLY)
        try:
            cpu, runq, _ = os.read(fd, 100).split()
        finally:
            os.close(fd)
        return int(cpu), int(runq)

    return read


SCHEDSTAT = _schedstat_reader()


class LoopProbe(LoopLag):
    """:class:`LoopLag` with, beside each lag, how long the loop's thread waited on the run queue for a
    core (Linux schedstat): a lag is the loop's own CPU work, a wait for a core (the machine's
    scheduler), or the rest (blocked: the GIL held by another thread, or I/O)."""

    def __init__(self, period: float = 0.001) -> None:
        super().__init__(period)
        self.runq: list[float] = []
        self.runq_at: list[tuple[float, int]] = []  # (perf_counter, cumulative run-queue ns), each probe

    def reset(self) -> None:
        super().reset()
        self.runq.clear()
        self.runq_at.clear()

    async def _run(self) -> None:
        while True:
            t0, c0, (_, q0) = time.perf_counter(), time.thread_time(), SCHEDSTAT()
            await asyncio.sleep(self.period)
            t1, (_, q1) = time.perf_counter(), SCHEDSTAT()
            self.lags.append(max(0.0, t1 - t0 - self.period))
            self.cpu.append(time.thread_time() - c0)
            self.runq.append((q1 - q0) / 1e9)
            self.at.append(t0)
            self.runq_at.append((t1, q1))

    def runq_between(self, start: float, end: float) -> float:
        """Seconds the loop's thread waited for a core between two perf_counter times (probe resolution)."""
        times = [t for t, _ in self.runq_at]
        i, j = bisect.bisect_left(times, start), bisect.bisect_left(times, end)
        if not self.runq_at or i >= len(times):
            return 0.0
        j = min(j, len(times) - 1)
        return max(0.0, (self.runq_at[j][1] - self.runq_at[max(i - 1, 0)][1]) / 1e9)

    def split(self) -> dict[str, float]:
        """Each stall over 10 ms split: the loop's own CPU work, waiting for a core, the rest."""
        over = [(lag, cpu, rq) for lag, cpu, rq in zip(self.lags, self.cpu, self.runq, strict=True) if lag > 0.010]
        own = [min(lag, cpu) for lag, cpu, _ in over]
        runq = [min(lag - min(lag, cpu), rq) for lag, cpu, rq in over]
        return {"stalls": len(over), "lag_max": max(self.lags, default=0.0), "lag_p99": pct(self.lags, 0.99),
                "own_max": max((min(lag, cpu) for lag, cpu in zip(self.lags, self.cpu, strict=True)), default=0.0),
                "own_over": sum(min(lag, cpu) > 0.010 for lag, cpu in zip(self.lags, self.cpu, strict=True)),
                "stall_s": sum(lag for lag, _, _ in over), "own_s": sum(own), "runq_s": sum(runq),
                "rest_s": sum(lag for lag, _, _ in over) - sum(own) - sum(runq)}


@dataclass
class ChunkTrace:
    """One fire transaction's timeline (perf_counter seconds)."""

    ids: list[tuple[int, float]]  # (alert id, tick seen)
    taken: float  # the chunk formed (the worker's _fire entered)
    storm: int  # storm alerts in it
    call: float = 0.0  # the database call made
    start: float = 0.0  # SQLite: the driver's thread began the transaction; PostgreSQL: statements began
    begun: float = 0.0  # SQLite: BEGIN IMMEDIATE returned
    worked: float = 0.0  # statements done
    committed: float = 0.0  # COMMIT returned (SQLite: on the driver's thread)
    back: float = 0.0  # the event loop resumed the worker after the commit
    wake_runq: float = 0.0  # driver thread: s waiting for a core since its previous transaction (its wake-up)
    tx_runq: float = 0.0  # driver thread: s waiting for a core inside the transaction
    tx_cpu: float = 0.0  # driver thread: CPU s inside the transaction
    checkpoint: bool = False  # a WAL checkpoint ran meanwhile
    sizes: list[int] | None = None  # per alert: how many alerts its tick crossed
    wal: tuple[int, int, int, int] = (0, 0, 0, 0)  # SQLite: the WAL's (restart count, bytes) before and after
    written: int = 0  # SQLite, BENCH_DEBUG: bytes the driver's thread wrote in the transaction


class Tracer:
    """Stage timings of every fire transaction (bench-only wrappers around the engine and database)."""

    def __init__(self, engine: AlertEngine, storm_ids: set[int], mode: str) -> None:
        self.engine, self.storm_ids, self.mode = engine, storm_ids, mode
        self.chunks: list[ChunkTrace] = []
        self.checkpoints: list[tuple[float, float]] = []
        self.by_first: dict[int, ChunkTrace] = {}  # a chunk's first alert id → its trace
        self.driver_last_runq: list[int] = []
        self.wal_path = ""  # SQLite: the WAL file, for the restart count in its header (BENCH_DEBUG)
        db = engine.db
        original_take, original_committed = engine._take, engine._committed

        def take(limit: int) -> Any:
            chunk = original_take(limit)
            if chunk:
                trace = ChunkTrace([(alert_id, crossing.seen_at) for alert_id, crossing in chunk], time.perf_counter(),
                                   sum(alert_id in storm_ids for alert_id, _ in chunk),
                                   sizes=[crossing.size for _, crossing in chunk])
                self.by_first[chunk[0][0]] = trace
                self.chunks.append(trace)
            return chunk

        async def committed(chunk: Any, fired: Any) -> None:
            trace = self.by_first.get(chunk[0][0]) if chunk else None
            if trace is not None:
                trace.back = time.perf_counter()
                trace.call = trace.call or trace.start
            await original_committed(chunk, fired)

        engine._take = take  # type: ignore[method-assign]
        engine._committed = committed  # type: ignore[method-assign]
        if mode == "noop":  # no database: a chunk counts as committed the moment it is formed
            engine.pipeline = 1

            async def fire(chunk: Any) -> None:
                trace = self.by_first[chunk[0][0]]
                trace.call = trace.start = trace.begun = trace.worked = trace.committed = trace.taken
                await committed(chunk, (0, set()))
                engine.fired += len(chunk)

            engine._fire = fire  # type: ignore[method-assign]
        elif engine.fire_on_driver:
            self.tx = _timed_transaction_for(self)
            dbmod._immediate_transaction = self.tx  # type: ignore[attr-defined]
        else:
            original_fire_alerts = enginemod.fire_alerts
            original_write_connection = db.write_connection

            async def fire_alerts(conn: Any, crossings: Any, now: Any) -> Any:
                trace = self.by_first.get(next(iter(crossings))) if crossings else None
                if trace is not None:
                    trace.start = trace.begun = time.perf_counter()
                result = await original_fire_alerts(conn, crossings, now)
                if trace is not None:  # PostgreSQL's one statement commits itself (autocommit)
                    trace.worked = trace.committed = time.perf_counter()
                return result

            @contextlib.asynccontextmanager
            async def write_connection() -> Any:  # SQLite through SQLAlchemy: COMMIT comes at the block's end
                async with original_write_connection() as conn:
                    yield conn
                    started = time.perf_counter()
                if self.chunks and self.chunks[-1].worked and not self.chunks[-1].back:
                    self.chunks[-1].committed = time.perf_counter()
                    self.chunks[-1].worked = min(self.chunks[-1].worked, started)

            enginemod.fire_alerts = fire_alerts  # type: ignore[assignment]
            db.write_connection = write_connection  # type: ignore[method-assign]

        @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if "wal_checkpoint" in statement:
                self.checkpoints.append((time.perf_counter(), float("inf")))

        @event.listens_for(db.engine.sync_engine, "after_cursor_execute")
        def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if "wal_checkpoint" in statement and self.checkpoints:
                self.checkpoints[-1] = (self.checkpoints[-1][0], time.perf_counter())

    def restore(self) -> None:
        dbmod._immediate_transaction = _ORIGINAL_TX  # type: ignore[attr-defined]
        enginemod.fire_alerts = _ORIGINAL_FIRE_ALERTS  # type: ignore[assignment]

    def stages(self, probe: LoopProbe, since: float, burst: tuple[float, float], slow: float = 0.015) -> dict[str, Any]:
        """Every crossing (alert, not the storm's) seen after ``since``: its latency split into stages;
        for those over ``slow``, which stage was the largest, and how much of their time the loop's
        thread and the driver's thread spent waiting for a core."""
        for c in self.chunks:
            c.checkpoint = any(s < c.back and e > c.taken for s, e in self.checkpoints)
        busy = sorted((c.taken, c.back, c.storm > 0) for c in self.chunks)
        names = ("behind a storm chunk", "behind another chunk", "worker wake-up", "write lock + queue to the database",
                 "BEGIN IMMEDIATE", "statements", "COMMIT", "back to the loop")
        totals = dict.fromkeys(names, 0.0)
        dominant = dict.fromkeys(names, 0)
        slow_n, slow_total, slow_loop_runq, slow_driver_runq, slow_ckpt, all_n = 0, 0.0, 0.0, 0.0, 0, 0
        residual: list[float] = []
        for c in self.chunks:
            for alert_id, seen in c.ids:
                if alert_id in self.storm_ids or seen < since:
                    continue
                all_n += 1
                latency = c.back - seen
                if not burst[0] <= seen <= burst[1]:  # outside the burst: less the critical path's waits for a core
                    # conservative: only its own transaction's thread and the loop's wake-up to see the commit
                    waits = c.wake_runq + c.tx_runq + probe.runq_between(c.committed or c.back, c.back)
                    residual.append(max(0.0, latency - waits))
                if latency <= slow:
                    continue
                behind_storm = behind_other = 0.0
                for start, end, storm in busy:  # the worker busy with earlier chunks while this one waited
                    if end <= seen or start >= c.taken:
                        continue
                    overlap = min(end, c.taken) - max(start, seen)
                    if storm:
                        behind_storm += overlap
                    else:
                        behind_other += overlap
                parts = (behind_storm, behind_other, max(0.0, c.taken - seen - behind_storm - behind_other),
                         (c.start or c.call) - c.taken, c.begun - c.start, c.worked - c.begun,
                         c.committed - c.worked, c.back - c.committed)
                slow_n += 1
                slow_total += latency
                for name, part in zip(names, parts, strict=True):
                    totals[name] += part
                dominant[max(zip(parts, names, strict=True))[1]] += 1
                slow_loop_runq += probe.runq_between(seen, c.back)
                slow_driver_runq += c.wake_runq + c.tx_runq
                slow_ckpt += c.checkpoint
        tx = [c for c in self.chunks if c.committed and c.start and c.taken >= since]
        wall = sum(c.committed - c.start for c in tx)
        cpu = sum(c.tx_cpu for c in tx)
        runq = sum(c.tx_runq for c in tx)
        slow_n = max(slow_n, 1) if slow_n else 0
        return {"residual_p50": pct(residual, 0.5), "residual_p99": pct(residual, 0.99), "tx_wall": wall, "tx_cpu": cpu, "tx_runq": runq, "tx_n": len(tx),
                "wake_runq": sum(c.wake_runq for c in tx), "n": all_n, "slow": slow_n, "slow_total": slow_total, "totals": totals, "dominant": dominant,
                "loop_runq": slow_loop_runq, "driver_runq": slow_driver_runq, "checkpoint": slow_ckpt}


_ORIGINAL_TX = dbmod._immediate_transaction  # type: ignore[attr-defined]
_ORIGINAL_FIRE_ALERTS = enginemod.fire_alerts


def _wal_state(path: str) -> tuple[int, int]:
    """A WAL file's checkpoint sequence (its header: one more each time the WAL is started over) and size."""
    if not path:
        return 0, 0
    try:
        with open(path, "rb") as f:
            header = f.read(16)
            return int.from_bytes(header[12:16], "big") if len(header) == 16 else 0, os.fstat(f.fileno()).st_size
    except OSError:
        return 0, 0


def _written() -> int:
    """Bytes the calling thread has written (Linux: /proc/thread-self/io's wchar); 0 elsewhere."""
    try:
        with open("/proc/thread-self/io", "rb") as f:
            return int(f.read().split(b"wchar:")[1].split()[0])
    except (OSError, IndexError, ValueError):
        return 0


def _timed_transaction_for(tracer: Tracer) -> Callable[[Callable[[Any], Any], Any], Any]:
    """``chatbot.storage.db._immediate_transaction`` with timestamps (the same steps), for the fire
    transactions (told by their work: ``partial(fire_on_driver, crossings, ...)``)."""

    def transaction(work: Callable[[Any], Any], connection: Any) -> Any:
        args = getattr(work, "args", ())
        trace = tracer.by_first.get(next(iter(args[0]), -1)) if args and isinstance(args[0], dict) else None
        if trace is None:
            return _ORIGINAL_TX(work, connection)
        trace.start = time.perf_counter()
        c0, q0 = SCHEDSTAT()
        wal0 = _wal_state(tracer.wal_path)
        written0 = _written() if tracer.wal_path else 0
        if tracer.driver_last_runq:
            trace.wake_runq = (q0 - tracer.driver_last_runq[0]) / 1e9
        if getattr(connection, "in_transaction", False):
            connection.rollback()
        cursor = connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
            trace.begun = time.perf_counter()
            try:
                result = work(cursor)
                trace.worked = time.perf_counter()
                connection.commit()
                trace.committed = time.perf_counter()
            except BaseException:
                connection.rollback()
                raise
            return result
        finally:
            cursor.close()
            c1, q1 = SCHEDSTAT()
            trace.tx_runq, trace.tx_cpu = (q1 - q0) / 1e9, (c1 - c0) / 1e9
            trace.wal = (*wal0, *_wal_state(tracer.wal_path))
            trace.written = _written() - written0 if tracer.wal_path else 0
            tracer.driver_last_runq[:] = [q1]

    return transaction


def _print_tail(chunks: list[ChunkTrace], storm_ids: set[int], wall0: float, burst: tuple[float, float],
                checkpoints: list[tuple[float, float]]) -> None:
    """BENCH_DEBUG: latency outside the burst by the size of the crossing each alert came with, and the
    slowest alerts' chunks stage by stage."""
    rows = [(c.back - seen, size, seen, c) for c in chunks
            for (alert_id, seen), size in zip(c.ids, c.sizes or [0] * len(c.ids), strict=True)
            if alert_id not in storm_ids and not burst[0] <= seen <= burst[1]]
    if not rows:
        return
    p99 = pct([r[0] for r in rows], 0.99)
    traced = [c for c in chunks if c.wal[1] or c.wal[3]]
    if traced:
        fired = sum(len(c.ids) for c in traced)
        print(f"  WAL: {sum(c.wal[2] != c.wal[0] for c in traced)} restarts by a fire transaction in the window; "
              f"{sum(c.written for c in traced) / max(fired, 1) / 1e3:.1f} KB written per alert fired "
              f"({sum(c.written for c in traced) / 1e6:.0f} MB in all); largest WAL {max(c.wal[3] for c in traced) / 1e6:.0f} MB")
    print(f"  outside the burst by crossing size (alerts; share; p50 / p99 / max ms; share of those over p99 "
          f"{p99 * 1e3:.1f} ms):")
    for low, high in ((1, 1), (2, 9), (10, 99), (100, 299), (300, 10**9)):
        lat = [r[0] for r in rows if low <= r[1] <= high]
        if lat:
            over = sum(x > p99 for x in lat)
            print(f"    {low}-{high if high < 10**9 else ''}: {len(lat)} ({100 * len(lat) / len(rows):.0f} %); "
                  f"{pct(lat, 0.5) * 1e3:.1f} / {pct(lat, 0.99) * 1e3:.1f} / {max(lat) * 1e3:.1f}; "
                  f"{100 * over / max(1, sum(r[0] > p99 for r in rows)):.0f} % of those over p99")
    print("  slowest alerts outside the burst (s into the window, ms, crossing size, chunk size, storm in chunk; "
          "ms seen→taken, taken→start, BEGIN, statements, COMMIT, back; checkpoint overlapping):")
    seen_chunks: set[int] = set()
    for latency, size, seen, c in sorted(rows, key=lambda r: -r[0]):
        if id(c) in seen_chunks:
            continue
        seen_chunks.add(id(c))
        ck = [(round(s - wall0, 2), round((e - s) * 1e3, 1)) for s, e in checkpoints if s < c.back and e > seen]
        print(f"    {seen - wall0:.2f} s {latency * 1e3:.1f} ms size {size} chunk {len(c.ids)} storm {c.storm}; "
              f"{(c.taken - seen) * 1e3:.1f} {((c.start or c.call) - c.taken) * 1e3:.1f} {(c.begun - c.start) * 1e3:.1f} "
              f"{(c.worked - c.begun) * 1e3:.1f} {(c.committed - c.worked) * 1e3:.1f} {(c.back - c.committed) * 1e3:.1f};"
              f" cpu {c.tx_cpu * 1e3:.1f} runq {c.tx_runq * 1e3:.1f} wake-runq {c.wake_runq * 1e3:.1f}; {ck};"
              f" WAL {'restarted ' if c.wal[2] != c.wal[0] else ''}{c.wal[1] / 1e6:.1f} → {c.wal[3] / 1e6:.1f} MB,"
              f" wrote {c.written / 1e6:.2f} MB")
        if len(seen_chunks) >= 12:
            break


async def run(backend: str, n_alerts: int = 100_000, seconds: float = 14.0, port: int = 18950,
              mode: str = "engine") -> dict[str, Any]:
    """One measured window. ``mode``: "engine" (the engine's own fire path), "sqlalchemy" (SQLite through
    SQLAlchemy, PostgreSQL's path), "noop" (the same engine, feed and load, but a chunk counts as committed
    the moment it is formed: no database; the floor this machine gives tick → worker)."""
    proc = await _start_simulator(port)
    rest_url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port + 2}"
    control = httpx.AsyncClient(base_url=rest_url)
    try:
        async with scratch_database(backend) as url:
            db = Database(url)
            await db.migrate()
            db.start_checkpoints()
            rest = KisRestClient(KisEndpoint("real", rest_url), new_credentials())
            from chatbot.sim.market import load_instruments

            codes = [inst.code for inst in load_instruments()][:SYMBOLS]
            prices = {code: (await rest.quote(code)).price for code in codes}
            storm_code, quiet = codes[-1], codes[:-1]
            rng = random.Random(1)
            rows = []
            for i in range(n_alerts - STORM):
                code = quiet[i % len(quiet)]
                price = prices[code]
                direction = "above" if i % 2 else "below"
                offset = rng.uniform(0.002, 0.15) * price  # most stay armed; the nearest fire now and then
                rows.append(_alert(i, code, direction, int(price + offset) if direction == "above"
                                   else int(price - offset), price))
            storm_price = prices[storm_code]
            for i in range(STORM):  # 18–20 % above: no random walk gets there; the storm tick does
                rows.append(_alert(i, storm_code, "above", int(storm_price * (1.18 + 0.02 * i / STORM)), storm_price))
            async with db.engine.begin() as conn:
                for i in range(0, len(rows), 5000):
                    await conn.execute(insert(AlertRow), rows[i:i + 5000])
            del rows
            async with db.engine.connect() as conn:
                storm_ids = set((await conn.execute(
                    select(AlertRow.id).where(AlertRow.code == storm_code))).scalars())  # type: ignore[arg-type]
            anchor = await bare_commits(db)

            engine = AlertEngine(db, RealtimeClient(ws_url, rest.approval_key), lambda: None,
                                 **({"fire_chunk": FIRE_CHUNK} if FIRE_CHUNK else {}))
            if mode == "sqlalchemy":
                engine.fire_on_driver = False
            engine.pipeline = PIPELINE or engine.pipeline
            path = {"noop": "no-op (no database)", "sqlalchemy": "SQLAlchemy"}.get(
                mode, f"driver thread, {engine.pipeline} in flight" if engine.fire_on_driver
                else f"one statement, autocommit, {engine.pipeline} in flight")
            loaded = time.perf_counter()
            await engine.start()
            load_seconds = time.perf_counter() - loaded
            tracer = Tracer(engine, storm_ids, mode)
            if os.environ.get("BENCH_DEBUG") and db.is_sqlite:
                tracer.wal_path = f"{db.engine.url.database}-wal"
            gap_checks: list[float] = []
            original_gap = engine._gap_extremes

            def timed_gap(code: str, tick: Tick) -> list[int]:
                t0 = time.perf_counter()
                try:
                    return original_gap(code, tick)
                finally:
                    gap_checks.append(time.perf_counter() - t0)

            engine._gap_extremes = timed_gap  # type: ignore[method-assign]
            check_times: list[float] = []
            original = engine._on_event

            def timed(event: object) -> None:
                t0 = time.perf_counter()
                original(event)  # type: ignore[arg-type]
                if type(event) is Tick:
                    check_times.append(time.perf_counter() - t0)

            engine.feed._listeners = [timed if f == original else f for f in engine.feed._listeners]
            gc_pauses: list[tuple[int, float]] = []
            gc_started = [0.0]

            def on_gc(phase: str, info: dict[str, int]) -> None:
                if phase == "start":
                    gc_started[0] = time.perf_counter()
                else:
                    gc_pauses.append((info["generation"], time.perf_counter() - gc_started[0]))

            gc.callbacks.append(on_gc)
            lag = LoopProbe()
            lag.start()
            # Warm-up: until nothing has been pending for a second (the first ticks fire the nearest alerts).
            warm_started, quiet_since = time.perf_counter(), None
            while time.perf_counter() - warm_started < 120:
                await asyncio.sleep(0.1)
                if engine.backlog:
                    quiet_since = None
                elif quiet_since is None:
                    quiet_since = time.perf_counter()
                elif time.perf_counter() - quiet_since >= 1.0:
                    break
            warm_fired = sum(len(c.ids) for c in tracer.chunks)
            gc.collect()
            gc.freeze()  # settled as `chatbot run` is once up (chatbot.__main__.settle_heap)
            await asyncio.sleep(0.5)  # the collection's own stall stays out of the window
            tracer.chunks.clear()
            tracer.checkpoints.clear()
            check_times.clear()
            lag.reset()
            gc_pauses.clear()
            cpu0, wall0, epoch0 = time.process_time(), time.perf_counter(), time.time()
            await asyncio.sleep(seconds * 0.3)
            storm_at = time.perf_counter()
            forced = (await control.post("/sim/price", json={"code": storm_code,
                                                             "price": int(storm_price * 1.21)})).json()["price"]
            await asyncio.sleep(seconds * 0.3)
            reconnects = engine.feed.reconnects
            dropped_at = time.perf_counter()
            await control.post("/sim/drop-websockets")
            await asyncio.sleep(seconds * 0.4)
            while engine.backlog and time.perf_counter() - wall0 < seconds + 30:
                await asyncio.sleep(0.05)
            cpu = time.process_time() - cpu0
            wall = time.perf_counter() - wall0
            await lag.stop()
            gc.callbacks.remove(on_gc)
            reconnected = engine.feed.reconnects > reconnects
            gc.unfreeze()  # the next run starts from scratch
            await engine.stop()
            tracer.restore()
            await rest.aclose()
            await db.dispose()
    finally:
        await control.aclose()
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await proc.wait()
    chunks = [c for c in tracer.chunks if c.taken >= wall0]
    record = [(alert_id, seen, c.back) for c in chunks for alert_id, seen in c.ids]
    storm = [(seen, done) for alert_id, seen, done in record if alert_id in storm_ids]
    storm_seen = min((seen for seen, _ in storm), default=storm_at)
    storm_drained = max((done for _, done in storm), default=storm_seen) - storm_seen
    others = [(seen, done - seen) for alert_id, seen, done in record if alert_id not in storm_ids]
    outside = [lat for seen, lat in others if not storm_seen <= seen <= storm_seen + storm_drained]
    during = [lat for seen, lat in others if storm_seen <= seen <= storm_seen + storm_drained]
    stages = tracer.stages(lag, wall0, (storm_seen, storm_seen + storm_drained))
    if os.environ.get("BENCH_DEBUG"):
        print("  stalls over 10 ms (s into the window, lag ms, loop CPU ms, waiting for a core ms):",
              [(round(at - wall0, 2), round(lg * 1e3, 1), round(c * 1e3, 1), round(q * 1e3, 1))
               for at, lg, c, q in zip(lag.at, lag.lags, lag.cpu, lag.runq, strict=True) if lg > 0.01])
        print("  storm tick at", round(storm_at - wall0, 2), "s; feed dropped at", round(dropped_at - wall0, 2),
              f"s; the window began at epoch {epoch0:.3f}")
        print("  checkpoints:", [(round(s - wall0, 2), round((e - s) * 1e3, 1)) for s, e in tracer.checkpoints])
        _print_tail(chunks, storm_ids, wall0, (storm_seen, storm_seen + storm_drained), tracer.checkpoints)
    durations = [c.back - c.taken for c in chunks]
    return {
        "backend": backend, "path": path, "mode": mode, "alerts": n_alerts, "load_s": load_seconds,
        "warm_fired": warm_fired, "tick_rate": len(check_times) / wall, "ticks": len(check_times),
        "fired": len(record), "storm_fired": len(storm), "storm_price_ok": forced >= int(storm_price * 1.20),
        "storm_drained": storm_drained, "others": len(others), "p50": pct([lat for _, lat in others], 0.5),
        "p99": pct([lat for _, lat in others], 0.99), "outside": len(outside), "outside_p50": pct(outside, 0.5),
        "outside_p99": pct(outside, 0.99), "outside_max": max(outside, default=float("nan")),
        "during": len(during), "during_p99": pct(during, 0.99),
        "gap_checks": len(gap_checks), "gap_max": max(gap_checks, default=0.0), "gap_total": sum(gap_checks),
        "reconnected": reconnected, "lag": lag, "lag_split": lag.split(), "stages": stages,
        "gc_max": max((d for _, d in gc_pauses), default=0.0), "gc_full": sum(g == 2 for g, _ in gc_pauses),
        "check_us": statistics.mean(check_times) * 1e6 if check_times else float("nan"),
        "check_p99_us": pct(check_times, 0.99) * 1e6, "chunks": len(chunks),
        "chunk_mean": statistics.mean(durations) if durations else float("nan"),
        "chunk_p99": pct(durations, 0.99) if durations else float("nan"),
        "checkpoints": len(tracer.checkpoints),
        "checkpoint_s": sum(e - s for s, e in tracer.checkpoints if e != float("inf")) / max(wall, 1e-9),
        "cpu_pct": 100 * cpu / wall, "anchor_p50": pct(anchor, 0.5), "anchor_p99": pct(anchor, 0.99),
    }


def report(r: dict[str, Any]) -> list[str]:
    s, st = r["lag_split"], r["stages"]
    slow = "; ".join(f"{name} {n} ({ms(st['totals'][name] / max(st['slow'], 1))} each on average)"
                     for name, n in sorted(st["dominant"].items(), key=lambda kv: -kv[1]) if n)
    return [
        (f"alerts [{r['backend']}, fire path: {r['path']}]: {r['alerts']:,} alerts over {SYMBOLS} symbols, "
        f"{r['tick_rate']:,.0f} ticks/s ({r['fired']:,} fired in the window, {r['warm_fired']:,} in the warm-up; "
        f"start-up load {r['load_s']:.2f} s)"),
        (f"  tick → fired + push committed outside the burst ({r['outside']:,}): p50 {ms(r['outside_p50'])}, "
        f"p99 {ms(r['outside_p99'])}, max {ms(r['outside_max'])}; burst: {r['storm_fired']:,} alerts on one tick"
        f"{'' if r['storm_price_ok'] else ' (PRICE CLAMPED)'} drained in {r['storm_drained']:.3f} s "
        f"({r['during']} other crossings meanwhile, p99 {ms(r['during_p99'])}); outside the burst less the time its "
        f"own transaction's thread and the loop (seeing the commit) waited for a core: p50 {ms(r['stages']['residual_p50'])}, "
        f"p99 {ms(r['stages']['residual_p99'])}"),
        (f"  loop lag p99 {ms(s['lag_p99'])}, max {ms(s['lag_max'])}; {s['stalls']} stalls over 10 ms "
        f"({s['stall_s'] * 1e3:.0f} ms in all: the loop's own work {s['own_s'] * 1e3:.0f} ms, waiting for a core "
        f"{s['runq_s'] * 1e3:.0f} ms, blocked otherwise {s['rest_s'] * 1e3:.0f} ms); the loop's own work "
        f"per probe max {ms(s['own_max'])}, {s['own_over']} over 10 ms; reconnect"
        f"{'' if r['reconnected'] else ' (DID NOT HAPPEN)'} gap check max {ms(r['gap_max'])}; GC max "
        f"{ms(r['gc_max'])}; CPU {r['cpu_pct']:.0f} % of a core"),
        (f"  crossings over 15 ms: {st['slow']} of {st['n']}; largest stage: {slow or '-'}; on average each "
         f"waited {st['loop_runq'] * 1e3 / max(st['slow'], 1):.1f} ms for a core on the loop's thread, "
         f"{st['driver_runq'] * 1e3 / max(st['slow'], 1):.1f} ms on the driver's; "
        f"{st['checkpoint']} overlapped a WAL checkpoint ({r['checkpoints']} in the window, running "
         f"{100 * r['checkpoint_s']:.0f} % of it)"),
        *([] if not st["tx_cpu"] else [
        (f"  driver thread over {st['tx_n']} transactions (BEGIN → COMMIT): {st['tx_wall'] * 1e3:.0f} ms wall = CPU "
         f"{st['tx_cpu'] * 1e3:.0f} ms + waiting for a core {st['tx_runq'] * 1e3:.0f} ms + blocked (GIL, I/O) "
         f"{(st['tx_wall'] - st['tx_cpu'] - st['tx_runq']) * 1e3:.0f} ms; waking up: {st['wake_runq'] * 1e3:.0f} ms "
         f"waiting for a core")]),
        (f"  fire transactions {r['chunks']:,}, taken → committed mean {ms(r['chunk_mean'])}, p99 "
        f"{ms(r['chunk_p99'])}; anchor, a bare one-row commit: p50 {ms(r['anchor_p50'])}, p99 {ms(r['anchor_p99'])}"
        f" → p99 outside the burst {r['outside_p99'] / r['anchor_p99']:.1f}× a bare commit's p99"),
    ]


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.alerts")
    parser.add_argument("--db", action="append", help="sqlite, postgres or a URL (repeatable; default: both)")
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=14.0)
    parser.add_argument("--runs", type=int, default=3, help="rounds (each: every backend, every mode)")
    parser.add_argument("--fire-chunk", type=int, default=0, help="alerts per fire transaction (default: the engine's)")
    parser.add_argument("--pipeline", type=int, default=0,
                        help="SQLite: fire transactions in flight on the driver's thread (default: the engine's)")
    parser.add_argument("--mode", action="append", choices=("engine", "noop", "sqlalchemy"),
                        help="the engine's fire path, a no-op one (no database: this machine's floor), or "
                             "SQLAlchemy on SQLite (repeatable; default: engine and noop)")
    args = parser.parse_args(argv if argv is not None else [])
    global FIRE_CHUNK, PIPELINE
    FIRE_CHUNK, PIPELINE = args.fire_chunk, args.pipeline
    modes = args.mode or ["engine", "noop"]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for round_ in range(args.runs):
        for i, backend in enumerate(args.db or backends()):
            for j, mode in enumerate(modes):
                if mode == "sqlalchemy" and not backend.startswith("sqlite") or mode == "noop" and i:
                    continue  # the no-op path touches no database: once per round
                print(f"-- round {round_ + 1}/{args.runs}", flush=True)
                r = await run(backend, args.alerts, args.seconds, port=18950 + 20 * i + 5 * j, mode=mode)
                results.setdefault((backend, r["path"]), []).append(r)
                for line in report(r):
                    print(line, flush=True)
    print(f"summary, {args.runs} round(s) (each figure: round 1 / 2 / ...):")
    for (backend, path), rs in results.items():
        def each(key: str, scale: float = 1e3, fmt: str = "{:.1f}", rs: list[dict[str, Any]] = rs) -> str:
            return " / ".join(fmt.format(r[key] * scale) for r in rs)

        print(f"  {backend}, {path}: outside the burst ({' / '.join(str(r['outside']) for r in rs)} crossings) "
              f"p50 {each('outside_p50')} ms, p99 {each('outside_p99')} ms (less its own transaction's waits for a "
              f"core: p99 {' / '.join(format(r['stages']['residual_p99'] * 1e3, '.1f') for r in rs)} ms); "
              f"burst drained {each('storm_drained', 1, '{:.2f}')} s; stalls over 10 ms "
              f"{' / '.join(str(r['lag_split']['stalls']) for r in rs)} (the loop's own work max "
              f"{' / '.join(format(r['lag_split']['own_max'] * 1e3, '.1f') for r in rs)} ms; waiting for a core "
              f"{' / '.join(format(r['lag_split']['runq_s'] / max(r['lag_split']['stall_s'], 1e-9) * 100, '.0f') for r in rs)}"
              f" % of the stalls); fire transactions' wall time waiting for a core "
              f"{' / '.join(format(r['stages']['tx_runq'] / max(r['stages']['tx_wall'], 1e-9) * 100, '.0f') for r in rs)}"
              f" % (CPU {' / '.join(format(r['stages']['tx_cpu'] / max(r['stages']['tx_wall'], 1e-9) * 100, '.0f') for r in rs)}"
              f" %); bare commit p99 "
              f"{each('anchor_p99')} ms", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
