"""Alert engine benchmark: N alerts over 40 symbols, 2,000 ticks/s from the simulator's WebSocket.

Reports tick → fired-and-push-queued latency (the outbox row committed) p50/p99, the time the
book check takes per tick, and the process's CPU share, for 10,000 and 100,000 alerts.

    python -m bench.alerts
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time

from sqlalchemy import insert

from chatbot.alerts.engine import AlertEngine
from chatbot.kis.frames import Tick
from chatbot.kis.realtime import RealtimeClient
from chatbot.kis.rest import KisEndpoint, KisRestClient
from chatbot.storage import Database
from chatbot.storage.tables import AlertRow
from chatbot.storage.types import utcnow
from tests.helpers import new_credentials

SYMBOLS = 40
TICKS_PER_SECOND = 2_000


async def _start_simulator(port: int) -> asyncio.subprocess.Process:
    """``chatbot sim`` in its own process: 40 subscribed symbols × 50 steps/s = 2,000 ticks/s."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatbot", "sim", "--port", str(port), "--seed", "7", "--tick-interval", "0.02",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    for _ in range(3):
        await asyncio.wait_for(proc.stdout.readline(), 30)
    return proc


async def run(n_alerts: int, seconds: float = 8.0, port: int = 18950) -> dict[str, float]:
    proc = await _start_simulator(port)
    rest_url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port + 2}"
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/alerts.sqlite3")
        await db.migrate()
        db.start_checkpoints()
        rest = KisRestClient(KisEndpoint("real", rest_url), new_credentials())
        from chatbot.sim.market import load_instruments

        codes = [inst.code for inst in load_instruments()][:SYMBOLS]
        prices = {code: (await rest.quote(code)).price for code in codes}
        rng = random.Random(1)
        now = utcnow()
        rows = []
        for i in range(n_alerts):
            code = codes[i % SYMBOLS]
            price = prices[code]
            direction = "above" if i % 2 else "below"
            offset = rng.uniform(0.001, 0.15) * price  # most stay armed; the nearest fire
            threshold = int(price + offset) if direction == "above" else int(price - offset)
            rows.append({"owner_id": 1 + i % 500, "chat_id": 1 + i % 500, "language": "ko", "code": code,
                         "name": code, "direction": direction, "threshold": threshold, "reference_price": price,
                         "percent": None, "repeat": False, "cooldown_seconds": 600, "status": "armed",
                         "fired_count": 0, "created_at": now, "updated_at": now})
        async with db.engine.begin() as conn:
            for i in range(0, len(rows), 5000):
                await conn.execute(insert(AlertRow), rows[i:i + 5000])
        engine = AlertEngine(db, RealtimeClient(ws_url, rest.approval_key), lambda: None)
        loaded = time.perf_counter()
        await engine.start()
        load_seconds = time.perf_counter() - loaded
        await asyncio.sleep(1.0)  # warm-up: the alerts set right at the price all fire on the first ticks
        engine.record_latencies = True
        fired_before = engine.fired
        check_times: list[float] = []
        original = engine._on_event

        def timed(event: object) -> None:
            t0 = time.perf_counter()
            original(event)  # type: ignore[arg-type]
            if type(event) is Tick:
                check_times.append(time.perf_counter() - t0)

        engine.feed._listeners = [timed if f == original else f for f in engine.feed._listeners]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        fired = engine.fired - fired_before
        await engine.stop()
        await rest.aclose()
        await db.dispose()
    proc.terminate()
    await proc.wait()
    lat = sorted(engine.latencies)
    return {"alerts": n_alerts, "fired": fired, "ticks": len(check_times), "load_s": load_seconds,
            "tick_rate": len(check_times) / wall,
            "p50_ms": lat[len(lat) // 2] * 1e3 if lat else float("nan"),
            "p99_ms": lat[int(len(lat) * 0.99)] * 1e3 if lat else float("nan"),
            "check_us": statistics.mean(check_times) * 1e6 if check_times else float("nan"),
            "check_p99_us": sorted(check_times)[int(len(check_times) * 0.99)] * 1e6 if check_times else float("nan"),
            "cpu_pct": 100 * cpu / wall}


async def main() -> None:
    for n in (10_000, 100_000):
        r = await run(n)
        print(f"{r['alerts']:,} alerts over {SYMBOLS} symbols, {r['tick_rate']:,.0f} ticks/s received "
              f"({r['ticks']:,} ticks, {r['fired']:,} fired): tick → fired + push queued p50 {r['p50_ms']:.2f} ms, "
              f"p99 {r['p99_ms']:.2f} ms; book check per tick mean {r['check_us']:.1f} µs "
              f"(p99 {r['check_p99_us']:.1f} µs); bot process CPU {r['cpu_pct']:.0f} % of one core "
              f"(simulator in its own process); start-up load {r['load_s']:.2f} s")


if __name__ == "__main__":
    asyncio.run(main())
