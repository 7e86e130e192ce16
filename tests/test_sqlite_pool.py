"""Connections under load: on a SQLite file a burst of sessions larger than any fixed pool all get a
connection at once (none waits for another to finish, none fails with "QueuePool limit ... reached"); and
an update whose database call found every connection busy is handled again and, if it still cannot be,
answered "busy, send it again", like a lock that escaped (the 10-minute soak on a loaded machine: 89
updates lost to pool timeouts)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from chatbot.console.botapi import BotApiEmulator
from chatbot.service.alerts import AlertView
from chatbot.service.errors import is_transient_lock
from chatbot.storage import Database
from chatbot.telegram import app as tg
from chatbot.telegram.i18n import t
from tests.harness import BotHarness

ALICE = BotApiEmulator.user(5201, "ko")
BURST = 40  # sessions held at once: past SQLAlchemy's default 5 + 10, and past the PostgreSQL pool's 10 + 20


def pool_exhausted() -> PoolTimeout:
    return PoolTimeout("QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00")


async def test_a_burst_of_sessions_larger_than_the_pool_all_get_a_connection(tmp_path: Path) -> None:
    """Each session holds its connection until every one of them has one: with a bounded pool the ones past
    its limit wait for a connection that is never given back (until the pool's timeout fails them)."""
    db = Database(f"sqlite:///{tmp_path}/pool.sqlite3")
    await db.migrate()
    everyone_in = asyncio.Event()
    inside = 0

    async def reader() -> int:
        nonlocal inside
        async with db.session() as session:
            connection = await session.connection()  # a session, as the services take them
            value = int((await connection.execute(text("SELECT 1"))).scalar_one())
            inside += 1
            if inside == BURST:
                everyone_in.set()
            await everyone_in.wait()
            return value

    try:
        results = await asyncio.gather(*(reader() for _ in range(BURST)))
        assert results == [1] * BURST
        async with db.write_connection() as conn:  # and the writers' path still has one
            await conn.execute(text("CREATE TABLE burst_done (n INTEGER)"))
    finally:
        await db.dispose()


async def test_connections_a_burst_opened_are_kept_for_the_next(tmp_path: Path) -> None:
    """The pool keeps what a burst needed (opening one costs a thread and its pragmas): the next burst of
    that size opens none."""
    db = Database(f"sqlite:///{tmp_path}/pool.sqlite3")
    opened = 0

    def count(*_: object) -> None:
        nonlocal opened
        opened += 1

    event.listen(db.engine.sync_engine, "connect", count)

    async def burst(size: int) -> None:
        gate = asyncio.Event()
        inside = 0

        async def reader() -> None:
            nonlocal inside
            async with db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                inside += 1
                if inside == size:
                    gate.set()
                await gate.wait()

        await asyncio.gather(*(reader() for _ in range(size)))

    try:
        await burst(20)
        first = opened
        await burst(20)
        assert first == 20 and opened == first
    finally:
        await db.dispose()


def test_every_connection_in_use_counts_as_busy_not_broken() -> None:
    assert is_transient_lock(pool_exhausted())
    assert not is_transient_lock(ValueError("QueuePool limit"))


async def test_an_update_that_found_no_connection_is_handled_again_then_asked_to_resend(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tg, "LOCK_RETRY_PAUSES", (0.01, 0.01, 0.01))
    bot = BotHarness(f"sqlite:///{tmp_path}/bot.sqlite3")
    await bot.start()
    try:
        assert bot.runtime is not None
        alerts = bot.runtime.alerts
        listing = alerts.active
        failures = {"list": 1}

        async def starved_list(user_id: int) -> list[AlertView]:
            if failures["list"]:
                failures["list"] -= 1
                raise pool_exhausted()
            return await listing(user_id)

        monkeypatch.setattr(alerts, "active", starved_list)
        replies = await bot.say(ALICE, "/alerts")  # once: handled again, answered as if nothing happened
        assert len(replies) == 1 and failures == {"list": 0}
        assert t("internal_error", "ko") not in replies[0]["text"]
        failures["list"] = 10  # never a connection: told to send it again (nothing changed), not "failed"
        replies = await bot.say(ALICE, "/alerts")
        assert [m["text"] for m in replies] == [t("busy_retry", "ko")]
    finally:
        await bot.stop()


async def test_a_reply_whose_connection_timed_out_is_sent_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A send whose connection was never made (TimedOut from httpx.ConnectTimeout: nothing reached Telegram) is
    sent again: the reply was lost, and on_error's own "could not process" met the same timeout (the 10-minute
    soak on a loaded machine: 53 sends failed so, each a ConnectTimeout to the loopback Bot API)."""
    import httpx
    from telegram.error import TimedOut
    from telegram.request import HTTPXRequest

    bot = BotHarness(f"sqlite:///{tmp_path}/bot.sqlite3")
    await bot.start()
    try:
        original = HTTPXRequest.do_request
        refusals = {"sendMessage": 2}  # the reply, then on_error's "could not process"

        async def unconnected(self: HTTPXRequest, url: str, method: str, *args: object, **kwargs: object
                              ) -> tuple[int, bytes]:
            endpoint = url.rsplit("/", 1)[-1]
            if refusals.get(endpoint):
                refusals[endpoint] -= 1
                raise TimedOut() from httpx.ConnectTimeout("connect timed out")
            return await original(self, url, method, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(HTTPXRequest, "do_request", unconnected)
        replies = await bot.say(ALICE, "/help")
        assert len(replies) == 1 and "/price" in replies[0]["text"]
    finally:
        await bot.stop()
