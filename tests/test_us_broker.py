"""KIS's US client behind the broker port (:class:`chatbot.kis.us_broker.UsBroker`), against the
simulator over loopback with the US market held open, on both server families."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from chatbot.broker import Broker, OrderIntent, OrderSide
from chatbot.kis.overseas import UsOrderNotOffered
from chatbot.kis.overseas_frames import parse_frame
from chatbot.kis.overseas_protocol import UsExchange, UsOrderDivision
from chatbot.kis.us_broker import UsBroker, fill_of
from chatbot.markets.directory import SymbolDirectory
from chatbot.markets.money import Currency, Money
from chatbot.markets.profile import US
from chatbot.markets.us_hours import NEW_YORK, SEOUL
from chatbot.sim.server import KisSimulator
from tests.test_overseas_client import Factory, us, us_sim  # noqa: F401 -- fixtures

DIRECTORY = SymbolDirectory.bundled()


def exchange_of(symbol: str) -> UsExchange | None:
    found = DIRECTORY.by_code(symbol, "US")
    return UsExchange.of_market(found.market) if found else None


@pytest.mark.parametrize("flavour", ["real", "virtual"])
async def test_us_client_behind_the_port(us_sim: KisSimulator, us: Factory, flavour: str) -> None:  # noqa: F811
    broker = UsBroker(us(flavour), exchange_of=exchange_of)
    assert isinstance(broker, Broker) and broker.market is US
    us_sim.set_us_price("AAPL", Decimal("190.25"))
    quote = await broker.quote("AAPL")
    assert quote.price == Money.usd("190.25") and quote.currency is Currency.USD and quote.market_name == "NASDAQ"
    assert quote.tick == Money.usd("0.01")
    power = await broker.buying_power("AAPL", Money.usd("150.00"))
    assert power.orderable_cash.currency is Currency.USD and power.max_quantity > 0
    placed = await broker.place(OrderSide.BUY, "AAPL", 2, Money.usd("150.00"))  # rests far below
    [order] = [o for o in await broker.open_orders() if o.order_no == placed.ack.order_no]
    today, intent = dt.datetime.now(SEOUL).date(), OrderIntent(OrderSide.BUY, "AAPL", 2, Money.usd("150.00"))
    [found] = await broker.find_orders(today, intent, set())  # the lookup reconciliation makes, in dollars
    assert (found.order_no, found.price, found.quantity) == (placed.ack.order_no, Money.usd(150), 2)
    assert not await broker.find_orders(today, intent, {placed.ack.order_no})
    assert (order.side, order.quantity, order.price, order.exchange) == (OrderSide.BUY, 2, Money.usd(150), "NASD")
    revised = await broker.revise(order, Money.usd("151.50"))
    [order] = [o for o in await broker.open_orders() if o.order_no == revised.order_no]
    assert order.price == Money.usd("151.50")
    await broker.cancel(order)
    assert revised.order_no not in {o.order_no for o in await broker.open_orders()}
    with pytest.raises(ValueError):
        await broker.place(OrderSide.BUY, "AAPL", 1, Money.usd("150.005"))  # off the tick: refused, not rounded
    with pytest.raises(UsOrderNotOffered):
        await broker.place(OrderSide.BUY, "AAPL", 1, None)  # no US market order
    filled = await broker.place(OrderSide.BUY, "AAPL", 1, Money.usd("191.00"))  # marketable: fills
    balance = await broker.balance()
    assert balance.currency is Currency.USD and balance.cash.currency is Currency.USD
    assert [(h.symbol, h.quantity) for h in balance.holdings] == [("AAPL", 1)]
    day = dt.datetime.now(NEW_YORK).date()
    assert filled.ack.order_no in {e.order_no for e in await broker.executions(day)}
    bars = await broker.bars("AAPL")
    assert bars and bars[0].close.currency is Currency.USD


async def test_exchange_found_by_asking_kis_when_the_directory_does_not_know(us: Factory) -> None:  # noqa: F811
    broker = UsBroker(us())
    assert (await broker.exchange("SPY")) is UsExchange.AMEX  # NASDAQ, then NYSE, then AMEX
    assert (await broker.quote("SPY")).market_name == "AMEX"


async def test_session_orders_refused_on_paper(us: Factory) -> None:  # noqa: F811
    broker = UsBroker(us("virtual"), exchange_of=exchange_of)
    with pytest.raises(UsOrderNotOffered):
        await broker.place(OrderSide.SELL, "TSLA", 1, None, division=UsOrderDivision.MOC)


def test_fill_notice_becomes_a_port_fill() -> None:
    fields = ["HTSID", "1234567801", "0030000007", "", "02", "0", "2", "AAPL", "3", "001902500", "093015", "0",
              "2", "2", "01234", "3", "홍길동", "애플", "6", "10", "", "", "", "", "000000190.25"]
    [record] = parse_frame("0|H0GSCNI0|001|" + "^".join(fields))
    fill = fill_of(record)
    assert fill is not None and fill.price == Money.usd("190.25") and fill.quantity == 3
    assert (fill.order_no, fill.symbol, fill.side) == ("0030000007", "AAPL", OrderSide.BUY)
    assert fill.time in ("233015", "223015")  # 09:30:15 in New York (o.NOTICE_TIME_ZONE) in KST, winter or summer


async def test_quote_falls_back_to_the_price_tr_without_price_detail(us_sim: KisSimulator, us: Factory) -> None:  # noqa: F811
    broker = UsBroker(us(), exchange_of=exchange_of)
    us_sim.set_us_price("AAPL", Decimal("190.25"))
    detailed = await broker.quote("AAPL")  # one request: price-detail
    us_sim.faults.error_5xx_probability, us_sim.faults.paths = 1.0, ("/uapi/overseas-price/v1/quotations/price-detail",)
    try:
        plain = await broker.quote("AAPL")  # price-detail refused: the price TR
    finally:
        us_sim.faults.clear()
    assert plain.price == detailed.price == Money.usd("190.25")
    assert (plain.change, plain.change_rate, plain.sign) == (detailed.change, detailed.change_rate, detailed.sign)
    assert plain.upper_limit is None and plain.tick == Money.usd("0.01")
