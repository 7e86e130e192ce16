"""The trigger engine on its own (a stand-in feed): one-cancels-other, trailing levels, the session
gate, a feed gap's extremes, arming while trades arrive."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from chatbot.alerts import triggers as triggers_module
from chatbot.alerts.triggers import (
    STOP,
    TAKE,
    ArmedTrigger,
    Crossed,
    TriggerEngine,
    regular_session,
    trailing_level,
)
from chatbot.kis.models import KST
from chatbot.kis.realtime import Disconnected, Reconnected
from tests.test_alert_storms import StandInFeed, tick

CODE = "005930"


async def engine_with(*armed: ArmedTrigger, in_session: Callable[[str], bool] = lambda _t: True
                      ) -> tuple[TriggerEngine, StandInFeed, list[Crossed]]:
    feed = StandInFeed()
    fired: list[Crossed] = []

    async def on_crossed(batch: list[Crossed]) -> None:
        fired.extend(batch)

    engine = TriggerEngine(feed, on_crossed, in_session=in_session)  # type: ignore[arg-type]
    await engine.start(list(armed))
    return engine, feed, fired


async def idle(engine: TriggerEngine) -> None:
    await asyncio.sleep(0)
    await asyncio.wait_for(engine.wait_idle(), 10)


async def test_a_bracket_crossed_on_both_sides_by_one_tick_is_handed_over_once() -> None:
    engine, feed, fired = await engine_with(ArmedTrigger(1, CODE, 69_000, 71_000))
    feed.emit(Disconnected("drop"))
    feed.emit(Reconnected(1))
    now = dt.datetime.now(KST).strftime("%H%M%S")
    feed.emit(tick(CODE, 70_000, time=now, high=71_500, high_time=now, low=68_500, low_time=now))
    await idle(engine)
    assert {c.order_id for c in fired} == {1} and len(engine) == 0
    feed.emit(tick(CODE, 68_000))
    feed.emit(tick(CODE, 72_000))
    await idle(engine)
    assert len({(c.order_id, c.leg) for c in fired}) <= 2 and {c.order_id for c in fired} == {1}
    await engine.stop()


async def test_one_leg_crossed_takes_the_other_out_of_the_book() -> None:
    engine, feed, fired = await engine_with(ArmedTrigger(7, CODE, 69_000, 71_000))
    feed.emit(tick(CODE, 71_000))
    feed.emit(tick(CODE, 68_000))
    await idle(engine)
    assert [(c.order_id, c.leg) for c in fired] == [(7, TAKE)]
    await engine.stop()


async def test_trailing_level_only_rises() -> None:
    engine, feed, fired = await engine_with(ArmedTrigger(3, CODE, trailing_level(70_000, Decimal(5)), None,
                                                         Decimal(5), 70_000))
    levels = []
    for price in (70_500, 72_000, 71_000, 73_000, 72_100, 72_000):
        feed.emit(tick(CODE, price))
        state = engine.trail_state(3)
        assert state is not None
        levels.append(state[1])
    assert levels == sorted(levels) and levels[-1] == trailing_level(73_000, Decimal(5))
    assert not fired
    feed.emit(tick(CODE, levels[-1]))
    await idle(engine)
    assert [(c.order_id, c.leg, c.price) for c in fired] == [(3, STOP, levels[-1])]
    await engine.stop()


async def test_outside_the_regular_session_nothing_fires_and_the_open_fires_at_its_price() -> None:
    engine, feed, fired = await engine_with(ArmedTrigger(1, CODE, 69_000, None), in_session=regular_session)
    feed.emit(tick(CODE, 65_000, time="085959"))  # the pre-open: no
    feed.emit(tick(CODE, 60_000, time="153000"))  # the closing auction's trade: no
    await idle(engine)
    assert not fired
    feed.emit(tick(CODE, 66_000, time="090000"))  # a gap at the open: the first trade, at its price
    await idle(engine)
    assert [(c.order_id, c.price) for c in fired] == [(1, 66_000)]
    await engine.stop()


async def test_a_trade_while_arming_is_judged() -> None:
    engine, feed, fired = await engine_with()
    async with engine.arming(CODE) as seen:
        feed.emit(tick(CODE, 68_000))  # crosses before the order is in the book
        engine.arm(ArmedTrigger(5, CODE, 69_000, None), seen)
    await idle(engine)
    assert [(c.order_id, c.leg) for c in fired] == [(5, STOP)]
    await engine.stop()


async def test_disarm_releases_the_symbol() -> None:
    engine, feed, _ = await engine_with(ArmedTrigger(1, CODE, 69_000, None))
    assert feed.subscriptions
    await engine.disarm(1)
    assert not feed.subscriptions
    feed.emit(tick(CODE, 60_000))
    await idle(engine)
    await engine.stop()


def test_what_a_person_types_is_read() -> None:
    from chatbot.service.conditional import _parse
    from chatbot.service.errors import UserError

    assert _parse("stop", ["삼성전자", "10", "65,000원"]).stop == 65_000
    request = _parse("stop", ["005930", "10주", "65000", "64,900원"])
    assert (request.symbol_text, request.quantity, request.stop, request.limit) == ("005930", 10, 65_000, 64_900)
    assert _parse("stop", ["삼성전자", "10", "65,000원", "시장가"]).limit is None
    assert _parse("tp", ["삼성전자", "우", "3", "80000"]).symbol_text == "삼성전자 우"
    assert _parse("trail", ["삼성전자", "10", "2.5%"]).trail == Decimal("2.5")
    bracket = _parse("bracket", ["005930", "10", "65,000", "80,000원"])
    assert (bracket.stop, bracket.take) == (65_000, 80_000)
    for kind, args in (("stop", ["삼성전자", "10"]), ("bracket", ["005930", "10", "80000", "65000"]),
                       ("trail", ["005930", "10", "50%"]), ("trail", ["005930", "10", "5"]),
                       ("stop", ["삼성전자", "-1", "65000"]), ("tp", ["x" * 100, "1", "2"])):
        try:
            _parse(kind, args)
        except UserError:
            continue
        raise AssertionError(f"{kind} {args} should be refused")


async def test_an_order_adopted_from_another_replica_fires_on_what_crossed_it_since_it_was_stored() -> None:
    """Armed elsewhere at ``stored``: a trade this replica saw since then fires it now; the day's low made
    since then (the first trade's) fires another; a high made before it was stored fires nothing; once each."""
    engine, feed, fired = await engine_with()
    now = dt.datetime.now(KST)
    stored = now.timestamp() - 60
    before = (now - dt.timedelta(minutes=5)).strftime("%H%M%S")
    seen = {CODE: [70_000, 68_900, 70_000]}  # crossed and came back before this replica knew of it
    assert await engine.adopt([ArmedTrigger(1, CODE, 69_000, None), ArmedTrigger(3, CODE, None, 72_000)],
                              stored, seen) == [1, 3]
    await idle(engine)
    assert [(c.order_id, c.leg, c.price) for c in fired] == [(1, STOP, 68_900)]
    assert await engine.adopt([ArmedTrigger(1, CODE, 69_000, None), ArmedTrigger(2, CODE, 69_500, None),
                               ArmedTrigger(4, CODE, 69_300, None)], stored) == [2, 4]  # 1: known, not again
    at = now.strftime("%H%M%S")
    feed.emit(tick(CODE, 70_000, time=at, low=69_400, low_time=at, high=72_500, high_time=before))
    await idle(engine)
    assert [(c.order_id, c.leg) for c in fired] == [(1, STOP), (2, STOP)]  # the high was made before: not 3
    assert engine.armed(3) and engine.armed(4) and engine.armed(2) is None and engine.knows(2)  # fired: kept known
    feed.emit(tick(CODE, 69_450))
    await idle(engine)
    assert [c.order_id for c in fired] == [1, 2]  # nothing twice
    await engine.stop()


async def test_a_stop_armed_after_the_server_was_last_heard_is_not_sold_on_a_low_made_before_it() -> None:
    """A silent drop, noticed 40 s after the server was last heard: the gap starts back there. A stop armed in
    between did not exist when that stretch's low was made; selling on it sold a holding the market never took
    below the stop after the stop was set."""
    engine, feed, fired = await engine_with()
    heard = time.time() - 40
    feed.emit(tick(CODE, 70_000))  # the symbol's feed is up (the arming subscribed it)
    async with engine.arming(CODE) as seen:
        engine.arm(ArmedTrigger(7, CODE, 69_000, None), seen)
    feed.emit(Disconnected("ConnectionClosedError", last_heard=heard))
    feed.emit(Reconnected(1))
    before_it = dt.datetime.fromtimestamp(heard + 10, KST).strftime("%H%M%S")
    feed.emit(tick(CODE, 70_000, time=dt.datetime.now(KST).strftime("%H%M%S"), low=68_500, low_time=before_it))
    await idle(engine)
    assert fired == [] and len(engine) == 1
    feed.emit(tick(CODE, 68_900))  # a trade below it after it was set sells
    await idle(engine)
    assert [(c.order_id, c.leg) for c in fired] == [(7, STOP)]
    await engine.stop()


async def test_a_low_seen_live_before_a_stop_was_armed_does_not_sell_it_after_a_drop(monkeypatch: Any) -> None:
    """As the alert engine (soak: "fired without crossing"): the day's low made and seen live, the price back
    up, a stop armed just above that low and the feed dropped, in one second: the first trade after the gap
    carried that low, timed in the gap's first second, and it sold on a low made before the stop existed."""
    heard = time.time()
    second = dt.datetime.fromtimestamp(heard, KST).strftime("%H%M%S")
    monkeypatch.setattr(triggers_module, "_market_second", lambda: second)  # armed in that second
    engine, feed, fired = await engine_with(ArmedTrigger(1, CODE, 60_000, None))  # the symbol on the feed
    feed.emit(tick(CODE, 68_500, time=second, low=68_500, low_time=second))  # the day's low, seen live
    feed.emit(tick(CODE, 70_000, time=second, low=68_500, low_time=second))
    async with engine.arming(CODE) as seen:
        engine.arm(ArmedTrigger(7, CODE, 69_000, None), seen)
    feed.emit(Disconnected("ConnectionClosedError", last_heard=heard))
    feed.emit(Reconnected(1))
    feed.emit(tick(CODE, 70_000, time=second, low=68_500, low_time=second))
    await idle(engine)
    assert fired == [] and len(engine) == 2
    feed.emit(tick(CODE, 69_000, time=second, low=68_500, low_time=second))  # a trade at it after it was set
    await idle(engine)
    assert [(c.order_id, c.leg) for c in fired] == [(7, STOP)]
    await engine.stop()
