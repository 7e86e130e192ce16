"""An English reader reads a domestic stock by the directory's English name in the views that name it after
KIS's replies (/balance, /orders, /cancel) or the conditional orders stored (the "armed" reply, /stops), and
in /report and the daily report; a Korean reader reads them as before."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator

import pytest

from chatbot.console.botapi import BotApiEmulator
from chatbot.kis.protocol import KST
from chatbot.service.reports import KRX_REPORT, ReportService
from tests.harness import BotHarness
from tests.test_conditional import price, ticks

ALICE = BotApiEmulator.user(9201, "ko")
BOB = BotApiEmulator.user(9202, "en")
CODE = "005930"
ENGLISH, KOREAN = "Samsung Electronics", "삼성전자"


@pytest.fixture
async def bot(db_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[BotHarness]:
    monkeypatch.setattr(ReportService, "start", lambda self: None)  # the daily report driven by the test's clock
    harness = BotHarness(db_url)
    await harness.start()
    yield harness
    assert not harness.api.unanswered_callbacks(), "every callback query must be answered"
    await harness.stop()


async def press_first(bot: BotHarness, user: dict, text: str) -> dict:
    (card,) = await bot.say(user, text)
    assert BotApiEmulator.buttons(card), card["text"]
    await bot.press_button(user, card, 0)
    shown = bot.current(card)
    assert "reply_markup" not in shown, shown["text"]
    return shown


def english(text: str) -> bool:
    return ENGLISH in text and KOREAN not in text


async def test_balance_and_open_orders_name_the_stock_as_the_reader_reads_it(bot: BotHarness) -> None:
    """/balance, /orders and /cancel showed KIS's name (삼성전자) to an English reader."""
    now = price(bot)
    for user in (BOB, ALICE):
        await press_first(bot, user, f"/buy {CODE} 2")  # held
        await press_first(bot, user, f"/buy {CODE} 1 {ticks(-5, now)}")  # open
    await bot.wait_for_message(BOB["id"], "Filled", timeout=60)
    await bot.wait_for_message(ALICE["id"], "✅ 체결", timeout=60)
    (balance,) = await bot.say(BOB, "/balance")
    assert english(balance["text"]), balance["text"]
    (orders,) = await bot.say(BOB, "/orders")
    assert english(orders["text"]), orders["text"]
    (cancel,) = await bot.say(BOB, "/cancel")
    labels = [label for label, _ in BotApiEmulator.buttons(cancel) if label.startswith("Cancel")]
    assert labels and all(ENGLISH in label for label in labels), labels
    for command in ("/balance", "/orders"):  # a Korean reader: as before
        (reply,) = await bot.say(ALICE, command)
        assert KOREAN in reply["text"] and ENGLISH not in reply["text"], reply["text"]


async def test_conditional_orders_and_reports_name_the_stock_as_the_reader_reads_it(bot: BotHarness) -> None:
    """The "armed" reply, /stops (its lines and buttons), /report and the daily report (with its armed
    orders) said 삼성전자 to an English reader."""
    now = price(bot)
    for user in (BOB, ALICE):
        await bot.say(user, "/report on")
        await press_first(bot, user, f"/buy {CODE} 5")
    await bot.wait_for_message(BOB["id"], "Filled", timeout=60)
    await bot.wait_for_message(ALICE["id"], "✅ 체결", timeout=60)
    armed = await press_first(bot, BOB, f"/stop {CODE} 5 {ticks(-3, now)}")
    assert english(armed["text"]), armed["text"]
    korean = await press_first(bot, ALICE, f"/stop {CODE} 5 {ticks(-3, now)}")
    assert KOREAN in korean["text"] and ENGLISH not in korean["text"], korean["text"]

    (stops,) = await bot.say(BOB, "/stops")
    assert english(stops["text"]), stops["text"]
    assert [label for label, _ in BotApiEmulator.buttons(stops)] == [f"🗑 #1 {ENGLISH}"]
    (stops,) = await bot.say(ALICE, "/stops")
    assert KOREAN in stops["text"] and ENGLISH not in stops["text"], stops["text"]

    *_, report = await bot.say(BOB, "/report")  # the setting, then the report
    assert english(report["text"]), report["text"]
    *_, report = await bot.say(ALICE, "/report")
    assert KOREAN in report["text"] and ENGLISH not in report["text"], report["text"]

    assert bot.runtime is not None and bot.runtime.services.reports is not None
    reports = bot.runtime.services.reports
    reports.markets = (dataclasses.replace(  # today counts as a trading day, whatever day the test runs on
        KRX_REPORT, report_at=lambda day: dt.datetime.combine(day, dt.time(15, 40), KST)),)
    assert await reports.run_due(dt.datetime.combine(dt.datetime.now(KST).date(), dt.time(15, 45), KST)) == 2
    daily = await bot.wait_for_message(BOB["id"], "Daily report 20", timeout=60)
    assert english(daily["text"]) and "Conditional orders armed" in daily["text"], daily["text"]
    daily = await bot.wait_for_message(ALICE["id"], "일일 보고서 20", timeout=60)
    assert KOREAN in daily["text"] and ENGLISH not in daily["text"], daily["text"]
