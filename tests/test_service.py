"""The service surface with no Telegram at all: a front end's whole job, done through ``Services``
against the embedded simulator (quote, balance, cards for buy/sell/cancel/reset, confirm, dismiss)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from chatbot.config import DatabaseSettings, Settings, SimulatorSettings
from chatbot.markets.money import Currency
from chatbot.runtime import Runtime
from chatbot.security.keyring import MasterKeyring
from chatbot.service.errors import UserError
from chatbot.service.services import Services
from chatbot.service.views import Money, OrderCard, OrderSide, Outcome
from chatbot.sim.server import SimulatorOptions
from chatbot.storage.tables import OrderJournalRow, PendingOrderRow
from chatbot.telegram import render

ALICE, BOB = 7001, 7002


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = Settings(database=DatabaseSettings(url=f"sqlite:///{tmp_path}/s.sqlite3"),
                        simulator=SimulatorSettings(tick_interval_seconds=0))
    rt = await Runtime.start(settings, SimulatorOptions(tick_interval=0),
                             keyring=MasterKeyring(1, {1: secrets.token_bytes(32)}))
    yield rt
    await rt.aclose()


class Sending:
    """A front end's "sending…": records the cards it was shown and what the journal said then."""

    def __init__(self, runtime: Runtime, fail: bool = False) -> None:
        self.runtime = runtime
        self.fail = fail
        self.shown: list[OrderCard] = []
        self.journal_then: list[str] = []

    async def __call__(self, card: OrderCard) -> None:
        self.shown.append(card)
        async with self.runtime.db.session() as session:
            self.journal_then += [r.status for r in (await session.exec(select(OrderJournalRow))).all()]
        if self.fail:
            raise RuntimeError("the front end fell over while showing it")


async def shown(services: Services, user: int, card: OrderCard, message_id: int) -> OrderCard:
    await services.orders.attach_card(card, user, message_id)  # what a front end does once it is sent
    return card


async def test_quote_balance_and_a_market_buy_confirmed_once(runtime: Runtime) -> None:
    services = runtime.services
    quote = await services.market.quote(ALICE, "삼성전자")
    assert quote.symbol.code == "005930" and quote.quote.price > Money.krw(0)
    with pytest.raises(UserError) as ambiguous:
        await services.market.quote(ALICE, "삼성")
    assert ambiguous.value.key == "ambiguous_symbol" and ambiguous.value.params["candidates"]
    before = await services.account.balance(ALICE)
    assert before.balance.cash == Money.krw(10_000_000) and not before.balance.holdings

    card = await shown(services, ALICE, await services.orders.prepare_order(ALICE, ALICE, OrderSide.BUY,
                                                                            ["005930", "10"]), 501)
    assert (card.action, card.side, card.quantity, card.price, card.symbol.code) == ("order", OrderSide.BUY, 10,
                                                                                       None, "005930")
    stranger = Sending(runtime)
    refused = await services.orders.confirm(card.token, BOB, 501, stranger)
    assert refused.refused and refused.outcome is Outcome.NOT_OWNER and not stranger.shown
    sending = Sending(runtime)
    result = await services.orders.confirm(card.token, ALICE, 501, sending)
    assert result.outcome is Outcome.PLACED and result.order_no and not result.refused
    assert [c.token for c in sending.shown] == [card.token]
    assert sending.journal_then == ["submitting"]  # shown after the claim, before anything left
    again = Sending(runtime)
    twice = await services.orders.confirm(card.token, ALICE, 501, again)
    assert twice.outcome is Outcome.ALREADY_HANDLED and twice.refused and not again.shown
    held = (await services.account.balance(ALICE)).balance.holdings
    assert [(h.symbol, h.quantity) for h in held] == [("005930", 10)]
    assert services.operations.figures().orders_by_outcome == {"placed": 1}


async def test_a_limit_order_and_its_cancellation_through_cards(runtime: Runtime) -> None:
    services = runtime.services
    quote = (await services.market.quote(ALICE, "005930")).quote
    price = quote.price - 10 * quote.tick  # below the market: it stays open
    card = await shown(services, ALICE, await services.orders.prepare_order(
        ALICE, ALICE, OrderSide.BUY, ["삼성전자", "5", f"{price:,}"]), 601)
    assert card.price == price and card.amount == price * 5
    placed = await services.orders.confirm(card.token, ALICE, 601, Sending(runtime))
    assert placed.outcome is Outcome.PLACED and placed.order_no is not None
    (open_order,) = (await services.account.open_orders(ALICE)).orders
    assert open_order.order_no == placed.order_no and open_order.cancellable_quantity == 5

    cancel = await shown(services, ALICE, await services.orders.prepare_cancel(
        ALICE, ALICE, placed.order_no.lstrip("0")), 602)  # typed without the zeros in front
    assert (cancel.action, cancel.order_no, cancel.quantity) == ("cancel", placed.order_no, 5)
    cancelled = await services.orders.confirm(cancel.token, ALICE, 602, Sending(runtime))
    assert cancelled.outcome is Outcome.CANCELLED_ORDER
    assert not (await services.account.open_orders(ALICE)).orders


async def test_buying_power_through_the_broker_port_refuses_as_before(runtime: Runtime) -> None:
    """The pre-trade checks read the account through the broker port (issue 14); the refusal is unchanged:
    the most that can be bought and the orderable cash, as won (money, never a bare number)."""
    with pytest.raises(UserError) as err:
        await runtime.services.orders.prepare_order(ALICE, ALICE, OrderSide.BUY, ["005930", "900000"])
    assert err.value.key == "insufficient_cash"
    cash, most = err.value.params["cash"], err.value.params["max_quantity"]
    assert isinstance(cash, Money) and cash.currency is Currency.KRW and cash.amount > 0
    assert cash.amount == cash.amount.to_integral_value() and type(most) is int and 0 <= most < 900_000
    assert f"₩{cash.amount:,.0f}" in render.error(err.value, "ko")[0]


async def test_bad_input_is_refused_and_changes_nothing(runtime: Runtime) -> None:
    services = runtime.services
    cases = [
        (services.orders.prepare_order(ALICE, ALICE, OrderSide.BUY, ["005930", "1.5"]), "bad_quantity"),
        (services.orders.prepare_order(ALICE, ALICE, OrderSide.SELL, ["005930"]), "usage_sell"),
        (services.orders.prepare_order(ALICE, ALICE, OrderSide.BUY, ["a", "1", "b", "2", "3"]), "too_many_args"),
        (services.orders.prepare_order(ALICE, ALICE, OrderSide.BUY, ["005930", "1", "12,34"]), "bad_price"),
        (services.orders.prepare_order(ALICE, ALICE, OrderSide.SELL, ["005930", "100"]), "insufficient_holdings"),
        (services.orders.prepare_cancel(ALICE, ALICE, "12ab"), "bad_order_no"),
        (services.orders.prepare_cancel(ALICE, ALICE, "0000009999"), "no_such_open_order"),
        (services.market.chart(ALICE, ["005930", "x"]), "bad_chart_period"),
    ]
    for attempt, key in cases:
        with pytest.raises(UserError) as err:
            await attempt
        assert err.value.key == key
    async with runtime.db.session() as session:
        assert not (await session.exec(select(PendingOrderRow))).all()


async def test_dismissed_cards_send_nothing_and_a_failing_front_end_still_gets_its_outcome(runtime: Runtime) -> None:
    services = runtime.services
    card = await shown(services, ALICE, await services.orders.prepare_order(ALICE, ALICE, OrderSide.BUY,
                                                                            ["005930", "1"]), 701)
    dismissed = await services.orders.dismiss(card.token, ALICE, 701)
    assert dismissed.outcome is Outcome.DISMISSED and not dismissed.refused
    late = await services.orders.confirm(card.token, ALICE, 701, Sending(runtime))
    assert late.outcome is Outcome.ALREADY_HANDLED
    async with runtime.db.session() as session:
        assert not (await session.exec(select(OrderJournalRow))).all()

    card = await shown(services, ALICE, await services.orders.prepare_order(ALICE, ALICE, OrderSide.BUY,
                                                                            ["005930", "1"]), 702)
    failing = Sending(runtime, fail=True)
    result = await services.orders.confirm(card.token, ALICE, 702, failing)
    assert failing.shown and result.outcome is Outcome.PLACED  # claimed: sent and settled all the same


async def test_a_reset_card_starts_the_paper_account_over(runtime: Runtime) -> None:
    services = runtime.services
    buy = await shown(services, ALICE, await services.orders.prepare_order(ALICE, ALICE, OrderSide.BUY,
                                                                           ["005930", "3"]), 801)
    assert (await services.orders.confirm(buy.token, ALICE, 801, Sending(runtime))).outcome is Outcome.PLACED
    reset = await shown(services, ALICE, await services.account.prepare_reset(ALICE, ALICE), 802)
    assert reset.action == "reset"
    result = await services.orders.confirm(reset.token, ALICE, 802, Sending(runtime))
    assert result.outcome is Outcome.RESET_DONE
    after = (await services.account.balance(ALICE)).balance
    assert after.cash == Money.krw(10_000_000) and not after.holdings
