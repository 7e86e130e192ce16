"""Engine, sessions and start-up migrations for ``database.url``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sqlite3
import stat
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, inspect
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.util import greenlet_spawn
from sqlmodel.ext.asyncio.session import AsyncSession

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
# How long a write waits, in all, for another process's SQLite write lock before giving up (the
# bot's own writers queue on an asyncio lock first and never count against this).
SQLITE_LOCK_PATIENCE = 30.0
# PostgreSQL connections kept (and the most opened beyond them under a burst). SQLAlchemy's 5 + 10
# ran out at 200 active users (the embedded simulator saves its state on every order, beside the
# bot's own reads and writes), and a session then waited for a connection.
PG_POOL_SIZE = 10
PG_POOL_OVERFLOW = 20
# SQLite (a file): connections kept for reuse, and no limit beyond them. A SQLite connection is a thread of
# aiosqlite's in this process, not a server's slot: there is nothing a limit protects (writers queue on the
# bot's write lock, readers share the WAL), and the bot's own concurrency bounds how many are open (256
# updates at once, plus its background loops). With SQLAlchemy's default (5 + 10, waiting 30 s for one) a
# reader failed with "QueuePool limit of size 5 overflow 10 reached" whenever 15 sessions were checked out:
# each holds its connection across several turns of the event loop (a round trip to the driver's thread
# per call, the task then waiting its turn), so on a machine giving the bot a fraction of a core every
# session is held seconds, and the 10-minute soak lost 89 updates to it. Kept: those a burst opened, up
# to this many (opening one costs a thread and its pragmas' round trips); one past it is closed on return.
SQLITE_POOL_SIZE = 32
# SQLite: the WAL is started over once it holds this many frames (32 MB of 4 KB pages; Database._checkpoint_loop).
WAL_RESTART_FRAMES = 8_192
T = TypeVar("T")


def is_transient_lock(exc: BaseException) -> bool:
    """SQLite's "database is locked"/"busy": another writer held the file past busy_timeout."""
    text = str(getattr(exc, "orig", exc)).lower()
    return isinstance(exc, OperationalError | sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def async_url(url: str) -> str:
    """Map a plain database URL onto the async driver we ship (aiosqlite, psycopg 3)."""
    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        u = u.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    else:
        raise ValueError(f"unsupported database backend {backend!r}")
    return u.render_as_string(hide_password=False)


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = async_url(url)
        u = make_url(self.url)
        self.is_sqlite = u.get_backend_name() == "sqlite"
        if self.is_sqlite and u.database and u.database != ":memory:":
            _create_private(Path(u.database).expanduser())
        pool = _pool_arguments(u)
        self.engine: AsyncEngine = create_async_engine(self.url, echo=echo, pool_pre_ping=not self.is_sqlite, **pool)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self._checkpoints: asyncio.Task[None] | None = None
        # SQLite admits one writer at a time. The bot's own writers queue here, in order, instead of
        # polling the file lock from driver threads (busy_timeout sleeps are unfair: under load a
        # waiter starves past its timeout and the user got "database is locked").
        self._write_lock = asyncio.Lock()
        self._driver: Any = None  # the connection write_on_driver keeps (a pool connection, checked out)

    def upsert_insert(self) -> Callable[..., Any]:
        """This backend's ``insert`` with ``on_conflict_do_update`` (imported on first use: SQLAlchemy's
        PostgreSQL package loads every PostgreSQL driver's dialect, ~0.1 s a SQLite start need not pay)."""
        if self.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads (and, for now, writes not yet moved to :meth:`write`)."""
        async with self._sessions() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One write transaction: committed when the block ends, rolled back if it raises.

        On SQLite the transaction takes the write lock first (BEGIN IMMEDIATE), behind the bot's
        other writers: a read-then-write transaction can then never fail half-way with SQLITE_BUSY
        (a deferred one can, at once, whatever busy_timeout says), and a lock held by another
        process (a CLI command) is waited for with back-off, up to SQLITE_LOCK_PATIENCE seconds.
        Keep the block short and free of network calls: every other writer waits for it."""
        if not self.is_sqlite:
            async with self._sessions() as session, session.begin():
                yield session
            return
        async with self._write_lock, self._sessions() as session:
            await self._begin_immediate(await session.connection())
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            await session.commit()

    @asynccontextmanager
    async def write_connection(self) -> AsyncIterator[AsyncConnection]:
        """:meth:`write` for Core statements: one transaction on a plain connection."""
        if not self.is_sqlite:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.connect() as conn:
            await self._begin_immediate(conn)
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()

    async def write_on_driver(self, work: Callable[[Any], T]) -> T:
        """SQLite only: one write transaction run whole on the driver's own thread, in one round trip:
        BEGIN IMMEDIATE, ``work(cursor)`` (a DB-API cursor: qmark SQL, ``execute``/``executemany``/
        ``fetchone``/``fetchall``), COMMIT, or ROLLBACK if ``work`` raises (its exception is raised here).

        :meth:`write_connection` costs three or four round trips to the driver's thread per statement
        (cursor, execute, fetch, close), and under a busy event loop each is a thread wake-up and a
        GIL hand-over of up to several milliseconds: a hot, multi-statement transaction (firing
        alerts) spent most of its time in them. The transaction runs on a connection of its own,
        taken from the pool once and kept (SQLAlchemy's commit and its reset on return to the pool
        would each cost one more round trip). ``work`` runs off the event loop, so it must be plain
        computation on its arguments and the cursor. Queues behind the bot's other writers and waits
        out another process's lock like :meth:`write`."""
        if not self.is_sqlite:
            raise RuntimeError("write_on_driver is for SQLite")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SQLITE_LOCK_PATIENCE
        pause = 0.05
        async with self._write_lock:
            while True:
                driver = await self._driver_connection()
                try:
                    return await _on_driver_thread(driver, partial(_immediate_transaction, work))
                except sqlite3.OperationalError as exc:
                    if not is_transient_lock(exc) or loop.time() + pause > deadline:
                        raise
                    log.warning("sqlite write lock held elsewhere; waiting", extra={"pause_s": pause})
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 2.0)

    async def _driver_connection(self) -> Any:
        """The pool connection the driver's transactions run on, checked out once and kept (again if it
        closed). Its temporary storage is in memory: a statement that writes many rows inside a transaction
        keeps the before-images of the pages it changes (its statement journal, to undo that statement alone)
        in a temporary file past 64 KB, so firing 100 alerts wrote ~2 MB into a new file in /var/tmp, created
        and unlinked on every fire transaction (as many bytes as its WAL frames, plus the file system's
        journal work). Only here: on every connection, start-up's large sorts (a GROUP BY over every alert,
        the simulator's documents) took +14 MB and ~0.1 CPU s in memory."""
        if self._driver is None or not _driver_open(self._driver):
            raw = await self.engine.raw_connection()
            await _on_driver_thread(raw, _temporary_storage_in_memory)
            self._driver = raw
        return self._driver

    @asynccontextmanager
    async def driver_lane(self) -> AsyncIterator[Callable[..., asyncio.Future[Any]]]:
        """SQLite only: :meth:`write_on_driver` for a run of transactions queued back to back. The write lock
        is held while the block runs; ``submit(work, urgent=False)`` queues a transaction (BEGIN IMMEDIATE,
        ``work(cursor)``, COMMIT) for the driver's thread at once and returns a future of its result. The
        thread takes them one after the other without waiting for the event loop to hand it the next, an
        ``urgent`` one before those not yet begun (a small fresh one need not wait behind a long run; see
        :class:`_Lane`). Another process's lock is waited for only as long as ``busy_timeout``: a transaction
        that still meets it fails (run it again through :meth:`write_on_driver`, which waits with back-off).
        The block's end waits for every transaction submitted."""
        if not self.is_sqlite:
            raise RuntimeError("driver_lane is for SQLite")
        async with self._write_lock:
            driver = await self._driver_connection()
            submitted: list[asyncio.Future[Any]] = []
            lane = _Lane.on(driver)

            def submit(work: Callable[[Any], Any], urgent: bool = False) -> asyncio.Future[Any]:
                transaction = partial(_immediate_transaction, work)
                if lane is not None:
                    future = lane.submit(transaction, urgent)
                else:  # no queue to share: one after the other through SQLAlchemy's adapter
                    before = submitted[-1] if submitted else None

                    async def after_the_one_before() -> Any:
                        if before is not None:
                            await asyncio.wait([before])
                        return await _on_driver_thread(driver, transaction)

                    future = asyncio.ensure_future(after_the_one_before())
                submitted.append(future)
                return future

            try:
                yield submit
            finally:
                if submitted:
                    await asyncio.wait(submitted)

    async def _begin_immediate(self, conn: AsyncConnection) -> None:
        """Take SQLite's write lock now. pysqlite's implicit BEGIN is DEFERRED and comes with the
        first DML statement; an explicit BEGIN IMMEDIATE first makes the driver skip its own."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SQLITE_LOCK_PATIENCE
        pause = 0.05
        while True:
            try:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except OperationalError as exc:
                if not is_transient_lock(exc) or loop.time() + pause > deadline:
                    raise
                log.warning("sqlite write lock held elsewhere; waiting", extra={"pause_s": pause})
                await conn.rollback()
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)

    def start_checkpoints(self, interval: float = 10.0, busy_interval: float = 0.25,
                          restart_frames: int = WAL_RESTART_FRAMES) -> None:
        """SQLite: fold the WAL back into the database every ``interval`` seconds, every ``busy_interval``
        while it is busy, and start it over once it holds ``restart_frames`` (see :meth:`_checkpoint_loop`)."""
        if self.is_sqlite and self._checkpoints is None:
            self._checkpoints = asyncio.create_task(self._checkpoint_loop(interval, busy_interval, restart_frames),
                                                    name="sqlite-checkpoint")

    async def _checkpoint_loop(self, interval: float, busy_interval: float, restart_frames: int) -> None:
        """Keep the WAL short without a checkpoint ever sitting inside or in front of a commit.

        A PASSIVE checkpoint (never waits, takes no lock a writer needs) copies the WAL into the database
        every ``busy_interval`` seconds while anything is written, every ``interval`` once nothing has been
        for that long (small passes: a second's worth of a busy bot's WAL is tens of MB, and copying it in
        one pass competed with the writes for the machine for up to half a second; and a pass that found the
        WAL small no longer waits a whole ``interval`` while writes go on).

        SQLite starts the WAL over (its next writer writes from the top) only once a pass has copied all of
        it with nothing committed since, which under a steady stream of commits hardly ever happens: the
        WAL grew for as long as the writes went on (350 MB after 20 s of firing alerts), RESTART (which takes
        the write lock with a busy timeout) fought the bot's writers (their BEGIN waited in SQLite's sleeping
        busy handler), and the commit that finally started it over cut the file to ``journal_size_limit``:
        130-240 ms inside that commit, every fire behind it waiting. So above ``restart_frames`` the loop
        catches up with passes of its own, and once one of them had little to copy (the commits made while
        the one before ran), makes one last pass holding the bot's write lock (the pages of the commits made
        meanwhile, and its two fsyncs), and the next writer starts the WAL over at once. While the
        writes outrun the copying (a storm of fires) it does not take the lock: that pass would hold the
        writers for as long as its copying took; the WAL is started over once the storm has passed.
        The file is reused as it is, not cut (``journal_size_limit`` is far above what a restart leaves,
        see _sqlite_pragmas): cutting it costs the file system about 0.5 ms per MB. When a pass finds
        everything copied and nothing written for ``interval`` seconds (idle), TRUNCATE cuts it to zero bytes,
        holding the bot's write lock too (the bot's writers queue on it, not in SQLite's busy handler); it
        may wait for readers, with a short busy timeout."""
        left_frames = 256  # 1 MB: the most the catching up may leave to the pass under the write lock
        loop = asyncio.get_running_loop()
        previous, frames, written = -1, 0, loop.time()
        while True:
            # Every busy_interval until nothing has been written for an interval (a pass that finds nothing
            # new costs nothing); then every interval.
            await asyncio.sleep(min(busy_interval, interval) if loop.time() - written < interval else interval)
            try:
                async with self.engine.connect() as conn:
                    busy, frames, copied = await _wal_checkpoint(conn, "PASSIVE")
                    if frames != previous:
                        written = loop.time()
                    idle = frames > 0 and frames == copied and loop.time() - written >= interval
                    behind = not idle and frames > restart_frames and frames != previous  # (unchanged: copied all)
                    restart = False
                    for _ in range(3 if behind else 0):  # each copies what was committed while the one before ran
                        before = frames
                        busy, frames, copied = await _wal_checkpoint(conn, "PASSIVE")
                        if frames - before <= left_frames:
                            restart = True  # caught up: what is left for the pass under the lock is small
                            break
                if idle or restart:
                    # The bot's write lock first, then a connection (as its writers take them).
                    async with self._write_lock, self.engine.connect() as conn:
                        if restart:  # nothing is committed meanwhile: this pass copies all
                            busy, frames, copied = await _wal_checkpoint(conn, "PASSIVE")
                        else:
                            await conn.exec_driver_sql("PRAGMA busy_timeout=100")
                            try:
                                busy, frames, _ = await _wal_checkpoint(conn, "TRUNCATE")
                            except Exception:
                                # Never hand a connection with a 100 ms busy_timeout (or a failed
                                # transaction) back to the pool: the bot's writers would meet it.
                                await conn.invalidate()
                                raise
                            await conn.exec_driver_sql("PRAGMA busy_timeout=5000")
                            frames = frames if busy else 0
                previous = frames
            except Exception:
                log.warning("sqlite checkpoint failed", exc_info=True)

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent; never drops data). A database already
        at the scripts' head is left as it is without loading Alembic (most starts: Alembic and the
        scripts cost more than the rest of the start-up's database work)."""
        async with self.engine.begin() as conn:
            heads = script_heads()
            if not heads or await conn.run_sync(_stored_revisions) != heads:
                await conn.run_sync(_upgrade)

    async def dispose(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoints
            self._checkpoints = None
        driver, self._driver = self._driver, None
        if driver is not None:
            with contextlib.suppress(Exception):
                await greenlet_spawn(driver.close)  # back to the pool, which closes it below
        if self.is_sqlite:
            with contextlib.suppress(Exception):
                async with self.engine.connect() as conn:
                    await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        await self.engine.dispose()


def _pool_arguments(url: URL) -> dict[str, int]:
    """The pool's size for ``url``: PostgreSQL bounded (a server's connections are shared with every
    replica), a SQLite file never making a session wait (SQLITE_POOL_SIZE); in-memory SQLite keeps
    SQLAlchemy's single shared connection."""
    if url.get_backend_name() != "sqlite":
        return {"pool_size": PG_POOL_SIZE, "max_overflow": PG_POOL_OVERFLOW}
    if not url.database or url.database == ":memory:" or url.query.get("mode") == "memory":
        return {}
    return {"pool_size": SQLITE_POOL_SIZE, "max_overflow": -1}


def _create_private(path: Path) -> None:
    """Create the SQLite file readable by its owner only (0600, like the master key), before SQLite
    creates it with the umask's mode; SQLite gives its -wal and -shm files the database file's mode.
    An existing file keeps its mode (an operator may have chosen it), with a warning if others may
    read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))  # empty: a new database
        return
    except FileExistsError:
        pass
    except OSError:  # read-only or full: SQLite reports it when it opens the file
        return
    with contextlib.suppress(OSError):
        mode = path.stat().st_mode
        if stat.S_ISREG(mode) and mode & 0o077:
            log.warning("the database file may be read by other users; chmod 600 it",
                        extra={"path": str(path), "mode": oct(mode & 0o777)})


async def _on_driver_thread(raw: Any, work: Callable[[Any], T]) -> T:
    """Run ``work(dbapi_connection)`` on aiosqlite's thread with its sqlite3 connection (``raw``: a
    pool connection): one round trip, through the queue SQLAlchemy's own aiosqlite adapter also
    uses (``_tx``). An aiosqlite without it gets the same calls through SQLAlchemy's adapter, one
    round trip each."""
    future = _queue_on_driver_thread(raw, work)
    if future is not None:
        return await future
    result: T = await greenlet_spawn(work, raw.dbapi_connection)
    return result


def _aiosqlite_thread(raw: Any) -> tuple[sqlite3.Connection, Any] | None:
    """The sqlite3 connection of ``raw``'s aiosqlite connection and the queue of work its thread takes
    (``_connection``, ``_tx``: aiosqlite's own, the one place they are read); None when this aiosqlite
    has neither."""
    driver = raw.driver_connection
    connection = getattr(driver, "_connection", None)
    queue = getattr(driver, "_tx", None)
    if not isinstance(connection, sqlite3.Connection) or queue is None:
        return None
    return connection, queue


def _queue_on_driver_thread(raw: Any, work: Callable[[Any], T]) -> asyncio.Future[T] | None:
    """Queue ``work(dbapi_connection)`` on aiosqlite's thread, behind what is queued there already; its
    future. None when this aiosqlite has no queue to share (see :func:`_on_driver_thread`)."""
    parts = _aiosqlite_thread(raw)
    if parts is None:
        return None
    connection, queue = parts
    future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    queue.put_nowait((future, partial(work, connection)))
    return future


async def _wal_checkpoint(conn: AsyncConnection, mode: str) -> tuple[int, int, int]:
    """``PRAGMA wal_checkpoint(mode)``: (busy, frames in the WAL, frames copied)."""
    busy, frames, copied = (int(value) for value in (await conn.exec_driver_sql(
        f"PRAGMA wal_checkpoint({mode})")).one())
    return busy, frames, copied


class _Lane:
    """Transactions for aiosqlite's thread, taken from a queue of their own by one work item queued there
    (a *runner*) for as long as the queue holds any: the thread goes from one to the next without the event
    loop, and an urgent one goes ahead of those not urgent (behind urgent ones before it), so it waits only
    for the transaction in progress and the urgent ones submitted before it.
    The runner reports each result to the loop as aiosqlite does (``call_soon_threadsafe``)."""

    def __init__(self, connection: sqlite3.Connection, tx: Any) -> None:
        self.connection, self.tx = connection, tx
        self.urgent: deque[tuple[asyncio.Future[Any], Callable[[Any], Any]]] = deque()
        self.items: deque[tuple[asyncio.Future[Any], Callable[[Any], Any]]] = deque()
        self.lock = threading.Lock()
        self.running = False

    @classmethod
    def on(cls, raw: Any) -> _Lane | None:
        parts = _aiosqlite_thread(raw)
        return None if parts is None else cls(*parts)

    def submit(self, work: Callable[[Any], T], urgent: bool) -> asyncio.Future[T]:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        with self.lock:
            (self.urgent if urgent else self.items).append((future, work))
            start, self.running = not self.running, True
        if start:
            self.tx.put_nowait((None, self._run))
        return future

    def _run(self) -> None:
        while True:
            with self.lock:
                if not self.urgent and not self.items:
                    self.running = False
                    return
                future, work = (self.urgent or self.items).popleft()
            try:
                result = work(self.connection)
            except BaseException as exc:  # noqa: BLE001 (handed to the awaiting coroutine)
                future.get_loop().call_soon_threadsafe(_set_exception, future, exc)
            else:
                future.get_loop().call_soon_threadsafe(_set_result, future, result)


def _set_result(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _driver_open(raw: Any) -> bool:
    """False once the pool connection or its aiosqlite connection (thread) has been closed."""
    driver = getattr(raw, "driver_connection", None)
    return driver is not None and getattr(driver, "_running", True) and (
        getattr(driver, "_connection", True) is not None)


def _temporary_storage_in_memory(connection: Any) -> None:
    cursor = connection.cursor()
    try:
        cursor.execute("PRAGMA temp_store=MEMORY")
    finally:
        cursor.close()


def _immediate_transaction(work: Callable[[Any], T], connection: Any) -> T:
    if getattr(connection, "in_transaction", False):  # left open by a rollback that failed: start clean
        connection.rollback()
    cursor = connection.cursor()
    try:
        cursor.execute("BEGIN IMMEDIATE")
        try:
            result = work(cursor)
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        return result
    finally:
        cursor.close()


_REVISION = re.compile(r"^revision\s*(?::[^=]+)?=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]+)?=\s*(.+)$", re.MULTILINE)


def script_heads() -> frozenset[str]:
    """The head revision(s) of the migration scripts, read off their ``revision`` and ``down_revision``
    lines (what Alembic's script directory computes, without importing Alembic or the scripts).
    Empty when a script cannot be read that way: then Alembic judges."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        text = script.read_text(encoding="utf-8")
        revision, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None or down is None or down.group(1).rstrip().endswith(("(", "[")):
            return frozenset()  # not a revision script, or a down_revision over several lines
        revisions.add(revision.group(1))
        parents.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    return frozenset(revisions - parents)


def _stored_revisions(connection: Connection) -> frozenset[str]:
    """The revision(s) the database is stamped with; empty for a new database."""
    if not inspect(connection).has_table("alembic_version"):
        return frozenset()
    return frozenset(row[0] for row in connection.exec_driver_sql("SELECT version_num FROM alembic_version"))


def _upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL + NORMAL: a commit survives the bot crashing (what exactly-once firing and the journal need)
    # without an fsync per commit; only an OS crash or power cut can lose the last commits. Use
    # PostgreSQL where that matters.
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Checkpoints run from a background task (Database.start_checkpoints), not inside whichever
    # commit happens to cross the WAL threshold: that stall was the tail of alert-firing latency.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    # When the WAL is started over after a checkpoint, a file over 256 MB is cut back to that: a storm of
    # writes does not leave a WAL of its peak size on disk for good. Below it the file is reused as it is:
    # the cut comes inside the commit that starts the WAL over (0.5 ms per MB cut), and the checkpoint loop
    # keeps a busy WAL far below it and cuts it to zero once writes pause (Database._checkpoint_loop).
    cursor.execute("PRAGMA journal_size_limit=268435456")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
