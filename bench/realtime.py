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
   Then where a frame's time goes (:func:`breakdown`): each step alone on the same frames, interleaved
   chunk by chunk, and the ceiling that leaves any exact parser built on ``str.split``, ``int()`` and
   ``Decimal`` (the split and the conversions alone, as C-level loops, against python-kis).
   Whether the parser is compiled (setup.py compiles chatbot/kis/frames.py with mypyc at install where it
   can) prints first; when it is, the same frames.py interpreted (loaded under another name) is measured
   in the same rounds, interleaved: compiled against interpreted in one run.
2. Tick latency: simulator hands a frame to its socket writer → consumer callback, p50/p99.

    python -m bench.realtime
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import importlib.util
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from types import ModuleType
from typing import Any

from chatbot.kis import frames as installed
from chatbot.kis import protocol as p
from chatbot.kis.frames import Record, Tick, _exact_decimal, parse_frame
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


def interpreted_frames() -> ModuleType:
    """chatbot/kis/frames.py run by the interpreter under another name, beside the compiled one."""
    spec = importlib.util.spec_from_file_location("chatbot.kis._frames_interpreted",
                                                  Path(installed.__file__).with_name("frames.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ours(frames: list[str], touch: str, parse: Callable[[str], list[Record]] = parse_frame) -> float:
    started = time.process_time()
    if touch == "typed":
        for frame in frames:
            for tick in parse(frame):
                tick.typed()
    elif touch == "price":
        for frame in frames:
            for tick in parse_frame(frame):
                _ = tick.price
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


def breakdown(frames: list[str], cls: type[Record], parse: Callable[[str], list[Record]], pykis_type: Any,
              rounds: int = 3, chunk: int = 400) -> dict[str, float]:
    """Nanoseconds per frame of each step of parsing ``frames`` (single records of ``cls``) and typing
    every field, each alone, run over the same frames interleaved chunk by chunk, medians of the chunks
    (per CPU second). python-kis parses a tenth of each chunk (it is ~10× slower)."""
    from pykis.responses.websocket import KisWebsocketResponse

    ints, decs = itemgetter(*cls.INT_FIELDS), itemgetter(*cls.DECIMAL_FIELDS)
    bodies = [frame.split("|", 3)[3] for frame in frames]
    lists = [body.split("^") for body in bodies]
    records = [cls(fields) for fields in lists]
    int_texts, dec_texts = [ints(r) for r in records], [decs(r) for r in records]
    records[0].typed()
    typed = vars(cls)["typed"]
    exact = _exact_decimal()
    names = [f"f{i}" for i in range(len(cls.FIELD_NAMES))]
    namespace: dict[str, Any] = {}
    exec(f"def rebuild(r):\n    {', '.join(names)}, = r\n    return ({', '.join(names)},)\n", namespace)  # noqa: S102
    rebuild = namespace["rebuild"]
    # the alternative: C-level loops per type (map over an itemgetter), one itemgetter putting them in order
    others = tuple(i for i in range(len(names)) if i not in cls.INT_FIELDS + cls.DECIMAL_FIELDS + cls.FLAG_FIELDS)
    order = cls.INT_FIELDS + cls.DECIMAL_FIELDS + others + cls.FLAG_FIELDS
    reorder, rest = itemgetter(*(order.index(i) for i in range(len(names)))), itemgetter(*others)
    flags = cls.FLAG_FIELDS

    def mapped(r: Record) -> tuple[Any, ...]:
        out: tuple[Any, ...] = reorder((*map(int, ints(r)), *map(exact, decs(r)), *rest(r), *(r[i] == "Y" for i in flags)))
        return out

    per = 4  # frames carrying several records: one split, a slice per record
    multi = [f"0|{cls.TR_ID}|{per:03d}|" + "^".join(bodies[i:i + per]) for i in range(0, len(frames) - per + 1, per)]

    def run(step: str, i: int, j: int) -> None:  # frames[i:j], or as many records (``multi``)
        if step == "python-kis":
            for frame in frames[i:j]:
                _encrypted, _tr, count, body = frame.split("|", 3)
                for record in KisWebsocketResponse.parse(body, count=int(count), response_type=pykis_type):
                    _ = record.price
        elif step == "ours":
            for frame in frames[i:j]:
                for record in parse(frame):
                    record.typed()
        elif step == "split":
            for frame in frames[i:j]:
                frame.split("|", 3)[3].split("^")
        elif step == "record":
            for fields in lists[i:j]:
                cls(fields)
        elif step == "int":
            for texts in int_texts[i:j]:
                tuple(map(int, texts))
        elif step == "Decimal":
            for texts in dec_texts[i:j]:
                tuple(map(Decimal, texts))
        elif step == "exact":
            for texts in dec_texts[i:j]:
                tuple(map(exact, texts))
        elif step == "rebuild":
            for record in records[i:j]:
                rebuild(record)
        elif step == "typed":
            for record in records[i:j]:
                typed(record)
        elif step == "mapped":
            for record in records[i:j]:
                mapped(record)
        elif step == "multi":
            for frame in multi[i // per:j // per]:
                for record in parse(frame):
                    record.typed()

    steps = ["python-kis", "ours", "split", "record", "int", "Decimal", "exact", "rebuild", "typed", "mapped", "multi"]
    times: dict[str, list[float]] = {step: [] for step in steps}
    for _ in range(rounds):
        for i in range(0, len(frames) - chunk + 1, chunk):
            for step in steps:
                j = i + (chunk // 10 if step == "python-kis" else chunk)
                started = time.process_time()
                run(step, i, j)
                times[step].append((time.process_time() - started) / (j - i) * 1e9)
    return {step: statistics.median(v) for step, v in times.items()}


def print_breakdown(ns: dict[str, float], cls: type[Record], tr: str) -> None:
    n_int, n_dec = len(cls.INT_FIELDS), len(cls.DECIMAL_FIELDS)
    least = ns["split"] + ns["int"] + ns["exact"]
    print(f"  where a {tr} frame's time goes (ns per frame, each step alone on the same frames, interleaved chunk by "
          f"chunk, medians): python-kis {ns['python-kis']:,.0f}; ours {ns['ours']:,.0f} "
          f"({ns['python-kis'] / ns['ours']:.1f}×) = parse_frame (split {ns['split']:,.0f} + {cls.__name__}(fields) "
          f"{ns['record']:,.0f} + envelope) + typed() {ns['typed']:,.0f}, of which {n_int} int() {ns['int']:,.0f}, "
          f"{n_dec} decimals {ns['exact']:,.0f} (Decimal() {ns['Decimal']:,.0f}), unpacking and rebuilding the tuple "
          f"{ns['rebuild']:,.0f}; typed() as C-level loops (map over an itemgetter per type, an itemgetter to "
          f"reorder) {ns['mapped']:,.0f}; per record in 4-record frames {ns['multi']:,.0f}", flush=True)
    print(f"  ceiling for an interpreted exact parser on str.split + int() + Decimal (a compiled one passes it: "
          f"it calls int()'s parser directly): split and conversions alone (C-level loops, no record, no tuple) "
          f"{least:,.0f} ns = {ns['python-kis'] / least:.1f}× python-kis", flush=True)


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
    interpreted = interpreted_frames() if installed.COMPILED else None
    print(f"parser: {'compiled by mypyc' if installed.COMPILED else 'interpreted (not compiled)'} "
          f"({installed.__file__})", flush=True)
    gc.collect()
    ours(frames[:5000], "typed")  # warm-up, each the same
    python_kis(frames[:5000])
    runs: dict[str, list[float]] = {"typed": [], "interpreted": [], "price": [], "all": [], "floor": [], "pykis": []}
    for _ in range(ROUNDS):  # every parser the same number of times, interleaved; medians
        runs["typed"].append(ours(frames, "typed"))
        if interpreted is not None:
            runs["interpreted"].append(ours(frames, "typed", interpreted.parse_frame))
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
    if interpreted is not None:
        print(f"  compiled against interpreted, same frames, same rounds: typed() compiled {med['typed']:,.0f} "
              f"frames/s ({med['typed'] / theirs_rate:.1f}× python-kis) vs the same frames.py interpreted "
              f"{med['interpreted']:,.0f} frames/s ({med['interpreted'] / theirs_rate:.1f}×) → compiled "
              f"{med['typed'] / med['interpreted']:.2f}× interpreted", flush=True)
    print(f"  ours reading only the price (fields convert on access) {med['price']:,.0f} frames/s "
          f"({med['price'] / theirs_rate:.1f}× python-kis, not like for like); reading all 47 typed properties one "
          f"by one {med['all']:,.0f} frames/s ({med['all'] / theirs_rate:.1f}×)", flush=True)
    if "pykis" in med:
        from pykis.api.websocket.price import KisDomesticRealtimePrice
        print_breakdown(breakdown(frames[:20_000], Tick, parse_frame, KisDomesticRealtimePrice), Tick, "H0STCNT0")
    p50, p99 = await tick_latency()
    print(f"tick latency, simulator writer → consumer callback (2,000 ticks/s over 40 symbols, loopback): "
          f"p50 {p50:.2f} ms, p99 {p99:.2f} ms", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
