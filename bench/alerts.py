"""Alert engine under load: 100,000 alerts, 2,000 ticks/s over 40 symbols from the simulator's
WebSocket (``chatbot sim`` in its own process), with a storm (10,000 alerts crossed by one tick)
and a feed reconnect in the measured window; on SQLite and on PostgreSQL when it answers.

Figures: tick → fired and push committed (outbox row written) p50/p99 for every crossing but the
storm's, and outside the storm's drain window; how long the storm took to drain; the feed-gap
check after the reconnect; the event loop's lag (a 1 ms timer: the longest stall of everything on
the loop); start-up load. Anchor, same run, same database: a bare one-row commit.

The measured window starts only once the engine has nothing pending (the first ticks fire the
alerts set closest to the price): the figures do not depend on whether a warm-up drained.

    python -m bench.alerts [--db sqlite|postgres|URL] [--alerts 100000] [--seconds 14]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import random
import statistics
import sys
import time
from typing import Any

import httpx
from sqlalchemy import delete, insert, select

from bench.common import LoopLag, backends, ms, pct, scratch_database
from chatbot.alerts.engine import AlertEngine
from chatbot.kis.frames import Tick
from chatbot.kis.realtime import RealtimeClient
from chatbot.kis.rest import KisEndpoint, KisRestClient
from chatbot.storage import Database
from chatbot.storage.tables import AlertRow, OutboxRow
from chatbot.storage.types import utcnow
from tests.helpers import new_credentials

SYMBOLS = 40
CHUNKS: list[tuple[int, float]] = []
STORM = 10_000
FIRE_CHUNK = 0  # 0: the engine's own; --fire-chunk N tries another


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


def _instrument(engine: AlertEngine, record: list[tuple[int, float, float]]) -> None:
    """Record (alert id, tick seen, committed) for every alert the engine fires or tries to."""
    if hasattr(engine, "_fire"):  # chunked engine: _fire(chunk of (id, crossing))
        original = engine._fire

        async def fire(chunk: Any) -> None:
            t0 = time.perf_counter()
            await original(chunk)
            now = time.perf_counter()
            CHUNKS.append((len(chunk), now - t0))
            record.extend((alert_id, crossing.seen_at, now) for alert_id, crossing in chunk)

        engine._fire = fire  # type: ignore[method-assign]
    else:  # the engine before chunking: _commit(batch of Fired)
        original_commit = engine._commit  # type: ignore[attr-defined]

        async def commit(batch: Any) -> None:
            t0 = time.perf_counter()
            await original_commit(batch)
            now = time.perf_counter()
            CHUNKS.append((len(batch), now - t0))
            record.extend((f.alert_id, f.seen_at, now) for f in batch)

        engine._commit = commit  # type: ignore[attr-defined]


def _pending(engine: AlertEngine) -> int:
    if hasattr(engine, "backlog"):
        return engine.backlog
    return engine._queue.qsize()  # type: ignore[attr-defined]


async def run(backend: str, n_alerts: int = 100_000, seconds: float = 14.0, port: int = 18950,
              fire_on_driver: bool | None = None) -> dict[str, Any]:
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
            if fire_on_driver is not None and hasattr(engine, "fire_on_driver"):
                engine.fire_on_driver = fire_on_driver and db.is_sqlite
            path = "driver thread" if getattr(engine, "fire_on_driver", False) else "SQLAlchemy"
            loaded = time.perf_counter()
            await engine.start()
            load_seconds = time.perf_counter() - loaded
            record: list[tuple[int, float, float]] = []
            _instrument(engine, record)
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
            lag = LoopLag().start()
            # Warm-up: until nothing has been pending for a second (the first ticks fire the nearest alerts).
            warm_started, quiet_since = time.perf_counter(), None
            while time.perf_counter() - warm_started < 120:
                await asyncio.sleep(0.1)
                if _pending(engine):
                    quiet_since = None
                elif quiet_since is None:
                    quiet_since = time.perf_counter()
                elif time.perf_counter() - quiet_since >= 1.0:
                    break
            warm_fired = len(record)
            record.clear()
            gc.collect()
            gc.freeze()  # settled as `chatbot run` is once up (chatbot.__main__.settle_heap)
            check_times.clear()
            await asyncio.sleep(0)
            lag.reset()
            gc_pauses.clear()
            CHUNKS.clear()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await asyncio.sleep(seconds * 0.3)
            storm_at = time.perf_counter()
            forced = (await control.post("/sim/price", json={"code": storm_code,
                                                             "price": int(storm_price * 1.21)})).json()["price"]
            await asyncio.sleep(seconds * 0.3)
            reconnects = engine.feed.reconnects
            dropped_at = time.perf_counter()
            await control.post("/sim/drop-websockets")
            await asyncio.sleep(seconds * 0.4)
            while _pending(engine) and time.perf_counter() - wall0 < seconds + 30:
                await asyncio.sleep(0.05)
            cpu = time.process_time() - cpu0
            wall = time.perf_counter() - wall0
            await lag.stop()
            gc.callbacks.remove(on_gc)
            reconnected = engine.feed.reconnects > reconnects
            gc.unfreeze()  # the next run starts from scratch
            await engine.stop()
            await rest.aclose()
            await db.dispose()
    finally:
        await control.aclose()
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await proc.wait()
    storm = [(seen, done) for alert_id, seen, done in record if alert_id in storm_ids]
    storm_seen = min((seen for seen, _ in storm), default=storm_at)
    storm_drained = max((done for _, done in storm), default=storm_seen) - storm_seen
    others = [(seen, done - seen) for alert_id, seen, done in record if alert_id not in storm_ids]
    outside = [lat for seen, lat in others if not storm_seen <= seen <= storm_seen + storm_drained]
    during = [lat for seen, lat in others if storm_seen <= seen <= storm_seen + storm_drained]
    import os
    if os.environ.get("BENCH_DEBUG"):
        buckets: dict[int, list[float]] = {}
        for seen, lat in others:
            buckets.setdefault(int((seen - wall0) * 4), []).append(lat)
        for b in sorted(buckets):
            print(f"  t={b / 4:5.2f}s n={len(buckets[b]):5d} p50={pct(buckets[b], .5)*1e3:7.2f} max={max(buckets[b])*1e3:7.2f}")
        print("storm at", storm_seen - wall0, "drained", storm_drained)
        if CHUNKS:
            print("chunks", len(CHUNKS), "mean size", statistics.mean(c for c, _ in CHUNKS), "mean s",
                  statistics.mean(d for _, d in CHUNKS), "p99", pct([d for _, d in CHUNKS], .99))
        print("stalls over 10 ms (s into the window, lag ms, loop CPU ms):",
              [(round(at - wall0, 2), round(lg * 1e3, 1), round(c * 1e3, 1))
               for at, lg, c in zip(lag.at, lag.lags, lag.cpu, strict=True) if lg > 0.01])
        print("storm tick at", round(storm_at - wall0, 2), "s; feed dropped at", round(dropped_at - wall0, 2), "s")
    return {
        "backend": f"{backend}, fire path: {path}", "alerts": n_alerts, "load_s": load_seconds, "warm_fired": warm_fired,
        "tick_rate": len(check_times) / wall, "ticks": len(check_times), "fired": len(record),
        "storm_fired": len(storm), "storm_price_ok": forced >= int(storm_price * 1.20), "storm_drained": storm_drained,
        "others": len(others), "p50": pct([lat for _, lat in others], 0.5), "p99": pct([lat for _, lat in others], 0.99),
        "outside_p99": pct(outside, 0.99), "outside_max": max(outside, default=float("nan")),
        "during": len(during), "during_p99": pct(during, 0.99),
        "gap_checks": len(gap_checks), "gap_max": max(gap_checks, default=0.0), "gap_total": sum(gap_checks),
        "reconnected": reconnected, "lag": lag,
        "gc_max": max((d for _, d in gc_pauses), default=0.0), "gc_full": sum(g == 2 for g, _ in gc_pauses),
        "check_us": statistics.mean(check_times) * 1e6 if check_times else float("nan"),
        "check_p99_us": pct(check_times, 0.99) * 1e6,
        "chunk_mean": statistics.mean(d for _, d in CHUNKS) if CHUNKS else float("nan"),
        "chunk_p99": pct([d for _, d in CHUNKS], 0.99) if CHUNKS else float("nan"),
        "cpu_pct": 100 * cpu / wall, "anchor_p50": pct(anchor, 0.5), "anchor_p99": pct(anchor, 0.99),
    }


async def chunk_costs(backend: str, n_alerts: int = 100_000, chunks: int = 300, size: int = 35,
                      loop_busy: float = 0.2) -> dict[str, list[float]]:
    """The fire step alone, both paths interleaved chunk by chunk (so a loaded machine weighs on both
    alike): ``chunks`` transactions of ``size`` alerts each per path, on a table of ``n_alerts``,
    while a stand-in for the feed keeps the event loop busy ``loop_busy`` of the time (1 ms bursts of
    work, as ticks come). Seconds per transaction, by path."""
    from functools import partial

    from chatbot.alerts import fire_sqlite
    from chatbot.alerts.engine import Crossing, fire_alerts

    async with scratch_database(backend) as url:
        db = Database(url)
        await db.migrate()
        db.start_checkpoints()
        rows = [_alert(i, "005930", "above", 100_000 + i, 90_000) for i in range(n_alerts)]
        async with db.engine.begin() as conn:
            for i in range(0, len(rows), 5000):
                await conn.execute(insert(AlertRow), rows[i:i + 5000])
        del rows
        async with db.engine.connect() as conn:
            ids = list((await conn.execute(select(AlertRow.id))).scalars())  # type: ignore[call-overload]
        random.Random(2).shuffle(ids)
        binds = fire_sqlite.Binds.of(db.engine.dialect)
        stop = asyncio.Event()

        async def feed_load() -> None:
            while not stop.is_set():
                until = time.perf_counter() + 0.001
                while time.perf_counter() < until:
                    pass
                await asyncio.sleep(0.001 * (1 - loop_busy) / loop_busy)

        load = asyncio.create_task(feed_load())
        times: dict[str, list[float]] = {"driver": [], "sqlalchemy": []}
        try:
            for i in range(2 * chunks):
                path = ("driver", "sqlalchemy")[i % 2] if db.is_sqlite else "sqlalchemy"
                chunk, ids = ids[:size], ids[size:]
                crossing = Crossing(chunk, "005930", 200_000, "100000", time.perf_counter())
                crossings = dict.fromkeys(chunk, crossing)
                t0 = time.perf_counter()
                if path == "driver":
                    await db.write_on_driver(partial(fire_sqlite.fire_on_driver, crossings, utcnow(), binds))
                else:
                    async with db.write_connection() as conn:
                        await fire_alerts(conn, crossings, utcnow())
                times[path].append(time.perf_counter() - t0)
        finally:
            stop.set()
            await load
            await db.dispose()
    return times


def report(r: dict[str, Any]) -> list[str]:
    lag: LoopLag = r["lag"]
    return [
        f"alerts [{r['backend']}]: {r['alerts']:,} alerts over {SYMBOLS} symbols, {r['tick_rate']:,.0f} ticks/s "
        f"({r['ticks']:,} ticks, {r['fired']:,} fired in the window, {r['warm_fired']:,} in the warm-up); "
        f"start-up load {r['load_s']:.2f} s",
        f"  tick → fired + push committed, every crossing but the storm's ({r['others']:,}): p50 {ms(r['p50'])}, "
        f"p99 {ms(r['p99'])}; outside the storm's drain p99 {ms(r['outside_p99'])} (max {ms(r['outside_max'])}); "
        f"the {r['during']} that came during the drain p99 {ms(r['during_p99'])}",
        f"  storm: {r['storm_fired']:,} alerts crossed by one tick{'' if r['storm_price_ok'] else ' (PRICE CLAMPED)'}, "
        f"all fired and pushes committed in {r['storm_drained']:.3f} s",
        f"  feed reconnect{'' if r['reconnected'] else ' (DID NOT HAPPEN)'}: gap check on the first tick of "
        f"{r['gap_checks']} symbols, max {ms(r['gap_max'])}, total {ms(r['gap_total'])}",
        f"  {lag.summary()} (garbage collector: longest pause {ms(r['gc_max'])}, {r['gc_full']} full "
        f"collections); book check per tick mean {r['check_us']:.1f} µs (p99 {r['check_p99_us']:.1f} µs); "
        f"bot process CPU {r['cpu_pct']:.0f} % of one core",
        f"  fire transactions: {len(CHUNKS):,}, mean {ms(r['chunk_mean'])}, p99 {ms(r['chunk_p99'])}",
        f"  anchor (same database, same run): a bare one-row commit p50 {ms(r['anchor_p50'])}, p99 "
        f"{ms(r['anchor_p99'])} → fire p99 = {r['p99'] / r['anchor_p99']:.1f}× a bare commit's p99, "
        f"storm = {r['storm_drained'] / r['anchor_p50']:,.0f} bare commits",
    ]


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.alerts")
    parser.add_argument("--db", action="append", help="sqlite, postgres or a URL (repeatable; default: both)")
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=14.0)
    parser.add_argument("--fire-chunk", type=int, default=0, help="alerts per fire transaction (default: the engine's)")
    parser.add_argument("--fire-path", choices=("both", "driver", "sqlalchemy"), default="both",
                        help="SQLite: fire on the driver's thread, through SQLAlchemy, or both side by side (default)")
    args = parser.parse_args(argv if argv is not None else [])
    global FIRE_CHUNK
    FIRE_CHUNK = args.fire_chunk
    for i, backend in enumerate(args.db or backends()):
        port = 18950 + 20 * i
        if backend.startswith("sqlite") and args.fire_path == "both":
            # The anchor first: the same engine firing through SQLAlchemy (the code before the
            # one-round-trip fire path, and PostgreSQL's path today), same run, same database kind.
            before = await run(backend, args.alerts, args.seconds, port=port + 10, fire_on_driver=False)
            for line in report(before):
                print(line, flush=True)
        r = await run(backend, args.alerts, args.seconds, port=port,
                      fire_on_driver=None if args.fire_path == "both" else args.fire_path == "driver")
        for line in report(r):
            print(line, flush=True)
        if backend.startswith("sqlite") and args.fire_path == "both":
            costs = await chunk_costs(backend)
            d, a = costs["driver"], costs["sqlalchemy"]
            print(f"  the fire step alone, 35 alerts per transaction, {len(d)} per path interleaved, event loop 20 % "
                  f"busy: driver thread p50 {ms(pct(d, .5))}, p90 {ms(pct(d, .9))}, p99 {ms(pct(d, .99))}; "
                  f"SQLAlchemy p50 {ms(pct(a, .5))}, p90 {ms(pct(a, .9))}, p99 {ms(pct(a, .99))} → "
                  f"{pct(d, .5) / pct(a, .5):.2f}× / {pct(d, .9) / pct(a, .9):.2f}× / {pct(d, .99) / pct(a, .99):.2f}×",
                  flush=True)
            print(f"  driver-thread fire path vs SQLAlchemy's, same run: p50 {ms(r['p50'])} vs {ms(before['p50'])} "
                  f"({r['p50'] / before['p50']:.2f}×), p99 outside the storm {ms(r['outside_p99'])} vs "
                  f"{ms(before['outside_p99'])} ({r['outside_p99'] / before['outside_p99']:.2f}×), storm drained "
                  f"{r['storm_drained']:.3f} vs {before['storm_drained']:.3f} s "
                  f"({r['storm_drained'] / before['storm_drained']:.2f}×), fire chunk mean "
                  f"{ms(r['chunk_mean'])} vs {ms(before['chunk_mean'])} ({r['chunk_mean'] / before['chunk_mean']:.2f}×)",
                  flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
