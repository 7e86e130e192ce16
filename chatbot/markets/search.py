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

from chatbot.markets.symbols import KIND_RANK, Kind, Symbol

MAX_CANDIDATES = 8
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
    """Immutable search structures over one venue's symbols (built once per directory version)."""

    __slots__ = ("symbols", "by_code", "_exact", "_keys", "_owners", "_starts", "_text", "_initials", "_rank")

    def __init__(self, symbols: Sequence[Symbol]) -> None:
        self.symbols = tuple(symbols)
        self.by_code = {s.code: s for s in self.symbols}
        keys: list[str] = []
        owners: list[int] = []
        exact: dict[str, list[int]] = {}
        for i, s in enumerate(self.symbols):
            for name in (s.name_ko, s.name_en):
                key = normalise(name)
                if not key or i in exact.get(key, ()):
                    continue
                keys.append(key)
                owners.append(i)
                exact.setdefault(key, []).append(i)
        starts, offset = [], 0
        for key in keys:
            starts.append(offset)
            offset += len(key) + 1
        self._exact = exact
        self._keys, self._owners, self._starts = keys, owners, starts
        self._text = _SEP.join(keys)
        self._initials: str | None = None  # built on the first 초성 query
        order = sorted(range(len(self.symbols)), key=lambda i: _prominence(self.symbols[i]))
        self._rank = [0] * len(order)
        for position, i in enumerate(order):
            self._rank[i] = position

    def __len__(self) -> int:
        return len(self.symbols)

    def exact(self, key: str) -> list[Symbol]:
        return [self.symbols[i] for i in self._exact.get(key, ())]

    def search(self, key: str) -> dict[int, int]:
        """Matches of a normalised query: symbol index → EXACT, PREFIX or CONTAINS (its best key)."""
        if not has_initials(key):
            return self._scan(self._text, key, None)
        if self._initials is None:
            self._initials = initials(self._text)
        pattern = initials(key)
        if pattern == key:  # only consonants (ㅅㅅㅈㅈ) or consonants and Latin letters
            return self._scan(self._initials, pattern, None)

        def spelled_out(name: str, at: int) -> bool:  # 삼성ㅈㅈ: the syllables typed must match too
            return all(q == n for q, n in zip(key, name[at:at + len(key)]) if q not in _CONSONANTS)
        return self._scan(self._initials, pattern, spelled_out)

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
        rank = self._rank
        chosen = heapq.nsmallest(limit, matches, key=lambda i: (matches[i], rank[i]))
        return tuple(self.symbols[i] for i in chosen)


def _prominence(s: Symbol) -> tuple[int, int, int, str]:
    return KIND_RANK[s.kind], -s.weight, len(s.name_ko), s.code
