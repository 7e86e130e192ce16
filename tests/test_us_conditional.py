"""US conditional orders end to end: fake Bot API ↔ bot ↔ simulator (US market held open), trades on
HDFSCNT0 (keys like DNASAAPL), prices in dollars on the US tick, sells at a limit through the US broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import select

from chatbot.config import KisSettings
from chatbot.console.botapi import BotApiEmulator
from chatbot.storage.tables import ConditionalOrderRow, OrderJournalRow, PendingOrderRow
from tests.conftest import SQLITE_ONLY
from tests.harness import BotHarness

ALICE = BotApiEmulator.user(7101, "ko")
BOB = BotApiEmulator.user(7102, "en")
TRIGGERED, PLACED, FILLED = "⚡ 조건주문", "매도 주문 접수", "체결 🇺🇸"


@pytest.fixture
def bot(us_open_bot: BotHarness) -> BotHarness:
    return us_open_bot


@pytest.fixture
async def quick_sync_bot(db_url: str) -> AsyncIterator[BotHarness]:
    """``bot`` with the upkeep pass that settles a firing told after a restart every 0.2 s instead of 2 s."""
    harness = BotHarness(db_url, us_always_open=True, kis=KisSettings(conditional_sync_seconds=0.2))
    await harness.start()
    yield harness
    assert not harness.api.unanswered_callbacks(), "every callback query must be answered"
    await harness.stop()


async def rows(bot: BotHarness, table: type) -> list[Any]:
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        return list((await session.exec(select(table))).all())


async def wait_for(predicate: Callable[[], Any], timeout: float = 60.0) -> None:
    async def poll() -> None:
        while True:
            value = predicate()
            if await value if asyncio.iscoroutine(value) else value:
                return
            await asyncio.sleep(0.05)
    await asyncio.wait_for(poll(), timeout)


async def status_is(bot: BotHarness, status: str) -> bool:
    return any(r.status == status for r in await rows(bot, ConditionalOrderRow))


async def buy(bot: BotHarness, user: dict[str, Any], text: str) -> None:
    (card,) = await bot.say(user, text)
    assert BotApiEmulator.buttons(card), card["text"]
    await bot.press_button(user, card, 0)
    assert "주문 접수" in bot.current(card)["text"] or "accepted" in bot.current(card)["text"].lower()


async def arm(bot: BotHarness, user: dict[str, Any], text: str) -> str:
    """Confirm the card ``text`` makes; the card's text as shown before the press."""
    (card,) = await bot.say(user, text)
    shown = str(card["text"])
    assert BotApiEmulator.buttons(card), shown
    await bot.press_button(user, card, 0)
    armed = bot.current(card)
    assert "#" in armed["text"] and "reply_markup" not in armed, armed["text"]
    return shown


async def test_us_stop_fires_once_sells_at_a_limit_and_tells_in_dollars(bot: BotHarness) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    await buy(bot, ALICE, "/buy AAPL 3 190.50")
    (card,) = await bot.say(ALICE, "/stop 애플 3 180")
    text = card["text"]
    assert "🇺🇸" in text and "$180.00" in text and "$178.20" in text and "1%" in text, text
    assert "$190.25" in text and "3주" in text, text
    await bot.press_button(ALICE, card, 0)
    (row,) = await rows(bot, ConditionalOrderRow)
    assert row.status == "armed" and row.code == "DNASAAPL" and row.market == "US" and row.currency == "USD"
    assert row.stop_price == 1_800_000 and row.limit_price is None
    assert bot.runtime is not None and bot.runtime.engine is not None
    assert ("HDFSCNT0", "DNASAAPL") in bot.runtime.engine.feed.subscriptions
    (listing,) = await bot.say(ALICE, "/stops")
    assert "🇺🇸" in listing["text"] and "(AAPL)" in listing["text"] and "$180.00" in listing["text"], listing["text"]
    bot.sim.set_us_price("AAPL", Decimal("185.00"))  # not there yet
    await asyncio.sleep(0.3)
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 0
    bot.sim.set_us_price("AAPL", Decimal("179.90"))
    triggered = await bot.wait_for_message(ALICE["id"], TRIGGERED, timeout=60)
    assert "$179.90" in triggered["text"] and "$180.00" in triggered["text"] and "(AAPL)" in triggered["text"], \
        triggered["text"]
    assert "$178.10" in triggered["text"], triggered["text"]  # the lower of trigger and trade, less 1%, on the tick
    placed = await bot.wait_for_message(ALICE["id"], PLACED, timeout=60)
    filled = await bot.wait_for_message(ALICE["id"], FILLED, timeout=60)
    assert "$" in filled["text"] and "3주" in filled["text"], filled["text"]
    await wait_for(lambda: status_is(bot, "placed"))
    (row,) = await rows(bot, ConditionalOrderRow)
    assert row.order_no and row.order_no in placed["text"] and row.sold_quantity == 3
    (journal,) = [r for r in await rows(bot, OrderJournalRow) if r.idempotency_key == row.fire_key]
    assert journal.market == "US" and journal.code == "AAPL" and journal.side == "sell"
    assert journal.price == Decimal("178.10") and journal.currency == "USD" and journal.order_type == "LIMIT"
    for price in ("179.00", "181.00", "178.50"):  # lower still, and across again: nothing more
        bot.sim.set_us_price("AAPL", Decimal(price))
    await asyncio.sleep(0.5)
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 1
    sells = [r for r in await rows(bot, OrderJournalRow) if r.market == "US" and r.side == "sell"]
    assert len(sells) == 1
    (balance,) = await bot.say(ALICE, "/balance")
    assert "AAPL" not in balance["text"], balance["text"]


async def test_us_bracket_fires_one_leg(bot: BotHarness) -> None:
    bot.sim.set_us_price("NVDA", Decimal("135.00"))
    await buy(bot, BOB, "/buy NVDA 2 135.00")
    card = await arm(bot, BOB, "/bracket NVDA 2 120 150")
    assert "$120.00" in card and "$150.00" in card and "1%" in card, card
    bot.sim.set_us_price("NVDA", Decimal("150.50"))  # the take-profit leg
    await bot.wait_for_message(BOB["id"], "triggered", timeout=60)
    await wait_for(lambda: status_is(bot, "placed"))
    bot.sim.set_us_price("NVDA", Decimal("119.00"))  # the stop leg is gone with it
    await asyncio.sleep(0.5)
    assert bot.count_messages(BOB["id"], "triggered") == 1
    (row,) = await rows(bot, ConditionalOrderRow)
    assert row.fired_leg == "take" and row.status == "placed"
    sells = [r for r in await rows(bot, OrderJournalRow) if r.market == "US" and r.side == "sell"]
    assert len(sells) == 1 and sells[0].price == Decimal("148.50")  # the trigger less 1%


async def test_us_trailing_stop_shows_its_level_in_dollars(bot: BotHarness) -> None:
    bot.sim.set_us_price("TSLA", Decimal("250.00"))
    await buy(bot, ALICE, "/buy TSLA 1 250.00")
    card = await arm(bot, ALICE, "/trail TSLA 1 5%")
    assert "$237.50" in card, card
    bot.sim.set_us_price("TSLA", Decimal("260.00"))  # the level rises with the high
    await asyncio.sleep(0.3)
    (listing,) = await bot.say(ALICE, "/stops")
    assert "$247.00" in listing["text"] and "🇺🇸" in listing["text"], listing["text"]


@SQLITE_ONLY
@pytest.mark.parametrize(("text", "expected"), [
    ("/stop AAPL 1 180.005", "$180.00"),  # off the US tick
    ("/stop AAPL 5 180", "5"),  # more than held (1)
    ("/tp AAPL 1 185", "/sell"),  # would fire now
    ("/bracket AAPL 1 200 180", "$200.00"),  # stop above take
])
async def test_us_bad_input_changes_nothing(bot: BotHarness, text: str, expected: str) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    await buy(bot, ALICE, "/buy AAPL 1 190.50")
    (msg,) = await bot.say(ALICE, text)
    assert expected in msg["text"] and "reply_markup" not in msg, msg["text"]
    assert await rows(bot, ConditionalOrderRow) == []
    assert not [c for c in await rows(bot, PendingOrderRow) if c.action in ("stop", "tp", "trail", "bracket")]


async def test_us_stop_without_limit_refused_when_slippage_is_off(db_url: str) -> None:
    harness = BotHarness(db_url, us_always_open=True, kis=KisSettings(us_stop_slippage_percent="0"))
    await harness.start()
    try:
        harness.sim.set_us_price("AAPL", Decimal("190.25"))
        await buy(harness, BOB, "/buy AAPL 1 190.50")
        (msg,) = await harness.say(BOB, "/stop AAPL 1 180")
        assert "limit price" in msg["text"] and "reply_markup" not in msg, msg["text"]
        assert await rows(harness, ConditionalOrderRow) == []
        (card,) = await harness.say(BOB, "/stop AAPL 1 180 179.50")  # with a limit: a card
        assert "$179.50" in card["text"] and BotApiEmulator.buttons(card), card["text"]
    finally:
        await harness.stop()


async def test_us_restart_between_firing_and_the_order_reply_neither_loses_nor_doubles(
        quick_sync_bot: BotHarness) -> None:
    """The process dies after KIS took the US sell and before its reply: after the restart the
    reconciliation finds it among the day's US orders like any US order; nothing is sent twice."""
    bot = quick_sync_bot
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    await buy(bot, ALICE, "/buy AAPL 2 190.50")
    await arm(bot, ALICE, "/stop AAPL 2 180 179.50")
    assert bot.runtime is not None and bot.runtime.services.us is not None
    account = await bot.runtime.accounts.for_user(ALICE["id"])
    client = bot.runtime.services.us.market.broker(account.client).submitter.client
    original = client.place
    sent = asyncio.Event()

    async def reply_lost(*args: Any, **kwargs: Any) -> Any:
        await original(*args, **kwargs)  # KIS takes the order…
        sent.set()
        await asyncio.Event().wait()  # …and its reply never comes back: the process dies meanwhile

    client.place = reply_lost  # type: ignore[method-assign]
    before = bot.sim.us_trading.next_no
    bot.sim.set_us_price("AAPL", Decimal("179.80"))
    await asyncio.wait_for(sent.wait(), 60)
    conditional = bot.runtime.services.conditional
    assert conditional is not None
    for task in list(conditional._tasks):  # the crash: the firing never hears back
        task.cancel()
    (row,) = await rows(bot, ConditionalOrderRow)
    assert row.status == "firing"
    await bot.restart()
    await wait_for(lambda: status_is(bot, "placed"), timeout=90)
    (journal,) = [j for j in await rows(bot, OrderJournalRow) if j.idempotency_key == row.fire_key]
    assert journal.kis_order_no and journal.told_at is not None and journal.market == "US"
    bot.sim.set_us_price("AAPL", Decimal("179.00"))
    await asyncio.sleep(0.5)
    assert bot.sim.us_trading.next_no == before + 1  # one sell reached the simulator, never two
    (balance,) = await bot.say(ALICE, "/balance")
    assert "AAPL" not in balance["text"], balance["text"]


def test_marketable_limit_is_the_lower_price_less_slippage_down_to_the_tick() -> None:
    from chatbot.service.us_conditional import UsConditional

    us = UsConditional(None, Decimal(1))  # type: ignore[arg-type]  # no market needed for the arithmetic
    assert us.marketable(1_800_000) == 1_782_000  # $180.00 → $178.20
    assert us.marketable(1_800_000, 1_799_000) == 1_781_000  # a gap below: from the trade, $179.90 → $178.10
    assert us.marketable(1_500_000, 1_505_000) == 1_485_000  # a take-profit: from the trigger
    assert us.marketable(5_123) == 5_071  # under $1: the $0.0001 tick
    assert UsConditional(None, Decimal(0)).marketable(1_800_000) is None  # type: ignore[arg-type]


async def test_us_stop_with_a_korean_name_and_a_limit(bot: BotHarness) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    await buy(bot, ALICE, "/buy AAPL 3 190.50")
    card = await arm(bot, ALICE, "/stop 애플 3 180 179.5")
    assert "$180.00" in card and "$179.50" in card and "1%" not in card, card
    (row,) = await rows(bot, ConditionalOrderRow)
    assert row.limit_price == 1_795_000 and row.status == "armed"
