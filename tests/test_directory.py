"""The symbol directory: the whole bundled master, the lookups a Korean user types, ranking, venues, swaps."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from chatbot.kis import protocol as p
from chatbot.markets.directory import Source, SymbolDirectory
from chatbot.markets.search import initials, normalise
from chatbot.markets.symbols import Kind, Symbol


@pytest.fixture(scope="module")
def directory() -> SymbolDirectory:
    return SymbolDirectory.bundled()


def resolved(directory: SymbolDirectory, query: str) -> str | None:
    found = directory.lookup(query)
    return found.symbol.code if found.symbol else None


def candidates(directory: SymbolDirectory, query: str) -> list[str]:
    found = directory.lookup(query)
    assert found.symbol is None, f"{query!r} resolved to {found.symbol}"
    return [s.code for s in found.candidates]


def test_the_whole_master_ships(directory: SymbolDirectory) -> None:
    krx = directory.symbols("KRX")
    assert len(krx) == len(directory) == 3_875  # 2,070 KOSPI + 1,804 KOSDAQ + 950160 (a foreign issuer)
    assert {s.market for s in krx} == {"KOSPI", "KOSDAQ"}
    kinds = {k: sum(s.kind is k for s in krx) for k in Kind}
    assert kinds[Kind.ETF] == 1_155 and kinds[Kind.PREFERRED] > 100 and kinds[Kind.STOCK] > 2_500
    assert directory.by_code("950160").name_ko == "코오롱티슈진"  # type: ignore[union-attr]
    assert directory.by_code("005930").name_en == "Samsung Electronics"  # type: ignore[union-attr]
    us = directory.symbols("US")
    assert len(us) == 12_665 and {s.market for s in us} == {"NASDAQ", "NYSE", "AMEX"}
    assert all(s.currency == "USD" for s in us) and all(s.currency == "KRW" for s in krx)


@pytest.mark.parametrize(("query", "code"), [
    ("005930", "005930"), (" 005930 ", "005930"), ("0126z0", "0126Z0"), ("A005930", "005930"),
    ("KR7005930003", "005930"),
    ("삼성전자", "005930"), ("삼성 전자", "005930"), ("samsung electronics", "005930"),
    ("SamsungElectronics", "005930"), ("ＳＫ하이닉스", "000660"),
    ("삼성전자우", "005935"), ("삼성전자 우", "005935"), ("삼성전자우선주", "005935"), ("현대차2우b", "005387"),
    ("TIGER 반도체", "091230"), ("TIGER반도체", "091230"), ("tiger반도체", "091230"), ("KODEX200", "069500"),
    ("SK", "034730"), ("카카오", "035720"),
    ("하이닉스", "000660"),  # one company; the other matches are ETFs named after it
    ("hynix", "000660"),
])
def test_resolves(directory: SymbolDirectory, query: str, code: str) -> None:
    assert resolved(directory, query) == code


def test_chosung_gives_candidates_best_first(directory: SymbolDirectory) -> None:
    codes = candidates(directory, "ㅅㅅㅈㅈ")
    assert codes[0] == "005930" and "005935" in codes
    # exact 초성 matches (삼성전자, 상신전자) before prefixes (삼성전자우), shares before ETFs
    names = [directory.by_code(c).name_ko for c in codes]  # type: ignore[union-attr]
    assert names.index("삼성전자우") > names.index("상신전자")
    assert resolved(directory, "ㅅㅅㅈㅈㅇ") == "005935"  # only 삼성전자우 spells so
    # typed syllables must match too: 상신전자 has the 초성 but not 삼성, which leaves one company
    # (the other matches being its preferred share and products named after it)
    assert resolved(directory, "삼성ㅈㅈ") == "005930"


def test_partial_names_rank_exact_prefix_contains_then_kind(directory: SymbolDirectory) -> None:
    codes = candidates(directory, "삼성전")
    kinds = [directory.by_code(c).kind for c in codes]  # type: ignore[union-attr]
    assert codes[:2] == ["005930", "009150"]  # 삼성전자, 삼성전기: the common shares, largest first
    assert kinds.index(Kind.PREFERRED) > kinds.index(Kind.STOCK)
    assert kinds.index(Kind.ETF) > max(i for i, k in enumerate(kinds) if k is Kind.PREFERRED)
    # a prefix match beats a contains match whatever the kind
    prefixed = candidates(directory, "KODEX")
    assert all(directory.by_code(c).name_ko.startswith("KODEX") for c in prefixed)  # type: ignore[union-attr]
    assert len(candidates(directory, "반도체")) == 8  # many companies and ETFs: candidates, not a guess


@pytest.mark.parametrize("query", ["", "   ", "999999", "Q999999", "zzzzqq", "x" * 10_000, "🙂🙂",
                                   "'; drop table", "ㅋㅋㅋㅋㅋㅋㅋㅋ"])
def test_unknown(directory: SymbolDirectory, query: str) -> None:
    found = directory.lookup(query)
    assert found.symbol is None and not found.candidates


def test_us_rows_stay_out_of_krx_lookups(directory: SymbolDirectory) -> None:
    assert directory.lookup("AAPL").symbol is None and directory.by_code("AAPL") is None
    assert all(s.market in ("KOSPI", "KOSDAQ") for s in directory.lookup("애플").candidates)
    assert resolved(directory, "애플") is None
    us = directory.lookup("애플", "US")
    assert us.symbol is not None and us.symbol.code == "AAPL" and us.symbol.market == "NASDAQ"
    assert directory.by_code("brk.b", "US").code == "BRK/B"  # type: ignore[union-attr]
    assert directory.by_code("005930", "US") is None


def test_every_listing_is_found_by_code_and_name(directory: SymbolDirectory) -> None:
    rng = random.Random(15)
    for s in rng.sample(directory.symbols("KRX"), 300):
        assert directory.lookup(s.code).symbol == s
        found = directory.lookup(s.name_ko)
        assert found.symbol == s or s in found.candidates, s  # a name shared with another listing: listed


def test_normalised_keys() -> None:
    assert normalise(" TIGER 반도체 ") == normalise("tiger반도체") == "tiger반도체"
    assert normalise("ㅅㅅ") == "ㅅㅅ"  # NFKC makes typed consonants conjoining jamo: turned back
    assert initials(normalise("삼성전자우")) == "ㅅㅅㅈㅈㅇ" and initials("tiger반도체") == "tigerㅂㄷㅊ"


def test_etn_quotation_code() -> None:
    assert p.quotation_code("500001", True) == "Q500001" and p.quotation_code("Q500001", True) == "Q500001"
    assert p.quotation_code("005930", False) == "005930"


def test_a_swap_replaces_one_market_and_keeps_the_rest() -> None:
    directory = SymbolDirectory.bundled()
    other = SymbolDirectory.bundled()
    kosdaq_before = [s for s in directory.symbols() if s.market == "KOSDAQ"]
    fresh = (Symbol("005930", "삼성전자", "", "KOSPI", halted=True, base_price=70_000, weight=4_000_000),
             Symbol("500001", "신한 WTI원유 선물 ETN", "", "KOSPI", Kind.ETN))
    when = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    directory.replace_markets({"KOSPI": fresh}, {"KOSPI": Source("master", when)})
    assert [s for s in directory.symbols() if s.market == "KOSDAQ"] == kosdaq_before
    assert directory.by_code("000660") is None  # KOSPI is now what the new file says
    assert directory.by_code("005930").halted  # type: ignore[union-attr]
    assert directory.lookup("Q500001").symbol == fresh[1] and directory.lookup("WTI원유").symbol == fresh[1]
    assert directory.sources()["KOSPI"] == Source("master", when) and directory.sources()["KOSDAQ"].origin == "bundled"
    assert other.by_code("000660") is not None  # another directory on the same bundled rows is untouched
    directory.upsert([Symbol("0999Z0", "신규상장바이오", "", "KOSDAQ")])
    assert resolved(directory, "신규상장") == "0999Z0" and len(directory) == len(kosdaq_before) + 3


def test_broad_queries_stop_early_with_the_same_best_candidates(directory: SymbolDirectory) -> None:
    """A query with hundreds of matches takes its candidates from the first hits in ranking order: the
    same ones as grading every match."""
    index = directory.index()
    rng = random.Random(3)
    queries = ["ㅇㅇ", "ㅅ", "s", "액티브", "kodex", "tiger", "삼", "ㄱ", "1", "삼ㅅ", "코", "ㅇㅅ"]
    for s in rng.sample(directory.symbols(), 300):
        key = normalise(s.name_ko)
        queries += [key[:1], key[-2:], initials(key)[:2]]
    broad = 0
    for query in queries:
        key = normalise(query)
        if not key or len(index.exact(key)) == 1:
            continue
        text, pattern, _ = index._target(key)
        if text.count(pattern) <= 64:
            continue
        broad += 1
        found = index.lookup(key)
        assert found is not None and found.candidates == index.best(index.search(key)), query
    assert broad > 100


def test_codes_are_looked_up_without_building_the_name_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start-up (the simulator's universe, the alert book) only counts symbols and looks codes up: the
    name search's structures (every name normalised) are built on the first search by name, once."""
    from chatbot.markets import search
    from chatbot.markets.bundled import bundled_symbols

    calls = 0
    normalise_all = search.normalise

    def counted(text: str) -> str:
        nonlocal calls
        calls += 1
        return normalise_all(text)

    monkeypatch.setattr(search, "normalise", counted)
    index = search.NameIndex(bundled_symbols("KRX"))  # not the tests' shared one (conftest)
    assert len(index) == len(index.symbols) == 3_875
    assert index.by_code["005930"].name_en == "Samsung Electronics"
    assert calls == 0
    found = index.lookup(normalise_all("삼성전자"))
    assert found is not None and found.symbol is not None and found.symbol.code == "005930"
    assert calls >= 3_875  # built now
    built = calls
    assert index.exact(normalise_all("카카오")) and index.search(normalise_all("ㅅㅅ"))
    assert calls - built < 100  # the queries and their candidates only, not every name again
