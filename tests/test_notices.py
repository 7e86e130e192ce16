"""Notices as types: their outbox serialisation round-trips, rows written by the bot before notices were
types read the same, and the sender maps a notifier's answers (delivered, blocked, retry later,
an error) onto the outbox."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlmodel import col, select
from telegram import Chat, Message
from telegram.error import BadRequest, Forbidden, RetryAfter

from chatbot.alerts import outbox
from chatbot.alerts.notices import (
    AlertFired,
    Blocked,
    CardSnapshot,
    ConditionalNotice,
    Delivered,
    Delivery,
    Notice,
    NoticeFormatError,
    OrderFilled,
    OrderOutcome,
    RetryLater,
    decode,
)
from chatbot.alerts.outbox import OutboxSender, Push
from chatbot.service.notices import outcome_view
from chatbot.service.views import Mode, Money, Outcome
from chatbot.storage import Database
from chatbot.storage.tables import OutboxRow
from chatbot.telegram.notifier import TelegramNotifier
from chatbot.telegram.notifier import text as notifier_text

CARD = CardSnapshot(token="tok123", mode="PAPER", action="order", side="buy", code="005930", name="삼성전자",
                    name_en="Samsung Electronics", quantity=3, price=70_000, quoted_price=70_100, order_no=None)
NOTICES: list[Notice] = [
    AlertFired(7, "ko", "005930", "삼성전자", "above", 71_000, 71_100, "101500", "+5", True, 67_600),
    AlertFired(8, "en", "000660", "SK hynix", "below", 150_000, 149_900, "090001"),
    OrderFilled("en", "0000012345", "005930", "삼성전자", "sell", 2, 70_000, "093000"),
    OrderOutcome("ko", CARD, Outcome.PLACED.value, "0000012345", "found in KIS's list", 42),
    OrderOutcome("en", CardSnapshot("t", "REAL", "cancel", "sell", "005930", "005930", "", 1, None, 0, "0000000077"),
                 Outcome.UNCERTAIN.value),
]


@pytest.mark.parametrize("notice", NOTICES, ids=lambda n: type(n).__name__)
def test_a_notice_reads_back_as_it_was_written(notice: Notice) -> None:
    stored = json.loads(json.dumps(notice.payload()))  # what the JSON column gives back
    assert decode(notice.KIND, stored) == notice


# Rows as the bot wrote them before notices were types (payloads copied from that code).
OLD_ROWS: list[tuple[str, dict[str, Any], Notice]] = [
    ("alert", {"alert_id": 3, "lang": "ko", "code": "005930", "name": "삼성전자", "direction": "above",
               "threshold": 71_000, "price": 71_100, "time": "101500", "percent": None, "repeat": False,
               "reference_price": 70_000},
     AlertFired(3, "ko", "005930", "삼성전자", "above", 71_000, 71_100, "101500", None, False, 70_000)),
    ("alert", {"lang": "en", "name": "Samsung Electronics", "code": "005930", "price": 71000,  # a lean one
               "direction": "above", "threshold": 71000, "percent": None, "time": "101500"},
     AlertFired(0, "en", "005930", "Samsung Electronics", "above", 71_000, 71_000, "101500")),
    ("fill", {"lang": "ko", "order_no": "0000012345", "code": "005930", "name": "삼성전자", "side": "buy",
              "quantity": 2, "price": 69_900, "time": "093000"},  # the fill watcher's
     OrderFilled("ko", "0000012345", "005930", "삼성전자", "buy", 2, 69_900, "093000")),
    ("fill", {"lang": "en", "order_no": "12345", "name": "005930", "side": "sell", "quantity": 1,
              "price": 70_000},  # without code and time
     OrderFilled("en", "12345", "", "005930", "sell", 1, 70_000, "")),
    ("order", {"lang": "ko", "message_id": 42, "outcome": "placed", "order_no": "0000012345",
               "message": "found in KIS's list of the day's orders",
               "card": {"token": "tok123", "mode": "PAPER", "action": "order", "side": "buy", "code": "005930",
                        "name": "삼성전자", "name_en": "Samsung Electronics", "quantity": 3, "price": 70_000,
                        "quoted_price": 70_100, "order_no": None}},
     OrderOutcome("ko", CARD, "placed", "0000012345", "found in KIS's list of the day's orders", 42)),
    ("order", {"lang": "en", "message_id": None, "outcome": "not_placed", "order_no": None,  # card gone
               "message": "never sent",
               "card": {"token": "k", "mode": "REAL", "action": "order", "side": "sell", "code": "005930",
                        "name": "005930", "name_en": "", "quantity": 1, "price": None, "quoted_price": 0,
                        "order_no": None}},
     OrderOutcome("en", CardSnapshot("k", "REAL", "order", "sell", "005930", "005930", "", 1, None, 0, None),
                  "not_placed", None, "never sent", None)),
]


@pytest.mark.parametrize(("kind", "payload", "expected"), OLD_ROWS)
def test_rows_written_before_notices_were_types_read_the_same(kind: str, payload: dict[str, Any],
                                                              expected: Notice) -> None:
    assert decode(kind, payload) == expected


def test_an_old_order_row_gives_the_card_view_it_gave_before() -> None:
    view = outcome_view(decode("order", OLD_ROWS[4][1]))  # type: ignore[arg-type]
    card = view.result.card
    assert card is not None and view.message_id == 42 and view.language == "ko"
    assert view.result.outcome is Outcome.PLACED and view.result.order_no == "0000012345"
    assert card.mode is Mode.PAPER and card.symbol.name_en == "Samsung Electronics"
    assert card.amount == Money.krw(210_000) and card.quoted_price == Money.krw(70_100)
    assert card.commission >= Money.krw(0)
    market = outcome_view(decode("order", OLD_ROWS[5][1]))  # type: ignore[arg-type]
    assert market.message_id is None and market.result.card is not None and market.result.card.amount == Money.krw(0)


# Amounts carry their currency (issue 14): a push prints ₩ or $ from the notice's currency, rows written
# before payloads named it included (a US alert's key tells dollars).
OLD_US_ALERT = {"alert_id": 9, "lang": "ko", "code": "DNASAAPL", "name": "애플", "direction": "above",
                "threshold": 2_000_000, "price": 2_005_000, "time": "233001", "percent": None, "repeat": False,
                "reference_price": 1_950_000}


@pytest.mark.parametrize(("kind", "payload", "currency", "shown", "absent"), [
    ("alert", OLD_ROWS[0][1], "KRW", ["₩71,100", "₩71,000 이상"], ["원"]),
    ("alert", OLD_ROWS[1][1], "KRW", ["₩71,000", "≥ ₩71,000"], ["KRW"]),
    ("alert", OLD_US_ALERT, "USD", ["(AAPL)", "$200.50", "$200.00 이상"], ["원", "₩"]),
    ("fill", OLD_ROWS[2][1], "KRW", ["@ ₩69,900"], ["원"]),
    ("fill", {"lang": "en", "order_no": "7", "code": "AAPL", "name": "Apple", "side": "buy", "quantity": 1,
              "price": 1_902_500, "time": "223000", "currency": "USD"}, "USD", ["@ $190.25"], ["₩"]),
])
def test_an_old_row_renders_its_amounts_with_their_currency(kind: str, payload: dict[str, Any], currency: str,
                                                            shown: list[str], absent: list[str]) -> None:
    notice = decode(kind, payload)
    assert isinstance(notice, AlertFired | OrderFilled) and notice.currency == currency
    text = notifier_text(notice)
    assert all(s in text for s in shown) and not any(a in text for a in absent), text


def test_a_notice_carries_money_and_writes_its_currency() -> None:
    us = AlertFired(1, "en", "DNASAAPL", "Apple", "below", 1_800_000, 1_799_900, "233001", currency="USD")
    assert us.threshold_money == Money.usd("180") and us.price_money == Money.usd("179.99")
    assert us.payload()["currency"] == "USD" and decode("alert", json.loads(json.dumps(us.payload()))) == us
    assert decode("alert", OLD_US_ALERT).reference_money == Money.usd("195")  # type: ignore[union-attr]
    assert NOTICES[0].payload()["currency"] == "KRW"  # type: ignore[union-attr]
    assert AlertFired(2, "ko", "005930", "삼성전자", "above", 71_000, 71_100, "").threshold_money == Money.krw(71_000)
    assert OrderFilled("ko", "1", "005930", "x", "buy", 1, 70_000, "").price_money == Money.krw(70_000)
    stop = ConditionalNotice("ko", 5, "triggered", "stop", "stop", "005930", "삼성전자", 3, 65_000, 64_900,
                             limit=64_800)
    assert (stop.trigger_money, stop.price_money, stop.limit_money) == (
        Money.krw(65_000), Money.krw(64_900), Money.krw(64_800))
    with pytest.raises(NoticeFormatError):
        decode("alert", {**OLD_US_ALERT, "currency": "XYZ"})


@pytest.mark.parametrize(("kind", "payload"), [
    ("sms", {"lang": "ko"}),  # a kind no bot wrote
    ("alert", {"lang": "ko", "code": "005930"}),  # no threshold, no price
    ("order", {"lang": "ko", "outcome": "placed"}),  # no card
    ("fill", {"order_no": "1", "name": "x", "side": "buy", "quantity": "two", "price": 1}),
])
def test_an_unreadable_row_is_a_format_error(kind: str, payload: dict[str, Any]) -> None:
    with pytest.raises(NoticeFormatError):
        decode(kind, payload)


class ScriptedNotifier:
    """Answers each delivery with the next scripted answer (an exception is raised)."""

    def __init__(self, *answers: Delivery | Exception) -> None:
        self.answers = list(answers)
        self.delivered: list[tuple[int, Notice]] = []

    async def deliver(self, chat_id: int, notice: Notice) -> Delivery:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        self.delivered.append((chat_id, notice))
        return answer


async def _rows(db: Database) -> dict[str, OutboxRow]:
    async with db.session() as session:
        return {r.dedupe_key: r for r in (await session.exec(select(OutboxRow).order_by(col(OutboxRow.id)))).all()}


async def test_the_sender_maps_what_the_notifier_answers(database: Database) -> None:
    fill = OrderFilled("ko", "1", "005930", "삼성전자", "buy", 1, 70_000, "090000")
    async with database.write() as session:
        written = await outbox.enqueue(session, [Push(f"k{i}", 10 + i, 20 + i, fill) for i in range(4)])
        again = await outbox.enqueue(session, [Push("k0", 10, 20, fill), Push("k9", 19, 29, NOTICES[0])])
        session.add(OutboxRow(dedupe_key="junk", owner_id=5, chat_id=5, kind="sms", payload={}))
    assert (written, again) == (4, 1)  # k0 was queued already: one event, one push
    blocked: list[int] = []

    async def on_blocked(owner_id: int) -> None:
        blocked.append(owner_id)

    notifier = ScriptedNotifier(Delivered(1), Blocked(), ConnectionError("down"), RetryLater(3), Delivered(2))
    sender = OutboxSender(database)
    sender.notifier, sender.on_blocked = notifier, on_blocked  # as start() sets them, without the loop
    assert await sender.drain() == 1  # k0 sent, k1 blocked, k2 failed, k3 asked to wait: the batch stops
    rows = await _rows(database)
    assert rows["k0"].status == "sent" and rows["k0"].sent_at is not None
    assert rows["k1"].status == "dead" and rows["k1"].last_error == "blocked by the user" and blocked == [11]
    assert (rows["k2"].status, rows["k2"].attempts) == ("pending", 1) and "ConnectionError" in str(rows["k2"].last_error)
    assert (rows["k3"].status, rows["k3"].attempts) == ("pending", 0)  # a flood wait is no failed attempt
    assert rows["junk"].status == "pending"  # not reached: the batch stopped at the flood wait
    assert [chat for chat, _ in notifier.delivered] == [20, 21, 23]

    notifier.answers = [Delivered(3), Delivered(4), Delivered(5)]
    assert await sender.drain() == 3  # k2 and k3, then k9; the junk row is dropped without a delivery
    rows = await _rows(database)
    assert {key: row.status for key, row in rows.items()} == {
        "k0": "sent", "k1": "dead", "k2": "sent", "k3": "sent", "k9": "sent", "junk": "dead"}
    assert "unknown notice kind" in str(rows["junk"].last_error)
    assert notifier.delivered[-1] == (29, NOTICES[0])


class StubBot:
    """What the Telegram notifier uses of a Bot: each call answers with the next scripted result."""

    def __init__(self, *results: object) -> None:
        self.results = list(results)
        self.calls: list[tuple[str, int, str]] = []

    async def _answer(self, method: str, chat_id: int, text: str) -> Any:
        self.calls.append((method, chat_id, text))
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return Message(int(result), date=dt.datetime.now(dt.UTC), chat=Chat(chat_id, Chat.PRIVATE))  # type: ignore[call-overload]

    async def send_message(self, chat_id: int, text: str) -> Any:
        return await self._answer("send", chat_id, text)

    async def edit_message_text(self, text: str, *, chat_id: int, message_id: int) -> Any:
        return await self._answer("edit", chat_id, text)


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # RetryAfter.retry_after's type
async def test_the_telegram_notifier_answers_for_the_outbox() -> None:
    alert, fill, outcome = NOTICES[0], NOTICES[2], NOTICES[3]
    bot = StubBot(7, Forbidden("bot was blocked by the user"), RetryAfter(5), BadRequest("Message is not modified"),
                  BadRequest("Message to edit not found"), 9)
    notifier = TelegramNotifier(bot)  # type: ignore[arg-type]
    assert await notifier.deliver(1, alert) == Delivered(7)
    assert await notifier.deliver(1, fill) == Blocked()
    assert await notifier.deliver(1, fill) == RetryLater(5)
    assert await notifier.deliver(1, outcome) == Delivered(42)  # the card already says it
    assert await notifier.deliver(1, outcome) == Delivered(9)  # the card is gone: a new message says it
    assert [method for method, _, _ in bot.calls] == ["send", "send", "send", "edit", "edit", "send"]
    assert "삼성전자" in bot.calls[0][2] and "10:15:00" in bot.calls[0][2] and "+5%" in bot.calls[0][2]
    assert "0000012345" in bot.calls[-1][2]
