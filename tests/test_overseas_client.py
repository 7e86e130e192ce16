"""The US client against the simulator over loopback: quotes, bars, orders, balances, hours, refusals."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest

from chatbot.kis.errors import KisApiError, KisNotFound, KisOrderRejected, KisOrderUncertain
from chatbot.kis.models import OrderSide
from chatbot.kis.overseas import KisOverseasClient, UsOrderNotOffered
from chatbot.kis.overseas_models import Money
from chatbot.kis.overseas_orders import UsOrderSubmitter
from chatbot.kis.overseas_protocol import UsExchange, UsOrderDivision
from chatbot.kis.rest import KisCredentials, KisEndpoint, KisRestClient
from chatbot.markets.us_hours import SEOUL, is_trading_day
from chatbot.sim.server import KisSimulator, SimulatorOptions
from chatbot.sim.store import MemoryStateStore
from tests.helpers import new_credentials

NAS = UsExchange.NASDAQ
FAST = {"real": 50, "virtual": 50}  # the simulator's rate limits, raised to keep the tests quick


class Clock:
    """The simulator's wall clock, moved by the test."""

    def __init__(self, at: dt.datetime) -> None:
        self.t = at.timestamp()

    def __call__(self) -> float:
        return self.t

    def set(self, at: dt.datetime) -> None:
        self.t = at.timestamp()


def kst(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SEOUL)


def fee(amount: Decimal) -> Decimal:
    return (amount * Decimal("0.0025")).quantize(Decimal("0.01"), ROUND_HALF_UP)


Factory = Callable[..., KisOverseasClient]


async def _factory(sim: KisSimulator) -> AsyncIterator[Factory]:
    rests: list[KisRestClient] = []

    def make(flavour: str = "real", credentials: KisCredentials | None = None) -> KisOverseasClient:
        rest = KisRestClient(KisEndpoint(flavour, sim.rest_url(flavour)), credentials or new_credentials(),  # type: ignore[arg-type]
                             requests_per_second=40)
        rests.append(rest)
        return KisOverseasClient(rest)

    yield make
    for rest in rests:
        await rest.aclose()


@pytest.fixture
async def us_sim() -> AsyncIterator[KisSimulator]:
    sim = KisSimulator(SimulatorOptions(tick_interval=0, us_always_open=True, requests_per_second=FAST))
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def us(us_sim: KisSimulator) -> AsyncIterator[Factory]:
    async for make in _factory(us_sim):
        yield make


def half(price: Decimal) -> Decimal:
    return max(Decimal("0.01"), (price / 2).quantize(Decimal("0.01")))


def dollars(sim: KisSimulator, symbol: str) -> Decimal:
    state = sim.us_market.get(symbol)
    assert state is not None
    return Decimal(state.price).scaleb(-4)


# -- quotes and bars ------------------------------------------------------------------------------------
@pytest.mark.parametrize("flavour", ["real", "virtual"])
async def test_quote_is_in_dollars_and_matches_the_simulator(us_sim: KisSimulator, us: Factory, flavour: str) -> None:
    client = us(flavour)
    us_sim.set_us_price("AAPL", dollars(us_sim, "AAPL") + Decimal("1.23"))
    quote = await client.quote("AAPL", NAS)
    state = us_sim.us_market.get("AAPL")
    assert state is not None
    assert quote.price == Money(Decimal(state.price).scaleb(-4), "USD") and quote.price.currency == "USD"
    assert quote.change.amount == Decimal("1.23") and quote.sign == "2" and quote.change_rate > 0
    assert quote.realtime_key == "DNASAAPL" and quote.decimals == 4 and quote.volume == 1
    detail = await client.quote_detail("AAPL", NAS)
    assert detail.price == quote.price and detail.tradable and detail.lot == 1
    assert detail.krw_per_usd == Decimal("1400.00")
    assert detail.price_krw == Money((quote.price.amount * 1400).quantize(Decimal(1), ROUND_HALF_UP), "KRW")
    assert detail.tick.amount == (Decimal("0.01") if quote.price.amount >= 1 else Decimal("0.0001"))
    assert detail.week52_low.amount <= detail.low.amount and detail.week52_high.amount >= detail.high.amount


async def test_a_symbol_is_quoted_only_on_its_exchange(us: Factory) -> None:
    client = us()
    with pytest.raises(KisNotFound):
        await client.quote("AAPL", UsExchange.NYSE)
    with pytest.raises(KisNotFound):
        await client.quote("NOSUCHX", NAS)
    located = await client.locate("BRK/B")
    assert located.exchange is UsExchange.NYSE and located.realtime_key == "DNYSBRK/B"


async def test_sub_dollar_prices_carry_four_decimals(us_sim: KisSimulator, us: Factory) -> None:
    price = us_sim.set_us_price("AAPL", Decimal("0.51234"))
    assert price == Decimal("0.5123")  # snapped down to the $0.0001 tick
    client = us()
    detail = await client.quote_detail("AAPL", NAS)
    assert detail.price.amount == Decimal("0.5123") and detail.tick.amount == Decimal("0.0001")
    assert str(detail.price) == "$0.5123"


async def test_bars_page_back_by_reference_date(us_sim: KisSimulator, us: Factory) -> None:
    client = us()
    await client.quote("AAPL", NAS)  # the token first: only bar calls are counted
    before = us_sim.apis["real"].requests
    start, end = dt.date(2024, 1, 1), dt.date(2026, 6, 30)
    bars = await client.bars("AAPL", NAS, "D", start=start, end=end)
    calls = us_sim.apis["real"].requests - before
    assert len(bars) > 500 and len(bars) % 100 and calls == -(-len(bars) // 100)  # 100 a call, no call wasted
    dates = [b.date for b in bars]
    assert dates == sorted(dates, reverse=True) and len(set(dates)) == len(dates)  # newest first, no overlap
    assert dates[0] <= end and dates[-1] >= start and dates[-1] - start < dt.timedelta(days=5)
    assert all(is_trading_day(d) for d in dates) and dt.date(2025, 12, 25) not in dates  # NYSE days only
    assert all(b.low.amount <= min(b.open.amount, b.close.amount) <= b.high.amount for b in bars)
    monthly = await client.bars("AAPL", NAS, "M", start=dt.date(2025, 1, 1), end=end)
    assert [b.date.month for b in monthly] == list(range(6, 0, -1)) + list(range(12, 0, -1))
    last_june = [b for b in bars if (b.date.year, b.date.month) == (2026, 6)]
    assert monthly[0].close == last_june[0].close and monthly[0].open == last_june[-1].open
    assert monthly[0].volume == sum(b.volume for b in last_june)


# -- orders and balances --------------------------------------------------------------------------------
@pytest.mark.parametrize("flavour", ["real", "virtual"])
async def test_limit_buy_fills_and_the_balance_is_in_dollars(us_sim: KisSimulator, us: Factory, flavour: str) -> None:
    client = us(flavour)
    aapl, ko = dollars(us_sim, "AAPL"), dollars(us_sim, "KO")
    ack = await client.place(NAS, OrderSide.BUY, "AAPL", 3, aapl + Decimal("0.50"))  # marketable: fills at once
    assert len(ack.order_no) == 10 and ack.accepted_at.tzinfo is not None and ack.exchange is NAS
    await client.place(UsExchange.NYSE, OrderSide.BUY, "KO", 2, ko)
    before = us_sim.apis[flavour].requests  # type: ignore[index]
    balance = await client.balance()
    assert us_sim.apis[flavour].requests - before == (3 if flavour == "virtual" else 1)  # type: ignore[index]
    held = {h.symbol: h for h in balance.holdings}
    assert set(held) == {"AAPL", "KO"} and held["KO"].exchange is UsExchange.NYSE
    a = held["AAPL"]
    assert (a.quantity, a.orderable_quantity, a.average_cost, a.cost) == (3, 3, Money(aapl, "USD"), Money(3 * aapl, "USD"))
    assert balance.cost_total == Money(3 * aapl + 2 * ko, "USD")
    spent = 3 * aapl + fee(3 * aapl) + 2 * ko + fee(2 * ko)
    present = await client.present_balance()
    cash = present.cash_in("USD")
    assert cash is not None and cash.cash == Money(Decimal(10000) - spent, "USD")
    assert present.krw_per_usd == Decimal("1400.00") and present.totals.purchase.currency == "KRW"
    assert present.totals.purchase.amount == ((3 * aapl + 2 * ko) * 1400).quantize(Decimal(1), ROUND_HALF_UP)
    assert len(present.holdings) == (0 if flavour == "virtual" else 2)  # paper: positions come from inquire-balance
    power = await client.buying_power(NAS, "AAPL", aapl)
    assert power.orderable_cash == cash.cash and power.max_quantity == int(cash.cash.amount // (aapl * Decimal("1.0025")))
    sold = await client.place(NAS, OrderSide.SELL, "AAPL", 1, aapl - Decimal("0.50"))
    assert sold.order_no != ack.order_no
    after = {h.symbol: h.quantity for h in (await client.balance()).holdings}
    assert after == {"AAPL": 2, "KO": 2}


@pytest.mark.parametrize("flavour", ["real", "virtual"])
async def test_resting_limit_is_revised_then_cancelled(us_sim: KisSimulator, us: Factory, flavour: str) -> None:
    client = us(flavour)
    price = dollars(us_sim, "TSLA")
    low = (price * Decimal("0.8")).quantize(Decimal("0.01"))
    ack = await client.place(NAS, OrderSide.BUY, "TSLA", 2, low)
    (resting,) = await client.open_orders()
    assert (resting.order_no, resting.unfilled_quantity, resting.price.amount) == (ack.order_no, 2, low)
    revised = await client.revise(NAS, "TSLA", ack.order_no, 2, low + Decimal("1.00"))
    (still,) = await client.open_orders()
    assert still.order_no == revised.order_no and still.original_order_no == ack.order_no and still.is_revision
    assert still.price.amount == low + 1
    await client.cancel(NAS, "TSLA", revised.order_no)
    assert await client.open_orders() == []
    history = await client.orders(*_today(us_sim))
    assert [o.revise_cancel for o in history] == ["02", "01", "00"]  # newest first
    assert [o.order_no for o in history] == sorted((o.order_no for o in history), reverse=True)
    with pytest.raises(KisOrderRejected):  # nothing left to cancel
        await client.cancel(NAS, "TSLA", revised.order_no)


async def test_a_resting_limit_fills_at_its_price_when_the_market_reaches_it(us_sim: KisSimulator, us: Factory) -> None:
    client = us()
    price = dollars(us_sim, "NVDA")
    limit = (price * Decimal("0.9")).quantize(Decimal("0.01"))
    await client.place(NAS, OrderSide.BUY, "NVDA", 4, limit)
    us_sim.set_us_price("NVDA", limit - Decimal("0.30"))
    assert await client.open_orders() == []
    (holding,) = (await client.balance()).holdings
    assert (holding.symbol, holding.quantity, holding.average_cost.amount) == ("NVDA", 4, limit)


def _today(sim: KisSimulator) -> tuple[dt.date, dt.date]:
    from chatbot.markets.us_hours import NEW_YORK

    day = sim.now().astimezone(NEW_YORK).date()
    return day, day


# -- refusals ---------------------------------------------------------------------------------------------
class Wire:
    def __init__(self, sim: KisSimulator, flavour: str) -> None:
        self.http = httpx.AsyncClient(base_url=sim.rest_url(flavour))  # type: ignore[arg-type]
        self.creds = new_credentials()
        self.token = ""

    async def login(self) -> None:
        r = await self.http.post("/oauth2/tokenP", json={"grant_type": "client_credentials",
                                                        "appkey": self.creds.app_key, "appsecret": self.creds.app_secret})
        self.token = r.json()["access_token"]

    def headers(self, tr_id: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}", "appkey": self.creds.app_key,
                "appsecret": self.creds.app_secret, "tr_id": tr_id}

    def account(self) -> dict[str, str]:
        return {"CANO": self.creds.account.cano, "ACNT_PRDT_CD": self.creds.account.product}

    async def order(self, tr_id: str, **fields: str) -> httpx.Response:
        body = {**self.account(), "OVRS_EXCG_CD": "NASD", "PDNO": "AAPL", "ORD_QTY": "1", "OVRS_ORD_UNPR": "1.00",
                "ORD_SVR_DVSN_CD": "0", "ORD_DVSN": "00", **fields}
        return await self.http.post("/uapi/overseas-stock/v1/trading/order", json=body, headers=self.headers(tr_id))

    async def get(self, path: str, tr_id: str, **params: str) -> httpx.Response:
        return await self.http.get(path, params={**self.account(), **params}, headers=self.headers(tr_id))


@pytest.fixture
async def wires(us_sim: KisSimulator) -> AsyncIterator[Callable[[str], Any]]:
    made: list[Wire] = []

    async def make(flavour: str) -> Wire:
        wire = Wire(us_sim, flavour)
        await wire.login()
        made.append(wire)
        return wire

    yield make
    for wire in made:
        await wire.http.aclose()


async def test_what_the_paper_server_refuses(us_sim: KisSimulator, wires: Any) -> None:
    paper = await wires("virtual")
    for division in ("31", "32", "33", "34", "01"):  # paper takes limit orders only (§3)
        r = await paper.order("VTTT1006U", ORD_DVSN=division, OVRS_ORD_UNPR="0" if division in ("31", "33") else "1.00")
        assert (r.status_code, r.json()["rt_cd"], r.json()["msg1"]) == (200, "1", "주문구분 입력오류입니다.")
    r = await paper.order("TTTT1002U")  # a real TR on the paper host
    assert r.status_code == 500 and r.json()["msg1"] == "모의투자 TR 이 아닙니다."
    r = await paper.get("/uapi/overseas-stock/v1/trading/inquire-nccs", "VTTS3018R", OVRS_EXCG_CD="NASD",
                        SORT_SQN="DS", CTX_AREA_FK200="", CTX_AREA_NK200="")
    assert r.json()["rt_cd"] == "1" and "모의투자" in r.json()["msg1"]
    r = await paper.get("/uapi/overseas-stock/v1/trading/order-resv-list", "TTTT3039R", INQR_STRT_DT="20260101",
                        INQR_END_DT="20261231", INQR_DVSN_CD="00", OVRS_EXCG_CD="NASD")
    assert r.json()["rt_cd"] == "1" and "모의투자" in r.json()["msg1"]
    for name, value in (("PDNO", "AAPL"), ("SLL_BUY_DVSN", "02"), ("CCLD_NCCS_DVSN", "01"), ("OVRS_EXCG_CD", "NASD")):
        ccnl = {"PDNO": "", "ORD_STRT_DT": "20260101", "ORD_END_DT": "20261231", "SLL_BUY_DVSN": "00",
                "CCLD_NCCS_DVSN": "00", "OVRS_EXCG_CD": "", "SORT_SQN": "DS", name: value}
        r = await paper.get("/uapi/overseas-stock/v1/trading/inquire-ccnl", "VTTS3035R", **ccnl)
        assert r.json()["rt_cd"] == "2" and name in r.json()["msg1"]
    us_sim.options.us_paper_nccs = True  # Postman/legacy/python-kis behaviour, on request
    r = await paper.get("/uapi/overseas-stock/v1/trading/inquire-nccs", "VTTS3018R", OVRS_EXCG_CD="NASD", SORT_SQN="DS")
    assert r.json()["rt_cd"] == "0" and r.json()["output"] == []


async def test_paper_sells_under_either_tr_id(us_sim: KisSimulator, wires: Any) -> None:
    paper = await wires("virtual")
    price = dollars(us_sim, "AAPL")
    r = await paper.order("VTTT1002U", ORD_QTY="2", OVRS_ORD_UNPR=f"{price + 1:.2f}")
    assert r.json()["rt_cd"] == "0" and r.json()["msg_cd"] == "40600000"
    for tr_id in ("VTTT1001U", "VTTT1006U"):  # documented / as KIS's own code sends it (§3)
        r = await paper.order(tr_id, SLL_TYPE="00", OVRS_ORD_UNPR=f"{max(price - 1, Decimal('0.01')):.2f}")
        assert r.json()["rt_cd"] == "0" and r.json()["msg_cd"] == "40610000"
        assert set(r.json()["output"]) == {"KRX_FWDG_ORD_ORGNO", "ODNO", "ORD_TMD"}


async def test_what_the_real_server_refuses(us_sim: KisSimulator, wires: Any) -> None:
    real = await wires("real")
    refusals = [
        ({"ORD_DVSN": "01"}, "주문구분 입력오류입니다."),  # no plain market order (§3)
        ({"ORD_DVSN": "31", "OVRS_ORD_UNPR": "0"}, "주문구분 입력오류입니다."),  # MOO is a sell
        ({"OVRS_ORD_UNPR": "0"}, "가격 $0.01 미만시 온라인 주문불가"),  # APBK1507 (§10)
        ({"OVRS_ORD_UNPR": "0.009"}, "가격 $0.01 미만시 온라인 주문불가"),
        ({"OVRS_ORD_UNPR": "190.255"}, "주식주문호가단위 오류입니다."),
        ({"ORD_QTY": "100000", "OVRS_ORD_UNPR": "500.00"}, "주문가능금액을 초과 했습니다"),
        ({"PDNO": "NOSUCHX"}, "해당종목정보가 없습니다."),
        ({"OVRS_EXCG_CD": "NAS"}, "해외거래소코드를 확인하여 주십시오."),  # a quote code is not an order code
    ]
    for fields, msg1 in refusals:
        body = (await real.order("TTTT1002U", **fields)).json()
        assert (body["rt_cd"], body["msg1"]) == ("7", msg1), fields
    body = (await real.order("TTTT1006U", SLL_TYPE="00")).json()  # nothing to sell
    assert body["msg_cd"] == "APBK0986"
    r = await real.get("/uapi/overseas-price/v1/quotations/price", "HHDFS00000300", AUTH="", EXCD="NYS", SYMB="AAPL")
    assert r.json()["rt_cd"] == "0" and r.json()["output"]["last"] == ""  # what python-kis probes for


# -- hours, reservations and session orders (the simulator's clock moved by the test) --------------------
@pytest.fixture
async def clocked() -> AsyncIterator[tuple[KisSimulator, Clock]]:
    clock = Clock(kst("2026-12-07 12:00"))  # a Monday in US winter time
    sim = KisSimulator(SimulatorOptions(tick_interval=0, requests_per_second=FAST), wall=clock)
    await sim.start()
    yield sim, clock
    await sim.stop()


@pytest.fixture
async def cus(clocked: tuple[KisSimulator, Clock]) -> AsyncIterator[Factory]:
    async for make in _factory(clocked[0]):
        yield make


async def test_orders_outside_us_hours_are_refused(clocked: tuple[KisSimulator, Clock], cus: Factory) -> None:
    sim, clock = clocked
    client = cus()
    price = dollars(sim, "AAPL")
    refused = []
    for moment, accepted in (("2026-12-07 12:00", False),  # KIS's daytime session: not through this TR
                             ("2026-12-07 19:00", True),  # pre-market (05:00 ET)
                             ("2026-12-08 00:30", True),  # regular (10:30 ET)
                             ("2026-12-08 06:30", True),  # after-market
                             ("2026-12-08 07:30", False),  # after-market over
                             ("2026-12-12 12:00", False),  # Saturday
                             ("2026-12-26 01:00", False)):  # Christmas Day in New York
        clock.set(kst(moment))
        try:
            await client.place(NAS, OrderSide.BUY, "AAPL", 1, price)
        except KisOrderRejected as exc:
            refused.append((moment, exc.msg_cd))
        else:
            assert accepted, moment
    assert refused == [(m, "APBK1664") for m in ("2026-12-07 12:00", "2026-12-08 07:30", "2026-12-12 12:00",
                                                 "2026-12-26 01:00")]
    await sim.control("us-hours", {"always_open": True})
    assert (await client.place(NAS, OrderSide.BUY, "AAPL", 1, price)).order_no


async def test_a_reservation_outside_hours_is_sent_at_the_open(clocked: tuple[KisSimulator, Clock],
                                                               cus: Factory) -> None:
    sim, clock = clocked
    client = cus()
    price = dollars(sim, "AAPL")
    with pytest.raises(KisOrderRejected):
        await client.place(NAS, OrderSide.BUY, "AAPL", 2, price + 1)  # 12:00 KST: no regular order
    ack = await client.reserve(NAS, OrderSide.BUY, "AAPL", 2, price + 1)
    broke = await client.reserve(NAS, OrderSide.BUY, "AAPL", 10_000, price + 1)  # not checked until the open
    (first, second) = sorted(await client.reservations(dt.date(2026, 12, 7), dt.date(2026, 12, 7)),
                             key=lambda r: r.reservation_no)
    assert (first.reservation_no, first.status, first.order_no) == (ack.reservation_no, "접수", "")
    for moment in ("2026-12-07 16:35", "2026-12-07 23:25"):  # KIS's settlement pause; ten minutes before the open
        clock.set(kst(moment))
        with pytest.raises(KisOrderRejected):
            await client.reserve(NAS, OrderSide.BUY, "AAPL", 1, price)
    clock.set(kst("2026-12-07 23:31"))  # the regular session opened at 23:30 KST
    assert await client.open_orders() == []  # sent at the open and filled (its limit was above the market)
    (holding,) = (await client.balance()).holdings
    assert (holding.symbol, holding.quantity) == ("AAPL", 2)
    rows = {r.reservation_no: r for r in await client.reservations(dt.date(2026, 12, 7), dt.date(2026, 12, 7))}
    assert rows[ack.reservation_no].status == "전송" and rows[ack.reservation_no].order_no
    assert rows[broke.reservation_no].status == "미처리" and rows[broke.reservation_no].reason == "매수증거금 부족"
    assert second.reservation_no == broke.reservation_no


async def test_a_cancelled_reservation_is_never_sent(clocked: tuple[KisSimulator, Clock], cus: Factory) -> None:
    sim, clock = clocked
    client = cus("virtual")
    ack = await client.reserve(NAS, OrderSide.BUY, "AAPL", 1, dollars(sim, "AAPL") + 1)
    await client.cancel_reservation(ack.received_date, ack.reservation_no)
    with pytest.raises(KisOrderRejected):
        await client.cancel_reservation(ack.received_date, ack.reservation_no)
    with pytest.raises(KisApiError):  # the paper server has no reservation list
        await client.reservations(dt.date(2026, 12, 7), dt.date(2026, 12, 7))
    clock.set(kst("2026-12-07 23:31"))
    assert (await client.balance()).holdings == ()


async def test_session_orders_meet_the_open_and_the_close(clocked: tuple[KisSimulator, Clock], cus: Factory) -> None:
    sim, clock = clocked
    client = cus()
    clock.set(kst("2026-12-08 19:00"))  # Tuesday pre-market
    price = dollars(sim, "MSFT")
    await client.place(NAS, OrderSide.BUY, "MSFT", 5, price + 1)
    moo = await client.place(NAS, OrderSide.SELL, "MSFT", 2, None, UsOrderDivision.MOO)
    loo = await client.place(NAS, OrderSide.BUY, "MSFT", 3, price + 1, UsOrderDivision.LOO)
    loo_low = await client.place(NAS, OrderSide.BUY, "MSFT", 1, max(price - 1, Decimal("0.01")), UsOrderDivision.LOO)
    loc = await client.place(NAS, OrderSide.BUY, "MSFT", 2, price + 1, UsOrderDivision.LOC)
    assert {o.order_no for o in await client.open_orders()} == {moo.order_no, loo.order_no, loo_low.order_no,
                                                               loc.order_no}
    clock.set(kst("2026-12-08 23:31"))
    rows = {o.order_no: o for o in await client.orders(dt.date(2026, 12, 8), dt.date(2026, 12, 8))}
    assert (rows[moo.order_no].filled_quantity, rows[moo.order_no].fill_price.amount) == (2, price)
    assert (rows[loo.order_no].filled_quantity, rows[loo.order_no].fill_price.amount) == (3, price)
    assert (rows[loo_low.order_no].filled_quantity, rows[loo_low.order_no].unfilled_quantity) == (0, 0)  # ended
    assert rows[loc.order_no].unfilled_quantity == 2  # waits for the close
    with pytest.raises(KisOrderRejected) as info:  # the opening auction is over
        await client.place(NAS, OrderSide.BUY, "MSFT", 1, price + 1, UsOrderDivision.LOO)
    assert info.value.msg_cd == "APBK1664"
    sim.set_us_price("MSFT", price + Decimal("0.40"))
    clock.set(kst("2026-12-09 06:01"))  # 16:01 ET: after-market, the close is behind
    rows = {o.order_no: o for o in await client.orders(dt.date(2026, 12, 8), dt.date(2026, 12, 8))}
    assert (rows[loc.order_no].filled_quantity, rows[loc.order_no].fill_price.amount) == (2, price + Decimal("0.40"))
    (holding,) = (await client.balance()).holdings
    assert holding.quantity == 5 - 2 + 3 + 2


async def test_day_orders_end_with_the_after_market(clocked: tuple[KisSimulator, Clock], cus: Factory) -> None:
    sim, clock = clocked
    client = cus()
    clock.set(kst("2026-12-08 23:40"))
    price = dollars(sim, "AAPL")
    await client.place(NAS, OrderSide.BUY, "AAPL", 1, (price / 2).quantize(Decimal("0.01")))
    assert len(await client.open_orders()) == 1
    clock.set(kst("2026-12-09 06:59"))
    assert len(await client.open_orders()) == 1  # after-market still on
    clock.set(kst("2026-12-09 07:01"))
    assert await client.open_orders() == []


# -- once-only orders --------------------------------------------------------------------------------------
async def test_a_lost_reply_is_reconciled_not_resent(us_sim: KisSimulator, us: Factory) -> None:
    client = us()
    submitter = UsOrderSubmitter(client, lookups=3, lookup_interval=0.05)
    await us_sim.control("faults", {"error_5xx_after_next": 1, "paths": ["/uapi/overseas-stock/v1/trading/order"]})
    placed = await submitter.place(NAS, OrderSide.BUY, "AAPL", 2, half(dollars(us_sim, "AAPL")))
    assert placed.reconciled and placed.attempts == 1 and placed.ack.exchange is NAS
    (order,) = await client.open_orders()
    assert order.order_no == placed.ack.order_no and len(await client.orders(*_today(us_sim))) == 1


async def test_a_gateway_refusal_is_sent_again(us_sim: KisSimulator, us: Factory) -> None:
    client = us()
    submitter = UsOrderSubmitter(client)
    await us_sim.control("faults", {"rate_limit_next": 1, "paths": ["/uapi/overseas-stock/v1/trading/order"]})
    placed = await submitter.place(NAS, OrderSide.BUY, "AAPL", 1, half(dollars(us_sim, "AAPL")))
    assert not placed.reconciled and placed.attempts == 2
    assert len(await client.orders(*_today(us_sim))) == 1


async def test_an_order_that_never_arrived_is_not_sent_twice(us_sim: KisSimulator, us: Factory) -> None:
    client = us()
    submitter = UsOrderSubmitter(client, lookups=2, lookup_interval=0.05)
    await us_sim.control("faults", {"error_5xx_next": 1, "paths": ["/uapi/overseas-stock/v1/trading/order"]})
    with pytest.raises(KisOrderUncertain):
        await submitter.place(NAS, OrderSide.BUY, "AAPL", 1, half(dollars(us_sim, "AAPL")))
    assert await client.orders(*_today(us_sim)) == []
    with pytest.raises(UsOrderNotOffered):  # refused before anything is sent
        await submitter.place(NAS, OrderSide.BUY, "AAPL", 1, None, UsOrderDivision.MOC)


async def test_us_accounts_survive_a_restart() -> None:
    store = MemoryStateStore()
    creds = new_credentials()
    options = SimulatorOptions(tick_interval=0, us_always_open=True, requests_per_second=FAST)
    sim = KisSimulator(options, store=store)
    await sim.start()
    async for make in _factory(sim):
        client = make(credentials=creds)
        price = dollars(sim, "AAPL")
        await client.place(NAS, OrderSide.BUY, "AAPL", 2, price + 1)
        resting = await client.place(NAS, OrderSide.BUY, "AAPL", 1, (price / 2).quantize(Decimal("0.01")))
    await sim.stop()
    again = KisSimulator(options, store=store)
    await again.start()
    try:
        async for make in _factory(again):
            client = make(credentials=creds)
            assert [o.order_no for o in await client.open_orders()] == [resting.order_no]
            assert [(h.symbol, h.quantity) for h in (await client.balance()).holdings] == [("AAPL", 2)]
            again.set_us_price("AAPL", price / 4)
            assert await client.open_orders() == []
            assert (await client.balance()).holdings[0].quantity == 3
    finally:
        await again.stop()


async def test_history_and_holdings_come_in_pages(us_sim: KisSimulator, us: Factory, wires: Any) -> None:
    us_sim.options.us_balance_page_size = 4
    for flavour, page in (("real", 20), ("virtual", 15)):
        client = us(flavour)
        symbols = [s.code for s in us_sim.us_market.directory.symbols("US")
                   if s.market == "NASDAQ" and s.kind.value == "S"][:6]
        for symbol in symbols:  # six holdings: two pages of four
            await client.place(NAS, OrderSide.BUY, symbol, 1, dollars(us_sim, symbol) + 1)
        for _ in range(page + 3):  # more orders than a page of inquire-ccnl
            await client.place(NAS, OrderSide.BUY, "AAPL", 1, half(dollars(us_sim, "AAPL")))
        before = us_sim.apis[flavour].requests  # type: ignore[index]
        history = await client.orders(*_today(us_sim))
        assert len(history) == 6 + page + 3 and us_sim.apis[flavour].requests - before == 2  # type: ignore[index]
        assert len({o.order_no for o in history}) == len(history)
        holdings = (await client.balance()).holdings
        assert sorted(h.symbol for h in holdings) == sorted(symbols)
        assert len(await client.open_orders()) == page + 3


async def test_us_replies_carry_kis_headers_and_paper_has_no_daytime_orders(wires: Any) -> None:
    real, paper = await wires("real"), await wires("virtual")
    r = await real.get("/uapi/overseas-stock/v1/trading/inquire-ccnl", "TTTS3035R", PDNO="%", ORD_STRT_DT="20260101",
                       ORD_END_DT="20261231", SLL_BUY_DVSN="00", CCLD_NCCS_DVSN="00", OVRS_EXCG_CD="NASD")
    names = [k.decode() for k, _ in r.headers.raw]
    assert {"Content-Type", "tr_id", "tr_cont", "gt_uid"} <= set(names) and r.headers["tr_cont"] == "D"
    body = r.json()
    assert body["output"] == [] and body["ctx_area_fk200"] == "" and body["ctx_area_nk200"] == ""
    r = await paper.http.post("/uapi/overseas-stock/v1/trading/daytime-order", json=paper.account(),
                              headers=paper.headers("VTTS6036U"))
    assert r.json()["rt_cd"] == "1" and "모의투자" in r.json()["msg1"]
    r = await real.get("/uapi/overseas-price/v1/quotations/price", "VHDFS00000300", EXCD="NAS", SYMB="AAPL")
    assert r.status_code == 500 and r.json()["msg_cd"] == "OPSQ0002"  # quote TRs have no V twin (§2)
