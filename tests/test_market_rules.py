"""KRX rules and the simulator's market model."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from chatbot.kis import protocol as p
from chatbot.markets.symbols import Kind
from chatbot.sim.market import Market


def test_tick_table() -> None:
    assert [p.tick_size(x) for x in (1_999, 2_000, 4_995, 5_000, 19_990, 20_000, 49_950, 50_000, 199_900,
                                      200_000, 499_500, 500_000, 2_000_000)] == [
        1, 5, 5, 10, 10, 50, 50, 100, 100, 500, 500, 1000, 1000]
    assert p.is_on_tick(70_100) and not p.is_on_tick(70_150) and not p.is_on_tick(0)


@given(st.integers(min_value=100, max_value=3_000_000))
def test_limits_are_on_tick_and_within_30_percent(base: int) -> None:
    lower, upper = p.price_limits(base)
    assert p.is_on_tick(lower) and p.is_on_tick(upper)
    assert lower >= base * 0.7 - 1e-9 and upper <= base * 1.3 + 1e-9
    assert lower <= base <= upper or base < p.tick_size(base)


@given(st.integers(min_value=1, max_value=3_000_000))
def test_rounding_lands_on_tick(price: int) -> None:
    assert p.is_on_tick(p.round_down_to_tick(price)) or p.round_down_to_tick(price) == 0
    assert p.is_on_tick(p.round_up_to_tick(price)) and p.round_up_to_tick(price) >= price


def test_tr_ids_per_flavour() -> None:
    assert p.tr_for(p.TR.BUY, "virtual") == "VTTC0012U" and p.tr_for(p.TR.PRICE, "virtual") == "FHKST01010100"
    assert p.tr_for(p.TR.DAILY_CCLD_OLD_PERIOD, "virtual") == "VTSC9215R"
    assert p.accepted_trs(p.TR.SELL, "virtual") == {"VTTC0011U", "VTTC0801U"}


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=0, max_value=10**9))
def test_price_process_keeps_to_ticks_and_limits(seed: int) -> None:
    m = Market(seed, dt.date(2026, 11, 24))
    for code in list(m.symbols)[:5]:
        s = m.symbols[code]
        lower, upper = s.limits
        for _ in range(200):
            t = m.step(code, "100000")
            assert p.is_on_tick(t.price) and lower <= t.price <= upper
        assert s.low <= s.price <= s.high


def test_market_is_deterministic_under_a_seed() -> None:
    a, b = Market(42, dt.date(2026, 1, 5)), Market(42, dt.date(2026, 1, 5))
    b.step("000660", "090000")  # stepping another symbol does not disturb this one
    assert [a.step("005930", "090000").price for _ in range(50)] == [b.step("005930", "090000").price for _ in range(50)]
    assert a.bars("005930", "D", dt.date(2025, 1, 1), dt.date(2025, 6, 1)) == \
        b.bars("005930", "D", dt.date(2025, 1, 1), dt.date(2025, 6, 1))
    assert Market(43, dt.date(2026, 1, 5)).get("005930").price != a.get("005930").price  # type: ignore[union-attr]


def test_snapshot_round_trip_is_small_and_deterministic() -> None:
    a = Market(7, dt.date(2026, 1, 5))
    in_play = list(a.symbols)[:200] + ["005930"]
    for code in in_play:
        a.get(code)
    for _ in range(10):
        a.step_all("090000")
    snapshot = a.snapshot()
    assert set(snapshot["symbols"]) == set(in_play)  # only symbols in play: the rest are as the seed makes them
    assert len(str(snapshot)) < 60_000
    b, c = Market(7, dt.date(2026, 1, 5)), Market(7, dt.date(2026, 1, 5))
    b.restore(snapshot)
    c.restore(snapshot)
    assert all(b.get(code).price == a.get(code).price for code in in_play)  # type: ignore[union-attr]
    assert [b.step("005930", "090001").price for _ in range(20)] == [c.step("005930", "090001").price for _ in range(20)]


def test_only_symbols_in_play_step_and_every_listing_quotes() -> None:
    m = Market(7, dt.date(2026, 1, 5))
    assert len(m.symbols) == 3_875 and "0126Z0" in m.symbols and "AAPL" not in m.symbols
    assert m.step_all("090000") == []  # nothing asked about yet: nothing to simulate
    seen = [s.instrument.code for s in list(m.symbols.values())[::97]]  # reading every listing puts none in play
    assert m.step_all("090000") == []
    for code in seen:
        m.get(code)
    assert sorted(t.code for t in m.step_all("090001")) == sorted(seen)
    preferred, common = m.get("005935"), m.get("005930")
    assert preferred is not None and common is not None and preferred.price < common.price
    assert all(3_000 <= m.get(s.code).base <= 100_000 for s in list(m.directory.symbols())[:400]  # type: ignore[union-attr]
               if s.kind is Kind.ETF)


def test_day_roll_makes_close_the_base() -> None:
    m = Market(1, dt.date(2026, 1, 5))
    for _ in range(30):
        m.step("005930", "100000")
    close = m.get("005930").price  # type: ignore[union-attr]
    m.roll_day(dt.date(2026, 1, 6))
    s = m.get("005930")
    assert s is not None and s.base == close and s.volume == 0
    assert m.daily_bars("005930")[-1].date == dt.date(2026, 1, 5)
