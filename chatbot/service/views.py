"""What the service hands to front ends: plain, typed data, no formatting. Times are in KST. Money is
:class:`Money` (a ``Decimal`` with its currency) in every view; formatting it is the front end's.

The domain types a view carries (:class:`OrderSide`, :class:`Quote`, :class:`Balance` from the broker
port, :class:`OpenOrder`, :class:`Symbol`, :class:`Money`) are named here too, so a front end needs the
service and nothing below it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from chatbot.broker import Balance, Holding, OpenOrder, OrderSide, Quote
from chatbot.kis import protocol as p
from chatbot.kis.errors import KisAuthError, KisError, KisRateLimited, KisTokenExpired, KisTokenIssueThrottled
from chatbot.markets.money import Currency, Money
from chatbot.security.credentials import mask_account
from chatbot.service.errors import UserError
from chatbot.service.us_views import UsCardDetail
from chatbot.symbols import Symbol

__all__ = [
    "REFUSALS",
    "Balance",
    "BalanceView",
    "ChartView",
    "CommandDraft",
    "ConfirmResult",
    "Currency",
    "FailReason",
    "Holding",
    "Mode",
    "Money",
    "OpenOrder",
    "OpenOrdersView",
    "OrderCard",
    "OrderDraft",
    "OrderNotice",
    "OrderSide",
    "Outcome",
    "QuoteView",
    "StandingOrder",
    "StatusView",
    "Symbol",
    "mask_account",
]


class Mode(StrEnum):
    """Where orders go: the deployment axis, under one name. The settings spell it ``kis.environment``
    (``simulator``, ``virtual``, ``real``), and so do the ``environment`` columns in storage."""

    PAPER = "PAPER"  # the embedded simulator
    VIRTUAL = "VIRTUAL"  # KIS's paper-trading server
    REAL = "REAL"

    @classmethod
    def from_setting(cls, environment: str) -> Mode:
        return {"simulator": cls.PAPER, "virtual": cls.VIRTUAL, "real": cls.REAL}[environment]

    @property
    def setting(self) -> str:
        """The spelling of ``kis.environment`` and of the storage columns."""
        return {Mode.PAPER: "simulator", Mode.VIRTUAL: "virtual", Mode.REAL: "real"}[self]

    @property
    def flavour(self) -> p.Flavour:
        """The KIS protocol family its server speaks (TR IDs, limits): the simulator speaks the real one."""
        return "virtual" if self is Mode.VIRTUAL else "real"


@dataclass(frozen=True, slots=True)
class QuoteView:
    symbol: Symbol
    quote: Quote


@dataclass(frozen=True, slots=True)
class OrderDraft:
    """An order typed whose stock was ambiguous (``/buy 삼성 3 70000``): what it was, checked but for the
    stock, so that a front end can offer each candidate as "this order, of that stock" (a new card)."""

    side: OrderSide
    quantity: int
    price: int | None  # won; None: at market


@dataclass(frozen=True, slots=True)
class CommandDraft:
    """A command typed whose stock was ambiguous (``/stop 삼성 3 65000``, ``/alert 삼성 above 70000``): its
    name and its words after the stock, read and written plainly (``("3", "65000")``), so that a front end can
    offer each candidate as "this command, of that stock" — typed again with the stock's code, every check
    made again."""

    command: str  # "alert", "chart", "stop", "tp", "trail", "bracket"
    words: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OrderCard:
    """A card: an order, a cancellation or a paper-account reset waiting for its owner's Confirm."""

    token: str
    mode: Mode
    action: str  # order | cancel | revise | reset
    side: OrderSide
    symbol: Symbol
    quantity: int
    price: Money | None  # None: market
    quoted_price: Money  # revise cards: the order's old price (0: it was a market order)
    amount: Money  # estimated
    commission: Money
    tax: Money
    expires_at: dt.datetime
    order_no: str | None = None  # cancel and revise cards: the order being cancelled or revised
    ttl_seconds: int = 60  # how long the owner has once the card reaches them
    session: str = "regular"  # market phase when quoted (chatbot.market_hours.Phase)
    next_open: dt.datetime | None = None  # when the order can execute, outside the regular session
    us: UsCardDetail | None = None  # a US order: exchange, order type, session met, KRW rate (amounts above in $)
    # revise cards, when made: what of the order the revision leaves at its old price (a partial revision)
    left_unrevised: int = 0

    @property
    def old_price(self) -> Money:
        """Revise cards: the order's price before the revision (``quoted_price`` holds it; 0: market)."""
        return self.quoted_price

    @property
    def old_amount(self) -> Money:
        """Revise cards: what the revised quantity came to at the old price."""
        return self.old_price * self.quantity

    @property
    def total(self) -> Money:
        """Cash out for a buy (amount + costs), cash in for a sell (amount − costs)."""
        costs = self.commission + self.tax
        return self.amount + costs if self.side is OrderSide.BUY else self.amount - costs


class Outcome(StrEnum):
    PLACED = "placed"
    CANCELLED_ORDER = "cancelled_order"  # a cancel card went through
    REVISED_ORDER = "revised_order"  # a revise card went through (order_no: the new order KIS gave)
    REJECTED = "rejected"  # KIS refused
    UNCERTAIN = "uncertain"  # no answer and not found yet: reconciliation keeps checking with KIS
    NOT_PLACED = "not_placed"  # after a crash or a lost reply: KIS never got it (certain), nothing re-sent
    UNVERIFIABLE = "unverifiable"  # cannot be checked any more (the user's account changed): check KIS
    FAILED = "failed"  # not placed (KIS unreachable, busy, token trouble)
    DISMISSED = "dismissed"  # the owner pressed Cancel on the card
    EXPIRED = "expired"
    NOT_OWNER = "not_owner"
    ALREADY_HANDLED = "already_handled"
    UNKNOWN = "unknown"  # no such card (forged or purged)
    REAL_DISABLED = "real_disabled"
    RESET_DONE = "reset_done"  # a paper account was renewed
    ACCOUNT_CHANGED = "account_changed"  # the card was quoted for another account than the user's now: nothing sent


class FailReason(StrEnum):
    """Why a confirmed card was not sent (:attr:`Outcome.FAILED`): a key the front end words, with the
    advice that fits it (wait and retry, look at /orders, register, nothing to do). The value is what the
    journal and the card's row keep; a failure KIS explained in its own words keeps those instead."""

    REAL_DISABLED = "real_orders_disabled"
    DATABASE_UNAVAILABLE = "database_unavailable"
    US_NOT_OFFERED = "us_orders_not_offered"
    NOTHING_LEFT = "nothing_left"  # the order filled or was cancelled meanwhile: nothing to revise or cancel
    RESERVATION_GONE = "reservation_gone"  # a US reservation sent at the open, or cancelled, meanwhile
    RESERVATION_LIST_UNANSWERED = "reservation_list_unanswered"
    NOT_REGISTERED = "not_registered"  # no KIS account for the card's owner any more
    ACCOUNT_CHANGED = "account_changed"  # the card was made for another account than the user's now
    KIS_UNREACHABLE = "kis_unreachable"
    KIS_BUSY = "kis_busy"  # KIS's rate limit
    KIS_TOKEN_WAIT = "kis_token_wait"  # KIS issues one access token a minute
    KIS_KEYS_REFUSED = "kis_keys_refused"
    INTERNAL = "internal"

    @classmethod
    def of(cls, message: str) -> FailReason | None:
        """The reason a failed card's message names (as settled, or read back from the journal); None: a
        failure in KIS's own words."""
        return cls._value2member_map_.get(message)  # type: ignore[return-value]


def fail_reason(exc: BaseException) -> FailReason:
    """Why a card failed on ``exc`` (raised before anything was sent), for one KIS gave no words for."""
    if isinstance(exc, UserError):
        return FailReason.NOT_REGISTERED if exc.key == "not_registered" else FailReason.INTERNAL
    if isinstance(exc, KisTokenIssueThrottled):
        return FailReason.KIS_TOKEN_WAIT
    if isinstance(exc, KisRateLimited):
        return FailReason.KIS_BUSY
    if isinstance(exc, KisAuthError) and not isinstance(exc, KisTokenExpired):  # an expired token is renewed
        return FailReason.KIS_KEYS_REFUSED
    if isinstance(exc, KisError):
        return FailReason.KIS_UNREACHABLE
    return FailReason.INTERNAL


# A press that changed nothing: not the owner's, the card gone, expired, already handled, or for another account.
REFUSALS = frozenset({Outcome.NOT_OWNER, Outcome.ALREADY_HANDLED, Outcome.UNKNOWN, Outcome.EXPIRED,
                      Outcome.ACCOUNT_CHANGED})


@dataclass(frozen=True, slots=True)
class StandingOrder:
    """An order whose revision or cancellation did not take (refused), as looked up right after: still
    working (``remaining`` left at ``price``; None: market), no longer open (filled or cancelled meanwhile),
    or unknown (``open`` None: the look failed)."""

    order_no: str
    open: bool | None
    remaining: int = 0
    price: Money | None = None


@dataclass(frozen=True, slots=True)
class ConfirmResult:
    """What a press of Confirm or Cancel on a card came to."""

    outcome: Outcome
    card: OrderCard | None = None
    order_no: str | None = None
    msg_cd: str = ""
    message: str = ""
    original: StandingOrder | None = None  # a refused revise or cancel: the order it named, as it stands

    @property
    def refused(self) -> bool:
        return self.outcome in REFUSALS

    @property
    def reason(self) -> FailReason | None:
        """A failed card's reason, when it is one of ours (:class:`FailReason`); None otherwise."""
        return FailReason.of(self.message) if self.outcome is Outcome.FAILED else None


@dataclass(frozen=True, slots=True)
class OrderNotice:
    """An outcome learned after the card was shown (reconciliation): the card is edited to say it."""

    result: ConfirmResult
    message_id: int | None  # the card's message; None: say it in a new message
    language: str
    late: bool = True  # found after a restart or a lost reply, not in answer to the press


@dataclass(frozen=True, slots=True)
class OpenOrdersView:
    mode: Mode
    orders: tuple[OpenOrder, ...]


@dataclass(frozen=True, slots=True)
class BalanceView:
    mode: Mode
    balance: Balance
    account: str


@dataclass(frozen=True, slots=True)
class ChartView:
    symbol: Symbol
    period: str  # D, W, M
    png: bytes
    bars: int
    last_close: Money


@dataclass(frozen=True, slots=True)
class StatusView:
    mode: Mode
    phase: str
    next_open: dt.datetime
    holiday: str
    feed_connected: bool | None  # None: no market-data feed configured
    version: str
