"""US cash on KIS's paper server: the present balance fills only output3 there, KRW totals (KIS_OVERSEAS.md
§5.2; KIS's sample: "모의계좌의 경우 output3(외화평가총액 등 확인 가능)만 정상 출력됩니다"). The dollar
cash a paper user sees comes from output3 at KIS's rate, not from an output2 row the paper server leaves empty."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import ROUND_HALF_UP, Decimal

import httpx
import pytest

from chatbot.kis import overseas_protocol as o
from chatbot.kis.models import OrderSide
from chatbot.kis.overseas import KisOverseasClient
from chatbot.kis.overseas_models import Money
from chatbot.kis.overseas_protocol import UsExchange
from chatbot.kis.rest import KisEndpoint, KisRestClient
from chatbot.kis.us_broker import UsBroker
from chatbot.sim.server import KisSimulator, SimulatorOptions
from tests.helpers import new_credentials

NAS = UsExchange.NASDAQ
FAST = {"real": 50, "virtual": 50}


@pytest.fixture(params=[Decimal("1400.00"), Decimal("1387.35")], ids=["round-rate", "odd-rate"])
async def us_sim(request: pytest.FixtureRequest) -> AsyncIterator[KisSimulator]:
    sim = KisSimulator(SimulatorOptions(tick_interval=0, us_always_open=True, requests_per_second=FAST,
                                        krw_per_usd=request.param))
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def rest(us_sim: KisSimulator) -> AsyncIterator[KisRestClient]:
    client = KisRestClient(KisEndpoint("virtual", us_sim.rest_url("virtual")), new_credentials(),
                           requests_per_second=40)
    yield client
    await client.aclose()


def fee(amount: Decimal) -> Decimal:
    return (amount * Decimal("0.0025")).quantize(Decimal("0.01"), ROUND_HALF_UP)


def dollars(sim: KisSimulator, symbol: str) -> Decimal:
    state = sim.us_market.get(symbol)
    assert state is not None
    return Decimal(state.price).scaleb(-4)


async def test_the_paper_server_fills_only_output3(us_sim: KisSimulator, rest: KisRestClient) -> None:
    """What the simulator serves on paper, as KIS does: output1 and output2 empty, output3's KRW totals."""
    async with httpx.AsyncClient(base_url=us_sim.rest_url("virtual")) as http:
        token = await rest.tokens.get()
        reply = await http.get(o.PATH_PRESENT_BALANCE, params={
            "CANO": rest.account.cano, "ACNT_PRDT_CD": rest.account.product, "WCRC_FRCR_DVSN_CD": "02",
            "NATN_CD": "840", "TR_MKET_CD": "00", "INQR_DVSN_CD": "00"}, headers={
            "authorization": f"Bearer {token}", "appkey": rest.credentials.app_key,
            "appsecret": rest.credentials.app_secret, "tr_id": "VTRP6504R", "custtype": "P"})
    body = reply.json()
    assert body["rt_cd"] == "0" and body["output1"] == [] and body["output2"] == []
    assert body["output3"]["frcr_evlu_tota"] not in ("", "0")


async def test_paper_balance_shows_the_dollar_cash_of_output3(us_sim: KisSimulator, rest: KisRestClient) -> None:
    client = KisOverseasClient(rest)
    aapl = dollars(us_sim, "AAPL")
    await client.place(NAS, OrderSide.BUY, "AAPL", 3, aapl + Decimal("0.50"))  # marketable: fills at once
    spent = 3 * aapl + fee(3 * aapl)
    balance = await UsBroker(client).balance()
    assert balance.cash == Money(Decimal(10000) - spent, "USD")
    assert balance.cash_settled == Money(Decimal(10000) - spent, "USD")  # nothing reserved by an open order
    assert balance.total_value == balance.cash + balance.holdings_value
    present = await client.present_balance()
    assert present.krw_per_usd == us_sim.options.krw_per_usd and present.holdings == ()
    cash = present.cash_in("USD")
    assert cash is not None and cash.cash == balance.cash and cash.krw_rate == us_sim.options.krw_per_usd


async def test_paper_cash_set_aside_for_an_open_order_is_not_usable(us_sim: KisSimulator, rest: KisRestClient) -> None:
    client = KisOverseasClient(rest)
    low = (dollars(us_sim, "AAPL") * Decimal("0.8")).quantize(Decimal("0.01"))
    await client.place(NAS, OrderSide.BUY, "AAPL", 2, low)  # rests: its cost and fee are set aside
    cash = (await client.present_balance()).cash_in("USD")
    assert cash is not None and cash.cash == Money(Decimal(10000), "USD")
    power = await client.buying_power(NAS, "AAPL", low)
    assert cash.withdrawable == power.orderable_cash < cash.cash
