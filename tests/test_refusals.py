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
from chatbot.broker import Fill, OrderSide
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import overseas_protocol as o
from chatbot.kis import protocol as p
from chatbot.markets.money import Money
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


def test_a_refused_revision_notice_reads_back_and_says_how_the_order_stands() -> None:
    notice = OrderRefused("ko", "0000001002", CODE, "삼성전자", "buy", 4, 2_510, "100000", change="revise",
                          original_order_no="0000001001", original_open=True, original_remaining=4,
                          original_price=2_500)
    assert decode(notice.KIND, json.loads(json.dumps(notice.payload()))) == notice
    ko = refused_text(notice)
    assert "정정 거부" in ko and "0000001001" in ko and "그대로 유효" in ko and "₩2,500" in ko, ko
    for is_open, needle in ((False, "no longer open"), (None, "Could not check")):
        en = refused_text(OrderRefused("en", "0000001003", CODE, "Samsung", "sell", 2, 0, change="cancel",
                                       original_order_no="0000001001", original_open=is_open))
        assert "Cancellation refused" in en and needle in en and "0000001001" in en, en
    plain = OrderRefused("en", "0000001004", CODE, "Samsung", "sell", 2, 70_000)
    assert "change" not in plain.payload() and decode(plain.KIND, plain.payload()) == plain  # as stored before


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


# -- a revision or cancellation refused: it did not take, and the trader learns how the order stands ----------
async def resting_order(bot: BotHarness, user: dict[str, Any], quantity: int = 4) -> tuple[str, int]:
    limit = resting_limit(bot)
    card = await confirm(bot, user, f"/buy {CODE} {quantity} {limit}")
    assert "주문 접수" in card["text"] or "accepted" in card["text"].lower(), card["text"]
    order_no = (await journal(bot, "KRX"))[-1].kis_order_no
    assert order_no
    return order_no, limit


async def test_a_revision_refused_after_acceptance_is_told_with_the_order_still_working(bot: BotHarness) -> None:
    """The card said "revision accepted"; then the exchange refuses the revision (its notice: RFUS_YN=1,
    RCTF_CLS=1, under the revision's number). The trader is told the revision did not take and that the
    original order still works, with what is left at its old price; the journal's revise row is rejected."""
    order_no, limit = await resting_order(bot, ALICE)
    new_price = limit + 2 * p.tick_size(limit)
    card = await confirm(bot, ALICE, f"/modify {order_no} {new_price}")
    assert "정정 접수" in card["text"], card["text"]
    revision = (await journal(bot, "KRX"))[-1]
    assert revision.action == "revise" and revision.status == "accepted" and revision.kis_order_no
    await until(lambda: notice_listening(bot))

    await bot.sim.control("refuse-change", {"order_no": revision.kis_order_no})
    push = await bot.wait_for_message(ALICE["id"], "정정 거부")
    text = push["text"]
    assert order_no in text and revision.kis_order_no in text and "정정되지 않았습니다" in text, text
    assert "그대로 유효" in text and "잔량 4주" in text and f"₩{limit:,}" in text, text
    assert "체결되지 않으며" not in text, text  # not the "order refused, will not fill" push
    rows = await journal(bot, "KRX")
    assert [(r.action, r.status) for r in rows] == [("order", "accepted"), ("revise", "rejected")]
    (orders,) = await bot.say(ALICE, "/orders")
    assert order_no in orders["text"] and f"{limit:,}" in orders["text"] and "잔량 4" in orders["text"]
    assert revision.kis_order_no not in orders["text"], orders["text"]


async def test_a_cancellation_refused_after_acceptance_is_told_in_english_once(bot: BotHarness) -> None:
    runtime = bot.runtime
    assert runtime is not None
    order_no, limit = await resting_order(bot, BOB, quantity=3)
    card = await confirm(bot, BOB, f"/cancel {order_no}")
    assert "Cancellation accepted" in card["text"], card["text"]
    cancel = (await journal(bot, "KRX"))[-1]
    assert cancel.action == "cancel" and cancel.kis_order_no
    await until(lambda: notice_listening(bot))

    await bot.sim.control("refuse-change", {"order_no": cancel.kis_order_no})
    push = await bot.wait_for_message(BOB["id"], "Cancellation refused")
    text = push["text"]
    assert order_no in text and "Nothing was cancelled" in text and "still working" in text and "3 left" in text, text
    assert f"@ ₩{limit:,}" in text, text
    assert (await journal(bot, "KRX"))[-1].status == "rejected"
    (orders,) = await bot.say(BOB, "/orders")
    assert order_no.lstrip("0") in orders["text"], orders["text"]
    # the notice again (a reconnect replays it): told once
    record = next(x for a in bot.sim.exchange.accounts.values() for x in a.orders if x.order_no == cancel.kis_order_no)
    seen = runtime.fills.refusals
    bot.sim.exchange._emit("change_refused", record, record.quantity, record.price, "100000")
    await until(lambda: runtime.fills.refusals > seen)
    assert len(await refusal_pushes(bot)) == 1 and bot.count_messages(BOB["id"], "Cancellation refused") == 1
    with pytest.raises(KeyError):  # refused already: nothing changes
        await bot.sim.control("refuse-change", {"order_no": cancel.kis_order_no})


async def test_a_revise_or_cancel_kis_refuses_says_how_the_order_stands(bot: BotHarness) -> None:
    """KIS refuses the request itself (synchronously): the card says it did not take and how the order
    stands — still working (a revision of a stock halted since its card was made: a revision beyond the cash
    is refused before its card now), or no longer open (a cancel of an order that filled meanwhile)."""
    state = bot.sim.market.get(CODE)
    assert state is not None
    limit = resting_limit(bot)
    quantity = 9_000_000 // limit  # about 90% of the paper cash
    card = await confirm(bot, ALICE, f"/buy {CODE} {quantity} {limit}")
    assert "주문 접수" in card["text"], card["text"]
    order_no = (await journal(bot, "KRX"))[-1].kis_order_no
    assert order_no
    (revise,) = await bot.say(ALICE, f"/modify {order_no} {p.round_up_to_tick(limit + p.tick_size(limit))}")
    bot.sim.upsert_listing({"code": CODE, "halted": True})  # meanwhile: KIS refuses the revision
    await bot.press_button(ALICE, revise, 0)
    bot.sim.upsert_listing({"code": CODE, "halted": False})
    text = bot.current(revise)["text"]
    assert "KIS가 거부" in text and "정정되지 않았습니다" in text and "그대로 유효" in text, text
    assert f"잔량 {quantity:,}주" in text and f"₩{limit:,}" in text, text

    (cancel_card,) = await bot.say(ALICE, f"/cancel {order_no}")
    sim_account = next(a for a in bot.sim.exchange.accounts.values() if a.find(order_no))
    order = sim_account.find(order_no)
    assert order is not None
    bot.sim.exchange._fill(sim_account, order, order.remaining, limit, bot.sim.exchange._stamp()[1])  # meanwhile
    await bot.press_button(ALICE, cancel_card, 0)
    text = bot.current(cancel_card)["text"]
    assert "KIS가 거부" in text and "취소되지 않았습니다" in text and "더 이상 미체결이 아닙니다" in text, text


async def test_a_refusal_under_a_number_an_older_order_had_is_told_too(bot: BotHarness) -> None:
    """KIS numbers a day's orders from the start again (a small ODNO, unique within the day only): a refusal
    under a number an older journalled order had (refused and told already) was matched to that older row
    (found "not open": not told) and its outbox key (user and number only, kept forever) was taken: the
    new order's refusal was never told. Now the newest row with the number is the order, and the key names
    the journal row."""
    runtime = bot.runtime
    assert runtime is not None
    limit = resting_limit(bot)
    assert "주문 접수" in (await confirm(bot, ALICE, f"/buy {CODE} 4 {limit}"))["text"]
    (old,) = await journal(bot, "KRX")
    assert old.kis_order_no
    await until(lambda: notice_listening(bot))
    await bot.sim.control("refuse", {"order_no": old.kis_order_no})
    await bot.wait_for_message(ALICE["id"], "주문 거부")
    # "the next day": the simulator's book gives the next order the same number
    bot.sim.exchange.next_order_no = int(old.kis_order_no) - 1
    assert "주문 접수" in (await confirm(bot, ALICE, f"/buy {CODE} 2 {limit}"))["text"]
    _, new = await journal(bot, "KRX")
    assert new.kis_order_no == old.kis_order_no and new.status == "accepted", "the repro needs the same number"
    record = [x for a in bot.sim.exchange.accounts.values() for x in a.orders if x.order_no == new.kis_order_no][-1]
    assert record.quantity == 2
    record.refused_qty += record.remaining
    seen = runtime.fills.refusals
    bot.sim.exchange._emit("refused", record, record.refused_qty, record.price, "100000")
    await until(lambda: runtime.fills.refusals > seen)
    await until(lambda: bot.count_messages(ALICE["id"], "주문 거부") >= 2)
    assert [r.status for r in await journal(bot, "KRX")] == ["rejected", "rejected"]
    assert len(await refusal_pushes(bot)) == 2


# -- US: a revision or cancellation refused after acceptance is told too (the US notice's RCTF_CLS) ------------
async def us_resting_order(bot: BotHarness, user: dict[str, Any], quantity: int = 3) -> str:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    card = await confirm(bot, user, f"/buy AAPL {quantity} 180.00")  # rests below the market
    assert "주문 접수" in card["text"] or "accepted" in card["text"].lower(), card["text"]
    order_no = (await journal(bot, "US"))[-1].kis_order_no
    assert order_no
    return order_no


async def test_a_us_cancellation_refused_after_acceptance_is_told_once_with_the_order_still_working(
        bot: BotHarness) -> None:
    """The card said "cancellation accepted"; the exchange then refuses the cancellation (H0GSCNI0: RFUS_YN=1,
    RCTF_CLS=2, under the cancellation's number). Before, a US change's refusal was only logged: the trader
    believed the order cancelled while it still worked. Now told once, with the order still working."""
    runtime = bot.runtime
    assert runtime is not None
    order_no = await us_resting_order(bot, BOB)
    card = await confirm(bot, BOB, f"/cancel {order_no}")
    assert "cancellation accepted" in card["text"].lower(), card["text"]
    cancel = (await journal(bot, "US"))[-1]
    assert cancel.action == "cancel" and cancel.status == "accepted" and cancel.kis_order_no
    await until(lambda: notice_listening(bot))

    await bot.sim.control("refuse-change", {"order_no": cancel.kis_order_no, "market": "US"})
    push = await bot.wait_for_message(BOB["id"], "Cancellation refused")
    text = push["text"]
    assert order_no in text and "AAPL" in text and "Nothing was cancelled" in text, text
    assert "still working" in text and "3 left" in text and "$180.00" in text, text
    assert [(r.action, r.status) for r in await journal(bot, "US")] == [("order", "accepted"), ("cancel", "rejected")]
    (orders,) = await bot.say(BOB, "/orders")
    assert "AAPL" in orders["text"] and "$180.00" in orders["text"], orders["text"]
    # the notice again (a reconnect replays it): told once
    account = next(a for a in bot.sim.us_trading.accounts.values() if a.find(cancel.kis_order_no))
    record = account.find(cancel.kis_order_no)
    assert record is not None
    seen = runtime.fills.refusals
    bot.sim.us_trading._emit("change_refused", record, record.quantity, record.price, bot.sim.now())
    await until(lambda: runtime.fills.refusals > seen)
    assert len(await refusal_pushes(bot)) == 1 and bot.count_messages(BOB["id"], "Cancellation refused") == 1
    with pytest.raises(KeyError):  # refused already: nothing changes
        await bot.sim.control("refuse-change", {"order_no": cancel.kis_order_no, "market": "US"})


async def test_a_us_revision_refused_after_acceptance_is_told_in_korean(bot: BotHarness) -> None:
    order_no = await us_resting_order(bot, ALICE, quantity=2)
    card = await confirm(bot, ALICE, f"/modify {order_no} 181.00")
    assert "정정 접수" in card["text"], card["text"]
    revision = (await journal(bot, "US"))[-1]
    assert revision.action == "revise" and revision.status == "accepted" and revision.kis_order_no
    await until(lambda: notice_listening(bot))

    await bot.sim.control("refuse-change", {"order_no": revision.kis_order_no, "market": "US"})
    push = await bot.wait_for_message(ALICE["id"], "정정 거부")
    text = push["text"]
    assert order_no in text and revision.kis_order_no in text and "정정되지 않았습니다" in text, text
    assert "그대로 유효" in text and "잔량 2주" in text and "$180.00" in text, text
    assert [(r.action, r.status) for r in await journal(bot, "US")] == [("order", "accepted"), ("revise", "rejected")]
    (orders,) = await bot.say(ALICE, "/orders")
    assert "$180.00" in orders["text"] and "$181.00" not in orders["text"], orders["text"]


async def test_a_refusal_is_a_changes_only_when_the_notice_says_so(bot: BotHarness) -> None:
    """A cancel row may carry the order's own number (a cancellation journalled under it): a refusal notice
    under that number without a change flag (RCTF_CLS 0) is the order's, told as an order refused; it was
    taken for the cancellation's (the cancel row's action decided) and the order's working row was left as
    if it worked on. And a notice flagged as a change under an order's own number leaves the order's row open."""
    runtime = bot.runtime
    assert runtime is not None
    order_no, _ = await resting_order(bot, ALICE)
    (order,) = await journal(bot, "KRX")
    async with runtime.db.write() as session:
        session.add(OrderJournalRow.model_validate(order.model_dump(exclude={"id"}) | {
            "idempotency_key": "cancel-same-number", "action": "cancel", "original_order_no": order_no}))
    await until(lambda: notice_listening(bot))
    await bot.sim.control("refuse", {"order_no": order_no})  # the order itself refused: RCTF_CLS 0
    push = await bot.wait_for_message(ALICE["id"], "거부")
    assert "주문 거부" in push["text"] and "취소 거부" not in push["text"], push["text"]
    assert [(r.action, r.status) for r in await journal(bot, "KRX")] == [("order", "rejected"), ("cancel", "accepted")]

    # a cancellation's refusal (RCTF_CLS 2) under a working US order's own number: told, the order's row stays open
    us_no = await us_resting_order(bot, BOB)
    seen = runtime.fills.refusals
    await runtime.fills._record_refusal(BOB["id"], BOB["id"], "en", Fill(
        us_no, "", "AAPL", OrderSide.BUY, 3, Money.usd("180.00"), 3, "233000", refused=True, revise_cancel="2"))
    assert runtime.fills.refusals > seen
    assert [(r.action, r.status) for r in await journal(bot, "US")] == [("order", "accepted")]
