"""A card and a conditional order belong to the account they were made for (QA, order safety): a card
pressed, or a stop firing, after the user's account changed (/login, /logout, a paper /reset) sends
nothing there; the change voids the cards and cancels the conditional orders, and says which. A press
counts only on the card's own message in its own chat. A sell card warns of the conditional orders
that sell the same stock. Through the real Application, the simulator and the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from chatbot.console.botapi import BotApiEmulator
from chatbot.kis.rest import mask
from chatbot.service.cards import CardStatus
from chatbot.service.conditional import _parse
from chatbot.storage.db import Database
from chatbot.storage.tables import ConditionalOrderRow, OrderJournalRow, PendingOrderRow
from tests.harness import BotHarness
from tests.helpers import new_credentials
from tests.test_conditional import buy, price, rows, ticks, wait_for
from tests.test_money_storage import _to

ALICE = BotApiEmulator.user(9301, "ko")
BOB = BotApiEmulator.user(9302, "en")
CODE = "005930"
ACCOUNT_CHANGED_KO = "계좌가 바뀌었습니다"
CANCELLED_PUSH_KO = "계좌가 바뀌어 조건주문을 취소했습니다"


@pytest.fixture
async def bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url)
    await harness.start()
    harness.sim.auth.enforce_issue_interval = False  # /login's check and the account's client on one new key
    yield harness
    assert not harness.api.unanswered_callbacks(), "every callback query must be answered"
    await harness.stop()


async def login(bot: BotHarness, user: dict[str, Any], account: str = "12345678-01") -> None:
    creds = new_credentials(account)
    replies = await bot.say(user, "/login")
    for text in (creds.app_key, creds.app_secret, str(creds.account), "-"):
        replies += await bot.say(user, text)
    assert mask(creds.app_key) in replies[-1]["text"], replies[-1]["text"]


async def card_row(bot: BotHarness, card: dict[str, Any] | str) -> PendingOrderRow:
    token = card if isinstance(card, str) else BotApiEmulator.buttons(card)[0][1].split(":", 1)[1]
    return next(r for r in await rows(bot, PendingOrderRow) if r.id == token)


async def journalled(bot: BotHarness, token: str) -> list[OrderJournalRow]:
    return [r for r in await rows(bot, OrderJournalRow) if r.idempotency_key == token]


async def pressed_after_change_sends_nothing(bot: BotHarness, card: dict[str, Any]) -> None:
    """The old card pressed: refused, the card says why, nothing reached KIS nor the journal."""
    accepted = bot.sim.orders_accepted
    token = (await card_row(bot, card)).id
    answer = await bot.press_button(ALICE, card, 0)
    assert "계좌가 바뀌어" in answer.get("text", ""), answer
    shown = bot.current(card)
    assert ACCOUNT_CHANGED_KO in shown["text"] and "reply_markup" not in shown, shown["text"]
    row = await card_row(bot, token)
    assert row.status == CardStatus.VOIDED and not await journalled(bot, row.id)
    assert bot.sim.orders_accepted == accepted


# -- 1. a card belongs to the account it was quoted for ---------------------------------------------------------
async def test_a_card_made_before_login_sends_nothing_to_the_new_account(bot: BotHarness) -> None:
    await buy(bot, ALICE, 10)
    (card,) = await bot.say(ALICE, f"/sell {CODE} 10")
    token = BotApiEmulator.buttons(card)[0][1].split(":", 1)[1]
    await login(bot, ALICE)
    await pressed_after_change_sends_nothing(bot, card)
    ref = (await card_row(bot, token)).account_ref
    assert ref and "12345678" not in ref  # a digest, never the number


async def test_a_card_made_before_logout_sends_nothing_to_the_paper_account(bot: BotHarness) -> None:
    await login(bot, ALICE)
    (card,) = await bot.say(ALICE, f"/buy {CODE} 1")
    (msg,) = await bot.say(ALICE, "/logout")
    assert "삭제했습니다" in msg["text"], msg["text"]
    await pressed_after_change_sends_nothing(bot, card)


async def test_a_card_is_checked_against_the_account_at_the_press_too(bot: BotHarness) -> None:
    """Belt and braces: an account change that did not void the card (a replica's race, a crash between)
    still sends nothing — the press compares the card's account with the user's now."""
    assert bot.runtime is not None
    (card,) = await bot.say(ALICE, f"/buy {CODE} 1")
    bot.runtime.registration.account_changed.clear()  # nothing voided, nothing cancelled
    await login(bot, ALICE)
    assert (await card_row(bot, card)).status == CardStatus.PENDING
    await pressed_after_change_sends_nothing(bot, card)


async def test_a_card_whose_account_could_not_be_read_at_the_press_is_checked_before_sending(
        bot: BotHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The account unreadable when the press is claimed (a database hiccup): the account read again to send
    on is compared with the card's, and another one's gets nothing (the card settles as not sent)."""
    assert bot.runtime is not None
    accounts = bot.runtime.accounts
    (card,) = await bot.say(ALICE, f"/buy {CODE} 1")
    token = (await card_row(bot, card)).id
    bot.runtime.registration.account_changed.clear()
    await login(bot, ALICE)
    original, calls = accounts.for_user, [0]

    async def unreadable_once(user_id: int) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("database hiccup")
        return await original(user_id)

    monkeypatch.setattr(accounts, "for_user", unreadable_once)
    accepted = bot.sim.orders_accepted
    await bot.press_button(ALICE, card, 0)
    assert "전송되지 않았습니다" in bot.current(card)["text"], bot.current(card)["text"]
    assert (await card_row(bot, token)).status == CardStatus.FAILED and calls[0] == 2
    (entry,) = await journalled(bot, token)
    assert entry.sent_at is None and entry.told_at is not None and entry.status == "failed"
    assert bot.sim.orders_accepted == accepted


async def test_a_card_for_the_account_still_in_use_goes_through(bot: BotHarness) -> None:
    (card,) = await bot.say(ALICE, f"/buy {CODE} 1")
    token = (await card_row(bot, card)).id
    accepted = bot.sim.orders_accepted
    await bot.press_button(ALICE, card, 0)
    assert (await card_row(bot, token)).status == CardStatus.PLACED
    assert bot.sim.orders_accepted == accepted + 1


# -- 3. a press counts on the card's own message in its own chat ------------------------------------------------
async def test_a_press_on_the_same_message_number_in_another_chat_is_refused(bot: BotHarness) -> None:
    """Message ids are per chat: Alice's card is message #n of her chat; a callback naming her card's token
    on message #n of Bob's chat matched owner and message and sent the order, editing Bob's message."""
    (card,) = await bot.say(ALICE, f"/buy {CODE} 1")
    data = BotApiEmulator.buttons(card)[0][1]
    token = data.split(":", 1)[1]
    while len(bot.api.bot_messages(BOB["id"])) < card["message_id"]:  # Bob's chat has a message #n too
        await bot.say(BOB, "/help")
    elsewhere = {**card, "chat": {**card["chat"], "id": BOB["id"]}}
    bobs = bot.api.messages.get((BOB["id"], card["message_id"]))
    accepted = bot.sim.orders_accepted
    answer = await bot.press(ALICE, elsewhere, data)
    assert answer.get("show_alert"), answer
    assert bot.sim.orders_accepted == accepted
    assert (await card_row(bot, token)).status == CardStatus.PENDING
    assert bot.api.messages.get((BOB["id"], card["message_id"])) == bobs  # Bob's message untouched
    await bot.press_button(ALICE, card, 0)  # on its own message it still works
    assert bot.sim.orders_accepted == accepted + 1


# -- 2. conditional orders belong to the account they were armed on ---------------------------------------------
async def arm_stop(bot: BotHarness, quantity: int) -> int:
    stop = ticks(-2, price(bot))
    (card,) = await bot.say(ALICE, f"/stop {CODE} {quantity} {stop}")
    await bot.press_button(ALICE, card, 0)
    assert "#" in bot.current(card)["text"], bot.current(card)["text"]
    return stop


async def test_login_cancels_armed_conditional_orders_and_says_which(bot: BotHarness) -> None:
    await buy(bot, ALICE, 10)
    stop = await arm_stop(bot, 10)
    accepted = bot.sim.orders_accepted
    await login(bot, ALICE)
    told = await bot.wait_for_message(ALICE["id"], CANCELLED_PUSH_KO, timeout=60)
    assert "#1" in told["text"] and CODE in told["text"], told["text"]
    (listing,) = await bot.say(ALICE, "/stops")
    assert "없습니다" in listing["text"], listing["text"]
    (row,) = await rows(bot, ConditionalOrderRow)
    assert row.status == "cancelled" and row.account_ref and "12345678" not in row.account_ref
    bot.sim.set_price(CODE, ticks(-1, stop))  # crossed: nothing fires
    await bot.sim.tick()
    await asyncio.sleep(0.5)
    assert bot.sim.orders_accepted == accepted
    assert bot.count_messages(ALICE["id"], "⚡ 조건주문") == 0


async def test_a_conditional_card_made_before_login_arms_nothing(bot: BotHarness) -> None:
    await buy(bot, ALICE, 10)
    (card,) = await bot.say(ALICE, f"/stop {CODE} 10 {ticks(-2, price(bot))}")
    await login(bot, ALICE)
    answer = await bot.press_button(ALICE, card, 0)
    assert "계좌가 바뀌어" in answer.get("text", ""), answer
    shown = bot.current(card)
    assert ACCOUNT_CHANGED_KO in shown["text"] and "reply_markup" not in shown, shown["text"]
    (row,) = await rows(bot, ConditionalOrderRow)
    assert row.status == "cancelled" and row.armed_at is None


async def test_reset_cancels_armed_conditional_orders(bot: BotHarness) -> None:
    await buy(bot, ALICE, 10)
    stop = await arm_stop(bot, 10)
    (card,) = await bot.say(ALICE, "/reset")
    text = card["text"]
    await bot.press_button(ALICE, card, 0)
    (listing,) = await bot.say(ALICE, "/stops")
    assert "없습니다" in listing["text"], listing["text"]
    await bot.wait_for_message(ALICE["id"], CANCELLED_PUSH_KO, timeout=60)
    assert "조건주문" in text, text  # the card said they go too
    await buy(bot, ALICE, 10)  # bought on the fresh account: no old stop sells them
    accepted = bot.sim.orders_accepted
    bot.sim.set_price(CODE, ticks(-1, stop))
    await bot.sim.tick()
    await asyncio.sleep(0.5)
    assert bot.sim.orders_accepted == accepted
    (balance,) = await bot.say(ALICE, "/balance")
    assert "10주" in balance["text"], balance["text"]


async def test_a_stop_firing_after_the_account_changed_is_cancelled_not_sold(bot: BotHarness) -> None:
    """Belt and braces: a change of account that did not cancel it first — at firing the order's account is
    compared with the user's now, and nothing is sold on another one."""
    assert bot.runtime is not None
    await buy(bot, ALICE, 10)
    stop = await arm_stop(bot, 10)
    bot.runtime.registration.account_changed.clear()
    await login(bot, ALICE)
    accepted = bot.sim.orders_accepted
    bot.sim.set_price(CODE, ticks(-1, stop))
    told = await bot.wait_for_message(ALICE["id"], CANCELLED_PUSH_KO, timeout=60)
    assert "#1" in told["text"], told["text"]
    await wait_for(lambda: _is_cancelled(bot))
    assert bot.sim.orders_accepted == accepted
    journal = await journalled(bot, "cond-1")
    assert journal and all(entry.sent_at is None for entry in journal)


async def _is_cancelled(bot: BotHarness) -> bool:
    (row,) = await rows(bot, ConditionalOrderRow)
    return row.status == "cancelled"


# -- 4. a sell card tells of the conditional orders on the same shares ------------------------------------------
async def test_a_sell_card_warns_of_armed_conditional_orders_on_the_stock(bot: BotHarness) -> None:
    await buy(bot, ALICE, 10)
    await arm_stop(bot, 10)
    (card,) = await bot.say(ALICE, f"/sell {CODE} 10")
    assert "#1" in card["text"] and "/stops" in card["text"] and "10주" in card["text"], card["text"]
    (other,) = await bot.say(ALICE, f"/buy {CODE} 1")  # a buy card says nothing of them
    assert "/stops" not in other["text"], other["text"]
    await bot.press_button(ALICE, other, 1)
    await bot.press_button(ALICE, card, 1)


# -- 5. a name with a number in it, no limit typed -------------------------------------------------------------
def test_a_stop_keeps_the_number_of_a_name_that_has_one() -> None:
    def names_one(text: str) -> bool:
        return text in ("KODEX 200", "005930")

    request = _parse("stop", ["KODEX", "200", "5", "8000"], names_one)
    assert (request.symbol_text, request.quantity, request.stop, request.limit) == ("KODEX 200", 5, 8000, None)
    request = _parse("tp", ["KODEX", "200", "5", "8000", "8100"], names_one)  # with a limit: as before
    assert (request.symbol_text, request.quantity, request.take, request.limit) == ("KODEX 200", 5, 8000, 8100)
    request = _parse("stop", ["005930", "10", "3500", "3450"], names_one)  # a split whose symbol names one
    assert (request.symbol_text, request.quantity, request.stop, request.limit) == ("005930", 10, 3500, 3450)


async def test_stop_on_kodex_200_without_a_limit_is_five_shares_of_it(bot: BotHarness) -> None:
    state = bot.sim.market.get("069500")
    assert state is not None
    trigger = state.price * 95 // 100 // 5 * 5  # on any ETF's tick
    (reply,) = await bot.say(ALICE, f"/stop KODEX 200 5 {trigger}")
    assert "KODEX 200" in reply["text"] and "5주" in reply["text"], reply["text"]  # none held: refused, by name


# -- the migration ----------------------------------------------------------------------------------------------
async def test_0019_adds_the_account_columns_and_goes_down_and_up(db_url: str) -> None:
    """Revision 0019: cards and conditional orders written before it have no account (NULL); the downgrade
    drops both columns."""
    db = Database(db_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_to("0018"))
        await db.migrate()
        async with db.session() as session:
            assert not (await session.exec(select(PendingOrderRow))).all()
        async with db.engine.begin() as conn:
            await conn.run_sync(_to("0018", down=True))
        async with db.engine.connect() as conn:
            for table in ("pending_orders", "conditional_orders"):
                columns = {c["name"] for c in await conn.run_sync(
                    lambda sync, table=table: sa.inspect(sync).get_columns(table))}
                assert "account_ref" not in columns and "owner_id" in columns
        await db.migrate()
        async with db.engine.connect() as conn:
            columns = {c["name"] for c in await conn.run_sync(
                lambda sync: sa.inspect(sync).get_columns("conditional_orders"))}
            assert "account_ref" in columns
    finally:
        await db.dispose()
