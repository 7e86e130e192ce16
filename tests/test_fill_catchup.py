"""Fills made while no replica listened (service/fill_catchup.py), both markets side by side: each market's
open orders are matched against its own listing (KIS numbers domestic and US orders in books of their own)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import select

from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import protocol as p
from chatbot.kis.errors import KisServerError, KisTransportError
from chatbot.kis.realtime import RealtimeClient
from chatbot.kis.us_broker import UsBroker
from chatbot.service.fill_catchup import catch_up_fills
from chatbot.storage.tables import OrderJournalRow, OutboxRow
from tests.harness import BotHarness, confirm
from tests.test_order_review import wait_for

ALICE = BotApiEmulator.user(9401, "ko")
CODE = "005930"


@pytest.fixture
def bot(us_open_bot: BotHarness) -> BotHarness:
    return us_open_bot


async def test_domestic_and_us_fills_missed_by_the_feed_are_caught_up_each_in_its_currency(bot: BotHarness) -> None:
    runtime = bot.runtime
    assert runtime is not None
    state = bot.sim.market.get(CODE)
    assert state is not None
    limit = p.round_down_to_tick(state.limits[0] + 2 * p.tick_size(state.price))
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    assert "주문 접수" in (await confirm(bot, ALICE, f"/buy {CODE} 3 {limit}"))["text"]  # rests below the market
    assert "주문 접수" in (await confirm(bot, ALICE, "/buy AAPL 2 180.00"))["text"]
    exchange, trading = bot.sim.exchange, bot.sim.us_trading
    domestic, us = exchange._order_listeners, trading._listeners
    exchange._order_listeners, trading._listeners = [], []  # the fill notices are lost (no session listened)
    try:
        bot.sim.set_price(CODE, limit - p.tick_size(limit))
        bot.sim.set_us_price("AAPL", Decimal("179.50"))
    finally:
        exchange._order_listeners, trading._listeners = domestic, us
    assert await catch_up_fills(runtime.db, runtime.accounts, runtime.users, ALICE["id"], lambda: None) == 2
    async with runtime.db.session() as session:
        rows = {r.market: r for r in (await session.exec(select(OrderJournalRow))).all()}
        pushes = {x.payload.get("currency", "KRW"): x.payload for x in
                  (await session.exec(select(OutboxRow).where(OutboxRow.kind == "fill"))).all()}
    assert rows["KRX"].status == rows["US"].status == "filled"
    assert pushes["KRW"]["quantity"] == 3 and pushes["KRW"]["price"] == limit, pushes
    assert pushes["USD"]["quantity"] == 2 and pushes["USD"]["price"] == 1_800_000, pushes
    assert await catch_up_fills(runtime.db, runtime.accounts, runtime.users, ALICE["id"], lambda: None) == 0


async def _fills_lost(bot: BotHarness) -> int:
    """A domestic and a US order of Alice's fill while no session listens (their notices lost); the domestic
    order's limit."""
    state = bot.sim.market.get(CODE)
    assert state is not None
    limit = p.round_down_to_tick(state.limits[0] + 2 * p.tick_size(state.price))
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    assert "주문 접수" in (await confirm(bot, ALICE, f"/buy {CODE} 3 {limit}"))["text"]
    assert "주문 접수" in (await confirm(bot, ALICE, "/buy AAPL 2 180.00"))["text"]
    exchange, trading = bot.sim.exchange, bot.sim.us_trading
    domestic, us = exchange._order_listeners, trading._listeners
    exchange._order_listeners, trading._listeners = [], []
    try:
        bot.sim.set_price(CODE, limit - p.tick_size(limit))
        bot.sim.set_us_price("AAPL", Decimal("179.50"))
    finally:
        exchange._order_listeners, trading._listeners = domestic, us
    return limit


async def _told(bot: BotHarness) -> dict[str, int]:
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        pushes = (await session.exec(select(OutboxRow).where(OutboxRow.kind == "fill"))).all()
    return {x.payload.get("currency", "KRW"): int(x.payload["quantity"]) for x in pushes}


async def test_a_us_fill_is_caught_up_after_kis_us_orders_failed_once(
        bot: BotHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """KIS's US orders could not be read at the catch-up (the domestic ones could): the domestic fill is told and
    the US one on the next try; it was left out and the catch-up done, so it was never told."""
    runtime = bot.runtime
    assert runtime is not None
    await _fills_lost(bot)
    executions, failures = UsBroker.executions, [KisTransportError("US orders unavailable")]

    async def failing_once(self: UsBroker, day: dt.date) -> Any:
        if failures:
            raise failures.pop()
        return await executions(self, day)

    monkeypatch.setattr(UsBroker, "executions", failing_once)
    runtime.fills.max_pause = 0.0
    assert ALICE["id"] in runtime.fills.watched()
    await runtime.fills.catch_up(ALICE["id"])
    assert not failures and await _told(bot) == {"KRW": 3, "USD": 2}


async def test_the_catch_up_keeps_trying_while_kis_fails(bot: BotHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """KIS's list fails longer than six tries (an outage past a minute): the catch-up tries on and tells the fills
    once KIS answers; it gave up after six and they were never told."""
    runtime = bot.runtime
    assert runtime is not None
    await _fills_lost(bot)
    account = await runtime.accounts.for_user(ALICE["id"])
    listing, failing = account.broker.executions, 8

    async def down_a_while(day: Any) -> Any:
        nonlocal failing
        if failing:
            failing -= 1
            raise KisServerError("KIS down")
        return await listing(day)

    account.broker.executions = down_a_while  # type: ignore[method-assign]
    runtime.fills.max_pause = 0.0
    try:
        await runtime.fills.catch_up(ALICE["id"])
    finally:
        account.broker.executions = listing  # type: ignore[method-assign]
    assert failing == 0 and await _told(bot) == {"KRW": 3, "USD": 2}


async def test_a_failed_fill_notice_subscription_is_made_again(
        bot: BotHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Subscribing to Alice's fill notices failed once (no approval key issued, or KIS slow to acknowledge): she
    was left counted as watched without a subscription, every later watch returned at once, and her fills went
    untold. The subscription is undone and made again; her fill is then told."""
    runtime = bot.runtime
    assert runtime is not None
    fills = runtime.fills
    fills.max_pause = 0.0
    subscribe, failures = RealtimeClient.subscribe, [KisTransportError("approval key not issued")]

    async def failing_once(self: RealtimeClient, tr_id: str, tr_key: str) -> None:
        if tr_id == fills.notice_tr and failures:
            raise failures.pop()
        await subscribe(self, tr_id, tr_key)

    monkeypatch.setattr(RealtimeClient, "subscribe", failing_once)
    state = bot.sim.market.get(CODE)
    assert state is not None
    limit = p.round_down_to_tick(state.limits[0] + 2 * p.tick_size(state.price))
    assert "주문 접수" in (await confirm(bot, ALICE, f"/buy {CODE} 3 {limit}"))["text"]
    assert not failures

    def listening() -> bool:
        """Subscribed again, KIS's acknowledgement in and the catch-up after it done. (A reference taken is not
        enough: a fill made before KIS registered the subscription is told by that catch-up, not by a notice.)"""
        client = fills._clients.get(ALICE["id"])
        return (client is not None and any(key[0] == fills.notice_tr for key in client.subscriptions)
                and not any(task.get_name().startswith("fill-watch-again") for task in fills._tasks))

    await wait_for(listening, 60)  # a deadline, not a measure
    recorded = fills.recorded
    bot.sim.set_price(CODE, limit - p.tick_size(limit))
    await wait_for(lambda: fills.recorded > recorded, 60)
    assert await _told(bot) == {"KRW": 3}
