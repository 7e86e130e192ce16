"""Fixtures: an in-process KIS simulator on loopback, KIS clients, and databases (SQLite always,
PostgreSQL on 127.0.0.1:5432 when it answers, each test in a schema of its own)."""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from chatbot.kis.protocol import Flavour
from chatbot.kis.rest import KisCredentials, KisEndpoint, KisRestClient
from chatbot.kis.token import TokenStore
from chatbot.security.keyring import MasterKeyring
from chatbot.security.secretbox import SecretBox
from chatbot.sim.server import KisSimulator, SimulatorOptions
from chatbot.storage import Database
from tests.helpers import new_credentials

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
async def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/test.sqlite3"
        return
    import psycopg

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    db = Database(db_url)
    await db.migrate()
    yield db
    await db.dispose()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(MasterKeyring(1, {1: secrets.token_bytes(32)}))


AsyncFactory = Callable[..., Awaitable[Any]]
