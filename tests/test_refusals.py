"""An order KIS accepted, refused afterwards by the exchange (the execution notice's RFUS_YN=1): the card
said "accepted", so the refusal is journalled (``rejected``) and told once — on the real PTB Application,
the fake Bot API and the simulator (its ``refuse`` control: the exchange refuses an accepted order)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import select

from chatbot.alerts.notices import OrderRefused, decode
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import overseas_protocol as o
from chatbot.kis import protocol as p
from chatbot.storage.tables import OrderEventRow, OrderJournalRow, OutboxRow
from chatbot.telegram.notifier import refused_text
from tests.harness import BotHarness, confirm

ALICE = BotApiEmulator.user(9301, "ko")
BOB = BotApiEmulator.user(9302, "en")
CODE = "005930"


@pytest.fixture
def bot(us_open_bot: BotHarness) -> BotHarness:
    return us_open_bot


async def journal(bot: BotHarness, market: str) -> list[OrderJournalRow]:
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        return list((await session.exec(select(OrderJournalRow).where(OrderJournalRow.market == market)
                                        .order_by(OrderJournalRow.id))).all())  # type: ignore[arg-type]


async def refusal_pushes(bot: BotHarness) -> list[OutboxRow]:
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        return list((await session.exec(select(OutboxRow).where(OutboxRow.kind == OrderRefused.KIND))).all())


async def until(check: Callable[[], Any], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout)


def resting_limit(bot: BotHarness) -> int:
    state = bot.sim.market.get(CODE)
    assert state is not None
    return p.round_down_to_tick(state.limits[0] + 2 * p.tick_size(state.price))


def notice_listening(bot: BotHarness) -> bool:
    trs = set(p.WS_NOTICE_TRS) | set(o.WS_US_NOTICE_TRS)
    return any(tr in trs for server in bot.sim.realtime.values() for s in server.sessions for tr, _ in s.subscriptions)


def test_a_refusal_notice_reads_back_and_renders_in_both_languages() -> None:
    notice = OrderRefused("en", "0000001234", "AAPL", "Apple", "buy", 2, 1_800_000, "233001", "price limit",
                          currency="USD")
    assert decode(notice.KIND, json.loads(json.dumps(notice.payload()))) == notice
    assert len(notice.KIND) <= 12  # outbox.kind is VARCHAR(12)
    en = refused_text(notice)
    assert "Order refused" in en and "$180.00" in en and "AAPL" in en and "price limit" in en, en
    ko = refused_text(OrderRefused("ko", "0000001234", CODE, "삼성전자", "sell", 3, 70_000))
    assert "주문 거부" in ko and "삼성전자" in ko and "3주" in ko and "₩70,000" in ko and "사유" not in ko, ko


async def test_a_domestic_order_refused_after_acceptance_is_told_once_and_leaves_the_open_orders(
        bot: BotHarness) -> None:
    runtime = bot.runtime
    assert runtime is not None
    limit = resting_limit(bot)
    assert "주문 접수" in (await confirm(bot, ALICE, f"/buy {CODE} 4 {limit}"))["text"]
    assert "주문 접수" in (await confirm(bot, ALICE, f"/buy {CODE} 1 {limit}"))["text"]  # stays open
    refused_row, _ = await journal(bot, "KRX")
    assert refused_row.status == "accepted" and refused_row.kis_order_no
    (before,) = await bot.say(ALICE, "/orders")
    assert refused_row.kis_order_no.lstrip("0") in before["text"], before["text"]
    await until(lambda: notice_listening(bot))

    await bot.sim.control("refuse", {"order_no": refused_row.kis_order_no})
    push = await bot.wait_for_message(ALICE["id"], "주문 거부")
    assert "삼성전자" in push["text"] and "4주" in push["text"] and refused_row.kis_order_no in push["text"], push["text"]
    (row, other) = await journal(bot, "KRX")
    assert row.status == "rejected" and other.status == "accepted"
    async with runtime.db.session() as session:
        events = (await session.exec(select(OrderEventRow).where(OrderEventRow.journal_id == row.id))).all()
    assert [e.status for e in events][-1] == "rejected"
    (after,) = await bot.say(ALICE, "/orders")
    assert refused_row.kis_order_no.lstrip("0") not in after["text"], after["text"]
    assert (other.kis_order_no or "-").lstrip("0") in after["text"], after["text"]

    # A restart, then KIS replays the refusal (a reconnect resends it): nothing is told twice.
    await bot.restart()
    runtime = bot.runtime
    assert runtime is not None
    await until(lambda: notice_listening(bot))
    order = next(x for a in bot.sim.exchange.accounts.values() for x in a.orders
                 if x.order_no == refused_row.kis_order_no)
    seen = runtime.fills.refusals
    bot.sim.exchange._emit("refused", order, order.refused_qty, order.price, "100000")
    await until(lambda: runtime.fills.refusals > seen)
    assert len(await refusal_pushes(bot)) == 1
    assert bot.count_messages(ALICE["id"], "주문 거부") == 1
    with pytest.raises(KeyError):  # refused already: no open order by that number, nothing changes
        await bot.sim.control("refuse", {"order_no": refused_row.kis_order_no})


async def test_a_us_order_refused_after_acceptance_is_told_once_in_dollars(bot: BotHarness) -> None:
    runtime = bot.runtime
    assert runtime is not None
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    assert "accepted" in (await confirm(bot, BOB, "/buy AAPL 2 180.00"))["text"].lower()  # rests below
    (row,) = await journal(bot, "US")
    assert row.status == "accepted" and row.kis_order_no
    await until(lambda: notice_listening(bot))
    await bot.sim.control("refuse", {"order_no": row.kis_order_no, "market": "US"})
    push = await bot.wait_for_message(BOB["id"], "Order refused")
    assert "AAPL" in push["text"] and "$180.00" in push["text"] and row.kis_order_no in push["text"], push["text"]
    await until(lambda: runtime.fills.refusals > 0)
    (row,) = await journal(bot, "US")
    assert row.status == "rejected"
    (orders,) = await bot.say(BOB, "/orders")
    assert "AAPL" not in orders["text"], orders["text"]
    # the same notice again (a replay): already told
    account = next(a for a in bot.sim.us_trading.accounts.values() if a.find(row.kis_order_no))
    order = account.find(row.kis_order_no)
    assert order is not None
    bot.sim.us_trading._emit("refused", order, order.refused_qty, order.price, bot.sim.now())
    await until(lambda: runtime.fills.refusals > 1)
    assert len(await refusal_pushes(bot)) == 1 and bot.count_messages(BOB["id"], "Order refused") == 1
