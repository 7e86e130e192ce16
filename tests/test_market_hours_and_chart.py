"""Market hours (frozen clock), /chart as a photo, /status, maintenance."""

from __future__ import annotations

import datetime as dt
import struct

import pytest

from chatbot.config import KisSettings
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis.protocol import KST
from chatbot.market_hours import MarketCalendar, Phase, is_trading_day, parse_windows
from tests.conftest import SQLITE_ONLY
from tests.harness import BotHarness

ALICE = BotApiEmulator.user(8001, "ko")
BOB = BotApiEmulator.user(8002, "en")
CALENDAR = MarketCalendar(parse_windows("23:50-00:10"))


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=KST)


@pytest.mark.parametrize(("when", "phase", "next_open"), [
    ("2026-11-24 08:10", Phase.CLOSED, "2026-11-24 09:00"),  # a Tuesday, before the auction
    ("2026-11-24 08:30", Phase.PRE_OPEN, "2026-11-24 09:00"),
    ("2026-11-24 09:00", Phase.REGULAR, "2026-11-25 09:00"),
    ("2026-11-24 15:20", Phase.CLOSING_AUCTION, "2026-11-25 09:00"),
    ("2026-11-24 16:30", Phase.AFTER_CLOSE, "2026-11-25 09:00"),
    ("2026-11-24 19:00", Phase.CLOSED, "2026-11-25 09:00"),
    ("2026-11-28 10:00", Phase.WEEKEND, "2026-11-30 09:00"),  # Saturday
    ("2026-11-27 16:00", Phase.AFTER_CLOSE, "2026-11-30 09:00"),  # Friday afternoon → Monday
    ("2026-09-25 10:00", Phase.HOLIDAY, "2026-09-28 09:00"),  # Chuseok
    ("2026-12-31 10:00", Phase.HOLIDAY, "2027-01-04 09:00"),  # year-end closing day, then New Year, weekend
    ("2026-11-24 23:55", Phase.MAINTENANCE, "2026-11-25 09:00"),
    ("2026-11-25 00:05", Phase.MAINTENANCE, "2026-11-25 09:00"),  # a window across midnight
])
def test_calendar_decisions(when: str, phase: Phase, next_open: str) -> None:
    state = CALENDAR.state(at(when))
    assert state.phase is phase
    assert state.next_open == at(next_open)


@pytest.mark.parametrize("when", ["2026-11-24 08:10", "2026-11-24 23:49", "2026-11-24 23:50", "2026-11-25 00:09",
                                  "2026-11-25 00:10", "2026-11-28 23:55", "2026-12-31 23:55"])
def test_maintenance_check_agrees_with_the_state(when: str) -> None:
    """What a query checks before asking KIS (maintenance_until) says what the whole state says."""
    state = CALENDAR.state(at(when))
    expected = state.next_open if state.phase is Phase.MAINTENANCE else None
    assert CALENDAR.maintenance_until(at(when)) == expected
    assert MarketCalendar().maintenance_until(at(when)) is None  # no window configured


def test_trading_days() -> None:
    assert is_trading_day(dt.date(2026, 11, 24)) and not is_trading_day(dt.date(2026, 6, 3))  # local election


@SQLITE_ONLY
async def test_chart_arrives_as_a_valid_png(db_url: str) -> None:
    bot = BotHarness(db_url)
    await bot.start()
    try:
        for text, period in (("/chart 005930", "일봉"), ("/chart 삼성전자 w", "주봉"), ("/chart samsung electronics m",
                                                                                   "월봉")):
            await bot.say(ALICE, text)
            photo = [m for m in bot.api.bot_messages(ALICE["id"]) if "photo" in m][-1]
            png = photo["_photo_bytes"]
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
            width, height = struct.unpack(">II", png[16:24])
            assert (width, height) == (1000, 640) and 5_000 < len(png) < 500_000
            assert period in photo["caption"] and "005930" in photo["caption"] and "종가 ₩" in photo["caption"]
        sent = [p for m, p in bot.api.calls if m == "sendPhoto"]
        assert len(sent) == 3
        (msg,) = await bot.say(ALICE, "/chart")
        assert "사용법" in msg["text"]
        (msg,) = await bot.say(ALICE, "/chart zzzz")
        assert "찾을 수 없습니다" in msg["text"]
        (msg,) = await bot.say(BOB, "/status")
        assert "PAPER" in msg["text"] and "Real-time feed: connected" in msg["text"] and "version 0.1.0" in msg["text"]
    finally:
        await bot.stop()


@SQLITE_ONLY
async def test_maintenance_says_so_instead_of_calling_kis(db_url: str) -> None:
    now = dt.datetime.now(KST)
    window = f"{(now - dt.timedelta(minutes=5)):%H:%M}-{(now + dt.timedelta(minutes=5)):%H:%M}"
    bot = BotHarness(db_url, kis=KisSettings(maintenance_windows=window))
    await bot.start()
    try:
        requests = bot.sim.apis["real"].requests
        for text in ("/price 005930", "/buy 005930 1", "/balance"):
            (msg,) = await bot.say(ALICE, text)
            assert "점검" in msg["text"]
        assert bot.sim.apis["real"].requests == requests
    finally:
        await bot.stop()
