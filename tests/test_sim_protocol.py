"""The simulator on the wire, as KIS's own sample code and python-kis see it (KIS_API.md §2, §9, §10)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest

from chatbot.kis import protocol as p
from chatbot.sim.server import KisSimulator
from tests.helpers import new_credentials

CODE = "005930"


class Wire:
    """A bare HTTP peer that sends what the official client or python-kis sends."""

    def __init__(self, sim: KisSimulator, flavour: str = "real") -> None:
        self.http = httpx.AsyncClient(base_url=sim.rest_url(flavour))  # type: ignore[arg-type]
        self.creds = new_credentials()
        self.token = ""

    async def login(self) -> str:
        r = await self.http.post(p.PATH_TOKEN, json={"grant_type": "client_credentials",
                                                     "appkey": self.creds.app_key, "appsecret": self.creds.app_secret})
        assert r.status_code == 200
        self.token = r.json()["access_token"]
        return self.token

    def headers(self, tr_id: str, **extra: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}", "appkey": self.creds.app_key,
                "appsecret": self.creds.app_secret, "tr_id": tr_id, **extra}

    def account(self) -> dict[str, str]:
        return {"CANO": self.creds.account.cano, "ACNT_PRDT_CD": self.creds.account.product}

    async def get(self, path: str, tr_id: str, params: dict[str, str], **extra: str) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.headers(tr_id, **extra))

    async def post(self, path: str, tr_id: str, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self.headers(tr_id))


@pytest.fixture
async def wire(sim: KisSimulator):
    w = Wire(sim)
    await w.login()
    yield w
    await w.http.aclose()


async def test_headers_are_cased_as_kis_clients_need(wire: Wire) -> None:
    r = await wire.get(p.PATH_INQUIRE_PRICE, "FHKST01010100", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": CODE})
    names = [k.decode() for k, _ in r.headers.raw]
    assert "Content-Type" in names and "Content-Length" in names
    assert {"tr_id", "tr_cont", "gt_uid"} <= set(names)
    # the official client turns all-lower-case names into namedtuple fields: they must be identifiers
    assert all(n.isidentifier() for n in names if n == n.lower())
    assert r.headers["tr_cont"] in p.TR_CONT_LAST
    body = r.json()
    assert body["rt_cd"] == "0" and isinstance(body["rt_cd"], str) and body["msg_cd"] and body["msg1"]
    assert all(k.isidentifier() for k in body)


async def test_token_reply_fields(sim: KisSimulator) -> None:
    w = Wire(sim)
    r = await w.http.post(p.PATH_TOKEN, json={"grant_type": "client_credentials", "appkey": w.creds.app_key,
                                              "appsecret": w.creds.app_secret})
    body = r.json()
    assert body["token_type"] == "Bearer" and int(body["expires_in"]) > 86_000
    expiry = dt.datetime.strptime(body["access_token_token_expired"], p.TOKEN_TIME_FORMAT)
    kst_now = dt.datetime.now(dt.timezone(dt.timedelta(hours=9))).replace(tzinfo=None)
    assert dt.timedelta(hours=23) < expiry - kst_now <= dt.timedelta(hours=24)
    again = await w.http.post(p.PATH_TOKEN, json={"grant_type": "client_credentials", "appkey": w.creds.app_key,
                                                  "appsecret": w.creds.app_secret})
    assert again.json()["access_token"] == body["access_token"]  # same token within 6 hours
    await w.http.aclose()


async def test_second_issuance_within_a_minute_is_refused_when_strict(sim: KisSimulator) -> None:
    sim.auth.enforce_issue_interval = True
    w = Wire(sim)
    await w.login()
    r = await w.http.post(p.PATH_TOKEN, json={"grant_type": "client_credentials", "appkey": w.creds.app_key,
                                              "appsecret": w.creds.app_secret})
    assert r.status_code == 403
    assert r.json() == {"error_code": "EGW00133", "error_description": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)"}
    await w.http.aclose()


@pytest.mark.parametrize(("mutate", "status", "msg_cd"), [
    (lambda h: h.pop("appkey"), 500, p.EGW_APPKEY_INVALID),
    (lambda h: h.update(appkey="short"), 500, p.EGW_APPKEY_INVALID),
    (lambda h: h.update(appsecret="x" * 180), 500, p.EGW_APPSECRET_INVALID),
    (lambda h: h.update(authorization="Bearer nope"), 500, p.EGW_TOKEN_INVALID),
    (lambda h: h.pop("authorization"), 500, p.EGW_TOKEN_INVALID),
    (lambda h: h.update(tr_id="TTTC0012U"), 500, p.OPSQ_UNKNOWN_SERVICE),
])
async def test_gateway_refusals(wire: Wire, mutate, status: int, msg_cd: str) -> None:
    headers = wire.headers("FHKST01010100")
    mutate(headers)
    r = await wire.http.get(p.PATH_INQUIRE_PRICE, params={"FID_INPUT_ISCD": CODE}, headers=headers)
    assert r.status_code == status
    body = r.json()
    assert (body["rt_cd"], body["msg_cd"]) == ("1", msg_cd) and body["msg1"]
    assert r.headers["tr_cont"]


async def test_expired_token(sim: KisSimulator, wire: Wire) -> None:
    sim.auth.expire_all()
    r = await wire.get(p.PATH_INQUIRE_PRICE, "FHKST01010100", {"FID_INPUT_ISCD": CODE})
    assert r.status_code == 500 and r.json()["msg_cd"] == p.EGW_TOKEN_EXPIRED


async def test_header_names_are_case_insensitive_and_custtype_optional(wire: Wire) -> None:
    headers = {"Authorization": f"Bearer {wire.token}", "AppKey": wire.creds.app_key,
               "AppSecret": wire.creds.app_secret, "TR_ID": "FHKST01010100"}
    r = await wire.http.get(p.PATH_INQUIRE_PRICE, params={"fid_input_iscd": CODE}, headers=headers)
    assert r.status_code == 200 and r.json()["output"]["stck_shrn_iscd"] == CODE


@pytest.mark.parametrize("tr_id", ["TTTC0012U", "TTTC0802U"])
async def test_old_and_new_order_trs(wire: Wire, tr_id: str) -> None:
    body = {**wire.account(), "PDNO": CODE, "ORD_DVSN": "01", "ORD_QTY": "1", "ORD_UNPR": "0"}  # python-kis's six keys
    r = await wire.post(p.PATH_ORDER_CASH, tr_id, body)
    out = r.json()
    assert out["rt_cd"] == "0" and out["msg_cd"] == "APBK0013"
    assert set(out["output"]) == {"KRX_FWDG_ORD_ORGNO", "ODNO", "ORD_TMD"}
    assert out["output"]["ODNO"].isdigit() and len(out["output"]["ORD_TMD"]) == 6


async def test_paper_accepts_virtual_and_rewritten_trs(sim: KisSimulator) -> None:
    sim.throttles["virtual"].limit = 50  # this test is about TR IDs, not pacing
    w = Wire(sim, "virtual")
    await w.login()
    for tr_id in ("VTTC0012U", "VTTC0802U"):
        body = {**w.account(), "PDNO": CODE, "ORD_DVSN": "01", "ORD_QTY": "1", "ORD_UNPR": "0", "SLL_TYPE": "",
                "CNDT_PRIC": "", "EXCG_ID_DVSN_CD": "KRX"}
        assert (await w.post(p.PATH_ORDER_CASH, tr_id, body)).json()["rt_cd"] == "0"
    r = await w.get(p.PATH_SEARCH_INFO, "VTPF1604R", {"PDNO": CODE, "PRDT_TYPE_CD": "300"})
    assert r.json()["output"]["prdt_abrv_name"] == "삼성전자" and r.headers["tr_cont"]
    r = await w.get(p.PATH_PSBL_RVSECNCL, "VTTC0084R", {**w.account(), "INQR_DVSN_1": "0", "INQR_DVSN_2": "0"})
    assert r.status_code == 200 and r.json()["rt_cd"] != "0"  # not offered on paper, as on KIS
    body = {**w.account(), "PDNO": CODE, "ORD_DVSN": "01", "ORD_QTY": "1", "ORD_UNPR": "0", "EXCG_ID_DVSN_CD": "NXT"}
    assert (await w.post(p.PATH_ORDER_CASH, "VTTC0012U", body)).json()["rt_cd"] != "0"  # paper: KRX only
    await w.http.aclose()


async def test_balance_like_python_kis(sim: KisSimulator, wire: Wire) -> None:
    """python-kis: INQR_DVSN=02, lower-case CTX keys, no tr_cont header on the first page."""
    sim.options.balance_page_size = 2
    for code in ("005930", "000660", "035420"):
        await wire.post(p.PATH_ORDER_CASH, "TTTC0802U",
                        {**wire.account(), "PDNO": code, "ORD_DVSN": "01", "ORD_QTY": "1", "ORD_UNPR": "0"})
    params = {**wire.account(), "AFHR_FLPR_YN": "N", "OFL_YN": "", "INQR_DVSN": "02", "UNPR_DVSN": "01",
              "FUND_STTL_ICLD_YN": "Y", "FNCG_AMT_AUTO_RDPT_YN": "N", "PRCS_DVSN": "00", "ctx_area_fk100": "",
              "ctx_area_nk100": ""}
    r1 = await wire.get(p.PATH_BALANCE, "TTTC8434R", params)
    b1 = r1.json()
    assert r1.headers["tr_cont"] == "F" and len(b1["output1"]) == 2
    assert b1["ctx_area_fk100"] and b1["ctx_area_nk100"]  # never "more" with empty keys (python-kis would loop)
    params.update(ctx_area_fk100=b1["ctx_area_fk100"], ctx_area_nk100=b1["ctx_area_nk100"])
    r2 = await wire.get(p.PATH_BALANCE, "TTTC8434R", params, tr_cont="N")
    assert r2.headers["tr_cont"] == "E" and len(r2.json()["output1"]) == 1
    for row in b1["output1"]:
        assert set(p.BALANCE_HOLDING_FIELDS) <= set(row)
        for f in ("hldg_qty", "ord_psbl_qty", "pchs_amt", "prpr"):
            assert row[f] != ""
    summary = b1["output2"][0]
    assert set(p.BALANCE_SUMMARY_FIELDS) <= set(summary) and summary["dnca_tot_amt"].lstrip("-").isdigit()


async def test_inqr_dvsn_02_refusal_switch(sim: KisSimulator, wire: Wire) -> None:
    sim.options.refuse_inqr_dvsn_02 = True
    r = await wire.get(p.PATH_BALANCE, "TTTC8434R", {**wire.account(), "INQR_DVSN": "02"})
    assert (r.json()["rt_cd"], r.json()["msg_cd"]) == ("2", p.OPSQ_INVALID_INQR_DVSN)


async def test_price_fields_parse_as_python_kis_requires(wire: Wire) -> None:
    out = (await wire.get(p.PATH_INQUIRE_PRICE, "FHKST01010100", {"FID_COND_MRKT_DIV_CODE": "J",
                                                                    "FID_INPUT_ISCD": CODE})).json()["output"]
    assert set(p.PRICE_FIELDS) <= set(out)
    for f in ("prdy_vrss", "acml_tr_pbmn", "prdy_vrss_vol_rate", "hts_avls", "stck_oprc", "stck_hgpr", "stck_lwpr",
              "stck_mxpr", "stck_llam", "stck_sdpr", "aspr_unit", "eps", "bps", "per", "pbr", "w52_hgpr", "w52_lwpr"):
        float(out[f])
    assert out["acml_vol"].isdigit() and out["stck_prpr"].isdigit()
    assert out["prdy_vrss_sign"] in "12345" and out["mrkt_warn_cls_code"] in ("00", "01", "02", "03")
    assert out["temp_stop_yn"] in "YN" and out["short_over_yn"] in "YN"
    dt.datetime.strptime(out["w52_hgpr_date"], "%Y%m%d")


async def test_daily_ccld_and_pending_rows(wire: Wire) -> None:
    await wire.post(p.PATH_ORDER_CASH, "TTTC0012U",
                    {**wire.account(), "PDNO": CODE, "ORD_DVSN": "00", "ORD_QTY": "2", "ORD_UNPR": "1000"})
    r = await wire.get(p.PATH_DAILY_CCLD, "TTTC8001R", {
        **wire.account(), "INQR_STRT_DT": "20200101", "INQR_END_DT": "20991231", "SLL_BUY_DVSN_CD": "00",
        "INQR_DVSN": "00", "PDNO": "", "CCLD_DVSN": "00", "ORD_GNO_BRNO": "", "ODNO": "", "INQR_DVSN_3": "00",
        "INQR_DVSN_1": "", "ctx_area_fk100": "", "ctx_area_nk100": ""})
    body = r.json()
    assert r.headers["tr_cont"] == "D" and "ctx_area_fk100" in body and isinstance(body["output2"], dict)
    # 1000 won is below the lower limit for Samsung here, so the order was refused: nothing listed
    rows = body["output1"]
    for row in rows:
        assert row["excg_dvsn_cd"] in ("01", "02") and row["ord_dt"] and row["ord_tmd"]


async def test_chart_from_the_beginning_ends(wire: Wire) -> None:
    """python-kis sends FID_INPUT_DATE_1=00000101 and pages back until output2 is empty."""
    end = "29991231"
    seen = 0
    for _ in range(30):
        r = await wire.get(p.PATH_DAILY_CHART, "FHKST03010100", {
            "FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": CODE, "FID_INPUT_DATE_1": "00000101",
            "FID_INPUT_DATE_2": end, "FID_PERIOD_DIV_CODE": "D", "FID_ORG_ADJ_PRC": "1"})
        bars = r.json()["output2"]
        if not bars:
            break
        seen += len(bars)
        oldest = dt.datetime.strptime(bars[-1]["stck_bsop_date"], "%Y%m%d").date()
        end = (oldest - dt.timedelta(days=1)).strftime("%Y%m%d")
    else:
        pytest.fail("history never ended")
    assert 500 < seen < 1000


async def test_hashkey_and_approval(wire: Wire) -> None:
    body = {**wire.account(), "PDNO": CODE, "ORD_DVSN": "01", "ORD_QTY": "1", "ORD_UNPR": "0"}
    r = await wire.http.post(p.PATH_HASHKEY, json=body, headers={"appkey": wire.creds.app_key,
                                                                 "appsecret": wire.creds.app_secret})
    assert r.status_code == 200 and len(r.json()["HASH"]) == 64
    bad = await wire.http.post(p.PATH_ORDER_CASH, content=json.dumps(body),
                               headers={**wire.headers("TTTC0012U"), "hashkey": "0" * 64})
    assert bad.status_code == 500 and bad.json()["rt_cd"] == "1"  # a hashkey that does not match the body
    a = await wire.http.post(p.PATH_APPROVAL, json={"grant_type": "client_credentials",
                                                    "appkey": wire.creds.app_key, "secretkey": wire.creds.app_secret})
    assert a.status_code == 200 and a.json()["approval_key"]


async def test_overseas_side_calls_of_python_kis_answer_empty(wire: Wire) -> None:
    r = await wire.get(p.PATH_OVRS_NCCS, "TTTS3018R", {**wire.account()})
    assert r.json()["output"] == [] and r.headers["tr_cont"] == "D" and "ctx_area_nk200" in r.json()


async def test_app_key_is_bound_to_its_account(wire: Wire) -> None:
    await wire.get(p.PATH_BALANCE, "TTTC8434R", {**wire.account(), "INQR_DVSN": "01"})
    other = {"CANO": "99999999", "ACNT_PRDT_CD": "01", "INQR_DVSN": "01"}
    r = await wire.get(p.PATH_BALANCE, "TTTC8434R", other)
    assert r.json()["rt_cd"] != "0"
