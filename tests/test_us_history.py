"""/history of a user who trades US stocks too, end to end (real PTB Application ↔ fake Bot API ↔ service
↔ simulator, the US market held open): the US executions are there, in their own section, in dollars at
the US tick's precision, by New York trading day with KST times (as the US daily report)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from chatbot.console.botapi import BotApiEmulator
from tests.harness import BotHarness, confirm

ALICE = BotApiEmulator.user(9401, "ko")
BOB = BotApiEmulator.user(9402, "en")
CAROL = BotApiEmulator.user(9403, "en")
WEEKDAYS_KO = "월화수목금토일"


@pytest.fixture
def bot(us_open_bot: BotHarness) -> BotHarness:
    return us_open_bot


async def test_history_shows_us_executions_in_their_own_section(bot: BotHarness) -> None:
    """/history listed the domestic executions only (KIS's inquire-daily-ccld): a trader's US fills were
    missing whatever the span. "/history 1" pins last night's session too (KST dates: a fill at 01:00 KST is
    on the New York date before)."""
    assert "주문 접수" in (await confirm(bot, ALICE, "/buy 005930 1"))["text"]
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    assert "주문 접수" in (await confirm(bot, ALICE, "/buy AAPL 3 190.50"))["text"]  # fills at $190.25
    bot.sim.set_us_price("TSLA", Decimal("0.5123"))
    assert "주문 접수" in (await confirm(bot, ALICE, "/buy TSLA 10 0.5200"))["text"]  # fills at $0.5123
    orders = sorted((x for a in bot.sim.us_trading.accounts.values() for x in a.orders), key=lambda x: x.order_no)
    assert [x.filled_qty for x in orders] == [3, 10], orders
    (msg,) = await bot.say(ALICE, "/history 1")
    text = msg["text"]
    assert "3건" in text, text  # one domestic fill, two US ones
    assert "🇰🇷" in text and "매수 삼성전자 1주 @" in text, text
    assert "🇺🇸" in text and "뉴욕 거래일" in text, text
    us = text.split("🇺🇸", 1)[1]
    assert "삼성전자" not in us and "원" not in us.split("\n", 1)[1], text  # dollars in the US section
    aapl, tsla = orders
    assert f"{aapl.kst_time[:2]}:{aapl.kst_time[2:4]} 매수 애플 3주 @ $190.25 · $570.75" in us, text
    assert f"{tsla.kst_time[:2]}:{tsla.kst_time[2:4]} 매수 테슬라 10주 @ $0.5123 · $5.12" in us, text  # four decimals
    ny_day = dt.datetime.strptime(aapl.local_date, "%Y%m%d").date()
    assert f"{ny_day:%m-%d} ({WEEKDAYS_KO[ny_day.weekday()]}) 매수 $575.87" in us, text  # the NY trading day
    assert text.index("🇰🇷") < text.index("🇺🇸")
    (en,) = await bot.say(BOB, "/history")  # nothing anywhere: one line, no sections
    assert "No executions" in en["text"] and "🇺🇸" not in en["text"], en["text"]


async def test_history_says_when_the_us_part_could_not_be_loaded(bot: BotHarness) -> None:
    """KIS's US orders do not answer: a user the bot knows to trade US stocks (a US order journalled, or a US
    alert) is told the US part is missing; one it knows only in the domestic market (an account without
    overseas trading looks the same) gets the domestic view alone, as /report leaves the US out. That user
    was told "US executions could not be loaded" on every /history."""
    assert "주문 접수" in (await confirm(bot, ALICE, "/buy 005930 1"))["text"]
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    assert "주문 접수" in (await confirm(bot, ALICE, "/buy AAPL 1 150.00"))["text"]  # a US order, resting
    assert "accepted" in (await confirm(bot, BOB, "/buy 005930 1"))["text"].lower()
    (alert,) = await bot.say(CAROL, "/alert AAPL above 250")
    assert "AAPL" in alert["text"], alert["text"]
    await bot.sim.control("faults", {"error_5xx_probability": 1.0,
                                     "paths": ["/uapi/overseas-stock/v1/trading/inquire-ccnl"]})
    try:
        (msg,) = await bot.say(ALICE, "/history")
        (domestic_only,) = await bot.say(BOB, "/history")
        (alerted,) = await bot.say(CAROL, "/history")
    finally:
        await bot.sim.control("clear-faults", {})
    assert "매수 삼성전자 1주 @" in msg["text"] and "미국 주식 체결 내역을 지금 불러오지 못했습니다" in msg["text"], \
        msg["text"]  # the domestic part stands
    text = domestic_only["text"]
    assert "Samsung" in text or "삼성전자" in text, text
    assert "🇺🇸" not in text and "could not be loaded" not in text, text
    assert "US executions could not be loaded" in alerted["text"], alerted["text"]
