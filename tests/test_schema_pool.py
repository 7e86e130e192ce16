"""The PostgreSQL schema pool of the tests (tests/schema_pool.py): a schema used again is as a new
database at head would be; one a test changed the shape of is never used again."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from chatbot.storage import Database
from tests.conftest import PG_BASE, POSTGRES, MigrationReplay
from tests.schema_pool import SchemaPool

pytestmark = [pytest.mark.postgres, pytest.mark.skipif(not POSTGRES, reason="no PostgreSQL on 127.0.0.1:5432")]


def url(schema: str) -> str:
    return f"{PG_BASE}?options=-csynchronous_commit%3Doff%20-csearch_path%3D{schema}"


async def at_head(pool: SchemaPool) -> str:
    schema = pool.create()
    db = Database(url(schema))
    try:
        await db.migrate()
    finally:
        await db.dispose()
    return schema


def exists(schema: str) -> bool:
    with psycopg.connect(PG_BASE) as conn:
        return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is not None


@pytest.fixture
async def pool(migration_replay: MigrationReplay) -> SchemaPool:
    pool = migration_replay.pool
    assert pool is not None
    pool.give_back(await at_head(pool))  # the template and the layout are known from here on
    pool.give_back(await at_head(pool))
    assert pool.layout is not None and pool.enabled
    return pool


async def test_a_schema_used_again_holds_no_row_and_starts_its_ids_over(pool: SchemaPool) -> None:
    schema = await at_head(pool)
    db = Database(url(schema))
    async with db.engine.begin() as conn:
        for _ in range(3):
            await conn.execute(text("INSERT INTO users (telegram_id, language, blocked, first_seen, last_seen) VALUES"
                                    " ((SELECT count(*) FROM users), 'ko', false, now(), now())"))
        await conn.execute(text("SELECT nextval('outbox_id_seq')"))
        await conn.execute(text("DELETE FROM alembic_version"))
    await db.dispose()
    recycled, taken = pool.recycled, pool.taken
    pool.give_back(schema)
    assert pool.recycled == recycled + 1 and not exists(schema)

    again = await at_head(pool)
    assert pool.taken == taken + 1
    db = Database(url(again))
    try:
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar() == 0
            assert (await conn.execute(text("SELECT nextval('outbox_id_seq')"))).scalar() == 1
            assert (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    finally:
        await db.dispose()
        pool.give_back(again)


@pytest.mark.parametrize("change", [
    "ALTER TABLE users ADD COLUMN extra integer",
    "ALTER TABLE users ALTER COLUMN language DROP NOT NULL",
    "CREATE INDEX users_extra ON users (language)",
    "CREATE TABLE extra (id integer)",
    "ALTER TABLE outbox DROP CONSTRAINT outbox_pkey",
])
async def test_a_schema_whose_shape_a_test_changed_is_dropped(pool: SchemaPool, change: str) -> None:
    schema = await at_head(pool)
    db = Database(url(schema))
    async with db.engine.begin() as conn:
        await conn.execute(text(change))
    await db.dispose()
    recycled = pool.recycled
    pool.give_back(schema)
    assert pool.recycled == recycled and not exists(schema)
