"""Memory per operation: the whole bot (the real PTB Application over the fake Bot API, the runtime,
SQLite, the simulator in-process) under a steady, count-based load; RSS and ``tracemalloc`` growth per
1,000 operations after a warm-up. A warming cache grows during the warm-up and then levels off; a leak
goes on growing by the same amount per 1,000 operations however long the run: the figure is that slope,
printed beside the warm-up's own (the anchor: a slope near the warm-up's is a leak).

    python -m bench.memory                              # 12 users: 3,000 warm-up, 2 x 1,000 untraced, 2 x 500 traced
    python -m bench.memory --rounds 20 --traced 0       # RSS only, 20 x 1,000 (a plateau or a line?)
    python -m bench.memory --warmup 3000 --rounds 0 --traced 4 --traced-per 1000 --top 12

The load, every user at once each round (a round is a fixed batch of operations): /price; a resting
limit /buy confirmed, /cancel'ed (confirmed) on a later turn; a market /buy, then /sell (fills and their
notices); an alert far off, deleted (``/alert off``) on a later turn; an alert a tick away (it fires); a
stop a few ticks under the price on a share held, cancelled from /stops on a later turn unless it fired;
/orders, /balance, /alerts; a malformed command. The market ticks once a round; every DROP_EVERY rounds
the simulator drops every websocket (a feed drop: resubscription, fill catch-up, the gap's bookkeeping),
and midway between two drops KIS invalidates every token (each issued again). The users' live state stays
level (orders cancelled, alerts deleted or fired, stops cancelled or fired, shares sold), so what the
bot holds for them should too; the database grows, as it does in production.

Figures:
* RSS (untraced: tracing's bookkeeping and its snapshots would swell it), with SQLite's own heap (page
  caches and statements of every pooled connection: ``sqlite3_memory_used``) and what C malloc holds
  free (glibc ``mallinfo2``): native memory ``tracemalloc`` does not see. RSS is the whole process, the
  load's side included, and the allocator gives pages back late: it is the coarse figure.
* traced Python bytes, split: the load's side (the simulator, whose ledger grows with every order by
  design: KIS's server, another process in production; the fake Bot API, which keeps the newest 1,000 of
  each kind of record, as ``chatbot console`` does; the harness; this bench) and the bot (everything else),
  with the largest growths by traceback. Tracing starts after the untraced slices, and a slice runs
  before its first snapshot: a bounded cache churned after tracing began swaps untraced entries for
  traced ones, which looks like growth until it has turned over once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import linecache
import os
import random
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import select

from chatbot.config import KisSettings
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import protocol as p
from chatbot.storage.tables import OrderJournalRow
from tests.harness import BotHarness

CODES = ("005930", "000660", "035420", "005380")
USERS = 12
WARMUP = 3_000  # untraced and quick; the bot's own caches (connections, statements) still fill before it
ROUNDS = 2  # untraced slices of PER operations (RSS)
PER = 1_000
TRACED = 2  # traced slices of TRACED_PER operations (tracing makes each operation several times slower)
TRACED_PER = 500
DROP_EVERY = 25  # rounds between feed drops
FRAMES = 6
# the load's side of the wire: shown apart from the bot's own allocations
HARNESS = ("/chatbot/sim/", "/chatbot/console/botapi.py", "/tests/fake_telegram.py", "/bench/")


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


def native_mb() -> tuple[float, float, float]:
    """SQLite's own heap (``sqlite3_memory_used``: page caches, statements), and C malloc's bytes in use and
    held free (glibc's ``mallinfo2``, every arena); NaN where the library is not there to ask."""
    sqlite = in_use = free = float("nan")
    with contextlib.suppress(OSError, AttributeError, TypeError):
        used = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0").sqlite3_memory_used
        used.restype = ctypes.c_int64
        sqlite = used() / 2**20
    with contextlib.suppress(OSError, AttributeError):
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
        mallinfo2.restype = _MallInfo2
        info = mallinfo2()
        in_use, free = (info.uordblks + info.hblkhd) / 2**20, info.fordblks / 2**20
    return sqlite, in_use, free


def _harness_side(trace: tracemalloc.Traceback) -> bool:
    """An allocation made for the load: any frame in the simulator, the fake Bot API or this bench (the bot
    never calls into them; they call the shared protocol module), or the harness as the innermost frame (its
    wrapper around PTB's ``process_update`` is far down every update's stack: only there), or aiohttp with
    no project frame (the fake Bot API's server); everything else is the bot's."""
    frames = list(trace)  # oldest first
    if any(marker in frame.filename for frame in frames for marker in HARNESS):
        return True
    if frames and "/tests/harness.py" in frames[-1].filename:
        return True
    return not any("/chatbot/" in frame.filename for frame in frames) and any(
        "aiohttp/" in frame.filename for frame in frames)


@dataclass
class Slice:
    operations: int
    rss_mb: float
    bot_bytes: int
    harness_bytes: int
    blocks: int


@dataclass
class UserState:
    info: dict[str, Any]
    rng: random.Random
    resting: list[str] = field(default_factory=list)  # order numbers to cancel
    alerts: list[str] = field(default_factory=list)  # alert ids to delete
    held: int = 0
    stops: bool = False  # a stop armed (perhaps fired since)


class Load:
    def __init__(self, bot: BotHarness, users: int, seed: int = 1) -> None:
        self.bot = bot
        self.users = [UserState(BotApiEmulator.user(70_000 + i, "ko" if i % 3 else "en"), random.Random(seed + i))
                      for i in range(users)]
        self.operations = 0
        self.rounds = 0
        self.feed_drops = 0
        self.token_expiries = 0
        self.counts: dict[str, int] = {}
        self.seconds: dict[str, float] = {}  # kind -> seconds its operations took, in all

    async def say(self, user: UserState, text: str) -> list[dict[str, Any]]:
        return await self.bot.say(user.info, text, timeout=120)

    async def confirm(self, user: UserState, replies: Sequence[dict[str, Any]]) -> bool:
        cards = [m for m in replies if BotApiEmulator.buttons(m) and BotApiEmulator.buttons(m)[0][1][:3] in ("oy:", "ky:")]
        if not cards:
            return False
        await self.bot.press(user.info, cards[0], BotApiEmulator.buttons(cards[0])[0][1], timeout=120)
        return True

    async def last_order_no(self, user: UserState) -> str | None:
        rt = self.bot.runtime
        assert rt is not None
        async with rt.db.session() as session:
            row = (await session.exec(select(OrderJournalRow).where(OrderJournalRow.owner_id == user.info["id"])
                                      .order_by(OrderJournalRow.id.desc()).limit(1))).first()  # type: ignore[union-attr]
        return row.kis_order_no if row is not None and row.status == "accepted" else None

    async def act(self, user: UserState) -> None:
        rng = user.rng
        began = time.monotonic()
        code = rng.choice(CODES)
        state = self.bot.sim.market.get(code)
        assert state is not None
        tick = p.tick_size(state.price)
        r = rng.random()
        if user.resting and r < 0.25:
            kind = "cancel"
            await self.confirm(user, await self.say(user, f"/cancel {user.resting.pop()}"))
        elif user.alerts and r < 0.45:
            kind = "alert off"
            await self.say(user, f"/alert off {user.alerts.pop()}")
        elif r < 0.15:
            kind = "price"
            await self.say(user, f"/price {code}")
        elif r < 0.30:
            kind = "resting buy"
            limit = p.round_down_to_tick(state.limits[0] + 2 * p.tick_size(state.limits[0]))
            if await self.confirm(user, await self.say(user, f"/buy {code} 1 {limit}")):
                order_no = await self.last_order_no(user)
                if order_no:
                    user.resting.append(order_no)
        elif r < 0.40:
            kind = "market buy/sell"
            verb = "/sell" if user.held else "/buy"
            if await self.confirm(user, await self.say(user, f"{verb} {CODES[0]} 1")):
                user.held = 0 if user.held else 1
        elif r < 0.50:
            kind = "alert far"
            replies = await self.say(user, f"/alert {code} above {p.round_down_to_tick(state.limits[1])}")
            for m in replies:
                text = m.get("text") or ""
                if "#" in text:
                    user.alerts.append(text.split("#", 1)[1].split()[0].strip(".,:)"))
        elif r < 0.58:
            kind = "alert near"
            direction, price = (("above", state.price + tick) if rng.random() < 0.5 else ("below", state.price - tick))
            await self.say(user, f"/alert {code} {direction} {price}")
        elif r < 0.64:
            kind = "stop"
            if user.stops:  # the one armed last time, unless it fired meanwhile: cancelled from /stops
                user.stops = 0
                lists = [m for m in await self.say(user, "/stops") if BotApiEmulator.buttons(m)]
                if lists:
                    await self.bot.press(user.info, lists[0], BotApiEmulator.buttons(lists[0])[0][1], timeout=120)
            elif user.held:
                first = self.bot.sim.market.get(CODES[0])
                assert first is not None  # a tick or three under the price: the next ticks may fire it (a sell)
                stop = first.price - p.tick_size(first.price) * rng.randint(1, 3)
                user.stops = await self.confirm(user, await self.say(user, f"/stop {CODES[0]} 1 {stop}"))
            else:
                await self.say(user, "/stops")
        elif r < 0.82:
            kind = "view"
            await self.say(user, rng.choice(("/orders", "/balance", "/alerts")))
        else:
            kind = "malformed"
            await self.say(user, rng.choice(("/buy", "/price 🙂", "/cancel abc", "/alert off 424242", "hello")))
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.seconds[kind] = self.seconds.get(kind, 0.0) + time.monotonic() - began
        self.operations += 1

    async def round(self) -> None:
        await asyncio.gather(*(self.act(u) for u in self.users))
        await self.bot.sim.tick()
        self.rounds += 1
        if self.rounds % DROP_EVERY == 0:
            self.feed_drops += 1
            self.bot.sim.realtime["real"].drop_all()
        elif self.rounds % DROP_EVERY == DROP_EVERY // 2:  # KIS invalidates every token: each issued again
            self.token_expiries += 1
            self.bot.sim.auth.expire_all()

    async def run_until(self, operations: int) -> None:
        while self.operations < operations:
            await self.round()

    def forget(self) -> None:
        """The harness's own notes of a run (update ids handled, pushes seen): not the bot's, and they would
        grow with the run. Between rounds only (nothing in flight waits on them)."""
        self.bot._done.clear()
        self.bot.pushed.clear()


def measure(load: Load, previous: tracemalloc.Snapshot | None, top: int
            ) -> tuple[Slice, tracemalloc.Snapshot, list[str]]:
    load.forget()
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces((
        tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, linecache.__file__)))
    bot = harness = blocks = 0
    for trace in snapshot.traces:
        if _harness_side(trace.traceback):
            harness += trace.size
        else:
            bot += trace.size
        blocks += 1
    lines: list[str] = []
    if previous is not None:
        growth = sorted((s for s in snapshot.compare_to(previous, "traceback") if s.size_diff > 0),
                        key=lambda s: s.size_diff, reverse=True)
        for side in (False, True):  # the bot's, then the load side's (which would crowd them out)
            for stat in [s for s in growth if _harness_side(s.traceback) is side][:max(1, top // 2) if side else top]:
                where = [f"{frame.filename.split('site-packages/')[-1].split('/memory/')[-1]}:{frame.lineno}"
                         for frame in reversed(stat.traceback) if "asyncio/" not in frame.filename][:6]
                lines.append(f"    {stat.size_diff / 1024:+8.1f} KiB {stat.count_diff:+6d} blocks "
                             f"[{'load side' if side else 'bot'}] " + " <- ".join(where))
    return Slice(load.operations, rss_mb(), bot, harness, blocks), snapshot, lines


@dataclass
class Figures:
    warmup: int
    start_rss: float = 0.0  # MB, the bot started, before any operation
    rss: list[tuple[int, float]] = field(default_factory=list)  # (operations, RSS MB), untraced
    native: list[tuple[float, float, float]] = field(default_factory=list)  # native_mb() beside each RSS
    traced: list[Slice] = field(default_factory=list)

    def warmup_slope(self) -> float:
        """RSS MB per 1,000 operations during the warm-up (the anchor)."""
        return (self.rss[0][1] - self.start_rss) * PER / max(1, self.rss[0][0])

    def rss_slope(self) -> float:
        """RSS MB per 1,000 operations, from the warm-up's end to the last untraced reading."""
        (o0, r0), (o1, r1) = self.rss[0], self.rss[-1]
        return (r1 - r0) * PER / max(1, o1 - o0)

    def native_slopes(self) -> tuple[float, float]:
        """SQLite's heap and C malloc's free memory, MB per 1,000 operations after the warm-up."""
        ops = max(1, self.rss[-1][0] - self.rss[0][0])
        return ((self.native[-1][0] - self.native[0][0]) * PER / ops,
                (self.native[-1][2] - self.native[0][2]) * PER / ops)

    def traced_slope(self) -> tuple[float, float]:
        """Traced bytes per 1,000 operations: the bot's, the load side's."""
        a, b = self.traced[0], self.traced[-1]
        scale = PER / max(1, b.operations - a.operations)
        return (b.bot_bytes - a.bot_bytes) * scale, (b.harness_bytes - a.harness_bytes) * scale


async def run(users: int = USERS, warmup: int = WARMUP, rounds: int = ROUNDS, per: int = PER, traced: int = TRACED,
              traced_per: int = TRACED_PER, frames: int = FRAMES, top: int = 6, verbose: bool = True) -> Figures:
    """The warm-up, ``rounds`` untraced slices of ``per`` operations (RSS), then tracing on: a slice of
    ``traced_per`` before the first snapshot, and ``traced`` slices of ``traced_per`` (the largest
    growths of each, ``top`` of the bot's and half as many of the load side's)."""
    figures = Figures(warmup)

    def say(text: str) -> None:
        if verbose:
            print(text, flush=True)

    def settled() -> None:
        load.forget()
        gc.collect()

    with tempfile.TemporaryDirectory() as tmp:
        bot = BotHarness(f"sqlite:///{tmp}/memory.sqlite3", ttl=60,
                         kis=KisSettings(order_timeout_seconds=10.0, max_alerts_per_user=1000))
        bot.telegram.emulator = BotApiEmulator()  # keeps the newest 1,000 of each, as chatbot console does
        await bot.start()
        load = Load(bot, users)
        try:
            gc.collect()
            figures.start_rss = rss_mb()
            started = time.monotonic()
            await load.run_until(warmup)
            settled()
            figures.rss.append((load.operations, rss_mb()))
            figures.native.append(native_mb())
            say(f"  warm-up: {load.operations:,} operations in {time.monotonic() - started:.0f} s, RSS "
                f"{figures.start_rss:.1f} -> {figures.rss[-1][1]:.1f} MB ({figures.warmup_slope():+.2f} MB per "
                f"1,000); {native_line(figures.native[-1])}")
            for _ in range(rounds):
                await load.run_until(load.operations + per)
                settled()
                (o0, r0), now = figures.rss[-1], (load.operations, rss_mb())
                figures.rss.append(now)
                figures.native.append(native_mb())
                say(f"  {now[0]:,} operations: RSS {now[1]:.1f} MB ({(now[1] - r0) * PER / (now[0] - o0):+.2f} MB per "
                    f"1,000); {native_line(figures.native[-1])}")
            if traced:
                tracemalloc.start(frames)
                await load.run_until(load.operations + traced_per)
                first, snapshot, _ = measure(load, None, top)
                figures.traced.append(first)
                for _ in range(traced):
                    await load.run_until(load.operations + traced_per)
                    now_slice, snapshot, lines = measure(load, snapshot, top)
                    before = figures.traced[-1]
                    scale = PER / (now_slice.operations - before.operations)
                    figures.traced.append(now_slice)
                    say(f"  {now_slice.operations:,} operations, traced: the bot "
                        f"{(now_slice.bot_bytes - before.bot_bytes) * scale / 1024:+.1f} KiB, the load side "
                        f"{(now_slice.harness_bytes - before.harness_bytes) * scale / 1024:+.1f} KiB per 1,000; "
                        f"largest growths in this slice (innermost frame first):")
                    say("\n".join(lines))
            say(f"  load: {load.rounds} rounds, {load.feed_drops} feed drops, {load.token_expiries} token "
                f"invalidations; " + ", ".join(f"{k} {v} ({load.seconds[k] / v:.2f} s)"
                                               for k, v in sorted(load.counts.items())))
        finally:
            tracemalloc.stop()
            await bot.stop()
    return figures


def cap_sqlite_cache(kib: int) -> None:
    """Every SQLite connection the bot opens from now on caches at most ``kib`` KiB of pages (each keeps
    its own cache: up to 2,000 KiB by default, times the pooled connections)."""
    from chatbot.storage import db

    pragmas = db._sqlite_pragmas

    def capped(dbapi_connection: Any, record: object) -> None:
        pragmas(dbapi_connection, record)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA cache_size=-{int(kib)}")
        cursor.close()

    db._sqlite_pragmas = capped  # type: ignore[assignment]  # looked up when a Database is made


def native_line(native: tuple[float, float, float]) -> str:
    sqlite, in_use, free = native
    return f"SQLite heap {sqlite:.1f} MB, C malloc {in_use:.1f} MB in use + {free:.1f} MB held free"


def summary(figures: Figures) -> str:
    sqlite, free = figures.native_slopes()
    line = (f"memory per 1,000 operations after a {figures.warmup:,}-operation warm-up: RSS "
            f"{figures.rss_slope():+.2f} MB over {figures.rss[-1][0] - figures.rss[0][0]:,} operations (the warm-up: "
            f"{figures.warmup_slope():+.2f} MB; of the slope, SQLite's heap {sqlite:+.2f} MB, C malloc's free "
            f"memory {free:+.2f} MB)")
    if len(figures.traced) >= 2:
        bot, side = figures.traced_slope()
        line += (f"; traced over {figures.traced[-1].operations - figures.traced[0].operations:,} operations: "
                 f"the bot {bot / 1024:+.1f} KiB (of {figures.traced[-1].bot_bytes / 2**20:.1f} MB traced), the "
                 f"load side {side / 1024:+.1f} KiB")
    return line


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--warmup", type=int, default=WARMUP, help="operations before the first reading")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="untraced slices (RSS)")
    parser.add_argument("--per", type=int, default=PER, help="operations per untraced slice")
    parser.add_argument("--traced", type=int, default=TRACED, help="traced slices (0: none)")
    parser.add_argument("--traced-per", type=int, default=TRACED_PER, help="operations per traced slice")
    parser.add_argument("--frames", type=int, default=FRAMES, help="tracemalloc traceback depth")
    parser.add_argument("--top", type=int, default=6, help="the bot's largest growths shown per traced slice")
    parser.add_argument("--sqlite-cache-kib", type=int, default=None,
                        help="an experiment: PRAGMA cache_size=-N on every SQLite connection (default: SQLite's, "
                             "2,000 KiB each)")
    args = parser.parse_args(argv if argv is not None else [])
    if args.sqlite_cache_kib is not None:
        cap_sqlite_cache(args.sqlite_cache_kib)
    figures = await run(args.users, args.warmup, args.rounds, args.per, args.traced, args.traced_per, args.frames,
                        args.top)
    print(summary(figures), flush=True)


if __name__ == "__main__":
    import logging
    import sys

    logging.basicConfig(level=logging.ERROR)
    asyncio.run(main(sys.argv[1:]))
