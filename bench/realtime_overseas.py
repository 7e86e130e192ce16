"""US realtime benchmark: HDFSCNT0 frames parsed per second, ours beside python-kis 2.1.6's, same run.

A recorded stream of 100,000 HDFSCNT0 frames (made by the simulator's US market over 40 symbols) is
parsed by :func:`chatbot.kis.overseas_frames.parse_frame` and by python-kis's own
``KisWebsocketResponse.parse`` into ``KisForeignRealtimePrice`` (what its client does for every US
frame). Like for like: python-kis converts every field it maps when it parses, so the anchor figure
is ours converting all 26 fields at once (``UsTick.typed()``); reading only the price and reading
every typed property one by one are printed beside it. Each is run three times, interleaved, and
its median per CPU second of this process (``process_time``) is printed. python-kis is a benchmark-only dependency
(``pip install python-kis==2.1.6``); without it only our figures print. Then where a frame's time goes
(:func:`bench.realtime.breakdown`), with the ceiling the split and the conversions alone leave.

    python -m bench.realtime_overseas
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import statistics
import time

from bench.realtime import breakdown, print_breakdown
from chatbot.kis import overseas_protocol as o
from chatbot.kis.overseas_frames import UsTick, parse_frame
from chatbot.markets.directory import SymbolDirectory
from chatbot.markets.us_hours import NEW_YORK
from chatbot.sim.us_market import UsMarket
from chatbot.sim.us_realtime import trade_fields

FRAMES = 100_000
SYMBOLS = ("AAPL", "TSLA", "NVDA", "MSFT", "AMZN", "META", "GOOGL", "AMD", "NFLX", "INTC", "QQQ", "TQQQ", "SOXL",
           "SPY", "KO", "BRK/B", "JPM", "V", "DIS", "NKE", "PLTR", "SMCI", "ARM", "AVGO", "COST", "PEP", "ORCL",
           "IBM", "T", "XOM", "CVX", "PFE", "MRK", "BA", "UBER", "SHOP", "SQQQ", "IONQ", "RIVN", "SOFI")


def recorded_stream(n: int = FRAMES) -> list[str]:
    """n HDFSCNT0 frames of regular-session trades from the simulator's US market."""
    market = UsMarket(20240101, SymbolDirectory.bundled(), dt.date(2026, 11, 24))
    symbols = [s for s in SYMBOLS if market.get(s) is not None]
    opened = dt.datetime(2026, 11, 24, 9, 30, tzinfo=NEW_YORK)
    frames = []
    for i in range(n):
        symbol = symbols[i % len(symbols)]
        trade = market.step(symbol, opened + dt.timedelta(milliseconds=200 * i), o.MTYP_REGULAR)
        state = market.get(symbol)
        assert state is not None
        frames.append(f"0|{o.WS_US_TRADE}|001|" + "^".join(trade_fields(state, trade, "20261124")))
    return frames


def ours(frames: list[str], touch: str) -> float:
    started = time.process_time()
    if touch == "price":
        for frame in frames:
            for tick in parse_frame(frame):
                _ = tick.price  # type: ignore[attr-defined]
    elif touch == "typed":
        for frame in frames:
            for tick in parse_frame(frame):
                tick.typed()
    else:
        names = [n for n, v in vars(UsTick).items() if isinstance(v, property)]
        for frame in frames:
            for tick in parse_frame(frame):
                for name in names:
                    getattr(tick, name)
    return len(frames) / (time.process_time() - started)


def python_kis(frames: list[str]) -> float | None:
    try:
        from pykis.api.websocket.price import KisForeignRealtimePrice
        from pykis.responses.websocket import KisWebsocketResponse
    except ImportError:
        return None
    started = time.process_time()
    for frame in frames:  # what pykis.client.websocket.KisWebsocketClient._handle_event does per frame
        _encrypted, _tr, count, body = frame.split("|", 3)
        for price in KisWebsocketResponse.parse(body, count=int(count), response_type=KisForeignRealtimePrice):
            _ = price.price
    return len(frames) / (time.process_time() - started)


async def main() -> None:
    frames = recorded_stream()
    gc.collect()
    ours(frames[:5000], "typed")  # warm-up
    python_kis(frames[:2000])
    runs: dict[str, list[float]] = {"typed": [], "price": [], "all": [], "pykis": []}
    for _ in range(3):  # each the same number of times, interleaved; medians
        runs["typed"].append(ours(frames, "typed"))
        theirs_once = python_kis(frames)
        if theirs_once is not None:
            runs["pykis"].append(theirs_once)
        runs["price"].append(ours(frames, "price"))
        runs["all"].append(ours(frames, "all"))
    typed, price, every = (statistics.median(runs[k]) for k in ("typed", "price", "all"))
    theirs = statistics.median(runs["pykis"]) if runs["pykis"] else None
    print(f"HDFSCNT0 parsing, {len(frames):,} recorded US frames (medians of 3, interleaved, per CPU second): ours {typed:,.0f} frames/s converting all 26 "
          f"fields at once (UsTick.typed()), {price:,.0f} frames/s reading the price, "
          f"{every:,.0f} frames/s reading all {sum(isinstance(v, property) for v in vars(UsTick).values())} typed "
          f"properties one by one")
    if theirs is None:
        print("python-kis not installed (pip install python-kis==2.1.6) — no side-by-side figure")
    else:
        print(f"python-kis 2.1.6 on the same frames (KisForeignRealtimePrice, every mapped field converted): "
              f"{theirs:,.0f} frames/s → ours, all fields typed, is {typed / theirs:.1f}× "
              f"(price only: {price / theirs:.1f}×; property by property: {every / theirs:.1f}×)", flush=True)
        from pykis.api.websocket.price import KisForeignRealtimePrice
        print_breakdown(breakdown(frames[:20_000], UsTick, parse_frame, KisForeignRealtimePrice), UsTick, "HDFSCNT0")


if __name__ == "__main__":
    asyncio.run(main())
