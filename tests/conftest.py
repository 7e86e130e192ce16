"""Fixtures: an in-process KIS simulator on loopback, KIS clients, and databases (SQLite always,
PostgreSQL on 127.0.0.1:5432 when it answers, each test in a schema of its own).

Start-up migrations: the first new database of each backend in the session is migrated by Alembic
(``chatbot.storage.db._upgrade``) while the SQL it sends is recorded; every later *empty* database of
that backend gets the same statements replayed, in order, on its connection (Alembic's own work,
minus ~0.4 s of Python per database, which ~500 tests paid); on PostgreSQL the schema they leave, as
pg_dump writes it, in one round trip (plain CREATEs: the table rewrites of later revisions cost
another ~0.25 s per database). A database
that is not empty (an older revision, a test's own tables) is migrated by Alembic as before, and
``@pytest.mark.real_migrations`` turns the replay off for a test. On PostgreSQL a schema still at head
when its test ends is emptied and renamed into the next new database instead of being dropped and made
again (tests/schema_pool.py: ~0.5 s per test, and no dead rows left in the system catalogs)."""

from __future__ import annotations

import secrets
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import hypothesis
import pytest
from sqlalchemy import event, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.util import await_only

from chatbot.kis.protocol import Flavour
from chatbot.kis.rest import KisCredentials, KisEndpoint, KisRestClient
from chatbot.kis.token import TokenStore
from chatbot.security.keyring import MasterKeyring
from chatbot.security.secretbox import SecretBox
from chatbot.sim.server import KisSimulator, SimulatorOptions
from chatbot.storage import Database
from chatbot.storage import db as db_module
from tests.harness import BotHarness
from tests.helpers import new_credentials
from tests.schema_pool import SchemaPool

# Hypothesis's clock checks (an example's 200 ms deadline, "data generation too slow") measure the
# machine, not the code: on a loaded CI with parallel workers one stall fails them (as Flaky). Off.
hypothesis.settings.register_profile("suite", deadline=None,
                                     suppress_health_check=[hypothesis.HealthCheck.too_slow])
hypothesis.settings.load_profile("suite")

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_BASE = f"postgresql://root@{PG_HOST}:{PG_PORT}/test"


def _postgres_answers() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=0.5):
            pass
    except OSError:
        return False
    try:
        import psycopg

        with psycopg.connect(PG_BASE.replace("postgresql://", "postgresql://", 1), connect_timeout=2):
            return True
    except Exception:  # noqa: BLE001 -- any failure to connect means: no PostgreSQL here, skip it
        return False


POSTGRES = _postgres_answers()
DB_BACKENDS = ["sqlite", pytest.param("postgres", marks=[
    pytest.mark.postgres, pytest.mark.skipif(not POSTGRES, reason="no PostgreSQL on 127.0.0.1:5432")])]
# A test whose subject no storage can change (input refused before anything is written, a quote, a chart,
# a rendering) runs on SQLite only: ``@SQLITE_ONLY`` (``db_url`` parametrised with "sqlite" alone). What is
# stored, read back after a restart, raced or migrated runs on both (``db_url``'s DB_BACKENDS).
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


Statement = tuple[str, Any, bool]  # SQL, its DB-API parameters, executemany


@dataclass
class MigrationReplay:
    """Alembic's statements for a new database, per backend (see the module's docstring)."""

    upgrade: Callable[[Connection], None]  # the real one (Alembic)
    scripts: dict[str, list[Statement]] = field(default_factory=dict)
    # PostgreSQL: the schema those statements leave, as pg_dump writes it (one round trip of plain
    # CREATEs instead of ~85 statements with table rewrites: ~0.25 s less per database); "" when
    # pg_dump is not at hand (the statements are replayed then).
    pg_schema_sql: str | None = None
    enabled: bool = True
    pool: SchemaPool | None = None  # PostgreSQL: schemas at head used again (tests/schema_pool.py)

    def __call__(self, connection: Connection) -> None:
        if not self.enabled or not _empty(connection):
            self.upgrade(connection)
            return
        backend = connection.dialect.name
        script = self.scripts.get(backend)
        if script is None:
            self.scripts[backend] = self._recorded(connection)
            return
        if backend == "postgresql" and self.pg_schema_sql is None:
            self.pg_schema_sql = _pg_schema_sql(script) or ""
            if self.pool is not None:
                self.pool.use_template(self.pg_schema_sql)
        cursor = connection.connection.cursor()
        try:
            if backend == "postgresql" and self.pg_schema_sql:
                cursor.execute("SELECT current_schema()")
                (schema,) = cursor.fetchone()
                if self.pool is not None and self.pool.take(cursor, schema):
                    return
                cursor.execute(self.pg_schema_sql.replace(PG_TEMPLATE_SCHEMA, f'"{schema}"'))
                if self.pool is not None:
                    self.pool.learn(cursor, schema)
                return
            if backend == "sqlite":  # on aiosqlite's thread at once (one round trip, not one per statement)
                done = db_module._queue_on_driver_thread(connection.connection, partial(_replay, script))
                if done is not None:
                    await_only(done)
                    return
            for statement, parameters, many in script:
                if many:
                    cursor.executemany(statement, parameters)
                elif parameters:
                    cursor.execute(statement, parameters)
                else:
                    cursor.execute(statement)
        finally:
            cursor.close()

    def _recorded(self, connection: Connection) -> list[Statement]:
        statements: list[Statement] = []

        def record(conn: Connection, _cursor: Any, statement: str, parameters: Any, _context: Any,
                   executemany: bool) -> None:
            if conn is connection:
                statements.append((statement, parameters, executemany))

        engine = connection.engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            self.upgrade(connection)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return statements


def _empty(connection: Connection) -> bool:
    """No table in the database (on PostgreSQL: no object in the schema, read off pg_depend's index
    instead of scanning pg_class, which is bloated where autovacuum is off)."""
    if connection.dialect.name != "postgresql":
        return not inspect(connection).get_table_names()
    return not connection.exec_driver_sql(
        "SELECT EXISTS (SELECT 1 FROM pg_depend WHERE refclassid = 'pg_namespace'::regclass"
        " AND refobjid = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()))").scalar()


def _replay(script: list[Statement], connection: Any) -> None:
    cursor = connection.cursor()
    try:
        for statement, parameters, many in script:
            if many:
                cursor.executemany(statement, parameters)
            else:
                cursor.execute(statement, parameters or ())
    finally:
        cursor.close()


PG_TEMPLATE_SCHEMA = "t_template_0f3a9c71e2"


def _pg_schema_sql(script: list[Statement]) -> str | None:
    """Alembic's recorded statements run on a schema of their own, dumped by pg_dump (DDL and the
    alembic_version row), the schema's name replaced by :data:`PG_TEMPLATE_SCHEMA`; None without pg_dump."""
    import shutil
    import subprocess

    import psycopg

    if shutil.which("pg_dump") is None:
        return None
    schema = f"t_template_{secrets.token_hex(6)}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        with psycopg.connect(f"{PG_BASE}?options=-csearch_path%3D{schema}") as conn, conn.cursor() as cursor:
            for statement, parameters, many in script:
                if many:
                    cursor.executemany(statement, parameters)
                else:
                    cursor.execute(statement, parameters or None)
        dump = subprocess.run(["pg_dump", "--schema", schema, "--no-owner", "--no-privileges", "--inserts", PG_BASE],
                              check=True, capture_output=True, text=True, timeout=120).stdout
    finally:
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    # pg_dump's session settings (search_path among them) and psql's meta-commands are left out: the
    # statements name every object with its schema.
    kept = [line for line in dump.splitlines()
            if not line.startswith(("\\", "SET ", "SELECT pg_catalog.set_config", "CREATE SCHEMA", "--"))]
    return "\n".join(kept).replace(schema, PG_TEMPLATE_SCHEMA)


@pytest.fixture(scope="session", autouse=True)
def migration_replay() -> Iterator[MigrationReplay]:
    replay = MigrationReplay(db_module._upgrade, pool=SchemaPool(PG_BASE, PG_TEMPLATE_SCHEMA) if POSTGRES else None)
    if replay.pool is not None:
        replay.pool.drop_stale()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(db_module, "_upgrade", replay)
        yield replay
    if replay.pool is not None:
        replay.pool.close()


@pytest.fixture(autouse=True)
def _real_migrations(request: pytest.FixtureRequest, migration_replay: MigrationReplay) -> Iterator[None]:
    """``@pytest.mark.real_migrations``: this test's new databases are migrated by Alembic itself."""
    if request.node.get_closest_marker("real_migrations") is None:
        yield
        return
    migration_replay.enabled = False
    try:
        yield
    finally:
        migration_replay.enabled = True


@pytest.fixture(scope="session", autouse=True)
def one_default_tls_context() -> Iterator[None]:
    """httpx loads certifi's CA bundle into a new SSL context for every client made with the default
    ``verify=True`` (~70 ms of CPU each); python-telegram-bot makes two per Application, and ~370 tests
    build one. The tests speak plain HTTP on loopback; one default context, built once, serves every
    such client (an SSLContext may be shared). Any other ``verify``/``cert`` is built as before."""
    import httpx._transports.default as transports

    build = transports.create_ssl_context
    built: dict[bool, ssl.SSLContext] = {}

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
        if verify is not True or cert is not None:
            return build(verify=verify, cert=cert, trust_env=trust_env)
        if trust_env not in built:
            built[trust_env] = build(verify=verify, cert=cert, trust_env=trust_env)
        return built[trust_env]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transports, "create_ssl_context", create_ssl_context)
        yield


@pytest.fixture(scope="session", autouse=True)
def shared_name_indexes() -> Iterator[None]:
    """Every runtime and simulator starts from the bundled directory (the same row objects, shared by
    the process) and builds its search index on first use: ~0.1 s for KRX, ~0.5 s for the US rows,
    per test. An index over the very same rows is the same index (its only later change, the 초성
    table built on first use, is a pure function of them), so the tests build each one once. Any
    other row list (a refresh, a test's own symbols) gets an index of its own, as before."""
    from chatbot.markets import directory
    from chatbot.markets.search import NameIndex
    from chatbot.markets.symbols import Symbol

    built: dict[tuple[int, ...], NameIndex] = {}

    def name_index(symbols: Sequence[Symbol]) -> NameIndex:
        key = tuple(map(id, symbols))  # the index keeps the rows alive: an id cannot be reused meanwhile
        index = built.get(key)
        if index is None:
            index = NameIndex(symbols)
            if len(built) >= 8:
                built.pop(next(iter(built)))
            built[key] = index
        return index

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(directory, "NameIndex", name_index)
        yield


@pytest.fixture(scope="session", autouse=True)
def no_queued_notice_by_the_clock() -> Iterator[None]:
    """The bot tells a user whose reply has not come within 3 s that it is queued (telegram/app.py). On
    a loaded machine (CI, parallel workers) an ordinary reply can take that long, and the notice then
    stood among the messages a test expected, one reply exactly (``(msg,) = await bot.say(...)``).
    The bots built in this process wait 10 minutes instead; tests/test_fair_sending.py, which is about
    the notice, sets its own patience."""
    from chatbot.telegram import app

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(app, "QUEUED_NOTICE_AFTER", 600.0)
        yield


@pytest.fixture
async def sim() -> AsyncIterator[KisSimulator]:
    simulator = KisSimulator(SimulatorOptions(tick_interval=0))
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def make_client(sim: KisSimulator) -> AsyncIterator[Callable[..., KisRestClient]]:
    clients: list[KisRestClient] = []

    def make(flavour: Flavour = "real", credentials: KisCredentials | None = None,
             token_store: TokenStore | None = None, **kwargs: Any) -> KisRestClient:
        client = KisRestClient(KisEndpoint(flavour, sim.rest_url(flavour)), credentials or new_credentials(),
                               token_store, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture(params=DB_BACKENDS)
async def db_url(request: pytest.FixtureRequest, tmp_path: Any, migration_replay: MigrationReplay) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/test.sqlite3"
        return
    pool = migration_replay.pool
    assert pool is not None
    schema = pool.create()
    try:
        # synchronous_commit off: a commit does not wait for the WAL's fsync (~3-5 ms each here, on a
        # disk shared with other work; a bot's start makes dozens). Only a crash of the server itself could
        # lose such a commit; what other sessions see, and when, is unchanged.
        yield f"{PG_BASE}?options=-csynchronous_commit%3Doff%20-csearch_path%3D{schema}"
    finally:
        pool.give_back(schema)  # emptied for the next test's new database if still at head, else dropped


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    db = Database(db_url)
    await db.migrate()
    yield db
    await db.dispose()


@pytest.fixture
async def us_open_bot(db_url: str) -> AsyncIterator[BotHarness]:
    """The bot started on ``db_url`` with the simulator's US market kept open; at the end every callback
    query must have been answered. A module takes it as its ``bot`` with a one-line fixture."""
    harness = BotHarness(db_url, us_always_open=True)
    await harness.start()
    yield harness
    assert not harness.api.unanswered_callbacks(), "every callback query must be answered"
    await harness.stop()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(MasterKeyring(1, {1: secrets.token_bytes(32)}))


AsyncFactory = Callable[..., Awaitable[Any]]
