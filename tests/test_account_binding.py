"""A card and a conditional order belong to the account they were made for (QA, order safety): a card
pressed, or a stop firing, after the user's account changed (/login, /logout, a paper /reset) sends
nothing there; the change voids the cards and cancels the conditional orders, and says which. A press
counts only on the card's own message in its own chat. A sell card warns of the conditional orders
that sell the same stock. Through the real Application, the simulator and the database."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from chatbot.console.botapi import BotApiEmulator
from chatbot.kis.rest import mask
from chatbot.service.cards import CardStatus, CardStore
from chatbot.service.conditional import ACCOUNT_CHANGED, _parse
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
    original, calls = accounts.current, [0]

    async def unreadable_once(user_id: int) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("database hiccup")
        return await original(user_id)

    monkeypatch.setattr(accounts, "current", unreadable_once)
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


async def bobs_stop(bot: BotHarness, stop: int) -> int:
    """Bob's stop at ``stop`` on the same stock: the trade that crosses Alice's crosses his, and his firing is
    the sign the engine judged that trade (what did not fire of Alice's then never will from it)."""
    await buy(bot, BOB, 10)
    (card,) = await bot.say(BOB, f"/stop {CODE} 10 {stop}")
    await bot.press_button(BOB, card, 0)
    (row,) = [r for r in await rows(bot, ConditionalOrderRow) if r.owner_id == BOB["id"]]
    assert row.status == "armed" and row.id is not None, row
    return row.id


async def judged_by_a_firing(bot: BotHarness, order_id: int) -> None:
    """Bob's stop fired and its sale settled: the trade crossing it was judged, and any other order it
    crossed was claimed in the same transaction (one crossed batch, one claim)."""
    async def settled() -> bool:
        return any(r.id == order_id and r.status == "placed" for r in await rows(bot, ConditionalOrderRow))
    await wait_for(settled)
    alices = [r for r in await rows(bot, ConditionalOrderRow) if r.owner_id == ALICE["id"]]
    assert alices and all(r.status == "cancelled" and r.fired_at is None for r in alices), alices


async def test_login_cancels_armed_conditional_orders_and_says_which(bot: BotHarness) -> None:
    await buy(bot, ALICE, 10)
    stop = await arm_stop(bot, 10)
    bobs = await bobs_stop(bot, stop)
    accepted = bot.sim.orders_accepted
    await login(bot, ALICE)
    told = await bot.wait_for_message(ALICE["id"], CANCELLED_PUSH_KO, timeout=60)
    assert "#1" in told["text"] and CODE in told["text"], told["text"]
    (listing,) = await bot.say(ALICE, "/stops")
    assert "없습니다" in listing["text"], listing["text"]
    (row,) = [r for r in await rows(bot, ConditionalOrderRow) if r.owner_id == ALICE["id"]]
    assert row.status == "cancelled" and row.account_ref and "12345678" not in row.account_ref
    bot.sim.set_price(CODE, ticks(-1, stop))  # crossed: nothing of Alice's fires ...
    await bot.sim.tick()
    await judged_by_a_firing(bot, bobs)  # ... while Bob's, crossed by the same trade, fired
    assert bot.sim.orders_accepted == accepted + 1  # Bob's sale
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
    bobs = await bobs_stop(bot, stop)
    accepted = bot.sim.orders_accepted
    bot.sim.set_price(CODE, ticks(-1, stop))
    await bot.sim.tick()
    await judged_by_a_firing(bot, bobs)  # the trade was judged: Bob's stop, at the same level, fired
    assert bot.sim.orders_accepted == accepted + 1  # Bob's sale only
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


# -- review: one live card per message ---------------------------------------------------------------------------
def samsung(candidates: dict[str, Any]) -> str:
    """The data of 삼성전자's button among a /buy's candidates (kept: the message changes under it)."""
    return next(data for _, data in BotApiEmulator.buttons(candidates) if ":005930_" in data)


async def cards_on(bot: BotHarness, message: dict[str, Any], status: str | None = None) -> list[PendingOrderRow]:
    return [r for r in await rows(bot, PendingOrderRow) if r.chat_id == message["chat"]["id"]
            and r.message_id == message["message_id"] and (status is None or r.status == status)]


async def test_a_double_tap_on_a_candidate_gives_one_card_and_one_order(bot: BotHarness) -> None:
    """QA review: /buy samsung 1, 삼성전자 tapped twice → two pending cards on one message, and pressing both
    Confirms placed two orders. The second tap finds the message taken: one card, one order."""
    (candidates,) = await bot.say(ALICE, "/buy samsung 1")
    tap = samsung(candidates)
    await bot.press(ALICE, candidates, tap)
    first = copy.deepcopy(bot.current(candidates))
    assert "주문 확인" in first["text"], first["text"]
    answer = await bot.press(ALICE, candidates, tap)  # the same button again, as it was tapped
    second = copy.deepcopy(bot.current(candidates))
    assert second == first and "이미 처리" in answer.get("text", ""), (second["text"], answer)
    assert len(await cards_on(bot, candidates, CardStatus.PENDING)) == 1
    (superseded,) = [r for r in await rows(bot, PendingOrderRow) if r.status == "superseded"]
    assert superseded.message_id is None
    accepted = bot.sim.orders_accepted
    await bot.press(ALICE, first, BotApiEmulator.buttons(first)[0][1])
    await bot.press(ALICE, second, BotApiEmulator.buttons(second)[0][1])
    forged = await bot.press(ALICE, first, f"oy:{superseded.id}")  # the superseded card's own Confirm: refused
    assert forged.get("show_alert"), forged
    assert bot.sim.orders_accepted == accepted + 1
    assert "주문 접수" in bot.current(candidates)["text"], bot.current(candidates)["text"]


async def test_a_late_tap_on_a_candidate_after_its_card_was_confirmed_brings_no_second_card(
        bot: BotHarness) -> None:
    """The card confirmed (the message says the order was placed), a late tap on the candidates as they were
    must not turn the message back into a fresh card inviting a second Confirm."""
    (candidates,) = await bot.say(ALICE, "/buy samsung 1")
    tap = samsung(candidates)
    await bot.press(ALICE, candidates, tap)
    card = copy.deepcopy(bot.current(candidates))
    accepted = bot.sim.orders_accepted
    await bot.press_button(ALICE, card, 0)
    placed = copy.deepcopy(bot.current(candidates))
    assert "주문 접수" in placed["text"] and "reply_markup" not in placed, placed["text"]
    await bot.press(ALICE, candidates, tap)  # late
    assert bot.current(candidates) == placed
    assert not [r for r in await rows(bot, PendingOrderRow) if r.status == CardStatus.PENDING]
    assert bot.sim.orders_accepted == accepted + 1


async def test_two_replicas_attaching_two_cards_to_one_message_attach_one(db_url: str) -> None:
    """Two processes (two connections' worth of the database) attach two cards of one chat to one message at
    once: one is attached, the other superseded (PostgreSQL: serialised per message by an advisory lock)."""
    dbs = [Database(db_url), Database(db_url)]
    try:
        await dbs[0].migrate()
        stores = [CardStore(db, 300) for db in dbs]
        fields: dict[str, object] = {"owner_id": ALICE["id"], "chat_id": ALICE["id"], "environment": "paper",
                                     "action": "order", "side": "buy", "code": CODE, "name": "삼성전자",
                                     "quantity": 1, "price": None, "quoted_price": 70_000}
        for message_id in range(1000, 1005):
            made = [await store.create(**fields) for store in stores]
            attached = await asyncio.gather(*(store.attach_message(card.id, ALICE["id"], message_id, in_place=True)
                                              for store, card in zip(stores, made, strict=True)))
            assert sum(a is not None for a in attached) == 1, attached
            statuses = sorted([row.status for card in made if (row := await stores[0].get(card.id)) is not None])
            assert statuses == ["pending", "superseded"], statuses
    finally:
        for db in dbs:
            await db.dispose()


# -- review: a card is for the account its checks were made on ------------------------------------------------
@pytest.mark.parametrize("command", ["buy", "cancel"])
async def test_a_login_finishing_while_a_card_is_made_binds_it_to_the_account_checked(
        bot: BotHarness, monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    """The card's holdings, cash or open-order checks are made on the account read first; a /login finishing
    before the card is stored bound it to the new account (a /cancel card cancelling order number X there).
    The card is for the account checked: pressed after the change, it sends nothing."""
    assert bot.runtime is not None
    runtime = bot.runtime
    text = f"/buy {CODE} 1"
    if command == "cancel":
        (order,) = await bot.say(ALICE, f"/buy {CODE} 1 {ticks(-5, price(bot))}")  # stays open
        await bot.press_button(ALICE, order, 0)
        (entry,) = [r for r in await rows(bot, OrderJournalRow) if r.kis_order_no]
        text = f"/cancel {entry.kis_order_no}"
    store, original = runtime.orders.cards, runtime.orders.cards.create
    creds = new_credentials("12345678-01")

    async def login_meanwhile(**fields: object) -> PendingOrderRow:
        monkeypatch.setattr(store, "create", original)
        await runtime.registration.register(ALICE["id"], creds.app_key, creds.app_secret, creds.account)
        return await original(**fields)

    monkeypatch.setattr(store, "create", login_meanwhile)
    (card,) = await bot.say(ALICE, text)
    assert BotApiEmulator.buttons(card), card["text"]
    await pressed_after_change_sends_nothing(bot, card)


# -- review: the account at the press and at firing is read afresh, not from this process's cache -------------
async def logout_elsewhere(bot: BotHarness) -> None:
    """Another replica's /logout: the credentials row is gone, this process's cached client is not told (nor,
    here, are cards voided or conditional orders cancelled: that replica's listeners could have failed)."""
    assert bot.runtime is not None
    assert await bot.runtime.registration.credentials.delete(ALICE["id"])


async def test_a_press_after_a_logout_on_another_replica_sends_nothing(bot: BotHarness) -> None:
    await login(bot, ALICE)
    (before,) = await bot.say(ALICE, f"/buy {CODE} 1")  # the logged-in account cached here
    await bot.press_button(ALICE, before, 1)
    await logout_elsewhere(bot)
    (card,) = await bot.say(ALICE, f"/buy {CODE} 1")
    await pressed_after_change_sends_nothing(bot, card)
    (again,) = await bot.say(ALICE, f"/buy {CODE} 1")  # the next card is for the account the user has now
    accepted = bot.sim.orders_accepted
    await bot.press_button(ALICE, again, 0)
    assert bot.sim.orders_accepted == accepted + 1 and "주문 접수" in bot.current(again)["text"]


async def test_a_stop_firing_after_a_logout_on_another_replica_is_cancelled_not_sold(bot: BotHarness) -> None:
    await login(bot, ALICE)
    await buy(bot, ALICE, 10)
    stop = await arm_stop(bot, 10)
    await logout_elsewhere(bot)
    accepted = bot.sim.orders_accepted
    bot.sim.set_price(CODE, ticks(-1, stop))
    told = await bot.wait_for_message(ALICE["id"], CANCELLED_PUSH_KO, timeout=60)
    assert "#1" in told["text"], told["text"]
    await wait_for(lambda: _is_cancelled(bot))
    assert bot.sim.orders_accepted == accepted
    journal = await journalled(bot, "cond-1")
    assert journal and all(entry.sent_at is None for entry in journal)


# -- review: arming never revives an order the account change cancelled ---------------------------------------
async def test_a_conditional_order_cancelled_while_its_card_is_pressed_is_not_armed(
        bot: BotHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The account change cancels the pending order (the user is told) between the press's first look and its
    claim: the press must not arm it again."""
    assert bot.runtime is not None
    conditional = bot.runtime.services.conditional
    assert conditional is not None
    await buy(bot, ALICE, 10)
    (card,) = await bot.say(ALICE, f"/stop {CODE} 10 {ticks(-2, price(bot))}")
    held = conditional._held

    async def cancelled_meanwhile(account: Any, code: str) -> int:
        assert bot.runtime is not None
        async with bot.runtime.db.write() as session:
            await session.exec(sa.update(ConditionalOrderRow).values(  # type: ignore[call-overload]
                status="cancelled", result=ACCOUNT_CHANGED))
        return await held(account, code)

    token = (await card_row(bot, card)).id
    monkeypatch.setattr(conditional, "_held", cancelled_meanwhile)
    answer = await bot.press_button(ALICE, card, 0)
    assert "계좌가 바뀌어" in answer.get("text", ""), answer
    (row,) = await rows(bot, ConditionalOrderRow)
    assert row.status == "cancelled" and row.armed_at is None, row
    assert (await card_row(bot, token)).status == CardStatus.VOIDED
    assert ACCOUNT_CHANGED_KO in bot.current(card)["text"], bot.current(card)["text"]
    (listing,) = await bot.say(ALICE, "/stops")
    assert "없습니다" in listing["text"], listing["text"]
