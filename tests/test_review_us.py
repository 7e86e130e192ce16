"""Review of the US, conditional-order, report and notice code (2026-11-30): each test reproduces a defect
found in review against the real PTB Application, the fake Bot API and the simulator, then pins the fix."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import overseas_protocol as o
from chatbot.kis.overseas_protocol import UsExchange, UsOrderDivision
from chatbot.service.errors import UserError
from chatbot.service.us_orders import parse_us_price
from tests.harness import BotHarness

ALICE = BotApiEmulator.user(9101, "ko")
BOB = BotApiEmulator.user(9102, "en")


@pytest.fixture
async def bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url, us_always_open=True)
    await harness.start()
    yield harness
    assert not harness.api.unanswered_callbacks(), "every callback query must be answered"
    await harness.stop()


async def confirm(bot: BotHarness, user: dict[str, Any], text: str) -> dict[str, Any]:
    (card,) = await bot.say(user, text)
    assert BotApiEmulator.buttons(card), card["text"]
    await bot.press_button(user, card, 0)
    return bot.current(card)


# -- a US price with a comma that is not a thousands separator ---------------------------------------------
@pytest.mark.parametrize("text", ["190,50", "1,9.0", "0,50", "1,95", "12,3456.00"])
def test_a_us_price_with_a_misplaced_comma_is_refused_not_misread(text: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_us_price(text)
    assert caught.value.key == "us_bad_price"


@pytest.mark.parametrize(("text", "expected"), [("1,234.50", "1234.50"), ("$190.50", "190.50"), ("12,345", "12345")])
def test_a_us_price_with_thousands_separators_still_reads(text: str, expected: str) -> None:
    assert parse_us_price(text) == Decimal(expected)


@pytest.mark.parametrize("text", ["/buy AAPL 1 190,50", "/stop AAPL 1 180,5", "/alert AAPL above 1,95"])
async def test_a_decimal_comma_makes_no_card_and_no_alert(bot: BotHarness, text: str) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    (msg,) = await bot.say(BOB, text)
    assert "reply_markup" not in msg and "Could not read the price" in msg["text"], msg["text"]
    assert "$19,050" not in msg["text"] and "$1805" not in msg["text"] and "Alert #" not in msg["text"]


# -- /orders of an active trader: more than Telegram's 4096 characters -----------------------------------
async def test_orders_with_many_open_us_orders_fit_telegram_and_still_offer_cancel(bot: BotHarness) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    final = await confirm(bot, ALICE, "/buy AAPL 1 100.00")  # rests far below the market
    assert "주문 접수" in final["text"], final["text"]
    (account_id,) = bot.sim.us_trading.accounts
    now = dt.datetime.now(dt.UTC)
    for i in range(60):  # placed in KIS's app meanwhile: /orders lists them all
        bot.sim.us_trading.place(account_id, "AAPL", UsExchange.NASDAQ, o.SIDE_BUY, UsOrderDivision.LIMIT, 1,
                                 (100_00 + i) * 100, now)
    (orders,) = await bot.say(ALICE, "/orders")
    assert "요청을 처리하지 못했습니다" not in orders["text"], "the list must not fail as an internal error"
    assert "🇺🇸" in orders["text"] and BotApiEmulator.buttons(orders)
    (cancel,) = await bot.say(ALICE, "/cancel")
    assert BotApiEmulator.buttons(cancel) and "요청을 처리하지 못했습니다" not in cancel["text"]
