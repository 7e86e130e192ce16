"""Async KIS REST client on httpx: one instance per app key.

What it guarantees:
* every call is paced under the app key's per-second limit (:class:`RequestPacer`);
* queries that meet ``EGW00201`` back off and retry; an order is **never** re-sent by this class
  unless KIS's gateway refused it (rate limit, expired token), which proves it was not placed. Gateway
  codes are recognised whatever the HTTP status (KIS has been seen sending them on HTTP 200);
* no hashkey unless asked for (KIS does not require one; a hashkey outage must not block orders);
* an order whose outcome is unknown (timeout, dropped connection, 5xx without envelope) raises
  :class:`KisTransportError`/:class:`KisServerError` with ``maybe_sent`` set, for
  :class:`chatbot.kis.orders.OrderSubmitter` to reconcile;
* results are typed (:mod:`chatbot.kis.models`), errors carry ``msg_cd``/``msg1``; a call failing
  inside KIS's usual nightly maintenance window says so (``KisError.in_maintenance_window``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, Self
from urllib.parse import urlencode

import httpx

from chatbot.kis import protocol as p
from chatbot.kis.errors import (
    KisApiError,
    KisAuthError,
    KisError,
    KisGatewayError,
    KisNotFound,
    KisOrderRejected,
    KisPagingError,
    KisRateLimited,
    KisServerError,
    KisTokenExpired,
    KisTokenIssueThrottled,
    KisTransportError,
)
from chatbot.kis.models import (
    KST,
    Account,
    Balance,
    Bar,
    BuyingPower,
    Execution,
    Holding,
    OpenOrder,
    OrderAck,
    OrderSide,
    Quote,
    StockInfo,
)
from chatbot.kis.protocol import TR, Flavour
from chatbot.kis.ratelimit import RequestPacer
from chatbot.kis.token import (
    APPROVAL_FLIGHTS,
    CachedToken,
    MemoryTokenStore,
    TokenManager,
    TokenStore,
    approval_flight_key,
    parse_token_reply,
    token_cache_key,
)
from chatbot.security.credentials import KisCredentials as KisCredentials  # noqa: PLC0414 (moved; re-exported)
from chatbot.security.credentials import mask as mask  # noqa: PLC0414

log = logging.getLogger(__name__)

MAX_PAGES = 100
MAX_CACHED_URLS = 512
QUERY_RETRIES = 6
USER_AGENT = "kis-chatops/0.1"


@cache
def _verified_tls() -> ssl.SSLContext:
    return httpx.create_ssl_context()  # certifi's CAs: ~20 ms to load, once per process instead of per client


def tls_for(url: str) -> ssl.SSLContext:
    """httpx's ``verify=`` for a client on ``url``: one shared, verifying context for https; for plain
    http (the simulator) a client context with no CA loaded, which it never uses and which would
    refuse any TLS peer."""
    if url.startswith("https:"):
        return _verified_tls()
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


@dataclass(frozen=True, slots=True)
class KisEndpoint:
    """Where to talk and with which server's rules (TR ID family, rate limit, page sizes)."""

    flavour: Flavour
    rest_url: str
    # What tokens are cached under, with the app key: the deployment this server stands for
    # ("simulator", "virtual", "real"), not its URL (the embedded simulator listens on a new port each run).
    token_scope: str = ""

    @property
    def cache_scope(self) -> str:
        return self.token_scope or self.rest_url.rstrip("/")


@dataclass(frozen=True, slots=True)
class RawReply:
    body: dict[str, Any]
    tr_cont: str


def _i(value: Any) -> int:
    """Integer from a KIS numeric string (``"123"``, ``"-5"``, ``"123.0000"``, ``""`` → 0)."""
    if value is None or value == "":
        return 0
    try:
        return int(Decimal(str(value).strip().replace(",", "")))
    except (InvalidOperation, ValueError):
        return 0


def _given(value: Any) -> Decimal | None:
    """A KIS decimal string as given, None when left blank (or not a number)."""
    if value is None or str(value).strip() == "":
        return None
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _d(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    try:
        return Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        return Decimal(0)


def _side(code: str) -> OrderSide:
    return OrderSide.BUY if code == p.Side.BUY else OrderSide.SELL


def _body_bytes(body: Mapping[str, Any]) -> bytes:
    """The JSON we POST; the same bytes the hashkey is asked for."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class KisRestClient:
    def __init__(
        self,
        endpoint: KisEndpoint,
        credentials: KisCredentials,
        token_store: TokenStore | None = None,
        *,
        requests_per_second: int | None = None,
        timeout: float = 10.0,
        order_timeout: float = 15.0,
        use_hashkey: bool = False,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        maintenance_windows: p.TimeWindows = p.NIGHTLY_MAINTENANCE_WINDOWS,
    ) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.flavour: Flavour = endpoint.flavour
        self.timeout = timeout
        self.order_timeout = order_timeout
        self.use_hashkey = use_hashkey
        self.maintenance_windows = maintenance_windows
        self._clock = clock
        rate = requests_per_second or p.REQUESTS_PER_SECOND[endpoint.flavour]
        self.pacer = RequestPacer(rate)
        self._own_http = http is None
        pool = min(max(rate, 4), 32)  # one connection per permit is plenty; httpcore's pool is O(n) per request
        self._http = http or httpx.AsyncClient(
            base_url=endpoint.rest_url, timeout=timeout, verify=tls_for(endpoint.rest_url),
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            headers={"User-Agent": USER_AGENT})
        self._base = str(self._http.base_url).rstrip("/")
        self._default_headers = dict(self._http.headers)
        self._urls: dict[tuple[str, tuple[tuple[str, str], ...]], httpx.URL] = {}
        cache_key = token_cache_key(endpoint.cache_scope, credentials.app_key, credentials.app_secret)
        self.tokens = TokenManager(cache_key, token_store or MemoryTokenStore(), self._issue_token, clock)
        self.rate_limit_retries = 0
        self.calls = 0
        self.latency_observer: Callable[[str, float], None] | None = None  # (path, seconds)

    def __repr__(self) -> str:
        return f"KisRestClient({self.endpoint.flavour}, {self.endpoint.rest_url}, {self.credentials!r})"

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def account(self) -> Account:
        return self.credentials.account

    # -- auth ------------------------------------------------------------------------------------------
    async def _issue_token(self) -> CachedToken:
        body = {"grant_type": "client_credentials", "appkey": self.credentials.app_key,
                "appsecret": self.credentials.app_secret}
        resp = await self._request("POST", p.PATH_TOKEN, content=_body_bytes(body))
        data = _json(resp)
        if resp.status_code == 403 and data.get("error_code") == p.EGW_TOKEN_TOO_OFTEN:
            raise KisTokenIssueThrottled("KIS allows one token a minute", msg_cd=p.EGW_TOKEN_TOO_OFTEN,
                                         msg1=str(data.get("error_description", "")), http_status=403)
        gateway = _gateway_error(resp.status_code, data, "")
        if gateway is not None:
            raise gateway
        if resp.status_code != 200:
            raise KisAuthError(f"token request refused (HTTP {resp.status_code})", http_status=resp.status_code)
        return parse_token_reply(data, time.time())

    async def revoke_token(self) -> bool:
        """Revoke the access token in use at KIS (``/oauth2/revokeP``; KIS keeps a token valid for 24 h and
        hands the same one out again within 6 h, §3.1/§3.2) and forget it here. For credentials being removed:
        deleting the cached copy alone leaves a working token at KIS. True when KIS confirmed it; a refusal or
        an unreachable KIS is logged and returns False (the token then lapses by itself)."""
        token = await self.tokens.current()
        if token is None:
            return False
        body = {"appkey": self.credentials.app_key, "appsecret": self.credentials.app_secret, "token": token}
        try:
            resp = await self._request("POST", p.PATH_REVOKE, content=_body_bytes(body))
        except KisTransportError as exc:
            log.warning("kis token not revoked", extra={"error": type(exc).__name__})
            return False
        finally:
            await self.tokens.invalidate(token)
        data = _json(resp)
        revoked = resp.status_code == 200 and str(data.get("code", "")) == "200"
        if not revoked:
            log.warning("kis token not revoked", extra={"http_status": resp.status_code,
                                                          "msg_cd": str(data.get("msg_cd") or data.get("error_code") or "")})
        return revoked

    async def verify_credentials(self) -> None:
        """Prove KIS accepts these credentials: a token, then a balance query, which checks the app
        key, the secret (sent on every call) and that the account belongs to the key."""
        await self.tokens.get()
        await self.balance()

    async def approval_key(self) -> str:
        """A WebSocket approval key (``/oauth2/Approval``; the secret goes as ``secretkey``). Callers asking
        at the same time for the same app key, from any client of this process, share one request and its
        outcome (:data:`chatbot.kis.token.APPROVAL_FLIGHTS`); a later call asks KIS again."""
        return await APPROVAL_FLIGHTS.run(
            approval_flight_key(self._base, self.credentials.app_key, self.credentials.app_secret),
            self._issue_approval_key)

    async def _issue_approval_key(self) -> str:
        body = {"grant_type": "client_credentials", "appkey": self.credentials.app_key,
                "secretkey": self.credentials.app_secret}
        resp = await self._request("POST", p.PATH_APPROVAL, content=_body_bytes(body))
        data = _json(resp)
        key = data.get("approval_key")
        if resp.status_code != 200 or not isinstance(key, str):
            raise _gateway_error(resp.status_code, data, "") or KisAuthError("approval key refused")
        return key

    def _in_maintenance_window(self) -> bool:
        now = dt.datetime.fromtimestamp(self._clock(), KST).time()
        return p.in_time_windows(now, self.maintenance_windows)

    # -- the call ----------------------------------------------------------------------------------------
    async def _call(self, method: str, path: str, tr: TR | str, *, params: dict[str, str] | None = None,
                    body: dict[str, str] | None = None, tr_cont: str = "", order: bool = False,
                    tr_id: str | None = None) -> RawReply:
        try:
            return await self._call_retrying(method, path, tr, params=params, body=body, tr_cont=tr_cont,
                                             order=order, tr_id=tr_id)
        except KisError as exc:
            if not isinstance(exc, KisNotFound | KisOrderRejected) and self._in_maintenance_window():
                exc.in_maintenance_window = True
            raise

    async def _call_retrying(self, method: str, path: str, tr: TR | str, *, params: dict[str, str] | None,
                             body: dict[str, str] | None, tr_cont: str, order: bool, tr_id: str | None
                             ) -> RawReply:
        tr_id = tr_id or p.tr_for(tr, self.flavour)
        token_retry_left = 1
        attempt = 0
        while True:
            attempt += 1
            token = await self.tokens.get()
            headers = {
                "authorization": f"Bearer {token}", "appkey": self.credentials.app_key,
                "appsecret": self.credentials.app_secret, "tr_id": tr_id, "custtype": "P", "tr_cont": tr_cont,
            }
            if order and body is not None and self.use_hashkey:
                headers["hashkey"] = await self._hashkey(body)
            try:
                return await self._send(method, path, tr_id, headers, params, body, order)
            except KisTokenExpired:
                if token_retry_left <= 0:
                    raise
                token_retry_left -= 1
                await self.tokens.invalidate(token)
                log.info("kis token expired; re-issuing once", extra={"tr_id": tr_id})
            except KisRateLimited:
                self.pacer.refused()
                if order or attempt > QUERY_RETRIES:
                    raise
                self.rate_limit_retries += 1
                await asyncio.sleep(min(2.0, 0.1 * 2 ** (attempt - 1)) * (0.5 + random.random()))
            except KisTransportError:
                if order or attempt > 2:
                    raise
                await asyncio.sleep(0.2 * attempt)

    async def _request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                       headers: dict[str, str] | None = None, content: bytes | None = None,
                       timeout: float | None = None, tr_id: str = "") -> httpx.Response:
        """One paced HTTP exchange (its permit counts from when it is sent: see :mod:`ratelimit`).
        A failure says whether the request may have reached KIS."""
        merged = self._default_headers.copy()
        if headers:
            merged.update(headers)
        if content is not None:
            merged["Content-Type"] = "application/json"
        url = self._url(path, params)
        seconds = timeout if timeout is not None else self.timeout
        async with self.pacer.slot() as permit:
            self.calls += 1
            started = time.perf_counter()
            try:
                # Built here, not by client.request(): the URL is already absolute and parsed, and
                # KIS uses no cookies, query merging or auth flows (a third of httpx's per-call work).
                extensions: dict[str, Any] = {
                    "timeout": {"connect": seconds, "read": seconds, "write": seconds, "pool": seconds}}
                if self.pacer.crowded:  # the send time matters only near the limit (see ratelimit)
                    extensions["trace"] = permit.trace
                request = httpx.Request(method, url, headers=merged, content=content, extensions=extensions)
                response = await self._http.send(request)
                if self.latency_observer is not None:
                    self.latency_observer(path, time.perf_counter() - started)
                return response
            except httpx.HTTPError as exc:
                never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
                err = KisTransportError(f"{'could not reach' if never_sent else 'no reply from'} KIS: "
                                        f"{type(exc).__name__}", tr_id=tr_id)
                err.maybe_sent = not never_sent
                raise err from None

    def _url(self, path: str, params: dict[str, str] | None) -> httpx.URL:
        """The absolute URL, parsed once per path and query (httpx parses a relative URL and merges
        the query on every request: three URL parses a call)."""
        key = (path, tuple(params.items()) if params else ())
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) >= MAX_CACHED_URLS:
                self._urls.clear()
            url = self._urls[key] = httpx.URL(self._base + path + ("?" + urlencode(key[1]) if params else ""))
        return url

    async def _send(self, method: str, path: str, tr_id: str, headers: dict[str, str],
                    params: dict[str, str] | None, body: dict[str, str] | None, order: bool) -> RawReply:
        resp = await self._request(method, path, params=params, headers=headers, tr_id=tr_id,
                                   content=None if method == "GET" else _body_bytes(body or {}),
                                   timeout=self.order_timeout if order else self.timeout)
        data = _json(resp)
        gateway = _gateway_error(resp.status_code, data, tr_id)  # EGW… on any status: never reached the ledger
        if gateway is not None:
            raise gateway
        if resp.status_code != 200:
            msg_cd = str(data.get("msg_cd") or "")
            if msg_cd:  # a KIS envelope on a non-2xx status: a refusal
                cls0: type[KisApiError] = KisOrderRejected if order else KisApiError
                raise cls0("KIS refused the order" if order else "KIS refused the request", msg_cd=msg_cd,
                           msg1=str(data.get("msg1", "")), rt_cd=str(data.get("rt_cd", "")),
                           http_status=resp.status_code, tr_id=tr_id)
            err2 = KisServerError(f"KIS answered HTTP {resp.status_code}", http_status=resp.status_code,
                                  tr_id=tr_id)
            err2.maybe_sent = True
            raise err2
        if "rt_cd" not in data:
            err3 = KisServerError("KIS reply without rt_cd", http_status=200, tr_id=tr_id)
            err3.maybe_sent = True
            raise err3
        rt_cd = str(data.get("rt_cd"))
        if rt_cd != p.RT_OK:
            msg_cd, msg1 = str(data.get("msg_cd", "")), str(data.get("msg1", ""))
            cls: type[KisApiError] = KisOrderRejected if order else KisApiError
            if msg_cd == p.APBK_NO_SUCH_STOCK:
                cls = KisNotFound
            raise cls("KIS refused the request", msg_cd=msg_cd, msg1=msg1, rt_cd=rt_cd, http_status=200,
                      tr_id=tr_id)
        return RawReply(data, resp.headers.get("tr_cont", "").strip())

    async def _hashkey(self, body: dict[str, str]) -> str:
        headers = {"appkey": self.credentials.app_key, "appsecret": self.credentials.app_secret}
        try:
            resp = await self._request("POST", p.PATH_HASHKEY, content=_body_bytes(body), headers=headers)
        except KisTransportError as exc:
            exc.maybe_sent = False  # a hashkey call places nothing
            raise
        data = _json(resp)
        digest = data.get("HASH")
        if resp.status_code != 200 or not isinstance(digest, str):
            gateway = _gateway_error(resp.status_code, data, "")
            if gateway is not None:
                raise gateway
            err2 = KisServerError(f"hashkey failed (HTTP {resp.status_code})", http_status=resp.status_code)
            err2.maybe_sent = False
            raise err2
        return digest

    async def _pages(self, path: str, tr: TR, params: dict[str, str], *, tr_id: str | None = None
                     ) -> list[dict[str, Any]]:
        """Every page of a paginated query (``tr_cont`` F/M → ask again with ``N`` and the CTX keys)."""
        pages: list[dict[str, Any]] = []
        params = {**params, "CTX_AREA_FK100": "", "CTX_AREA_NK100": ""}
        tr_cont = ""
        for _ in range(MAX_PAGES):
            reply = await self._call("GET", path, tr, params=params, tr_cont=tr_cont, tr_id=tr_id)
            pages.append(reply.body)
            if reply.tr_cont not in p.TR_CONT_MORE:
                return pages
            fk, nk = str(reply.body.get("ctx_area_fk100", "")), str(reply.body.get("ctx_area_nk100", ""))
            if not fk.strip() and not nk.strip():
                raise KisPagingError("KIS signalled more pages without continuation keys", tr_id=tr)
            params = {**params, "CTX_AREA_FK100": fk, "CTX_AREA_NK100": nk}
            tr_cont = p.TR_CONT_NEXT_REQUEST
        raise KisPagingError(f"more than {MAX_PAGES} pages", tr_id=tr)

    def _account_params(self) -> dict[str, str]:
        return {"CANO": self.account.cano, "ACNT_PRDT_CD": self.account.product}

    # -- quotations -----------------------------------------------------------------------------------------
    async def quote(self, code: str) -> Quote:
        reply = await self._call("GET", p.PATH_INQUIRE_PRICE, TR.PRICE,
                                 params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": code})
        o = reply.body.get("output") or {}
        price = _i(o.get("stck_prpr"))
        if price <= 0:
            raise KisNotFound(f"no price for {code}", msg_cd=str(reply.body.get("msg_cd", "")))
        return Quote(
            code=str(o.get("stck_shrn_iscd") or code), price=price, change=_i(o.get("prdy_vrss")),
            change_sign=str(o.get("prdy_vrss_sign", "3")), change_rate=_d(o.get("prdy_ctrt")),
            volume=_i(o.get("acml_vol")), traded_value=_i(o.get("acml_tr_pbmn")), open=_i(o.get("stck_oprc")),
            high=_i(o.get("stck_hgpr")), low=_i(o.get("stck_lwpr")), upper_limit=_i(o.get("stck_mxpr")),
            lower_limit=_i(o.get("stck_llam")), base_price=_i(o.get("stck_sdpr")),
            tick=_i(o.get("aspr_unit")) or p.tick_size(price), market_name=str(o.get("rprs_mrkt_kor_name", "")),
            sector=str(o.get("bstp_kor_isnm", "")), halted=str(o.get("temp_stop_yn", "N")) == "Y",
        )

    async def stock_info(self, code: str) -> StockInfo:
        try:
            reply = await self._call("GET", p.PATH_SEARCH_INFO, TR.SEARCH_INFO,
                                     params={"PDNO": code, "PRDT_TYPE_CD": "300"})
        except KisApiError as exc:
            if exc.rt_cd == "7":
                raise KisNotFound(f"no product {code}", msg_cd=exc.msg_cd, msg1=exc.msg1, rt_cd="7") from None
            raise
        o = reply.body.get("output") or {}
        return StockInfo(code=str(o.get("shtn_pdno") or code), isin=str(o.get("std_pdno", "")),
                         name=str(o.get("prdt_abrv_name") or o.get("prdt_name", "")),
                         name_en=str(o.get("prdt_eng_abrv_name") or o.get("prdt_eng_name", "")),
                         product_type=str(o.get("prdt_type_cd", "")))

    async def bars(self, code: str, period: str = "D", start: dt.date | None = None,
                   end: dt.date | None = None) -> list[Bar]:
        """Daily/weekly/monthly bars, newest first (at most 100 per KIS call; one call here)."""
        end = end or dt.datetime.now(KST).date()
        start = start or end - dt.timedelta(days={"D": 150, "W": 730, "M": 3650}.get(period, 150))
        reply = await self._call("GET", p.PATH_DAILY_CHART, TR.DAILY_CHART, params={
            "FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": code, "FID_INPUT_DATE_1": start.strftime("%Y%m%d"),
            "FID_INPUT_DATE_2": end.strftime("%Y%m%d"), "FID_PERIOD_DIV_CODE": period, "FID_ORG_ADJ_PRC": "0"})
        summary = reply.body.get("output1") or {}
        if _i(summary.get("stck_prpr")) <= 0:
            raise KisNotFound(f"no chart for {code}")
        bars = []
        for row in reply.body.get("output2") or []:
            if not row or not row.get("stck_bsop_date"):
                continue  # KIS may pad output2 with empty objects
            bars.append(Bar(date=dt.datetime.strptime(row["stck_bsop_date"], "%Y%m%d").date(),
                            open=_i(row.get("stck_oprc")), high=_i(row.get("stck_hgpr")),
                            low=_i(row.get("stck_lwpr")), close=_i(row.get("stck_clpr")),
                            volume=_i(row.get("acml_vol")), traded_value=_i(row.get("acml_tr_pbmn"))))
        return bars

    # -- account ---------------------------------------------------------------------------------------------
    async def balance(self) -> Balance:
        params = {**self._account_params(), "AFHR_FLPR_YN": "N", "OFL_YN": "", "INQR_DVSN": "01",
                  "UNPR_DVSN": "01", "FUND_STTL_ICLD_YN": "N", "FNCG_AMT_AUTO_RDPT_YN": "N", "PRCS_DVSN": "00"}
        pages = await self._pages(p.PATH_BALANCE, TR.BALANCE, params)
        holdings: list[Holding] = []
        for page in pages:
            for row in page.get("output1") or []:
                qty = _i(row.get("hldg_qty"))
                if qty <= 0:
                    continue  # sold-out rows linger until D+2
                holdings.append(Holding(
                    code=str(row.get("pdno", "")), name=str(row.get("prdt_name", "")), quantity=qty,
                    orderable_quantity=_i(row.get("ord_psbl_qty")), average_price=_d(row.get("pchs_avg_pric")),
                    purchase_amount=_i(row.get("pchs_amt")), current_price=_i(row.get("prpr")),
                    evaluation=_i(row.get("evlu_amt")), profit_loss=_i(row.get("evlu_pfls_amt")),
                    profit_loss_rate=_d(row.get("evlu_pfls_rt"))))
        summary_rows = pages[-1].get("output2") or [{}]
        s = summary_rows[0] if isinstance(summary_rows, list) else summary_rows
        return Balance(
            holdings=tuple(holdings), cash=_i(s.get("dnca_tot_amt")), cash_d2=_i(s.get("prvs_rcdl_excc_amt")),
            securities_evaluation=_i(s.get("scts_evlu_amt")), total_evaluation=_i(s.get("tot_evlu_amt")),
            purchase_total=_i(s.get("pchs_amt_smtl_amt")), profit_loss_total=_i(s.get("evlu_pfls_smtl_amt")),
            net_assets=_i(s.get("nass_amt")))

    async def buying_power(self, code: str, price: int | None = None) -> BuyingPower:
        """What the account can buy of ``code`` at ``price`` (None: a market order, reserved at the upper
        limit). Always asked with ``ORD_DVSN=01``: with ``00`` KIS leaves the stock's margin rate out and
        can approve a quantity it then refuses (§4.7); the limit price still goes in ``ORD_UNPR``."""
        reply = await self._call("GET", p.PATH_PSBL_ORDER, TR.PSBL_ORDER, params={
            **self._account_params(), "PDNO": code, "ORD_UNPR": str(price or 0),
            "ORD_DVSN": p.BUYING_POWER_DIVISION, "CMA_EVLU_AMT_ICLD_YN": "N", "OVRS_ICLD_YN": "N"})
        o = reply.body.get("output") or {}
        return BuyingPower(orderable_cash=_i(o.get("ord_psbl_cash")), calc_price=_i(o.get("psbl_qty_calc_unpr")),
                           max_quantity=_i(o.get("nrcvb_buy_qty")), max_amount=_i(o.get("nrcvb_buy_amt")))

    async def open_orders(self) -> list[OpenOrder]:
        """Today's orders with a quantity that can still be cancelled.

        The real server lists them with inquire-psbl-rvsecncl; the paper server does not offer that TR,
        so there they come from inquire-daily-ccld with ``CCLD_DVSN=02`` (unfilled).
        """
        if self.flavour == "real":
            pages = await self._pages(p.PATH_PSBL_RVSECNCL, TR.PSBL_RVSECNCL,
                                      {**self._account_params(), "INQR_DVSN_1": "0", "INQR_DVSN_2": "0"})
            return [
                OpenOrder(order_no=str(r.get("odno", "")), branch=str(r.get("ord_gno_brno", "")),
                          original_order_no=str(r.get("orgn_odno", "")), code=str(r.get("pdno", "")),
                          name=str(r.get("prdt_name", "")), side=_side(str(r.get("sll_buy_dvsn_cd", ""))),
                          division=str(r.get("ord_dvsn_cd", "")), quantity=_i(r.get("ord_qty")),
                          price=_i(r.get("ord_unpr")), filled_quantity=_i(r.get("tot_ccld_qty")),
                          cancellable_quantity=_i(r.get("psbl_qty")), time=str(r.get("ord_tmd", "")),
                          exchange=p.exchange_code(r.get("excg_id_dvsn_cd")))
                for page in pages for r in page.get("output") or [] if _i(r.get("psbl_qty")) > 0]
        today = dt.datetime.now(KST).date()
        return [
            OpenOrder(order_no=e.order_no, branch=e.branch, original_order_no=e.original_order_no, code=e.code,
                      name=e.name, side=e.side, division=e.division, quantity=e.quantity, price=e.price,
                      filled_quantity=e.filled_quantity, cancellable_quantity=e.remaining_quantity, time=e.time,
                      exchange=e.exchange)
            for e in await self.executions(today, today, unfilled_only=True)
            if not e.cancelled and e.remaining_quantity > 0]

    async def executions(self, start: dt.date, end: dt.date, *, code: str = "", side: OrderSide | None = None,
                         unfilled_only: bool = False) -> list[Execution]:
        """Orders and executions between two dates (newest first).

        KIS answers the last three months with one TR and older days with another (§4.6): a range across the
        edge is asked of each for its part, the recent one first."""
        since = p.daily_ccld_recent_since(dt.datetime.now(KST).date())
        spans: list[tuple[TR, dt.date, dt.date]] = []
        if end >= since:
            spans.append((TR.DAILY_CCLD, max(start, since), end))
        if start < since:
            spans.append((TR.DAILY_CCLD_OLD_PERIOD, start, min(end, since - dt.timedelta(days=1))))
        executions: list[Execution] = []
        for tr, first, last in spans:
            executions += await self._executions(tr, first, last, code=code, side=side, unfilled_only=unfilled_only)
        return executions

    async def _executions(self, tr: TR, start: dt.date, end: dt.date, *, code: str, side: OrderSide | None,
                          unfilled_only: bool) -> list[Execution]:
        params = {
            **self._account_params(), "INQR_STRT_DT": start.strftime("%Y%m%d"), "INQR_END_DT": end.strftime("%Y%m%d"),
            "SLL_BUY_DVSN_CD": {None: "00", OrderSide.SELL: p.Side.SELL, OrderSide.BUY: p.Side.BUY}[side],
            "INQR_DVSN": "00", "PDNO": code, "CCLD_DVSN": "02" if unfilled_only else "00", "ORD_GNO_BRNO": "",
            "ODNO": "", "INQR_DVSN_3": "00", "INQR_DVSN_1": "",
            # every exchange's orders on the real server (KRX alone would hide NXT and SOR ones); paper: KRX only
            "EXCG_ID_DVSN_CD": p.EXCHANGE_ALL if self.flavour == "real" else p.EXCHANGE_KRX}
        pages = await self._pages(p.PATH_DAILY_CCLD, tr, params)
        rows = [r for page in pages for r in page.get("output1") or [] if r and r.get("odno")]
        return [
            Execution(date=str(r.get("ord_dt", "")), time=str(r.get("ord_tmd", "")), order_no=str(r.get("odno", "")),
                      branch=str(r.get("ord_gno_brno", "")), original_order_no=str(r.get("orgn_odno", "")),
                      code=str(r.get("pdno", "")), name=str(r.get("prdt_name", "")),
                      side=_side(str(r.get("sll_buy_dvsn_cd", ""))), division=str(r.get("ord_dvsn_cd", "")),
                      quantity=_i(r.get("ord_qty")), price=_i(r.get("ord_unpr")),
                      filled_quantity=_i(r.get("tot_ccld_qty")), average_fill_price=_d(r.get("avg_prvs")),
                      remaining_quantity=_i(r.get("rmn_qty")), rejected_quantity=_i(r.get("rjct_qty")),
                      cancelled=str(r.get("cncl_yn", "N")) == "Y",
                      # the listing spells it excg_id_dvsn_Cd (sic, §4.6); read either casing
                      exchange=p.exchange_code(r.get("excg_id_dvsn_Cd") or r.get("excg_id_dvsn_cd")),
                      filled_amount=_given(r.get("tot_ccld_amt")))
            for r in rows]

    # -- orders ---------------------------------------------------------------------------------------------
    async def place_order(self, side: OrderSide, code: str, quantity: int, price: int | None) -> OrderAck:
        """One cash order, sent once. ``price=None`` is a market order."""
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        body = {**self._account_params(), "PDNO": code,
                "ORD_DVSN": p.OrderDivision.MARKET if price is None else p.OrderDivision.LIMIT,
                "ORD_QTY": str(quantity), "ORD_UNPR": "0" if price is None else str(price),
                "EXCG_ID_DVSN_CD": "KRX", "SLL_TYPE": "01" if side is OrderSide.SELL else "", "CNDT_PRIC": ""}
        tr = TR.BUY if side is OrderSide.BUY else TR.SELL
        reply = await self._call("POST", p.PATH_ORDER_CASH, tr, body={k: str(v) for k, v in body.items()}, order=True)
        return _order_ack(reply.body)

    async def cancel_order(self, order_no: str, branch: str, quantity: int = 0, *,
                           exchange: str | None = None) -> OrderAck:
        """Cancel the remaining quantity (``quantity=0``) or part of an order, on the order's own exchange
        (``exchange`` as listed for it; None: looked up in today's open orders)."""
        body = {**self._account_params(), "KRX_FWDG_ORD_ORGNO": branch, "ORGN_ODNO": order_no,
                "ORD_DVSN": p.OrderDivision.LIMIT, "RVSE_CNCL_DVSN_CD": p.CANCEL, "ORD_QTY": str(quantity),
                "ORD_UNPR": "0", "QTY_ALL_ORD_YN": "N" if quantity else "Y",
                "EXCG_ID_DVSN_CD": await self._exchange_of(order_no, exchange)}
        reply = await self._call("POST", p.PATH_ORDER_RVSECNCL, TR.REVISE_CANCEL, body=body, order=True)
        return _order_ack(reply.body)

    async def revise_order(self, order_no: str, branch: str, price: int | None, quantity: int = 0, *,
                           exchange: str | None = None) -> OrderAck:
        """Revise the remaining quantity (``quantity=0``) or part of an order to ``price`` (None: market),
        on the order's own exchange (``exchange`` as listed for it; None: looked up in today's open orders)."""
        body = {**self._account_params(), "KRX_FWDG_ORD_ORGNO": branch, "ORGN_ODNO": order_no,
                "ORD_DVSN": p.OrderDivision.MARKET if price is None else p.OrderDivision.LIMIT,
                "RVSE_CNCL_DVSN_CD": p.REVISE, "ORD_QTY": str(quantity), "ORD_UNPR": str(price or 0),
                "QTY_ALL_ORD_YN": "N" if quantity else "Y",
                "EXCG_ID_DVSN_CD": await self._exchange_of(order_no, exchange)}
        reply = await self._call("POST", p.PATH_ORDER_RVSECNCL, TR.REVISE_CANCEL, body=body, order=True)
        return _order_ack(reply.body)

    async def _exchange_of(self, order_no: str, exchange: str | None) -> str:
        """``EXCG_ID_DVSN_CD`` for a revise or cancel: the order's own exchange (KIS refuses a cancel sent to
        another one, §4.2). The paper server takes KRX only. A failed lookup sends nothing."""
        if exchange is not None:
            return p.exchange_code(exchange)
        if self.flavour == "virtual":
            return p.EXCHANGE_KRX
        try:
            orders = await self.open_orders()
        except KisError as exc:
            exc.maybe_sent = False  # the revise or cancel itself was never sent
            raise
        key = p.order_no_key(order_no)
        return next((o.exchange for o in orders if p.order_no_key(o.order_no) == key), p.EXCHANGE_KRX)


def _order_ack(body: dict[str, Any]) -> OrderAck:
    out = {str(k).upper(): v for k, v in (body.get("output") or {}).items()}
    order_no = str(out.get("ODNO", ""))
    if not order_no:
        raise KisServerError("order reply without ODNO")
    return OrderAck(order_no=order_no, branch=str(out.get("KRX_FWDG_ORD_ORGNO", "")), time=str(out.get("ORD_TMD", "")))


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _gateway_error(status: int, data: dict[str, Any], tr_id: str) -> KisError | None:
    """The typed error for a gateway reply (an ``EGW…`` code, whatever the HTTP status: KIS's backtester
    retries ``EGW00201`` found in an HTTP-200 body), or None when the reply carries no gateway code."""
    msg_cd = str(data.get("msg_cd") or data.get("error_code") or "")
    msg1 = str(data.get("msg1") or data.get("error_description") or "")
    if not msg_cd.startswith(p.EGW_PREFIX):
        return None
    kw: dict[str, Any] = {"msg_cd": msg_cd, "msg1": msg1, "rt_cd": str(data.get("rt_cd", "")),
                          "http_status": status, "tr_id": tr_id}
    if msg_cd == p.EGW_RATE_LIMIT:
        return KisRateLimited("KIS rate limit", **kw)
    if msg_cd in (p.EGW_TOKEN_EXPIRED, p.EGW_TOKEN_INVALID):
        return KisTokenExpired("KIS token no longer valid", **kw)
    if msg_cd == p.EGW_TOKEN_TOO_OFTEN:
        return KisTokenIssueThrottled("KIS allows one token a minute", **kw)
    if msg_cd in p.EGW_AUTH_CODES:
        return KisAuthError("KIS refused the app key", **kw)
    return KisGatewayError("KIS gateway error", **kw)
