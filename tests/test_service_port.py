"""The domestic service path over the broker port alone (issue 14): market data, the account and every
order card (buy, sell, cancel, revise; confirm, refusals, unknown outcomes) driven against a fake
:class:`chatbot.broker.Broker`, while the account's KIS client and submitter are stand-ins that fail the
test when touched. It passes only if the port is enough for the service."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable, Collection
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from sqlmodel import select

from chatbot import broker as b
from chatbot.kis.errors import KisOrderUncertain, KisServerError
from chatbot.market_hours import MarketCalendar
from chatbot.markets.money import Money
from chatbot.markets.profile import KRX, Market
from chatbot.markets.symbols import Kind
from chatbot.security.credentials import Account
from chatbot.service.account import AccountService
from chatbot.service.accounts import AccountProvider, UserAccount
from chatbot.service.cards import CardStore
from chatbot.service.errors import UserError
from chatbot.service.journal import OrderJournal, Settling
from chatbot.service.market_data import MarketData
from chatbot.service.orders import Orders
from chatbot.service.views import Mode, OrderCard, OrderSide, Outcome
from chatbot.storage import Database
from chatbot.storage.tables import OrderJournalRow, PendingOrderRow
from chatbot.symbols import SymbolDirectory

ALICE = 7001
CODE = "005930"
PRICE = Money.krw(70_000)


class NoKis:
    """Where the account's KIS client or submitter would be: any use is a reach past the port."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attr: str) -> Any:
        raise AssertionError(f"the service reached past the broker port: {self.name}.{attr}")


class FakeBroker:
    """A KRX account at a broker that is not KIS: one stock at ₩70,000, 20 shares held, orders kept
    in a list; ``faults`` makes the next place/revise raise after ``on_sending`` (the request may have
    left)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.orders: list[b.OpenOrder] = []
        self.faults: dict[str, Exception] = {}
        self.listed: list[b.Execution] = []  # what find_orders finds
        self.sent_after_snapshot: list[str] = []
        self.cancelled: list[b.OpenOrder] = []  # what each cancel was given, as the adapter sees it
        self._next = 1

    @property
    def market(self) -> Market:
        return KRX

    async def quote(self, symbol: str, *, kind: Kind | None = None) -> b.Quote:
        self.calls.append(("quote", (symbol, kind)))
        w = Money.krw
        return b.Quote(symbol=symbol, price=PRICE, previous_close=w(69_000), change=w(1_000),
                       change_rate=Decimal("1.45"), volume=1_000, traded_value=w(70_000_000), open=w(69_500),
                       high=w(70_500), low=w(69_000), upper_limit=w(89_700), lower_limit=w(48_300), tick=w(100))

    async def buying_power(self, symbol: str, price: Money | None = None) -> b.BuyingPower:
        self.calls.append(("buying_power", (symbol, price)))
        return b.BuyingPower(orderable_cash=Money.krw(1_000_000), price=price or PRICE, max_quantity=14)

    async def balance(self) -> b.Balance:
        w = Money.krw
        held = await self.holdings()
        return b.Balance(currency=KRX.currency, holdings=tuple(held), cash=w(1_000_000), cash_settled=w(1_000_000),
                         holdings_value=w(1_400_000), total_value=w(2_400_000), cost_total=w(1_300_000),
                         profit_loss_total=w(100_000), net_assets=w(2_400_000))

    async def holdings(self) -> tuple[b.Holding, ...]:
        w = Money.krw
        return (b.Holding(symbol=CODE, name="삼성전자", quantity=20, orderable_quantity=20, average_price=w(65_000),
                          cost=w(1_300_000), price=PRICE, value=w(1_400_000), profit_loss=w(100_000),
                          profit_loss_rate=Decimal("7.69")),)

    async def open_orders(self) -> list[b.OpenOrder]:
        self.calls.append(("open_orders", None))
        return list(self.orders)

    async def executions(self, day: dt.date) -> list[b.Execution]:
        return []

    async def find_orders(self, day: dt.date, intent: b.OrderIntent, known: Collection[str], *,
                          listed_from: str = "") -> list[b.Execution]:
        self.calls.append(("find_orders", intent))
        return [e for e in self.listed if e.order_no not in known]

    def _number(self) -> str:
        self._next += 1
        return f"{self._next:010d}"

    async def _sending(self, what: str, on_sending: b.OnSending | None) -> None:
        assert on_sending is not None, "every order request is journalled before it leaves"
        await on_sending({o.order_no for o in self.orders})
        self.sent_after_snapshot.append(what)
        if what in self.faults:
            raise self.faults.pop(what)

    async def place(self, side: b.OrderSide, symbol: str, quantity: int, price: Money | None, *,
                    on_sending: b.OnSending | None = None) -> b.PlacedOrder:
        self.calls.append(("place", (side, symbol, quantity, price)))
        await self._sending("place", on_sending)
        order_no = self._number()
        self.orders.append(b.OpenOrder(order_no=order_no, branch="06010", original_order_no="", symbol=symbol,
                                       name="삼성전자", side=side, quantity=quantity, price=price, filled_quantity=0,
                                       cancellable_quantity=quantity, time="100000", exchange="KRX"))
        return b.PlacedOrder(b.OrderAck(order_no, "06010", "100000"), 1, False)

    async def revise(self, order: b.OpenOrder, price: Money, quantity: int | None = None, *,
                     on_sending: b.OnSending | None = None) -> b.OrderAck:
        self.calls.append(("revise", (order.order_no, order.branch, order.exchange, price, quantity)))
        await self._sending("revise", on_sending)
        return b.OrderAck(self._number(), order.branch, "100100")

    async def cancel(self, order: b.OpenOrder, *, on_sending: b.OnSending | None = None) -> b.OrderAck:
        self.calls.append(("cancel", (order.order_no, order.branch, order.side, order.symbol)))
        self.cancelled.append(order)
        await self._sending("cancel", on_sending)
        self.orders = [o for o in self.orders if o.order_no != order.order_no]
        return b.OrderAck(self._number(), order.branch, "100200")

    async def bars(self, symbol: str, period: str = "D", *, kind: Kind | None = None) -> list[b.Bar]:
        self.calls.append(("bars", (symbol, period, kind)))
        w = Money.krw
        return [b.Bar(date=dt.date(2026, 11, 27 - i), open=w(69_000), high=w(71_000), low=w(68_000),
                      close=w(70_000 - 100 * i), volume=1000, traded_value=w(70_000_000)) for i in range(3)]

    def on_fill(self, listener: b.FillListener) -> Callable[[], None]:
        return lambda: None


class Accounts:
    def __init__(self, broker: FakeBroker) -> None:
        self.account = UserAccount(cast(Any, NoKis("client")), cast(Any, NoKis("submitter")), broker,
                                   Account("12345678", "01"))

    async def for_user(self, _user_id: int) -> UserAccount:
        return self.account

    current = for_user  # the credentials read afresh: the same account here


@dataclasses.dataclass
class Service:
    broker: FakeBroker
    orders: Orders
    market: MarketData
    account: AccountService
    db: Database
    uncertain: list[int]

    async def confirmed(self, card: OrderCard, message_id: int) -> Any:
        await self.orders.attach_card(card, ALICE, message_id)

        async def show_sending(_card: OrderCard) -> None:
            return None

        return await self.orders.confirm(card.token, ALICE, message_id, show_sending)

    async def journal(self) -> list[OrderJournalRow]:
        async with self.db.session() as session:
            return list((await session.exec(select(OrderJournalRow).order_by(OrderJournalRow.id))).all())  # type: ignore[arg-type]


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    db = Database(f"sqlite:///{tmp_path}/port.sqlite3")
    await db.migrate()
    broker = FakeBroker()
    accounts = cast(AccountProvider, Accounts(broker))
    market = MarketData(accounts, SymbolDirectory.bundled(), Mode.PAPER, MarketCalendar())
    cards = CardStore(db, 600)
    uncertain: list[int] = []
    orders = Orders(accounts, cards, OrderJournal(db), market, Mode.PAPER, Settling(), process_id="port-test",
                    on_uncertain=lambda: uncertain.append(1))
    yield Service(broker, orders, market, AccountService(accounts, market, cards, Mode.PAPER), db, uncertain)
    await db.dispose()


async def test_quote_chart_and_account_through_the_port(service: Service) -> None:
    quote = await service.market.quote(ALICE, "삼성전자")
    assert quote.symbol.code == CODE and quote.quote.price == PRICE
    chart = await service.market.chart(ALICE, [CODE, "w"])
    assert chart.bars == 3 and chart.last_close == Money.krw(70_000) and chart.png.startswith(b"\x89PNG")
    assert ("bars", (CODE, "W", Kind.STOCK)) in service.broker.calls
    balance = await service.account.balance(ALICE)
    assert balance.balance.cash == Money.krw(1_000_000) and balance.account == "12345678-01"
    assert [h.symbol for h in balance.balance.holdings] == [CODE]
    assert (await service.account.open_orders(ALICE)).orders == ()


async def test_buy_sell_revise_and_cancel_cards_through_the_port(service: Service) -> None:
    orders, broker = service.orders, service.broker
    with pytest.raises(UserError) as off:
        await orders.prepare_order(ALICE, ALICE, OrderSide.BUY, [CODE, "1", "69950"])
    assert off.value.key == "off_tick"
    with pytest.raises(UserError) as out:
        await orders.prepare_order(ALICE, ALICE, OrderSide.BUY, [CODE, "1", "90000"])
    assert out.value.key == "out_of_limits" and out.value.params["upper"] == Money.krw(89_700)
    with pytest.raises(UserError) as cash:
        await orders.prepare_order(ALICE, ALICE, OrderSide.BUY, [CODE, "15", "69000"])
    assert cash.value.key == "insufficient_cash" and cash.value.params["max_quantity"] == 14
    with pytest.raises(UserError) as held:
        await orders.prepare_order(ALICE, ALICE, OrderSide.SELL, [CODE, "21"])
    assert held.value.key == "insufficient_holdings" and held.value.params["have"] == 20
    assert not any(call == "place" for call, _ in broker.calls)

    buy = await orders.prepare_order(ALICE, ALICE, OrderSide.BUY, [CODE, "5", "69000"])
    placed = await service.confirmed(buy, 101)
    assert placed.outcome is Outcome.PLACED and placed.order_no == broker.orders[0].order_no
    assert ("place", (OrderSide.BUY, CODE, 5, Money.krw(69_000))) in broker.calls
    entry = (await service.journal())[-1]
    assert entry.status == "accepted" and entry.sent_at is not None and entry.account == "12345678-01"

    revise = await orders.prepare_revise(ALICE, ALICE, [placed.order_no, "68000"])
    assert (revise.action, revise.quantity, revise.price) == ("revise", 5, Money.krw(68_000))
    revised = await service.confirmed(revise, 102)
    assert revised.outcome is Outcome.REVISED_ORDER
    assert ("revise", (placed.order_no, "06010", "KRX", Money.krw(68_000), None)) in broker.calls

    cancel = await orders.prepare_cancel(ALICE, ALICE, placed.order_no.lstrip("0"))
    cancelled = await service.confirmed(cancel, 103)
    assert cancelled.outcome is Outcome.CANCELLED_ORDER and not broker.orders
    assert ("cancel", (placed.order_no, "06010", OrderSide.BUY, CODE)) in broker.calls

    sell = await orders.prepare_order(ALICE, ALICE, OrderSide.SELL, [CODE, "20"])
    sold = await service.confirmed(sell, 104)
    assert sold.outcome is Outcome.PLACED and ("place", (OrderSide.SELL, CODE, 20, None)) in broker.calls
    assert broker.sent_after_snapshot == ["place", "revise", "cancel", "place"]
    assert [e.status for e in await service.journal()] == ["accepted"] * 4


async def test_unknown_outcomes_through_the_port(service: Service) -> None:
    """A lost reply is settled as unknown (handed to reconciliation) or, for a revision, found by the
    broker's look at the day's orders; nothing is sent again."""
    orders, broker = service.orders, service.broker
    broker.faults["place"] = KisOrderUncertain("no answer and not found")
    lost = await service.confirmed(await orders.prepare_order(ALICE, ALICE, OrderSide.BUY, [CODE, "1"]), 201)
    assert lost.outcome is Outcome.UNCERTAIN and service.uncertain == [1]
    assert (await service.journal())[-1].status == "uncertain"

    placed = await service.confirmed(await orders.prepare_order(ALICE, ALICE, OrderSide.BUY, [CODE, "2", "69000"]),
                                     202)
    assert placed.order_no is not None
    fault = KisServerError("reply lost")
    fault.maybe_sent = True
    broker.faults["revise"] = fault
    broker.listed = [b.Execution(date=dt.date.today(), time="100300", order_no="0000000777", branch="06010",
                                 original_order_no=placed.order_no, symbol=CODE, name="삼성전자", side=OrderSide.BUY,
                                 quantity=2, price=Money.krw(68_500), filled_quantity=0,
                                 average_fill_price=Money.krw(0), remaining_quantity=2, rejected_quantity=0,
                                 cancelled=False, exchange="KRX")]
    revise = await orders.prepare_revise(ALICE, ALICE, [placed.order_no, "68500"])
    found = await service.confirmed(revise, 203)
    assert found.outcome is Outcome.REVISED_ORDER and found.order_no == "0000000777"
    (intent,) = [arg for call, arg in broker.calls if call == "find_orders"]
    assert intent == b.OrderIntent(OrderSide.BUY, CODE, 2, Money.krw(68_500), placed.order_no, revise=True)
    assert broker.sent_after_snapshot.count("revise") == 1  # never sent again
    async with service.db.session() as session:
        cards = (await session.exec(select(PendingOrderRow))).all()
    assert len(cards) == 3


@pytest.mark.parametrize(("price", "tick"), [(70_000, 100), (1_995, 1), (2_050, 5), (9_990, 5), (15_000, 7)])
def test_the_ports_tick_rule_is_kis_quotes(price: int, tick: int) -> None:
    """The port's ``Quote.tick_for`` answers as the KIS quote's did: the share table, the fund table
    (ETFs, ETNs) or the instrument's own tick, read from its tick at the current price."""
    from chatbot.kis import domestic_broker
    from chatbot.kis.models import Quote

    wire = Quote(code=CODE, price=price, change=0, change_sign="3", change_rate=Decimal(0), volume=0, traded_value=0,
                 open=price, high=price, low=price, upper_limit=price * 2, lower_limit=price // 2, base_price=price,
                 tick=tick, market_name="KOSPI", sector="", halted=False)
    port = domestic_broker.quote(wire)
    for at in (500, 1_999, 2_000, 2_005, 4_990, 5_000, 19_990, 20_000, 55_000, 199_500, 200_000, 600_000):
        assert port.tick_for(Money.krw(at)) == Money.krw(wire.tick_for(at)), at


async def test_cancel_and_revise_cards_of_a_market_order(service: Service) -> None:
    """A resting market order (no price): its cancel card says "market" and shows no "current price ₩0";
    its revise card goes from "market" to the new price; the revision names the order's own exchange
    and revises what is left of it."""
    from chatbot.telegram import render

    orders, broker = service.orders, service.broker
    broker.orders.append(b.OpenOrder(order_no="0000000055", branch="06010", original_order_no="", symbol=CODE,
                                     name="삼성전자", side=OrderSide.BUY, quantity=3, price=None, filled_quantity=0,
                                     cancellable_quantity=3, time="090000", exchange="NXT"))
    cancel = await orders.prepare_cancel(ALICE, ALICE, "55")
    assert cancel.price is None
    for lang, market in (("ko", "시장가"), ("en", "market")):
        text, _ = render.card(cancel, lang)
        assert market in text and "0000000055" in text
        assert "현재가 0" not in text and "now 0" not in text, text
    revise = await orders.prepare_revise(ALICE, ALICE, ["55", "69000"])
    text, _ = render.card(revise, "ko")
    assert "시장가 → " in text and "69,000" in text
    revised = await service.confirmed(revise, 301)
    assert revised.outcome is Outcome.REVISED_ORDER
    assert ("revise", ("0000000055", "06010", "NXT", Money.krw(69_000), None)) in broker.calls
    cancelled = await service.confirmed(cancel, 302)
    assert cancelled.outcome is Outcome.CANCELLED_ORDER
    assert [(e.action, e.price, e.original_order_no) for e in await service.journal()] == [
        ("revise", Decimal(69_000), "0000000055"), ("cancel", None, "0000000055")]


async def test_a_conditional_orders_rest_quote_names_an_etn_by_its_quotation_code(service: Service) -> None:
    """The conditional orders' REST quotes (the list's prices, an order armed without the feed) ask the
    broker with the instrument's kind, so an ETN is quoted under its own code (Q + code), as the card's is."""
    from chatbot.markets.symbols import Symbol
    from chatbot.service.conditional import ConditionalOrders

    service.market.symbols.upsert([Symbol("580001", "테스트 ETN", "Test ETN", "KOSPI", kind=Kind.ETN)])
    conditional = ConditionalOrders(service.db, service.orders.accounts, CardStore(service.db, 600),
                                    OrderJournal(service.db), service.market, Mode.PAPER, Settling(),
                                    process_id="port-test")
    account = await service.orders.accounts.for_user(ALICE)
    assert await conditional._quote(account, "580001") == 70_000
    assert await conditional._quote(account, CODE) == 70_000
    quotes = [arg for call, arg in service.broker.calls if call == "quote"]
    assert quotes == [("580001", Kind.ETN), (CODE, Kind.STOCK)]


async def test_an_etf_ticks_by_the_fund_table_where_both_tables_agree_at_its_price(service: Service) -> None:
    """KODEX 200 at ₩4,990 with KIS's tick 5 there: the share table also gives 5 at ₩4,990, so the quote's
    tick alone cannot tell the tables apart; the symbol's kind does. ₩5,005 is on the fund table's tick
    (5 above ₩2,000), where the share table would refuse it for a tick of 10."""
    w = Money.krw
    etf = b.Quote(symbol="069500", price=w(4_990), previous_close=w(4_990), change=w(0), change_rate=Decimal(0),
                  volume=0, traded_value=w(0), open=w(4_990), high=w(4_990), low=w(4_990), upper_limit=w(6_485),
                  lower_limit=w(3_495), tick=w(5))
    assert etf.tick_for(w(5_005)) == w(10) and etf.tick_for(w(5_005), fund=True) == w(5)

    async def quote(symbol: str, *, kind: Kind | None = None) -> b.Quote:
        assert kind is Kind.ETF
        return etf

    service.broker.quote = quote  # type: ignore[method-assign]
    card = await service.orders.prepare_order(ALICE, ALICE, OrderSide.BUY, ["069500", "1", "5005"])
    assert card.price == w(5_005)
    with pytest.raises(UserError) as off:
        await service.orders.prepare_order(ALICE, ALICE, OrderSide.BUY, ["069500", "1", "5003"])
    assert off.value.key == "off_tick" and off.value.params["tick"] == w(5)


@pytest.mark.parametrize("exchange", ["NXT", "SOR", "KRX"])
async def test_a_cancel_names_the_orders_own_exchange_at_the_port(service: Service, exchange: str) -> None:
    """A cancel card carries the exchange the broker lists the order on (KRX, NXT, SOR) to the port, and the
    journal keeps it: an adapter that trusts ``OpenOrder.exchange`` cancels on the right exchange (KIS
    refuses a cancel sent to another one). The card used to send "KRX" whatever the order's exchange."""
    orders, broker = service.orders, service.broker
    broker.orders.append(b.OpenOrder(order_no="0000000077", branch="06010", original_order_no="", symbol=CODE,
                                     name="삼성전자", side=OrderSide.SELL, quantity=4, price=Money.krw(71_000),
                                     filled_quantity=1, cancellable_quantity=3, time="090000", exchange=exchange))
    cancel = await orders.prepare_cancel(ALICE, ALICE, "77")
    cancelled = await service.confirmed(cancel, 401)
    assert cancelled.outcome is Outcome.CANCELLED_ORDER
    (sent,) = broker.cancelled
    assert (sent.order_no, sent.exchange, sent.side, sent.symbol, sent.quantity) == (
        "0000000077", exchange, OrderSide.SELL, CODE, 3)
    revise_target = b.OpenOrder(order_no="0000000078", branch="06010", original_order_no="", symbol=CODE,
                                name="삼성전자", side=OrderSide.BUY, quantity=2, price=Money.krw(69_000),
                                filled_quantity=0, cancellable_quantity=2, time="090100", exchange=exchange)
    broker.orders.append(revise_target)
    revised = await service.confirmed(await orders.prepare_revise(ALICE, ALICE, ["78", "68000"]), 402)
    assert revised.outcome is Outcome.REVISED_ORDER
    assert [(e.action, e.exchange) for e in await service.journal()] == [("cancel", exchange), ("revise", exchange)]
