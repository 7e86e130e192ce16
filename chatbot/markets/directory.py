"""Every listed symbol, by venue, with the lookup a Korean user expects.

The directory starts from the bundled snapshot and is refreshed from KIS's master files (one market
section at a time, :meth:`SymbolDirectory.replace_markets`). A swap builds the new search structures
first and then replaces them in one assignment, so a lookup sees the old directory or the new one,
never a mix. Lookups are filtered by venue: the US rows ship now, but ``/price 애플`` must not
resolve to a US stock while the bot trades only on KRX.

Queries, in order:

- a code: ``005930``, ``0126Z0`` (letters in new codes), ``Q500001`` (an ETN as KIS writes it),
  ``A005930`` (HTS style), an ISIN ``KR7005930003``; a code-shaped query is never read as a name;
- an exact name, Korean or English, ignoring spaces, punctuation and case (``TIGER반도체`` =
  ``TIGER 반도체``; ``삼성전자 우선주`` = ``삼성전자우``);
- a partial name or 초성 (``ㅅㅅㅈㅈ``): one match resolves, and so does the one company among
  matches that are otherwise only products named after it (``하이닉스`` → SK하이닉스, not the
  SK하이닉스 leveraged ETFs); several come back as candidates, best first (see
  :meth:`NameIndex.best`), never as a guess.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from chatbot.markets.bundled import SNAPSHOT_DATE, bundled_symbols
from chatbot.markets.search import NameIndex, normalise
from chatbot.markets.symbols import Lookup, Symbol, Venue, venue_of

MAX_QUERY = 60
CODE_RE = re.compile(r"^[0-9][0-9A-Z]{5}$")
_PREFIXED_CODE = re.compile(r"^[QA][0-9][0-9A-Z]{5}$")  # Q: ETN as KIS writes it; A: HTS style
_ISIN = re.compile(r"^KR[0-9A-Z]{10}$")
_TICKER = re.compile(r"^[A-Z][A-Z0-9]{0,5}([/.][A-Z0-9]{1,4})?$")
_PREFERRED_WORDS = (("우선주", "우"), ("우선", "우"))


def looks_like_code(text: str) -> bool:
    return bool(CODE_RE.match(text.strip().upper()))


@dataclass(frozen=True, slots=True)
class Source:
    """Where a market section of the directory comes from."""

    origin: str  # "bundled" (the snapshot in the wheel) or "master" (KIS's master file)
    as_of: dt.datetime  # snapshot date, or when the master file was downloaded (UTC)


BUNDLED_SOURCE = Source("bundled", dt.datetime.combine(SNAPSHOT_DATE, dt.time(), dt.UTC))


class SymbolDirectory:
    def __init__(self, symbols: Iterable[Symbol] = (), *, source: Source = BUNDLED_SOURCE,
                 loaders: Mapping[Venue, Callable[[], Sequence[Symbol]]] | None = None) -> None:
        self._markets: dict[str, tuple[Symbol, ...]] = _by_market(symbols)
        self._sources: dict[str, Source] = {market: source for market in self._markets}
        self._loaders: dict[Venue, Callable[[], Sequence[Symbol]]] = dict(loaders or {})
        self._indexes: dict[Venue, NameIndex] = {}
        self.version = 0  # bumped by every swap

    @classmethod
    def bundled(cls) -> SymbolDirectory:
        """A directory on the bundled snapshot: KRX now, the US rows on first US use. The rows are
        shared between directories; each directory swaps its own sections."""
        return cls(bundled_symbols("KRX"), loaders={"US": lambda: bundled_symbols("US")})

    # -- reading -------------------------------------------------------------------------------------
    def index(self, venue: Venue = "KRX") -> NameIndex:
        index = self._indexes.get(venue)
        if index is None:
            loader = self._loaders.pop(venue, None)
            if loader is not None:
                loaded = _by_market(loader())
                self._markets = {**self._markets, **{m: rows for m, rows in loaded.items() if m not in self._markets}}
                self._sources = {**{m: BUNDLED_SOURCE for m in loaded}, **self._sources}
            index = NameIndex([s for market, rows in self._markets.items() if venue_of(market) == venue
                               for s in rows])
            self._indexes = {**self._indexes, venue: index}
        return index

    def symbols(self, venue: Venue = "KRX") -> tuple[Symbol, ...]:
        return self.index(venue).symbols

    def __len__(self) -> int:
        """The number of KRX symbols."""
        return len(self.index("KRX"))

    def sources(self) -> dict[str, Source]:
        return dict(self._sources)

    def by_code(self, code: str, venue: Venue = "KRX") -> Symbol | None:
        text = code.strip().upper()
        index = self.index(venue)
        found = index.by_code.get(text)
        if found is None and venue == "KRX":
            if _PREFIXED_CODE.match(text):
                found = index.by_code.get(text[1:])
            elif _ISIN.match(text):
                found = index.by_code.get(text[3:9])
        elif found is None and venue == "US":
            found = index.by_code.get(text.replace(".", "/"))
        return found

    def is_etn(self, code: str) -> bool:
        """Whether a KRX code is an ETN's (KIS takes its orders and quotes as Q + code)."""
        found = self.by_code(code)
        return found is not None and found.is_etn

    def lookup(self, query: str, venue: Venue = "KRX") -> Lookup:
        text = query.strip()
        if not text or len(text) > MAX_QUERY:
            return Lookup(None)
        upper = text.upper()
        if venue == "KRX" and (CODE_RE.match(upper) or _PREFIXED_CODE.match(upper) or _ISIN.match(upper)):
            return Lookup(self.by_code(upper, venue))
        if venue == "US" and _TICKER.match(upper):
            found = self.by_code(upper, venue)
            if found is not None:
                return Lookup(found)
        key = normalise(text)
        if not key:
            return Lookup(None)
        index = self.index(venue)
        for variant in (key, *(key[: -len(word)] + short for word, short in _PREFERRED_WORDS
                               if key.endswith(word) and len(key) > len(word))):
            result = index.lookup(variant)
            if result is not None:
                return result
        return Lookup(None)

    # -- swapping ------------------------------------------------------------------------------------
    def replace_markets(self, sections: Mapping[str, Sequence[Symbol]], sources: Mapping[str, Source]) -> None:
        """Replace whole market sections (``{"KOSPI": rows}``, each with its source); other markets
        keep theirs."""
        markets = {**self._markets, **{m: tuple(rows) for m, rows in sections.items()}}
        self._install(markets, {**self._sources, **{m: sources[m] for m in sections}}, {venue_of(m) for m in sections})

    def upsert(self, symbols: Iterable[Symbol]) -> None:
        """Add or replace single listings (by code, within their market): the simulator's controls."""
        markets = dict(self._markets)
        for s in symbols:
            rows = [r for r in markets.get(s.market, ()) if r.code != s.code]
            markets[s.market] = (*rows, s)
        self._install(markets, self._sources, {s.venue for s in symbols})

    def _install(self, markets: dict[str, tuple[Symbol, ...]], sources: dict[str, Source],
                 venues: set[Venue]) -> None:
        indexes = dict(self._indexes)
        for venue in venues:
            if venue in indexes or venue not in self._loaders:
                indexes[venue] = NameIndex([s for m, rows in markets.items() if venue_of(m) == venue for s in rows])
        self._markets, self._sources, self._indexes = markets, sources, indexes
        self.version += 1


def _by_market(symbols: Iterable[Symbol]) -> dict[str, tuple[Symbol, ...]]:
    grouped: dict[str, list[Symbol]] = {}
    for s in symbols:
        grouped.setdefault(s.market, []).append(s)
    return {market: tuple(rows) for market, rows in grouped.items()}
