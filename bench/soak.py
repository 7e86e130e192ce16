"""Chaos soak: many users on the fake Bot API against the whole bot while the simulator fails at
random, with one bot restart mid-run; then the invariants, as figures.

    python -m bench.soak                      # 200 users, 60 s, inside Telegram's ~30 messages/s
    python -m bench.soak --database-url postgresql://root@127.0.0.1:5432/test
    python -m bench.soak --overload           # 200 users acting every 0.5-4 s: 5x past Telegram's limit
    python -m bench.soak --users 40 --seconds 20
    python -m bench.soak --long               # 200 users, 10 minutes

Invariants (checked against the simulator's own ledger, which the bot cannot touch):
* every confirmed order is in the simulator exactly once and in the journal (0 lost, 0 doubled);
  no order reached the simulator without a confirmation press;
* every alert whose threshold the market crossed fired exactly once, and none fired uncrossed;
* the bot never crashed, every update got an answer, memory stayed bounded (RSS start/end);
* no rate-limit error reached a user as a failure; no database error was logged (a lock retried
  counts); every confirmed order's card ends showing its outcome (0 untold).

Also reported: reply time (command or press to the update fully handled) p50/p99/max, overall and
per chat (fairness), messages sent per second against Telegram's limit, "queued" notices, the
restart time. ``--profile FILE`` writes a pyinstrument profile of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import secrets
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select

from bench import soak_conditional
from bench.common import file_size
from chatbot.config import KisSettings
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import protocol as p
from chatbot.sim.market import Trade
from chatbot.storage.tables import AlertRow, OrderJournalRow, OutboxRow, PendingOrderRow
from chatbot.telegram.i18n import t
from tests.harness import BotHarness

TELEGRAM_MESSAGES_PER_SECOND = 30  # one bot token, all chats together (AIORateLimiter's default)
OVERLOAD_THINK = (0.5, 4.0)
FAULT_GAP = (0.8, 2.0)  # seconds between one fault's end and the next one's start, uniform
FAULT_KINDS = ("latency", "5xx", "5xx_after_order", "rate_limit", "expire_tokens", "drop_websockets", "slow_order")
LATE = 30.0  # an answer slower than this is counted late (past Telegram's limit, replies queue)
ANSWER_PATIENCE = 180.0  # an update not handled in this long counts as unanswered
SETTLE_PATIENCE = 15.0  # after the market stops, a crossed alert still armed this long counts as missed
# Messages the bot sends or edits per user action, on average, in this soak's mix (measured: cards are
# sent, then edited on a press; an alert sends its push later).
SENDS_PER_ACTION = 1.6
LOAD_HELP = f"""\
Load and Telegram's limit: one bot token may send about {TELEGRAM_MESSAGES_PER_SECOND} messages a second
in all (the bot's rate limiter holds it there, chats taking turns). Each action costs ~{SENDS_PER_ACTION} sends, so N users
pausing T seconds on average (plus the reply time) ask for about N x {SENDS_PER_ACTION} / T sends a second:
inside the limit with a margin (25/s) when T >= N x {SENDS_PER_ACTION} / 25: for 200 users a mean think
time of 12.8 s or more. That is the default (--think 7.7 17.9 for 200 users; scaled with --users).
--overload (0.5-4 s) asks for ~140/s at 200 users, five times the limit: replies queue by design,
fairly (the report gives p50/p99/max per chat), and a user kept waiting 3 s without a word is told
once that they are queued; answers slower than {LATE:g} s are counted late, not lost.
"""


def within_limit(users: int, budget: float = 25.0) -> tuple[float, float]:
    """A think time whose mean keeps ``users`` inside ``budget`` sends a second (Telegram: ~30)."""
    mean = max(2.25, users * SENDS_PER_ACTION / budget)
    return (round(mean * 0.6, 1), round(mean * 1.4, 1))


CODES = ["005930", "000660", "035420", "005380", "051910", "006400", "035720", "068270"]
GARBAGE = ["/buy", "/buy 005930 -5", "/buy 005930 0", "/buy 005930 1.5", "/buy zzzz 1", "/sell 005930 999999",
           "/price", "/price 🙂", "/cancel abc", "/alert 005930 above abc", "/alert", "hello", "/nope",
           "/buy 005930 1 " + "9" * 50, "/price " + "x" * 5000, "/alert off 424242"]


@dataclass
class Report:
    users: int
    seconds: float
    commands: int = 0
    presses: int = 0
    unanswered: int = 0
    confirms: int = 0
    orders_journalled: int = 0
    orders_in_simulator: int = 0
    lost: int = 0
    doubled: int = 0
    unconfirmed: int = 0
    uncertain_reported: int = 0
    uncertain_placed: int = 0
    alerts_set: int = 0
    alerts_crossed: int = 0
    alerts_fired: int = 0
    alerts_missed: int = 0
    alerts_doubled: int = 0
    alerts_fired_uncrossed: int = 0
    rate_limit_failures_shown: int = 0
    errors_logged: int = 0
    restarts: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    card_outcomes: Counter[str] = field(default_factory=Counter)
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    untold: int = 0  # confirmed orders whose card never showed the outcome
    late: int = 0  # answered, but after more than LATE seconds
    database_errors: int = 0  # database exceptions logged (a lock retried by the bot counts too)
    lock_retries: int = 0  # updates handled again after a database lock escaped
    restart_seconds: float = 0.0
    replies: dict[int, list[float]] = field(default_factory=dict)  # chat -> seconds per command/press
    sends: list[float] = field(default_factory=list)  # monotonic time of each message sent or edited
    queued_notices: Counter[int] = field(default_factory=Counter)  # chat -> "you are queued" notices
    events: list[tuple[float, str]] = field(default_factory=list)  # (wall time, what): restart, feed drops
    missed_details: list[str] = field(default_factory=list)
    uncrossed_details: list[str] = field(default_factory=list)
    conditional: soak_conditional.ConditionalFigures | None = None  # /stop, /tp, /trail, /bracket
    wal: WalWatch | None = None  # SQLite: the database files' sizes and their WALs' largest, sampled

    @property
    def ok(self) -> bool:
        return not (self.lost or self.doubled or self.unconfirmed or self.unanswered or self.alerts_missed
                    or self.alerts_doubled or self.alerts_fired_uncrossed or self.rate_limit_failures_shown
                    or self.errors_logged or self.untold or self.database_errors
                    or (self.conditional is not None and not self.conditional.ok))

    def reply_figures(self) -> dict[str, float]:
        every = sorted(x for chat in self.replies.values() for x in chat)
        chats = {chat: sorted(xs) for chat, xs in self.replies.items() if xs}
        p99s = sorted(quantile(xs, 0.99) for xs in chats.values())
        return {"p50": quantile(every, 0.5), "p99": quantile(every, 0.99), "max": every[-1] if every else 0.0,
                "chat_p99_median": quantile(p99s, 0.5), "chat_p99_worst": p99s[-1] if p99s else 0.0}

    def worst_chat(self) -> tuple[int, list[float]]:
        chats = {chat: sorted(xs) for chat, xs in self.replies.items() if xs}
        if not chats:
            return 0, []
        chat = max(chats, key=lambda c: (quantile(chats[c], 0.99), chats[c][-1]))
        return chat, chats[chat]

    def send_rates(self) -> tuple[float, float]:
        """Messages sent or edited per second: mean over the run, and the busiest second."""
        if not self.sends:
            return 0.0, 0.0
        per_second = Counter(int(at - self.sends[0]) for at in self.sends)
        return len(self.sends) / max(self.sends[-1] - self.sends[0], 1.0), float(max(per_second.values()))

    def lines(self) -> list[str]:
        return [
            (f"soak: {self.users} users, {self.seconds:.0f} s, {self.commands} commands, {self.presses} button presses, "
            f"{self.restarts} bot restart(s)"),
            (f"orders: {self.confirms} confirmations pressed, {self.orders_journalled} accepted in the journal, "
            f"{self.orders_in_simulator} in the simulator; lost {self.lost}, doubled {self.doubled}, "
            f"unconfirmed in simulator {self.unconfirmed}; reported uncertain {self.uncertain_reported} "
            f"(of which placed {self.uncertain_placed})"),
            "cards by outcome: " + ", ".join(f"{k} {v}" for k, v in sorted(self.card_outcomes.items())),
            (f"alerts: {self.alerts_set} set, {self.alerts_crossed} crossed, {self.alerts_fired} fired, "
            f"missed {self.alerts_missed}, doubled {self.alerts_doubled}, fired uncrossed {self.alerts_fired_uncrossed}"),
            (f"updates unanswered {self.unanswered} (answered late, after {LATE:g} s: {self.late}); orders untold {self.untold}; errors logged {self.errors_logged}; "
            f"database errors {self.database_errors} (lock retries {self.lock_retries}); rate-limit failures "
            f"shown to users {self.rate_limit_failures_shown}"),
            "faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())),
            self.reply_line(),
            (f"restart took {self.restart_seconds:.1f} s; RSS start {self.rss_start_mb:.0f} MB, "
            f"end {self.rss_end_mb:.0f} MB"),
            *(self.wal.lines() if self.wal is not None else []),
            *self.missed_details,
            *self.uncrossed_details,
            *([self.conditional.line(), *self.conditional.details] if self.conditional is not None else []),
            "INVARIANTS HOLD" if self.ok else "INVARIANTS VIOLATED",
        ]

    def reply_line(self) -> str:
        f = self.reply_figures()
        chat, worst = self.worst_chat()
        mean_rate, peak_rate = self.send_rates()
        notices = sum(self.queued_notices.values())
        return (f"replies: p50 {f['p50']:.2f} s, p99 {f['p99']:.2f} s, max {f['max']:.2f} s; per chat p99: median "
                f"{f['chat_p99_median']:.2f} s, worst {f['chat_p99_worst']:.2f} s (chat {chat}: "
                f"{len(worst)} replies, p50 {quantile(worst, 0.5):.2f} s, max {worst[-1] if worst else 0:.2f} s)\n"
                f"messages sent or edited: {mean_rate:.1f}/s mean, {peak_rate:.0f} in the busiest second "
                f"(Telegram allows ~{TELEGRAM_MESSAGES_PER_SECOND}/s per bot); 'queued' notices {notices} to "
                f"{len(self.queued_notices)} chats")


def quantile(values: list[float], q: float) -> float:
    """``values`` sorted; the nearest-rank quantile (0.0 when empty)."""
    if not values:
        return 0.0
    return values[min(len(values) - 1, max(0, round(q * len(values) + 0.5) - 1))]


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class WalWatch:
    """The SQLite files of the run, stat'ed every ``period`` seconds from a thread of its own (so the
    samples keep coming while the event loop is busy, when a WAL grows fastest): each database file in
    the database's directory (the bot's; the embedded simulator keeps its state in the same one, see
    chatbot/storage/sim_state.py; any other database created there is watched too) and its ``-wal``: the
    largest size each reached. SQLite reuses a WAL file rather than shrink it (Database._checkpoint_loop):
    its size falls only when the checkpoint loop cuts it (idle), or a WAL started over is cut to
    ``journal_size_limit``, so a sample misses the largest size only if such a cut came within
    ``period`` of its growing there."""

    def __init__(self, database: Path, period: float = 0.05) -> None:
        self.directory = database.parent
        self.period = period
        self.samples = 0
        self.wal_max: dict[str, int] = {}  # database file name -> its WAL's largest size
        self.wal_end: dict[str, int] = {}
        self.db_max: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-wal-watch", daemon=True)

    def start(self) -> WalWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()  # the files as the run left them (the bot still up: before its closing checkpoint)
        self.wal_end = {name: file_size(self.directory / f"{name}-wal") for name in self.db_max}

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.sample()

    def sample(self) -> None:
        self.samples += 1
        for wal in self.directory.glob("*-wal"):
            name = wal.name.removesuffix("-wal")
            self.wal_max[name] = max(self.wal_max.get(name, 0), file_size(wal))
            self.db_max[name] = max(self.db_max.get(name, 0), file_size(self.directory / name))

    def lines(self) -> list[str]:
        if not self.db_max:
            return ["SQLite WAL: no database file seen"]
        return [f"SQLite {name}: database {self.db_max[name] / 2**20:.1f} MB, largest WAL "
                f"{self.wal_max[name] / 2**20:.1f} MB, at the end {self.wal_end.get(name, 0) / 2**20:.1f} MB "
                f"(stat every {self.period * 1e3:.0f} ms, {self.samples:,} samples)" for name in sorted(self.db_max)]


class _ErrorCounter(logging.Handler):
    """Errors logged; and, at any level, database exceptions and the bot's retries after a lock."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.database = 0
        self.lock_retries = 0
        self.samples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        error = record.exc_info[1] if record.exc_info else None
        if message.startswith("database locked"):
            self.lock_retries += 1
        if (error is not None and _is_database_error(error)) or "database is locked" in message \
                or message.startswith("database locked"):
            self.database += 1
            self._sample(record, error)
        if record.levelno >= logging.ERROR:
            self.count += 1
            self._sample(record, error)

    def _sample(self, record: logging.LogRecord, error: BaseException | None) -> None:
        if len(self.samples) < 5:
            cause = f" ({type(error).__name__}: {str(error).splitlines()[0][:160]})" if error else ""
            self.samples.append(f"{record.name}: {record.getMessage()}{cause}")


def _is_database_error(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, SQLAlchemyError | sqlite3.Error) or type(seen).__module__.startswith("psycopg"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Soak:
    def __init__(self, bot: BotHarness, users: int, seconds: float, seed: int,
                 think: tuple[float, float] = OVERLOAD_THINK, fault_gap: tuple[float, float] = FAULT_GAP,
                 wal: WalWatch | None = None) -> None:
        self.bot = bot
        self.wal = wal
        self.fault_gap = fault_gap
        self.users = [BotApiEmulator.user(50_000 + i, "ko" if i % 3 else "en") for i in range(users)]
        self.seconds = seconds
        self.think = think
        self.rng = random.Random(seed)
        self.report = Report(users, seconds)
        self.trades: dict[str, list[tuple[float, int]]] = {}
        # alert id -> wall time the engine began arming it (AlertEngine.arm): it judges the symbol's trades
        # from then, before the row is stored and stamped created_at (see check)
        self.alert_armed_from: dict[int, float] = {}
        self.deadline = 0.0
        self.restarting = False
        self.started_wall = time.time()
        self.queued_texts = {t("queued", "ko"), t("queued", "en")}
        self.sending_marks = (t("popup_sending", "ko"), t("popup_sending", "en"))

    def watch_sends(self) -> None:
        def on_event(event: str, message: dict[str, Any]) -> None:
            if event in ("sent", "edited", "photo"):
                self.report.sends.append(time.monotonic())
                if event == "sent" and message.get("text") in self.queued_texts:
                    self.report.queued_notices[message["chat"]["id"]] += 1
        self.bot.api.listeners.append(on_event)

    def replied(self, user: dict[str, Any], started: float) -> None:
        took = time.monotonic() - started
        self.report.replies.setdefault(user["id"], []).append(took)
        self.report.late += took > LATE

    # -- bookkeeping ------------------------------------------------------------------------------------------
    def watch_market(self) -> None:
        def record(trade: Trade) -> None:
            self.trades.setdefault(trade.code, []).append((time.time(), trade.price))
        self.bot.sim.market.add_listener(record)

    def watch_arming(self) -> None:
        """Note when the engine begins arming each alert: from then a crossing fires it (ticks seen while
        its row is stored count), though its created_at is stamped only when the row is stored."""
        rt = self.bot.runtime
        engine = rt.engine if rt is not None else None
        if engine is None:
            return
        arm = engine.arm
        armed_from = self.alert_armed_from

        async def timed_arm(row: AlertRow, store: Callable[[AlertRow], Awaitable[AlertRow]]) -> AlertRow:
            began = time.time()
            stored = await arm(row, store)
            armed_from[stored.id or 0] = began
            return stored
        setattr(engine, "arm", timed_arm)  # noqa: B010 (an instance attribute over the method)

    def answered(self, before: int, user: dict[str, Any]) -> bool:
        return len(self.bot.api.bot_messages(user["id"])) > before

    # -- actors -------------------------------------------------------------------------------------------------
    async def user(self, user: dict[str, Any]) -> None:
        rng = random.Random(self.rng.random())
        await asyncio.sleep(rng.uniform(0, self.think[1]))  # users arrive spread out, not all in one instant
        while time.monotonic() < self.deadline:
            try:
                await self.act(user, rng)
            except TimeoutError:
                self.report.unanswered += 1
            think = rng.uniform(*self.think)
            await asyncio.sleep(min(think, max(0.0, self.deadline - time.monotonic())))  # think time, not past the end

    async def say(self, user: dict[str, Any], text: str) -> list[dict[str, Any]]:
        self.report.commands += 1
        before = len(self.bot.api.bot_messages(user["id"]))
        started = time.monotonic()
        replies = await self.bot.say(user, text, timeout=ANSWER_PATIENCE)
        if not replies and not self.answered(before, user):
            self.report.unanswered += 1
        else:
            self.replied(user, started)
        return replies

    async def press(self, user: dict[str, Any], message: dict[str, Any], data: str) -> None:
        self.report.presses += 1
        started = time.monotonic()
        answer = await self.bot.press(user, message, data, timeout=ANSWER_PATIENCE)
        if answer is None:
            self.report.unanswered += 1
        else:
            self.replied(user, started)

    async def act(self, user: dict[str, Any], rng: random.Random) -> None:
        r = rng.random()
        code = rng.choice(CODES)
        if r < 0.22:
            await self.say(user, f"/price {code}")
        elif r < 0.32:
            await self.say(user, rng.choice(GARBAGE))
        elif r < 0.40:
            await self.say(user, rng.choice(["/balance", "/orders", "/alerts"]))
        elif r < 0.82:
            await self.order(user, rng, code)
        elif r < 0.88:
            await soak_conditional.act(self, user, rng, code)
        else:
            await self.alert(user, rng, code)

    async def order(self, user: dict[str, Any], rng: random.Random, code: str) -> None:
        state = self.bot.sim.market.get(code)
        if state is None:
            return
        qty = rng.randint(1, 3)
        if rng.random() < 0.5:
            text = f"/buy {code} {qty}"
        else:
            offset = rng.randint(-4, 2) * p.tick_size(state.price)
            text = f"/buy {code} {qty} {p.round_down_to_tick(max(state.limits[0], state.price + offset))}"
        if rng.random() < 0.15:
            text = text.replace("/buy", "/sell")
        replies = await self.say(user, text)
        cards = [m for m in replies if any(d.startswith("oy:") for _, d in BotApiEmulator.buttons(m))]
        if not cards:
            return
        card = cards[0]
        confirm, dismiss = (d for _, d in BotApiEmulator.buttons(card))
        choice = rng.random()
        if choice < 0.55:
            self.report.confirms += 1
            await self.press(user, card, confirm)
        elif choice < 0.67:  # double tap / two devices
            self.report.confirms += 1
            self.report.presses += 2
            self.bot.api.press(user, card, confirm)
            await self.bot.press(user, card, confirm, timeout=ANSWER_PATIENCE)
        elif choice < 0.77:  # somebody else first, then the owner
            other = rng.choice(self.users)
            await self.press(other, card, confirm)
            self.report.confirms += 1
            await self.press(user, card, confirm)
        elif choice < 0.87:
            await self.press(user, card, dismiss)
        else:  # late: after the card expired
            await asyncio.sleep(6.0)
            self.report.confirms += 1
            await self.press(user, card, confirm)

    async def alert(self, user: dict[str, Any], rng: random.Random, code: str) -> None:
        state = self.bot.sim.market.get(code)
        if state is None:
            return
        steps = rng.randint(1, 4)
        if rng.random() < 0.5:
            text = f"/alert {code} above {state.price + steps * p.tick_size(state.price)}"
        else:
            text = f"/alert {code} below {state.price - steps * p.tick_size(state.price)}"
        replies = await self.say(user, text + (" repeat" if rng.random() < 0.1 else ""))
        if any("#" in (m.get("text") or "")[:12] for m in replies):
            self.report.alerts_set += 1

    async def market(self) -> None:
        while time.monotonic() < self.deadline + 1.0:
            if not self.restarting:
                with contextlib.suppress(Exception):
                    await self.bot.sim.tick()
            await asyncio.sleep(0.2)

    async def faults(self, rng: random.Random) -> None:
        """Faults one after another, ``fault_gap`` apart, each kind once per round in a shuffled order; a
        run too short for the first round (a loaded machine, a long restart) is drawn out until it is done."""
        deck: list[str] = []
        end = self.deadline - 2.0
        while time.monotonic() < end or len(self.report.faults) < len(FAULT_KINDS):
            await asyncio.sleep(rng.uniform(*self.fault_gap))
            if self.restarting:
                continue
            if not deck:
                deck = rng.sample(FAULT_KINDS, len(FAULT_KINDS))
            kind = deck.pop()
            faults = self.bot.sim.faults
            self.report.faults[kind] += 1
            if len(self.report.faults) < len(FAULT_KINDS) and time.monotonic() >= end - 1.0:
                # kinds still to come near the end: users and the market keep going until they have been
                self.deadline = max(self.deadline, time.monotonic() + self.fault_gap[1] + 3.0)
            if kind == "latency":
                faults.latency_seconds = 0.3
                await asyncio.sleep(1.0)
                faults.latency_seconds = 0.0
            elif kind == "5xx":
                faults.error_5xx_next = rng.randint(1, 3)
            elif kind == "5xx_after_order":
                faults.paths, faults.error_5xx_after_next = (p.PATH_ORDER_CASH,), 1
                await asyncio.sleep(1.5)
                faults.paths, faults.error_5xx_after_next = (), 0
            elif kind == "rate_limit":
                faults.rate_limit_next = rng.randint(1, 3)
            elif kind == "expire_tokens":
                self.bot.sim.auth.expire_all()
            elif kind == "drop_websockets":
                self.report.events.append((time.time(), "websockets dropped"))
                self.bot.sim.realtime["real"].drop_all()
            elif kind == "slow_order":
                faults.paths, faults.response_delay_seconds = (p.PATH_ORDER_CASH,), 2.5
                await asyncio.sleep(2.0)
                faults.paths, faults.response_delay_seconds = (), 0.0

    async def restart_midway(self) -> None:
        await asyncio.sleep(self.seconds / 2)
        self.restarting = True
        try:
            started = time.monotonic()
            self.report.events.append((time.time(), "restart began"))
            await self.bot.restart()
            self.report.events.append((time.time(), "restart done"))
            self.report.restart_seconds = time.monotonic() - started
            self.watch_market()
            self.watch_arming()
            self.report.restarts += 1
        finally:
            self.restarting = False

    # -- the run --------------------------------------------------------------------------------------------------
    async def run(self) -> Report:
        self.started_wall = time.time()
        self.watch_market()
        self.watch_arming()
        self.watch_sends()
        self.report.rss_start_mb = rss_mb()
        if self.wal is not None:
            self.report.wal = self.wal.start()
        self.deadline = time.monotonic() + self.seconds
        actors = [asyncio.create_task(self.user(u)) for u in self.users]
        background = [asyncio.create_task(self.market()), asyncio.create_task(self.faults(random.Random(7))),
                      asyncio.create_task(self.restart_midway())]
        await asyncio.gather(*actors)
        await asyncio.gather(*background)
        self.bot.sim.faults.clear()
        for _ in range(5):  # let the last crossings fire and every push leave
            await self.bot.sim.tick()
            await asyncio.sleep(0.3)
        await self.settle()
        if self.bot.runtime is not None and self.bot.runtime.sender is not None:
            await self.bot.runtime.sender.drain()
        self.report.rss_end_mb = rss_mb()
        if self.wal is not None:
            self.wal.stop()
        await self.check()
        return self.report

    async def settle(self, patience: float = SETTLE_PATIENCE) -> None:
        """The market has stopped: wait until every alert its trades crossed has left ``armed`` (the
        last ticks' frames may still be on their way to the engine on a loaded machine), or until
        ``patience`` runs out; whatever is still armed then is counted missed."""
        rt = self.bot.runtime
        assert rt is not None
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            async with rt.db.session() as session:
                armed = list((await session.exec(select(AlertRow).where(AlertRow.status == "armed"))).all())
            if not any(self.crossed_at(a) is not None for a in armed) \
                    and not await soak_conditional.unsettled(self):
                return
            await asyncio.sleep(0.1)

    async def check(self) -> None:
        rt = self.bot.runtime
        assert rt is not None
        async with rt.db.session() as session:
            journal = list((await session.exec(select(OrderJournalRow))).all())
            alerts = list((await session.exec(select(AlertRow))).all())
            pushes = list((await session.exec(select(OutboxRow).where(OutboxRow.kind == "alert"))).all())
            cards = list((await session.exec(select(PendingOrderRow))).all())
        r = self.report
        r.card_outcomes = Counter(c.status for c in cards)
        r.card_outcomes.update(f"journal {j.status}" + (f" {j.msg_cd}" if j.msg_cd else "") for j in journal
                               if j.status not in ("accepted", "filled", "partially_filled"))
        sim_orders = {(o.account_id, o.order_no): o for acct in self.bot.sim.exchange.accounts.values()
                      for o in acct.orders if o.kind == "new"}
        r.orders_in_simulator = len(sim_orders)
        accepted = [j for j in journal if j.action == "order" and j.kis_order_no
                    and j.status in ("accepted", "filled", "partially_filled")]
        r.orders_journalled = len(accepted)
        journalled_keys = {(j.account, j.kis_order_no) for j in accepted}
        r.lost = sum(1 for key in journalled_keys if key not in sim_orders)
        uncertain = [j for j in journal if j.status == "uncertain"]
        r.uncertain_reported = len(uncertain)
        unexplained = [o for key, o in sim_orders.items() if key not in journalled_keys]
        for j in uncertain:  # an order KIS took but never confirmed: the user was told to check
            match = next((o for o in unexplained if o.account_id == j.account and o.code == j.code
                          and o.quantity == j.quantity and (o.price or None) == j.price), None)
            if match is not None:
                unexplained.remove(match)
                r.uncertain_placed += 1
        r.doubled = len(accepted) - len(journalled_keys)
        r.unconfirmed = len(unexplained)
        confirmed_cards = {c.id for c in cards if c.status not in ("pending", "dismissed", "expired")}
        for c in cards:  # a confirmed card must end showing the outcome (placed, refused, or "check")
            shown = self.bot.api.messages.get((c.chat_id, c.message_id or 0), {}).get("text") or ""
            if c.id in confirmed_cards and (c.status == "submitting" or any(m in shown for m in self.sending_marks)):
                r.untold += 1
        r.untold += sum(1 for j in journal if j.status == "submitting")
        r.unconfirmed += sum(1 for j in journal if j.idempotency_key not in confirmed_cards)
        fired_by_alert = Counter(int(o.dedupe_key.split(":")[1]) for o in pushes)
        for a in alerts:
            crossed_at = self.crossed_at(a)
            fired = a.fired_count > 0
            r.alerts_crossed += crossed_at is not None and a.status != "deleted"
            r.alerts_fired += fired
            if crossed_at is not None and not fired and a.status in ("armed",):
                r.alerts_missed += 1
                r.missed_details.append(self.describe_missed(a, crossed_at))
            # Fired uncrossed: no trade crossed it since the engine began arming it. (It watches the symbol
            # from then: a crossing while the arm waited for the symbol's subscription or for the row to be
            # stored fires it, but came before created_at. Missed, above, counts only crossings after the
            # row was stored.)
            armed_from = self.alert_armed_from.get(a.id or 0, a.created_at.timestamp())
            if fired and self.crossed_at(a, since=armed_from) is None:
                r.alerts_fired_uncrossed += 1
                r.uncrossed_details.append(self.describe_uncrossed(a, armed_from))
            if not a.repeat and fired_by_alert[a.id or 0] > 1:
                r.alerts_doubled += 1
        for j in journal:
            if j.msg_cd == p.EGW_RATE_LIMIT and j.status == "failed":
                r.rate_limit_failures_shown += 1
        r.conditional = await soak_conditional.check(self)

    def describe_missed(self, alert: AlertRow, crossed_at: float) -> str:
        """What a missed alert was, and the run's events around it (times from the run's start)."""
        start = self.started_wall
        trades = [(round(at - start, 2), price) for at, price in self.trades.get(alert.code, ())
                  if crossed_at - 3 <= at <= crossed_at + 3]
        events = ", ".join(f"{what} {at - start:.2f}" for at, what in self.report.events)
        return (f"missed: alert #{alert.id} {alert.code} {alert.direction} {alert.threshold} (repeat {alert.repeat}, "
                f"status {alert.status}) created {alert.created_at.timestamp() - start:.2f} s, crossed "
                f"{crossed_at - start:.2f} s; trades around it {trades}; events: {events}")

    def describe_uncrossed(self, alert: AlertRow, armed_from: float) -> str:
        """What an alert fired without a crossing was, with the trades from its arming to its storing."""
        start, created = self.started_wall, alert.created_at.timestamp()
        trades = [(round(at - start, 2), price) for at, price in self.trades.get(alert.code, ())
                  if armed_from - 3 <= at <= created + 3]
        events = ", ".join(f"{what} {at - start:.2f}" for at, what in self.report.events)
        return (f"fired uncrossed: alert #{alert.id} {alert.code} {alert.direction} {alert.threshold} (repeat "
                f"{alert.repeat}, status {alert.status}) arming from {armed_from - start:.2f} s, created {created - start:.2f} s;"
                f" trades around it {trades}; events: {events}")

    def crossed_at(self, alert: AlertRow, since: float | None = None) -> float | None:
        """The first trade at or beyond ``alert``'s threshold after ``since`` (default: it was stored)."""
        created = alert.created_at.timestamp() if since is None else since
        for at, price in self.trades.get(alert.code, ()):
            if at <= created:
                continue
            if (alert.direction == "above" and price >= alert.threshold) or (
                    alert.direction == "below" and price <= alert.threshold):
                return at
        return None


async def run_soak(users: int = 200, seconds: float = 60.0, seed: int = 1, db_url: str | None = None,
                   think: tuple[float, float] | None = None, fault_gap: tuple[float, float] = FAULT_GAP) -> Report:
    """``think``: each user's pause between actions (default: inside Telegram's limit for ``users``);
    ``fault_gap``: the pause between faults (a shorter run packs every kind of fault in with a shorter one)."""
    think = think or within_limit(users)
    errors = _ErrorCounter()
    logging.getLogger().addHandler(errors)
    with tempfile.TemporaryDirectory() as tmp, _fresh_database(db_url, tmp) as url:
        bot = BotHarness(url, ttl=5, kis=KisSettings(order_timeout_seconds=2.0, max_alerts_per_user=1000))
        await bot.start()
        database = make_url(url).database if make_url(url).get_backend_name() == "sqlite" else None
        wal = WalWatch(Path(database)) if database and database != ":memory:" else None
        try:
            report = await Soak(bot, users, seconds, seed, think, fault_gap, wal).run()
        finally:
            await bot.stop()
            logging.getLogger().removeHandler(errors)
    report.errors_logged = errors.count
    report.database_errors = errors.database
    report.lock_retries = errors.lock_retries
    if errors.samples:
        print("errors logged (first few):", *errors.samples, sep="\n  ")
    return report


@contextlib.contextmanager
def _fresh_database(db_url: str | None, tmp: str) -> Iterator[str]:
    """SQLite in ``tmp`` by default; on PostgreSQL a schema of its own, dropped afterwards (the URL's
    database is used as it is, and must exist)."""
    if not db_url:
        yield f"sqlite:///{tmp}/soak.sqlite3"
        return
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        yield db_url
        return
    import psycopg

    schema = f"soak_{secrets.token_hex(4)}"
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=LOAD_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--long", action="store_true", help="200 users for 10 minutes")
    parser.add_argument("--think", type=float, nargs=2, metavar=("MIN", "MAX"), default=None,
                        help="each user's pause between actions, uniform in [MIN, MAX] seconds (default: "
                             "scaled to --users so the bot's sends stay inside Telegram's ~30 messages/s)")
    parser.add_argument("--overload", action="store_true",
                        help=f"users pause {OVERLOAD_THINK[0]:g}-{OVERLOAD_THINK[1]:g} s: past Telegram's limit "
                             f"from ~30 users on (see below)")
    parser.add_argument("--database-url", default=None,
                        help="database to run on (default: a fresh SQLite file); a postgresql:// URL gets a "
                             "schema of its own, dropped afterwards")
    parser.add_argument("--profile", metavar="FILE", default=None,
                        help="profile the run with pyinstrument; write the report (text) to FILE")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    think = args.think or (OVERLOAD_THINK if args.overload else within_limit(args.users))
    seconds = 600.0 if args.long else args.seconds
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="disabled")
        profiler.start()
    report = asyncio.run(run_soak(args.users, seconds, args.seed, args.database_url, tuple(think)))
    if profiler is not None:
        profiler.stop()
        with open(args.profile, "w", encoding="utf-8") as f:
            f.write(profiler.output_text(unicode=True, color=False, show_all=False))
    print(f"think time {think[0]:g}-{think[1]:g} s per user")
    print("\n".join(report.lines()))
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
