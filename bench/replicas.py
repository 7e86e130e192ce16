"""Replicas sending the outbox side by side: pushes per second through a notifier that answers at
once (so the figure is the database's part of a push), 1 sender on SQLite (no claims: one process),
1, 2 and 3 senders on PostgreSQL (each push claimed with FOR UPDATE SKIP LOCKED, the oldest pending
of its chat). Telegram itself allows ~30 pushes/s per bot, so any figure well above that is headroom.

    python -m bench replicas

The hand-over time (a replica killed, its feed sessions owned again) is measured by
``pytest -n 0 -s tests/test_replicas.py``, which prints it.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time

from chatbot.alerts import outbox
from chatbot.alerts.notices import Delivered, Delivery, Notice, OrderFilled
from chatbot.alerts.outbox import OutboxSender, Push
from chatbot.storage import Database

PG_BASE = "postgresql://root@127.0.0.1:5432/test"
PUSHES, CHATS = 3_000, 1_000


class Instant:
    async def deliver(self, chat_id: int, notice: Notice) -> Delivery:
        return Delivered(1)


async def _blocked(owner_id: int) -> None:
    return None


async def _run(url: str, senders: int, claims: bool = True) -> float:
    """Pushes per second with ``senders`` senders, each on its own connection pool (a replica each)."""
    dbs = [Database(url) for _ in range(senders)]
    try:
        await dbs[0].migrate()
        fill = OrderFilled("en", "1", "005930", "Samsung", "buy", 1, 70_000, "090000")
        async with dbs[0].write() as session:
            await outbox.enqueue(session, [Push(f"b{i}", 1, i % CHATS, fill) for i in range(PUSHES)], keys_are_new=True)
        workers = [OutboxSender(db) for db in dbs]
        for worker in workers:
            worker.notifier, worker.on_blocked = Instant(), _blocked
            worker.claims = worker.claims and claims
        started = time.perf_counter()
        sent = 0
        while sent < PUSHES:
            sent += sum(await asyncio.gather(*(w.drain() for w in workers)))
        return PUSHES / (time.perf_counter() - started)
    finally:
        for db in dbs:
            await db.dispose()


async def _postgres(senders: int, claims: bool = True) -> float | None:
    try:
        import psycopg
    except ImportError:
        return None
    schema = f"bench_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(PG_BASE, autocommit=True, connect_timeout=2) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.Error:
        return None
    try:
        return await _run(f"{PG_BASE}?options=-csearch_path%3D{schema}", senders, claims)
    finally:
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = await _run(f"sqlite:///{tmp}/bench.sqlite3", 1)
    print(f"   outbox, {PUSHES:,} pushes to {CHATS:,} chats, instant notifier (pushes/s; ratio to SQLite, "
          f"to PostgreSQL unclaimed):")
    print(f"     {'SQLite, 1 sender (one process: no claims)':58} {sqlite:6.0f}   1.00x")
    alone = await _postgres(1, claims=False)
    if alone is None:
        print("     PostgreSQL: not answering at 127.0.0.1:5432 (skipped)")
        return
    print(f"     {'PostgreSQL, 1 sender unclaimed (the path before replicas)':58} {alone:6.0f}   "
          f"{alone / sqlite:.2f}x   1.00x")
    for senders in (1, 2, 3):
        rate = await _postgres(senders) or 0.0
        print(f"     {f'PostgreSQL, {senders} replica sender(s), rows claimed':58} {rate:6.0f}   "
              f"{rate / sqlite:.2f}x   {rate / alone:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
