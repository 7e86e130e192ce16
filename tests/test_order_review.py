"""Order-safety review (2026-11-30): faults on the order path that a trader would suffer, end to end through
the simulator and the fake Bot API.

* KIS numbers orders anew each day: an order number the journal gave an order of an earlier day must not
  hide today's order from reconciliation (told "not placed" while it works), nor take today's fill.
* A cancellation whose reply was lost is confirmed only by the cancellation itself in the day's list, never
  by the order's absence from the open orders (a fill also takes it out of that list).
* A replica catching fills up matches a journal row to KIS's row of the same day, not of the same number only.
* A cancellation or revision the gateway refused (EGW00201, never reached the ledger) is sent again, as an
  order is, instead of being told as failed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable

import pytest
from sqlmodel import col, select

from chatbot.config import KisSettings
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import protocol as p
from chatbot.kis.protocol import KST
from chatbot.service.fill_catchup import catch_up_fills
from chatbot.storage.tables import OrderEventRow, OrderJournalRow
from chatbot.storage.types import utcnow
from tests.harness import BotHarness

USER = BotApiEmulator.user(9701, "en")
CODE = "005930"


@pytest.fixture
async def bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url, kis=KisSettings(order_settle_seconds=0.5, order_reconcile_interval_seconds=0.2))
    await harness.start()
    yield harness
    assert not harness.api.unanswered_callbacks(), "every callback query must be answered"
    await harness.stop()


async def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout)


async def journal(bot: BotHarness) -> list[OrderJournalRow]:
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        return list((await session.exec(select(OrderJournalRow).order_by(col(OrderJournalRow.id)))).all())


async def newest_filled(bot: BotHarness) -> OrderJournalRow:
    """The newest journal row, once it is filled (a deadline of 60 s, not a measure)."""
    async def filled() -> OrderJournalRow:
        while True:
            row = (await journal(bot))[-1]
            if row.status == "filled":
                return row
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(filled(), 60)


async def yesterdays_order(bot: BotHarness, order_no: str, quantity: int = 1, *, status: str = "filled",
                           then: dt.datetime | None = None) -> None:
    """An order of an earlier day, told, under the number KIS gives the next order today (filled unless
    ``status`` says otherwise)."""
    assert bot.runtime is not None
    account = await bot.runtime.accounts.for_user(USER["id"])
    then = then or utcnow() - dt.timedelta(days=1, hours=1)
    async with bot.runtime.db.write() as session:
        row = OrderJournalRow(idempotency_key="yesterdays-card", owner_id=USER["id"],
                              environment=bot.runtime.orders.mode.setting, account=str(account.account),
                              action="order", side="buy", code=CODE, quantity=quantity, price=None, currency="KRW",
                              kis_order_no=order_no, status=status, known_orders=[], sent_at=then,
                              told_at=then, created_at=then, updated_at=then)
        session.add(row)
        await session.flush()
        assert row.id is not None
        if status == "filled":
            session.add(OrderEventRow(journal_id=row.id, status="filled", detail=f"{quantity}@70000", at=then))


def next_order_no(bot: BotHarness) -> str:
    return f"{bot.sim.exchange.next_order_no + 1:010d}"


def resting_price(bot: BotHarness, ticks: int = 2) -> int:
    state = bot.sim.market.get(CODE)
    assert state is not None
    return p.round_down_to_tick(state.limits[0] + ticks * p.tick_size(state.limits[0]))


async def test_an_order_number_of_an_earlier_day_does_not_hide_todays_order_from_reconciliation(
        bot: BotHarness) -> None:
    """KIS took the order, its reply was lost and the submitter's looks found nothing: reconciliation finds it
    in the day's list. An order of yesterday carried the same number (KIS numbers each day anew): that is no
    reason to think today's order belongs to someone else and to tell the trader it was not placed."""
    assert bot.runtime is not None
    account = await bot.runtime.accounts.for_user(USER["id"])
    account.submitter.lookups = 0  # no look of its own: the outcome is left to reconciliation
    number = next_order_no(bot)
    await yesterdays_order(bot, number)
    (card,) = await bot.say(USER, f"/buy {CODE} 1")
    bot.sim.faults.error_5xx_after_next, bot.sim.faults.paths = 1, (p.PATH_ORDER_CASH,)
    await bot.press_button(USER, card, 0)
    bot.sim.faults.clear()
    assert bot.sim.orders_accepted == 1
    await wait_for(lambda: "Checking with KIS" not in bot.current(card)["text"]
                   and "Sending" not in bot.current(card)["text"])
    text = bot.current(card)["text"]
    today = (await journal(bot))[-1]
    assert "Not placed" not in text and "Order accepted" in text, text
    assert today.status in ("accepted", "filled") and today.kis_order_no == number


async def test_a_fill_before_todays_order_has_its_number_is_not_taken_for_yesterdays(bot: BotHarness) -> None:
    """A market order fills at once; its notice can come before KIS's reply is journalled. Yesterday's order
    had the same number: the fill must not be counted on yesterday's row (where it looks "already
    journalled" and is never told) but on today's."""
    assert bot.runtime is not None
    number = next_order_no(bot)
    await yesterdays_order(bot, number)
    (card,) = await bot.say(USER, f"/buy {CODE} 1")
    bot.sim.faults.response_delay_seconds, bot.sim.faults.paths = 1.0, (p.PATH_ORDER_CASH,)
    await bot.press_button(USER, card, 0)
    bot.sim.faults.clear()
    assert "Order accepted" in bot.current(card)["text"]
    fill = await bot.wait_for_message(USER["id"], "Filled", 60)
    assert number in fill["text"]

    async def todays_row_filled() -> OrderJournalRow:
        while True:
            row = (await journal(bot))[-1]
            if row.status == "filled":
                return row
            await asyncio.sleep(0.05)

    today = await asyncio.wait_for(todays_row_filled(), 60)
    assert today.kis_order_no == number


async def test_a_lost_cancel_reply_on_an_order_that_filled_is_not_told_as_cancelled(bot: BotHarness) -> None:
    """The order filled after its cancel card was made; the cancel's reply was lost (HTTP 500). The order is
    gone from the open orders because it filled, not because it was cancelled: the card must not say
    "Cancellation accepted"."""
    assert bot.runtime is not None
    limit = resting_price(bot)
    (buy,) = await bot.say(USER, f"/buy {CODE} 3 {limit}")
    await bot.press_button(USER, buy, 0)
    order_no = (await journal(bot))[-1].kis_order_no
    assert order_no
    (cancel_card,) = await bot.say(USER, f"/cancel {order_no}")
    sim_account = next(iter(bot.sim.exchange.accounts.values()))
    order = sim_account.find(order_no)
    assert order is not None
    bot.sim.exchange._fill(sim_account, order, 3, limit, bot.sim.exchange._stamp()[1])  # filled meanwhile
    bot.sim.faults.error_5xx_next, bot.sim.faults.paths = 1, (p.PATH_ORDER_RVSECNCL,)
    await bot.press_button(USER, cancel_card, 0)
    bot.sim.faults.clear()
    assert "Cancellation accepted" not in bot.current(cancel_card)["text"], bot.current(cancel_card)["text"]
    cancel = (await journal(bot))[-1]
    assert cancel.action == "cancel" and cancel.status != "accepted"
    await wait_for(lambda: "Checking with KIS" not in bot.current(cancel_card)["text"])
    assert "Cancellation accepted" not in bot.current(cancel_card)["text"]


@pytest.mark.parametrize("change", ["cancel", "modify"])
async def test_a_change_the_gateway_refused_is_sent_again_not_told_failed(bot: BotHarness, change: str) -> None:
    """EGW00201 on the revise/cancel POST proves it never reached the ledger (KIS: back off and retry): it is
    sent again, once, and told as done — as an order is."""
    assert bot.runtime is not None
    limit = resting_price(bot)
    (buy,) = await bot.say(USER, f"/buy {CODE} 3 {limit}")
    await bot.press_button(USER, buy, 0)
    order_no = (await journal(bot))[-1].kis_order_no
    text = f"/cancel {order_no}" if change == "cancel" else f"/modify {order_no} {resting_price(bot, 3)}"
    (card,) = await bot.say(USER, text)
    bot.sim.faults.rate_limit_next, bot.sim.faults.paths = 1, (p.PATH_ORDER_RVSECNCL,)
    await bot.press_button(USER, card, 0)
    injected = bot.sim.faults.injected.get("rate_limit", 0)
    bot.sim.faults.clear()
    assert injected == 1
    done = "Cancellation accepted" if change == "cancel" else "Revision accepted"
    assert done in bot.current(card)["text"], bot.current(card)["text"]
    assert (await journal(bot))[-1].status == "accepted"


async def test_a_fill_caught_up_is_told_for_todays_order_only_not_for_an_earlier_days_with_its_number(
        bot: BotHarness) -> None:
    """A replica taking a user's notices over catches up the fills made meanwhile. Yesterday's limit order (never
    filled, still 'accepted' in the journal) had the number KIS gave today's order, which filled unheard: one
    fill, told once, for today's order."""
    assert bot.runtime is not None
    runtime = bot.runtime
    number = next_order_no(bot)
    await yesterdays_order(bot, number, status="accepted",
                           then=dt.datetime.combine(dt.datetime.now(KST).date(), dt.time(), KST) - dt.timedelta(
                               seconds=30))
    exchange = bot.sim.exchange
    listeners, exchange._order_listeners = exchange._order_listeners, []  # its fill notice is lost
    try:
        (card,) = await bot.say(USER, f"/buy {CODE} 1")
        await bot.press_button(USER, card, 0)
    finally:
        exchange._order_listeners = listeners
    assert "Order accepted" in bot.current(card)["text"]
    assert await catch_up_fills(runtime.db, runtime.accounts, runtime.users, USER["id"], lambda: None) == 1
    rows = await journal(bot)
    assert [(r.kis_order_no, r.status) for r in rows] == [(number, "accepted"), (number, "filled")]


async def test_a_fill_before_a_slow_reply_is_journalled_on_its_order_once_the_number_comes(bot: BotHarness) -> None:
    """KIS answers a market order seconds after it filled (the fill notice comes first): the fill waits for the
    order's number and is journalled on it, not pushed as an order placed elsewhere and left out of the journal."""
    assert bot.runtime is not None
    (card,) = await bot.say(USER, f"/buy {CODE} 1")
    bot.sim.faults.response_delay_seconds, bot.sim.faults.paths = 6.0, (p.PATH_ORDER_CASH,)
    await bot.press_button(USER, card, 0)
    bot.sim.faults.clear()
    assert "Order accepted" in bot.current(card)["text"]
    number = (await journal(bot))[-1].kis_order_no
    fill = await bot.wait_for_message(USER["id"], "Filled", 60)  # a deadline, not a measure: a push may be retried
    assert number and number in fill["text"]

    await newest_filled(bot)
    assert bot.count_messages(USER["id"], "Filled") == 1


async def test_a_lost_cancel_reply_is_confirmed_by_the_cancellation_in_the_days_list(bot: BotHarness) -> None:
    """The cancel took effect but its reply was lost: the day's list shows the cancellation (a row pointing
    back to the order): the card says so, with the cancellation's own number; nothing is sent again."""
    assert bot.runtime is not None
    (buy,) = await bot.say(USER, f"/buy {CODE} 3 {resting_price(bot)}")
    await bot.press_button(USER, buy, 0)
    order_no = (await journal(bot))[-1].kis_order_no
    (cancel_card,) = await bot.say(USER, f"/cancel {order_no}")
    bot.sim.faults.error_5xx_after_next, bot.sim.faults.paths = 1, (p.PATH_ORDER_RVSECNCL,)
    await bot.press_button(USER, cancel_card, 0)
    bot.sim.faults.clear()
    cancel = (await journal(bot))[-1]
    text = bot.current(cancel_card)["text"]
    assert "Cancellation accepted" in text and cancel.status == "accepted", text
    assert cancel.kis_order_no and cancel.kis_order_no != order_no and cancel.kis_order_no in text
    (orders,) = await bot.say(USER, "/orders")
    assert order_no not in orders["text"]


async def test_a_reconciliation_pass_right_after_a_claim_leaves_the_card_to_its_submitter(bot: BotHarness) -> None:
    """A reconciliation pass that runs just as a press wins its card (the claim committed, the order about to be
    sent) must not tell the journal row "not placed, never sent": the order is sent the next moment, and the
    trader would hear both "Not placed" and "Order accepted"."""
    assert bot.runtime is not None
    orders, reconciler = bot.runtime.orders, bot.runtime.reconciler
    claim = orders.cards.claim

    async def claim_then_a_pass(*args: object, **kwargs: object) -> object:
        won = await claim(*args, **kwargs)  # type: ignore[arg-type]
        await reconciler.run_once()  # the background pass, at the moment the claim's transaction committed
        return won

    orders.cards.claim = claim_then_a_pass  # type: ignore[method-assign]
    try:
        (card,) = await bot.say(USER, f"/buy {CODE} 1")
        await bot.press_button(USER, card, 0)
    finally:
        orders.cards.claim = claim  # type: ignore[method-assign]
    assert bot.sim.orders_accepted == 1
    assert "Order accepted" in bot.current(card)["text"]
    (row,) = await journal(bot)
    assert row.status in ("accepted", "filled") and reconciler.settled.get("not_placed", 0) == 0
    await asyncio.sleep(0.5)  # what the sender has in hand goes out
    assert bot.count_messages(USER["id"], "Not placed") == 0


def test_a_fill_is_matched_within_its_trading_day_a_us_one_from_kis_daytime_session_on() -> None:
    """A US trading day runs from KIS's daytime session (10:00 KST, the New York day before) to 07:00 KST the
    next day: an order sent at 10:30 KST and filled at 14:30 KST (another New York date) is of the same day."""
    from chatbot.service.fills import _trading_day_start

    def kst(day: int, hour: int, minute: int = 0) -> dt.datetime:
        return dt.datetime(2026, 12, day, hour, minute, tzinfo=KST)

    assert _trading_day_start("US", kst(2, 14, 30)) == kst(2, 7) <= kst(2, 10, 30)
    assert _trading_day_start("US", kst(3, 6, 59)) == kst(2, 7)
    assert _trading_day_start("KRX", kst(2, 15, 29)) == kst(2, 0)


async def test_a_fill_missed_while_the_notice_connection_was_down_is_told_when_it_comes_back(bot: BotHarness) -> None:
    """The execution-notice WebSocket dropped; the order filled meanwhile (its notice went nowhere). When the
    connection comes back, KIS's list of the day's orders says what filled: journalled and told, once."""
    assert bot.runtime is not None
    limit = resting_price(bot)
    (buy,) = await bot.say(USER, f"/buy {CODE} 3 {limit}")
    await bot.press_button(USER, buy, 0)
    number = (await journal(bot))[-1].kis_order_no
    assert number and USER["id"] in bot.runtime.fills.watched()
    exchange = bot.sim.exchange
    listeners, exchange._order_listeners = exchange._order_listeners, []  # the notice is lost with the connection
    try:
        bot.sim.set_price(CODE, limit - p.tick_size(limit))  # it fills
    finally:
        exchange._order_listeners = listeners
    assert (await journal(bot))[-1].status == "accepted"
    await bot.sim.control("drop-websockets", {})
    fill = await bot.wait_for_message(USER["id"], "Filled", 60)
    assert number in fill["text"]

    await newest_filled(bot)
    assert bot.count_messages(USER["id"], "Filled") == 1


async def test_a_fill_made_while_the_bot_was_down_is_told_when_it_starts_again(bot: BotHarness) -> None:
    """The bot stopped with a revised order resting; it filled while no process listened. Started again, the bot
    asks KIS what filled and tells it, once — a revision's fill like an order's."""
    assert bot.runtime is not None
    (buy,) = await bot.say(USER, f"/buy {CODE} 3 {resting_price(bot)}")
    await bot.press_button(USER, buy, 0)
    order_no = (await journal(bot))[-1].kis_order_no
    new_price = resting_price(bot, 3)
    (card,) = await bot.say(USER, f"/modify {order_no} {new_price}")
    await bot.press_button(USER, card, 0)
    revision = (await journal(bot))[-1]
    assert revision.action == "revise" and revision.status == "accepted" and revision.kis_order_no
    exchange = bot.sim.exchange
    listeners, exchange._order_listeners = exchange._order_listeners, []  # nobody listens: the bot is down
    try:
        bot.sim.set_price(CODE, new_price - p.tick_size(new_price))  # the revised order fills
    finally:
        exchange._order_listeners = listeners
    await bot.restart()
    fill = await bot.wait_for_message(USER["id"], "Filled", 60)
    assert revision.kis_order_no in fill["text"]

    await newest_filled(bot)
    assert bot.count_messages(USER["id"], "Filled") == 1
