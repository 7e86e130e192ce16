"""Conditional orders end to end: fake Bot API ↔ bot ↔ simulator (REST + WebSocket).

Prices move only when a test says so (the simulator's tick interval is 0), and every wait is on a
condition, with generous timeouts."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlmodel import select

from chatbot.alerts.triggers import STOP, TAKE, Crossed
from chatbot.config import KisSettings
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import protocol as p
from chatbot.kis.models import OrderSide
from chatbot.service.conditional import ConditionalOrders
from chatbot.storage.tables import ConditionalOrderRow, OrderJournalRow
from tests.conftest import SQLITE_ONLY
from tests.harness import BotHarness

ALICE = BotApiEmulator.user(7001, "ko")
BOB = BotApiEmulator.user(7002, "en")
CODE = "005930"
TRIGGERED, PLACED, FILLED = "⚡ 조건주문", "매도 주문 접수", "✅ 체결"


@pytest.fixture
async def bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url)
    await harness.start()
    yield harness
    assert not harness.api.unanswered_callbacks(), "every callback query must be answered"
    await harness.stop()


# The upkeep pass that settles a firing told after a restart, every 0.2 s instead of 2 s (tests waiting for it).
QUICK_SYNC = KisSettings(conditional_sync_seconds=0.2)


@pytest.fixture
async def quick_sync_bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url, kis=QUICK_SYNC)
    await harness.start()
    yield harness
    assert not harness.api.unanswered_callbacks(), "every callback query must be answered"
    await harness.stop()


def price(bot: BotHarness) -> int:
    state = bot.sim.market.get(CODE)
    assert state is not None
    return state.price


def ticks(n: int, start: int) -> int:
    return start + n * p.tick_size(start)


def service(bot: BotHarness) -> ConditionalOrders:
    assert bot.runtime is not None and bot.runtime.services.conditional is not None
    return bot.runtime.services.conditional


async def rows(bot: BotHarness, table: type) -> list[Any]:
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        return list((await session.exec(select(table))).all())


async def wait_for(predicate: Callable[[], Any], timeout: float = 60.0) -> None:
    async def poll() -> None:
        while not await _value(predicate()):
            await asyncio.sleep(0.05)
    await asyncio.wait_for(poll(), timeout)


async def _value(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


async def buy(bot: BotHarness, user: dict[str, Any], quantity: int) -> None:
    (card,) = await bot.say(user, f"/buy {CODE} {quantity}")
    await bot.press_button(user, card, 0)
    (balance,) = await bot.say(user, "/balance")
    assert f"{quantity}주" in balance["text"] or f"{quantity:,}" in balance["text"], balance["text"]


async def arm(bot: BotHarness, user: dict[str, Any], text: str) -> dict[str, Any]:
    (card,) = await bot.say(user, text)
    assert BotApiEmulator.buttons(card), card["text"]
    await bot.press_button(user, card, 0)
    armed = bot.current(card)
    assert "#" in armed["text"] and "reply_markup" not in armed, armed["text"]
    return armed


async def status_of(bot: BotHarness, order_id: int) -> str:
    return next(r.status for r in await rows(bot, ConditionalOrderRow) if r.id == order_id)


# -- arming ----------------------------------------------------------------------------------------------
async def test_card_shows_what_will_be_sent_and_arming_is_checked(bot: BotHarness) -> None:
    now = price(bot)
    stop = ticks(-1, now)
    (msg,) = await bot.say(ALICE, f"/stop 삼성전자 10 {stop:,}원")
    assert "매도 가능 0주" in msg["text"] or "0주" in msg["text"]  # nothing held: refused
    await buy(bot, ALICE, 10)
    (card,) = await bot.say(ALICE, f"/stop 삼성전자 10 {stop:,}원")
    text = card["text"]
    assert "PAPER" in text and "시장가 매도" in text and f"₩{stop:,}" in text and "정규장" in text, text
    assert BotApiEmulator.buttons(card)[0][1].startswith("ky:")
    (crossed,) = await bot.say(ALICE, f"/stop 삼성전자 10 {ticks(1, now)}")
    assert "/sell" in crossed["text"]  # that would fire now
    (off,) = await bot.say(ALICE, f"/tp 005930 5 {ticks(3, now) + 1}")
    assert "호가단위" in off["text"] and f"₩{ticks(3, now) + 1:,}" in off["text"]
    (far,) = await bot.say(ALICE, f"/tp 005930 5 {p.round_down_to_tick(now * 3)}")
    assert "너무 멉니다" in far["text"] and "₩" in far["text"] and "원" not in far["text"]
    await bot.press_button(ALICE, card, 0)  # the first card: armed, 10 of 10
    (more,) = await bot.say(ALICE, f"/tp 005930 1 {ticks(5, now)}")
    assert "이미 다른 조건주문" in more["text"]  # together they may not sell more than held
    assert [r.status for r in await rows(bot, ConditionalOrderRow)].count("armed") == 1


# -- firing -----------------------------------------------------------------------------------------------
async def test_stop_one_tick_below_fires_once_sells_and_tells(bot: BotHarness) -> None:
    await buy(bot, ALICE, 10)
    accepted = bot.sim.orders_accepted
    stop = ticks(-1, price(bot))
    await arm(bot, ALICE, f"/stop 삼성전자 10 {stop:,}원")
    bot.sim.set_price(CODE, ticks(1, price(bot)))  # away from it: nothing
    await asyncio.sleep(0.3)
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 0
    bot.sim.set_price(CODE, stop)  # at the trigger
    triggered = await bot.wait_for_message(ALICE["id"], TRIGGERED, timeout=60)
    assert f"발동가 ₩{stop:,}" in triggered["text"]
    placed = await bot.wait_for_message(ALICE["id"], PLACED, timeout=60)
    await bot.wait_for_message(ALICE["id"], FILLED, timeout=60)
    await wait_for(lambda: _is(bot, 1, "placed"))
    (row,) = await rows(bot, ConditionalOrderRow)
    assert row.order_no and row.order_no in placed["text"]
    assert row.status == "placed" and row.sold_quantity == 10
    for _ in range(3):  # lower still, and again: nothing more
        bot.sim.set_price(CODE, ticks(-2, price(bot)))
        await bot.sim.tick()
    await asyncio.sleep(0.5)
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 1
    assert bot.sim.orders_accepted == accepted + 1
    (balance,) = await bot.say(ALICE, "/balance")
    assert "삼성전자" not in balance["text"], balance["text"]
    (listing,) = await bot.say(ALICE, "/stops")
    assert "없습니다" in listing["text"]


async def test_sells_only_what_is_held_and_says_so(bot: BotHarness) -> None:
    await buy(bot, ALICE, 10)
    stop = ticks(-2, price(bot))
    await arm(bot, ALICE, f"/stop {CODE} 10 {stop}")
    (card,) = await bot.say(ALICE, f"/sell {CODE} 4")  # sold by hand meanwhile
    await bot.press_button(ALICE, card, 0)
    bot.sim.set_price(CODE, ticks(-1, stop))
    placed = await bot.wait_for_message(ALICE["id"], PLACED, timeout=60)
    assert "6주" in placed["text"] and "10주 중 6주만" in placed["text"], placed["text"]
    (row,) = await rows(bot, ConditionalOrderRow)
    assert row.status == "placed" and row.sold_quantity == 6
    (balance,) = await bot.say(ALICE, "/balance")
    assert "삼성전자" not in balance["text"]  # never short


async def test_bracket_fires_one_leg_once_when_both_cross_at_once(bot: BotHarness) -> None:
    await buy(bot, ALICE, 10)
    now = price(bot)
    stop, take = ticks(-1, now), ticks(1, now)
    await arm(bot, ALICE, f"/bracket 삼성전자 10 {stop} {take}")
    (row,) = await rows(bot, ConditionalOrderRow)
    accepted = bot.sim.orders_accepted
    # Both legs handed over together (a gap's high and low in one trade), and again by a second
    # tick racing the first: one order fires, once.
    crossed = [Crossed(row.id, TAKE, CODE, take, "100000", 0.0), Crossed(row.id, STOP, CODE, stop, "100000", 0.0)]
    await asyncio.gather(service(bot).fire(crossed), service(bot).fire(list(reversed(crossed))))
    await bot.wait_for_message(ALICE["id"], PLACED, timeout=60)
    await wait_for(lambda: _is(bot, row.id, "placed"))
    (fired,) = await rows(bot, ConditionalOrderRow)
    assert fired.fired_leg == STOP  # same second: the stop
    assert bot.sim.orders_accepted == accepted + 1
    bot.sim.set_price(CODE, ticks(2, take))  # the other leg is gone
    await bot.sim.tick()
    await asyncio.sleep(0.5)
    assert bot.sim.orders_accepted == accepted + 1
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 1


async def test_bracket_through_the_feed_fires_one_leg_and_cancels_the_other(bot: BotHarness) -> None:
    await buy(bot, ALICE, 10)
    now = price(bot)
    stop, take = ticks(-2, now), ticks(2, now)
    await arm(bot, ALICE, f"/bracket 005930 10 {stop:,}원 {take:,}원")
    accepted = bot.sim.orders_accepted
    bot.sim.set_price(CODE, take)
    await bot.wait_for_message(ALICE["id"], PLACED, timeout=60)
    (row,) = await rows(bot, ConditionalOrderRow)
    assert row.fired_leg == TAKE
    bot.sim.set_price(CODE, ticks(-1, stop))
    await bot.sim.tick()
    await asyncio.sleep(0.5)
    assert bot.sim.orders_accepted == accepted + 1 and bot.count_messages(ALICE["id"], TRIGGERED) == 1


async def test_trailing_level_only_rises_and_fires_on_the_fall(bot: BotHarness) -> None:
    await buy(bot, ALICE, 10)
    start = price(bot)
    await arm(bot, ALICE, "/trail 삼성전자 10 2%")
    (row,) = await rows(bot, ConditionalOrderRow)
    engine = service(bot).engine
    assert engine is not None
    levels = []
    for step in (3, 6, 4, 2, 8, 5):  # up, up, down, down, up, down: never below the trigger
        bot.sim.set_price(CODE, ticks(step, start))
        await wait_for(lambda: engine.last_price.get(CODE) == price(bot))
        state = engine.trail_state(row.id)
        assert state is not None
        levels.append(state[1])
    assert levels == sorted(levels) and levels[-1] > levels[0]
    (listing,) = await bot.say(ALICE, "/stops")
    assert f"{levels[-1]:,}" in listing["text"] and "거리" in listing["text"]
    await wait_for(lambda: _stored_level(bot, row.id, levels[-1]))  # persisted for a restart
    bot.sim.set_price(CODE, levels[-1])
    await bot.wait_for_message(ALICE["id"], PLACED, timeout=60)


# -- cancelling --------------------------------------------------------------------------------------------
async def test_only_the_owner_cancels_and_only_once(bot: BotHarness) -> None:
    await buy(bot, ALICE, 10)
    await arm(bot, ALICE, f"/stop {CODE} 5 {ticks(-3, price(bot))}")
    (listing,) = await bot.say(ALICE, "/stops")
    (button,) = BotApiEmulator.buttons(listing)
    assert button[1].startswith("kc:")
    await bot.press(BOB, listing, button[1])  # a forged press by someone else
    (row,) = await rows(bot, ConditionalOrderRow)
    assert row.status == "armed"
    answer = await bot.press(ALICE, listing, button[1])
    assert "취소" in answer.get("text", "")
    assert (await rows(bot, ConditionalOrderRow))[0].status == "cancelled"
    await bot.press(ALICE, listing, button[1])  # single use
    assert bot.count_messages(ALICE["id"], "이미 처리") == 1
    bot.sim.set_price(CODE, ticks(-5, price(bot)))
    await asyncio.sleep(0.5)
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 0


async def test_card_is_single_use_and_owner_only(bot: BotHarness) -> None:
    await buy(bot, ALICE, 10)
    (card,) = await bot.say(ALICE, f"/stop {CODE} 5 {ticks(-3, price(bot))}")
    data = BotApiEmulator.buttons(card)[0][1]
    answer = await bot.press(BOB, card, data)
    assert answer["show_alert"]
    await bot.press(ALICE, card, data)
    again = await bot.press(ALICE, card, data)
    assert again["show_alert"]
    assert [r.status for r in await rows(bot, ConditionalOrderRow)] == ["armed"]
    forged = await bot.press(ALICE, card, "oy:" + data.split(":", 1)[1])  # the order path refuses it
    assert forged.get("show_alert")


# -- restarts -------------------------------------------------------------------------------------------------
async def test_restart_between_firing_and_the_order_reply_neither_loses_nor_doubles(quick_sync_bot: BotHarness) -> None:
    bot = quick_sync_bot
    await buy(bot, ALICE, 10)
    stop = ticks(-1, price(bot))
    await arm(bot, ALICE, f"/stop {CODE} 10 {stop}")
    assert bot.runtime is not None
    account = await bot.runtime.accounts.for_user(ALICE["id"])
    original = account.client.place_order
    sent = asyncio.Event()

    async def reply_lost(*args: Any, **kwargs: Any) -> Any:
        await original(*args, **kwargs)  # KIS takes the order…
        sent.set()
        await asyncio.Event().wait()  # …and its reply never comes back: the process dies meanwhile

    account.client.place_order = reply_lost  # type: ignore[method-assign]
    bot.sim.set_price(CODE, stop)
    await asyncio.wait_for(sent.wait(), 60)
    for task in list(service(bot)._tasks):  # the crash: the firing never hears back
        task.cancel()
    (row,) = await rows(bot, ConditionalOrderRow)
    assert row.status == "firing"
    await bot.restart()
    await wait_for(lambda: _is(bot, row.id, "placed"), timeout=90)
    (journal,) = [j for j in await rows(bot, OrderJournalRow) if j.idempotency_key == row.fire_key]
    assert journal.kis_order_no and journal.told_at is not None
    await bot.wait_for_message(ALICE["id"], journal.kis_order_no.lstrip("0") or journal.kis_order_no, timeout=60)
    assert await sells(bot) == 1  # KIS's list of the day's orders: one sell, never two
    (balance,) = await bot.say(ALICE, "/balance")
    assert "삼성전자" not in balance["text"]
    bot.sim.set_price(CODE, ticks(-2, stop))
    await bot.sim.tick()
    await asyncio.sleep(0.5)
    assert await sells(bot) == 1


async def sells(bot: BotHarness) -> int:
    assert bot.runtime is not None
    account = await bot.runtime.accounts.for_user(ALICE["id"])
    today = dt.datetime.now(p.KST).date()
    return len(await account.client.executions(today, today, code=CODE, side=OrderSide.SELL))


async def test_armed_orders_survive_a_restart(bot: BotHarness) -> None:
    await buy(bot, ALICE, 10)
    stop = ticks(-2, price(bot))
    await arm(bot, ALICE, f"/stop {CODE} 10 {stop}")
    await bot.restart()
    bot.sim.set_price(CODE, ticks(-1, stop))
    await bot.wait_for_message(ALICE["id"], PLACED, timeout=60)
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 1


async def _is(bot: BotHarness, order_id: int, status: str) -> bool:
    return await status_of(bot, order_id) == status


async def _stored_level(bot: BotHarness, order_id: int, level: int) -> bool:
    row = next(r for r in await rows(bot, ConditionalOrderRow) if r.id == order_id)
    return row.stop_price == level


async def test_a_firing_with_nothing_held_is_told_and_stays_failed(bot: BotHarness) -> None:
    await buy(bot, ALICE, 3)
    stop = ticks(-2, price(bot))
    await arm(bot, ALICE, f"/stop {CODE} 3 {stop}")
    (card,) = await bot.say(ALICE, f"/sell {CODE} 3")  # everything sold by hand meanwhile
    await bot.press_button(ALICE, card, 0)
    bot.sim.set_price(CODE, ticks(-1, stop))
    failed = await bot.wait_for_message(ALICE["id"], "매도 실패", timeout=60)
    assert "다시 걸리지 않습니다" in failed["text"]
    (row,) = await rows(bot, ConditionalOrderRow)
    assert row.status == "failed"
    await buy(bot, ALICE, 3)  # holding again: a failed conditional order does not come back
    bot.sim.set_price(CODE, ticks(-3, stop))
    await bot.sim.tick()
    await asyncio.sleep(0.5)
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 1
    assert (await rows(bot, ConditionalOrderRow))[0].status == "failed"


async def test_restart_before_the_sell_left_sends_it_once_after(bot: BotHarness) -> None:
    """Killed after the order went to "firing" but before the sell's journal said it was leaving: it
    provably never left, so the restart sends it (recent, market open), once."""
    await buy(bot, ALICE, 10)
    stop = ticks(-1, price(bot))
    await arm(bot, ALICE, f"/stop {CODE} 10 {stop}")
    svc = service(bot)
    stuck = asyncio.Event()

    async def never(*_args: Any, **_kwargs: Any) -> None:
        stuck.set()
        await asyncio.Event().wait()

    svc.journal.mark_sending = never  # type: ignore[method-assign]
    bot.sim.set_price(CODE, stop)
    await asyncio.wait_for(stuck.wait(), 60)
    for task in list(svc._tasks):  # the crash
        task.cancel()
    await bot.restart()
    await wait_for(lambda: _is(bot, 1, "placed"), timeout=90)
    await bot.wait_for_message(ALICE["id"], PLACED, timeout=60)
    assert await sells(bot) == 1
    (balance,) = await bot.say(ALICE, "/balance")
    assert "삼성전자" not in balance["text"]


async def test_bracket_both_legs_crossed_during_a_feed_gap_fires_one_once(bot: BotHarness) -> None:
    """The feed drops; the price runs past the take-profit and then below the stop and comes back:
    the first trade after the reconnect carries both extremes. One leg fires, once; the other is gone."""
    await buy(bot, ALICE, 10)
    now = price(bot)
    state = bot.sim.market.get(CODE)
    assert state is not None
    take = max(ticks(2, now), ticks(1, state.high))  # beyond the day's extremes so far
    stop = min(ticks(-2, now), ticks(-1, state.low))
    await arm(bot, ALICE, f"/bracket {CODE} 10 {stop} {take}")
    assert bot.runtime is not None and bot.runtime.engine is not None
    feed = bot.runtime.engine.feed
    reconnects = feed.reconnects
    bot.sim.realtime["real"].drop_all()
    await asyncio.sleep(0.05)
    bot.sim.set_price(CODE, ticks(1, take))  # both crossed while the feed is down…
    bot.sim.set_price(CODE, ticks(-1, stop))
    bot.sim.set_price(CODE, now)  # …and back
    await wait_for(lambda: feed.connected.is_set() and feed.reconnects > reconnects)
    await asyncio.sleep(0.2)
    await bot.sim.tick()  # the first trade after the gap: its day high and low are both past a leg
    await bot.wait_for_message(ALICE["id"], PLACED, timeout=60)
    await wait_for(lambda: _is(bot, 1, "placed"))
    for _ in range(3):
        await bot.sim.tick()
    bot.sim.set_price(CODE, ticks(2, take))
    await asyncio.sleep(0.5)
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 1
    assert await sells(bot) == 1


async def test_expiry_disarms_and_tells(bot: BotHarness) -> None:
    await buy(bot, ALICE, 2)
    stop = ticks(-2, price(bot))
    await arm(bot, ALICE, f"/stop {CODE} 2 {stop}")
    assert bot.runtime is not None
    async with bot.runtime.db.write() as session:
        row = (await session.exec(select(ConditionalOrderRow))).one()
        row.expires_at = row.created_at
        session.add(row)
    assert await service(bot).expire_due() == 1
    await bot.wait_for_message(ALICE["id"], "만료", timeout=60)
    bot.sim.set_price(CODE, ticks(-1, stop))
    await bot.sim.tick()
    await asyncio.sleep(0.5)
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 0
    assert (await rows(bot, ConditionalOrderRow))[0].status == "expired"


# -- a stop's limit on the wrong side of its trigger ---------------------------------------------------------
async def _no_conditional_cards(bot: BotHarness) -> bool:
    from chatbot.storage.tables import PendingOrderRow

    return await rows(bot, ConditionalOrderRow) == [] and not [
        c for c in await rows(bot, PendingOrderRow) if c.action in ("stop", "tp", "trail", "bracket")]


@SQLITE_ONLY
async def test_a_stop_whose_limit_is_above_its_trigger_is_refused_with_why(bot: BotHarness) -> None:
    """A stop-loss fires when the price falls to its trigger; a sell limit above the trigger would then
    usually not fill and the stop-loss would silently do nothing. Refused before any card, saying why, in
    both languages; a limit at or below the trigger, and a take-profit's limit, are taken as before."""
    await buy(bot, ALICE, 10)
    await buy(bot, BOB, 10)
    now = price(bot)
    stop, above = ticks(-3, now), ticks(-2, now)
    (ko,) = await bot.say(ALICE, f"/stop 삼성전자 10 {stop:,}원 {above:,}원")
    assert "reply_markup" not in ko and f"₩{above:,}" in ko["text"] and f"₩{stop:,}" in ko["text"], ko["text"]
    assert "지정가" in ko["text"] and "체결되지 않" in ko["text"], ko["text"]
    (en,) = await bot.say(BOB, f"/stop {CODE} 10 {stop} {above}")
    assert "reply_markup" not in en and "above its trigger" in en["text"] and "not fill" in en["text"], en["text"]
    assert await _no_conditional_cards(bot)
    for limit in (stop, ticks(-4, now)):  # at or below the trigger: a card as before
        (card,) = await bot.say(ALICE, f"/stop 삼성전자 10 {stop} {limit}")
        assert BotApiEmulator.buttons(card), card["text"]
    (take,) = await bot.say(ALICE, f"/tp 삼성전자 10 {ticks(3, now)} {ticks(4, now)}")
    assert BotApiEmulator.buttons(take), take["text"]


@SQLITE_ONLY
async def test_a_us_stop_whose_limit_is_above_its_trigger_is_refused_with_why(us_open_bot: BotHarness) -> None:
    from decimal import Decimal

    bot = us_open_bot
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    (card,) = await bot.say(BOB, "/buy AAPL 1 190.50")
    await bot.press_button(BOB, card, 0)
    (en,) = await bot.say(BOB, "/stop AAPL 1 180 181")
    assert "reply_markup" not in en and "$181.00" in en["text"] and "$180.00" in en["text"], en["text"]
    assert "above its trigger" in en["text"], en["text"]
    assert await _no_conditional_cards(bot)
    (ok,) = await bot.say(BOB, "/stop AAPL 1 180 179.50")
    assert BotApiEmulator.buttons(ok), ok["text"]
