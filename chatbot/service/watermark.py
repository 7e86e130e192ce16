"""Until when the market-data feed was watched, kept in the database (``watermarks``).

A replica taking the feed over from another assumes a feed gap from the moment it last saw that one
holding it (chatbot.service.replicas). A process that saw no holder at all (a restart of the only
process after a crash, a deploy, a stop; every replica down and one coming back) had no such moment:
what crossed alerts and stops while nobody watched was never judged. The feed's owner therefore stamps
here, while the feed is up, when it last watched it: every :data:`EVERY` seconds (one UPDATE, off the
tick path, from the replicas' pass) and once more when it gives the feed up cleanly. The next owner
with no previous holder seen takes that stamp as the gap's start. No stamp (a new database, one
upgraded from before 0017): no gap, as before.

A stamp that cannot be written (the database locked or down) is logged and written at the next pass:
the feed and the role go on regardless. A stamp a little older than the truth only widens the gap
judged (the alerts and stops that fired since are no longer armed)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

from sqlalchemy import select, update
from sqlmodel import col

from chatbot.storage.db import Database
from chatbot.storage.tables import WatermarkRow

log = logging.getLogger(__name__)
EVERY = 5.0  # seconds between stamps while the feed is up


class Watermark:
    """The stamp of one watched thing (``name``)."""

    def __init__(self, db: Database, name: str, *, every: float = EVERY) -> None:
        self.db = db
        self.name = name
        self.every = every
        self.written: float | None = None  # the epoch seconds last stored by this process
        self.failures = 0  # stores that failed in a row (logged on the first)
        self._writing: asyncio.Task[bool] | None = None

    async def read(self) -> float | None:
        """The stored stamp (epoch seconds), None when there is none or it cannot be read (logged)."""
        try:
            async with self.db.engine.connect() as conn:
                at = (await conn.execute(select(col(WatermarkRow.watched_at)).where(
                    col(WatermarkRow.name) == self.name))).scalar()
        except Exception:
            log.warning("could not read when the feed was last watched; no gap assumed", exc_info=True,
                        extra={"watermark": self.name})
            return None
        return None if at is None else at.timestamp()

    def due(self, at: float) -> bool:
        """Whether ``at`` is to be stored now: :data:`EVERY` seconds after the last stamp, or at once when it
        is earlier than the stamp stored (a gap still open: the feed was not watched since then)."""
        return self.written is None or at < self.written or at - self.written >= self.every

    def mark_soon(self, at: float | None = None) -> None:
        """Stamp ``at`` (default: the present) in the background when :meth:`due` (and the last write is
        over): the caller (the replicas' pass) never waits for a locked database."""
        at = time.time() if at is None else at
        if not self.due(at) or (self._writing is not None and not self._writing.done()):
            return
        self._writing = asyncio.create_task(self.mark(at), name="feed-watermark")

    async def mark(self, now: float | None = None) -> bool:
        """Stamp ``now`` (default: the present); False when it could not be stored (logged, not raised)."""
        now = time.time() if now is None else now
        try:
            await self._store(now)
        except Exception:
            self.failures += 1
            if self.failures == 1:
                log.warning("could not store when the feed was last watched; tried again at the next pass",
                            exc_info=True, extra={"watermark": self.name})
            return False
        if self.failures:
            log.info("the feed's watermark is stored again", extra={"watermark": self.name,
                                                                    "failures": self.failures})
        self.failures = 0
        self.written = now
        return True

    async def settle(self) -> None:
        """Wait for a background stamp in flight (before a last one, at a clean stop)."""
        writing, self._writing = self._writing, None
        if writing is not None:
            await asyncio.gather(writing, return_exceptions=True)

    async def _store(self, now: float) -> None:
        at = dt.datetime.fromtimestamp(now, dt.UTC)
        async with self.db.write_connection() as conn:
            changed = (await conn.execute(update(WatermarkRow).where(col(WatermarkRow.name) == self.name)
                                          .values(watched_at=at))).rowcount
            if not changed:  # the first stamp ever (or another replica's insert racing this one: either wins)
                insert = self.db.upsert_insert()(WatermarkRow).values(name=self.name, watched_at=at)
                await conn.execute(insert.on_conflict_do_update(index_elements=[col(WatermarkRow.name)],
                                                                set_={"watched_at": insert.excluded.watched_at}))
