"""SQLite under concurrent writers: read-then-write transactions from many updates at once, while
another process takes the database's write lock now and then, all succeed (none sees "database is
locked"); a lock that escapes anyway is retried by the bot, never shown to a user; and the database
file is created readable by its owner only. A transaction run whole on the driver's thread
(``Database.write_on_driver``, the alert engine's fire path) commits, rolls back and waits for another
process's lock like the others."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
import sys
import threading
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event, func
from sqlalchemy.exc import OperationalError
from sqlalchemy.util import greenlet_spawn
from sqlmodel import col, select

from chatbot.alerts import fire_sqlite
from chatbot.alerts.engine import AlertEngine, Crossing
from chatbot.alerts.repository import AlertRepository
from chatbot.console.botapi import BotApiEmulator
from chatbot.service.alerts import AlertView
from chatbot.service.cards import CardStatus, CardStore
from chatbot.service.users import Users
from chatbot.storage import Database
from chatbot.storage import db as db_module
from chatbot.storage.tables import AlertRow, PendingOrderRow, UserRow
from chatbot.storage.types import utcnow
from chatbot.telegram import app as tg
from chatbot.telegram.i18n import t
from tests.harness import BotHarness

ALICE = BotApiEmulator.user(5101, "ko")

# A second process: takes SQLite's write lock on "lock" and writes, commits on "free" (like a CLI
# command or a second bot writing to the same file).
LOCK_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
conn.execute("CREATE TABLE IF NOT EXISTS other_process (n INTEGER)")
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "lock":
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO other_process VALUES (1)")  # its commit makes readers' snapshots stale
        print("locked", flush=True)
    elif line.strip() == "free":
        conn.execute("COMMIT")
        print("free", flush=True)
"""


class StubFeed:
    """The market-data feed as the engine's arm and delete see it."""

    max_subscriptions = 40

    def __init__(self) -> None:
        self.subscriptions: set[str] = set()

    async def subscribe(self, _tr_id: str, code: str) -> None:
        self.subscriptions.add(code)

    async def unsubscribe(self, _tr_id: str, code: str) -> None:
        self.subscriptions.discard(code)


async def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


def alert(owner: int, threshold: int) -> AlertRow:
    return AlertRow(owner_id=owner, chat_id=owner, language="ko", code="005930", name="삼성전자", direction="above",
                    threshold=threshold, reference_price=70_000, percent=None, repeat=False, cooldown_seconds=600)


async def test_concurrent_read_then_write_transactions_never_see_a_lock(tmp_path: Path) -> None:
    path = tmp_path / "busy.sqlite3"
    db = Database(f"sqlite:///{path}")
    await db.migrate()
    begins: list[int] = []  # write statements started

    def on_execute(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith(("BEGIN IMMEDIATE", "INSERT", "UPDATE", "DELETE")):
            begins.append(1)  # a writer is at the write lock

    event.listen(db.engine.sync_engine, "before_cursor_execute", on_execute)
    users = Users(db)
    cards = CardStore(db, ttl_seconds=600)
    engine = AlertEngine(db, StubFeed(), lambda: None)  # type: ignore[arg-type]
    repository = AlertRepository(db)
    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", LOCK_HOLDER, str(path),
                                                  stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert holder.stdin is not None and holder.stdout is not None

    async def tell(command: str, answer: str) -> None:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.write(f"{command}\n".encode())
        await holder.stdin.drain()
        assert (await asyncio.wait_for(holder.stdout.readline(), 60)).decode().strip() == answer

    errors: list[BaseException] = []
    claims_won: list[str] = []
    reads = 0
    stop_reading = asyncio.Event()

    async def guarded(work: Awaitable[Any]) -> None:
        try:
            await work
        except Exception as exc:  # noqa: BLE001 -- the figure under test: every one is a failure
            errors.append(exc)

    async def claim_twice(owner: int, index: int) -> None:  # a double tap: exactly one press wins
        card = await cards.create(owner_id=owner, chat_id=owner, message_id=index, environment="real",
                                  action="order", side="buy", code="005930", name="삼성전자", quantity=1,
                                  price=70_000, quoted_price=70_000)
        results = await asyncio.gather(*(cards.claim(card.id, owner, index, CardStatus.SUBMITTING) for _ in range(2)))
        claims_won.extend(card.id for row, refused in results if refused is None)

    async def arm_then_delete(owner: int, index: int) -> None:
        row = await engine.arm(alert(owner, 80_000 + index), repository.add)
        if index % 2:
            assert row.id is not None and await repository.delete(owner, row.id) is not None
            await engine.disarm(row.id, row.code)

    async def reader() -> None:
        nonlocal reads
        while not stop_reading.is_set():
            async with db.session() as session:
                (await session.exec(select(func.count()).select_from(UserRow))).one()
            reads += 1
            await asyncio.sleep(0)

    reading = asyncio.create_task(guarded(reader()))
    try:
        assert (await asyncio.wait_for(holder.stdout.readline(), 60)).decode().strip() == "ready"
        for cycle in range(4):
            await tell("lock", "locked")
            seen = len(begins)
            batch = [asyncio.create_task(guarded(work)) for i in range(36) for work in (
                [users.touch(1_000 + (i // 3) % 6, "en" if (i + cycle) % 2 else "ko")] if i % 3 == 0
                else [claim_twice(2_000 + i, cycle * 100 + i)] if i % 3 == 1
                else [arm_then_delete(3_000 + i % 5, cycle * 100 + i)])]
            await wait_until(lambda seen=seen: len(begins) > seen)  # a writer is at the lock the other process holds
            await tell("free", "free")
            await asyncio.gather(*batch)
    finally:
        stop_reading.set()
        await reading
        if holder.stdin is not None:
            holder.stdin.close()
        await holder.wait()
    assert errors == []
    assert reads > 0
    async with db.session() as session:
        assert (await session.exec(select(func.count()).select_from(UserRow))).one() == 6
        claimed = (await session.exec(select(func.count()).select_from(PendingOrderRow).where(
            col(PendingOrderRow.status) == CardStatus.SUBMITTING))).one()
        alerts = list((await session.exec(select(AlertRow))).all())
    assert len(claims_won) == len(set(claims_won)) == claimed == 4 * 12
    assert len(alerts) == 4 * 12 and sum(a.status == "deleted" for a in alerts) == 4 * 6
    await db.dispose()


async def test_the_database_file_and_its_wal_are_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "bot.sqlite3"
    db = Database(f"sqlite:///{path}")
    await db.migrate()
    try:
        users = Users(db)
        await users.touch(1, "ko")
        async with db.session() as session:  # a reader keeps the WAL and its index in place
            await session.get(UserRow, 1)
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
            modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
        assert modes == {f.name: 0o600 for f in files}
    finally:
        await db.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def locked_error() -> OperationalError:
    return OperationalError("UPDATE users SET last_seen=?", {}, sqlite3.OperationalError("database is locked"))


async def test_a_lock_that_escapes_is_retried_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tg, "LOCK_RETRY_PAUSES", (0.01, 0.01, 0.01))
    bot = BotHarness(f"sqlite:///{tmp_path}/bot.sqlite3")
    await bot.start()
    try:
        assert bot.runtime is not None
        users, alerts = bot.runtime.users, bot.runtime.alerts
        touch, listing = users.touch, alerts.active
        failures = {"touch": 1, "list": 2}

        async def flaky_touch(user_id: int, language: str | None) -> bool:
            if failures["touch"]:
                failures["touch"] -= 1
                raise locked_error()
            return await touch(user_id, language)

        async def flaky_list(user_id: int) -> list[AlertView]:
            if failures["list"]:
                failures["list"] -= 1
                raise locked_error()
            return await listing(user_id)

        monkeypatch.setattr(users, "touch", flaky_touch)
        monkeypatch.setattr(alerts, "active", flaky_list)
        replies = await bot.say(ALICE, "/help")  # the gate met the lock: handled again, answered once
        assert len(replies) == 1 and "/price" in replies[0]["text"]
        replies = await bot.say(ALICE, "/alerts")  # a handler met it twice
        assert len(replies) == 1 and failures == {"touch": 0, "list": 0}
        texts = [m.get("text") or "" for m in bot.api.bot_messages(ALICE["id"])]
        assert not any(t("internal_error", "ko") in text or t("busy_retry", "ko") in text for text in texts)
        failures["list"] = 10  # a lock that outlasts every retry: asked to send it again, not "went wrong"
        replies = await bot.say(ALICE, "/alerts")
        assert [m["text"] for m in replies] == [t("busy_retry", "ko")]
    finally:
        await bot.stop()


async def test_a_transaction_on_the_driver_thread_commits_rolls_back_and_waits_for_a_lock(tmp_path: Path) -> None:
    path = tmp_path / "driver.sqlite3"
    db = Database(f"sqlite:///{path}")
    await db.migrate()

    def insert_user(user_id: int, fail: bool, cursor: Any) -> int:
        cursor.execute("INSERT INTO other_process (n) VALUES (?)", (user_id,))
        if fail:
            raise ValueError("after the write")
        return user_id

    async def rows() -> list[int]:
        async with db.engine.connect() as conn:
            return [r[0] for r in await conn.exec_driver_sql("SELECT n FROM other_process ORDER BY n")]

    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", LOCK_HOLDER, str(path),
                                                  stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert (await asyncio.wait_for(holder.stdout.readline(), 60)).decode().strip() == "ready"
        assert await db.write_on_driver(partial(insert_user, 7, False)) == 7
        with pytest.raises(ValueError, match="after the write"):
            await db.write_on_driver(partial(insert_user, 8, True))
        assert await rows() == [7]  # the failed one was rolled back
        holder.stdin.write(b"lock\n")
        await holder.stdin.drain()
        assert (await asyncio.wait_for(holder.stdout.readline(), 60)).decode().strip() == "locked"
        waiting = asyncio.create_task(db.write_on_driver(partial(insert_user, 9, False)))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # the other process holds the write lock
        holder.stdin.write(b"free\n")
        await holder.stdin.drain()
        assert await asyncio.wait_for(waiting, 60) == 9
        assert await rows() == [1, 7, 9]
        # An aiosqlite without the queue used: the same work through SQLAlchemy's DB-API adapter.
        raw = await db.engine.raw_connection()
        stand_in = SimpleNamespace(driver_connection=object(), dbapi_connection=raw.dbapi_connection)
        assert await db_module._on_driver_thread(stand_in, partial(
            db_module._immediate_transaction, partial(insert_user, 10, False))) == 10
        await greenlet_spawn(raw.close)
        assert await rows() == [1, 7, 9, 10]
    finally:
        holder.stdin.close()
        await holder.wait()
        await db.dispose()


def test_a_transaction_left_open_on_the_driver_connection_is_rolled_back_first(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "open.sqlite3")
    conn.execute("CREATE TABLE t (n INTEGER)")
    conn.commit()
    conn.execute("BEGIN")
    conn.execute("INSERT INTO t VALUES (1)")  # as if a rollback had failed
    try:
        assert db_module._immediate_transaction(lambda cursor: cursor.execute("INSERT INTO t VALUES (2)").rowcount,
                                                conn) == 1
        assert [row[0] for row in conn.execute("SELECT n FROM t")] == [2]
    finally:
        conn.close()


async def test_a_driver_lane_runs_its_transactions_in_order_and_holds_the_write_lock(tmp_path: Path) -> None:
    """Database.driver_lane: transactions queued back to back on the driver's thread, each its own
    BEGIN IMMEDIATE … COMMIT (a failing one rolls back alone), the bot's other writers after the lane."""
    db = Database(f"sqlite:///{tmp_path}/lane.sqlite3")
    await db.migrate()
    order: list[str] = []

    def insert(name: str, cursor: Any) -> str:
        cursor.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (name,))
        order.append(name)
        if name == "b":
            raise sqlite3.IntegrityError("b fails")
        return name

    async def other_writer() -> None:
        async with db.write() as session:
            await session.connection()
        order.append("other")

    async with db.driver_lane() as submit:
        futures = [submit(partial(insert, name)) for name in ("a", "b", "c")]
        writer = asyncio.create_task(other_writer())
        assert await futures[0] == "a"
        with pytest.raises(sqlite3.IntegrityError):
            await futures[1]
        assert await futures[2] == "c"
    await writer
    assert order == ["a", "b", "c", "other"]
    async with db.engine.connect() as conn:
        stored = set((await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).scalars())
    assert {"a", "c"} <= stored and "b" not in stored
    await db.dispose()


async def test_an_urgent_transaction_in_a_driver_lane_goes_ahead_of_those_not_begun(tmp_path: Path) -> None:
    """Database.driver_lane(urgent=True): queued behind the transaction in progress and urgent ones before
    it, ahead of the others not yet begun (a fresh alert's fire does not wait for a storm's queued chunks)."""
    db = Database(f"sqlite:///{tmp_path}/lane.sqlite3")
    await db.migrate()
    order: list[str] = []
    entered, release = threading.Event(), threading.Event()

    def insert(name: str, cursor: Any) -> str:
        cursor.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (name,))
        order.append(name)
        if name == "held":
            entered.set()
            assert release.wait(30)
        return name

    async with db.driver_lane() as submit:
        futures = [submit(partial(insert, "held"))]
        await asyncio.to_thread(entered.wait, 30)
        futures += [submit(partial(insert, name)) for name in ("a", "b")]
        futures += [submit(partial(insert, name), urgent=True) for name in ("u1", "u2")]
        release.set()
        assert [await future for future in futures] == ["held", "a", "b", "u1", "u2"]
    assert order == ["held", "u1", "u2", "a", "b"]
    await db.dispose()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="open files are read from Linux's /proc")
async def test_a_fire_transaction_keeps_its_statement_journal_in_memory(tmp_path: Path) -> None:
    """A statement writing many rows inside a transaction keeps the pages it changes (to undo it alone) in its
    statement journal, which SQLite moved to a new temporary file in /var/tmp past 64 KB: firing 100 alerts
    created, wrote ~2 MB into and unlinked one such file per transaction. It stays in memory."""
    db = Database(f"sqlite:///{tmp_path}/journal.sqlite3")
    await db.migrate()
    try:
        async with db.write() as session:
            session.add_all(alert(1 + i % 500, 71_000 + (i * 7919) % 5000) for i in range(5_000))
        async with db.engine.connect() as conn:
            ids = list((await conn.exec_driver_sql("SELECT id FROM alerts ORDER BY id")).scalars())[::50]
        crossings = {alert_id: Crossing([alert_id], "005930", 80_000, "090000", 0.0) for alert_id in ids}

        def fire(cursor: Any) -> tuple[tuple[int, set[str]], list[str]]:
            fired = fire_sqlite.fire_on_driver(crossings, utcnow(), fire_sqlite.Binds.of(db.engine.dialect), cursor)
            files = []
            for fd in os.listdir("/proc/self/fd"):
                with contextlib.suppress(OSError):  # (closed meanwhile)
                    files.append(os.readlink(f"/proc/self/fd/{fd}"))
            return fired, [f for f in files if "etilqs_" in f]  # SQLite's temporary files

        (count, _codes), temporary = await db.write_on_driver(fire)
        assert count == 100
        assert temporary == []
    finally:
        await db.dispose()
