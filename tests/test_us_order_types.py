"""US session order types as the trader reads them, end to end (real PTB Application ↔ fake Bot API ↔
service ↔ simulator): an MOO order is never listed or cancelled as an MOC (nor as "limit $0.00"), and an
on-close (on-open) card says which close (open) it meets, in KST; one that can meet none today is refused
with when it can be placed again."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import overseas_protocol as o
from chatbot.kis.overseas_protocol import UsExchange, UsOrderDivision
from chatbot.markets.us_hours import UsCalendar
from chatbot.service.views import Mode
from chatbot.storage.tables import OrderJournalRow
from tests.harness import BotHarness, confirm

ALICE = BotApiEmulator.user(9301, "ko")
BOB = BotApiEmulator.user(9302, "en")
KST = dt.timezone(dt.timedelta(hours=9))


@pytest.fixture
def bot(us_open_bot: BotHarness) -> BotHarness:
    return us_open_bot


async def _holds_aapl(bot: BotHarness, user: dict[str, Any], quantity: int) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    final = await confirm(bot, user, f"/buy AAPL {quantity} 190.50")  # fills at once (always open)
    assert "주문 접수" in final["text"] or "accepted" in final["text"].lower(), final["text"]


# -- /orders and /cancel: an MOO is an MOO ----------------------------------------------------------------------
async def test_an_moo_sell_is_listed_and_cancelled_as_moo_not_moc(bot: BotHarness) -> None:
    """KIS's open-order list has no order type: an MOO and an MOC both list at a price of 0. /orders
    showed every such order as "MOC 장마감시장가", and its cancel card as "@ $0.00" at "지정가" (limit).
    The bot's own MOO is now told from its journal; an unpriced order it did not send says "MOO or MOC"."""
    assert bot.runtime is not None
    await _holds_aapl(bot, ALICE, 2)
    (account_id,) = bot.sim.us_trading.accounts
    now = dt.datetime.now(dt.UTC)
    # Two MOO sells waiting for the opening auction (a paper server takes limit orders only: placed on the
    # simulator directly, the way a reservation is sent at the open). The first one the bot sent (journalled
    # as the bot journals an MOO it sends on a real account), the second was placed in KIS's app.
    mine = bot.sim.us_trading.place(account_id, "AAPL", UsExchange.NASDAQ, o.SIDE_SELL, UsOrderDivision.MOO, 1, 0,
                                    now, reservation_no="R-1")
    bot.sim.us_trading.place(account_id, "AAPL", UsExchange.NASDAQ, o.SIDE_SELL, UsOrderDivision.MOO, 1, 0, now,
                             reservation_no="R-2")
    async with bot.runtime.db.write() as session:
        session.add(OrderJournalRow(
            idempotency_key="moo-sent-by-the-bot", owner_id=ALICE["id"], environment=Mode.PAPER.setting,
            account=account_id, action="order", side="sell", code="AAPL", quantity=1, price=None, currency="USD",
            kis_order_no=mine.order_no, status="accepted", market="US", exchange="NASDAQ", order_type="MOO"))
    (orders,) = await bot.say(ALICE, "/orders")
    text = orders["text"]
    assert "MOC" not in text.replace("MOO 또는 MOC", ""), text  # never called an MOC
    mine_line = next(line for line in text.split("\n") if mine.order_no in line)
    mine_detail = text.split(mine_line, 1)[1].split("\n")[1]
    assert "MOO 장개시시장가" in mine_detail, text
    assert "시장가 (MOO 또는 MOC)" in text, text  # the one the bot did not send: either, not a guess
    (card,) = await bot.say(ALICE, f"/cancel {mine.order_no}")
    assert BotApiEmulator.buttons(card), card["text"]
    assert "MOO 장개시시장가" in card["text"] and "$0.00" not in card["text"] and "지정가" not in card["text"], \
        card["text"]


# -- the cards of on-close and on-open orders: which auction, when ----------------------------------------------
class _HeldAt(UsCalendar):
    """The bot's US calendar held at one moment (the simulator takes orders at any hour)."""

    def __init__(self, at: dt.datetime) -> None:
        super().__init__()
        self.at = at

    def state(self, now: dt.datetime | None = None) -> Any:
        return super().state(self.at)

    def reservation_open(self, now: dt.datetime) -> bool:
        return super().reservation_open(self.at)


PRE_MARKET = dt.datetime(2026, 12, 7, 20, 0, tzinfo=KST)  # Monday: the regular session opens 23:30, closes 06:00
REGULAR = dt.datetime(2026, 12, 7, 23, 45, tzinfo=KST)
AFTER_MARKET = dt.datetime(2026, 12, 8, 6, 30, tzinfo=KST)  # Monday's close (06:00 KST) has passed


def _real_account_cards(bot: BotHarness, at: dt.datetime) -> None:
    """Session order types exist on real accounts only (KIS's paper server takes limits): the US order
    service is told it serves a real account, for cards that are shown and never pressed."""
    assert bot.runtime is not None and bot.runtime.services.us is not None
    us = bot.runtime.services.us
    us.orders.mode = Mode.REAL
    us.market.calendar = _HeldAt(at)


async def test_an_moc_card_says_which_close_it_meets_in_kst(bot: BotHarness) -> None:
    await _holds_aapl(bot, ALICE, 1)
    await _holds_aapl(bot, BOB, 1)
    _real_account_cards(bot, PRE_MARKET)
    (card,) = await bot.say(ALICE, "/sell AAPL 1 moc")
    assert BotApiEmulator.buttons(card), card["text"]
    assert "MOC 장마감시장가" in card["text"] and "정규장 종가 (12-08 06:00 한국시간)" in card["text"], card["text"]
    assert "오늘" not in card["text"], card["text"]  # Monday's close is Tuesday 06:00 in Seoul
    (card,) = await bot.say(BOB, "/sell AAPL 1 moo")
    assert "Meets the next regular open (12-07 23:30 KST)" in card["text"], card["text"]


async def test_after_the_close_an_moc_is_refused_with_the_next_close_not_carded_for_today(bot: BotHarness) -> None:
    """In the after-market the day's closing auction is over: a card promised "오늘 정규장 종가" for an
    order KIS refuses ("해당 주문구분의 주문가능시간이 아닙니다"). Now no card: the reason and the next close."""
    await _holds_aapl(bot, ALICE, 1)
    await _holds_aapl(bot, BOB, 1)
    _real_account_cards(bot, AFTER_MARKET)
    (msg,) = await bot.say(ALICE, "/sell AAPL 1 moc")
    assert "reply_markup" not in msg, msg["text"]
    assert "정규장 마감 전까지만" in msg["text"] and "12-09 06:00" in msg["text"], msg["text"]
    (msg,) = await bot.say(BOB, "/sell AAPL 1 loc 190.00")
    assert "reply_markup" not in msg and "before the regular close" in msg["text"], msg["text"]
    _real_account_cards(bot, REGULAR)  # the open has passed: an on-open order meets tomorrow's at the earliest
    (msg,) = await bot.say(BOB, "/sell AAPL 1 moo")
    assert "reply_markup" not in msg and "12-08 23:30 KST" in msg["text"], msg["text"]
    (card,) = await bot.say(BOB, "/sell AAPL 1 moc")  # the close is still ahead: carded, with when
    assert BotApiEmulator.buttons(card) and "Meets the regular close (12-08 06:00 KST)" in card["text"], card["text"]


# -- /modify: a revision keeps the order's type (KIS's revise sends no order type) --------------------------------
async def test_a_revise_card_keeps_the_orders_type_and_an_unpriced_one_is_not_carded(bot: BotHarness) -> None:
    """KIS revises a US order's price and quantity only (no ORD_DVSN): an LOC stays an LOC. The revise card
    called every order a limit meeting the market "now" (an LOC at its new price meets the close), and
    carded an MOO's "revision" from $0.00 to a price KIS does not give it (it stays an MOO)."""
    assert bot.runtime is not None
    await _holds_aapl(bot, ALICE, 2)
    (account_id,) = bot.sim.us_trading.accounts
    now = dt.datetime.now(dt.UTC)
    loc = bot.sim.us_trading.place(account_id, "AAPL", UsExchange.NASDAQ, o.SIDE_SELL, UsOrderDivision.LOC, 1,
                                   1_902_500, now)
    moo = bot.sim.us_trading.place(account_id, "AAPL", UsExchange.NASDAQ, o.SIDE_SELL, UsOrderDivision.MOO, 1, 0,
                                   now, reservation_no="R-9")
    async with bot.runtime.db.write() as session:
        for number, kind, limit in ((loc.order_no, "LOC", Decimal("190.25")), (moo.order_no, "MOO", None)):
            session.add(OrderJournalRow(
                idempotency_key=f"sent-by-the-bot-{kind}", owner_id=ALICE["id"], environment=Mode.PAPER.setting,
                account=account_id, action="order", side="sell", code="AAPL", quantity=1, price=limit,
                currency="USD", kis_order_no=number, status="accepted", market="US", exchange="NASDAQ",
                order_type=kind))
    (card,) = await bot.say(ALICE, f"/modify {loc.order_no} 191.00")
    assert BotApiEmulator.buttons(card), card["text"]
    assert "$191.00" in card["text"] and "정규장 종가" in card["text"] and "지금" not in card["text"], card["text"]
    await bot.press_button(ALICE, card, 0)
    assert "정정 접수" in bot.current(card)["text"], bot.current(card)["text"]
    (orders,) = await bot.say(ALICE, "/orders")  # the revision (a new number) is still told as an LOC
    assert "LOC 장마감지정가 $191.00" in orders["text"], orders["text"]
    (msg,) = await bot.say(ALICE, f"/modify {moo.order_no} 191.00")
    assert "reply_markup" not in msg and "MOO" in msg["text"] and "/cancel" in msg["text"], msg["text"]
