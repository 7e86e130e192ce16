"""Firing a chunk of crossed alerts on SQLite in one round trip to the driver's thread.

The same transaction as :func:`chatbot.alerts.engine.fire_alerts` (which PostgreSQL keeps): a
conditional ``UPDATE … RETURNING`` moves exactly the alerts still armed (exactly once, whatever else
fires them), repeat alerts get their re-arm time, and their pushes go into the outbox, all inside
one BEGIN IMMEDIATE … COMMIT run whole by :meth:`chatbot.storage.db.Database.write_on_driver`.
Through SQLAlchemy the same work took a dozen round trips to aiosqlite's thread, each waiting for the
busy event loop to hand over the GIL; that, not SQLite, was most of a fire's latency.

The SQL is written for SQLite (qmark parameters, ``RETURNING``: SQLite 3.35+) against the columns of
:class:`~chatbot.storage.tables.AlertRow` and :class:`~chatbot.storage.tables.OutboxRow`; values are
bound through the columns' own SQLAlchemy types (:class:`Binds`), so the rows are byte for byte what
the SQLAlchemy path writes (``tests/test_alert_storms.py`` compares them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chatbot.alerts.notices import AlertFired
from chatbot.alerts.outbox import Push, enqueue_on_driver
from chatbot.storage.tables import AlertRow, OutboxRow
from chatbot.storage.types import utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect

    from chatbot.alerts.engine import Crossing

_RETURNED = ("id", "owner_id", "chat_id", "language", "code", "name", "direction", "threshold", "percent", "repeat",
             "cooldown_seconds", "fired_count", "reference_price")
_FIRE = ("UPDATE alerts SET status = CASE WHEN repeat THEN 'cooling' ELSE 'fired' END, "
         "fired_count = fired_count + 1, updated_at = ? WHERE status = 'armed' AND id IN ({ids}) "
         f"RETURNING {', '.join(_RETURNED)}")
_REARM_AT = "UPDATE alerts SET rearm_at = ? WHERE id = ?"
_IDS_PER_STATEMENT = 10_000  # well under SQLite's 32,766 bound parameters


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Binds:
    """How SQLAlchemy binds a UTC datetime and a JSON payload on this dialect (its column types'
    processors, taken once)."""

    datetime: Callable[[dt.datetime], Any]
    json: Callable[[Any], Any]

    @classmethod
    def of(cls, dialect: Dialect) -> Binds:
        updated_at = AlertRow.__table__.c.updated_at.type  # type: ignore[attr-defined]
        payload = OutboxRow.__table__.c.payload.type  # type: ignore[attr-defined]
        return cls(updated_at.dialect_impl(dialect).bind_processor(dialect) or _identity,
                   payload.dialect_impl(dialect).bind_processor(dialect) or _identity)


def fire_on_driver(crossings: Mapping[int, Crossing], now: dt.datetime, binds: Binds, cursor: Any) -> list[Any]:
    """Fire crossed alerts inside the caller's transaction on the driver's thread (``cursor``: a DB-API
    cursor on SQLite). Returns the fired rows as :func:`~chatbot.alerts.engine.fire_alerts` does."""
    ids = list(crossings)
    updated_at = binds.datetime(now)
    fired: list[Any] = []
    for i in range(0, len(ids), _IDS_PER_STATEMENT):
        part = ids[i:i + _IDS_PER_STATEMENT]
        cursor.execute(_FIRE.format(ids=", ".join("?" * len(part))), (updated_at, *part))
        fired.extend(cursor.fetchall())
    rearm: list[tuple[Any, int]] = []
    pushes = []
    rows = []
    for row in fired:
        (alert_id, owner, chat, language, code, name, direction, threshold, percent, repeat, cooldown,
         count, reference) = row
        crossing = crossings[alert_id]
        repeat = bool(repeat)  # stored as 0/1
        rows.append((*row[:9], repeat, *row[10:]))
        if repeat:
            rearm.append((binds.datetime(now + dt.timedelta(seconds=cooldown)), alert_id))
        pushes.append(Push(f"alert:{alert_id}:{count}", owner, chat, AlertFired(
            alert_id, language, code, name, direction, threshold, crossing.price, crossing.tick_time, percent,
            repeat, reference)))
    if rearm:
        cursor.executemany(_REARM_AT, rearm)
    # the fire count moved above: every key is new
    enqueue_on_driver(cursor, pushes, binds.datetime(utcnow()), binds.json)
    return rows
