"""US orders from chat: ``/buy AAPL 3 190.50``, ``/sell TSLA 1 moc``, and cancelling or revising them.

A US order is a card like a domestic one (:mod:`chatbot.service.cards`): the same table, the same
single-use, owner-only, expiring claim, the same journal row opened with the claim and committed
with the snapshot of the day's orders before the request leaves, the same once-only submitter rules
(:class:`chatbot.kis.overseas_orders.UsOrderSubmitter`), the same settling and reconciliation. What
differs is said on the row: ``market`` US, the exchange, the order type, and prices in whole
ten-thousandths of a dollar (:func:`chatbot.kis.overseas_orders.price_units`).

KIS has no plain market order for US stocks: every order carries a limit price on the US tick ($0.01
at or above $1, $0.0001 below), or is one of the session orders KIS offers (LOO, LOC; MOO and MOC
for sells only). Paper trading takes limit orders only: a session order is refused there, with the
reason, before any card is made.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlmodel import col, select

from chatbot import broker as b
from chatbot.kis.errors import KisError, KisOrderRejected, KisOrderUncertain
from chatbot.kis.models import OrderSide
from chatbot.kis.overseas import UsOrderNotOffered
from chatbot.kis.overseas_protocol import (
    BUY_DIVISIONS,
    MIN_ORDER_PRICE,
    RESERVE_BUY_DIVISIONS,
    RESERVE_SELL_DIVISIONS,
    UsExchange,
    UsOrderDivision,
)
from chatbot.kis.protocol import order_no_key
from chatbot.kis.us_broker import UsBroker
from chatbot.markets.money import Currency, Money
from chatbot.markets.profile import US
from chatbot.markets.symbols import Symbol
from chatbot.markets.us_hours import SEOUL, UsMarketState
from chatbot.service.accounts import UserAccount
from chatbot.service.errors import UserError, kis_errors
from chatbot.service.inputs import MAX_ARG_LENGTH, parse_order_no, parse_quantity
from chatbot.service.journal import DatabaseUnavailable
from chatbot.service.orders import Orders, _found_change, _Sending, check_revise_cash
from chatbot.service.us_cards import us_card_detail
from chatbot.service.us_market import UsMarketData
from chatbot.service.us_reservations import RESERVATION_TYPE, UsReservations
from chatbot.service.us_views import UsOpenOrder
from chatbot.service.views import ConfirmResult, FailReason, Mode, OrderCard, Outcome, fail_reason
from chatbot.storage.tables import OrderJournalRow, PendingOrderRow
from chatbot.storage.types import utcnow

log = logging.getLogger(__name__)

MAX_US_PRICE = Decimal(1_000_000)
OPEN_ORDER_DAYS = dt.timedelta(days=5)  # a US order still working was sent within this (day orders; a weekend)
# Session order types by the words a person types (KIS_OVERSEAS.md §3).
DIVISION_WORDS: dict[str, UsOrderDivision] = {
    "limit": UsOrderDivision.LIMIT, "지정가": UsOrderDivision.LIMIT,
    "loo": UsOrderDivision.LOO, "시가지정가": UsOrderDivision.LOO, "장개시지정가": UsOrderDivision.LOO,
    "loc": UsOrderDivision.LOC, "종가지정가": UsOrderDivision.LOC, "장마감지정가": UsOrderDivision.LOC,
    "moo": UsOrderDivision.MOO, "시가시장가": UsOrderDivision.MOO, "장개시시장가": UsOrderDivision.MOO,
    "moc": UsOrderDivision.MOC, "종가시장가": UsOrderDivision.MOC, "장마감시장가": UsOrderDivision.MOC,
}
OFFERED = (UsOrderDivision.LIMIT, UsOrderDivision.LOO, UsOrderDivision.LOC, UsOrderDivision.MOO,
           UsOrderDivision.MOC)
MARKET_WORDS = frozenset({"market", "mkt", "시장가", "시장"})
# What looks like a quantity or a price (its parser then says what is wrong with it: "1.5" shares, "-1",
# "1e2" dollars), so that "/buy AAPL 1.5 190" is a US order refused for its quantity, not "no such stock:
# AAPL 1.5", and "/buy AAPL 1 1e2" is refused in dollars, not in won by the domestic parser.
_QTY = re.compile(r"^[-+]?[0-9][0-9,.]*$")
_PRICE_LIKE = re.compile(r"^[-+]?[$＄₩￦]?\d\S*$")  # "₩9086": a won amount typed on a US stock, told as such
DOLLAR_WORDS = ("달러", "불", "usd")  # "190.50달러": the unit a Korean user may type after a dollar price
WON_MARKS = ("₩",)  # before the number (NFKC makes the full-width ￦ this one)
WON_WORDS = ("원", "krw")  # after it
# A price as read: commas only as thousands separators ("1,234.50"); "190,50" or "1,9.0" is refused, not
# read as $19,050 or $19.00 (a decimal comma is common outside Korea).
_STRICT_PRICE = re.compile(r"^\$?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?\$?$")


@dataclass(frozen=True, slots=True)
class UsOrderRequest:
    symbol: Symbol
    quantity: str
    price: str | None
    division: UsOrderDivision | None  # None: as typed, no session word
    market_word: bool  # "market"/"시장가" typed: KIS offers no US market order


def parse_us_price(text: str) -> Decimal:
    """A US limit price as typed (``190.50``, ``$0.5123``), on the tick, at least $0.01."""
    raw = text.strip()
    if len(raw) > MAX_ARG_LENGTH:
        raise UserError("input_too_long")
    number = unicodedata.normalize("NFKC", raw)  # full-width digits and ＄ as typed on a phone
    if number.startswith(WON_MARKS) or number.lower().endswith(WON_WORDS):  # a won amount: US prices are dollars
        raise UserError("us_price_in_won", value=raw)
    for word in DOLLAR_WORDS:
        if number.lower().endswith(word):
            number = number[:-len(word)]
            break
    if not _STRICT_PRICE.match(number):
        raise UserError("us_bad_price", value=raw)
    try:
        price = Decimal(number.strip("$").replace(",", ""))
    except InvalidOperation:
        raise UserError("us_bad_price", value=raw) from None
    if price < MIN_ORDER_PRICE:
        raise UserError("us_price_too_small", value=raw)
    if price > MAX_US_PRICE:
        raise UserError("us_bad_price", value=raw)
    if not US.is_on_tick(Money.usd(price)):
        tick = US.tick_for(Money.usd(price)).amount
        below = (price - price % tick).quantize(tick)
        raise UserError("us_off_tick", price=f"${price}", tick=f"${tick}", below=f"${below}",
                        above=f"${below + tick}")
    return price


# A limit priced through the market by more than this (a buy above the last price, a sell below it) trades at
# once at whatever the book holds, with no price protection left: the shape of a typo (a won amount typed as
# dollars, a slipped digit), refused, as brokers' fat-finger checks refuse an order priced far from the market.
# 30 % is KRX's daily limit, the band a Korean trader knows. In regular hours a US stock's limit-up/limit-down
# bands (5 % or 10 % from its five-minute average for most stocks, 20 % from $0.75 to $3) pause trading before a
# move that size: a limit beyond it is far likelier a typo than meant (only sub-$0.75 stocks have wider bands).
THROUGH_MARKET = Decimal("0.30")
# A limit this far on the resting side (a buy under half the price, a sell over double) cannot fill today (a
# US order is a day order): the band the stops use (chatbot.service.conditional.PLAUSIBLE).
RESTING = (Decimal("0.5"), Decimal(2))


def sane_limit_range(side: OrderSide, last: Decimal) -> tuple[Decimal, Decimal]:
    """The limit prices a ``side`` order may carry with the last price at ``last``, on the tick."""
    if side is OrderSide.BUY:
        low, high = last * RESTING[0], last * (1 + THROUGH_MARKET)
    else:
        low, high = last * (1 - THROUGH_MARKET), last * RESTING[1]
    return (US.round_to_tick(Money.usd(max(low, MIN_ORDER_PRICE)), up=True).amount,
            US.round_to_tick(Money.usd(high)).amount)


def won_typed(price: Decimal, last: Decimal, krw_per_usd: Decimal) -> Decimal | None:
    """The dollars ``price`` would be were it won (at KIS's rate), when that is near the last price (within
    :data:`RESTING` of it): the likely mistake behind a price far above the market. None otherwise, or without
    a rate."""
    if krw_per_usd <= 0 or price <= last:
        return None
    dollars = US.round_to_tick(Money.usd(max(price / krw_per_usd, MIN_ORDER_PRICE))).amount
    return dollars if last * RESTING[0] <= dollars <= last * RESTING[1] else None


def check_limit(side: OrderSide, price: Decimal, last: Decimal, krw_per_usd: Decimal) -> None:
    """Refuse a US limit price far from the last one (:data:`THROUGH_MARKET`, :data:`RESTING`), naming the last
    price, the range taken and, when it reads as one, the won amount typed as dollars."""
    if last <= 0:  # no trade to compare with: KIS's own checks stand
        return
    low, high = sane_limit_range(side, last)
    if low <= price <= high:
        return
    params = {"price": str(Money.usd(price)), "now": str(Money.usd(last)), "low": str(Money.usd(low)),
              "high": str(Money.usd(high))}
    dollars = won_typed(price, last, krw_per_usd) if price > high else None
    if dollars is not None:
        raise UserError("us_limit_looks_like_won", won=f"₩{price:,.0f}", usd=str(Money.usd(dollars)),
                        rate=f"{krw_per_usd:,.2f}", **params)
    if side is OrderSide.BUY and price > high:
        raise UserError("us_limit_far_buy", percent=int(THROUGH_MARKET * 100), **params)
    if side is OrderSide.SELL and price < low:
        raise UserError("us_limit_far_sell", percent=int(THROUGH_MARKET * 100), **params)
    raise UserError("us_limit_far_resting", **params)


class UsOrders:
    def __init__(self, orders: Orders, market: UsMarketData) -> None:
        self.orders = orders
        self.market = market
        self.mode = orders.mode
        self._trading_us: set[int] = set()  # users known to have sent US orders (see trades_us)
        orders.us = self  # US rows of the card table are built and submitted here
        self.reservations = UsReservations(self)  # pending reservation orders: /orders, /cancel

    # -- which orders are US ones ------------------------------------------------------------------
    def request(self, args: Sequence[str]) -> UsOrderRequest | None:
        """``<symbol words…> <qty> [<price>] [loo|loc|moo|moc]`` naming a US stock, else None (a
        domestic order, or words the domestic parser answers)."""
        words = [w for w in args if w]
        division: UsOrderDivision | None = None
        market_word = False
        rest: list[str] = []
        for i, word in enumerate(words):
            key = word.lower()
            if i > 0 and key in DIVISION_WORDS and division is None:
                division = DIVISION_WORDS[key]
            elif i > 0 and key in MARKET_WORDS:
                market_word = True
            else:
                rest.append(word)
        if len(rest) < 2:
            return None
        if len(rest) >= 3 and _QTY.match(rest[-2]) and _PRICE_LIKE.match(rest[-1]):
            symbol_words, quantity, price = rest[:-2], rest[-2], rest[-1]
        else:
            symbol_words, quantity, price = rest[:-1], rest[-1], None
        symbol = self.market.lookup(" ".join(symbol_words))
        if symbol is None:
            return None
        return UsOrderRequest(symbol, quantity, price, division, market_word)

    # -- cards -------------------------------------------------------------------------------------
    async def prepare_order(self, user_id: int, chat_id: int, side: OrderSide, request: UsOrderRequest) -> OrderCard:
        """Validate everything a US order needs and store its card; nothing is sent to KIS's order path."""
        self.orders.check_real_allowed()
        self.orders.market.check_maintenance()
        symbol = request.symbol
        quantity = parse_quantity(request.quantity)
        if request.market_word:
            raise UserError("us_no_market_order", code=symbol.code)
        division = request.division or UsOrderDivision.LIMIT
        if division not in OFFERED:
            raise UserError("us_type_not_offered", type=division.name)
        if side is OrderSide.BUY and division not in BUY_DIVISIONS:
            raise UserError("us_sell_only", type=division.name)
        if self.mode is not Mode.REAL and division is not UsOrderDivision.LIMIT:
            raise UserError("us_paper_limit_only", type=division.name)
        if division.priced and request.price is None:
            raise UserError("us_price_needed", code=symbol.code)
        if not division.priced and request.price is not None:
            raise UserError("us_no_price_for_type", type=division.name)
        price = Money.usd(parse_us_price(request.price)) if request.price is not None else None
        state = self.market.state()
        action = "order"
        if not state.accepts_orders:  # KIS's reservation orders (§9), sent at the next regular open
            reservable = RESERVE_BUY_DIVISIONS if side is OrderSide.BUY else RESERVE_SELL_DIVISIONS
            if not self.market.calendar.reservation_open(state.now) or division not in reservable:
                raise UserError("us_market_closed",
                                next_open=state.next_open.astimezone(SEOUL).strftime("%m-%d %H:%M"))
            action = "reserve"
        elif not self.market.calendar.always_open:
            self._check_auction_ahead(division, state)
        account = await self.orders.accounts.for_user(user_id)  # checked on it below: the card is for it
        broker = self.market.broker(account.client)
        with kis_errors():
            quote = await broker.quote(symbol.code)
            if quote.halted:  # KIS's price detail says it does not trade (e_ordyn): no card
                raise UserError("us_halted", name=symbol.name_ko, code=symbol.code)
            lower, upper = quote.lower_limit, quote.upper_limit
            if price is not None and lower is not None and upper is not None and not lower <= price <= upper:
                raise UserError("us_out_of_limits", price=str(price), lower=str(lower), upper=str(upper))
            if price is not None:
                check_limit(side, price.amount, quote.price.amount, self.market.rate(broker))
            if side is OrderSide.SELL:
                held = next((h for h in await broker.holdings() if h.symbol == symbol.code), None)
                have = held.orderable_quantity if held else 0
                if quantity > have:
                    raise UserError("insufficient_holdings", have=have, want=quantity,
                                    name=symbol.display_name("ko"))
            else:
                power = await broker.buying_power(symbol.code, price or quote.price)
                if quantity > power.max_quantity:
                    raise UserError("us_insufficient_cash", max_quantity=power.max_quantity,
                                    cash=str(power.orderable_cash))
        self.market.rate(broker)
        exchange = await broker.exchange(symbol.code)
        row = await self.orders.cards.create(
            owner_id=user_id, chat_id=chat_id, environment=self.mode.setting, action=action, side=side.value,
            code=symbol.code, name=symbol.name_ko[:80], quantity=quantity,
            price=price.amount if price is not None else None, quoted_price=quote.price.amount,
            currency=Currency.USD.value, market="US", exchange=exchange.name,
            order_type=division.name, account_ref=self.orders.account_ref_for(user_id, account))
        return self.card(row, symbol)

    def _ref(self, user_id: int, account: UserAccount | None) -> str | None:
        """The card's account: the one its order was found on (None: read when the card is stored)."""
        return self.orders.account_ref_for(user_id, account) if account is not None else None

    @staticmethod
    def _check_auction_ahead(division: UsOrderDivision, state: UsMarketState) -> None:
        """An on-open order (MOO, LOO) once the day's regular session has opened, or an on-close one (MOC,
        LOC) once it has closed (the after-market), meets no auction of that day: KIS refuses it ("해당
        주문구분의 주문가능시간이 아닙니다", as the simulator does). Said at once, with when it is taken again,
        instead of a card promising "today's close"."""
        if division.at_open and state.now >= state.session.open:
            raise UserError("us_auction_over_open", type=division.name,
                            next_open=state.next_open.astimezone(SEOUL).strftime("%m-%d %H:%M"))
        if division.at_close and state.now >= state.session.close:
            raise UserError("us_auction_over_close", type=division.name,
                            next_close=state.next_close.astimezone(SEOUL).strftime("%m-%d %H:%M"))

    def card(self, row: PendingOrderRow, symbol: Symbol | None = None) -> OrderCard:
        """The card a US row stands for: dollar amount, estimated fees, the KRW estimate, the session."""
        exchange = row.exchange or "NASDAQ"
        symbol = symbol or self.market.by_code(row.code) or Symbol(row.code, row.name, row.name, exchange)
        side = OrderSide(row.side)
        state = self.market.state()
        detail = us_card_detail(side, row.price, row.quoted_price, row.quantity, exchange, row.order_type or "LIMIT",
                                krw_per_usd=self.market.last_rate, session=state.phase.value,
                                next_open=state.next_open.astimezone(SEOUL),
                                reservation=row.action == "reserve" or row.order_type == RESERVATION_TYPE,
                                next_close=state.next_close.astimezone(SEOUL))
        return OrderCard(token=row.id, mode=self.mode, action=row.action, side=side, symbol=symbol,
                         quantity=row.quantity, price=detail.price, quoted_price=detail.quoted_price,
                         amount=detail.amount, commission=detail.fees, tax=Money.usd(0),
                         expires_at=row.expires_at, order_no=row.order_no,
                         ttl_seconds=int(self.orders.cards.ttl.total_seconds()), session=state.phase.value,
                         next_open=detail.next_open, us=detail)

    # -- open orders, cancel, revise -----------------------------------------------------------------------
    async def trades_us(self, user_id: int) -> bool:
        """Whether the user has sent a US order through the bot (journalled): only then do /orders and
        /balance ask KIS about US orders and holdings (each costs requests; KIS's paper server allows 2/s)."""
        if user_id in self._trading_us:
            return True
        async with self.orders.journal.db.session() as session:
            found = (await session.exec(select(OrderJournalRow.id).where(
                col(OrderJournalRow.owner_id) == user_id, col(OrderJournalRow.market) == "US").limit(1))).first()
        if found is not None:
            self._trading_us.add(user_id)
        return found is not None

    async def open_orders(self, user_id: int) -> list[UsOpenOrder]:
        broker = await self.market.broker_for(user_id)
        with kis_errors():
            rows = await broker.open_orders()
        types = await self.order_types(user_id, [r.order_no for r in rows])
        return [self._open(r, types.get(order_no_key(r.order_no), "")) for r in rows]

    async def order_types(self, user_id: int, order_nos: Sequence[str]) -> dict[str, str]:
        """The order type (LIMIT, LOO, LOC, MOO, MOC) the bot sent each of ``order_nos`` as, by
        :func:`order_no_key`, from its journal: KIS's open-order list has none (an MOO and an MOC both
        list at a price of 0). An order the bot did not send is not in it. A US order is a day order: the
        journal of the last few days is read, not the user's whole history."""
        if not order_nos:
            return {}
        wanted = {order_no_key(n) for n in order_nos}
        async with self.orders.journal.db.session() as session:
            rows = (await session.exec(select(OrderJournalRow.kis_order_no, OrderJournalRow.order_type).where(
                col(OrderJournalRow.owner_id) == user_id, col(OrderJournalRow.market) == "US",
                col(OrderJournalRow.created_at) >= utcnow() - OPEN_ORDER_DAYS,
                col(OrderJournalRow.action).in_(("order", "revise")),  # a revision keeps its order's type
                col(OrderJournalRow.kis_order_no).is_not(None),
                col(OrderJournalRow.environment) == self.mode.setting))).all()
        return {order_no_key(no): kind for no, kind in rows
                if no and kind and kind in UsOrderDivision.__members__ and order_no_key(no) in wanted}

    async def open_order(self, user_id: int, order_no_text: str, account: UserAccount | None = None
                         ) -> b.OpenOrder | None:
        """One of the user's own open US orders by its number, or None (not a US order of theirs)."""
        wanted = parse_order_no(order_no_text)
        broker = self.market.broker(account.client) if account else await self.market.broker_for(user_id)
        with kis_errors():
            rows = await broker.open_orders()
        return next((r for r in rows if order_no_key(r.order_no) == wanted), None)

    async def prepare_cancel(self, user_id: int, chat_id: int, order: b.OpenOrder,
                             account: UserAccount | None = None) -> OrderCard:
        """``account``: the one ``order`` was found on (the card is for it)."""
        self.orders.check_real_allowed()
        price = order.price.amount if order.price is not None else Decimal(0)
        # the type it was sent as (an MOO is not "limit $0"); not the bot's: a limit, or unpriced MOO/MOC
        kind = (await self.order_types(user_id, [order.order_no])).get(order_no_key(order.order_no)) \
            or UsOrderDivision.LIMIT.name
        row = await self.orders.cards.create(
            owner_id=user_id, chat_id=chat_id, environment=self.mode.setting, action="cancel",
            side=order.side.value, code=order.symbol, name=(order.name or order.symbol)[:80],
            quantity=order.cancellable_quantity, price=price or None, quoted_price=price,
            currency=Currency.USD.value, order_no=order.order_no, branch=order.branch[:8] or None, market="US",
            exchange=_exchange_name(order), order_type=kind, account_ref=self._ref(user_id, account))
        return self.card(row)

    async def prepare_revise(self, user_id: int, chat_id: int, order: b.OpenOrder, args: Sequence[str],
                             account: UserAccount | None = None) -> OrderCard:
        """``<order_no> <new price> [<new qty>]`` for a US order: the new price on the US tick, and near the
        last price as a new order's (:func:`check_limit`). ``account``: the one ``order`` was found on."""
        self.orders.check_real_allowed()
        try:
            price = parse_us_price(args[1])
        except UserError as err:
            if err.key == "us_bad_price":  # said with /modify's example, not /buy's
                raise UserError("us_revise_bad_price", value=err.params["value"], order_no=order.order_no) from None
            raise
        remaining = order.cancellable_quantity
        quantity = parse_quantity(args[2]) if len(args) == 3 else remaining
        if quantity > remaining:
            raise UserError("revise_quantity_too_large", want=quantity, remaining=remaining)
        old = order.price.amount if order.price is not None else Decimal(0)
        # KIS revises price and quantity only (no order type): an LOO/LOC stays one, its card says which
        # auction it meets; an MOO/MOC (listed at 0) has no price to revise (it would stay an MOO/MOC)
        kind = (await self.order_types(user_id, [order.order_no])).get(order_no_key(order.order_no)) \
            or UsOrderDivision.LIMIT.name
        if not old or not UsOrderDivision[kind].priced:
            raise UserError("us_revise_unpriced", order_no=order.order_no,
                            type=kind if not UsOrderDivision[kind].priced else "MOO/MOC")
        if price == old and quantity == remaining:
            raise UserError("us_revise_nothing_changes", order_no=order.order_no, price=str(Money.usd(price)))
        broker = self.market.broker(account.client) if account else await self.market.broker_for(user_id)
        with kis_errors():
            quote = await broker.quote(order.symbol)
        if quote.halted:
            raise UserError("us_halted", name=order.name or order.symbol, code=order.symbol)
        if price != old:  # a smaller quantity at the order's own price is no new price to check
            check_limit(order.side, price, quote.price.amount, self.market.rate(broker))
        if order.side is OrderSide.BUY and price > old:
            await check_revise_cash(broker, order, US, Money.usd(price), Money.usd(old), quantity,
                                    "us_revise_insufficient_cash")
        row = await self.orders.cards.create(
            owner_id=user_id, chat_id=chat_id, environment=self.mode.setting, action="revise",
            side=order.side.value, code=order.symbol, name=(order.name or order.symbol)[:80], quantity=quantity,
            price=price, quoted_price=old, currency=Currency.USD.value, order_no=order.order_no,
            branch=order.branch[:8] or None, market="US", exchange=_exchange_name(order), order_type=kind,
            account_ref=self._ref(user_id, account))
        return self.card(row)

    # -- /cancel and /modify by number: a domestic order first, else a US one ------------------------------
    async def prepare_cancel_any(self, user_id: int, chat_id: int, order_no_text: str) -> OrderCard:
        try:
            return await self.orders.prepare_cancel(user_id, chat_id, order_no_text)
        except UserError as err:
            if err.key != "no_such_open_order":
                raise
            account = await self.orders.accounts.for_user(user_id)  # the order is looked up on it: the card is for it
            order = await self.open_order(user_id, order_no_text, account)
            if order is None:
                reservation = await self.reservations.find(user_id, order_no_text)
                if reservation is None:
                    raise
                return await self.reservations.prepare_cancel(user_id, chat_id, reservation)
        return await self.prepare_cancel(user_id, chat_id, order, account)

    async def prepare_revise_any(self, user_id: int, chat_id: int, args: Sequence[str]) -> OrderCard:
        """A US order's number first (its price has cents, which the domestic parser refuses), else domestic."""
        if len(args) not in (2, 3):
            raise UserError("usage_modify")
        parse_order_no(args[0])
        account = await self.orders.accounts.for_user(user_id)  # the order is looked up on it: the card is for it
        try:
            order = await self.open_order(user_id, args[0], account)
        except UserError as us_down:  # KIS's US side did not answer: a domestic order is still revised
            try:
                return await self.orders.prepare_revise(user_id, chat_id, args)
            except UserError as err:
                if err.key == "no_such_open_order":
                    raise us_down from None  # perhaps a US order: say why it could not be looked up
                raise
        if order is None:
            return await self.orders.prepare_revise(user_id, chat_id, args)
        return await self.prepare_revise(user_id, chat_id, order, args, account)

    # -- the press (called by Orders for a claimed US card) --------------------------------------------------
    async def submit(self, row: PendingOrderRow, card: OrderCard, account: UserAccount,
                     journal_id: int) -> ConfirmResult:
        """Send a claimed US card once through the broker and settle it (Orders' journal and card)."""
        orders = self.orders
        broker = self.market.broker(account.client)
        side = OrderSide(row.side)
        exchange = UsExchange[row.exchange] if row.exchange and row.exchange in UsExchange.__members__ else None
        sending = orders._before_sending(journal_id, account)
        if row.action == "cancel" and row.order_type == RESERVATION_TYPE:
            return await self._cancel_reservation(row, card, broker, sending, journal_id)
        try:
            if row.action == "reserve":  # sent once; KIS gives a reservation number, the order comes at the open
                assert sending.callback is not None
                await sending.callback(set())  # journalled as sent before anything leaves
                division = UsOrderDivision[row.order_type or "LIMIT"]
                reserved = await broker.client.reserve(exchange or await broker.exchange(row.code), side, row.code,
                                                       row.quantity, row.price, division)
                when = card.us.next_open.strftime("%m-%d %H:%M") if card.us and card.us.next_open else ""
                return await orders._settle(row, journal_id, Outcome.PLACED, card, order_no=reserved.reservation_no,
                                            message=f"US reservation, sent to the exchange at the {when} KST open")
            if row.action in ("cancel", "revise"):
                assert row.order_no is not None
                key = order_no_key(row.order_no)
                current = next((o for o in await broker.open_orders() if order_no_key(o.order_no) == key), None)
                if current is None:  # nothing was sent
                    return await orders._settle(row, journal_id, Outcome.FAILED, card,
                                                message=FailReason.NOTHING_LEFT)  # filled or cancelled meanwhile
                if row.action == "cancel":
                    ack = await broker.cancel(current, on_sending=sending.callback)
                    return await orders._settle(row, journal_id, Outcome.CANCELLED_ORDER, card, order_no=ack.order_no)
                assert row.price is not None
                ack = await broker.revise(current, Money.usd(row.price),
                                          min(row.quantity, current.cancellable_quantity),
                                          on_sending=sending.callback)
                return await orders._settle(row, journal_id, Outcome.REVISED_ORDER, card, order_no=ack.order_no)
            if orders.watch_fills is not None:  # listen for its fill notices before it is sent
                try:
                    await orders.watch_fills(row.owner_id, row.chat_id)
                except Exception:  # fill pushes are a convenience; the order goes ahead
                    log.exception("could not start fill notifications")
            if exchange is not None:
                broker.remember(row.code, exchange)  # the exchange the card was made for
            division = UsOrderDivision[row.order_type or "LIMIT"]
            price = Money.usd(row.price) if row.price is not None else None
            placed = await broker.place(side, row.code, row.quantity, price, on_sending=sending.callback,
                                        division=division)
        except (UsOrderNotOffered, ValueError) as exc:  # refused before anything was sent
            return await orders._settle(row, journal_id, Outcome.FAILED, card, message=str(exc))
        except DatabaseUnavailable:
            return await orders._settle(row, journal_id, Outcome.FAILED, card, message=FailReason.DATABASE_UNAVAILABLE)
        except KisOrderRejected as exc:
            return await orders._settle(row, journal_id, Outcome.REJECTED, card, msg_cd=exc.msg_cd, message=exc.msg1)
        except KisOrderUncertain as exc:
            return await orders._settle(row, journal_id, Outcome.UNCERTAIN, card, msg_cd=exc.msg_cd, message=str(exc))
        except KisError as exc:
            if row.action == "cancel" and sending.started and exc.maybe_sent:  # did the cancel land? its own row
                found = await _found_change(broker, row, sending.known)
                if found is not None:
                    return await orders._settle(row, journal_id, Outcome.CANCELLED_ORDER, card, order_no=found,
                                                message="confirmed by lookup")
            if sending.started and exc.maybe_sent:
                return await orders._settle(row, journal_id, Outcome.UNCERTAIN, card, msg_cd=exc.msg_cd,
                                            message=str(exc))
            return await orders._settle(row, journal_id, Outcome.FAILED, card, msg_cd=exc.msg_cd,
                                        message=exc.msg1 or fail_reason(exc))
        detail = "found by lookup after an unknown outcome" if placed.reconciled else None
        return await orders._settle(row, journal_id, Outcome.PLACED, card, order_no=placed.ack.order_no,
                                    message=detail)

    async def _cancel_reservation(self, row: PendingOrderRow, card: OrderCard, broker: UsBroker,
                                  sending: _Sending, journal_id: int) -> ConfirmResult:
        """Cancel a pending reservation once (``order-resv-ccnl``): looked up again first, so one KIS
        already sent at the open, or one cancelled meanwhile, is refused without a request."""
        orders = self.orders
        assert row.order_no is not None
        try:
            try:
                current = await self.reservations.find(row.owner_id, row.order_no, exclude_journal=journal_id)
            except UserError:  # KIS's reservation list did not answer (a query's error): nothing was sent
                return await orders._settle(row, journal_id, Outcome.FAILED, card,
                                            message=FailReason.RESERVATION_LIST_UNANSWERED)
            if current is None:  # nothing was sent
                return await orders._settle(row, journal_id, Outcome.FAILED, card,
                                            message=FailReason.RESERVATION_GONE)
            assert sending.callback is not None
            await sending.callback(set())  # journalled as sent before anything leaves
            number = await broker.client.cancel_reservation(current.received_date, current.reservation_no)
        except DatabaseUnavailable:
            return await orders._settle(row, journal_id, Outcome.FAILED, card, message=FailReason.DATABASE_UNAVAILABLE)
        except KisOrderRejected as exc:  # e.g. sent at the open, or cancelled in KIS's app meanwhile
            return await orders._settle(row, journal_id, Outcome.REJECTED, card, msg_cd=exc.msg_cd, message=exc.msg1)
        except KisError as exc:
            if sending.started and exc.maybe_sent:
                return await orders._settle(row, journal_id, Outcome.UNCERTAIN, card, msg_cd=exc.msg_cd,
                                            message=f"US reservation cancel: {exc}")
            return await orders._settle(row, journal_id, Outcome.FAILED, card, msg_cd=exc.msg_cd,
                                        message=exc.msg1 or fail_reason(exc))
        return await orders._settle(row, journal_id, Outcome.CANCELLED_ORDER, card, order_no=number,
                                    message="US reservation cancelled")

    def _open(self, o: b.OpenOrder, order_type: str = "") -> UsOpenOrder:
        listed = self.market.by_code(o.symbol)
        name = listed.name_ko if listed is not None and listed.name_ko else (o.name or o.symbol)
        return UsOpenOrder(order_no=o.order_no, symbol=o.symbol, name=name, exchange=_exchange_name(o),
                           side=o.side, quantity=o.quantity, price=o.price or Money.usd(0),
                           filled_quantity=o.filled_quantity, remaining=o.cancellable_quantity, time=o.time,
                           order_type=order_type)


def _exchange_name(order: b.OpenOrder) -> str:
    exchange = UsExchange.of_order_code(order.exchange)
    return exchange.name if exchange is not None else (order.exchange or "NASDAQ")
