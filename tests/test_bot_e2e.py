"""The whole bot end to end: real PTB Application ↔ fake Bot API (HTTP) ↔ service ↔ simulator (HTTP)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update
from sqlmodel import select

from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import protocol as p
from chatbot.kis.domestic_broker import DomesticBroker
from chatbot.storage.tables import (
    AlertRow,
    ConditionalOrderRow,
    OrderEventRow,
    OrderJournalRow,
    PendingOrderRow,
    UserRow,
)
from chatbot.telegram import callbacks
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


async def rows(bot: BotHarness, table: type) -> list:
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        return list((await session.exec(select(table))).all())


async def buy_card(bot: BotHarness, user: dict, text: str = f"/buy {CODE} 10") -> dict:
    (card,) = await bot.say(user, text)
    assert BotApiEmulator.buttons(card), card["text"]
    return card


# -- start, help, menu ---------------------------------------------------------------------------------
@SQLITE_ONLY
async def test_start_shows_mode_and_commands(bot: BotHarness) -> None:
    (msg,) = await bot.say(ALICE, "/start")
    assert "PAPER" in msg["text"] and "/buy" in msg["text"] and "/balance" in msg["text"]
    (en,) = await bot.say(BOB, "/help")
    assert "Every order waits for your Confirm press" in en["text"]
    assert {c["command"] for c in bot.api.commands[""]} >= {"price", "buy", "sell", "orders", "cancel", "balance"}
    assert bot.api.commands["en"][0]["description"] == "Current price"
    users = await rows(bot, UserRow)
    assert {(u.telegram_id, u.language) for u in users} == {(1001, "ko"), (1002, "en")}


@SQLITE_ONLY
async def test_unknown_command_and_plain_text(bot: BotHarness) -> None:
    (msg,) = await bot.say(ALICE, "/frobnicate")
    assert "/help" in msg["text"]
    (msg,) = await bot.say(ALICE, "hello")
    assert "/help" in msg["text"]


# -- price ---------------------------------------------------------------------------------------------
@SQLITE_ONLY
async def test_price_by_code_and_name(bot: BotHarness) -> None:
    bot.sim.set_price(CODE, bot.sim.market.get(CODE).base + 5 * 5)  # type: ignore[union-attr]
    state = bot.sim.market.get(CODE)
    assert state is not None
    (msg,) = await bot.say(ALICE, f"/price {CODE}")
    assert "삼성전자" in msg["text"] and f"₩{state.price:,}" in msg["text"] and "🔺" in msg["text"]
    (msg,) = await bot.say(BOB, "/price samsung electronics")
    assert "Samsung Electronics" in msg["text"] and f"{state.price:,} KRW" in msg["text"]


@SQLITE_ONLY
async def test_ambiguous_name_gives_candidate_buttons(bot: BotHarness) -> None:
    (msg,) = await bot.say(ALICE, "/price 삼성")
    buttons = BotApiEmulator.buttons(msg)
    assert len(buttons) > 1 and all(data.startswith("pq:") for _, data in buttons)
    await bot.press_button(ALICE, msg, 0)
    edited = bot.current(msg)
    assert "005930" in edited["text"] and "reply_markup" not in edited


@SQLITE_ONLY
@pytest.mark.parametrize("text", ["/price", "/price zzzz", "/price 999999", "/price " + "x" * 10_000,
                                  "/price 🙂‍↔️𝕏\u202e", "/price '; DROP TABLE users; --"])
async def test_price_bad_input(bot: BotHarness, text: str) -> None:
    (msg,) = await bot.say(ALICE, text)
    assert msg["text"] and "reply_markup" not in msg
    assert len(msg["text"]) < 500


# -- buy / confirm -------------------------------------------------------------------------------------
async def test_buy_confirm_places_exactly_one_order(bot: BotHarness) -> None:
    card = await buy_card(bot, ALICE)
    assert "매수" in card["text"] and "시장가" in card["text"] and "PAPER" in card["text"]
    assert bot.sim.orders_accepted == 0  # nothing before the press
    answer = await bot.press_button(ALICE, card, 0)
    assert answer["text"]
    final = bot.current(card)
    assert "주문 접수" in final["text"] and "reply_markup" not in final
    assert bot.sim.orders_accepted == 1
    (journal,) = await rows(bot, OrderJournalRow)
    # a market order fills at once: its fill notice may already have been journalled
    assert journal.status in ("accepted", "filled") and journal.kis_order_no and journal.kis_order_no in final["text"]
    events = [e.status for e in await rows(bot, OrderEventRow)]
    assert events[:2] == ["submitting", "accepted"] and set(events[2:]) <= {"filled"}
    (balance,) = await bot.say(ALICE, "/balance")
    assert "삼성전자" in balance["text"] and "10주" in balance["text"]


async def test_limit_buy_rests_and_shows_in_orders(bot: BotHarness) -> None:
    state = bot.sim.market.get(CODE)
    assert state is not None
    limit = p.round_down_to_tick(state.limits[0] + 3 * p.tick_size(state.price))
    card = await buy_card(bot, ALICE, f"/buy 삼성전자 2 {limit:,}")
    assert f"{limit:,}" in card["text"]
    await bot.press_button(ALICE, card, 0)
    (orders,) = await bot.say(ALICE, "/orders")
    assert f"{limit:,}" in orders["text"] and "잔량 2" in orders["text"]


async def test_double_press_places_one_order(bot: BotHarness) -> None:
    card = await buy_card(bot, ALICE)
    data = BotApiEmulator.buttons(card)[0][1]
    q1 = bot.api.press(ALICE, card, data)
    q2 = bot.api.press(ALICE, card, data)  # two devices, same instant
    await bot._wait(bot.api.updates[-1]["update_id"])
    assert bot.sim.orders_accepted == 1
    answers = [bot.api.callback_answers[q]["text"] for q in (q1, q2)]
    assert any("이미 처리" in (a or "") for a in answers)


async def test_press_after_expiry_places_nothing(bot: BotHarness) -> None:
    card = await buy_card(bot, ALICE)
    async with bot.runtime.db.session() as session:  # type: ignore[union-attr]
        await session.exec(update(PendingOrderRow).values(  # type: ignore[call-overload]
            expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
        await session.commit()
    answer = await bot.press_button(ALICE, card, 0)
    assert "시간이 지났" in answer["text"]
    assert "확인 시간이 지났습니다" in bot.current(card)["text"] and "reply_markup" not in bot.current(card)
    assert bot.sim.orders_accepted == 0


async def test_press_by_another_user_places_nothing(bot: BotHarness) -> None:
    card = await buy_card(bot, ALICE)
    answer = await bot.press_button(BOB, card, 0)
    assert answer["show_alert"] and "Only the person who asked" in answer["text"]
    assert bot.sim.orders_accepted == 0 and BotApiEmulator.buttons(bot.current(card))
    await bot.press_button(ALICE, card, 0)  # the owner still can
    assert bot.sim.orders_accepted == 1


@SQLITE_ONLY
@pytest.mark.parametrize("data", ["oy:AAAAAAAAAAAAAAAA", "oy:", "oy:../../etc", "zz:1", "", "x" * 64, "pq:ZZZZZZ",
                                  "pc:0000000001"])
async def test_forged_callback_data_places_nothing(bot: BotHarness, data: str) -> None:
    card = await buy_card(bot, ALICE)
    await bot.press(ALICE, card, data)
    assert bot.sim.orders_accepted == 0


async def test_token_of_another_card_does_not_confirm_it(bot: BotHarness) -> None:
    """A valid token pressed under a different message (forged) is refused."""
    card_a = await buy_card(bot, ALICE)
    card_b = await buy_card(bot, ALICE, f"/buy {CODE} 1")
    await bot.press(ALICE, card_b, BotApiEmulator.buttons(card_a)[0][1])
    assert bot.sim.orders_accepted == 0


async def test_dismiss(bot: BotHarness) -> None:
    card = await buy_card(bot, ALICE)
    confirm = BotApiEmulator.buttons(card)[0][1]
    await bot.press_button(ALICE, card, 1)
    final = bot.current(card)
    assert "아무것도 전송되지 않았습니다" in final["text"] and "reply_markup" not in final
    await bot.press(ALICE, card, confirm)  # a stale confirm after cancelling
    assert bot.sim.orders_accepted == 0


@SQLITE_ONLY
@pytest.mark.parametrize(("text", "needle"), [
    ("/buy", "사용법"), (f"/buy {CODE}", "사용법"), (f"/buy {CODE} -5", "수량"), (f"/buy {CODE} 0", "수량"),
    (f"/buy {CODE} 1.5", "수량"), (f"/buy {CODE} abc", "수량"), (f"/buy {CODE} 10 abc", "가격"),
    (f"/buy {CODE} 10 -100", "가격"), (f"/buy {CODE} 10 0", "가격"), (f"/buy {CODE} 1 2 3 4", "인자"),
    ("/buy zzzz 10", "종목을 찾을 수 없습니다"), ("/buy 삼성 10", "여러 개"), (f"/buy {CODE} 99999999", "최대 1,000,000주"),
    (f"/buy {CODE} " + "9" * 10_000, "너무 깁니다"), ("/buy 🙂 1", "종목"), (f"/buy {CODE} 900000", "주문 가능 금액"),
    (f"/sell {CODE} 1", "매도 가능 수량은 0주"),
])
async def test_bad_order_input_changes_nothing(bot: BotHarness, text: str, needle: str) -> None:
    (msg,) = await bot.say(ALICE, text)
    assert needle in msg["text"], msg["text"]
    assert not [d for _, d in BotApiEmulator.buttons(msg) if d.startswith("oy:")]
    assert await rows(bot, PendingOrderRow) == []
    assert bot.sim.orders_accepted == 0


@SQLITE_ONLY
async def test_off_tick_and_out_of_limit_prices(bot: BotHarness) -> None:
    state = bot.sim.market.get(CODE)
    assert state is not None
    tick = p.tick_size(state.price)
    if tick > 1:
        (msg,) = await bot.say(ALICE, f"/buy {CODE} 1 {state.price + 1}")
        assert "호가단위" in msg["text"] and f"₩{state.price:,}" in msg["text"] and "원" not in msg["text"]
    (msg,) = await bot.say(ALICE, f"/buy {CODE} 1 {state.limits[1] * 2}")
    assert "가격제한폭" in msg["text"] and f"₩{state.limits[1]:,}" in msg["text"] and "원" not in msg["text"]
    assert bot.sim.orders_accepted == 0


async def test_sell_within_holdings(bot: BotHarness) -> None:
    await bot.press_button(ALICE, await buy_card(bot, ALICE, f"/buy {CODE} 5"), 0)
    (msg,) = await bot.say(ALICE, f"/sell {CODE} 6")
    assert "5주" in msg["text"]
    card = await buy_card(bot, ALICE, f"/sell {CODE} 5 시장가")
    assert "매도" in card["text"] and "세금" in card["text"]
    await bot.press_button(ALICE, card, 0)
    assert bot.sim.orders_accepted == 2


async def test_kis_rejection_is_shown_in_plain_words(bot: BotHarness) -> None:
    card = await buy_card(bot, ALICE, f"/buy {CODE} 1")
    bot.sim.exchange.account(next(iter(bot.sim.exchange.accounts))).cash = 0  # cash vanished after the quote
    await bot.press_button(ALICE, card, 0)
    final = bot.current(card)
    assert "KIS가 거부했습니다" in final["text"] and "APBK0952" in final["text"]
    (journal,) = await rows(bot, OrderJournalRow)
    assert journal.status == "rejected" and journal.msg_cd == "APBK0952"


async def test_order_timeout_is_reconciled_not_repeated(bot: BotHarness) -> None:
    assert bot.runtime is not None
    bot.runtime.accounts.order_timeout = 0.3
    card = await buy_card(bot, ALICE, f"/buy {CODE} 3")
    for account in bot.runtime.accounts._cache.values():
        account.client.order_timeout = 0.3
        account.submitter.lookup_interval = 0.05
    bot.sim.faults.response_delay_seconds = 1.0
    bot.sim.faults.paths = (p.PATH_ORDER_CASH,)
    await bot.press_button(ALICE, card, 0)
    bot.sim.faults.clear()
    assert bot.sim.orders_accepted == 1
    assert "주문 접수" in bot.current(card)["text"]


async def test_cancel_flow(bot: BotHarness) -> None:
    state = bot.sim.market.get(CODE)
    assert state is not None
    limit = p.round_down_to_tick(state.limits[0] + 2 * p.tick_size(state.price))
    await bot.press_button(ALICE, await buy_card(bot, ALICE, f"/buy {CODE} 4 {limit}"), 0)
    (listing,) = await bot.say(ALICE, "/cancel")
    (_label, data) = BotApiEmulator.buttons(listing)[0]
    assert data.startswith("pc:")
    await bot.press(ALICE, listing, data)
    cancel_card = bot.api.bot_messages(ALICE["id"])[-1]
    assert "취소 확인" in cancel_card["text"]
    await bot.press_button(ALICE, cancel_card, 0)
    assert "취소 접수" in bot.current(cancel_card)["text"]
    (orders,) = await bot.say(ALICE, "/orders")
    assert "미체결 주문이 없습니다" in orders["text"]


@SQLITE_ONLY
@pytest.mark.parametrize(("text", "needle"), [("/cancel 999", "없습니다"), ("/cancel abc", "숫자"),
                                              ("/cancel 1 2", "사용법")])
async def test_cancel_bad_input(bot: BotHarness, text: str, needle: str) -> None:
    (msg,) = await bot.say(ALICE, text)
    assert needle in msg["text"]


async def test_cancel_by_number_and_other_users_orders_are_invisible(bot: BotHarness) -> None:
    state = bot.sim.market.get(CODE)
    assert state is not None
    limit = p.round_down_to_tick(state.limits[0] + 2 * p.tick_size(state.price))
    await bot.press_button(ALICE, await buy_card(bot, ALICE, f"/buy {CODE} 1 {limit}"), 0)
    (journal,) = await rows(bot, OrderJournalRow)
    (msg,) = await bot.say(BOB, f"/cancel {journal.kis_order_no}")
    assert "No open order" in msg["text"]
    card = await buy_card(bot, ALICE, f"/cancel {journal.kis_order_no}")
    await bot.press_button(ALICE, card, 0)
    assert "취소 접수" in bot.current(card)["text"]


@SQLITE_ONLY
async def test_balance_every_page(bot: BotHarness) -> None:
    bot.sim.options.balance_page_size = 2
    codes = [c for c, s in bot.sim.market.symbols.items() if s.price < 30_000][:5]
    for code in codes:
        await bot.press_button(ALICE, await buy_card(bot, ALICE, f"/buy {code} 1"), 0)
    (msg,) = await bot.say(ALICE, "/balance")
    for code in codes:
        assert code in msg["text"]
    assert "예수금" in msg["text"] and "총 평가" in msg["text"]
    (en,) = await bot.say(BOB, "/balance")
    assert "No holdings" in en["text"] and "Cash 10,000,000 KRW" in en["text"]


# -- access -----------------------------------------------------------------------------------------------
@SQLITE_ONLY
async def test_group_chats_are_refused_and_strangers_groups_left(bot: BotHarness) -> None:
    group = -100123
    (msg,) = await bot.say(ALICE, f"/buy {CODE} 1", chat_id=group)
    assert "개인 대화" in msg["text"]
    assert await bot.say(ALICE, "just chatting", chat_id=group) == []
    bot.api.membership(BOB, -555)
    await asyncio.sleep(0)
    await bot._wait(bot.api.updates[-1]["update_id"])
    assert -555 in bot.api.left_chats
    assert await rows(bot, PendingOrderRow) == []


@SQLITE_ONLY
async def test_allowed_users(db_url: str) -> None:
    harness = BotHarness(db_url, allowed_users=(ALICE["id"],))
    await harness.start()
    try:
        (msg,) = await harness.say(BOB, f"/buy {CODE} 1")
        assert "limited to its registered users" in msg["text"]
        assert await harness.say(BOB, "/price 005930") == []  # one refusal, then nothing
        card = await buy_card(harness, ALICE)
        answer = await harness.press_button(BOB, card, 0)
        assert answer["show_alert"] and harness.sim.orders_accepted == 0
        assert {u.telegram_id for u in await rows(harness, UserRow)} == {ALICE["id"]}
    finally:
        await harness.stop()


# -- restarts ---------------------------------------------------------------------------------------------
async def test_card_survives_a_restart(bot: BotHarness) -> None:
    card = await buy_card(bot, ALICE)
    await bot.restart()
    await bot.press_button(ALICE, card, 0)
    assert "주문 접수" in bot.current(card)["text"]
    assert bot.sim.orders_accepted == 1
    (msg,) = await bot.say(ALICE, "/balance")
    assert "10주" in msg["text"]  # the paper holding survived the restart too


async def test_crash_during_submission_is_told_never_resent(bot: BotHarness) -> None:
    """A card left submitting with no journal row (a version that journalled just before sending):
    never sent, so the restart tells the user "not placed" on the card, and nothing is re-sent."""
    card = await buy_card(bot, ALICE)
    confirm = BotApiEmulator.buttons(card)[0][1]
    async with bot.runtime.db.session() as session:  # type: ignore[union-attr]
        await session.exec(update(PendingOrderRow).values(status="submitting"))  # type: ignore[call-overload]
        await session.commit()
    await bot.restart()
    await bot.wait_for_message(ALICE["id"], "주문되지 않았습니다")
    assert "주문되지 않았습니다" in bot.current(card)["text"]
    (row,) = await rows(bot, PendingOrderRow)
    assert row.status == "failed"
    answer = await bot.press(ALICE, card, confirm)  # the update redelivered after the crash
    assert "이미 처리" in answer["text"] and bot.sim.orders_accepted == 0


# -- Telegram-side trouble -------------------------------------------------------------------------------------
async def test_blocked_user_does_not_crash_the_bot(bot: BotHarness) -> None:
    bot.api.blocked.add(ALICE["id"])
    assert await bot.say(ALICE, "/start") == []
    bot.api.blocked.clear()
    (msg,) = await bot.say(ALICE, "/start")
    assert "PAPER" in msg["text"]


@SQLITE_ONLY
async def test_callback_data_fits_telegram_limit(bot: BotHarness) -> None:
    card = await buy_card(bot, ALICE)
    for _, data in BotApiEmulator.buttons(card):
        assert len(data.encode()) <= callbacks.MAX_BYTES and len(data) < 24
        assert CODE not in data and "10" not in data.split(":")[1][:0]  # opaque token, no order details


@SQLITE_ONLY
async def test_private_chat_pacing(db_url: str) -> None:
    harness = BotHarness(db_url, per_chat_interval=0.3)
    await harness.start()
    try:
        # Each send's slot as the limiter gives it (when the request may go), not when the fake Bot API
        # saw it: on a loaded machine one request can take longer to arrive than the next.
        limiter = harness.app.bot.rate_limiter
        pace, slots, sent = limiter._pace, [], []

        async def paced(chat: int) -> None:
            await pace(chat)
            slots.append(limiter._next_slot[chat] - limiter.per_chat_interval)

        limiter._pace = paced
        harness.api.listeners.append(lambda event, _: sent.append(event) if event == "sent" else None)
        updates = [harness.api.send_text(ALICE, "/start")["update_id"] for _ in range(3)]
        for update_id in updates:
            await harness._wait(update_id)
        assert len(sent) == len(slots) == 3
        assert all(b - a >= 0.3 - 1e-3 for a, b in itertools.pairwise(slots)), slots  # a timer may wake early
    finally:
        await harness.stop()


async def test_the_running_bot_orders_an_etn_under_its_q(bot: BotHarness) -> None:
    """The runtime gives every user's broker the symbol directory's word on which codes are ETNs (a code KIS's
    masters list as one): a bot started with an ETN listed orders it as Q + code; an ordinary share stays bare."""
    etn = "580011"
    bot.sim.upsert_listing({"code": etn, "name": "테스트 ETN", "market": "KOSPI", "kind": "N", "base_price": 9870})
    assert bot.runtime is not None
    broker = (await bot.runtime.accounts.for_user(ALICE["id"])).broker
    assert isinstance(broker, DomesticBroker)
    assert broker.is_etn(etn) and not broker.is_etn("005930")


async def test_an_etn_is_not_watched_by_an_alert_or_a_stop(bot: BotHarness) -> None:
    """KIS streams an ETN's trades under Q + code; the feed subscribes and polls the directory's code, which for an
    ETN lies in the ELWs' code space: an alert or a stop would watch another instrument. Both are refused, with
    nothing set."""
    etn = "580011"
    bot.sim.upsert_listing({"code": etn, "name": "테스트 ETN", "market": "KOSPI", "kind": "N", "base_price": 9870})
    (alert,) = await bot.say(ALICE, f"/alert {etn} 이상 10,500")
    (stop,) = await bot.say(ALICE, f"/stop {etn} 1 9,000원")
    assert "ETN" in alert["text"] and "ETN" in stop["text"], (alert["text"], stop["text"])
    assert await rows(bot, AlertRow) == [] and await rows(bot, ConditionalOrderRow) == []
