"""Symbol directory benchmark.

1. Start-up: loading the bundled directory (KRX: read, parse, index) in a fresh interpreter, wall time
   and memory (tracemalloc, the directory's own allocations), and the US rows' lazy load.
2. A refresh: parsing the simulator's KOSPI + KOSDAQ master archives of the whole market and swapping
   them in.
3. Lookups over the full KRX directory (3,875 symbols) with queries drawn from it: exact code, exact
   name, partial name (a piece of a name), 초성; p50 / p99 per lookup (each query's median of 3 runs).
   The anchor, measured in the
   same run on the same queries: the lookup the bot had before (a Python loop normalising every name
   per query), over the same directory.

    python -m bench.lookup
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from chatbot.markets.directory import Source, SymbolDirectory
from chatbot.markets.kis_master import MASTER_FILES, parse, read_archive
from chatbot.markets.search import initials, normalise
from chatbot.markets.symbols import Symbol
from chatbot.sim.market import Market
from chatbot.sim.master_files import MasterArchives

QUERIES = 2_000

_STARTUP = """
import json, sys, time, tracemalloc
traced = sys.argv[1] == "memory"
if traced:
    tracemalloc.start()
t0 = time.perf_counter()
from chatbot.markets.directory import SymbolDirectory
t1 = time.perf_counter()
base = tracemalloc.get_traced_memory()[0] if traced else 0
d = SymbolDirectory.bundled()
d.lookup("삼성전자")
t2 = time.perf_counter()
krx = tracemalloc.get_traced_memory()[0] - base if traced else 0
d.lookup("애플", "US")
t3 = time.perf_counter()
both = tracemalloc.get_traced_memory()[0] - base if traced else 0
print(json.dumps({"import": t1 - t0, "krx": t2 - t1, "us": t3 - t2, "krx_bytes": krx, "both_bytes": both,
                  "symbols": len(d)}))
"""


def startup() -> dict[str, float]:
    """Median of 3 fresh interpreters for the times, one traced interpreter for the memory."""
    def run(mode: str) -> dict[str, float]:
        out = subprocess.run([sys.executable, "-c", _STARTUP, mode], capture_output=True, text=True, check=True)
        return dict(json.loads(out.stdout))
    runs = [run("time") for _ in range(3)]
    figures = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    memory = run("memory")
    figures.update(krx_bytes=memory["krx_bytes"], both_bytes=memory["both_bytes"])
    return figures


def queries(directory: SymbolDirectory, seed: int = 7) -> dict[str, list[str]]:
    rng = random.Random(seed)
    picks = rng.sample(directory.symbols("KRX"), QUERIES)
    partial = []
    for s in picks:
        key = s.name_ko.replace(" ", "")
        n = min(len(key), rng.randint(2, 3))
        at = rng.randint(0, len(key) - n)
        partial.append(key[at:at + n])
    chosung = []
    for s in picks:
        key = initials(normalise(s.name_ko))
        chosung.append(key[: min(len(key), rng.randint(2, 4))])
    return {"exact code": [s.code for s in picks], "exact name": [s.name_ko for s in picks],
            "partial name": partial, "초성": chosung}


def timed(lookup: Callable[[str], object], texts: list[str], runs: int = 3) -> tuple[float, float]:
    """p50 / p99 over the queries of each query's median of ``runs`` runs (µs): the spread between
    queries, not the scheduler's pre-emptions on a shared machine."""
    for text in texts[:200]:  # warm-up
        lookup(text)
    per_query: list[list[float]] = [[] for _ in texts]
    for _ in range(runs):
        for i, text in enumerate(texts):
            t = time.perf_counter()
            lookup(text)
            per_query[i].append(time.perf_counter() - t)
    times = sorted(statistics.median(q) for q in per_query)
    return times[len(times) // 2] * 1e6, times[int(len(times) * 0.99)] * 1e6


def previous_lookup(symbols: tuple[Symbol, ...]) -> Callable[[str], object]:
    """The bot's lookup before the directory (chatbot/symbols.py up to issue 15), on the same symbols."""
    by_code = {s.code: s for s in symbols}
    by_name: dict[str, Symbol] = {}
    for s in symbols:
        by_name.setdefault(normalise(s.name_ko), s)
        by_name.setdefault(normalise(s.name_en), s)

    def lookup(text: str) -> object:
        if text.upper() in by_code:
            return by_code[text.upper()]
        key = normalise(text)
        if key in by_name:
            return by_name[key]
        return [s for s in symbols if key in normalise(s.name_ko) or key in normalise(s.name_en)][:8]
    return lookup


def refresh_cost() -> tuple[float, float, int]:
    market = Market(20240101, dt.date(2026, 11, 30))
    archives = MasterArchives(market)
    data = {f: archives.archive(f) for f in MASTER_FILES}
    directory = SymbolDirectory.bundled()
    directory.lookup("삼성전자")
    t0 = time.perf_counter()
    parsed = {f.market: parse(read_archive(data[f], f), f).symbols for f in MASTER_FILES}
    t1 = time.perf_counter()
    when = dt.datetime.now(dt.UTC)
    directory.replace_markets(parsed, {m: Source("master", when) for m in parsed})
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, sum(len(v) for v in parsed.values())


async def main() -> None:
    s = startup()
    print(f"start-up (fresh interpreter, median of 3): bundled KRX directory, {s['symbols']:,.0f} symbols, loaded "
          f"and indexed in {s['krx'] * 1000:.1f} ms, {s['krx_bytes'] / 2**20:.1f} MiB (tracemalloc); the US rows "
          f"(12,665) on the first US lookup +{s['us'] * 1000:.0f} ms, +{(s['both_bytes'] - s['krx_bytes']) / 2**20:.1f} MiB; "
          f"importing chatbot.markets {s['import'] * 1000:.0f} ms")
    parse_s, swap_s, n = refresh_cost()
    print(f"refresh: parsing the KOSPI + KOSDAQ master archives ({n:,} records) {parse_s * 1000:.1f} ms, "
          f"swap (new search index) {swap_s * 1000:.1f} ms")
    directory = SymbolDirectory.bundled()
    anchor = previous_lookup(directory.symbols("KRX"))
    for kind, texts in queries(directory).items():
        p50, p99 = timed(directory.lookup, texts)
        a50, a99 = timed(anchor, texts, runs=1) if kind != "초성" else (float("nan"), float("nan"))
        ratio = f"; the previous lookup p50 {a50:.1f} µs, p99 {a99:.1f} µs → {a99 / p99:.1f}× at p99" \
            if kind != "초성" else " (the previous lookup had no 초성)"
        print(f"lookup over {len(directory):,} KRX symbols, {kind} ({len(texts):,} queries): p50 {p50:.1f} µs, "
              f"p99 {p99:.1f} µs{ratio}")


if __name__ == "__main__":
    asyncio.run(main())
