"""Real-time benchmark.

1. Frames parsed per second on a recorded stream of 100,000 H0STCNT0 frames (made by the simulator),
   like for like first: ours converting every field (``Tick.typed()``) against python-kis 2.1.6's
   own ``KisWebsocketResponse.parse`` into ``KisDomesticRealtimePrice`` (as its client does for every
   frame; it converts every field), each measured the same number of times, interleaved, medians;
   beside them the floor, a bare split. Rates are per CPU second of this process (``process_time``),
   so a busy machine's other processes do not count against either side.
   Then ours reading one field lazily (not like for like).
   python-kis is a benchmark-only dependency (``pip install -e .[bench]`` or ``pip install
   python-kis==2.1.6``); without it only our figures print.
2. Tick latency: simulator hands a frame to its socket writer → consumer callback, p50/p99.

    python -m bench.realtime
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import statistics
import time
from typing import Any

from chatbot.kis import protocol as p
from chatbot.kis.frames import Tick, parse_frame
from chatbot.kis.realtime import RealtimeClient
from chatbot.kis.rest import KisEndpoint, KisRestClient
from chatbot.sim.market import Market
from chatbot.sim.realtime import trade_fields
from chatbot.sim.server import KisSimulator, SimulatorOptions
from tests.helpers import new_credentials

FRAMES = 100_000


def recorded_stream(n: int = FRAMES) -> list[str]:
    """n H0STCNT0 frames from the simulator's market, over 40 symbols."""
    market = Market(20240101, dt.date(2026, 11, 24))
    codes = list(market.symbols)[:40]
    frames = []
    for i in range(n):
        code = codes[i % len(codes)]
        trade = market.step(code, f"{9 + i // 360000 % 6:02d}{i // 6000 % 60:02d}{i // 100 % 60:02d}")
        fields = trade_fields(market.symbols[code], trade, "20261124")
        frames.append(f"0|{p.WS_TRADE}|001|" + "^".join(fields))
    return frames


def ours(frames: list[str], touch: str) -> float:
    started = time.process_time()
    if touch == "price":
        for frame in frames:
            for tick in parse_frame(frame):
                _ = tick.price
    elif touch == "typed":
        for frame in frames:
            for tick in parse_frame(frame):
                tick.typed()
    else:
        names = [n for n, v in vars(Tick).items() if isinstance(v, property)]
        for frame in frames:
            for tick in parse_frame(frame):
                for name in names:
                    getattr(tick, name)
    return len(frames) / (time.process_time() - started)


def floor(frames: list[str]) -> float:
    """The least any parser does: split the envelope and the fields, convert nothing."""
    started = time.process_time()
    for frame in frames:
        frame.split("|", 3)[3].split("^")
    return len(frames) / (time.process_time() - started)


def python_kis(frames: list[str]) -> float | None:
    try:
        from pykis.api.websocket.price import KisDomesticRealtimePrice
        from pykis.responses.websocket import KisWebsocketResponse
    except ImportError:
        return None
    started = time.process_time()
    for frame in frames:  # what pykis.client.websocket.KisWebsocketClient._handle_event does per frame
        _encrypted, _tr, count, body = frame.split("|", 3)
        for price in KisWebsocketResponse.parse(body, count=int(count), response_type=KisDomesticRealtimePrice):
            _ = price.price
    return len(frames) / (time.process_time() - started)


async def tick_latency(samples: int = 2000) -> tuple[float, float]:
    sim = KisSimulator(SimulatorOptions(tick_interval=0, pingpong_interval=0))
    await sim.start()
    rest = KisRestClient(KisEndpoint("real", sim.rest_url("real")), new_credentials())
    client = RealtimeClient(sim.ws_url("real"), rest.approval_key)
    await client.start()
    server = sim.realtime["real"]
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()

    def on_event(event: Any) -> None:
        if isinstance(event, Tick):
            started = sent.pop("^".join(event), None)
            if started is not None:
                latencies.append(time.perf_counter() - started)
                if len(latencies) >= samples:
                    done.set()

    client.add_listener(on_event)
    codes = list(sim.market.symbols)[:40]
    for code in codes:
        await client.subscribe(p.WS_TRADE, code)
    (session,) = server.sessions
    original = session.send

    def stamped(text: str) -> None:
        sent[text.split("|", 3)[3]] = time.perf_counter()
        original(text)

    session.send = stamped  # type: ignore[method-assign]
    while not done.is_set():
        for code in codes:  # 2,000 ticks a second over 40 symbols
            sim.market.step(code, "100000")
        await asyncio.sleep(0.02)
    await client.aclose()
    await rest.aclose()
    await sim.stop()
    latencies.sort()
    return latencies[len(latencies) // 2] * 1e3, latencies[int(len(latencies) * 0.99)] * 1e3


ROUNDS = 3


async def main() -> None:
    frames = recorded_stream()
    gc.collect()
    ours(frames[:5000], "typed")  # warm-up, each the same
    python_kis(frames[:5000])
    runs: dict[str, list[float]] = {"typed": [], "price": [], "all": [], "floor": [], "pykis": []}
    for _ in range(ROUNDS):  # every parser the same number of times, interleaved; medians
        runs["typed"].append(ours(frames, "typed"))
        theirs = python_kis(frames)
        if theirs is not None:
            runs["pykis"].append(theirs)
        runs["price"].append(ours(frames, "price"))
        runs["all"].append(ours(frames, "all"))
        runs["floor"].append(floor(frames))
    med = {k: statistics.median(v) for k, v in runs.items() if v}
    if "pykis" not in med:
        print("python-kis not installed (pip install python-kis==2.1.6, or the bench extra) — no side-by-side")
        theirs_rate = float("nan")
    else:
        theirs_rate = med["pykis"]
    print(f"H0STCNT0 parsing, {len(frames):,} recorded frames, every field converted (medians of {ROUNDS}, "
          f"interleaved, per CPU second): ours (Tick.typed(): 46 fields to int/Decimal/bool/str) {med['typed']:,.0f} frames/s vs "
          f"python-kis 2.1.6 (KisDomesticRealtimePrice, which converts every field) {theirs_rate:,.0f} frames/s "
          f"→ {med['typed'] / theirs_rate:.1f}×; the floor (split the envelope and the fields, convert nothing) "
          f"{med['floor']:,.0f} frames/s", flush=True)
    print(f"  ours reading only the price (fields convert on access) {med['price']:,.0f} frames/s "
          f"({med['price'] / theirs_rate:.1f}× python-kis, not like for like); reading all 47 typed properties one "
          f"by one {med['all']:,.0f} frames/s ({med['all'] / theirs_rate:.1f}×)", flush=True)
    p50, p99 = await tick_latency()
    print(f"tick latency, simulator writer → consumer callback (2,000 ticks/s over 40 symbols, loopback): "
          f"p50 {p50:.2f} ms, p99 {p99:.2f} ms", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
