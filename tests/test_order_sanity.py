"""Orders and alerts a careful trader would not mean (QA, through the real PTB app, the simulator and SQLite):
a US limit far through the market or a US alert far from the price (a won amount typed as dollars), an
order on a halted stock, a revision the cash cannot cover. Each is refused before any card, with what the
trader needs to put it right, and nothing changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlmodel import col, func, select

from chatbot.broker import OrderSide
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import protocol as p
from chatbot.kis.errors import KisOrderRejected
from chatbot.service.errors import UserError
from chatbot.service.us_orders import check_limit, sane_limit_range
from chatbot.sim.server import KisSimulator
from chatbot.storage.tables import AlertRow, OrderJournalRow, PendingOrderRow
from tests.harness import BotHarness

ALICE = BotApiEmulator.user(1201, "ko")
BOB = BotApiEmulator.user(1202, "en")
CODE = "005930"


@pytest.fixture
def bot(us_open_bot: BotHarness) -> BotHarness:
    return us_open_bot


@pytest.fixture
async def krx_bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url)
    await harness.start()
    yield harness
    assert not harness.api.unanswered_callbacks(), "every callback query must be answered"
    await harness.stop()


async def count(bot: BotHarness, table: type[PendingOrderRow | AlertRow]) -> int:
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        return int((await session.exec(select(func.count()).select_from(table))).one())


async def last_order_no(bot: BotHarness) -> str:
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        row = (await session.exec(select(OrderJournalRow).order_by(col(OrderJournalRow.id).desc()))).first()
    assert row is not None and row.kis_order_no
    return row.kis_order_no


async def refused(bot: BotHarness, user: dict, text: str) -> str:
    """``text`` answered with no card (no buttons) and no card row stored: the answer's text."""
    cards = await count(bot, PendingOrderRow)
    (msg,) = await bot.say(user, text)
    assert "reply_markup" not in msg, msg["text"]
    assert await count(bot, PendingOrderRow) == cards
    return str(msg["text"])


async def carded(bot: BotHarness, user: dict, text: str) -> dict:
    (card,) = await bot.say(user, text)
    assert BotApiEmulator.buttons(card), card["text"]
    return card


# -- 1. US limits and alerts far from the price ---------------------------------------------------------------------
def test_the_sane_range_is_30_percent_through_the_market_and_half_or_double_resting() -> None:
    last = Decimal("190.25")
    assert sane_limit_range(OrderSide.BUY, last) == (Decimal("95.13"), Decimal("247.32"))
    assert sane_limit_range(OrderSide.SELL, last) == (Decimal("133.18"), Decimal("380.50"))
    check_limit(OrderSide.BUY, Decimal("247.32"), last, Decimal(1400))  # the edges are taken
    check_limit(OrderSide.SELL, Decimal("133.18"), last, Decimal(1400))
    with pytest.raises(UserError) as err:
        check_limit(OrderSide.BUY, Decimal("247.33"), last, Decimal(1400))
    assert err.value.key == "us_limit_far_buy"
    with pytest.raises(UserError) as err:
        check_limit(OrderSide.SELL, Decimal("133.17"), last, Decimal(1400))
    assert err.value.key == "us_limit_far_sell"
    with pytest.raises(UserError) as err:
        check_limit(OrderSide.SELL, Decimal("380.51"), last, Decimal(1400))
    assert err.value.key == "us_limit_far_resting"
    with pytest.raises(UserError) as err:  # ₩266,350 at 1,400 KRW/USD is $190.25
        check_limit(OrderSide.BUY, Decimal(266350), last, Decimal(1400))
    assert err.value.key == "us_limit_looks_like_won" and err.value.params["usd"] == "$190.25"
    check_limit(OrderSide.BUY, Decimal(5), Decimal(0), Decimal(1400))  # no last price: KIS's checks stand


async def test_a_won_amount_typed_as_dollars_is_refused_naming_the_price_and_the_mistake(bot: BotHarness) -> None:
    bot.sim.set_us_price("AAPL", Decimal("6.49"))
    first_no = bot.sim.us_trading.next_no
    text = await refused(bot, ALICE, "/buy AAPL 1 9086")  # ₩9,086 is $6.49 at 1,400 KRW/USD
    assert "$9,086.00" in text and "$6.49" in text and "원화" in text and "₩9,086" in text, text
    assert "주문하지 않았습니다" in text
    text = await refused(bot, BOB, "/buy AAPL 1 9086")
    assert "won amount" in text and "$6.49" in text and "Nothing was sent" in text, text
    assert bot.sim.us_trading.next_no == first_no


async def test_us_limits_far_through_the_market_are_refused_near_ones_carded(bot: BotHarness) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    first_no = bot.sim.us_trading.next_no
    text = await refused(bot, ALICE, "/buy AAPL 1 1900")
    assert "$1,900.00" in text and "$190.25" in text and "30%" in text and "$247.32" in text, text
    text = await refused(bot, BOB, "/sell AAPL 1 0.5")
    assert "$190.25" in text and "below" in text and "$133.18" in text, text
    text = await refused(bot, BOB, "/buy AAPL 1 1.00")  # resting far below: cannot fill today
    assert "$190.25" in text and "$95.13" in text, text
    assert bot.sim.us_trading.next_no == first_no
    card = await carded(bot, BOB, "/buy AAPL 1 195.00")  # a near limit goes on as before
    await bot.press_button(BOB, card, 0)
    assert bot.sim.us_trading.next_no == first_no + 1


async def test_a_us_revision_far_from_the_price_is_refused(bot: BotHarness) -> None:
    bot.sim.set_us_price("TSLA", Decimal("250.00"))
    card = await carded(bot, BOB, "/buy TSLA 1 200.00")
    await bot.press_button(BOB, card, 0)
    order_no = await last_order_no(bot)
    placed = bot.sim.us_trading.next_no
    text = await refused(bot, BOB, f"/modify {order_no} 2500")
    assert "$2,500.00" in text and "$250.00" in text and "$325.00" in text, text
    await carded(bot, BOB, f"/modify {order_no} 210.00")
    assert bot.sim.us_trading.next_no == placed


async def test_us_alerts_beyond_half_or_double_are_refused(bot: BotHarness) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    text = await refused(bot, ALICE, "/alert AAPL 이상 266350")  # ₩266,350 is $190.25
    assert "원화" in text and "$190.25" in text and "설정하지 않았습니다" in text, text
    text = await refused(bot, BOB, "/alert AAPL above 9086")
    assert "$9,086.00" in text and "$190.25" in text and "$380.50" in text and "No alert" in text, text
    text = await refused(bot, BOB, "/alert AAPL below 50")
    assert "$95.13" in text, text
    assert await count(bot, AlertRow) == 0
    (msg,) = await bot.say(BOB, "/alert AAPL above 200")  # a near one is set as before
    assert "Alert #" in msg["text"], msg["text"]
    assert await count(bot, AlertRow) == 1


# -- 4. US input said in US words ----------------------------------------------------------------------------------
async def test_us_input_errors_speak_dollars(bot: BotHarness) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    for typed in ("₩9086", "9086원", "￦9086"):
        text = await refused(bot, ALICE, f"/buy AAPL 1 {typed}")
        assert "달러" in text and "원 이상의 정수" not in text and "시장가" not in text, text
    text = await refused(bot, BOB, "/buy AAPL 1 ₩9086")
    assert "dollars" in text and "whole number of won" not in text, text
    text = await refused(bot, ALICE, "/alert AAPL 이상 -1")
    assert "/buy" not in text and "/alert" in text, text
    text = await refused(bot, ALICE, "/alert AAPL 이상 ₩9086")
    assert "달러" in text, text
    card = await carded(bot, ALICE, "/buy AAPL 1 190.50")  # fills at once: no longer open
    await bot.press_button(ALICE, card, 0)
    order_no = await last_order_no(bot)
    text = await refused(bot, ALICE, f"/modify {order_no} 151.005")
    assert order_no in text and "원 이상의 정수" not in text, text


# -- 2. halted stocks ------------------------------------------------------------------------------------------------
async def test_a_halted_stock_gets_no_card_and_its_alert_says_halted(krx_bot: BotHarness) -> None:
    bot = krx_bot
    state = bot.sim.market.get(CODE)
    assert state is not None
    price = state.price
    card = await carded(bot, ALICE, f"/buy {CODE} 1 {price}")  # carded before the halt
    bot.sim.upsert_listing({"code": CODE, "halted": True})
    text = await refused(bot, ALICE, f"/buy {CODE} 1 {price}")
    assert "거래정지" in text and "주문하지 않았습니다" in text, text
    text = await refused(bot, BOB, f"/sell {CODE} 1 {price}")
    assert "halted" in text and "Nothing was sent" in text, text
    await bot.press_button(ALICE, card, 0)  # the card made before: the simulator refuses it as KIS does
    final = bot.current(card)["text"]
    assert "KIS가 거부" in final and "거래정지" in final and "주문 접수" not in final, final
    assert bot.sim.orders_accepted == 0
    (msg,) = await bot.say(ALICE, f"/alert {CODE} 이상 {p.round_down_to_tick(state.limits[1])}")
    assert "알림 #" in msg["text"] and "거래정지" in msg["text"], msg["text"]
    assert await count(bot, AlertRow) == 1
    bot.sim.upsert_listing({"code": CODE, "halted": False})  # trading resumes: orders are carded again
    await carded(bot, ALICE, f"/buy {CODE} 1 {price}")


@pytest.mark.parametrize(("flavour", "msg_cd"), [("real", "APBK1682"), ("virtual", "40210000")])
async def test_the_simulator_refuses_orders_and_revisions_on_a_halted_stock(sim: KisSimulator, make_client,
                                                                            flavour: str, msg_cd: str) -> None:
    client = make_client(flavour)
    state = sim.market.get(CODE)
    assert state is not None
    low = p.round_down_to_tick(state.limits[0] + 5 * p.tick_size(state.limits[0]))
    resting = await client.place_order(OrderSide.BUY, CODE, 2, low)
    sim.upsert_listing({"code": CODE, "halted": True})
    with pytest.raises(KisOrderRejected) as info:
        await client.place_order(OrderSide.BUY, CODE, 1, low)
    assert info.value.msg_cd == msg_cd and "거래정지" in info.value.msg1
    with pytest.raises(KisOrderRejected) as info:
        await client.revise_order(resting.order_no, resting.branch, p.round_down_to_tick(low + p.tick_size(low)))
    assert info.value.msg_cd == msg_cd
    assert sim.orders_accepted == 1
    await client.cancel_order(resting.order_no, resting.branch)  # taking an order off the halted book is allowed
    assert await client.open_orders() == []


# -- 3. a revision's extra cost checked before its card ------------------------------------------------------------
async def test_a_revision_the_cash_cannot_cover_is_refused_before_its_card(krx_bot: BotHarness) -> None:
    bot = krx_bot
    state = bot.sim.market.get(CODE)
    assert state is not None
    lower, upper = state.limits
    low = p.round_up_to_tick(lower + 2 * p.tick_size(lower))
    cash = bot.sim.options.starting_cash
    quantity = cash * 9 // 10 // low  # 90 % of the cash at the low price; the revision to the upper limit ~170 %
    card = await carded(bot, ALICE, f"/buy {CODE} {quantity} {low}")
    await bot.press_button(ALICE, card, 0)
    assert "주문 접수" in bot.current(card)["text"]
    order_no = await last_order_no(bot)
    await carded(bot, ALICE, f"/modify {order_no} {p.round_up_to_tick(low + p.tick_size(low))}")  # a step: fits
    top = p.round_down_to_tick(upper)
    text = await refused(bot, ALICE, f"/modify {order_no} {top}")
    assert "주문 가능 금액이 부족합니다" in text and order_no in text and "최대" in text, text
    assert "아무것도 전송하지 않았습니다" in text, text
    accepted = bot.sim.orders_accepted
    most = int(text.split("최대 ")[1].split("주")[0].replace(",", ""))  # the most it names: KIS takes it
    assert 0 < most < quantity
    revise = await carded(bot, ALICE, f"/modify {order_no} {top} {most}")
    await bot.press_button(ALICE, revise, 0)
    assert "정정 접수" in bot.current(revise)["text"], bot.current(revise)["text"]
    assert bot.sim.orders_accepted == accepted


async def test_a_us_revision_the_dollars_cannot_cover_is_refused_before_its_card(bot: BotHarness) -> None:
    bot.sim.set_us_price("TSLA", Decimal("250.00"))
    card = await carded(bot, BOB, "/buy TSLA 40 200.00")  # $8,020 of the paper account's $10,000: it rests
    await bot.press_button(BOB, card, 0)
    order_no = await last_order_no(bot)
    placed = bot.sim.us_trading.next_no
    text = await refused(bot, BOB, f"/modify {order_no} 260.00")  # about $2,406 more; some $1,980 is left
    assert "Not enough buying power" in text and order_no in text and "Nothing was sent" in text, text
    assert bot.sim.us_trading.next_no == placed
    most = int(text.split("at most ")[1].split(" ")[0].replace(",", ""))
    assert 0 < most < 40
    revise = await carded(bot, BOB, f"/modify {order_no} 260.00 {most}")  # the most it names: KIS takes it
    await bot.press_button(BOB, revise, 0)
    assert "revision accepted" in bot.current(revise)["text"].lower(), bot.current(revise)["text"]
