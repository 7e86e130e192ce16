"""SQLite's write-ahead log stays bounded: a size limit for when it is started over, and the
background checkpoint truncates it once the bot is idle."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from sqlalchemy import insert

from chatbot.storage import Database
from chatbot.storage.tables import SimDocumentRow
from chatbot.storage.types import utcnow


async def test_an_idle_wal_is_truncated_and_its_size_is_limited(tmp_path: Path) -> None:
    path = tmp_path / "wal.sqlite3"
    db = Database(f"sqlite:///{path}")
    await db.migrate()
    try:
        async with db.engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA journal_size_limit")).scalar() == 16 * 1024 * 1024
        async with db.engine.begin() as conn:
            await conn.execute(insert(SimDocumentRow), [{"key": f"k{i}", "data": {"x": "y" * 2000},
                                                         "updated_at": utcnow()} for i in range(500)])
        wal = Path(f"{path}-wal")
        assert wal.stat().st_size > 1_000_000
        db.start_checkpoints(interval=0.05)
        for _ in range(1200):  # a first pass copies it, the next sees nothing new and truncates (60 s at most)
            if os.path.getsize(wal) == 0:
                break
            await asyncio.sleep(0.05)
        assert os.path.getsize(wal) == 0
    finally:
        await db.dispose()
