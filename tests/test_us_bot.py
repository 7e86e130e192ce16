"""US stocks end to end: real PTB Application ↔ fake Bot API (HTTP) ↔ service ↔ simulator (HTTP),
with the simulator's switch that keeps the US market open."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import select

from chatbot.broker import OrderSide
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import overseas_protocol as o
from chatbot.kis.overseas import KisOverseasClient
from chatbot.markets.money import Money
from chatbot.markets.us_hours import UsCalendar
from chatbot.service.cards import CardStatus
from chatbot.storage.tables import OrderJournalRow
from tests.conftest import SQLITE_ONLY
from tests.harness import BotHarness

ALICE = BotApiEmulator.user(1101, "ko")
BOB = BotApiEmulator.user(1102, "en")


@pytest.fixture
def bot(us_open_bot: BotHarness) -> BotHarness:
    return us_open_bot


# -- /price -----------------------------------------------------------------------------------------------
@SQLITE_ONLY
async def test_us_quote_by_ticker_and_korean_name(bot: BotHarness) -> None:
    price = bot.sim.set_us_price("AAPL", Decimal("190.25"))
    (msg,) = await bot.say(ALICE, "/price AAPL")
    text = msg["text"]
    assert "애플" in text and "(AAPL)" in text and "NASDAQ" in text
    assert f"${price:,.2f}" in text and "정규장" in text and "추정" in text and "₩" in text
    (by_name,) = await bot.say(ALICE, "/price 애플")
    assert f"${price:,.2f}" in by_name["text"] and "(AAPL)" in by_name["text"]
    (etf,) = await bot.say(BOB, "/price QQQ")
    assert "(QQQ)" in etf["text"] and "$" in etf["text"] and "estimate" in etf["text"]
    assert "regular session" in etf["text"]


@SQLITE_ONLY
async def test_us_quote_under_a_dollar_has_four_decimals(bot: BotHarness) -> None:
    price = bot.sim.set_us_price("AAPL", Decimal("0.5123"))
    (msg,) = await bot.say(BOB, "/price AAPL")
    assert f"${price:.4f}" in msg["text"]


@SQLITE_ONLY
async def test_domestic_price_unchanged_beside_us(bot: BotHarness) -> None:
    (msg,) = await bot.say(ALICE, "/price 삼성")  # still KRX candidates, not a US stock
    assert all(data.startswith("pq:") for _, data in BotApiEmulator.buttons(msg))
    (msg,) = await bot.say(ALICE, "/price 005930")
    assert "삼성전자" in msg["text"] and "$" not in msg["text"]


# -- /buy, /sell ---------------------------------------------------------------------------------------------
async def us_card(bot: BotHarness, user: dict, text: str) -> dict:
    (card,) = await bot.say(user, text)
    assert BotApiEmulator.buttons(card), card["text"]
    return card


async def test_us_limit_buy_confirm_places_one_order(bot: BotHarness) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    card = await us_card(bot, ALICE, "/buy AAPL 3 190.50")
    text = card["text"]
    assert "매수" in text and "애플" in text and "$190.50" in text and "$571.50" in text
    assert "수수료" in text and "추정" in text and "₩" in text and "지금" in text
    await bot.press_button(ALICE, card, 0)
    final = bot.current(card)
    assert "주문 접수" in final["text"] and "reply_markup" not in final, final["text"]


@SQLITE_ONLY
async def test_us_session_order_refused_on_paper_with_reason(bot: BotHarness) -> None:
    first_no = bot.sim.us_trading.next_no
    (msg,) = await bot.say(ALICE, "/sell TSLA 1 moc")
    assert "모의투자" in msg["text"] and "MOC" in msg["text"] and "reply_markup" not in msg
    (msg,) = await bot.say(BOB, "/buy AAPL 1 loc 190.50")
    assert "Paper trading" in msg["text"] and "LOC" in msg["text"]
    (msg,) = await bot.say(BOB, "/buy AAPL 1 moo")
    assert "sells only" in msg["text"]
    assert bot.sim.us_trading.next_no == first_no  # nothing reached the simulator's order book


@SQLITE_ONLY
@pytest.mark.parametrize(("text", "expected"), [
    ("/buy AAPL 1", "limit price"), ("/buy AAPL 1 190.555", "$190.55 or $190.56"),
    ("/buy AAPL 1 market", "no market orders"), ("/buy AAPL 1 0.001", "at least $0.01"),
    ("/buy AAPL 0 190", "quantity")])
async def test_us_order_bad_input_changes_nothing(bot: BotHarness, text: str, expected: str) -> None:
    (msg,) = await bot.say(BOB, text)
    assert expected.lower() in msg["text"].lower() and "reply_markup" not in msg, msg["text"]


async def test_us_limit_buy_fills_and_balance_shows_dollars(bot: BotHarness) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    card = await us_card(bot, ALICE, "/buy 애플 3 190.50")
    await bot.press_button(ALICE, card, 0)
    assert "주문 접수" in bot.current(card)["text"]
    (balance,) = await bot.say(ALICE, "/balance")
    text = balance["text"]
    assert "미국 주식" in text and "AAPL" in text and "3주" in text and "$190.25" in text, text
    assert "달러 예수금 $" in text and "₩" in text and "추정" in text and "1,400.00" in text


async def test_us_far_limit_modify_then_cancel(bot: BotHarness) -> None:
    bot.sim.set_us_price("TSLA", Decimal("250.00"))
    card = await us_card(bot, BOB, "/buy TSLA 2 200.00")
    await bot.press_button(BOB, card, 0)
    final = bot.current(card)["text"]
    assert "placed" in final.lower() or "accepted" in final.lower(), final
    (orders,) = await bot.say(BOB, "/orders")
    assert "🇺🇸" in orders["text"] and "TSLA" in orders["text"] and "$200.00" in orders["text"], orders["text"]
    order_no = next(data.split(":", 1)[1] for _, data in BotApiEmulator.buttons(orders) if data.startswith("pc:"))
    revise_button = next(i for i, (_, data) in enumerate(BotApiEmulator.buttons(orders)) if data.startswith("pr:"))
    await bot.press_button(BOB, orders, revise_button)
    prompt = await bot.wait_for_message(BOB["id"], f"/modify {order_no} 200.01")  # a tick up: a new price
    assert "🇺🇸" in prompt["text"]
    revise = await us_card(bot, BOB, f"/modify {order_no} 201.50")
    assert "$200.00" in revise["text"] and "$201.50" in revise["text"]
    await bot.press_button(BOB, revise, 0)
    revised = bot.current(revise)["text"]
    assert "revision accepted" in revised.lower(), revised
    (orders,) = await bot.say(BOB, "/orders")
    assert "$201.50" in orders["text"] and "$200.00" not in orders["text"], orders["text"]
    new_no = next(data.split(":", 1)[1] for _, data in BotApiEmulator.buttons(orders) if data.startswith("pc:"))
    cancel = await us_card(bot, BOB, f"/cancel {new_no}")
    await bot.press_button(BOB, cancel, 0)
    assert "cancellation accepted" in bot.current(cancel)["text"].lower()
    (orders,) = await bot.say(BOB, "/orders")
    assert "TSLA" not in orders["text"], orders["text"]


async def test_us_order_reply_lost_is_found_not_sent_twice(bot: BotHarness) -> None:
    """The order is processed but its reply is lost: found in the day's US orders, never sent again."""
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    first_no = bot.sim.us_trading.next_no
    card = await us_card(bot, ALICE, "/buy AAPL 1 150.00")
    bot.sim.faults.error_5xx_after_next, bot.sim.faults.paths = 1, (o.PATH_ORDER,)
    await bot.press_button(ALICE, card, 0)
    bot.sim.faults.clear()
    final = bot.current(card)["text"]
    assert "주문 접수" in final, final
    assert bot.sim.us_trading.next_no == first_no + 1  # exactly one order reached the book
    (journal,) = [r for r in await _rows(bot, OrderJournalRow) if r.market == "US"]
    assert journal.status == "accepted" and journal.kis_order_no and journal.exchange == "NASDAQ"
    assert journal.price == Decimal(150) and journal.currency == "USD" and journal.order_type == "LIMIT"
    assert journal.market == "US" and journal.known_orders is not None


async def _rows(bot: BotHarness, table: type) -> list:
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        return list((await session.exec(select(table))).all())


@SQLITE_ONLY
async def test_us_chart_from_overseas_bars(bot: BotHarness) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    await bot.say(ALICE, "/chart AAPL w")
    photo = [m for m in bot.api.bot_messages(ALICE["id"]) if "photo" in m][-1]
    assert photo["_photo_bytes"][:8] == b"\x89PNG\r\n\x1a\n"
    assert "AAPL" in photo["caption"] and "주봉" in photo["caption"] and "$190.25" in photo["caption"], photo["caption"]


@SQLITE_ONLY
async def test_status_says_which_us_session_is_on(bot: BotHarness) -> None:
    (msg,) = await bot.say(ALICE, "/status")
    assert "미국 시장 🇺🇸: 정규장" in msg["text"], msg["text"]


async def test_paper_reset_clears_the_us_ledger(bot: BotHarness) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    card = await us_card(bot, ALICE, "/buy AAPL 2 190.50")
    await bot.press_button(ALICE, card, 0)
    resting = await us_card(bot, ALICE, "/buy AAPL 1 150.00")
    await bot.press_button(ALICE, resting, 0)
    (balance,) = await bot.say(ALICE, "/balance")
    assert "AAPL" in balance["text"] and "달러 예수금" in balance["text"]
    reset = await us_card(bot, ALICE, "/reset")
    await bot.press_button(ALICE, reset, 0)
    (balance,) = await bot.say(ALICE, "/balance")
    assert "AAPL" not in balance["text"], balance["text"]
    assert "미국 주식" not in balance["text"] or "달러 예수금 $10,000.00" in balance["text"], balance["text"]
    (orders,) = await bot.say(ALICE, "/orders")
    assert "AAPL" not in orders["text"] and "🇺🇸" not in orders["text"], orders["text"]


async def test_us_fill_is_pushed_from_the_notice_feed_and_journalled(bot: BotHarness) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    card = await us_card(bot, ALICE, "/buy AAPL 2 180.00")  # rests below the market
    await bot.press_button(ALICE, card, 0)
    assert "주문 접수" in bot.current(card)["text"]
    bot.sim.set_us_price("AAPL", Decimal("179.50"))  # the market comes down through it: it fills at $180.00
    push = await bot.wait_for_message(ALICE["id"], "체결 🇺🇸")
    assert "🇺🇸" in push["text"] and "애플" in push["text"] and "2주" in push["text"] and "$180.00" in push["text"], \
        push["text"]
    for _ in range(100):
        (journal,) = [r for r in await _rows(bot, OrderJournalRow) if r.market == "US"]
        if journal.status == "filled":
            break
        await asyncio.sleep(0.05)
    assert journal.status == "filled"


async def test_us_order_left_unknown_is_found_by_reconciliation_and_told_in_dollars(bot: BotHarness) -> None:
    """A US card whose outcome is unknown (the process lost it after sending): reconciliation finds the
    order in the day's US orders, settles the journal and edits the card, in dollars; nothing is re-sent."""
    assert bot.runtime is not None
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    card = await us_card(bot, ALICE, "/buy AAPL 1 150.00")
    runtime = bot.runtime
    row = await runtime.orders.cards.get(BotApiEmulator.buttons(card)[0][1].split(":", 1)[1])
    assert row is not None and row.market == "US"
    account = await runtime.accounts.for_user(ALICE["id"])
    broker = runtime.services.us.market.broker(account.client)  # type: ignore[union-attr]
    # What the lost process did: claimed the card, journalled it with the snapshot, sent the order.
    claimed, refused = await runtime.orders.cards.claim(row.id, ALICE["id"], card["message_id"], CardStatus.SUBMITTING,
                                                        _open_journal(runtime))
    assert refused is None and claimed is not None
    (journal,) = [r for r in await _rows(bot, OrderJournalRow) if r.market == "US"]
    await runtime.orders.journal.mark_sending(journal.id, str(account.account), set())  # type: ignore[arg-type]
    first_no = bot.sim.us_trading.next_no
    placed = await broker.place(OrderSide.BUY, "AAPL", 1, Money.usd(150))
    assert await runtime.reconciler.run_once() == 0
    (journal,) = [r for r in await _rows(bot, OrderJournalRow) if r.market == "US"]
    assert journal.status == "accepted" and journal.kis_order_no == placed.ack.order_no
    text = (await bot.wait_for_message(ALICE["id"], placed.ack.order_no))["text"]
    assert "$150.00" in text and "₩" not in text, text
    assert bot.sim.us_trading.next_no == first_no + 1  # nothing re-sent


def _open_journal(runtime: Any) -> Any:
    async def open_journal(session: Any, row: Any) -> None:
        await runtime.orders.journal.add(session, row, "lost-process")
    return open_journal


class _KstNoon(UsCalendar):
    """The bot's US calendar held at Monday 2026-12-07 12:00 KST: KIS's daytime session, reservations open."""

    AT = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))

    def state(self, now: dt.datetime | None = None) -> Any:
        return super().state(self.AT)

    def reservation_open(self, now: dt.datetime) -> bool:
        return super().reservation_open(self.AT)


async def test_outside_us_hours_a_limit_order_becomes_a_reservation(bot: BotHarness) -> None:
    assert bot.runtime is not None and bot.runtime.services.us is not None
    bot.runtime.services.us.market.calendar = _KstNoon()  # the simulator itself takes orders at any hour
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    (refused,) = await bot.say(BOB, "/buy AAPL 1 loc 190.00")  # paper: limit only, reservations too
    assert "Paper trading" in refused["text"]
    card = await us_card(bot, ALICE, "/buy AAPL 2 190.50")
    assert "예약 주문" in card["text"] and "12-07 23:30" in card["text"], card["text"]
    await bot.press_button(ALICE, card, 0)
    final = bot.current(card)["text"]
    assert "주문 접수" in final and "23:30" in final, final
    (journal,) = [r for r in await _rows(bot, OrderJournalRow) if r.market == "US"]
    assert journal.action == "reserve" and journal.status == "accepted" and journal.kis_order_no


class _Saturday(_KstNoon):
    AT = dt.datetime(2026, 12, 12, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))


async def test_when_kis_takes_no_us_order_the_card_is_refused_with_the_next_open(bot: BotHarness) -> None:
    assert bot.runtime is not None and bot.runtime.services.us is not None
    bot.runtime.services.us.market.calendar = _Saturday()
    (msg,) = await bot.say(ALICE, "/buy AAPL 1 190.50")
    assert "주문을 받지 않습니다" in msg["text"] and "12-14 23:30" in msg["text"] and "reply_markup" not in msg, \
        msg["text"]
    (quote,) = await bot.say(BOB, "/price AAPL")
    assert "closed (weekend)" in quote["text"] and "12-14 23:30 KST" in quote["text"], quote["text"]


async def test_a_reservation_left_unknown_is_told_to_be_checked_not_called_unplaced(bot: BotHarness) -> None:
    """A reservation is no order until the open (and paper cannot list reservations): an unknown outcome
    is told as unverifiable, never as "not placed"."""
    assert bot.runtime is not None and bot.runtime.services.us is not None
    runtime = bot.runtime
    runtime.services.us.market.calendar = _KstNoon()
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    card = await us_card(bot, ALICE, "/buy AAPL 1 150.00")
    row = await runtime.orders.cards.get(BotApiEmulator.buttons(card)[0][1].split(":", 1)[1])
    assert row is not None and row.action == "reserve"
    claimed, refused = await runtime.orders.cards.claim(row.id, ALICE["id"], card["message_id"], CardStatus.SUBMITTING,
                                                        _open_journal(runtime))
    assert refused is None and claimed is not None
    (journal,) = [r for r in await _rows(bot, OrderJournalRow) if r.market == "US"]
    account = await runtime.accounts.for_user(ALICE["id"])
    await runtime.orders.journal.mark_sending(journal.id, str(account.account), set())  # type: ignore[arg-type]
    assert await runtime.reconciler.run_once() == 0
    (journal,) = [r for r in await _rows(bot, OrderJournalRow) if r.market == "US"]
    assert journal.status == "uncertain" and journal.told_at is not None and "reservation" in (journal.message or "")


async def test_a_filled_us_order_found_by_reconciliation_is_journalled_and_pushed_in_dollars(bot: BotHarness) -> None:
    assert bot.runtime is not None
    runtime = bot.runtime
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    card = await us_card(bot, ALICE, "/buy AAPL 2 191.00")
    row = await runtime.orders.cards.get(BotApiEmulator.buttons(card)[0][1].split(":", 1)[1])
    assert row is not None
    claimed, refused = await runtime.orders.cards.claim(row.id, ALICE["id"], card["message_id"], CardStatus.SUBMITTING,
                                                        _open_journal(runtime))
    assert refused is None and claimed is not None
    (journal,) = [r for r in await _rows(bot, OrderJournalRow) if r.market == "US"]
    account = await runtime.accounts.for_user(ALICE["id"])
    await runtime.orders.journal.mark_sending(journal.id, str(account.account), set())  # type: ignore[arg-type]
    broker = runtime.services.us.market.broker(account.client)  # type: ignore[union-attr]
    placed = await broker.place(OrderSide.BUY, "AAPL", 2, Money.usd(191))  # marketable: fills at once
    assert await runtime.reconciler.run_once() == 0
    (journal,) = [r for r in await _rows(bot, OrderJournalRow) if r.market == "US"]
    assert journal.status == "filled" and journal.kis_order_no == placed.ack.order_no
    push = await bot.wait_for_message(ALICE["id"], "체결 🇺🇸")
    # (2 shares below the limit, from KIS's list: their average, which one execution or two may make)
    assert "2주" in push["text"] and "$190.25" in push["text"] and "원" not in push["text"], push["text"]


async def test_us_holdings_bought_elsewhere_show_in_balance_without_asking(bot: BotHarness) -> None:
    """A user who never sent a US order through the bot still sees US holdings KIS reports (bought in the
    KIS app); a user with none sees no US part (a paper account's idle dollar cash is not news)."""
    assert bot.runtime is not None and bot.runtime.services.us is not None
    (plain,) = await bot.say(BOB, "/balance")
    assert "AAPL" not in plain["text"] and "미국 주식" not in plain["text"] and "US stocks" not in plain["text"], \
        plain["text"]
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    broker = await bot.runtime.services.us.market.broker_for(ALICE["id"])  # as the KIS app would: no journal
    await broker.place(OrderSide.BUY, "AAPL", 2, Money.usd("190.50"))
    assert await bot.runtime.services.us.orders.trades_us(ALICE["id"]) is False
    (balance,) = await bot.say(ALICE, "/balance")
    assert "미국 주식" in balance["text"] and "AAPL" in balance["text"] and "2주" in balance["text"], balance["text"]


def _sim_reservations(bot: BotHarness) -> dict[str, str]:
    """Every reservation the simulator holds: its status by number."""
    return {r.reservation_no: r.status for a in bot.sim.us_trading.accounts.values() for r in a.reservations}


@pytest.mark.parametrize("from_journal", [False, True], ids=["kis-list", "journal"])
async def test_a_reservation_is_listed_and_cancelled_from_chat_by_its_owner_only(
        bot: BotHarness, from_journal: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real accounts list reservations from KIS's order-resv-list; paper ones (KIS's paper server has no
    list) from the journal: both paths, against the simulator's real family."""
    assert bot.runtime is not None and bot.runtime.services.us is not None
    if from_journal:
        monkeypatch.setattr(KisOverseasClient, "paper", property(lambda self: True))
    bot.runtime.services.us.market.calendar = _KstNoon()
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    card = await us_card(bot, ALICE, "/buy AAPL 2 190.50")
    assert "/cancel" in card["text"] and "KIS 앱" not in card["text"], card["text"]
    await bot.press_button(ALICE, card, 0)
    (journal,) = [r for r in await _rows(bot, OrderJournalRow) if r.market == "US"]
    number = journal.kis_order_no
    assert number and _sim_reservations(bot)[number] == "received"
    (orders,) = await bot.say(ALICE, "/orders")
    assert "예약" in orders["text"] and number in orders["text"] and "12-07 23:30" in orders["text"], orders["text"]
    assert "$190.50" in orders["text"]
    assert ("pc:" + number) in [data for _, data in BotApiEmulator.buttons(orders)]
    # Another user can neither make a card for it nor confirm the owner's card.
    (refused,) = await bot.say(BOB, f"/cancel {number}")
    assert "reply_markup" not in refused, refused["text"]
    cancel = await us_card(bot, ALICE, f"/cancel {number}")
    assert "예약 주문 취소" in cancel["text"] and number in cancel["text"], cancel["text"]
    await bot.press_button(BOB, cancel, 0)
    assert _sim_reservations(bot)[number] == "received"
    assert "reply_markup" in bot.current(cancel)  # still the owner's to press
    await bot.press_button(ALICE, cancel, 0)
    final = bot.current(cancel)["text"]
    assert "reply_markup" not in bot.current(cancel) and "취소" in final, final
    assert _sim_reservations(bot)[number] == "cancelled"
    cancels = [r for r in await _rows(bot, OrderJournalRow) if r.market == "US" and r.action == "cancel"]
    assert len(cancels) == 1 and cancels[0].status == "accepted" and cancels[0].order_type == "RESV"
    assert cancels[0].original_order_no == number and cancels[0].told_at is not None
    (orders,) = await bot.say(ALICE, "/orders")
    assert number not in orders["text"], orders["text"]
    (again,) = await bot.say(ALICE, f"/cancel {number}")  # gone: refused, nothing sent
    assert "reply_markup" not in again, again["text"]


@pytest.mark.parametrize("from_journal", [False, True], ids=["kis-list", "journal"])
async def test_a_reservation_gone_before_the_press_is_refused(bot: BotHarness, from_journal: bool,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelled in KIS's app after the card was made: KIS's list no longer has it, so nothing is sent;
    where only the journal knows it (paper), KIS's refusal is told as it came."""
    assert bot.runtime is not None and bot.runtime.services.us is not None
    if from_journal:
        monkeypatch.setattr(KisOverseasClient, "paper", property(lambda self: True))
    bot.runtime.services.us.market.calendar = _KstNoon()
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    card = await us_card(bot, BOB, "/buy AAPL 1 190.50")
    await bot.press_button(BOB, card, 0)
    (journal,) = [r for r in await _rows(bot, OrderJournalRow) if r.market == "US"]
    number = journal.kis_order_no
    assert number
    cancel = await us_card(bot, BOB, f"/cancel {number}")
    for a in bot.sim.us_trading.accounts.values():  # cancelled in KIS's app meanwhile
        for r in a.reservations:
            if r.reservation_no == number:
                r.status = "cancelled"
    await bot.press_button(BOB, cancel, 0)
    final = bot.current(cancel)["text"]
    assert "reply_markup" not in bot.current(cancel), final
    (row,) = [r for r in await _rows(bot, OrderJournalRow) if r.market == "US" and r.action == "cancel"]
    if from_journal:
        assert row.status == "rejected" and "예약주문" in (row.message or "") and row.told_at is not None, row
    else:
        assert "no longer a pending reservation" in final, final
        assert row.status == "failed" and row.sent_at is None and row.told_at is not None, row
