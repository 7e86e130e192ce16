"""The pieces replicas share out work with: ownership locks, outbox rows claimed by several senders,
webhook updates taken once."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from chatbot.alerts import outbox
from chatbot.alerts.notices import Delivered, Delivery, Notice, OrderFilled
from chatbot.alerts.outbox import OutboxSender, Push
from chatbot.service.replicas import Replicas
from chatbot.storage import Database
from chatbot.storage.leases import RUNTIME, Lease, LeaseHeld, refuse_second_sqlite_bot
from chatbot.storage.locks import OwnershipLocks
from chatbot.storage.tables import LeaseRow
from chatbot.storage.types import utcnow


@pytest.fixture
async def second(database: Database) -> AsyncIterator[Database]:
    """Another replica's connection pool on the same database."""
    other = Database(str(database.engine.url.render_as_string(hide_password=False)))
    yield other
    await other.dispose()


async def test_a_lock_has_one_holder_and_passes_on_when_released(database: Database, second: Database) -> None:
    a, b = OwnershipLocks(database), OwnershipLocks(second)
    try:
        assert await a.take("feed:market-data")
        if database.is_sqlite:  # one process: every lock is its own
            assert await b.take("feed:market-data")
            return
        assert not await b.take("feed:market-data")
        assert await b.take("reconcile") and not await a.take("reconcile")
        await a.close()  # a replica gone: its connection, and with it every lock
        assert await b.take("feed:market-data")
        assert await a.check()  # no connection: nothing held, nothing to lose
    finally:
        await a.close()
        await b.close()


class Recording:
    def __init__(self, name: str, seen: list[tuple[str, int, int]]) -> None:
        self.name, self.seen = name, seen

    async def deliver(self, chat_id: int, notice: Notice) -> Delivery:
        assert isinstance(notice, OrderFilled)
        self.seen.append((self.name, chat_id, notice.quantity))
        await asyncio.sleep(0.001)
        return Delivered(1)


async def test_two_senders_send_each_push_once_in_order_per_chat(database: Database, second: Database) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite serves one process: one sender")
    async with database.write() as session:
        await outbox.enqueue(session, [Push(f"k{i}", 1, 100 + i % 5, OrderFilled(
            "en", "1", "005930", "Samsung", "buy", i + 1, 70_000, "090000")) for i in range(60)])
    seen: list[tuple[str, int, int]] = []

    async def noop(owner_id: int) -> None:
        return None

    senders = [OutboxSender(database), OutboxSender(second)]
    for n, sender in enumerate(senders):
        sender.notifier, sender.on_blocked = Recording(f"s{n}", seen), noop
    sent = await asyncio.gather(*(s.drain() for s in senders))
    while sum(sent) < 60:
        more = await asyncio.gather(*(s.drain() for s in senders))
        assert sum(more) > 0
        sent = [a + b for a, b in zip(sent, more, strict=True)]
    assert sum(sent) == 60 and len(seen) == 60  # none twice
    assert sorted(q for _, _, q in seen) == list(range(1, 61))
    for chat in range(100, 105):  # each chat's pushes in the order they were written
        quantities = [q for _, c, q in seen if c == chat]
        assert quantities == sorted(quantities)


async def test_an_update_is_taken_once_and_taken_over_from_a_dead_replica(database: Database) -> None:
    lease = Lease(database, RUNTIME, "bot")
    await lease.acquire()
    try:
        live, other = Replicas(database, lease.owner), Replicas(database, "elsewhere:1:1:dead")
        assert await live.first_delivery(41)
        assert not await live.first_delivery(41)  # re-sent to the same replica
        assert not await other.first_delivery(41)  # re-sent to another: the taker is alive
        assert await other.first_delivery(42)
        assert await live.first_delivery(42)  # its taker has no lease: it died before acknowledging it
        assert not await other.first_delivery(42)
    finally:
        await lease.release()


async def test_a_second_bot_process_on_sqlite_is_refused(tmp_path: Path) -> None:
    from chatbot.storage import leases

    db = Database(f"sqlite:///{tmp_path}/one.sqlite3")
    await db.migrate()
    try:
        other = os.getppid()  # a live process that is not this one stands for another bot
        owner = f"{leases.HOST}:{other}:{leases._process_start(other) or ''}:abcd"
        async with db.write() as session:
            session.add(LeaseRow(name=f"{RUNTIME}:{owner}", kind=RUNTIME, owner=owner, host=leases.HOST, pid=other,
                                 purpose="bot", acquired_at=utcnow(), expires_at=utcnow()))
        lease = Lease(db, RUNTIME, "bot")
        await lease.acquire()
        with pytest.raises(LeaseHeld, match="SQLite serves one process"):
            await refuse_second_sqlite_bot(lease)
        async with db.session() as session:  # its own row is gone again
            assert [r.pid for r in (await session.exec(select(LeaseRow))).all()] == [other]
    finally:
        await db.dispose()
