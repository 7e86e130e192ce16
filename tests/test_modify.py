"""/modify (정정) end to end: real PTB Application ↔ fake Bot API ↔ service ↔ simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import protocol as p
from chatbot.storage.tables import OrderJournalRow
from tests.conftest import SQLITE_ONLY
from tests.harness import BotHarness

ALICE = BotApiEmulator.user(1001, "ko")
BOB = BotApiEmulator.user(1002, "en")
CODE = "005930"


@pytest.fixture
async def bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url)
    await harness.start()
    yield harness
    assert not harness.api.unanswered_callbacks(), "every callback query must be answered"
    await harness.stop()


async def journal(bot: BotHarness) -> list[OrderJournalRow]:
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        return list((await session.exec(select(OrderJournalRow).order_by(OrderJournalRow.id))).all())


def far_below(bot: BotHarness, ticks: int) -> int:
    """A limit buy price far from the market (near the lower limit): it rests."""
    state = bot.sim.market.get(CODE)
    assert state is not None
    return p.round_down_to_tick(state.limits[0] + ticks * p.tick_size(state.limits[0]))


async def resting_buy(bot: BotHarness, quantity: int = 4, ticks: int = 2) -> tuple[str, int]:
    limit = far_below(bot, ticks)
    (card,) = await bot.say(ALICE, f"/buy {CODE} {quantity} {limit}")
    await bot.press_button(ALICE, card, 0)
    assert "주문 접수" in bot.current(card)["text"]
    order_no = (await journal(bot))[-1].kis_order_no
    assert order_no
    return order_no, limit


async def test_modify_to_new_price_then_orders_shows_new_price_and_number(bot: BotHarness) -> None:
    order_no, old = await resting_buy(bot)
    new = far_below(bot, 5)
    (card,) = await bot.say(ALICE, f"/modify {order_no} {new:,}")
    assert "정정 확인" in card["text"] and f"{old:,} → <b>{new:,}</b>" not in card["text"]  # HTML is rendered away
    assert f"{old:,}" in card["text"] and f"{new:,}" in card["text"] and order_no in card["text"]
    assert bot.sim.orders_accepted == 1  # nothing sent before the press
    await bot.press_button(ALICE, card, 0)
    final = bot.current(card)["text"]
    assert "정정 접수" in final
    entry = (await journal(bot))[-1]
    assert entry.action == "revise" and entry.status == "accepted" and entry.original_order_no == order_no
    new_no = entry.kis_order_no
    assert new_no and new_no != order_no and new_no in final
    (orders,) = await bot.say(ALICE, "/orders")
    assert new_no in orders["text"] and f"{new:,}" in orders["text"] and "잔량 4" in orders["text"]
    assert order_no not in orders["text"]  # the old order has nothing left


async def test_double_press_revises_once(bot: BotHarness) -> None:
    order_no, _ = await resting_buy(bot)
    (card,) = await bot.say(ALICE, f"/modify {order_no} {far_below(bot, 4)}")
    data = BotApiEmulator.buttons(card)[0][1]
    q1 = bot.api.press(ALICE, card, data)
    q2 = bot.api.press(ALICE, card, data)  # two devices, same instant
    await bot._wait(bot.api.updates[-1]["update_id"])
    revisions = [r for r in await journal(bot) if r.action == "revise"]
    assert len(revisions) == 1
    answers = [bot.api.callback_answers[q]["text"] for q in (q1, q2)]
    assert any("이미 처리" in (a or "") for a in answers)
    (orders,) = await bot.say(ALICE, "/orders")
    assert orders["text"].count("잔량") == 1


async def test_another_users_order_number_is_refused(bot: BotHarness) -> None:
    order_no, limit = await resting_buy(bot)
    (msg,) = await bot.say(BOB, f"/modify {order_no} {far_below(bot, 4)}")
    assert "No open order" in msg["text"] and not BotApiEmulator.buttons(msg)
    (orders,) = await bot.say(ALICE, "/orders")
    assert order_no in orders["text"] and f"{limit:,}" in orders["text"]


@SQLITE_ONLY
async def test_off_tick_out_of_limits_and_bad_input_change_nothing(bot: BotHarness) -> None:
    order_no, limit = await resting_buy(bot)
    state = bot.sim.market.get(CODE)
    assert state is not None
    tick = p.tick_size(limit)
    if tick > 1:
        (msg,) = await bot.say(ALICE, f"/modify {order_no} {limit + 1}")
        assert "호가단위" in msg["text"] and not BotApiEmulator.buttons(msg)
    (msg,) = await bot.say(ALICE, f"/modify {order_no} {state.limits[1] + 10 * tick}")
    assert "가격제한폭" in msg["text"] and f"₩{state.limits[1]:,}" in msg["text"]
    for text, needle in [("/modify", "사용법"), (f"/modify {order_no}", "사용법"), ("/modify abc 1000", "숫자"),
                         (f"/modify {order_no} 시장가", "가격"), (f"/modify {order_no} {limit}", "바꿀 것이 없습니다"),
                         (f"/modify {order_no} {limit} 5", "4주"), ("/modify 999 1000", "정정할 수 있는 주문")]:
        (msg,) = await bot.say(ALICE, text)
        assert needle in msg["text"], (text, msg["text"])
    assert [r.action for r in await journal(bot)] == ["order"]
    assert bot.sim.orders_accepted == 1
    (orders,) = await bot.say(ALICE, "/orders")
    assert order_no in orders["text"] and f"{limit:,}" in orders["text"]


async def test_revise_button_in_listings_prefills_the_command(bot: BotHarness) -> None:
    order_no, _ = await resting_buy(bot)
    for command in ("/orders", "/cancel"):
        (listing,) = await bot.say(ALICE, command)
        kinds = [data.split(":")[0] for _, data in BotApiEmulator.buttons(listing)]
        assert kinds == ["pc", "pr"], kinds
    before = {m["message_id"] for m in bot.api.bot_messages(ALICE["id"])}
    await bot.press(ALICE, listing, BotApiEmulator.buttons(listing)[1][1])
    (prompt,) = [m for m in bot.api.bot_messages(ALICE["id"]) if m["message_id"] not in before]
    assert f"/modify {order_no}" in prompt["text"]
    before = {m["message_id"] for m in bot.api.bot_messages(ALICE["id"])}
    await bot.press(BOB, listing, BotApiEmulator.buttons(listing)[1][1])  # someone else's press: Bob's account
    (refused,) = [m for m in bot.api.bot_messages(ALICE["id"]) if m["message_id"] not in before]
    assert "No open order" in refused["text"]


async def test_partially_filled_order_revises_what_is_left(bot: BotHarness) -> None:
    order_no, limit = await resting_buy(bot, quantity=10)
    sim_account = next(iter(bot.sim.exchange.accounts.values()))
    order = sim_account.find(order_no)
    assert order is not None
    bot.sim.exchange._fill(sim_account, order, 3, limit, bot.sim.exchange._stamp()[1])  # a partial fill
    (card,) = await bot.say(ALICE, f"/modify {order_no} {far_below(bot, 6)}")
    assert "수량 7주" in card["text"]
    await bot.press_button(ALICE, card, 0)
    assert "정정 접수" in bot.current(card)["text"]
    new_no = (await journal(bot))[-1].kis_order_no
    (orders,) = await bot.say(ALICE, "/orders")
    assert new_no in orders["text"] and "잔량 7" in orders["text"] and "잔량 10" not in orders["text"]


@SQLITE_ONLY
async def test_help_lists_modify(bot: BotHarness) -> None:
    (msg,) = await bot.say(BOB, "/help")
    assert "/modify" in msg["text"]
    assert "modify" in {c["command"] for c in bot.api.commands[""]}


async def test_lost_reply_is_found_in_the_days_list_not_resent(bot: BotHarness) -> None:
    """The revision took effect but its reply was lost (HTTP 500 after processing): the day's list shows
    the new row pointing back to the order; nothing is sent again."""
    order_no, _ = await resting_buy(bot)
    (card,) = await bot.say(ALICE, f"/modify {order_no} {far_below(bot, 4)}")
    bot.sim.faults.paths = (p.PATH_ORDER_RVSECNCL,)
    bot.sim.faults.error_5xx_after_next = 1
    await bot.press_button(ALICE, card, 0)
    bot.sim.faults.clear()
    final = bot.current(card)["text"]
    entry = (await journal(bot))[-1]
    assert "정정 접수" in final and entry.status == "accepted" and entry.kis_order_no in final
    (orders,) = await bot.say(ALICE, "/orders")
    assert orders["text"].count("잔량") == 1 and entry.kis_order_no in orders["text"]


async def test_unknown_outcome_says_checking_and_is_reconciled(bot: BotHarness,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Reply lost and the immediate look failing too: the card says "checking" (not sent again), and
    reconciliation finds the revision in the day's list and tells it."""
    from chatbot.kis.domestic_broker import DomesticBroker
    from chatbot.kis.errors import KisServerError

    async def lookup_fails(*args: object, **kwargs: object) -> list[object]:
        raise KisServerError("listing unavailable")

    order_no, _ = await resting_buy(bot)
    (card,) = await bot.say(ALICE, f"/modify {order_no} {far_below(bot, 4)}")
    monkeypatch.setattr(DomesticBroker, "find_orders", lookup_fails)  # the service's look, through the port
    bot.sim.faults.paths = (p.PATH_ORDER_RVSECNCL,)
    bot.sim.faults.error_5xx_after_next = 1
    await bot.press_button(ALICE, card, 0)
    bot.sim.faults.clear()
    assert "확인 중" in bot.current(card)["text"]
    assert (await journal(bot))[-1].status == "uncertain"
    assert bot.runtime is not None
    reconciler = bot.runtime.reconciler
    reconciler.interval = 0.0  # the submitter's own look was just now; the next may come at once
    reconciler.wake()
    await bot.wait_for_message(ALICE["id"], "정정 접수", timeout=30.0)
    entry = (await journal(bot))[-1]
    assert entry.status == "accepted" and entry.kis_order_no and entry.kis_order_no != order_no
    (orders,) = await bot.say(ALICE, "/orders")
    assert orders["text"].count("잔량") == 1 and entry.kis_order_no in orders["text"]


@pytest.mark.parametrize("flavour", ["real", "virtual"])
async def test_submitter_revises_the_rest_or_part_in_both_modes(sim, make_client, flavour: str) -> None:
    """Both protocol families against the simulator (paper lists open orders from the daily executions):
    the whole remainder (QTY_ALL_ORD_YN=Y), then part of it, each a new order number pointing back."""
    from chatbot.kis.models import OrderSide
    from chatbot.kis.orders import OrderSubmitter

    client = make_client(flavour)
    submitter = OrderSubmitter(client)
    state = sim.market.get(CODE)
    assert state is not None
    low = p.round_down_to_tick(state.limits[0] + 2 * p.tick_size(state.limits[0]))
    ack = await client.place_order(OrderSide.BUY, CODE, 5, low)
    (order,) = await client.open_orders()
    seen: list[set[str]] = []

    async def on_sending(known: set[str]) -> None:
        seen.append(known)

    new_price = p.round_down_to_tick(low + p.tick_size(low))
    revised = await submitter.revise(order.order_no, order.branch, OrderSide.BUY, CODE, new_price, 5,
                                     all_remaining=True, exchange=order.exchange, on_sending=on_sending)
    (listed,) = await client.open_orders()
    assert (listed.order_no, listed.price, listed.cancellable_quantity) == (revised.order_no, new_price, 5)
    assert revised.order_no != ack.order_no and seen == [{ack.order_no}]
    part = await submitter.revise(revised.order_no, revised.branch, OrderSide.BUY, CODE, low, 2,
                                  all_remaining=False, exchange=listed.exchange)
    by_no = {o.order_no: o for o in await client.open_orders()}
    assert (by_no[part.order_no].price, by_no[part.order_no].cancellable_quantity) == (low, 2)
    assert by_no[revised.order_no].cancellable_quantity == 3
