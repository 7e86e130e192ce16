"""Firing a chunk of crossed alerts on SQLite in one round trip to the driver's thread.

The same transaction as :func:`chatbot.alerts.engine.fire_alerts` (which PostgreSQL keeps): the
alerts of the chunk still armed are read and moved by a conditional UPDATE (exactly once, whatever
else fires them: both run under the write lock BEGIN IMMEDIATE took), repeat alerts get their re-arm
time, and their pushes go into the outbox, all inside one BEGIN IMMEDIATE … COMMIT run whole by
:meth:`chatbot.storage.db.Database.write_on_driver`.
Through SQLAlchemy the same work took a dozen round trips to aiosqlite's thread, each waiting for the
busy event loop to hand over the GIL; that, not SQLite, was most of a fire's latency.

Each statement is one step however many alerts the chunk has (ids, rows read and rows written travel
as one JSON array: SQLite's JSON1), since SQLite hands the GIL back around every step and a busy
event loop makes each step wait to get it again. The SQL is written for SQLite (qmark parameters)
against the columns of :class:`~chatbot.storage.tables.AlertRow` and
:class:`~chatbot.storage.tables.OutboxRow`; values are bound through the columns' own SQLAlchemy types (:class:`Binds`), so the rows are byte for byte what
the SQLAlchemy path writes (``tests/test_alert_storms.py`` compares them).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from chatbot.alerts.notices import AlertFired
from chatbot.alerts.outbox import Push, enqueue_on_driver
from chatbot.markets.money import Currency, price_units, whole_units
from chatbot.storage.tables import AlertRow, OutboxRow
from chatbot.storage.types import utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect

    from chatbot.alerts.engine import Crossing

# The alerts of a chunk still armed, as one JSON array (one statement step, not one per row), with
# their fire count as it is about to become; then the conditional UPDATE of the same alerts. Both run
# inside BEGIN IMMEDIATE: no other writer comes between them, so what is read is what is fired.
_ARMED = ("SELECT json_group_array(json_array(id, owner_id, chat_id, language, code, name, direction, threshold, "
          "percent, repeat, cooldown_seconds, fired_count + 1, reference_price, currency)) FROM alerts "
          "WHERE status = 'armed' AND id IN (SELECT value FROM json_each(?))")
_FIRE = ("UPDATE alerts SET status = CASE WHEN repeat THEN 'cooling' ELSE 'fired' END, "
         "fired_count = fired_count + 1, updated_at = ? "
         "WHERE status = 'armed' AND id IN (SELECT value FROM json_each(?))")
_REARM_AT = "UPDATE alerts SET rearm_at = ? WHERE id IN (SELECT value FROM json_each(?))"


def units(raw: Any, currency: str) -> int:
    """A price read raw (as the driver gives it) in its currency's price units: KRW is whole won, checked
    whole; a US price (dollars; a REAL on SQLite) goes through ``Decimal`` to 1/10,000 dollar."""
    if currency == Currency.KRW.value:
        return whole_units(raw)
    return price_units(Decimal(str(raw)), currency)


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
    ids = json.dumps(list(crossings))
    cursor.execute(_ARMED, (ids,))
    armed = json.loads(cursor.fetchone()[0])
    if not armed:
        return []
    cursor.execute(_FIRE, (binds.datetime(now), ids))
    cooldowns: dict[int, list[int]] = {}
    pushes = []
    fired = []
    for row in armed:
        (alert_id, owner, chat, language, code, name, direction, threshold, percent, repeat, cooldown,
         count, reference, currency) = row
        crossing = crossings[alert_id]
        repeat = row[9] = bool(repeat)  # stored as 0/1
        fired.append(tuple(row))
        if repeat:
            cooldowns.setdefault(cooldown, []).append(alert_id)
        pushes.append(Push(f"alert:{alert_id}:{count}", owner, chat, AlertFired(
            alert_id, language, code, name, direction, units(threshold, currency), crossing.price,
            crossing.tick_time, percent, repeat, None if reference is None else units(reference, currency), currency)))
    for cooldown, repeat_ids in cooldowns.items():
        cursor.execute(_REARM_AT, (binds.datetime(now + dt.timedelta(seconds=cooldown)), json.dumps(repeat_ids)))
    # the fire count moved above: every key is new
    enqueue_on_driver(cursor, pushes, binds.datetime(utcnow()), binds.json)
    return fired
