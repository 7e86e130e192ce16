"""Every request the US client sends, pinned to KIS_OVERSEAS.md: path, TR ID on each host, every field.

The expectations below are written out from the fact sheet (section numbers in the comments), not
computed from the client's own tables, so a change to either side shows here.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

from chatbot.kis.errors import KisNotFound
from chatbot.kis.models import OrderSide
from chatbot.kis.overseas import KisOverseasClient, UsOrderNotOffered
from chatbot.kis.overseas_protocol import UsExchange, UsOrderDivision
from chatbot.kis.rest import KisEndpoint, KisRestClient
from tests.helpers import new_credentials

ACCOUNT = "12345678-01"
ACCT = {"CANO": "12345678", "ACNT_PRDT_CD": "01"}


class Recorder:
    """A transport that answers like KIS (one page, success) and keeps every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/oauth2/tokenP":
            return httpx.Response(200, json={"access_token": "token", "token_type": "Bearer", "expires_in": 86400,
                                             "access_token_token_expired": "2099-12-31 23:59:59"})
        if path == "/uapi/hashkey":
            return httpx.Response(200, json={"HASH": "0" * 64})
        body = json.loads(request.content) if request.content else None
        self.requests.append({"method": request.method, "path": path, "tr_id": request.headers.get("tr_id"),
                              "params": dict(request.url.params), "body": body,
                              "tr_cont": request.headers.get("tr_cont", "")})
        output: dict[str, Any] = {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리 되었습니다.",
                                  "ctx_area_fk200": "", "ctx_area_nk200": ""}
        if path.endswith(("/price", "/price-detail")):
            output["output"] = {"rsym": "DNASAAPL", "last": "190.2500", "base": "189.0000", "diff": "1.2500",
                                "sign": "2", "rate": "0.66", "zdiv": "4", "tvol": "10", "tamt": "1902"}
        elif path.endswith("/dailyprice"):
            output["output1"] = {"rsym": "DNASAAPL", "zdiv": "4", "nrec": "1"}
            output["output2"] = [{"xymd": "20260105", "clos": "190.0000", "open": "189.0000", "high": "191.0000",
                                  "low": "188.0000", "tvol": "100", "tamt": "19000"}]
        elif path.endswith(("/order", "/order-rvsecncl")):
            output["output"] = {"KRX_FWDG_ORD_ORGNO": "06010", "ODNO": "0030000001", "ORD_TMD": "233001"}
        elif path.endswith("/order-resv"):
            output["output"] = {"ODNO": "0030000002", "RSVN_ORD_RCIT_DT": "20260105", "OVRS_RSVN_ODNO": "0030000002"}
        elif path.endswith("/order-resv-ccnl"):
            output["output"] = {"OVRS_RSVN_ODNO": "0030000002"}
        else:
            output.update({"output": [], "output1": [], "output2": {}, "output3": {}})
        return httpx.Response(200, json=output, headers={"tr_id": request.headers.get("tr_id", ""), "tr_cont": "D"})


def make(flavour: str) -> tuple[KisOverseasClient, Recorder]:
    recorder = Recorder()
    http = httpx.AsyncClient(base_url="https://kis.example", transport=httpx.MockTransport(recorder))
    rest = KisRestClient(KisEndpoint(flavour, "https://kis.example"), new_credentials(ACCOUNT),  # type: ignore[arg-type]
                         http=http, requests_per_second=1000)
    return KisOverseasClient(rest), recorder


QUOTE = {"AUTH": "", "EXCD": "NAS", "SYMB": "AAPL"}
ORDER_BODY = {**ACCT, "OVRS_EXCG_CD": "NASD", "PDNO": "AAPL", "ORD_QTY": "3", "OVRS_ORD_UNPR": "190.50",
              "CTAC_TLNO": "", "MGCO_APTM_ODNO": "", "ORD_SVR_DVSN_CD": "0", "ORD_DVSN": "00"}


@pytest.mark.parametrize("flavour", ["real", "virtual"])
async def test_quotes_and_bars(flavour: str) -> None:
    client, rec = make(flavour)
    await client.quote("AAPL", UsExchange.NASDAQ)  # §2.1: same TR on both hosts
    await client.quote_detail("AAPL", UsExchange.NYSE)  # §2.2
    await client.bars("AAPL", UsExchange.AMEX, "W", start=dt.date(2026, 1, 1), end=dt.date(2026, 1, 9))  # §2.3
    assert rec.requests == [
        {"method": "GET", "path": "/uapi/overseas-price/v1/quotations/price", "tr_id": "HHDFS00000300",
         "params": QUOTE, "body": None, "tr_cont": ""},
        {"method": "GET", "path": "/uapi/overseas-price/v1/quotations/price-detail", "tr_id": "HHDFS76200200",
         "params": {**QUOTE, "EXCD": "NYS"}, "body": None, "tr_cont": ""},
        {"method": "GET", "path": "/uapi/overseas-price/v1/quotations/dailyprice", "tr_id": "HHDFS76240000",
         "params": {**QUOTE, "EXCD": "AMS", "GUBN": "1", "BYMD": "20260109", "MODP": "1", "KEYB": ""},
         "body": None, "tr_cont": ""},
    ]


@pytest.mark.parametrize(("flavour", "buy", "sell", "revise"), [
    ("real", "TTTT1002U", "TTTT1006U", "TTTT1004U"),
    ("virtual", "VTTT1002U", "VTTT1001U", "VTTT1004U"),  # §3: the documented paper sell TR
])
async def test_orders(flavour: str, buy: str, sell: str, revise: str) -> None:
    client, rec = make(flavour)
    await client.place(UsExchange.NASDAQ, OrderSide.BUY, "AAPL", 3, Decimal("190.5"))
    await client.place(UsExchange.NYSE, OrderSide.SELL, "BRK/B", 1, Decimal("0.5123"))
    await client.revise(UsExchange.NASDAQ, "AAPL", "0030000001", 3, Decimal(191))
    await client.cancel(UsExchange.NASDAQ, "AAPL", "0030000003")
    bodies = [(r["method"], r["path"], r["tr_id"], r["body"]) for r in rec.requests]
    rvsecncl = {**ACCT, "OVRS_EXCG_CD": "NASD", "PDNO": "AAPL", "MGCO_APTM_ODNO": "", "ORD_SVR_DVSN_CD": "0"}
    assert bodies == [
        ("POST", "/uapi/overseas-stock/v1/trading/order", buy, {**ORDER_BODY, "SLL_TYPE": ""}),
        ("POST", "/uapi/overseas-stock/v1/trading/order", sell,
         {**ORDER_BODY, "OVRS_EXCG_CD": "NYSE", "PDNO": "BRK/B", "ORD_QTY": "1", "OVRS_ORD_UNPR": "0.5123",
          "SLL_TYPE": "00"}),
        ("POST", "/uapi/overseas-stock/v1/trading/order-rvsecncl", revise,  # §4
         {**rvsecncl, "ORGN_ODNO": "0030000001", "RVSE_CNCL_DVSN_CD": "01", "ORD_QTY": "3", "OVRS_ORD_UNPR": "191.00"}),
        ("POST", "/uapi/overseas-stock/v1/trading/order-rvsecncl", revise,
         {**rvsecncl, "ORGN_ODNO": "0030000003", "RVSE_CNCL_DVSN_CD": "02", "ORD_QTY": "0", "OVRS_ORD_UNPR": "0"}),
    ]


async def test_session_order_types_on_the_real_host() -> None:
    client, rec = make("real")
    await client.place(UsExchange.NASDAQ, OrderSide.SELL, "AAPL", 2, None, UsOrderDivision.MOO)
    await client.place(UsExchange.NASDAQ, OrderSide.BUY, "AAPL", 2, Decimal(189), UsOrderDivision.LOC)
    assert [(r["body"]["ORD_DVSN"], r["body"]["OVRS_ORD_UNPR"]) for r in rec.requests] == [("31", "0"), ("34", "189.00")]


@pytest.mark.parametrize("flavour", ["real", "virtual"])
async def test_orders_kis_does_not_offer_are_not_sent(flavour: str) -> None:
    client, rec = make(flavour)
    refused = [
        (OrderSide.BUY, None, UsOrderDivision.MOO),  # MOO/MOC exist for sells only (§3)
        (OrderSide.BUY, None, UsOrderDivision.MOC),
        (OrderSide.BUY, Decimal(0), UsOrderDivision.LIMIT),  # APBK1507: under a cent
        (OrderSide.BUY, Decimal("190.255"), UsOrderDivision.LIMIT),  # off the $0.01 tick
        (OrderSide.BUY, Decimal("0.51234"), UsOrderDivision.LIMIT),  # off the $0.0001 tick
    ]
    if flavour == "virtual":  # paper: limit only
        refused += [(OrderSide.SELL, None, UsOrderDivision.MOO), (OrderSide.BUY, Decimal(190), UsOrderDivision.LOO)]
    for side, price, division in refused:
        with pytest.raises(UsOrderNotOffered):
            await client.place(UsExchange.NASDAQ, side, "AAPL", 1, price, division)
    with pytest.raises(UsOrderNotOffered):
        await client.place(UsExchange.NASDAQ, OrderSide.BUY, "AAPL", 0, Decimal(190))
    assert rec.requests == []


@pytest.mark.parametrize(("flavour", "buy", "sell", "cancel"), [
    ("real", "TTTT3014U", "TTTT3016U", "TTTT3017U"), ("virtual", "VTTT3014U", "VTTT3016U", "VTTT3017U")])
async def test_reservations(flavour: str, buy: str, sell: str, cancel: str) -> None:
    client, rec = make(flavour)
    ack = await client.reserve(UsExchange.NASDAQ, OrderSide.BUY, "TSLA", 1, Decimal(900))
    await client.reserve(UsExchange.AMEX, OrderSide.SELL, "SPY", 2, None, UsOrderDivision.MOO)
    await client.cancel_reservation(ack.received_date, ack.reservation_no)
    assert (ack.reservation_no, ack.received_date) == ("0030000002", dt.date(2026, 1, 5))
    with pytest.raises(UsOrderNotOffered):  # a reservation buy is limit only (§9)
        await client.reserve(UsExchange.NASDAQ, OrderSide.BUY, "TSLA", 1, None, UsOrderDivision.MOO)
    assert [(r["path"], r["tr_id"], r["body"]) for r in rec.requests] == [
        ("/uapi/overseas-stock/v1/trading/order-resv", buy,
         {**ACCT, "PDNO": "TSLA", "OVRS_EXCG_CD": "NASD", "FT_ORD_QTY": "1", "FT_ORD_UNPR3": "900.00", "ORD_DVSN": "00"}),
        ("/uapi/overseas-stock/v1/trading/order-resv", sell,
         {**ACCT, "PDNO": "SPY", "OVRS_EXCG_CD": "AMEX", "FT_ORD_QTY": "2", "FT_ORD_UNPR3": "0", "ORD_DVSN": "31"}),
        ("/uapi/overseas-stock/v1/trading/order-resv-ccnl", cancel,
         {**ACCT, "RSVN_ORD_RCIT_DT": "20260105", "OVRS_RSVN_ODNO": "0030000002"}),
    ]


async def test_reservation_list_on_the_real_host() -> None:
    client, rec = make("real")
    await client.reservations(dt.date(2026, 1, 1), dt.date(2026, 1, 31))
    assert rec.requests == [{
        "method": "GET", "path": "/uapi/overseas-stock/v1/trading/order-resv-list", "tr_id": "TTTT3039R",
        "params": {**ACCT, "INQR_STRT_DT": "20260101", "INQR_END_DT": "20260131", "INQR_DVSN_CD": "00",
                   "OVRS_EXCG_CD": "NASD", "PRDT_TYPE_CD": "", "CTX_AREA_FK200": "", "CTX_AREA_NK200": ""},
        "body": None, "tr_cont": ""}]


async def test_account_queries_on_the_real_host() -> None:
    client, rec = make("real")
    await client.balance()
    await client.present_balance()
    await client.buying_power(UsExchange.NYSE, "KO", Decimal("61.5"))
    await client.open_orders()
    await client.orders(dt.date(2026, 1, 2), dt.date(2026, 1, 5), symbol="AAPL", side=OrderSide.BUY, filled=True)
    ctx = {"CTX_AREA_FK200": "", "CTX_AREA_NK200": ""}
    assert [(r["path"].rsplit("/", 1)[1], r["tr_id"], r["params"]) for r in rec.requests] == [
        ("inquire-balance", "TTTS3012R", {**ACCT, "OVRS_EXCG_CD": "NASD", "TR_CRCY_CD": "USD", **ctx}),  # §5.1
        ("inquire-present-balance", "CTRP6504R", {**ACCT, "WCRC_FRCR_DVSN_CD": "02", "NATN_CD": "840",  # §5.2
                                                  "TR_MKET_CD": "00", "INQR_DVSN_CD": "00"}),
        ("inquire-psamount", "TTTS3007R", {**ACCT, "OVRS_EXCG_CD": "NYSE", "OVRS_ORD_UNPR": "61.5",  # §6.1
                                           "ITEM_CD": "KO"}),
        ("inquire-nccs", "TTTS3018R", {**ACCT, "OVRS_EXCG_CD": "NASD", "SORT_SQN": "", **ctx}),  # §6.2
        ("inquire-ccnl", "TTTS3035R", {**ACCT, "PDNO": "AAPL", "ORD_STRT_DT": "20260102", "ORD_END_DT": "20260105",
                                       "SLL_BUY_DVSN": "02", "CCLD_NCCS_DVSN": "01", "OVRS_EXCG_CD": "NASD",
                                       "SORT_SQN": "AS", "ORD_DT": "", "ORD_GNO_BRNO": "", "ODNO": "", **ctx}),
    ]


async def test_account_queries_on_the_paper_host() -> None:
    client, rec = make("virtual")
    await client.balance()
    await client.present_balance()
    await client.open_orders()
    await client.orders(dt.date(2026, 1, 2), dt.date(2026, 1, 5), symbol="AAPL", side=OrderSide.BUY, filled=True)
    ctx = {"CTX_AREA_FK200": "", "CTX_AREA_NK200": ""}
    ccnl = {**ACCT, "PDNO": "", "SLL_BUY_DVSN": "00", "CCLD_NCCS_DVSN": "00", "OVRS_EXCG_CD": "", "SORT_SQN": "AS",
            "ORD_DT": "", "ORD_GNO_BRNO": "", "ODNO": "", **ctx}
    got = [(r["path"].rsplit("/", 1)[1], r["tr_id"], r["params"]) for r in rec.requests]
    # §5.1: paper answers each exchange alone; §6.2: no inquire-nccs on paper, today's ccnl instead; §6.3: blanks.
    assert got[:4] == [
        ("inquire-balance", "VTTS3012R", {**ACCT, "OVRS_EXCG_CD": code, "TR_CRCY_CD": "USD", **ctx})
        for code in ("NASD", "NYSE", "AMEX")] + [
        ("inquire-present-balance", "VTRP6504R", {**ACCT, "WCRC_FRCR_DVSN_CD": "02", "NATN_CD": "840",
                                                  "TR_MKET_CD": "00", "INQR_DVSN_CD": "00"})]
    # §5.2: paper fills only output3 (KRW): the buyable-amount query gives the rate to read its dollars at.
    assert got[4] == ("inquire-psamount", "VTTS3007R", {**ACCT, "OVRS_EXCG_CD": "NASD", "OVRS_ORD_UNPR": "1.00",
                                                        "ITEM_CD": "AAPL"})
    (_, tr_id, params) = got[5]
    assert tr_id == "VTTS3035R" and {k: v for k, v in params.items() if k not in ("ORD_STRT_DT", "ORD_END_DT")} == {
        k: v for k, v in ccnl.items() if k not in ("ORD_STRT_DT", "ORD_END_DT")}
    assert got[6] == ("inquire-ccnl", "VTTS3035R", {**ccnl, "ORD_STRT_DT": "20260102", "ORD_END_DT": "20260105"})
    assert len(got) == 7


async def test_unknown_symbol_is_an_empty_last() -> None:
    client, rec = make("real")
    rec_call = rec.__call__

    def empty_last(request: httpx.Request) -> httpx.Response:
        response = rec_call(request)
        if request.url.path.endswith("/price"):
            return httpx.Response(200, json={"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "",
                                             "output": {"rsym": "", "last": ""}}, headers={"tr_cont": "D"})
        return response

    client.rest._http._transport = httpx.MockTransport(empty_last)  # type: ignore[attr-defined]
    with pytest.raises(KisNotFound):
        await client.quote("NOPE", UsExchange.NASDAQ)
    with pytest.raises(KisNotFound):  # NAS, NYS, AMS in turn (python-kis's probe order)
        await client.locate("NOPE")
    assert [r["params"]["EXCD"] for r in rec.requests] == ["NAS", "NAS", "NYS", "AMS"]
