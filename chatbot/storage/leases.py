"""Who holds the database: leases kept by the processes that use it, each with an owner and an expiry.

* Every running bot or console holds a ``runtime`` lease while it runs (shared: replicas may run side
  by side). Maintenance that must never run beside a bot — ``rotate-key`` — takes the ``maintenance``
  lease (exclusive) and is refused while any runtime lease is live; a bot is refused while
  maintenance runs. Whichever of the two comes second sees the first (each writes its row before it
  looks for the other's).
* A lease dies with its process. On PostgreSQL the authority is a session advisory lock (shared for
  runtimes, exclusive for maintenance, keyed by the schema) on a connection the holder keeps open: the
  server drops it the moment the process or its connection dies. On SQLite, a row whose process is
  gone from this host is dead at once (pid and process start time, so a reused pid does not count);
  a row from another host is live until its expiry, which the holder renews every ``ttl / 3``.
* The rows say who holds what (host, pid, since), so a refusal can name the holder.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import os
import secrets
import socket
from collections.abc import Sequence

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select

from chatbot.storage.db import Database
from chatbot.storage.tables import LeaseRow
from chatbot.storage.types import utcnow

log = logging.getLogger(__name__)
RUNTIME, MAINTENANCE = "runtime", "maintenance"
DEFAULT_TTL = 30.0
HOST = socket.gethostname()[:100]


class LeaseHeld(RuntimeError):
    """Another process holds what this one needs; the message names it and says what to do."""

    def __init__(self, message: str, holders: Sequence[LeaseRow] = ()) -> None:
        super().__init__(message)
        self.holders = list(holders)


def describe(row: LeaseRow) -> str:
    since = row.acquired_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    what = f"{row.purpose} " if row.purpose else ""
    return f"{what}on {row.host} pid {row.pid} since {since}"


def _running(bots: Sequence[LeaseRow]) -> str:
    more = f" and {len(bots) - 1} more" if len(bots) > 1 else ""
    return f"a bot is running on this database ({describe(bots[0])}{more})"


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks (Linux), or None when it cannot be read; "" for a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields and fields[0] in ("Z", "X"):  # exited, not yet reaped: gone for our purposes
        return ""
    return fields[19] if len(fields) > 19 else None


def _process_alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    except OSError:
        return False
    now_started = _process_start(pid)
    if now_started == "":
        return False
    return not started or now_started is None or now_started == started


def is_live(row: LeaseRow, now: dt.datetime | None = None) -> bool:
    """Same host: while its process exists (whatever the expiry says). Another host: until it expires."""
    if row.host == HOST:
        _host, _pid, started, _nonce = (row.owner.split(":") + ["", "", "", ""])[:4]
        return _process_alive(row.pid, started)
    return row.expires_at > (now or utcnow())


class Lease:
    """One process's hold on the database: :meth:`acquire`, then :meth:`release` (renewed in between)."""

    def __init__(self, db: Database, kind: str, purpose: str = "", *, ttl: float = DEFAULT_TTL) -> None:
        if kind not in (RUNTIME, MAINTENANCE):
            raise ValueError(f"unknown lease kind {kind!r}")
        self.db = db
        self.kind = kind
        self.purpose = purpose[:40]
        self.ttl = ttl
        pid = os.getpid()
        self.owner = f"{HOST}:{pid}:{_process_start(pid) or ''}:{secrets.token_hex(4)}"
        self.name = MAINTENANCE if kind == MAINTENANCE else f"{RUNTIME}:{self.owner}"
        self._lock_conn: AsyncConnection | None = None
        self._lock_key: int | None = None
        self._renewer: asyncio.Task[None] | None = None

    # -- acquire and release ---------------------------------------------------------------------------
    async def acquire(self) -> None:
        """Hold the lease or raise :class:`LeaseHeld` (having changed nothing)."""
        if not self.db.is_sqlite:
            await self._lock_advisory()
        try:
            if self.kind == RUNTIME:
                await self._acquire_runtime()
            else:
                await self._acquire_maintenance()
        except BaseException:
            await self._unlock_advisory()
            raise
        self._renewer = asyncio.create_task(self._renew_loop(), name=f"lease-{self.kind}")

    async def release(self) -> None:
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        try:
            async with self.db.write() as session:
                await session.exec(delete(LeaseRow).where(
                    col(LeaseRow.name) == self.name, col(LeaseRow.owner) == self.owner))
        except (SQLAlchemyError, OSError):  # the row expires on its own; the advisory lock goes with the connection
            log.warning("could not remove this process's lease row", exc_info=True)
        await self._unlock_advisory()

    async def _acquire_runtime(self) -> None:
        await self._insert()
        if self.db.is_sqlite:  # PostgreSQL: the shared advisory lock already excluded maintenance
            maintenance = [r for r in await self._rows(MAINTENANCE) if is_live(r)]
            if maintenance:
                await self._delete_own()
                raise LeaseHeld(f"the database is under maintenance ({describe(maintenance[0])}); start the bot "
                                f"again when it has finished", maintenance)
        await self._delete_dead()

    async def _acquire_maintenance(self) -> None:
        current = await self._rows(MAINTENANCE)
        if current and current[0].owner != self.owner:
            if self.db.is_sqlite and is_live(current[0]):
                raise LeaseHeld(f"another maintenance command is running ({describe(current[0])})", current)
            await self._delete_rows([current[0]])  # dead (SQLite), or its advisory lock is gone (PostgreSQL)
        try:
            await self._insert()
        except IntegrityError:
            raced = await self._rows(MAINTENANCE)
            raise LeaseHeld("another maintenance command started at the same moment"
                            + (f" ({describe(raced[0])})" if raced else ""), raced) from None
        runtimes = await self._rows(RUNTIME)
        live = [r for r in runtimes if is_live(r)] if self.db.is_sqlite else []
        if live:
            await self._delete_own()
            raise LeaseHeld(_running(live), live)
        await self._delete_rows(runtimes)  # left by processes that died

    # -- PostgreSQL advisory lock ------------------------------------------------------------------------
    async def _lock_advisory(self) -> None:
        conn = await self.db.engine.connect()
        try:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            schema = (await conn.execute(select(func.current_schema()))).scalar() or ""
            key = int.from_bytes(hashlib.sha256(f"kis-chatops:{schema}".encode()).digest()[:8], "big", signed=True)
            try_lock = func.pg_try_advisory_lock_shared if self.kind == RUNTIME else func.pg_try_advisory_lock
            got = bool((await conn.execute(select(try_lock(key)))).scalar())
        except BaseException:
            await conn.close()
            raise
        if not got:
            await conn.close()
            if self.kind == RUNTIME:
                rows = await self._rows(MAINTENANCE)
                what = f" ({describe(rows[0])})" if rows else ""
                raise LeaseHeld(f"the database is under maintenance{what}; start the bot again when it has "
                                f"finished", rows)
            bots = [r for r in await self._rows(RUNTIME) if is_live(r)]
            if bots:
                raise LeaseHeld(_running(bots), bots)
            others = await self._rows(MAINTENANCE)
            if others:
                raise LeaseHeld(f"another maintenance command is running ({describe(others[0])})", others)
            raise LeaseHeld("a bot is running on this database (it holds the database lock)")
        self._lock_conn, self._lock_key = conn, key

    async def _unlock_advisory(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        if conn is None or self._lock_key is None:
            return
        unlock = func.pg_advisory_unlock_shared if self.kind == RUNTIME else func.pg_advisory_unlock
        try:
            await conn.execute(select(unlock(self._lock_key)))
            await conn.close()
        except (SQLAlchemyError, OSError):  # a broken connection: discard it (the server drops its locks too)
            with contextlib.suppress(Exception):
                await conn.invalidate()

    async def _keep_advisory(self) -> None:
        """Still connected, so the advisory lock still holds; else connect and take it again."""
        if self._lock_conn is not None:
            try:
                await self._lock_conn.execute(select(1))
                return
            except (SQLAlchemyError, OSError):
                log.warning("the connection holding the database lock broke; taking the lock again")
                conn, self._lock_conn = self._lock_conn, None
                with contextlib.suppress(Exception):
                    await conn.invalidate()
        try:
            await self._lock_advisory()
        except LeaseHeld as exc:  # maintenance slipped in while the lock was down: the operator must know
            log.error("could not take the database lock again; stop this process before any maintenance "
                      "finishes", extra={"reason": str(exc)})

    # -- renewal --------------------------------------------------------------------------------------------
    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.renew()
            except Exception:  # the lease must outlive any one failed renewal
                log.warning("could not renew the database lease", exc_info=True)

    async def renew(self) -> None:
        if not self.db.is_sqlite:
            await self._keep_advisory()
        async with self.db.write() as session:
            result = await session.exec(update(LeaseRow).where(
                col(LeaseRow.name) == self.name, col(LeaseRow.owner) == self.owner).values(
                expires_at=utcnow() + dt.timedelta(seconds=self.ttl)))
        if result.rowcount == 0:
            log.warning("this process's lease row was gone; writing it again", extra={"lease": self.kind})
            with contextlib.suppress(IntegrityError):
                await self._insert()

    # -- rows -------------------------------------------------------------------------------------------------
    async def _insert(self) -> None:
        now = utcnow()
        pid = os.getpid()
        async with self.db.write() as session:
            session.add(LeaseRow(name=self.name, kind=self.kind, owner=self.owner, host=HOST, pid=pid,
                                 purpose=self.purpose, acquired_at=now,
                                 expires_at=now + dt.timedelta(seconds=self.ttl)))

    async def _rows(self, kind: str) -> list[LeaseRow]:
        async with self.db.session() as session:
            return list((await session.exec(select(LeaseRow).where(col(LeaseRow.kind) == kind)
                                            .order_by(col(LeaseRow.acquired_at)))).all())

    async def _delete_own(self) -> None:
        await self._delete_rows([], own=True)

    async def _delete_rows(self, rows: Sequence[LeaseRow], *, own: bool = False) -> None:
        """Remove ``rows`` (each only while it is still the same holder's), and this process's own if ``own``."""
        targets = [(r.name, r.owner) for r in rows] + ([(self.name, self.owner)] if own else [])
        if not targets:
            return
        async with self.db.write() as session:
            for name, owner in targets:
                await session.exec(delete(LeaseRow).where(
                    col(LeaseRow.name) == name, col(LeaseRow.owner) == owner))

    async def _delete_dead(self) -> None:
        """Tidy up rows left by processes that died (they are ignored anyway). On PostgreSQL a runtime
        holding the shared lock proves no maintenance runs, so a maintenance row is a leftover too."""
        now = utcnow()
        async with self.db.session() as session:
            rows = list((await session.exec(select(LeaseRow))).all())
        dead = [r for r in rows if r.owner != self.owner
                and ((r.kind == MAINTENANCE and not self.db.is_sqlite) or not is_live(r, now))]
        if dead:
            await self._delete_rows(dead)
            log.info("removed leases of processes that are gone", extra={"count": len(dead)})


async def refuse_second_sqlite_bot(lease: Lease) -> None:
    """SQLite serves one process: a second bot process on the same file is refused (replicas need
    PostgreSQL, where the once-only work is shared out through locks). Processes that are gone do not count."""
    if not lease.db.is_sqlite:
        return
    others = [r for r in await lease._rows(RUNTIME)
              if r.owner != lease.owner and r.pid != os.getpid() and is_live(r)]
    if others:
        await lease.release()
        raise LeaseHeld(f"{_running(others)}; SQLite serves one process: stop it, or run replicas on "
                        f"PostgreSQL (see README, Running replicas)", others)
