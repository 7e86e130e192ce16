"""US stocks end to end: real PTB Application ↔ fake Bot API (HTTP) ↔ service ↔ simulator (HTTP),
with the simulator's switch that keeps the US market open."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from chatbot.console.botapi import BotApiEmulator
from tests.harness import BotHarness

ALICE = BotApiEmulator.user(1101, "ko")
BOB = BotApiEmulator.user(1102, "en")


@pytest.fixture
async def bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url, us_always_open=True)
    await harness.start()
    yield harness
    assert not harness.api.unanswered_callbacks(), "every callback query must be answered"
    await harness.stop()


# -- /price -----------------------------------------------------------------------------------------------
async def test_us_quote_by_ticker_and_korean_name(bot: BotHarness) -> None:
    price = bot.sim.set_us_price("AAPL", Decimal("190.25"))
    (msg,) = await bot.say(ALICE, "/price AAPL")
    text = msg["text"]
    assert "애플" in text and "(AAPL)" in text and "NASDAQ" in text
    assert f"${price:,.2f}" in text and "정규장" in text and "추정" in text and "₩" in text
    (by_name,) = await bot.say(ALICE, "/price 애플")
    assert f"${price:,.2f}" in by_name["text"] and "(AAPL)" in by_name["text"]
    (etf,) = await bot.say(BOB, "/price QQQ")
    assert "(QQQ)" in etf["text"] and "$" in etf["text"] and "estimate" in etf["text"]
    assert "regular session" in etf["text"]


async def test_us_quote_under_a_dollar_has_four_decimals(bot: BotHarness) -> None:
    price = bot.sim.set_us_price("AAPL", Decimal("0.5123"))
    (msg,) = await bot.say(BOB, "/price AAPL")
    assert f"${price:.4f}" in msg["text"]


async def test_domestic_price_unchanged_beside_us(bot: BotHarness) -> None:
    (msg,) = await bot.say(ALICE, "/price 삼성")  # still KRX candidates, not a US stock
    assert all(data.startswith("pq:") for _, data in BotApiEmulator.buttons(msg))
    (msg,) = await bot.say(ALICE, "/price 005930")
    assert "삼성전자" in msg["text"] and "$" not in msg["text"]
