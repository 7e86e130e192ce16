"""Firing a chunk of crossed alerts on SQLite in one round trip to the driver's thread.

The same transaction as :func:`chatbot.alerts.engine.fire_alerts` (which PostgreSQL keeps): the
alerts of the chunk still armed are read and moved by a conditional UPDATE (exactly once, whatever
else fires them: both run under the write lock BEGIN IMMEDIATE took), repeat alerts get their re-arm
time, and their pushes go into the outbox, all inside one BEGIN IMMEDIATE … COMMIT run whole by
:meth:`chatbot.storage.db.Database.write_on_driver`.
Through SQLAlchemy the same work took a dozen round trips to aiosqlite's thread, each waiting for the
busy event loop to hand over the GIL; that, not SQLite, was most of a fire's latency.

Each statement is one step however many alerts the chunk has (ids and rows read travel as one JSON
array: SQLite's JSON1), since SQLite hands the GIL back around every step and a busy event loop makes
each step wait to get it again; and the outbox rows are built by SQLite itself (key, payload by
``json_object``), so this thread runs almost no Python per alert: Python here holds the GIL the event
loop wants (building 100 notices and their JSON in Python cost the loop stalls and the fire most of its
time). The SQL is written for SQLite (qmark parameters) against the columns of
:class:`~chatbot.storage.tables.AlertRow` and :class:`~chatbot.storage.tables.OutboxRow`; times are
bound through the columns' own SQLAlchemy types (:class:`Binds`), so the rows are what the SQLAlchemy
path writes, the payload the same JSON value (``tests/test_alert_storms.py`` compares them).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from chatbot.alerts.notices import AlertFired
from chatbot.markets.money import Currency, price_units, whole_units
from chatbot.storage.tables import AlertRow, OutboxRow
from chatbot.storage.types import utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect

    from chatbot.alerts.engine import Crossing

# The outbox rows of the chunk's alerts still armed, built whole by SQLite (the key with the fire count as it
# is about to become, the payload by json_object: no Python per row on this thread, which would hold the GIL
# the event loop wants), then the conditional UPDATE of the same alerts, a repeat alert's re-arm time in it.
# Both inside BEGIN IMMEDIATE: no other writer comes between them, so what is pushed is what is fired.
_CROSSED = ("(SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS price, "
            "json_extract(value, '$[2]') AS tick_time FROM json_each(?))")
# A price in the currency's price units, as units() reads it: KRW whole (a fraction fails the statement:
# json() of a non-JSON text raises), USD to 1/10,000 dollar (a REAL such as 1.13 is 11,299.99…: rounded).
_UNITS = ("CASE WHEN {c} IS NULL THEN NULL WHEN a.currency = 'USD' THEN CAST(round({c} * 10000) AS INTEGER) "
          "WHEN {c} = CAST({c} AS INTEGER) THEN CAST({c} AS INTEGER) ELSE json('not whole: ' || {c}) END")
_PUSH = ("INSERT INTO outbox (dedupe_key, owner_id, chat_id, kind, status, attempts, created_at, payload) "
         "SELECT 'alert:' || a.id || ':' || (a.fired_count + 1), a.owner_id, a.chat_id, ?, 'pending', 0, ?, "
         "json_object('alert_id', a.id, 'lang', a.language, 'code', a.code, 'name', a.name, 'direction', a.direction, "
         f"'threshold', {_UNITS.format(c='a.threshold')}, 'price', c.price, 'time', c.tick_time, "
         "'percent', a.percent, 'repeat', json(CASE WHEN a.repeat THEN 'true' ELSE 'false' END), "
         f"'reference_price', {_UNITS.format(c='a.reference_price')}, 'currency', a.currency) "
         f"FROM {_CROSSED} AS c CROSS JOIN alerts AS a ON a.id = c.id WHERE a.status = 'armed' ORDER BY a.id")
# ?1 is now as the column stores it ('YYYY-MM-DD HH:MM:SS.ffffff'): the re-arm time is now plus the cooldown's
# whole seconds, its fraction as it is (the fraction is kept out of SQLite's date arithmetic, which rounds to ms).
_FIRE = ("UPDATE alerts SET status = CASE WHEN repeat THEN 'cooling' ELSE 'fired' END, "
         "fired_count = fired_count + 1, updated_at = ?1, rearm_at = CASE WHEN repeat THEN "
         "strftime('%Y-%m-%d %H:%M:%S', substr(?1, 1, 19), '+' || cooldown_seconds || ' seconds') || substr(?1, 20) "
         "ELSE rearm_at END WHERE status = 'armed' AND id IN (SELECT json_extract(value, '$[0]') FROM json_each(?2))")


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


def fire_on_driver(crossings: Mapping[int, Crossing], now: dt.datetime, binds: Binds,
                   cursor: Any) -> tuple[int, set[str]]:
    """Fire crossed alerts inside the caller's transaction on the driver's thread (``cursor``: a DB-API
    cursor on SQLite): the rows :func:`~chatbot.alerts.engine.fire_alerts` writes, in two statements.
    Returns how many fired and the symbols of the chunk (what the engine needs)."""
    crossed = json.dumps([(alert_id, crossing.price, crossing.tick_time) for alert_id, crossing in crossings.items()])
    cursor.execute(_PUSH, (AlertFired.KIND, binds.datetime(utcnow()), crossed))
    if cursor.rowcount <= 0:  # none still armed
        return 0, set()
    stamp = binds.datetime(now)
    if not (isinstance(stamp, str) and len(stamp) == 26 and stamp[19] == "."):  # the form _FIRE's re-arm time reads
        raise ValueError(f"unexpected stored time {stamp!r}")
    cursor.execute(_FIRE, (stamp, crossed))
    return cursor.rowcount, {crossing.code for crossing in crossings.values()}
