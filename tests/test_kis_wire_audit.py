"""What the client puts on the wire, checked against KIS's own rules (KIS_API.md, KIS_OVERSEAS.md): each test
here is a request the client used to send differently from what real KIS takes or needs."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from chatbot.kis import protocol as p
from chatbot.kis.domestic_broker import DomesticBroker
from chatbot.kis.models import OrderSide
from chatbot.kis.protocol import KST, TR
from chatbot.kis.rest import KisEndpoint, KisRestClient
from chatbot.sim.server import KisSimulator, SimulatorOptions
from tests.helpers import new_credentials

CODE = "005930"


class Recorder:
    """Every request a client sends: (path, tr_id, query, JSON body)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, str], dict[str, Any]]] = []

    def http(self, base_url: str) -> httpx.AsyncClient:
        async def on_request(request: httpx.Request) -> None:
            body = json.loads(request.content) if request.content else {}
            self.sent.append((request.url.path, request.headers.get("tr_id", ""), dict(request.url.params), body))

        return httpx.AsyncClient(base_url=base_url, event_hooks={"request": [on_request]})

    def paths(self) -> list[str]:
        return [path for path, *_ in self.sent]


@pytest.fixture
async def sim() -> AsyncIterator[KisSimulator]:
    simulator = KisSimulator(SimulatorOptions(tick_interval=0, requests_per_second={"real": 100, "virtual": 100}))
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def recorded(sim: KisSimulator) -> AsyncIterator[tuple[KisRestClient, Recorder]]:
    recorder = Recorder()
    http = recorder.http(sim.rest_url("real"))
    client = KisRestClient(KisEndpoint("real", sim.rest_url("real")), new_credentials(), requests_per_second=50,
                           http=http)
    yield client, recorder
    await client.aclose()
    await http.aclose()


async def test_a_listed_orders_cancel_goes_to_its_exchange_without_a_second_lookup(
        sim: KisSimulator, recorded: tuple[KisRestClient, Recorder]) -> None:
    """A cancel must name the order's own exchange (KIS refuses a cancel of an NXT order sent to KRX, §4.2). The
    broker has it from the listing the user picked the order from: it goes with the cancel, instead of the
    client listing the open orders again and falling back to KRX when the order is not (yet) listed there."""
    client, recorder = recorded
    await client.balance()
    state = sim.market.get(CODE)
    assert state is not None
    low = state.limits[0] + 10 * p.tick_size(state.limits[0])
    sim.exchange.place(f"{client.account.cano}-{client.account.product}", CODE, p.Side.BUY, "00", 2, low, "NXT")
    broker = DomesticBroker(client)
    (order,) = await broker.open_orders()
    assert order.exchange == "NXT"
    sent = len(recorder.sent)
    await broker.cancel(order)
    after = recorder.sent[sent:]
    assert p.PATH_PSBL_RVSECNCL not in [path for path, *_ in after]
    (cancel,) = [body for path, _, _, body in after if path == p.PATH_ORDER_RVSECNCL]
    assert (cancel["RVSE_CNCL_DVSN_CD"], cancel["EXCG_ID_DVSN_CD"]) == (p.CANCEL, "NXT")
    assert await broker.open_orders() == []


def test_the_recent_daily_ccld_tr_covers_three_calendar_months() -> None:
    assert p.daily_ccld_recent_since(dt.date(2026, 11, 30)) == dt.date(2026, 8, 30)
    assert p.daily_ccld_recent_since(dt.date(2026, 5, 31)) == dt.date(2026, 2, 28)  # clamped to February's last
    assert p.daily_ccld_recent_since(dt.date(2027, 2, 15)) == dt.date(2026, 11, 15)


async def test_executions_across_the_three_month_edge_ask_each_tr_for_its_part(
        sim: KisSimulator, recorded: tuple[KisRestClient, Recorder]) -> None:
    """TTTC0081R answers the last three months, CTSC9215R older days (§4.6): a range reaching further back than
    three months was sent whole to the old TR, which is not the one for today's orders."""
    client, recorder = recorded
    await client.balance()
    ack = await client.place_order(OrderSide.BUY, CODE, 1, None)
    today = dt.datetime.now(KST).date()
    since = p.daily_ccld_recent_since(today)
    sent = len(recorder.sent)
    rows = await client.executions(today - dt.timedelta(days=200), today)
    asked = [(tr_id, q["INQR_STRT_DT"], q["INQR_END_DT"]) for path, tr_id, q, _ in recorder.sent[sent:]
             if path == p.PATH_DAILY_CCLD]
    day = "%Y%m%d"
    assert asked == [(str(TR.DAILY_CCLD), since.strftime(day), today.strftime(day)),
                     (str(TR.DAILY_CCLD_OLD_PERIOD), (today - dt.timedelta(days=200)).strftime(day),
                      (since - dt.timedelta(days=1)).strftime(day))]
    assert ack.order_no in {r.order_no for r in rows}
    sent = len(recorder.sent)
    await client.executions(today, today)
    assert [tr_id for path, tr_id, *_ in recorder.sent[sent:] if path == p.PATH_DAILY_CCLD] == [str(TR.DAILY_CCLD)]


async def test_revoking_the_token_ends_it_at_kis_not_only_here(
        sim: KisSimulator, recorded: tuple[KisRestClient, Recorder]) -> None:
    """KIS keeps a token valid for a day (and gives the same one again within 6 h): credentials being removed
    must revoke it (/oauth2/revokeP with appkey, appsecret, token, §3.2), not only drop the cached copy."""
    client, recorder = recorded
    await client.quote(CODE)
    token = await client.tokens.current()
    assert token is not None
    assert await client.revoke_token()
    (revoke,) = [body for path, _, _, body in recorder.sent if path == p.PATH_REVOKE]
    assert revoke == {"appkey": client.credentials.app_key, "appsecret": client.credentials.app_secret,
                      "token": token}
    assert await client.tokens.current() is None
    async with httpx.AsyncClient(base_url=sim.rest_url("real")) as raw:
        old = await raw.get(p.PATH_INQUIRE_PRICE, params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": CODE},
                            headers={"authorization": f"Bearer {token}", "appkey": client.credentials.app_key,
                                     "appsecret": client.credentials.app_secret, "tr_id": str(TR.PRICE)})
    assert old.json()["msg_cd"] == p.EGW_TOKEN_INVALID
    assert (await client.quote(CODE)).price > 0  # a new token for the next call


async def test_an_etns_orders_name_it_with_its_q(sim: KisSimulator, recorded: tuple[KisRestClient, Recorder]) -> None:
    """An order's PDNO is six characters, an ETN's seven: Q + code (§4.1, "ETN의 경우 7자리"); its bare six
    characters lie in the ELWs' code space. The broker sends the Q (the directory says which codes are ETNs)
    and hands back the directory's code from KIS's listings."""
    client, recorder = recorded
    etn = "580011"
    sim.upsert_listing({"code": etn, "name": "테스트 ETN", "market": "KOSPI", "kind": "N", "base_price": 9870})
    broker = DomesticBroker(client, is_etn=lambda code: code == etn)
    await broker.balance()
    quote = await broker.quote(etn)
    low = quote.lower_limit or quote.price
    placed = await broker.place(OrderSide.BUY, etn, 2, low)
    (order_body,) = [body for path, _, _, body in recorder.sent if path == p.PATH_ORDER_CASH]
    assert order_body["PDNO"] == "Q" + etn
    (listed,) = await broker.open_orders()
    assert (listed.order_no, listed.symbol) == (placed.ack.order_no, etn)
    await broker.cancel(listed)
    snapshots = [q["PDNO"] for path, _, q, _ in recorder.sent if path == p.PATH_DAILY_CCLD and q.get("PDNO")]
    assert snapshots and set(snapshots) == {"Q" + etn}  # the order's own listing is asked under the same code
    assert await broker.open_orders() == []
    assert p.listed_code("Q" + etn) == etn and p.listed_code(CODE) == CODE

