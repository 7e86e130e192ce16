"""The market axis and the broker port: money, market profiles, and KIS's domestic client behind the
port (against the simulator over loopback)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from chatbot.broker import Broker, OrderIntent, OrderSide
from chatbot.kis.domestic_broker import DomesticBroker
from chatbot.markets.money import Currency, CurrencyMismatch, Money
from chatbot.markets.profile import KRX, US, market_of
from chatbot.sim.server import KisSimulator
from chatbot.symbols import Symbol

CODE = "005930"


def test_money_is_decimal_with_one_currency() -> None:
    assert Money.krw(1500) + Money.krw(500) == Money.krw(2000)
    assert Money.krw(1) == Money(Decimal("1.0"), Currency.KRW) and Money.krw(1) != Money.usd(1)
    assert Money.usd("1.005").quantize() == Money.usd("1.01") and Money.krw("10.5").quantize() == Money.krw(11)
    with pytest.raises(CurrencyMismatch):
        Money.krw(1) + Money.usd(1)
    with pytest.raises(CurrencyMismatch):
        assert Money.krw(1) < Money.usd(2)
    with pytest.raises(TypeError):
        Money(1.5, Currency.USD)  # type: ignore[arg-type]
    assert Money(Decimal(3), "USD") == Money.usd(3)  # type: ignore[arg-type]  # the old spelling still works
    assert (str(Money.krw(-1234567)), str(Money.usd("0.5")), str(Money.usd(1234))) == ("-₩1,234,567", "$0.5000",
                                                                                    "$1,234.00")


def test_market_profiles() -> None:
    assert (KRX.currency, US.currency) == (Currency.KRW, Currency.USD)
    assert KRX.tick_for(Money.krw(55_000)) == Money.krw(100) and US.tick_for(Money.usd("0.5")) == Money.usd("0.0001")
    assert KRX.is_on_tick(Money.krw(55_100)) and not KRX.is_on_tick(Money.krw(55_050))
    assert not KRX.is_on_tick(Money(Decimal("1999.5"), Currency.KRW))
    assert KRX.round_to_tick(Money.krw(55_051)) == Money.krw(55_000)
    assert KRX.round_to_tick(Money.krw(55_051), up=True) == Money.krw(55_100)
    assert US.round_to_tick(Money.usd("190.257")) == Money.usd("190.25")
    assert US.is_on_tick(Money.usd("190.25")) and not US.is_on_tick(Money.usd("190.255"))
    with pytest.raises(ValueError):
        KRX.tick_for(Money.usd(1))
    assert KRX.costs(Money.krw(1_000_000), sell=True) == (Money.krw(150), Money.krw(2000))
    assert KRX.costs(Money.krw(1_000_000), sell=False) == (Money.krw(150), Money.krw(0))
    assert US.costs(Money.usd(1000), sell=False)[0] == Money.usd("2.50")
    assert KRX.next_open(dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)) == dt.datetime(2026, 12, 1, 0, tzinfo=dt.UTC)
    assert US.next_open(dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)) == dt.datetime(2026, 11, 30, 14, 30,
                                                                                    tzinfo=dt.UTC)
    assert not KRX.is_trading_day(dt.date(2026, 12, 31)) and US.is_trading_day(dt.date(2026, 12, 31))
    assert market_of(Symbol("AAPL", "애플", "Apple", "NASDAQ")) is US
    assert market_of(Symbol(CODE, "삼성전자", "Samsung Electronics", "KOSPI")) is KRX


async def test_domestic_client_behind_the_port(sim: KisSimulator, make_client) -> None:
    broker = DomesticBroker(make_client())
    assert isinstance(broker, Broker) and broker.market is KRX
    quote = await broker.quote(CODE)
    state = sim.market.get(CODE)
    assert state is not None and quote.price == Money.krw(state.price) and quote.currency is Currency.KRW
    assert quote.tick == KRX.tick_for(quote.price)
    assert quote.lower_limit is not None and quote.upper_limit is not None
    assert quote.lower_limit < quote.price < quote.upper_limit
    power = await broker.buying_power(CODE, quote.price)
    assert power.orderable_cash.currency is Currency.KRW and power.max_quantity > 0
    price = quote.lower_limit  # rests: a limit buy far below the market
    placed = await broker.place(OrderSide.BUY, CODE, 1, price)
    [order] = [o for o in await broker.open_orders() if o.order_no == placed.ack.order_no]
    assert (order.side, order.quantity, order.price) == (OrderSide.BUY, 1, price)
    today, intent = dt.datetime.now(KRX.zone).date(), OrderIntent(OrderSide.BUY, CODE, 1, price)
    [found] = await broker.find_orders(today, intent, set())  # the lookup reconciliation makes, in won
    assert (found.order_no, found.price, found.quantity) == (placed.ack.order_no, price, 1)
    assert not await broker.find_orders(today, intent, {placed.ack.order_no})  # in the snapshot: not ours
    revised = await broker.revise(order, KRX.round_to_tick(price + KRX.tick_for(price), up=True))
    [order] = [o for o in await broker.open_orders() if o.order_no == revised.order_no]
    await broker.cancel(order)
    assert revised.order_no not in {o.order_no for o in await broker.open_orders()}
    with pytest.raises(ValueError):
        await broker.place(OrderSide.BUY, CODE, 1, Money(Decimal("100.5"), Currency.KRW))
    balance = await broker.balance()
    assert balance.currency is Currency.KRW and balance.cash.currency is Currency.KRW
    bars = await broker.bars(CODE)
    assert bars and bars[0].close.currency is Currency.KRW
    assert [e.symbol for e in await broker.executions(dt.datetime.now(KRX.zone).date())]


def test_cards_render_won_as_before_and_dollars_with_their_sign() -> None:
    from chatbot.service.views import Mode, OrderCard
    from chatbot.telegram import render

    def card(symbol: Symbol, price: Money) -> OrderCard:
        market = market_of(symbol)
        amount = price * 3
        commission, tax = market.costs(amount, sell=False)
        return OrderCard(token="t", mode=Mode.PAPER, action="order", side=OrderSide.BUY, symbol=symbol, quantity=3,
                         price=price, quoted_price=price, amount=amount, commission=commission, tax=tax,
                         expires_at=dt.datetime.now(dt.UTC))

    won, _ = render.card(card(Symbol(CODE, "삼성전자", "Samsung Electronics", "KOSPI"), Money.krw(70_000)), "ko")
    assert "예상 금액 ₩210,000" in won and "예상 수수료 ₩31 · 세금 ₩0" in won and "$" not in won
    usd, _ = render.card(card(Symbol("AAPL", "애플", "Apple", "NASDAQ"), Money.usd("190.25")), "ko")
    assert "가격 $190.25" in usd and "예상 금액 $570.75" in usd and "예상 수수료 $1.42" in usd and "원" not in usd
    assert render.signed(Money.usd("-3.5")) == "-$3.50" and render.signed(Money.krw(1200)) == "+1,200"
