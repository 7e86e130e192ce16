"""Name search over one venue's symbols: exact, prefix, contains and 초성 (initial consonants).

Every name is reduced to a key (NFKC, separators removed, case folded) and all keys are joined into
one string, so a partial search is a handful of ``str.find`` calls in C rather than a loop over
thousands of names in Python. Keys keep their length under the 초성 projection (삼성전자 → ㅅㅅㅈㅈ,
TIGER반도체 → tigerㅂㄷㅊ), so the 초성 text shares the offsets of the name text.
"""

from __future__ import annotations

import heapq
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Sequence

from chatbot.markets.symbols import KIND_RANK, Kind, Lookup, Symbol

MAX_CANDIDATES = 8
BROAD = 64  # more occurrences than this: candidates only, found in ranking order (NameIndex._first)
EXACT, PREFIX, CONTAINS = 0, 1, 2

_STRIP = re.compile(r"[\s\-_.,&'·()]+")
_INITIALS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"  # in the order of Unicode's syllable composition
_CONSONANTS = frozenset(_INITIALS)
# NFKC turns the letters people type (ㅅ, U+3145) into conjoining jamo (U+1109): turn them back.
_FROM_CONJOINING = {0x1100 + i: ch for i, ch in enumerate(_INITIALS)}
_SYLLABLES = range(0xAC00, 0xD7A4)
_SEP = "\x00"


def normalise(text: str) -> str:
    """The key names and queries are compared by: width, spacing, punctuation and case do not count."""
    return _STRIP.sub("", unicodedata.normalize("NFKC", text)).casefold().translate(_FROM_CONJOINING)


def initials(key: str) -> str:
    """The 초성 projection of a key: each Hangul syllable becomes its initial consonant, the rest stays."""
    return "".join(_INITIALS[(ord(ch) - 0xAC00) // 588] if ord(ch) in _SYLLABLES else ch for ch in key)


def has_initials(key: str) -> bool:
    return any(ch in _CONSONANTS for ch in key)


class NameIndex:
    """Immutable search structures over one venue's symbols (built once per directory version).

    Keys are laid out in ranking order (see :meth:`best`), so a broad query (``ㅇㅇ``: hundreds of
    matches) collects its best candidates from the first hits and stops, instead of grading every
    match in Python.
    """

    __slots__ = (
        "_exact",
        "_initials",
        "_initials_exact",
        "_keys",
        "_owners",
        "_rank",
        "_starts",
        "_text",
        "by_code",
        "symbols",
    )

    def __init__(self, symbols: Sequence[Symbol]) -> None:
        self.symbols = tuple(symbols)
        self.by_code = {s.code: s for s in self.symbols}
        self._text: str | None = None  # the name structures: built on the first name search (_names)

    def _names(self) -> str:
        """Build the name structures once, on the first search by name: every name normalised (NFKC,
        a regular expression, case folding), ~14 ms of CPU for the KRX directory. Looking a code up
        (``by_code``: the simulator, the alert book, /price 005930) never needs them, so a start-up
        does not pay for them. The joined key text (what searches scan)."""
        if self._text is not None:
            return self._text
        order = sorted(range(len(self.symbols)), key=lambda i: _prominence(self.symbols[i]))
        self._rank = [0] * len(order)
        keys: list[str] = []
        owners: list[int] = []
        exact: dict[str, list[int]] = {}
        for position, i in enumerate(order):
            self._rank[i] = position
            s = self.symbols[i]
            for name in (s.name_ko, s.name_en):
                key = normalise(name)
                if not key or i in exact.get(key, ()):
                    continue
                keys.append(key)
                owners.append(i)
                exact.setdefault(key, []).append(i)
        starts, offset = [], 1
        for key in keys:
            starts.append(offset)
            offset += len(key) + 1
        self._exact = exact
        self._keys, self._owners, self._starts = keys, owners, starts
        self._initials: str | None = None  # built on the first 초성 query
        self._initials_exact: dict[str, list[int]] = {}  # 초성 of a key → key positions
        self._text = _SEP + _SEP.join(keys)  # every key follows a separator: SEP + query finds prefixes
        return self._text

    def __len__(self) -> int:
        return len(self.symbols)

    def exact(self, key: str) -> list[Symbol]:
        self._names()
        return [self.symbols[i] for i in self._exact.get(key, ())]

    def lookup(self, key: str) -> Lookup | None:
        """A normalised query's result, or None when nothing matches. One match resolves, and so does
        :meth:`sole_company`; otherwise the best candidates."""
        self._names()
        exact = self._exact.get(key, [])
        if len(exact) == 1:
            return Lookup(self.symbols[exact[0]])
        text, pattern, verify = self._target(key)
        if text.count(pattern) > BROAD:  # hundreds of matches: only the best few are of use
            if text is not self._names():  # 초성: the keys whose initials are the whole pattern
                exact = list(dict.fromkeys(self._owners[k] for k in self._initials_exact.get(pattern, ())
                                           if verify is None or verify(self._keys[k], 0)))
            top = self._first(text, pattern, verify, exact)
            return Lookup(None, top) if top else None
        matches = self._scan(text, pattern, verify)
        if not matches:
            return None
        if len(matches) == 1:
            ((only, grade),) = matches.items()
            only_symbol = self.symbols[only]
            if grade == CONTAINS and only_symbol.is_fund and only_symbol.venue == "US":
                # KIS lists US shares by their Korean names only (애플), so an English company name
                # found inside one fund's name ("apple" → T-REX APPLE DAILY 2X, a leveraged ETF) says
                # nothing about that fund: offered, never chosen for the user
                return Lookup(None, (only_symbol,))
            return Lookup(self.symbols[only])
        sole = self.sole_company(matches)
        return Lookup(sole) if sole is not None else Lookup(None, self.best(matches))

    def search(self, key: str) -> dict[int, int]:
        """Every match of a normalised query: symbol index → EXACT, PREFIX or CONTAINS (its best key)."""
        return self._scan(*self._target(key))

    def _target(self, key: str) -> tuple[str, str, Callable[[str, int], bool] | None]:
        """What to search for a key: the names as typed, or their 초성 when the key has initials."""
        text = self._names()
        if not has_initials(key):
            return text, key, None
        if self._initials is None:
            self._initials = initials(text)
            for k, name in enumerate(self._keys):
                self._initials_exact.setdefault(initials(name), []).append(k)
        pattern = initials(key)
        if pattern == key:  # only consonants (ㅅㅅㅈㅈ) or consonants and Latin letters
            return self._initials, pattern, None

        def spelled_out(name: str, at: int) -> bool:  # 삼성ㅈㅈ: the syllables typed must match too
            return all(q == n for q, n in zip(key, name[at:at + len(key)]) if q not in _CONSONANTS)
        return self._initials, pattern, spelled_out

    def _scan(self, text: str, pattern: str, verify: Callable[[str, int], bool] | None) -> dict[int, int]:
        found: dict[int, int] = {}
        starts, keys, owners = self._starts, self._keys, self._owners
        pos = text.find(pattern)
        while pos != -1:
            k = bisect_right(starts, pos) - 1
            at = pos - starts[k]
            if verify is None or verify(keys[k], at):
                grade = CONTAINS if at else EXACT if len(keys[k]) == len(pattern) else PREFIX
                owner = owners[k]
                if grade < found.get(owner, 3):
                    found[owner] = grade
            pos = text.find(pattern, pos + 1)
        return found

    def _first(self, text: str, pattern: str, verify: Callable[[str, int], bool] | None, exact: list[int],
               limit: int = MAX_CANDIDATES) -> tuple[Symbol, ...]:
        """The best ``limit`` matches without grading them all: exact ones, then prefix hits and then
        contains hits, each found in ranking order."""
        chosen: list[int] = list(exact[:limit])
        taken = set(chosen)
        starts, keys, owners = self._starts, self._keys, self._owners
        for needle, prefix in ((_SEP + pattern, True), (pattern, False)):
            pos = text.find(needle)
            while pos != -1 and len(chosen) < limit:
                at_key = pos + 1 if prefix else pos
                k = bisect_right(starts, at_key) - 1
                at = at_key - starts[k]
                owner = owners[k]
                if owner not in taken and (prefix or at) and (verify is None or verify(keys[k], at)):
                    chosen.append(owner)
                    taken.add(owner)
                pos = text.find(needle, pos + 1)
        return tuple(self.symbols[i] for i in chosen)

    def sole_company(self, matches: dict[int, int]) -> Symbol | None:
        """The one common share among the matches when every other match is named after it (its
        preferred shares, the ETFs and ETNs on it): 하이닉스 → SK하이닉스, but 반도체 stays ambiguous."""
        if len(matches) > 4 * MAX_CANDIDATES:
            return None
        companies = [i for i in matches if self.symbols[i].kind is Kind.STOCK]
        if len(companies) != 1:
            return None
        company = self.symbols[companies[0]]
        name = normalise(company.name_ko)
        if all(i == companies[0] or name in normalise(self.symbols[i].name_ko) for i in matches):
            return company
        return None

    def best(self, matches: dict[int, int], limit: int = MAX_CANDIDATES) -> tuple[Symbol, ...]:
        """The ``limit`` best matches: exact > prefix > contains, then common shares before preferred
        shares, ETFs and ETNs, then the larger company, the shorter name."""
        self._names()
        rank = self._rank
        chosen = heapq.nsmallest(limit, matches, key=lambda i: (matches[i], rank[i]))
        return tuple(self.symbols[i] for i in chosen)


def _prominence(s: Symbol) -> tuple[int, int, int, str]:
    return KIND_RANK[s.kind], -s.weight, len(s.name_ko), s.code
