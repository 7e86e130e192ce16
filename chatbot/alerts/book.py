"""Armed thresholds per symbol, kept so that a tick costs O(log n + fired).

Each side of a symbol is one sorted list of keys beside a list of alert ids, ordered so that the
alerts a move fires are always a *suffix*: ``above`` thresholds are stored by descending price
(a rise fires the lowest ones, at the end), ``below`` thresholds by ascending price (a fall fires
the highest ones, at the end). A tick is one ``bisect`` per side and one suffix cut.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Side:
    keys: list[int] = field(default_factory=list)  # sorted ascending
    ids: list[int] = field(default_factory=list)

    def add(self, key: int, alert_id: int) -> None:
        i = bisect_left(self.keys, key)
        self.keys.insert(i, key)
        self.ids.insert(i, alert_id)

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


@dataclass(slots=True)
class _Symbol:
    above: _Side = field(default_factory=_Side)  # keys are -threshold
    below: _Side = field(default_factory=_Side)  # keys are threshold


class AlertBook:
    def __init__(self) -> None:
        self._symbols: dict[str, _Symbol] = {}
        self._where: dict[int, tuple[str, str, int]] = {}  # id -> (code, side, threshold)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, alert_id: int) -> bool:
        return alert_id in self._where

    def symbols(self) -> set[str]:
        return {code for code, s in self._symbols.items() if s.above.keys or s.below.keys}

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
