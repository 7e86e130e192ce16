"""Armed thresholds per symbol, kept so that a tick costs O(log n + fired).

Each side of a symbol is one sorted list of keys beside a list of alert ids, ordered so that the
alerts a move fires are always a *suffix*: ``above`` thresholds are stored by descending price
(a rise fires the lowest ones, at the end), ``below`` thresholds by ascending price (a fall fires
the highest ones, at the end). A tick is one ``bisect`` per side and one suffix cut.

Building is O(n log n) whatever the order alerts come in: :meth:`AlertBook.load` (start-up) and
:meth:`AlertBook.add_many` (a batch re-armed after its cooldown) sort each side once instead of
inserting one by one (``list.insert`` moves every later entry: O(n) per alert).

Prices and thresholds here are ``int``, in the currency's price units (whole won; 1/10,000 dollar:
:attr:`chatbot.markets.money.Currency.price_units`), not :class:`~chatbot.markets.money.Money`: a tick
is compared with every threshold of its symbol through ``bisect`` on plain integers, which a ``Decimal``
would make several times slower, and the units are exact for every price the markets allow. The
engine converts at its edges (the database casts thresholds while it loads them).
"""

from __future__ import annotations

import sys
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import Any

# Below this many new entries for one side, inserting each is cheaper than re-sorting the side.
_INSERT_ONE_BY_ONE = 32


@dataclass(slots=True)
class _Side:
    keys: list[int] = field(default_factory=list)  # sorted ascending
    ids: list[int] = field(default_factory=list)

    def add(self, key: int, alert_id: int) -> None:
        i = bisect_left(self.keys, key)
        self.keys.insert(i, key)
        self.ids.insert(i, alert_id)

    def add_many(self, entries: list[tuple[int, int]]) -> None:
        """Add (key, id) pairs: one by one when few, else one merge (Timsort merges sorted runs in O(n))."""
        if len(entries) < _INSERT_ONE_BY_ONE:
            for key, alert_id in entries:
                self.add(key, alert_id)
            return
        merged = list(zip(self.keys, self.ids, strict=True))
        merged += entries
        merged.sort(key=_KEY)  # stable: among equal keys, alerts already armed stay first
        self.keys = [key for key, _ in merged]
        self.ids = [alert_id for _, alert_id in merged]

    def pop_from(self, key: int) -> list[int]:
        """Remove and return every id whose key is >= ``key`` (a suffix)."""
        i = bisect_left(self.keys, key)
        if i == len(self.keys):
            return []
        fired = self.ids[i:]
        del self.keys[i:]
        del self.ids[i:]
        return fired

    def remove(self, key: int, alert_id: int) -> bool:
        i = bisect_left(self.keys, key)
        while i < len(self.keys) and self.keys[i] == key:
            if self.ids[i] == alert_id:
                del self.keys[i]
                del self.ids[i]
                return True
            i += 1
        return False


_KEY = itemgetter(0)


@dataclass(slots=True)
class _Symbol:
    above: _Side = field(default_factory=_Side)  # keys are -threshold
    below: _Side = field(default_factory=_Side)  # keys are threshold


class AlertBook:
    def __init__(self) -> None:
        self._symbols: dict[str, _Symbol] = {}
        self._where: dict[int, tuple[str, str, int]] = {}  # id -> (code, direction, threshold)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, alert_id: int) -> bool:
        return alert_id in self._where

    def ids(self) -> list[int]:
        """Every alert in the book (a standby replica prunes the ones fired or deleted elsewhere)."""
        return list(self._where)

    def count(self, code: str) -> int:
        s = self._symbols.get(code)
        return len(s.above.keys) + len(s.below.keys) if s else 0

    def add(self, alert_id: int, code: str, direction: str, threshold: int) -> None:
        if alert_id in self._where:
            return
        s = self._symbols.setdefault(code, _Symbol())
        if direction == "above":
            s.above.add(-threshold, alert_id)
        else:
            s.below.add(threshold, alert_id)
        self._where[alert_id] = (code, direction, threshold)

    def add_many(self, alerts: Iterable[tuple[Any, str, str, int]]) -> list[int]:
        """Add (id, code, direction, threshold) rows, sorting each touched side once; the ids added
        (an id already in the book is skipped, as :meth:`add` does)."""
        sides: dict[tuple[str, str], list[tuple[int, int]]] = {}
        added: list[int] = []
        where = self._where
        for alert_id, code, direction, threshold in alerts:
            if alert_id in where:
                continue
            where[alert_id] = (code, direction, threshold)
            added.append(alert_id)
            if direction == "above":
                sides.setdefault((code, "above"), []).append((-threshold, alert_id))
            else:
                sides.setdefault((code, "below"), []).append((threshold, alert_id))
        for (code, direction), entries in sides.items():
            s = self._symbols.setdefault(code, _Symbol())
            (s.above if direction == "above" else s.below).add_many(entries)
        return added

    def load(self, alerts: Iterable[tuple[Any, str, str, int]]) -> int:
        """Start-up: add every (id, code, direction, threshold) row; how many the book now holds."""
        self.add_many(alerts)
        return len(self._where)

    def load_sides(self, sides: Iterable[tuple[str, str, list[int], list[int]]]) -> int:
        """Start-up, into an empty book: each side whole, as (code, direction, alert ids, thresholds)
        (ids and thresholds in step, any order; :func:`chatbot.alerts.repository.armed_sides` reads
        them so). Each side is sorted once by key, and no per-alert Python work is done beyond the
        sort: 100,000 alerts load in a fraction of what one :meth:`add_many` call per row costs.
        How many the book now holds. A book already holding alerts takes them through :meth:`add_many`."""
        if self._where:
            for code, direction, ids, thresholds in sides:
                self.add_many([(i, code, direction, t) for i, t in zip(ids, thresholds, strict=True)])
            return len(self._where)
        where = self._where
        for code, direction, ids, thresholds in sides:
            if len(ids) != len(thresholds):
                raise ValueError(f"{code} {direction}: {len(ids)} ids for {len(thresholds)} thresholds")
            code, direction = sys.intern(code), sys.intern(direction)
            above = direction == "above"
            keys = [-t for t in thresholds] if above else thresholds
            order = sorted(range(len(keys)), key=keys.__getitem__)  # stable: equal keys keep their order
            s = self._symbols.setdefault(code, _Symbol())
            side = s.above if above else s.below
            if side.keys:  # the same side given twice: merged
                side.add_many([(keys[i], ids[i]) for i in order])
            else:
                side.keys = [keys[i] for i in order]
                side.ids = [ids[i] for i in order]
            where.update(zip(ids, zip(repeat(code), repeat(direction), thresholds)))
        return len(where)

    def remove(self, alert_id: int) -> bool:
        where = self._where.pop(alert_id, None)
        if where is None:
            return False
        code, direction, threshold = where
        s = self._symbols[code]
        return s.above.remove(-threshold, alert_id) if direction == "above" else s.below.remove(threshold, alert_id)

    def on_high(self, code: str, high: int) -> list[int]:
        """Above-alerts a high of ``high`` crossed (a gap's extreme; see the engine)."""
        s = self._symbols.get(code)
        fired = s.above.pop_from(-high) if s else []
        for alert_id in fired:
            del self._where[alert_id]
        return fired

    def on_low(self, code: str, low: int) -> list[int]:
        s = self._symbols.get(code)
        fired = s.below.pop_from(low) if s else []
        for alert_id in fired:
            del self._where[alert_id]
        return fired

    def where(self, alert_id: int) -> tuple[str, str, int] | None:
        return self._where.get(alert_id)

    def on_price(self, code: str, price: int) -> list[int]:
        """Alerts crossed by ``price`` (removed from the book: each fires once)."""
        s = self._symbols.get(code)
        if s is None:
            return []
        fired = s.above.pop_from(-price)  # thresholds <= price
        fired += s.below.pop_from(price)  # thresholds >= price
        for alert_id in fired:
            del self._where[alert_id]
        return fired
