"""The bundled KRX symbol directory: lookup by code or by name, Korean or English.

Codes are six characters, digits and (for newer listings, e.g. ``0126Z0``) capital letters.
Names match case- and spacing-insensitively; an exact name wins, otherwise a unique partial match
resolves, and several partial matches come back as candidates, never as a guess.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

CODE_RE = re.compile(r"^[0-9][0-9A-Z]{5}$")
_STRIP = re.compile(r"[\s\-_.,&'·()]+")
MAX_CANDIDATES = 8


@dataclass(frozen=True, slots=True)
class Symbol:
    code: str
    name_ko: str
    name_en: str
    market: str

    def display_name(self, lang: str = "ko") -> str:
        return self.name_en if lang == "en" else self.name_ko


@dataclass(frozen=True, slots=True)
class Lookup:
    """Result of a lookup: ``symbol`` when resolved, otherwise ``candidates`` (possibly empty)."""

    symbol: Symbol | None
    candidates: tuple[Symbol, ...] = ()


def normalise(text: str) -> str:
    return _STRIP.sub("", unicodedata.normalize("NFKC", text)).casefold()


def looks_like_code(text: str) -> bool:
    return bool(CODE_RE.match(text.strip().upper()))


class SymbolDirectory:
    def __init__(self, symbols: list[Symbol]) -> None:
        self.symbols = symbols
        self._by_code = {s.code: s for s in symbols}
        self._by_name: dict[str, Symbol] = {}
        for s in symbols:
            self._by_name.setdefault(normalise(s.name_ko), s)
            self._by_name.setdefault(normalise(s.name_en), s)

    @classmethod
    def bundled(cls) -> "SymbolDirectory":
        return _bundled()

    def __len__(self) -> int:
        return len(self.symbols)

    def by_code(self, code: str) -> Symbol | None:
        return self._by_code.get(code.strip().upper())

    def lookup(self, query: str) -> Lookup:
        text = query.strip()
        if not text or len(text) > 60:
            return Lookup(None)
        if looks_like_code(text):
            found = self.by_code(text)
            return Lookup(found) if found else Lookup(None)
        key = normalise(text)
        if not key:
            return Lookup(None)
        exact = self._by_name.get(key)
        if exact is not None:
            return Lookup(exact)
        partial = [s for s in self.symbols if key in normalise(s.name_ko) or key in normalise(s.name_en)]
        if len(partial) == 1:
            return Lookup(partial[0])
        partial.sort(key=lambda s: (not normalise(s.name_ko).startswith(key) and
                                    not normalise(s.name_en).startswith(key), len(s.name_ko)))
        return Lookup(None, tuple(partial[:MAX_CANDIDATES]))


@lru_cache(maxsize=1)
def _bundled() -> SymbolDirectory:
    text = resources.files("chatbot.data").joinpath("krx_symbols.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines())
    return SymbolDirectory([Symbol(r["code"], r["name_ko"], r["name_en"], r["market"]) for r in rows])
