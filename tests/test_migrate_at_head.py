"""Start-up migrations: a database already at the scripts' head is left as it is without loading
Alembic; one behind (or new) is upgraded by Alembic as before; the heads read off the scripts are
Alembic's own."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from chatbot.storage import Database
from chatbot.storage import db as db_module


def alembic_config(connection: object) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(db_module.MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def test_script_heads_are_alembics() -> None:
    heads = db_module.script_heads()
    assert heads and heads == frozenset(ScriptDirectory.from_config(alembic_config(None)).get_heads())


@pytest.mark.real_migrations
async def test_migrate_skips_alembic_at_head_and_upgrades_otherwise(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    upgrades: list[int] = []
    real_upgrade = db_module._upgrade

    def counting(connection: object) -> None:
        upgrades.append(1)
        real_upgrade(connection)  # type: ignore[arg-type]

    monkeypatch.setattr(db_module, "_upgrade", counting)
    db = Database(db_url)
    try:
        await db.migrate()  # a new database: Alembic creates the schema
        assert len(upgrades) == 1
        async with db.engine.connect() as conn:
            assert await conn.run_sync(db_module._stored_revisions) == db_module.script_heads()
        await db.migrate()  # at head: nothing to do, Alembic not called
        assert len(upgrades) == 1
        head = next(iter(db_module.script_heads()))
        async with db.engine.begin() as conn:  # one revision back: the next start upgrades it
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "-1"))
            assert await conn.run_sync(db_module._stored_revisions) != {head}
        await db.migrate()
        assert len(upgrades) == 2
        async with db.engine.connect() as conn:
            assert await conn.run_sync(db_module._stored_revisions) == {head}
    finally:
        await db.dispose()


def test_unreadable_scripts_leave_the_judgement_to_alembic(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    (root / "versions").mkdir()
    (root / "versions" / "0001_a.py").write_text('revision = "0001"\ndown_revision = None\n')
    (root / "versions" / "0002_b.py").write_text('revision = "0002"\ndown_revision = (\n    "0001",\n)\n')
    monkeypatch.setattr(db_module, "MIGRATIONS", root)
    assert db_module.script_heads() == frozenset()  # a down_revision over several lines: not guessed
    (root / "versions" / "0002_b.py").write_text('revision: str = "0002"\ndown_revision: str | None = "0001"\n')
    assert db_module.script_heads() == {"0002"}
