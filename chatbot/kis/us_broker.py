"""KIS's US-stock client behind the broker port (:class:`chatbot.broker.Broker`), in dollars.

:class:`UsBroker` converts at the port: :class:`~chatbot.kis.overseas.KisOverseasClient` replies
(already :class:`~chatbot.markets.money.Money` in dollars) leave as the port's models. What the port
does not name is the exchange: a US ticker is quoted and ordered on its exchange (NASDAQ, NYSE,
AMEX), which the broker learns from ``exchange_of`` (the symbol directory) or, failing that, by asking
KIS on each exchange in turn (:meth:`KisOverseasClient.locate`), once per ticker.

Orders go through :class:`~chatbot.kis.overseas_orders.UsOrderSubmitter`, the domestic once-only rules
(snapshot, ``on_sending``, lookup after a lost reply, never re-sent). :meth:`UsBroker.place` takes the
US session order types (LOO, LOC, MOO, MOC) as ``division`` beyond the port; the port's ``price=None``
is refused (KIS has no plain US market order).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Any

from chatbot import broker as b
from chatbot.kis import models as m
from chatbot.kis import overseas_protocol as o
from chatbot.kis.errors import KisError
from chatbot.kis.orders import OrderIntent, find_candidates
from chatbot.kis.overseas import KisOverseasClient, UsOrderNotOffered, nearest_kst
from chatbot.kis.overseas_frames import UsFillNotice, UsPortalFillNotice, UsShortFillNotice
from chatbot.kis.overseas_models import UsBar, UsHolding, UsOrder, UsQuote, UsQuoteDetail
from chatbot.kis.overseas_orders import UsOrderSubmitter, price_units, us_order_listing
from chatbot.kis.overseas_protocol import PRICE_DECIMALS, UsExchange, UsOrderDivision
from chatbot.kis.realtime import Event, RealtimeClient
from chatbot.markets.money import Money
from chatbot.markets.profile import US, Market
from chatbot.markets.symbols import Kind
from chatbot.markets.us_hours import SEOUL

ExchangeOf = Callable[[str], UsExchange | None]
NOTICE_TYPES = (UsFillNotice, UsPortalFillNotice, UsShortFillNotice)


def _usd(amount: Decimal | int) -> Money:
    return Money.usd(amount)


def _dollars(price: Money) -> Decimal:
    """A US order price: dollars on the US tick, refused otherwise (never rounded silently)."""
    if price.currency is not US.currency or not US.is_on_tick(price):
        raise ValueError(f"a US price is dollars on the US tick, not {price}")
    return price.amount


def quote(q: UsQuote, d: UsQuoteDetail | None) -> b.Quote:
    if d is None:
        return b.Quote(symbol=q.symbol, price=q.price, previous_close=q.previous_close, change=q.change,
                       change_rate=q.change_rate, volume=q.volume, traded_value=q.traded_value, open=q.price,
                       high=q.price, low=q.price, upper_limit=None, lower_limit=None, tick=US.tick_for(q.price),
                       market_name=q.exchange.name, sign=q.sign)
    return b.Quote(symbol=q.symbol, price=q.price, previous_close=q.previous_close, change=q.change,
                   change_rate=q.change_rate, volume=q.volume, traded_value=q.traded_value, open=d.open, high=d.high,
                   low=d.low, upper_limit=d.upper_limit if d.upper_limit else None,
                   lower_limit=d.lower_limit if d.lower_limit else None,
                   tick=d.tick if d.tick else US.tick_for(q.price), halted=not d.tradable,
                   market_name=q.exchange.name, sign=q.sign)


def quote_of_detail(d: UsQuoteDetail) -> b.Quote:
    """The port's quote from price-detail alone: the change and its rate against ``base`` (the previous close)."""
    change = d.price - d.previous_close
    rate = (change.amount * 100 / d.previous_close.amount).quantize(Decimal("0.01")) if d.previous_close else Decimal(0)
    sign = "2" if change.amount > 0 else "5" if change.amount < 0 else "3"
    return b.Quote(symbol=d.symbol, price=d.price, previous_close=d.previous_close, change=change, change_rate=rate,
                   volume=d.volume, traded_value=d.traded_value, open=d.open, high=d.high, low=d.low,
                   upper_limit=d.upper_limit if d.upper_limit else None,
                   lower_limit=d.lower_limit if d.lower_limit else None,
                   tick=d.tick if d.tick else US.tick_for(d.price), halted=not d.tradable,
                   market_name=d.exchange.name, sign=sign)


def holding(h: UsHolding) -> b.Holding:
    return b.Holding(symbol=h.symbol, name=h.name, quantity=h.quantity, orderable_quantity=h.orderable_quantity,
                     average_price=h.average_cost, cost=h.cost, price=h.last_price, value=h.value,
                     profit_loss=h.profit_loss, profit_loss_rate=h.profit_loss_rate)


def _kst_hms(order: UsOrder) -> str:
    moment = order.kst_time or order.local_time
    return moment.astimezone(SEOUL).strftime("%H%M%S") if moment else ""


def open_order(o: UsOrder) -> b.OpenOrder:
    return b.OpenOrder(order_no=o.order_no, branch=o.branch, original_order_no=o.original_order_no, symbol=o.symbol,
                       name=o.name, side=o.side, quantity=o.quantity, price=o.price if o.price else None,
                       filled_quantity=o.filled_quantity, cancellable_quantity=o.unfilled_quantity,
                       time=_kst_hms(o), exchange=o.exchange.order_code if o.exchange else "")


def execution(o: UsOrder) -> b.Execution:
    day = o.local_time.date() if o.local_time else dt.date.min
    return b.Execution(date=day, time=_kst_hms(o), order_no=o.order_no, branch=o.branch,
                       original_order_no=o.original_order_no, symbol=o.symbol, name=o.name, side=o.side,
                       quantity=o.quantity, price=o.price if o.price else None, filled_quantity=o.filled_quantity,
                       average_fill_price=o.fill_price, remaining_quantity=o.unfilled_quantity,
                       rejected_quantity=o.quantity if o.rejected_reason else 0, cancelled=o.is_cancellation,
                       exchange=o.exchange.order_code if o.exchange else "", filled_amount=o.filled_amount)


def listed(e: m.Execution) -> b.Execution:
    """A row of the day's US orders as :func:`chatbot.kis.orders.find_candidates` matches them (prices in
    ten-thousandths of a dollar, the average fill in dollars), in dollars."""
    day = dt.datetime.strptime(e.date, "%Y%m%d").date() if e.date else dt.date.min
    return b.Execution(date=day, time=e.time, order_no=e.order_no, branch=e.branch,
                       original_order_no=e.original_order_no, symbol=e.code, name=e.name, side=e.side,
                       quantity=e.quantity, price=_usd(Decimal(e.price).scaleb(-PRICE_DECIMALS)) if e.price else None,
                       filled_quantity=e.filled_quantity, average_fill_price=_usd(e.average_fill_price),
                       remaining_quantity=e.remaining_quantity, rejected_quantity=e.rejected_quantity,
                       cancelled=e.cancelled, exchange="",  # the listing does not say where
                       filled_amount=None if e.filled_amount is None else _usd(e.filled_amount))


def bar(x: UsBar) -> b.Bar:
    return b.Bar(date=x.date, open=x.open, high=x.high, low=x.low, close=x.close, volume=x.volume,
                 traded_value=x.traded_value)


def ack(order_no: str, branch: str, accepted_at: dt.datetime) -> b.OrderAck:
    return b.OrderAck(order_no=order_no, branch=branch, time=accepted_at.astimezone(SEOUL).strftime("%H%M%S"))


class UsBroker:
    """One user's US account at KIS, as a :class:`chatbot.broker.Broker` (amounts in dollars)."""

    def __init__(self, client: KisOverseasClient, submitter: UsOrderSubmitter | None = None, *,
                 exchange_of: ExchangeOf | None = None) -> None:
        self.client = client
        self.submitter = submitter or UsOrderSubmitter(client)
        self.exchange_of = exchange_of or (lambda _symbol: None)
        self._exchanges: dict[str, UsExchange] = {}
        self._listeners: list[b.FillListener] = []
        self.krw_per_usd = Decimal(0)  # the KRW rate KIS last reported (price-detail, present balance)

    @property
    def market(self) -> Market:
        return US

    def remember(self, symbol: str, exchange: UsExchange) -> None:
        """Where ``symbol`` is listed, as the caller knows it (a stored card)."""
        self._exchanges[symbol] = exchange

    async def exchange(self, symbol: str) -> UsExchange:
        """Where ``symbol`` is listed: the directory's word, else KIS's (asked once per ticker)."""
        found = self._exchanges.get(symbol) or self.exchange_of(symbol)
        if found is None:
            found = (await self.client.locate(symbol)).exchange
        self._exchanges[symbol] = found
        return found

    async def detail(self, symbol: str) -> UsQuoteDetail | None:
        """price-detail (range, limits, tick, KIS's KRW rate), or None where KIS does not give it."""
        try:
            detail = await self.client.quote_detail(symbol, await self.exchange(symbol))
        except KisError:
            return None
        if detail.krw_per_usd > 0:
            self.krw_per_usd = detail.krw_per_usd
        return detail

    async def quote(self, symbol: str, *, kind: Kind | None = None) -> b.Quote:
        """One request where KIS gives price-detail (price, change, range, limits, tick, KRW rate: §2.2, as
        python-kis quotes); the plain price TR (§2.1) where it does not (unverified on paper)."""
        detail = await self.detail(symbol)
        if detail is not None:
            return quote_of_detail(detail)
        return quote(await self.client.quote(symbol, await self.exchange(symbol)), None)

    async def buying_power(self, symbol: str, price: Money | None = None) -> b.BuyingPower:
        amount = price.amount if price is not None else (await self.client.quote(symbol, await self.exchange(symbol))
                                                         ).price.amount
        power = await self.client.buying_power(await self.exchange(symbol), symbol, amount)
        if power.krw_per_usd > 0:
            self.krw_per_usd = power.krw_per_usd
        return b.BuyingPower(orderable_cash=power.orderable_cash, price=_usd(amount), max_quantity=power.max_quantity)

    async def balance(self) -> b.Balance:
        """Holdings (paper: one query per exchange, the client's) and the dollar cash of the present balance."""
        bal = await self.client.balance()
        present = await self.client.present_balance()
        if present.krw_per_usd > 0:
            self.krw_per_usd = present.krw_per_usd
        row = present.cash_in("USD")
        cash = row.cash if row is not None else _usd(0)
        withdrawable = row.withdrawable if row is not None else _usd(0)
        value = bal.value_total
        return b.Balance(currency=US.currency, holdings=tuple(holding(h) for h in bal.holdings), cash=cash,
                         cash_settled=withdrawable, holdings_value=value, total_value=cash + value,
                         cost_total=bal.cost_total, profit_loss_total=bal.profit_loss_total, net_assets=cash + value)

    async def holdings(self) -> tuple[b.Holding, ...]:
        return tuple(holding(h) for h in (await self.client.balance()).holdings)

    async def open_orders(self) -> list[b.OpenOrder]:
        return [open_order(o) for o in await self.client.open_orders()]

    async def executions(self, day: dt.date) -> list[b.Execution]:
        """The US orders KIS files under New York date ``day`` (and the day before, for a KST day)."""
        return [execution(o) for o in await self.client.orders(day - dt.timedelta(days=1), day)]

    async def find_orders(self, day: dt.date, intent: b.OrderIntent, known: Collection[str], *,
                          listed_from: str = "") -> list[b.Execution]:
        """The day's US orders as reconciliation reads them (:func:`us_order_listing`): a KST day spans
        the New York date and the day before."""
        wanted = OrderIntent(intent.side, intent.symbol, intent.quantity,
                             None if intent.price is None else price_units(_dollars(intent.price)),
                             intent.original_order_no, revise=intent.revise)
        rows = await find_candidates(us_order_listing(self.client), day, wanted, known, listed_from=listed_from)
        return [listed(e) for e in rows]

    async def place(self, side: b.OrderSide, symbol: str, quantity: int, price: Money | None, *,
                    on_sending: b.OnSending | None = None,
                    division: UsOrderDivision = UsOrderDivision.LIMIT) -> b.PlacedOrder:
        if price is None and division.priced:
            raise UsOrderNotOffered("KIS takes no US market order: give a limit price, or MOO/MOC for a sell")
        placed = await self.submitter.place(await self.exchange(symbol), side, symbol, quantity,
                                            None if price is None else _dollars(price), division,
                                            on_sending=on_sending)
        return b.PlacedOrder(ack(placed.ack.order_no, placed.ack.branch, placed.ack.accepted_at), placed.attempts,
                             placed.reconciled)

    def _order_exchange(self, order: b.OpenOrder) -> UsExchange:
        found = UsExchange.of_order_code(order.exchange) or self._exchanges.get(order.symbol)
        if found is None:
            raise ValueError(f"order {order.order_no} names no US exchange")
        return found

    async def revise(self, order: b.OpenOrder, price: Money, quantity: int | None = None, *,
                     on_sending: b.OnSending | None = None) -> b.OrderAck:
        remaining = order.cancellable_quantity
        a = await self.submitter.revise(self._order_exchange(order), order.side, order.symbol, order.order_no,
                                        _dollars(price), min(quantity or remaining, remaining), remaining,
                                        on_sending=on_sending)
        return b.OrderAck(a.order_no, a.branch, a.time)

    async def cancel(self, order: b.OpenOrder, *, on_sending: b.OnSending | None = None) -> b.OrderAck:
        a = await self.submitter.cancel(self._order_exchange(order), order.side, order.symbol, order.order_no,
                                        on_sending=on_sending)
        return b.OrderAck(a.order_no, a.branch, a.time)

    async def bars(self, symbol: str, period: str = "D", *, kind: Kind | None = None) -> list[b.Bar]:
        return [bar(x) for x in await self.client.bars(symbol, await self.exchange(symbol), period)]

    # -- fills: H0GSCNI0 (paper H0GSCNI9) notices -------------------------------------------------------
    def on_fill(self, listener: b.FillListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def attach(self, feed: RealtimeClient) -> Callable[[], None]:
        """Tell this broker's fill listeners the US notices ``feed`` receives (the caller subscribes
        ``feed``, parsing with :func:`chatbot.kis.overseas_frames.parse_frame`, to the account's
        H0GSCNI0/H0GSCNI9); returns the detach function."""
        return feed.add_listener(self._on_event)

    def _on_event(self, event: Event) -> None:
        notice = fill_of(event)
        if notice is not None:
            for listener in tuple(self._listeners):
                listener(notice)


def fill_of(event: object) -> b.Fill | None:
    """The port's fill of a US notice record (a fill or a refusal), else None."""
    if not isinstance(event, NOTICE_TYPES):
        return None
    n: Any = event  # the notice classes are built from their layouts (typed properties by field name)
    if not (n.is_fill or n.refused):
        return None
    now = dt.datetime.now(SEOUL)
    # the notice's time is of the exchange's clock (o.NOTICE_TIME_ZONE); the port's fill time is KST
    when = nearest_kst(n.time, now, o.NOTICE_TIME_ZONE) if n.time else now
    return b.Fill(order_no=n.order_no, original_order_no=n.original_order_no, symbol=n.symbol, side=n.side,
                  quantity=n.quantity, price=_usd(n.price), order_quantity=n.order_quantity,
                  time=when.astimezone(SEOUL).strftime("%H%M%S"), refused=n.refused, revise_cancel=n.revise_cancel)
