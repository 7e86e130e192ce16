"""What users type that the bot must not take at face value: secrets outside /login (also after a restart
lost the flow), numbers beyond what the market allows, one user's alerts taking every feed slot, a
chart period that is not one."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from chatbot.config import KisSettings
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import protocol as p
from chatbot.logs import setup_logging
from chatbot.storage.tables import AlertRow, CredentialRow, PendingOrderRow
from tests.conftest import SQLITE_ONLY
from tests.harness import BotHarness
from tests.helpers import new_credentials

ALICE = BotApiEmulator.user(8001, "ko")
BOB = BotApiEmulator.user(8002, "en")
CAROL = BotApiEmulator.user(8003, "en")
CODE = "005930"


@pytest.fixture
async def bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url)
    await harness.start()
    yield harness
    await harness.stop()


async def rows(bot: BotHarness, table: type) -> list:
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        return list((await session.exec(select(table))).all())


def still_shown(bot: BotHarness, text: str) -> bool:
    return any(text in (m.get("text") or "") for m in bot.api.messages.values())


# -- 5. secrets outside /login -------------------------------------------------------------------------------
async def test_a_secret_sent_after_a_restart_mid_login_is_deleted_at_once(bot: BotHarness) -> None:
    stream = io.StringIO()
    setup_logging("DEBUG", stream=stream)
    creds = new_credentials("12345678-01")
    try:
        await bot.say(ALICE, "/login")
        await bot.say(ALICE, creds.app_key)  # read and deleted by the flow
        await bot.restart()  # the flow lives in memory: it is gone
        (reply,) = await bot.say(ALICE, creds.app_secret)
        assert not still_shown(bot, creds.app_secret)
        assert "앱 시크릿" in reply["text"] and "삭제했습니다" in reply["text"] and "/login" in reply["text"]
        assert "/help" not in reply["text"]
        (reply,) = await bot.say(BOB, f"my key is {creds.app_key}, ok?")  # inside other words, before any /login
        assert not still_shown(bot, creds.app_key) and "App Key" in reply["text"]
        (reply,) = await bot.say(BOB, f"/login {creds.app_key}")  # as a command argument
        assert not still_shown(bot, creds.app_key) and "App Key" in reply["text"]
        await bot.say(BOB, f"/price appsecret={creds.app_secret}")
        assert not still_shown(bot, creds.app_secret)
        await bot.say(CAROL, creds.app_secret, chat_id=-5150)  # in a group, where the gate answers nothing
        assert not still_shown(bot, creds.app_secret)
        assert bot.api.bot_messages(-5150) and "App Secret" in bot.api.bot_messages(-5150)[-1]["text"]
        assert await rows(bot, CredentialRow) == []
    finally:
        logging.getLogger().handlers.clear()
        logging.getLogger().setLevel(logging.WARNING)
    logs = stream.getvalue()
    assert "deleted a message shaped like a KIS secret" in logs
    assert creds.app_key not in logs and creds.app_secret not in logs


async def test_the_login_flow_still_reads_its_own_steps(bot: BotHarness) -> None:
    creds = new_credentials("22334455-01")
    replies = await bot.say(ALICE, "/login")
    for text in (creds.app_key, creds.app_secret, "22334455-01", "-"):
        replies += await bot.say(ALICE, text)
    assert "등록했습니다" in replies[-1]["text"]
    assert not [r for r in replies if "삭제했습니다" in r["text"]]  # nothing treated as stray
    assert len(await rows(bot, CredentialRow)) == 1
    for text in ("hello", "123e4567-e89b-12d3-a456-426614174000", "a" * 36, "9" * 500):  # not key-shaped
        (reply,) = await bot.say(ALICE, text)
        assert "/help" in reply["text"] and still_shown(bot, text)


# -- 6. numbers beyond what the market allows ------------------------------------------------------------------
@SQLITE_ONLY
@pytest.mark.parametrize("text", [
    f"/alert {CODE} above 99999999999999999999999999",
    f"/alert {CODE} above 2147483648",
    f"/alert {CODE} below 100000001",
    f"/buy {CODE} 1 {10**20}",
    f"/buy {CODE} 1 2,147,483,648",
])
async def test_huge_prices_are_refused_plainly(bot: BotHarness, text: str) -> None:
    (reply,) = await bot.say(ALICE, text)
    assert "가격이 너무 큽니다" in reply["text"] and "100,000,000" in reply["text"]
    assert str(10**20) not in reply["text"] and "호가단위" not in reply["text"]
    assert await rows(bot, AlertRow) == [] and await rows(bot, PendingOrderRow) == []


@SQLITE_ONLY
async def test_order_prices_are_bounded_by_the_days_limits_before_the_tick(bot: BotHarness) -> None:
    state = bot.sim.market.get(CODE)
    assert state is not None and p.tick_size(state.price) > 1
    (reply,) = await bot.say(ALICE, f"/buy {CODE} 1 99,999,999")  # off the tick and far above the upper limit
    assert "가격제한폭" in reply["text"] and "호가단위" not in reply["text"]
    (reply,) = await bot.say(ALICE, f"/buy {CODE} 1 {state.price + 1}")  # within the limits, off the tick: advice
    assert "호가단위" in reply["text"]
    assert await rows(bot, PendingOrderRow) == []


@SQLITE_ONLY
@pytest.mark.parametrize("text", ["/alert off ²", "/alert off 9999999999999", "/alert off ١٢", "/cancel ²³"])
async def test_odd_digits_in_ids_are_refused_not_crashed(bot: BotHarness, text: str) -> None:
    (reply,) = await bot.say(ALICE, text)
    assert "없습니다" in reply["text"] or "숫자" in reply["text"], reply["text"]


# -- 7. one user cannot take every feed slot --------------------------------------------------------------------
@SQLITE_ONLY
async def test_one_user_flooding_41_symbols_leaves_room_for_others(db_url: str) -> None:
    bot = BotHarness(db_url, kis=KisSettings(max_alert_symbols_per_user=10, max_alerts_per_user=100))
    await bot.start()
    try:
        assert bot.runtime is not None and bot.runtime.engine is not None
        codes = [c for c in bot.sim.market.symbols if c != CODE][:p.WS_MAX_SUBSCRIPTIONS]
        assert len(codes) == p.WS_MAX_SUBSCRIPTIONS
        answers = [(await bot.say(ALICE, f"/alert {code} +10%"))[0]["text"] for code in codes]
        set_ok = [a for a in answers if a.startswith("🔔 알림 #")]
        refused = [a for a in answers if "10종목까지" in a]
        assert len(set_ok) == 10 and len(refused) == p.WS_MAX_SUBSCRIPTIONS - 10, answers[:12]
        assert "/alerts" in refused[0] and codes[0] in refused[0]  # what to do, and which symbols count
        (reply,) = await bot.say(ALICE, f"/alert {codes[0]} +20%")  # another alert on a watched symbol: fine
        assert reply["text"].startswith("🔔 알림 #")
        (reply,) = await bot.say(BOB, f"/alert {CODE} +10%")  # someone else still gets a slot
        assert reply["text"].startswith("🔔 Alert #")
        assert len(bot.runtime.engine.feed.subscriptions) == 11
    finally:
        await bot.stop()


@SQLITE_ONLY
async def test_a_full_feed_polls_and_says_how_often(bot: BotHarness) -> None:
    assert bot.runtime is not None and bot.runtime.feeds is not None
    bot.runtime.feeds.operators[0].session.max_subscriptions = 1
    (reply,) = await bot.say(ALICE, f"/alert {CODE} +10%")
    assert reply["text"].startswith("🔔")
    other = next(c for c in bot.sim.market.symbols if c != CODE)
    (reply,) = await bot.say(BOB, f"/alert {other} +10%")
    assert reply["text"].startswith("🔔 Alert #") and "checked every" in reply["text"]


# -- 8. /chart with a period that is not one ---------------------------------------------------------------------
@SQLITE_ONLY
async def test_chart_with_a_bad_period_says_the_period_is_wrong(bot: BotHarness) -> None:
    (reply,) = await bot.say(BOB, f"/chart {CODE} x")
    assert "Unknown period 'x'" in reply["text"] and "No such stock" not in reply["text"]
    (reply,) = await bot.say(BOB, "/chart nosuchthing x")
    assert "No such stock" in reply["text"]
    await bot.say(BOB, f"/chart {CODE} w")
    photos = [c for c in bot.api.calls if c[0] == "sendPhoto"]
    assert len(photos) == 1
