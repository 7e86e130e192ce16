"""What the bot tells a user on its own (not in answer to a message), as types: a price alert fired
(:class:`AlertFired`), an order filled (:class:`OrderFilled`), an order's outcome learned after its
card was shown (:class:`OrderOutcome`), an accepted order the exchange refused afterwards (:class:`OrderRefused`).

A notice travels in the outbox (:mod:`chatbot.alerts.outbox`): written in the transaction of the event
that caused it, delivered afterwards by the front end's :class:`Notifier`. Its row holds ``kind``
and a JSON ``payload``; the serialisation here is the one every row has had since the outbox began
(``alert``, ``fill``, ``order`` and their keys), so rows written by an older bot read the same. A
reader is lenient about keys an older row may lack; a field added later must come with a default.

A front end implements :class:`Notifier`: it renders the notice in its own words and reports
:class:`Delivered`, :class:`Blocked` (the user blocked the bot: their pushes stop) or
:class:`RetryLater` (the platform asks to wait); any exception is a failed attempt, retried a few
times by the outbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from chatbot.alerts.daily_report import DailyReport
from chatbot.kis import overseas_protocol as o
from chatbot.markets.money import Currency, Money


class NoticeFormatError(ValueError):
    """An outbox row whose kind is unknown or whose payload lacks what its kind needs."""


@dataclass(frozen=True, slots=True)
class AlertFired:
    """A price alert crossed by a trade: ``price`` at ``time`` (HHMMSS, KST) reached ``threshold``.

    Prices are integers in ``currency``'s price units (whole won; 1/10,000 dollar), as the alert book
    counts them; :attr:`price_money` and the like give them as :class:`Money`. A row written before the
    payload named its currency gets it from the alert's key (a US realtime key, ``DNASAAPL``: USD)."""

    KIND: ClassVar[str] = "alert"

    alert_id: int
    language: str
    code: str
    name: str
    direction: str  # above | below
    threshold: int
    price: int
    time: str
    percent: str | None = None  # "+5" for an alert set as a move from the reference price
    repeat: bool = False
    reference_price: int | None = None
    currency: str = ""  # "": inferred from ``code`` (rows written before the payload named it)

    def __post_init__(self) -> None:
        object.__setattr__(self, "currency", Currency(self.currency or alert_currency(self.code)).value)

    @property
    def threshold_money(self) -> Money:
        return Money.of_price_units(self.threshold, self.currency)

    @property
    def price_money(self) -> Money:
        return Money.of_price_units(self.price, self.currency)

    @property
    def reference_money(self) -> Money | None:
        return None if self.reference_price is None else Money.of_price_units(self.reference_price, self.currency)

    def payload(self) -> dict[str, Any]:
        return {"alert_id": self.alert_id, "lang": self.language, "code": self.code, "name": self.name,
                "direction": self.direction, "threshold": self.threshold, "price": self.price, "time": self.time,
                "percent": self.percent, "repeat": self.repeat, "reference_price": self.reference_price,
                "currency": self.currency}

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> AlertFired:
        reference = p.get("reference_price")
        return cls(alert_id=int(p.get("alert_id") or 0), language=_language(p), code=str(p["code"]),
                   name=str(p["name"]), direction=str(p["direction"]), threshold=int(p["threshold"]),
                   price=int(p["price"]), time=str(p.get("time") or ""), percent=p.get("percent") or None,
                   repeat=bool(p.get("repeat")), reference_price=int(reference) if reference is not None else None,
                   currency=str(p.get("currency") or ""))


def alert_currency(code: str) -> Currency:
    """An alert's currency told by its key: a US realtime key (``DNASAAPL``: ``D`` + exchange + ticker) is
    in dollars, any KRX code in won."""
    us = code[:1] == "D" and not code[1:4].isdigit() and o.parse_realtime_key(code) is not None
    return Currency.USD if us else Currency.KRW


@dataclass(frozen=True, slots=True)
class OrderFilled:
    """Part or all of an order executed: ``quantity`` at ``price`` (one execution, not the total).

    Fills told from KIS's list of the day's orders (a catch-up, reconciliation: cumulative figures) have no time
    of their own (``time`` ""; the list's is the order's), and ``price_basis`` says what ``price`` is: "" the
    shares' own price, ``fills`` the average of these shares (several executions), ``order`` the order's average
    fill price so far (these shares' could not be derived)."""

    KIND: ClassVar[str] = "fill"

    language: str
    order_no: str
    code: str
    name: str
    side: str  # buy | sell
    quantity: int
    price: int  # in the currency's price units (whole won; USD: 1/10,000 dollar)
    time: str  # HHMMSS, KST, as KIS reported it; "": not known (a fill told from KIS's list)
    currency: str = "KRW"  # USD: a US fill (H0GSCNI0)
    price_basis: str = ""  # "": the fill's own price; fills | order: an average (see above)

    @property
    def price_money(self) -> Money:
        return Money.of_price_units(self.price, self.currency)

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {"lang": self.language, "order_no": self.order_no, "code": self.code,
                                "name": self.name, "side": self.side, "quantity": self.quantity, "price": self.price,
                                "time": self.time}
        if self.currency != "KRW":
            data["currency"] = self.currency
        if self.price_basis:
            data["price_basis"] = self.price_basis
        return data

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> OrderFilled:
        return cls(language=_language(p), order_no=str(p["order_no"]), code=str(p.get("code") or ""),
                   name=str(p["name"]), side="buy" if p["side"] == "buy" else "sell", quantity=int(p["quantity"]),
                   price=int(p["price"]), time=str(p.get("time") or ""), currency=str(p.get("currency") or "KRW"),
                   price_basis=basis if (basis := str(p.get("price_basis") or "")) in ("", "fills") else "order")


@dataclass(frozen=True, slots=True)
class OrderRefused:
    """An order KIS had accepted, refused afterwards by the exchange (an execution notice with its
    refused flag, RFUS_YN=1): it will not fill. ``quantity`` and ``price`` are the order's (price units
    of ``currency``; 0: a market order); ``reason`` is KIS's when the notice carries one, else "".

    ``change`` (``revise`` or ``cancel``): what the exchange refused was a revision or cancellation
    (``order_no`` its own number) of ``original_order_no``, which therefore did not take; the original
    order's state as looked up when the refusal came: ``original_open`` (None: it could not be looked up)
    with ``original_remaining`` shares left at ``original_price`` (price units; 0: market)."""

    KIND: ClassVar[str] = "refused"

    language: str
    order_no: str
    code: str
    name: str
    side: str  # buy | sell
    quantity: int
    price: int
    time: str = ""  # HHMMSS, KST
    reason: str = ""
    currency: str = "KRW"
    change: str = ""  # "": an order refused; revise | cancel: a revision or cancellation refused
    original_order_no: str = ""
    original_open: bool | None = None
    original_remaining: int = 0
    original_price: int = 0

    @property
    def price_money(self) -> Money:
        return Money.of_price_units(self.price, self.currency)

    @property
    def original_price_money(self) -> Money:
        return Money.of_price_units(self.original_price, self.currency)

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "lang": self.language, "order_no": self.order_no, "code": self.code, "name": self.name,
            "side": self.side, "quantity": self.quantity, "price": self.price, "time": self.time,
            "reason": self.reason, "currency": self.currency}
        if self.change:
            data.update(change=self.change, original_order_no=self.original_order_no,
                        original_open=self.original_open, original_remaining=self.original_remaining,
                        original_price=self.original_price)
        return data

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> OrderRefused:
        change = str(p.get("change") or "")
        is_open = p.get("original_open")
        return cls(language=_language(p), order_no=str(p["order_no"]), code=str(p.get("code") or ""),
                   name=str(p.get("name") or p.get("code") or ""), side="buy" if p["side"] == "buy" else "sell",
                   quantity=int(p["quantity"]), price=int(p.get("price") or 0), time=str(p.get("time") or ""),
                   reason=str(p.get("reason") or ""), currency=str(p.get("currency") or "KRW"),
                   change=change if change in ("revise", "cancel") else "",
                   original_order_no=str(p.get("original_order_no") or ""),
                   original_open=None if is_open is None else bool(is_open),
                   original_remaining=int(p.get("original_remaining") or 0),
                   original_price=int(p.get("original_price") or 0))


@dataclass(frozen=True, slots=True)
class CardSnapshot:
    """An order card as it was shown: enough to show it again with its outcome."""

    token: str
    mode: str
    action: str  # order | cancel
    side: str
    code: str
    name: str
    name_en: str
    quantity: int
    price: int | None  # None: a market order
    quoted_price: int
    order_no: str | None  # the order a cancel card cancels
    market: str = "KRX"  # US: prices are ten-thousandths of a dollar (chatbot.service.us_orders)
    exchange: str = ""  # US: NASDAQ, NYSE, AMEX
    order_type: str = ""  # US: LIMIT, LOO, LOC, MOO, MOC

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "token": self.token, "mode": self.mode, "action": self.action, "side": self.side, "code": self.code,
            "name": self.name, "name_en": self.name_en, "quantity": self.quantity, "price": self.price,
            "quoted_price": self.quoted_price, "order_no": self.order_no}
        if self.market != "KRX":
            data.update(market=self.market, exchange=self.exchange, order_type=self.order_type)
        return data

    @classmethod
    def from_payload(cls, c: Mapping[str, Any]) -> CardSnapshot:
        price = c.get("price")
        return cls(token=str(c["token"]), mode=str(c["mode"]), action=str(c["action"]), side=str(c["side"]),
                   code=str(c["code"]), name=str(c["name"]), name_en=str(c.get("name_en") or ""),
                   quantity=int(c["quantity"]), price=int(price) if price is not None else None,
                   quoted_price=int(c.get("quoted_price") or 0), order_no=c.get("order_no") or None,
                   market=str(c.get("market") or "KRX"), exchange=str(c.get("exchange") or ""),
                   order_type=str(c.get("order_type") or ""))


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """An order's outcome learned after its card was shown (reconciliation): the card is edited to say
    it, or a new message says it when ``message_id`` is None or the card cannot be edited."""

    KIND: ClassVar[str] = "order"

    language: str
    card: CardSnapshot
    outcome: str  # a value of chatbot.service.views.Outcome
    order_no: str | None = None
    message: str = ""
    message_id: int | None = None  # the card's message

    def payload(self) -> dict[str, Any]:
        return {"lang": self.language, "message_id": self.message_id, "outcome": self.outcome,
                "order_no": self.order_no, "message": self.message, "card": self.card.payload()}

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> OrderOutcome:
        message_id = p.get("message_id")
        return cls(language=_language(p), card=CardSnapshot.from_payload(p["card"]), outcome=str(p["outcome"]),
                   order_no=p.get("order_no") or None, message=str(p.get("message") or ""),
                   message_id=int(message_id) if message_id else None)


@dataclass(frozen=True, slots=True)
class ConditionalNotice:
    """A conditional order's news: ``triggered`` (a trade crossed it; the sell is being sent), ``placed``
    (with its order number), ``failed`` / ``uncertain`` (with why), ``expired``. Prices are in the
    price units of ``currency`` (:attr:`Currency.price_units`: won; 1/10,000 dollar); ``requested`` > ``quantity`` when less was held than armed."""

    KIND: ClassVar[str] = "cond"

    language: str
    order_id: int
    stage: str  # triggered | placed | failed | uncertain | expired
    kind: str  # stop | tp | trail | bracket
    leg: str  # stop | take
    code: str
    name: str
    quantity: int
    trigger: int
    price: int  # the trade that crossed (0: none, e.g. expired)
    time: str = ""  # HHMMSS, market time
    order_no: str | None = None
    detail: str = ""
    requested: int = 0
    limit: int | None = None  # None: sold at market
    currency: str = "KRW"

    @property
    def trigger_money(self) -> Money:
        return Money.of_price_units(self.trigger, self.currency)

    @property
    def price_money(self) -> Money:
        return Money.of_price_units(self.price, self.currency)

    @property
    def limit_money(self) -> Money | None:
        return None if self.limit is None else Money.of_price_units(self.limit, self.currency)

    def payload(self) -> dict[str, Any]:
        return {"lang": self.language, "order_id": self.order_id, "stage": self.stage, "kind": self.kind,
                "leg": self.leg, "code": self.code, "name": self.name, "quantity": self.quantity,
                "trigger": self.trigger, "price": self.price, "time": self.time, "order_no": self.order_no,
                "detail": self.detail, "requested": self.requested, "limit": self.limit, "currency": self.currency}

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> ConditionalNotice:
        limit = p.get("limit")
        return cls(language=_language(p), order_id=int(p["order_id"]), stage=str(p["stage"]), kind=str(p["kind"]),
                   leg=str(p.get("leg") or "stop"), code=str(p["code"]), name=str(p["name"]),
                   quantity=int(p["quantity"]), trigger=int(p["trigger"]), price=int(p.get("price") or 0),
                   time=str(p.get("time") or ""), order_no=p.get("order_no") or None,
                   detail=str(p.get("detail") or ""), requested=int(p.get("requested") or 0),
                   limit=int(limit) if limit is not None else None, currency=str(p.get("currency") or "KRW"))


Notice = AlertFired | OrderFilled | OrderOutcome | DailyReport | ConditionalNotice | OrderRefused
NOTICE_TYPES: dict[str, type[Notice]] = {
    cls.KIND: cls for cls in (AlertFired, OrderFilled, OrderOutcome, DailyReport, ConditionalNotice, OrderRefused)}


def decode(kind: str, payload: Mapping[str, Any]) -> Notice:
    """The notice an outbox row holds; :class:`NoticeFormatError` when it cannot be read."""
    cls = NOTICE_TYPES.get(kind)
    if cls is None:
        raise NoticeFormatError(f"unknown notice kind {kind!r}")
    try:
        return cls.from_payload(payload)
    except (KeyError, TypeError, ValueError) as exc:
        raise NoticeFormatError(f"{kind} notice without {exc}") from None


def _language(p: Mapping[str, Any]) -> str:
    return str(p.get("lang") or "ko")


# -- delivery ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Delivered:
    message_id: int | None = None  # the front end's id of the message it sent or edited, when it has one


@dataclass(frozen=True, slots=True)
class Blocked:
    """The user blocked the bot: this push is dropped and their alerts pause."""


@dataclass(frozen=True, slots=True)
class RetryLater:
    """The platform asks to wait (a flood limit): nothing more is sent for ``seconds``."""

    seconds: float


Delivery = Delivered | Blocked | RetryLater


class Notifier(Protocol):
    """A front end's way of telling a user something on its own."""

    async def deliver(self, chat_id: int, notice: Notice) -> Delivery: ...
