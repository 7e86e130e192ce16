"""The simulator's REST side: one aiohttp application per server flavour (real-like, paper-like).

Every reply carries ``Content-Type`` capitalised and ``tr_id``/``tr_cont``/``gt_uid`` in lower case
(KIS_API.md §2.2: the official client breaks on lower-case hyphenated names, python-kis on a
missing ``tr_cont``). aiohttp writes header names exactly as given, which is why it serves here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from chatbot.kis import protocol as p
from chatbot.kis.protocol import TR, Flavour
from chatbot.sim import payloads
from chatbot.sim.auth import AuthFailure, kst_expiry_text
from chatbot.sim.exchange import SimReject
from chatbot.sim.rejections import ORDER_OK, rejection

if TYPE_CHECKING:
    from chatbot.sim.server import KisSimulator

log = logging.getLogger(__name__)

JSON_CT = "application/json; charset=utf-8"


class Refusal(Exception):
    """Answer with a KIS envelope error (business or gateway)."""

    def __init__(self, status: int, rt_cd: str, msg_cd: str, msg1: str) -> None:
        super().__init__(msg_cd)
        self.status, self.rt_cd, self.msg_cd, self.msg1 = status, rt_cd, msg_cd, msg1


@dataclass(slots=True)
class Call:
    flavour: Flavour
    path: str
    tr_id: str
    app_key: str
    query: dict[str, str]
    body: dict[str, Any]
    headers: Any
    tr_cont_in: str = ""


@dataclass(slots=True)
class Reply:
    body: dict[str, Any]
    tr_cont: str = "D"
    status: int = 200
    mutated: bool = False
    extra_headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Call], Reply]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    handler: Handler
    trs: tuple[TR, ...] = ()
    authenticated: bool = True


def _ok(msg_cd: str = p.MSG_QUERY_OK, msg1: str = "정상처리 되었습니다.", **outputs: Any) -> dict[str, Any]:
    return {"rt_cd": p.RT_OK, "msg_cd": msg_cd, "msg1": msg1, **outputs}


def _envelope(rt_cd: str, msg_cd: str, msg1: str) -> dict[str, Any]:
    return {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1}


def _response(status: int, body: dict[str, Any] | str, tr_id: str = "", tr_cont: str = "D",
              extra: dict[str, str] | None = None) -> web.Response:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    headers = {"Content-Type": JSON_CT, "tr_id": tr_id, "tr_cont": tr_cont, "gt_uid": secrets.token_hex(16)}
    if extra:
        headers.update(extra)
    return web.Response(status=status, body=text.encode("utf-8"), headers=headers)


def _digits(value: str, name: str, reason: str = "bad_quantity") -> int:
    text = (value or "").strip()
    if not text.isdigit():
        raise SimReject(reason, name)
    return int(text)


def canonical_body(body: dict[str, Any]) -> bytes:
    """The bytes a hashkey is computed over (our choice; the real algorithm is unverified)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class RestApi:
    """Routes and handlers of one flavour; state lives in the shared :class:`KisSimulator`."""

    def __init__(self, sim: KisSimulator, flavour: Flavour) -> None:
        self.sim = sim
        self.flavour = flavour
        self.requests = 0
        self.routes: dict[str, Route] = {
            p.PATH_TOKEN: Route("POST", self.token, authenticated=False),
            p.PATH_REVOKE: Route("POST", self.revoke, authenticated=False),
            p.PATH_APPROVAL: Route("POST", self.approval, authenticated=False),
            p.PATH_HASHKEY: Route("POST", self.hashkey, authenticated=False),
            p.PATH_INQUIRE_PRICE: Route("GET", self.inquire_price, (TR.PRICE,)),
            p.PATH_SEARCH_INFO: Route("GET", self.search_info, (TR.SEARCH_INFO,)),
            p.PATH_DAILY_CHART: Route("GET", self.daily_chart, (TR.DAILY_CHART,)),
            p.PATH_BALANCE: Route("GET", self.balance, (TR.BALANCE,)),
            p.PATH_ORDER_CASH: Route("POST", self.order_cash, (TR.BUY, TR.SELL)),
            p.PATH_ORDER_RVSECNCL: Route("POST", self.order_rvsecncl, (TR.REVISE_CANCEL,)),
            p.PATH_PSBL_RVSECNCL: Route("GET", self.psbl_rvsecncl, (TR.PSBL_RVSECNCL,)),
            p.PATH_DAILY_CCLD: Route("GET", self.daily_ccld, (TR.DAILY_CCLD, TR.DAILY_CCLD_OLD_PERIOD)),
            p.PATH_PSBL_ORDER: Route("GET", self.psbl_order, (TR.PSBL_ORDER,)),
        }
        from chatbot.sim.us_rest import US_PRODUCT_TYPES, UsRestApi  # US stocks; it imports this module

        self.us = UsRestApi(self)
        self.routes.update(self.us.routes())
        self._us_product_types = US_PRODUCT_TYPES

    # -- the aiohttp application -----------------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_route("*", "/sim/{action}", self.control)
        app.router.add_route("GET", "/common/master/{name}", self.sim.master_files.handle)  # KIS's download host
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    async def dispatch(self, request: web.Request) -> web.Response:
        self.requests += 1
        path = request.path
        tr_id = request.headers.get("tr_id", "")
        faults = self.sim.faults
        faulty = faults.applies(path)
        if faulty and faults.latency_seconds:
            await asyncio.sleep(faults.latency_seconds)
        if faulty and faults.take_5xx_before():
            return web.Response(status=500, text="Internal Server Error", headers={"Content-Type": "text/plain"})
        route = self.routes.get(path)
        if route is None:
            return _response(404, _envelope("1", "EGW00001", "존재하지 않는 URL 입니다."), tr_id)
        if request.method != route.method:
            return _response(405, _envelope("1", "EGW00002", "허용되지 않는 메소드입니다."), tr_id)
        try:
            call = await self._parse(request, path, tr_id)
            if route.authenticated:
                call.app_key = self.sim.auth.authenticate(
                    request.headers.get("authorization"), request.headers.get("appkey"),
                    request.headers.get("appsecret"))
            if (route.authenticated or path == p.PATH_HASHKEY) and faulty and faults.take_rate_limit():
                raise Refusal(500, "1", p.EGW_RATE_LIMIT, "초당 거래건수를 초과하였습니다.")
            if route.authenticated or path == p.PATH_HASHKEY:
                key = call.app_key or request.headers.get("appkey", "")
                if not self.sim.throttles[self.flavour].allow(key):
                    raise Refusal(500, "1", p.EGW_RATE_LIMIT, "초당 거래건수를 초과하였습니다.")
            if route.trs and tr_id not in self._accepted(route.trs):
                raise Refusal(500, "1", p.OPSQ_UNKNOWN_SERVICE, "없는 서비스 코드 입니다")
            reply = route.handler(call)
        except AuthFailure as exc:
            if exc.msg_cd == p.EGW_TOKEN_TOO_OFTEN:
                return _response(exc.http_status, {"error_code": exc.msg_cd, "error_description": exc.msg1}, tr_id)
            status = faults.gateway_status(exc.http_status) if faulty and exc.msg_cd in (
                p.EGW_TOKEN_EXPIRED, p.EGW_TOKEN_INVALID) else exc.http_status
            return _response(status, _envelope("1", exc.msg_cd, exc.msg1), tr_id)
        except Refusal as exc:
            status = exc.status
            if faulty and exc.msg_cd == p.EGW_RATE_LIMIT:
                status = faults.gateway_status(status)
            return _response(status, _envelope(exc.rt_cd, exc.msg_cd, exc.msg1), tr_id)
        if reply.mutated or self.sim.auth.changed:
            await self.sim.persist()
        if faulty and faults.response_delay_seconds:
            await asyncio.sleep(faults.response_delay_seconds)
        if faulty and faults.take_5xx_after():
            return web.Response(status=500, text="Internal Server Error", headers={"Content-Type": "text/plain"})
        return _response(reply.status, reply.body, tr_id, reply.tr_cont, reply.extra_headers)

    def _accepted(self, trs: tuple[TR, ...]) -> frozenset[str]:
        accepted: set[str] = set()
        for tr in trs:
            accepted |= p.accepted_trs(tr, self.flavour)
            if tr is TR.SEARCH_INFO:  # python-kis sends the real TR on both; the official code VTPF1604R on paper
                accepted |= p.accepted_trs(tr, "real")
        return frozenset(accepted)

    async def _parse(self, request: web.Request, path: str, tr_id: str) -> Call:
        body: dict[str, Any] = {}
        if request.method == "POST":
            raw = await request.read()
            if raw:
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    raise Refusal(400, "1", "EGW00003", "JSON 형식이 올바르지 않습니다.") from None
                if not isinstance(parsed, dict):
                    raise Refusal(400, "1", "EGW00003", "JSON 형식이 올바르지 않습니다.")
                body = parsed
        query = {k.upper(): v for k, v in request.query.items()}
        return Call(self.flavour, path, tr_id, "", query, body, request.headers,
                    request.headers.get("tr_cont", "").strip().upper())

    # -- auth endpoints --------------------------------------------------------------------------------
    def token(self, call: Call) -> Reply:
        b = call.body
        if b.get("grant_type") != "client_credentials":
            raise Refusal(403, "1", "EGW00002", "grant_type 이 올바르지 않습니다.")
        issued = self.sim.auth.issue_token(b.get("appkey"), b.get("appsecret"))
        now = self.sim.wall()
        return Reply({
            "access_token": issued.token, "access_token_token_expired": kst_expiry_text(issued.expires_at),
            "token_type": "Bearer", "expires_in": int(issued.expires_at - now),
        })

    def revoke(self, call: Call) -> Reply:
        b = call.body
        self.sim.auth.check_pair(b.get("appkey"), b.get("appsecret"))
        self.sim.auth.revoke(str(b.get("token", "")))
        return Reply({"code": 200, "message": "접근토큰 폐기에 성공하였습니다"})

    def approval(self, call: Call) -> Reply:
        b = call.body
        key = self.sim.auth.issue_approval(b.get("appkey"), b.get("secretkey") or b.get("appsecret"))
        return Reply({"approval_key": key})

    def hashkey(self, call: Call) -> Reply:
        self.sim.auth.check_pair(call.headers.get("appkey"), call.headers.get("appsecret"))
        digest = hashlib.sha256(canonical_body(call.body)).hexdigest()
        return Reply({"JsonBody": call.body, "HASH": digest})

    # -- quotations --------------------------------------------------------------------------------------
    def inquire_price(self, call: Call) -> Reply:
        code = call.query.get("FID_INPUT_ISCD", "").strip()
        return Reply(_ok(output=payloads.price_output(self.sim.market, code)))

    def search_info(self, call: Call) -> Reply:
        if call.query.get("PRDT_TYPE_CD", "").strip() in self._us_product_types:
            return self.us.search_info(call)
        code = call.query.get("PDNO", "").strip()
        out = payloads.search_info_output(self.sim.market, code)
        if out is None or call.query.get("PRDT_TYPE_CD", "300") not in ("300", ""):
            return Reply(_envelope("7", "KIOK0560", "조회할 내용이 없습니다"))
        return Reply(_ok(output=out))

    def daily_chart(self, call: Call) -> Reply:
        q = call.query
        code = q.get("FID_INPUT_ISCD", "").strip()
        period = q.get("FID_PERIOD_DIV_CODE", "D").strip().upper() or "D"
        if period not in ("D", "W", "M", "Y"):
            raise Refusal(200, "2", "OPSQ2002", "ERROR : INPUT INVALID_CHECK_PERIOD_DIV_CODE")
        start = _parse_date(q.get("FID_INPUT_DATE_1", ""), dt.date.min)
        end = _parse_date(q.get("FID_INPUT_DATE_2", ""), self.sim.today())
        return Reply(_ok(**payloads.chart_payload(self.sim.market, code, period, start, end)))

    # -- account -----------------------------------------------------------------------------------------
    def _account(self, call: Call, source: dict[str, Any]) -> str:
        cano = str(source.get("CANO", "")).strip()
        prdt = str(source.get("ACNT_PRDT_CD", "")).strip()
        if len(cano) != 8 or not cano.isdigit() or len(prdt) != 2 or not prdt.isdigit():
            raise Refusal(200, "2", "OPSQ2000", "ERROR : INPUT INVALID_CHECK_ACNO")
        # Real and paper accounts are separate ledgers at KIS, even with the same number.
        account_id = f"{cano}-{prdt}" if self.flavour == "real" else f"V{cano}-{prdt}"
        if not self.sim.auth.bind_account(call.app_key, account_id):
            raise Refusal(200, "2", "OPSQ2000", "ERROR : INPUT INVALID_CHECK_ACNO")
        return account_id

    def _page(self, call: Call, rows: list[dict[str, str]], size: int, account_id: str) -> tuple[list[Any], str, dict[str, str]]:
        offset = 0
        nk = call.query.get("CTX_AREA_NK100", "").strip()
        if nk.isdigit():
            offset = int(nk)
        page = rows[offset: offset + size]
        more = offset + size < len(rows)
        if more:
            tr_cont = "F" if offset == 0 else "M"
            ctx = {"ctx_area_fk100": account_id.lstrip("V").replace("-", "^"), "ctx_area_nk100": str(offset + size)}
        else:
            tr_cont = "D" if offset == 0 else "E"
            ctx = {"ctx_area_fk100": "", "ctx_area_nk100": ""}
        return page, tr_cont, ctx

    def balance(self, call: Call) -> Reply:
        account_id = self._account(call, call.query)
        if call.query.get("INQR_DVSN") == "02" and self.sim.options.refuse_inqr_dvsn_02:
            raise Refusal(200, "2", p.OPSQ_INVALID_INQR_DVSN, "ERROR : INPUT INVALID_CHECK_INQR_DVSN")
        acct = self.sim.exchange.account(account_id)
        rows = payloads.holding_rows(self.sim.market, acct)
        size = self.sim.options.balance_page_size or p.BALANCE_PAGE_SIZE[self.flavour]
        page, tr_cont, ctx = self._page(call, rows, size, account_id)
        summary = payloads.balance_summary(self.sim.market, acct)
        return Reply(_ok(output1=page, output2=[summary], **ctx), tr_cont)

    def psbl_order(self, call: Call) -> Reply:
        account_id = self._account(call, call.query)
        code = call.query.get("PDNO", "").strip()
        price_text = call.query.get("ORD_UNPR", "0").strip() or "0"
        price = int(price_text) if price_text.isdigit() else 0
        acct = self.sim.exchange.account(account_id)
        margin_reflected = call.query.get("ORD_DVSN", "").strip() != p.OrderDivision.LIMIT
        return Reply(_ok(output=payloads.buying_power_output(self.sim.market, acct, code, price, margin_reflected)))

    def psbl_rvsecncl(self, call: Call) -> Reply:
        if self.flavour == "virtual":
            raise Refusal(200, "1", "OPSQ0002", "모의투자에서는 해당업무가 제공되지 않습니다.")
        account_id = self._account(call, call.query)
        side_filter = call.query.get("INQR_DVSN_2", "0")
        orders = [o for o in self.sim.exchange.account(account_id).open_orders()
                  if side_filter in ("0", "") or (side_filter == "1" and o.side == p.Side.SELL)
                  or (side_filter == "2" and o.side == p.Side.BUY)]
        if call.query.get("INQR_DVSN_1") == "1":
            orders.sort(key=lambda o: (o.code, o.order_no))
        rows = [payloads.open_order_row(self.sim.market, o) for o in orders]
        page, tr_cont, ctx = self._page(call, rows, p.PSBL_RVSECNCL_PAGE_SIZE, account_id)
        return Reply(_ok(output=page, **ctx), tr_cont)

    def daily_ccld(self, call: Call) -> Reply:
        q = call.query
        account_id = self._account(call, q)
        start = q.get("INQR_STRT_DT", "").strip() or "00000101"
        end = q.get("INQR_END_DT", "").strip() or "99991231"
        side = q.get("SLL_BUY_DVSN_CD", "00").strip()
        code = q.get("PDNO", "").strip()
        listed = self.sim.market.listing(code) if code else None
        code = listed.code if listed is not None else code  # an ETN asked as Q + code (§4.1), listed bare
        odno = p.order_no_key(q.get("ODNO", ""))
        ccld = q.get("CCLD_DVSN", "00").strip()
        exchange = p.exchange_code(q.get("EXCG_ID_DVSN_CD"))  # absent: KRX (§4.6); ALL: every exchange
        orders = []
        for o in self.sim.exchange.account(account_id).orders:
            if not start <= o.date <= end:
                continue
            if exchange != p.EXCHANGE_ALL and o.exchange != exchange:
                continue
            if side in ("01", "02") and o.side != side:
                continue
            if code and o.code != code:
                continue
            if odno and p.order_no_key(o.order_no) != odno:
                continue
            if ccld == "01" and o.filled_qty == 0:
                continue
            if ccld == "02" and o.remaining == 0:
                continue
            orders.append(o)
        if q.get("INQR_DVSN", "00") != "01":
            orders.reverse()
        rows = [payloads.execution_row(self.sim.market, o) for o in orders]
        size = self.sim.options.daily_ccld_page_size or p.DAILY_CCLD_PAGE_SIZE[self.flavour]
        page, tr_cont, ctx = self._page(call, rows, size, account_id)
        return Reply(_ok(output1=page, output2=payloads.execution_summary(orders), **ctx), tr_cont)

    # -- orders --------------------------------------------------------------------------------------------
    def _check_hashkey(self, call: Call) -> None:
        given = call.headers.get("hashkey")
        if given and given != hashlib.sha256(canonical_body(call.body)).hexdigest():
            raise Refusal(500, "1", "EGW00342", "hashkey 값이 요청 본문과 일치하지 않습니다.")

    def _exchange_code(self, body: dict[str, Any]) -> str:
        excg = p.exchange_code(body.get("EXCG_ID_DVSN_CD"))  # absent or empty: KRX (python-kis omits it)
        if excg not in p.EXCHANGES or (self.flavour == "virtual" and excg != p.EXCHANGE_KRX):
            raise SimReject("bad_exchange", excg)
        return excg

    def _order_reply(self, kind: str, order_no: str, branch: str, time: str) -> Reply:
        msg_cd, msg1 = ORDER_OK[self.flavour][kind]
        output = {"KRX_FWDG_ORD_ORGNO": branch, "ODNO": order_no, "ORD_TMD": time}
        return Reply(_ok(msg_cd, msg1, output=output), mutated=True)

    def _reject(self, exc: SimReject) -> Reply:
        rt_cd, msg_cd, msg1 = rejection(self.flavour, exc.reason, exc.detail)
        return Reply(_envelope(rt_cd, msg_cd, msg1), mutated=True)

    def order_cash(self, call: Call) -> Reply:
        body = {k.upper(): v for k, v in call.body.items()}
        self._check_hashkey(call)
        account_id = self._account(call, body)
        side = p.Side.BUY if call.tr_id in p.accepted_trs(TR.BUY, self.flavour) else p.Side.SELL
        try:
            exchange = self._exchange_code(body)
            qty = _digits(str(body.get("ORD_QTY", "")), "ORD_QTY")
            price = _digits(str(body.get("ORD_UNPR", "") or "0"), "ORD_UNPR", "bad_price")
            order = self.sim.exchange.place(account_id, str(body.get("PDNO", "")).strip(), side,
                                            str(body.get("ORD_DVSN", "")).strip(), qty, price, exchange)
        except SimReject as exc:
            return self._reject(exc)
        self.sim.orders_accepted += 1
        return self._order_reply("buy" if side == p.Side.BUY else "sell", order.order_no, order.branch, order.time)

    def order_rvsecncl(self, call: Call) -> Reply:
        body = {k.upper(): v for k, v in call.body.items()}
        self._check_hashkey(call)
        account_id = self._account(call, body)
        try:
            exchange = self._exchange_code(body)
            original = str(body.get("ORGN_ODNO", "")).strip()
            kind = str(body.get("RVSE_CNCL_DVSN_CD", "")).strip()
            qty = _digits(str(body.get("ORD_QTY", "") or "0"), "ORD_QTY")
            price = _digits(str(body.get("ORD_UNPR", "") or "0"), "ORD_UNPR", "bad_price")
            all_remaining = str(body.get("QTY_ALL_ORD_YN", "")).upper() == "Y"
            if kind == p.CANCEL:
                record = self.sim.exchange.cancel(account_id, original, qty, all_remaining, exchange)
                label = "cancel"
            elif kind == p.REVISE:
                record = self.sim.exchange.revise(account_id, original, str(body.get("ORD_DVSN", "00")), qty, price,
                                                  all_remaining, exchange)
                label = "revise"
            else:
                raise SimReject("bad_division", kind)
        except SimReject as exc:
            return self._reject(exc)
        return self._order_reply(label, record.order_no, record.branch, record.time)

    # -- test and operator controls (loopback only) -------------------------------------------------------
    async def control(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        data: dict[str, Any] = {}
        if request.can_read_body:
            try:
                data = await request.json()
            except ValueError:
                return web.json_response({"error": "invalid json"}, status=400)
        try:
            result = await self.sim.control(action, data)
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(result)


def _parse_date(text: str, default: dt.date) -> dt.date:
    text = (text or "").strip()
    if len(text) != 8 or not text.isdigit():
        return default
    if text[:4] == "0000":  # python-kis asks from 00000101 for "from the beginning"
        return dt.date.min
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return default
