"""Fills made while no replica listened (service/fill_catchup.py), both markets side by side: each market's
open orders are matched against its own listing (KIS numbers domestic and US orders in books of their own)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlmodel import select

from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import protocol as p
from chatbot.service.fill_catchup import catch_up_fills
from chatbot.storage.tables import OrderJournalRow, OutboxRow
from tests.harness import BotHarness, confirm

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
