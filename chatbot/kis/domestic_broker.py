"""KIS's domestic (KRX) client behind the broker port (:class:`chatbot.broker.Broker`).

:class:`DomesticBroker` converts at the port: KIS's replies parse into the wire types of
:mod:`chatbot.kis.models` (whole won as ``int``, what the KRX hot paths count in), and leave here as the
port's models with every amount a :class:`~chatbot.markets.money.Money` in won. Orders go through the
:class:`~chatbot.kis.orders.OrderSubmitter`, so each is sent once whatever the network does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from decimal import Decimal

from chatbot import broker as b
from chatbot.kis import models as m
from chatbot.kis import protocol as p
from chatbot.kis.frames import ExecutionNotice
from chatbot.kis.orders import OrderIntent, OrderSubmitter, find_candidates
from chatbot.kis.realtime import Event, RealtimeClient
from chatbot.kis.rest import KisRestClient
from chatbot.markets.money import Money
from chatbot.markets.profile import KRX, Market
from chatbot.markets.symbols import Kind


def _won(amount: int | Decimal) -> Money:
    return Money.krw(amount)


def _whole_won(price: Money) -> int:
    """A KRX order price: whole won on the KRW grid, refused otherwise (never rounded silently)."""
    if price.currency is not KRX.currency or price.amount != price.amount.to_integral_value():
        raise ValueError(f"a KRX price is whole won, not {price}")
    return int(price.amount)


def quote(q: m.Quote) -> b.Quote:
    signed = -q.change if q.change_sign in ("4", "5") and q.change > 0 else q.change
    return b.Quote(symbol=q.code, price=_won(q.price), previous_close=_won(q.base_price), change=_won(signed),
                   change_rate=q.change_rate, volume=q.volume, traded_value=_won(q.traded_value), open=_won(q.open),
                   high=_won(q.high), low=_won(q.low), upper_limit=_won(q.upper_limit) if q.upper_limit else None,
                   lower_limit=_won(q.lower_limit) if q.lower_limit else None, tick=_won(q.tick), halted=q.halted,
                   market_name=q.market_name, sign=q.change_sign)


def holding(h: m.Holding) -> b.Holding:
    return b.Holding(symbol=p.listed_code(h.code), name=h.name, quantity=h.quantity, orderable_quantity=h.orderable_quantity,
                     average_price=_won(h.average_price), cost=_won(h.purchase_amount), price=_won(h.current_price),
                     value=_won(h.evaluation), profit_loss=_won(h.profit_loss), profit_loss_rate=h.profit_loss_rate)


def balance(bal: m.Balance) -> b.Balance:
    return b.Balance(currency=KRX.currency, holdings=tuple(holding(h) for h in bal.holdings), cash=_won(bal.cash),
                     cash_settled=_won(bal.cash_d2), holdings_value=_won(bal.securities_evaluation),
                     total_value=_won(bal.total_evaluation), cost_total=_won(bal.purchase_total),
                     profit_loss_total=_won(bal.profit_loss_total), net_assets=_won(bal.net_assets))


def open_order(o: m.OpenOrder) -> b.OpenOrder:
    market = o.division == p.OrderDivision.MARKET
    return b.OpenOrder(order_no=o.order_no, branch=o.branch, original_order_no=o.original_order_no,
                       symbol=p.listed_code(o.code),
                       name=o.name, side=o.side, quantity=o.quantity, price=None if market else _won(o.price),
                       filled_quantity=o.filled_quantity, cancellable_quantity=o.cancellable_quantity, time=o.time,
                       exchange=o.exchange)


def execution(e: m.Execution) -> b.Execution:
    market = e.division == p.OrderDivision.MARKET
    day = dt.datetime.strptime(e.date, "%Y%m%d").date() if e.date else dt.date.min
    return b.Execution(date=day, time=e.time, order_no=e.order_no, branch=e.branch,
                       original_order_no=e.original_order_no, symbol=p.listed_code(e.code), name=e.name, side=e.side,
                       quantity=e.quantity, price=None if market else _won(e.price),
                       filled_quantity=e.filled_quantity, average_fill_price=_won(e.average_fill_price),
                       remaining_quantity=e.remaining_quantity, rejected_quantity=e.rejected_quantity,
                       cancelled=e.cancelled, exchange=e.exchange,
                       filled_amount=None if e.filled_amount is None else _won(e.filled_amount))


def bar(x: m.Bar) -> b.Bar:
    return b.Bar(date=x.date, open=_won(x.open), high=_won(x.high), low=_won(x.low), close=_won(x.close),
                 volume=x.volume, traded_value=_won(x.traded_value))


def ack(a: m.OrderAck) -> b.OrderAck:
    return b.OrderAck(order_no=a.order_no, branch=a.branch, time=a.time)


def fill(n: ExecutionNotice) -> b.Fill:
    return b.Fill(order_no=n.order_no, original_order_no=n.original_order_no, symbol=p.listed_code(n.code), side=n.side,
                  quantity=n.quantity, price=_won(n.price), order_quantity=n.order_quantity, time=n.time,
                  refused=n.refused)


class DomesticBroker:
    """One user's KRX account at KIS, as a :class:`chatbot.broker.Broker`."""

    def __init__(self, client: KisRestClient, submitter: OrderSubmitter | None = None, *,
                 is_etn: Callable[[str], bool] | None = None) -> None:
        self.client = client
        self.submitter = submitter or OrderSubmitter(client)
        # Whether a code is an ETN's (the symbol directory knows): its orders name it Q + code (§4.1).
        self.is_etn = is_etn or (lambda _code: False)
        self._listeners: list[b.FillListener] = []

    @property
    def market(self) -> Market:
        return KRX

    async def quote(self, symbol: str, *, kind: Kind | None = None) -> b.Quote:
        return quote(await self.client.quote(p.quotation_code(symbol, self._etn(symbol, kind))))

    async def buying_power(self, symbol: str, price: Money | None = None) -> b.BuyingPower:
        power = await self.client.buying_power(self._order_code(symbol), None if price is None else _whole_won(price))
        return b.BuyingPower(orderable_cash=_won(power.orderable_cash), price=_won(power.calc_price),
                             max_quantity=power.max_quantity)

    async def balance(self) -> b.Balance:
        return balance(await self.client.balance())

    async def holdings(self) -> tuple[b.Holding, ...]:
        return (await self.balance()).holdings

    async def open_orders(self) -> list[b.OpenOrder]:
        return [open_order(o) for o in await self.client.open_orders()]

    async def executions(self, day: dt.date) -> list[b.Execution]:
        return [execution(e) for e in await self.client.executions(day, day)]

    def _etn(self, symbol: str, kind: Kind | None = None) -> bool:
        return kind is Kind.ETN if kind is not None else self.is_etn(symbol)

    def _order_code(self, symbol: str) -> str:
        return p.order_code(symbol, self._etn(symbol))

    async def find_orders(self, day: dt.date, intent: b.OrderIntent, known: Collection[str], *,
                          listed_from: str = "") -> list[b.Execution]:
        wanted = OrderIntent(intent.side, self._order_code(intent.symbol), intent.quantity,
                             None if intent.price is None else _whole_won(intent.price), intent.original_order_no,
                             revise=intent.revise)
        return [execution(e) for e in await find_candidates(self.client, day, wanted, known, listed_from=listed_from)]

    async def place(self, side: b.OrderSide, symbol: str, quantity: int, price: Money | None, *,
                    on_sending: b.OnSending | None = None) -> b.PlacedOrder:
        placed = await self.submitter.place(side, self._order_code(symbol), quantity,
                                            None if price is None else _whole_won(price),
                                            on_sending=on_sending)
        return b.PlacedOrder(ack(placed.ack), placed.attempts, placed.reconciled)

    async def revise(self, order: b.OpenOrder, price: Money, quantity: int | None = None, *,
                     on_sending: b.OnSending | None = None) -> b.OrderAck:
        return ack(await self.submitter.revise(
            order.order_no, order.branch, order.side, self._order_code(order.symbol), _whole_won(price), quantity or 0,
            all_remaining=quantity is None, exchange=order.exchange, on_sending=on_sending))

    async def cancel(self, order: b.OpenOrder, *, on_sending: b.OnSending | None = None) -> b.OrderAck:
        return ack(await self.submitter.cancel(order.order_no, order.branch, order.side, self._order_code(order.symbol),
                                               exchange=order.exchange or None, on_sending=on_sending))

    async def bars(self, symbol: str, period: str = "D", *, kind: Kind | None = None) -> list[b.Bar]:
        return [bar(x) for x in await self.client.bars(p.quotation_code(symbol, self._etn(symbol, kind)), period)]

    def on_fill(self, listener: b.FillListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def attach(self, feed: RealtimeClient) -> Callable[[], None]:
        """Tell this broker's fill listeners the execution notices ``feed`` receives (the caller
        subscribes ``feed`` to the account's notice TR); returns the detach function."""
        return feed.add_listener(self._on_event)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, ExecutionNotice) and (event.is_fill or event.refused):
            notice = fill(event)
            for listener in tuple(self._listeners):
                listener(notice)
