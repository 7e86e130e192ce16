"""Stopping never hangs: a background loop's cancellation that arrives at the very moment the thing it
waits for completes (an event set, a database answer) still stops it. Python 3.11's
``asyncio.wait_for`` returns the result then and drops the cancellation, so a loop around it runs on
and whoever stops it waits forever (a bot's shutdown, a test's teardown)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chatbot.service.replicas import Replicas
from chatbot.storage import Database


async def test_replicas_stop_when_the_cancel_meets_the_lock_checks_answer(database: Database) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite: no lock connection to check")
    replicas = Replicas(database, "test-owner", interval=0.01)
    assert await replicas.locks.take("reconcile")
    conn = replicas.locks._conn
    assert conn is not None
    sync = conn.sync_connection
    assert sync is not None
    answered = 0

    class Answering:  # the lock connection, whose answer comes with the stop
        def __getattr__(self, name: str) -> Any:
            return getattr(conn, name)

        async def execute(self, *args: Any, **kwargs: Any) -> Any:
            nonlocal answered
            result = await conn.execute(*args, **kwargs)
            answered += 1
            if answered == 2 and replicas._task is not None:
                replicas._task.cancel()  # the loop's stop arrives as the check's answer does
            return result

    replicas.locks._conn = Answering()  # type: ignore[assignment]
    await replicas.start()
    task = replicas._task
    assert task is not None
    done, _ = await asyncio.wait([task], timeout=10)
    try:
        assert done, "the replica loop ran on after its cancellation (the stop would wait forever)"
    finally:
        task.cancel()
        replicas.locks._conn = conn
        replicas._task = None
        await replicas.stop()
