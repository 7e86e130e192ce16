"""Named ownership locks: work that must happen once across replicas (a feed session per app key,
reconciliation, the master-file refresh, the long poller) is done by whichever replica holds its lock.

* On PostgreSQL a lock is a session advisory lock (``pg_try_advisory_lock``), keyed by the schema and
  the name, all held on one connection this process keeps open. The server drops them the moment the
  process or its connection dies (a SIGKILL closes the socket at once); a host that vanishes without
  closing it is noticed by the server's TCP keepalive, set on that connection to about
  :data:`KEEPALIVE_BOUND` seconds. The holder pings its connection every check and, when it broke,
  counts every lock as lost (another replica may have it by then) and takes them again if it can.
* On SQLite there is one process (replicas need PostgreSQL), so every lock is granted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Collection

from sqlalchemy import BigInteger, Boolean, Integer, String, column, func, table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import select

from chatbot.storage.db import Database

log = logging.getLogger(__name__)
# The server's keepalive on the lock connection: idle 4 s, then 3 probes 2 s apart (a vanished host
# loses its locks within ~10 s; a killed process at once).
KEEPALIVE = {"tcp_keepalives_idle": 4, "tcp_keepalives_interval": 2, "tcp_keepalives_count": 3}
KEEPALIVE_BOUND = 10.0
# The server's lock table (advisory keys: classid the high 32 bits, objid the low 32, objsubid 1).
_PG_LOCKS = table("pg_locks", column("locktype", String), column("granted", Boolean), column("objsubid", Integer),
                  column("classid", BigInteger), column("objid", BigInteger), column("database", BigInteger))
_PG_DATABASE = table("pg_database", column("oid", BigInteger), column("datname", String))


def lock_key(schema: str, name: str) -> int:
    """The advisory lock's 64-bit key for ``name`` in ``schema`` (distinct from the runtime lease's)."""
    return int.from_bytes(hashlib.sha256(f"kis-chatops:{schema}:own:{name}".encode()).digest()[:8], "big",
                          signed=True)


class OwnershipLocks:
    """The named locks this process holds (:meth:`take`, :meth:`give_up`, :meth:`check`)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.held: set[str] = set()
        self._conn: AsyncConnection | None = None
        self._schema = ""
        self._io = asyncio.Lock()  # one statement at a time on the one connection

    @property
    def exclusive(self) -> bool:
        """True where every lock is granted to this process (SQLite: a single process)."""
        return self.db.is_sqlite

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self.db.engine.connect()
            try:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                # Named after this process, so an operator (and a test) can tell who holds what in pg_locks.
                await conn.execute(select(func.set_config("application_name", f"kis-chatops locks pid {os.getpid()}",
                                                          False)))
                for setting, value in KEEPALIVE.items():
                    with contextlib.suppress(SQLAlchemyError):  # not every server lets a session set them
                        await conn.execute(select(func.set_config(setting, str(int(value)), False)))
                self._schema = str((await conn.execute(select(func.current_schema()))).scalar() or "")
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._conn

    async def take(self, name: str) -> bool:
        """Hold ``name`` if no other process does; True when this process holds it (now or already)."""
        if name in self.held:
            return True
        if self.exclusive:
            self.held.add(name)
            return True
        async with self._io:
            conn = await self._connection()
            got = bool((await conn.execute(select(func.pg_try_advisory_lock(lock_key(self._schema, name))))).scalar())
        if got:
            self.held.add(name)
        return got

    async def held_anywhere(self, names: Collection[str]) -> set[str]:
        """Which of ``names`` some process holds now (one look at ``pg_locks``; none on SQLite)."""
        if self.exclusive or not names:
            return set()
        async with self._io:
            conn = await self._connection()
            wanted = {lock_key(self._schema, name) & 0xFFFF_FFFF_FFFF_FFFF: name for name in names}
            rows = (await conn.execute(
                select(_PG_LOCKS.c.classid, _PG_LOCKS.c.objid).where(
                    _PG_LOCKS.c.locktype == "advisory", _PG_LOCKS.c.granted, _PG_LOCKS.c.objsubid == 1,
                    _PG_LOCKS.c.database == select(_PG_DATABASE.c.oid)
                    .where(_PG_DATABASE.c.datname == func.current_database()).scalar_subquery()))).all()
        held = {(int(high) << 32) | int(low) for high, low in rows}
        return {name for key, name in wanted.items() if key in held}

    async def give_up(self, name: str) -> None:
        if name not in self.held:
            return
        self.held.discard(name)
        if self.exclusive or self._conn is None:
            return
        async with self._io:
            try:
                await self._conn.execute(select(func.pg_advisory_unlock(lock_key(self._schema, name))))
            except (SQLAlchemyError, OSError):
                await self._drop_connection()

    async def check(self) -> bool:
        """Is the connection holding the locks still alive? False (and every lock counted lost) if not."""
        if self.exclusive or self._conn is None:
            return True
        async with self._io:
            try:
                # Not wait_for: on 3.11 a cancel (the replicas' stop) that meets the answer is swallowed,
                # and the loop around this check runs on, its stop waiting forever.
                async with asyncio.timeout(5.0):
                    await self._conn.execute(select(1))
                return True
            except (SQLAlchemyError, OSError, TimeoutError):
                log.warning("the connection holding the ownership locks broke; every lock counts as lost",
                            extra={"locks": sorted(self.held)})
                await self._drop_connection()
                return False

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        self.held.clear()
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()

    async def close(self) -> None:
        """Give up every lock (closing the connection releases them all)."""
        conn, self._conn = self._conn, None
        self.held.clear()
        if conn is not None:
            try:
                await conn.execute(select(func.pg_advisory_unlock_all()))
                await conn.close()
            except (SQLAlchemyError, OSError):
                with contextlib.suppress(Exception):
                    await conn.invalidate()
