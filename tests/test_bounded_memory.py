"""What the bot keeps in memory stays bounded however long it runs: counted after N operations, not timed.

A bot runs for weeks; a structure that gains an entry per operation (per token issued, per order, per
alert) is an outage in the making. Each test here drives one structure through many operations and
checks it is no larger than a few entries afterwards. ``python -m bench.memory`` gives the figure for
the whole bot (RSS and traced bytes per 1,000 operations).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from chatbot.alerts.triggers import ArmedTrigger
from chatbot.console.botapi import BotApiEmulator
from chatbot.logs import SECRETS
from chatbot.security.credentials import CachedToken
from chatbot.security.secretbox import SecretBox
from chatbot.storage.db import Database
from chatbot.storage.tokens import DbTokenStore
from chatbot.telegram import access
from tests.harness import BotHarness
from tests.test_alert_storms import tick
from tests.test_triggers import CODE, engine_with, idle

DAY = 86_400.0


def _token(label: str) -> str:
    """Shaped like a KIS token (a JWT: dotted parts), each part too short for the redactor's token shape:
    only its registration redacts it."""
    return f"{label}." + ".".join(["t" * 100] * 3)


def _held(registry: Any) -> int:
    """How many values the log redactor holds, in whatever containers it keeps them."""
    return sum(len(v) for v in vars(registry).values() if isinstance(v, set | dict))


async def test_the_log_redactor_forgets_each_days_token_once_it_expired(tmp_path: Path, box: SecretBox,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """KIS tokens last a day: every user's is issued again daily (and at once after KIS invalidates them).
    Each was registered with the redactor, never to leave it: a user a day of ~350 characters, and every log
    line scanned against all of them. A token is redacted until it expires, then forgotten."""
    now = [time.time()]
    monkeypatch.setattr(SECRETS, "clock", lambda: now[0], raising=False)
    db = Database(f"sqlite:///{tmp_path}/tokens.sqlite3")
    await db.migrate()
    try:
        store = DbTokenStore(db, box)
        held = _held(SECRETS)
        for day in range(500):
            token = CachedToken(_token(f"day{day:04d}"), expires_at=now[0] + DAY, issued_at=now[0])
            await store.save("user-1", token)
            assert SECRETS.redact(f"token {token.access_token}") == "token [REDACTED]"
            now[0] += DAY + 1  # the next day: this token has expired
        await store.save("user-1", CachedToken(_token("today"), expires_at=now[0] + DAY, issued_at=now[0]))
        assert _held(SECRETS) - held <= 2, f"{_held(SECRETS) - held} tokens held after 501 days' tokens"
        assert SECRETS.redact(f"token {_token('today')}") == "token [REDACTED]"  # today's still is
        assert (await store.load("user-1")) is not None
    finally:
        await db.dispose()


async def test_the_trigger_engine_remembers_only_the_newest_fired_orders() -> None:
    """Each conditional order fired left its id in the trigger engine (so an adoption pass racing the firing
    does not arm it again), never to leave: one more per stop or take-profit fired, for as long as the
    bot ran. Only the newest are kept; the newest still count as known."""
    engine, feed, fired = await engine_with()
    engine.taken_kept = 50
    try:
        for order_id in range(1, 501):
            async with engine.arming(CODE) as seen:
                engine.arm(ArmedTrigger(order_id, CODE, 69_000, None), seen)
            feed.emit(tick(CODE, 68_000))  # crossed: fired and taken
            await idle(engine)
        assert len(fired) == 500 and len(engine) == 0
        assert engine.knows(500) and engine.knows(451)
        remembered = sum(engine.knows(order_id) for order_id in range(1, 501))
        assert remembered <= 50, f"{remembered} fired orders remembered after 500 fired"
    finally:
        await engine.stop()


async def test_strangers_refused_are_not_remembered_for_ever(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bot limited to its users refuses everyone else once a minute each, noting when: each stranger who
    ever wrote stayed noted for good (a public bot's token meets spam accounts for weeks). Past a bound, the
    notes older than the minute are forgotten, and if too few are, the older half."""
    monkeypatch.setattr(access, "MAX_REFUSED", 20, raising=False)
    harness = BotHarness(f"sqlite:///{tmp_path}/refusals.sqlite3", allowed_users=(1,))
    await harness.start()
    try:
        for n in range(120):
            (reply,) = await harness.say(BotApiEmulator.user(900_000 + n, "en"), "/price 005930")
            assert "limited to its registered users" in reply["text"]
        noted = len(harness.app.bot_data.get("refused_at", {}))
        assert noted <= 20, f"{noted} strangers noted after 120 refused"
        latest = BotApiEmulator.user(900_119, "en")
        assert await harness.say(latest, "/price 005930") == []  # the latest still told once a minute only
    finally:
        await harness.stop()


async def test_a_token_kis_declared_expired_leaves_the_log_redactor_at_once(tmp_path: Path, box: SecretBox) -> None:
    """KIS invalidates tokens before their time (the bot is told "expired" and issues a new one): each dead
    token stayed registered until its nominal expiry a day on, one per user per invalidation. Forgotten
    when the store drops it."""
    db = Database(f"sqlite:///{tmp_path}/tokens.sqlite3")
    await db.migrate()
    try:
        store = DbTokenStore(db, box)
        held = _held(SECRETS)
        now = time.time()
        for n in range(500):
            token = CachedToken(_token(f"inv{n:04d}"), expires_at=now + DAY, issued_at=now)
            await store.save("user-2", token)
            assert SECRETS.redact(f"token {token.access_token}") == "token [REDACTED]"
            await store.delete("user-2")  # TokenManager.invalidate: KIS said it expired
        assert _held(SECRETS) - held <= 2, f"{_held(SECRETS) - held} dead tokens held after 500 invalidated"
    finally:
        await db.dispose()
