"""SQLite's write-ahead log stays bounded without a checkpoint in or in front of a commit: the background
checkpoint starts it over under back-to-back writes, a commit that starts it over does not cut the file,
and the file is truncated once the bot is idle (a size limit stays as the cap)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import insert, update

from chatbot.storage import Database
from chatbot.storage.tables import SimDocumentRow
from chatbot.storage.types import utcnow


async def test_an_idle_wal_is_truncated_and_its_size_is_limited(tmp_path: Path) -> None:
    path = tmp_path / "wal.sqlite3"
    db = Database(f"sqlite:///{path}")
    await db.migrate()
    try:
        async with db.engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA journal_size_limit")).scalar() == 256 * 1024 * 1024
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


def _wal_restarts(path: Path) -> int:
    """The WAL header's checkpoint sequence: one more each time a writer starts the WAL over."""
    with open(f"{path}-wal", "rb") as f:
        return int.from_bytes(f.read(16)[12:16], "big")


async def test_a_commit_that_starts_the_wal_over_does_not_cut_its_file(tmp_path: Path) -> None:
    """Cutting a large WAL back (journal_size_limit) happened inside the commit that started it over: 130-240 ms
    with every fire behind it waiting. The file is reused; the checkpoint loop cuts it when writes pause."""
    path = tmp_path / "wal.sqlite3"
    db = Database(f"sqlite:///{path}")
    await db.migrate()
    try:
        async with db.engine.begin() as conn:  # ~20 MB of WAL, over the former 16 MB limit
            await conn.execute(insert(SimDocumentRow), [{"key": f"k{i}", "data": {"x": "y" * 2000},
                                                         "updated_at": utcnow()} for i in range(10_000)])
        async with db.engine.connect() as conn:
            busy, frames, copied = (await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")).one()
        assert (busy, frames) == (0, copied)  # all copied, no reader: the next writer starts it over
        size, restarts = os.path.getsize(f"{path}-wal"), _wal_restarts(path)
        assert size > 17 * 1024 * 1024
        async with db.write_connection() as conn:
            await conn.execute(update(SimDocumentRow).where(SimDocumentRow.key == "k1").values(data={"x": "z"}))
        assert _wal_restarts(path) == restarts + 1
        assert os.path.getsize(f"{path}-wal") == size
    finally:
        await db.dispose()


async def test_back_to_back_writes_have_the_wal_started_over_without_a_commit_cutting_it(tmp_path: Path) -> None:
    """Under a steady stream of commits (the alert engine's fire lane: runs of transactions back to back on the
    driver's thread, the write lock given up between runs) a PASSIVE pass seldom finds the WAL fully copied, and
    only then did SQLite start it over: it grew for as long as the writes went on. The checkpoint loop starts it
    over once it holds ``restart_frames``; the file is reused, never cut by a commit."""
    path = tmp_path / "wal.sqlite3"
    db = Database(f"sqlite:///{path}")
    await db.migrate()
    document = json.dumps({"x": "y" * 3_000})

    def write(i: int, cursor: Any) -> None:
        cursor.execute("INSERT INTO sim_documents (key, data, updated_at) VALUES (?, ?, ?)",
                       (f"k{i}", document, "2026-01-01 00:00:00.000000"))

    try:
        async with db.write_connection() as conn:  # the WAL exists
            await conn.execute(insert(SimDocumentRow).values(key="first", data={}, updated_at=utcnow()))
        restarts = _wal_restarts(path)
        db.start_checkpoints(interval=0.05, busy_interval=0.01, restart_frames=64)
        sizes = []
        for run in range(5_000):  # until the WAL was started over three times (each run: ~16 frames)
            async with db.driver_lane() as submit:
                await asyncio.gather(*(submit(lambda cursor, i=4 * run + j: write(i, cursor)) for j in range(4)))
            sizes.append(os.path.getsize(f"{path}-wal"))
            if _wal_restarts(path) >= restarts + 3:
                break
            await asyncio.sleep(0.005)  # a steady stream, not a flood the copying cannot keep up with
        assert _wal_restarts(path) >= restarts + 3
        assert sizes == sorted(sizes)  # never cut while the writes went on
    finally:
        await db.dispose()
