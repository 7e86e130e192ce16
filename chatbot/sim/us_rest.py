"""The simulator's US REST endpoints (KIS_OVERSEAS.md §2–§9, checklist §11), for one server flavour.

Routes are added to :class:`chatbot.sim.rest.RestApi`, so tokens, rate limits, faults, hashkeys,
account binding and header casing are the domestic ones. Each handler checks its TR ID first (paper:
the ``V`` family, and for sells both ``VTTT1001U`` and ``VTTT1006U``; a real TR on the paper host
answers "모의투자 TR 이 아닙니다."), then moves the US clock (:meth:`UsTrading.advance`) and answers.
What the paper server does not offer is refused as KIS refuses it: session order types, daytime
orders, the reservation list, and (unless ``SimulatorOptions.us_paper_nccs``) ``inquire-nccs``. Not
simulated: the real host's daytime-session orders (§7) and TWAP/VWAP orders (``ORD_DVSN`` 35/36).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from chatbot.kis import overseas_protocol as o
from chatbot.kis import protocol as p
from chatbot.kis.overseas_protocol import UsExchange, UsOrderDivision, UsTR
from chatbot.markets.us_hours import NEW_YORK
from chatbot.sim import us_payloads as pay
from chatbot.sim.exchange import SimReject
from chatbot.sim.rest import Call, Refusal, Reply, Route, _envelope, _ok
from chatbot.sim.us_market import UNITS
from chatbot.sim.us_rejections import ORDER_OK, us_rejection

if TYPE_CHECKING:
    from chatbot.sim.rest import RestApi

_DAYTIME_CODES = {e.codes.daytime: e for e in UsExchange}
US_PRODUCT_TYPES = frozenset(e.codes.product_type for e in UsExchange)  # search-info PRDT_TYPE_CD
_SERVED_DIVISIONS = frozenset(UsOrderDivision) - {UsOrderDivision.TWAP, UsOrderDivision.VWAP}


def _input_error(field: str) -> Refusal:
    return Refusal(200, "2", "OPSQ2001", f"ERROR : INPUT INVALID_CHECK_{field}")


def _units(text: str) -> int:
    """A price text in units of $0.0001 (``SimReject`` when it is not a price on that grid)."""
    try:
        value = Decimal((text or "").strip() or "0")
    except InvalidOperation:
        raise SimReject("bad_price", text) from None
    if not value.is_finite() or value < 0:
        raise SimReject("bad_price", text)
    scaled = value * UNITS
    if scaled != scaled.to_integral_value():
        raise SimReject("off_tick", text)
    return int(scaled)


def _quantity(text: Any, allow_zero: bool = False) -> int:
    value = str(text or "").strip() or ("0" if allow_zero else "")
    if not value.isdigit() or (int(value) == 0 and not allow_zero):
        raise SimReject("bad_quantity", value)
    return int(value)


def _date(text: str, default: dt.date) -> dt.date:
    text = (text or "").strip()
    if len(text) != 8 or not text.isdigit():
        return default
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return default


class UsRestApi:
    def __init__(self, api: RestApi) -> None:
        self.api = api
        self.sim = api.sim
        self.flavour = api.flavour

    @property
    def paper(self) -> bool:
        return self.flavour == "virtual"

    def routes(self) -> dict[str, Route]:
        def wrap(handler: Callable[[Call], Reply]) -> Callable[[Call], Reply]:
            def run(call: Call) -> Reply:
                reply = handler(call)
                if self.sim.us_trading.dirty:
                    reply.mutated = True
                return reply
            return run

        table: dict[str, tuple[str, Callable[[Call], Reply]]] = {
            o.PATH_PRICE: ("GET", self.price), o.PATH_PRICE_DETAIL: ("GET", self.price_detail),
            o.PATH_DAILY_PRICE: ("GET", self.daily_price), o.PATH_ORDER: ("POST", self.order),
            o.PATH_ORDER_RVSECNCL: ("POST", self.revise_cancel), o.PATH_BALANCE: ("GET", self.balance),
            o.PATH_PRESENT_BALANCE: ("GET", self.present_balance), o.PATH_PSAMOUNT: ("GET", self.psamount),
            o.PATH_NCCS: ("GET", self.nccs), o.PATH_CCNL: ("GET", self.ccnl), o.PATH_ORDER_RESV: ("POST", self.reserve),
            o.PATH_ORDER_RESV_CCNL: ("POST", self.cancel_reservation),
            o.PATH_ORDER_RESV_LIST: ("GET", self.reservations),
            o.PATH_DAYTIME_ORDER: ("POST", self.daytime), o.PATH_DAYTIME_RVSECNCL: ("POST", self.daytime),
        }
        return {path: Route(method, wrap(handler)) for path, (method, handler) in table.items()}

    # -- common ---------------------------------------------------------------------------------------
    def _tr(self, call: Call, *trs: UsTR) -> UsTR:
        for tr in trs:
            if call.tr_id in o.accepted_trs(tr, self.flavour):
                return tr
        if self.paper and any(call.tr_id == str(tr) for tr in trs):
            raise Refusal(500, "1", p.OPSQ_UNKNOWN_SERVICE, o.MSG_NOT_PAPER_TR)
        raise Refusal(500, "1", p.OPSQ_UNKNOWN_SERVICE, "없는 서비스 코드 입니다")

    def _unsupported(self) -> Refusal:
        return Refusal(200, "1", p.OPSQ_UNKNOWN_SERVICE, o.MSG_PAPER_UNSUPPORTED)

    def _now(self) -> dt.datetime:
        now = self.sim.now()
        self.sim.us_trading.advance(now)
        return now

    def _reject(self, exc: SimReject) -> Reply:
        return Reply(_envelope(*us_rejection(self.flavour, exc.reason, self.sim.options.us_closed_msg_cd)),
                     mutated=True)

    def _order_reply(self, kind: str, output: dict[str, str]) -> Reply:
        msg_cd, msg1 = ORDER_OK[self.flavour][kind]
        return Reply(_ok(msg_cd, msg1, output=output), mutated=True)

    @staticmethod
    def _order_exchange(body: dict[str, Any]) -> UsExchange:
        exchange = UsExchange.of_order_code(str(body.get("OVRS_EXCG_CD", "")).strip())
        if exchange is None:
            raise SimReject("bad_exchange", str(body.get("OVRS_EXCG_CD", "")))
        return exchange

    def _page(self, call: Call, rows: list[dict[str, str]], size: int, account_id: str
              ) -> tuple[list[dict[str, str]], str, dict[str, str]]:
        """A page of ``rows`` (CTX_AREA_NK200 is the offset; header tr_cont F/M for more, D/E at the end)."""
        nk = call.query.get("CTX_AREA_NK200", "").strip()
        offset = int(nk) if nk.isdigit() and call.tr_cont_in == p.TR_CONT_NEXT_REQUEST else 0
        page = rows[offset: offset + size]
        if offset + size < len(rows):
            key = account_id.lstrip("V").replace("-", "^")
            return page, "F" if offset == 0 else "M", {"ctx_area_fk200": key, "ctx_area_nk200": str(offset + size)}
        return page, "D" if offset == 0 else "E", {"ctx_area_fk200": "", "ctx_area_nk200": ""}

    def _cano(self, account_id: str) -> tuple[str, str]:
        cano, _, product = account_id.lstrip("V").partition("-")
        return cano, product

    # -- quotations -----------------------------------------------------------------------------------
    def _quoted(self, call: Call) -> tuple[Any, UsExchange | None]:
        code = call.query.get("EXCD", "").strip().upper()
        exchange = UsExchange.of_quote_code(code) or _DAYTIME_CODES.get(code)
        symbol = call.query.get("SYMB", "").strip().upper()
        state = self.sim.us_market.quoted(symbol, exchange) if exchange is not None and symbol else None
        return state, exchange

    def price(self, call: Call) -> Reply:
        self._tr(call, UsTR.PRICE)
        self._now()
        state, _ = self._quoted(call)
        return Reply(_ok(output=pay.price_output(state)))

    def price_detail(self, call: Call) -> Reply:
        self._tr(call, UsTR.PRICE_DETAIL)
        self._now()
        state, _ = self._quoted(call)
        return Reply(_ok(output=pay.price_detail_output(self.sim.us_market, state, self.sim.options.krw_per_usd)))

    def daily_price(self, call: Call) -> Reply:
        self._tr(call, UsTR.DAILY_PRICE)
        now = self._now()
        gubn = call.query.get("GUBN", "0").strip() or "0"
        if gubn not in o.BAR_PERIODS.values():
            raise _input_error("GUBN")
        if call.query.get("EXCD", "").strip().upper() in _DAYTIME_CODES:
            state = None  # KIS keeps no daily bars for the daytime session
        else:
            state, _ = self._quoted(call)
        reference = _date(call.query.get("BYMD", ""), now.astimezone(NEW_YORK).date())
        bars = self.sim.us_market.bars(state, gubn, reference) if state is not None else []
        return Reply(_ok(**pay.daily_price_payload(self.sim.us_market, state, bars)))

    def search_info(self, call: Call) -> Reply:
        """Domestic search-info asked with a US product type (512/513/529)."""
        wanted = call.query.get("PRDT_TYPE_CD", "").strip()
        state = self.sim.us_market.get(call.query.get("PDNO", "").strip().upper())
        if state is None or state.exchange.codes.product_type != wanted:
            return Reply(_envelope("7", "KIOK0560", "조회할 내용이 없습니다"))
        return Reply(_ok(output=pay.search_info_output(state)))

    # -- orders ---------------------------------------------------------------------------------------
    def _division(self, body: dict[str, Any], side: str) -> UsOrderDivision:
        try:
            division = UsOrderDivision(str(body.get("ORD_DVSN", "")).strip())
        except ValueError:
            raise SimReject("bad_division") from None
        allowed = o.BUY_DIVISIONS if side == o.SIDE_BUY else o.SELL_DIVISIONS
        if division not in allowed or division not in _SERVED_DIVISIONS:
            raise SimReject("bad_division", division.value)
        if self.paper and division not in o.PAPER_DIVISIONS:
            raise SimReject("bad_division", division.value)
        return division

    def order(self, call: Call) -> Reply:
        tr = self._tr(call, UsTR.BUY, UsTR.SELL)
        body = {k.upper(): v for k, v in call.body.items()}
        self.api._check_hashkey(call)
        account_id = self.api._account(call, body)
        now = self._now()
        side = o.SIDE_BUY if tr is UsTR.BUY else o.SIDE_SELL
        try:
            exchange = self._order_exchange(body)
            division = self._division(body, side)
            quantity = _quantity(body.get("ORD_QTY"))
            price = _units(str(body.get("OVRS_ORD_UNPR", "")))
            order = self.sim.us_trading.place(account_id, str(body.get("PDNO", "")).strip().upper(), exchange, side,
                                              division, quantity, price, now)
        except SimReject as exc:
            return self._reject(exc)
        self.sim.orders_accepted += 1
        return self._order_reply("buy" if side == o.SIDE_BUY else "sell", {
            "KRX_FWDG_ORD_ORGNO": order.branch, "ODNO": order.order_no, "ORD_TMD": order.kst_time})

    def revise_cancel(self, call: Call) -> Reply:
        self._tr(call, UsTR.REVISE_CANCEL)
        body = {k.upper(): v for k, v in call.body.items()}
        self.api._check_hashkey(call)
        account_id = self.api._account(call, body)
        now = self._now()
        trading = self.sim.us_trading
        try:
            exchange = self._order_exchange(body)
            original = str(body.get("ORGN_ODNO", "")).strip()
            target = trading.account(account_id).find(original)
            symbol = str(body.get("PDNO", "")).strip().upper()
            if target is None or target.symbol != symbol or target.us_exchange is not exchange:
                raise SimReject("nothing_to_cancel", original)
            quantity = _quantity(body.get("ORD_QTY"), allow_zero=True)
            kind = str(body.get("RVSE_CNCL_DVSN_CD", "")).strip()
            if kind == o.CANCEL:
                record = trading.cancel(account_id, original, quantity, now)
                label = "cancel"
            elif kind == o.REVISE:
                record = trading.revise(account_id, original, quantity, _units(str(body.get("OVRS_ORD_UNPR", ""))),
                                        now)
                label = "revise"
            else:
                raise SimReject("bad_division", kind)
        except SimReject as exc:
            return self._reject(exc)
        return self._order_reply(label, {"KRX_FWDG_ORD_ORGNO": record.branch, "ODNO": record.order_no,
                                         "ORD_TMD": record.kst_time})

    def reserve(self, call: Call) -> Reply:
        tr = self._tr(call, UsTR.RESERVE_BUY, UsTR.RESERVE_SELL)
        body = {k.upper(): v for k, v in call.body.items()}
        self.api._check_hashkey(call)
        account_id = self.api._account(call, body)
        now = self._now()
        side = o.SIDE_BUY if tr is UsTR.RESERVE_BUY else o.SIDE_SELL
        try:
            exchange = self._order_exchange(body)
            try:
                division = UsOrderDivision(str(body.get("ORD_DVSN", "")).strip() or UsOrderDivision.LIMIT)
            except ValueError:
                raise SimReject("bad_division") from None
            allowed = o.RESERVE_BUY_DIVISIONS if side == o.SIDE_BUY else o.RESERVE_SELL_DIVISIONS
            if division not in allowed:
                raise SimReject("bad_division", division.value)
            r = self.sim.us_trading.reserve(account_id, str(body.get("PDNO", "")).strip().upper(), exchange, side,
                                            division, _quantity(body.get("FT_ORD_QTY")),
                                            _units(str(body.get("FT_ORD_UNPR3", ""))), now)
        except SimReject as exc:
            return self._reject(exc)
        return self._order_reply("reserve", {"ODNO": r.reservation_no, "RSVN_ORD_RCIT_DT": r.received_date,
                                             "OVRS_RSVN_ODNO": r.reservation_no})

    def cancel_reservation(self, call: Call) -> Reply:
        self._tr(call, UsTR.RESERVE_CANCEL)
        body = {k.upper(): v for k, v in call.body.items()}
        self.api._check_hashkey(call)
        account_id = self.api._account(call, body)
        self._now()
        try:
            r = self.sim.us_trading.cancel_reservation(account_id, str(body.get("RSVN_ORD_RCIT_DT", "")).strip(),
                                                       str(body.get("OVRS_RSVN_ODNO", "")))
        except SimReject as exc:
            return self._reject(exc)
        return self._order_reply("reserve_cancel", {"OVRS_RSVN_ODNO": r.reservation_no})

    # -- account ----------------------------------------------------------------------------------------
    def _balance_exchanges(self, code: str) -> frozenset[UsExchange]:
        code = code.strip().upper()
        if code in ("", o.ALL_EXCHANGES_WILDCARD) or (code == o.ALL_US and not self.paper):
            return frozenset(UsExchange)
        if code == o.REAL_BALANCE_NASDAQ_ONLY and not self.paper:
            return frozenset({UsExchange.NASDAQ})
        exchange = UsExchange.of_order_code(code)
        if exchange is None:
            raise _input_error("OVRS_EXCG_CD")
        return frozenset({exchange})

    def balance(self, call: Call) -> Reply:
        self._tr(call, UsTR.BALANCE)
        account_id = self.api._account(call, call.query)
        self._now()
        if call.query.get("TR_CRCY_CD", "").strip().upper() not in ("", o.CURRENCY):
            return Reply(_ok(output1=[], output2=pay.empty(o.BALANCE_SUMMARY_FIELDS), ctx_area_fk200="",
                             ctx_area_nk200=""))
        exchanges = self._balance_exchanges(call.query.get("OVRS_EXCG_CD", ""))
        acct = self.sim.us_trading.account(account_id)
        cano, product = self._cano(account_id)
        rows = pay.holding_rows(self.sim.us_market, acct, cano, product, exchanges)
        page, tr_cont, ctx = self._page(call, rows, self.sim.options.us_balance_page_size or o.BALANCE_PAGE_SIZE,
                                        account_id)
        summary = pay.balance_summary(self.sim.us_market, acct, exchanges)
        return Reply(_ok(output1=page, output2=summary, **ctx), tr_cont)

    def present_balance(self, call: Call) -> Reply:
        self._tr(call, UsTR.PRESENT_BALANCE)
        q = call.query
        account_id = self.api._account(call, q)
        self._now()
        nation = q.get("NATN_CD", "000").strip() or "000"
        market_code = q.get("TR_MKET_CD", "00").strip() or "00"
        markets = frozenset(e for e in UsExchange if market_code in ("00", e.codes.present_balance))
        if nation not in ("000", o.NATION_CODE):
            markets = frozenset()
        payload = pay.present_balance_payload(
            self.sim.us_market, self.sim.us_trading.account(account_id), self.sim.options.krw_per_usd,
            holdings=not self.paper, foreign_amounts=q.get("WCRC_FRCR_DVSN_CD", "02").strip() != "01",
            markets=markets)
        if self.paper:  # KIS's paper server fills only output3, the KRW totals (KIS_OVERSEAS.md §5.2)
            payload["output2"] = []
        return Reply(_ok(**payload))

    def psamount(self, call: Call) -> Reply:
        self._tr(call, UsTR.PSAMOUNT)
        q = call.query
        account_id = self.api._account(call, q)
        self._now()
        try:
            exchange = self._order_exchange(q)
            price = _units(q.get("OVRS_ORD_UNPR", ""))
        except SimReject:
            raise _input_error("OVRS_ORD_UNPR") from None
        state = self.sim.us_market.quoted(q.get("ITEM_CD", "").strip().upper(), exchange)
        if price <= 0:
            price = state.price if state is not None else 0
        acct = self.sim.us_trading.account(account_id)
        return Reply(_ok(output=pay.psamount_output(acct, price, self.sim.options.krw_per_usd)))

    def nccs(self, call: Call) -> Reply:
        self._tr(call, UsTR.NCCS)
        if self.paper and not self.sim.options.us_paper_nccs:
            raise self._unsupported()
        q = call.query
        account_id = self.api._account(call, q)
        self._now()
        code = q.get("OVRS_EXCG_CD", "").strip().upper()
        exchanges = frozenset(UsExchange) if code in ("", o.ALL_US) else self._balance_exchanges(code)
        orders = [x for x in self.sim.us_trading.account(account_id).open_orders() if x.us_exchange in exchanges]
        if q.get("SORT_SQN", "").strip().upper() != o.SORT_ASCENDING:
            orders.reverse()
        rows = [pay.nccs_row(self.sim.us_market, x) for x in orders]
        page, tr_cont, ctx = self._page(call, rows, o.NCCS_PAGE_SIZE, account_id)
        return Reply(_ok(output=page, **ctx), tr_cont)

    def ccnl(self, call: Call) -> Reply:
        self._tr(call, UsTR.CCNL)
        q = call.query
        account_id = self.api._account(call, q)
        self._now()
        pdno = q.get("PDNO", "").strip().upper()
        side = q.get("SLL_BUY_DVSN", "00").strip() or "00"
        fill = q.get("CCLD_NCCS_DVSN", "00").strip() or "00"
        code = q.get("OVRS_EXCG_CD", "").strip().upper()
        if self.paper:  # "모의투자계좌의 경우 ""(전체 조회)만 가능" (§6.3)
            for name, value, allowed in (("PDNO", pdno, ""), ("SLL_BUY_DVSN", side, "00"),
                                         ("CCLD_NCCS_DVSN", fill, "00"), ("OVRS_EXCG_CD", code, "")):
                if value != allowed:
                    raise _input_error(name)
        start = q.get("ORD_STRT_DT", "").strip() or "00000101"
        end = q.get("ORD_END_DT", "").strip() or "99991231"
        exchanges = frozenset(UsExchange) if code in ("", o.ALL_US, o.ALL_EXCHANGES_WILDCARD) else \
            self._balance_exchanges(code)
        orders = []
        for x in self.sim.us_trading.account(account_id).orders:
            if not start <= x.local_date <= end or x.us_exchange not in exchanges:
                continue
            if pdno not in ("", o.ALL_EXCHANGES_WILDCARD) and x.symbol != pdno:
                continue
            if side in (o.SIDE_SELL, o.SIDE_BUY) and x.side != side:
                continue
            if (fill == o.CCNL_FILLED and not x.filled_qty) or (fill == o.CCNL_UNFILLED and x.remaining <= 0):
                continue
            orders.append(x)
        if not self.paper and q.get("SORT_SQN", "").strip().upper() == o.SORT_DESCENDING:
            orders.reverse()  # AS 역순; DS 정순 (oldest first) is also the paper server's only order
        rows = [pay.ccnl_row(self.sim.us_market, x) for x in orders]
        page, tr_cont, ctx = self._page(call, rows, o.CCNL_PAGE_SIZE[self.flavour], account_id)
        return Reply(_ok(output=page, **ctx), tr_cont)

    def daytime(self, call: Call) -> Reply:
        """Daytime-session orders (§7): "모의투자 미지원" on paper; the real host's are not simulated."""
        if self.paper:
            raise self._unsupported()
        raise Refusal(404, "1", "EGW00001", "존재하지 않는 URL 입니다.")

    def reservations(self, call: Call) -> Reply:
        if self.paper:  # "모의투자는 사용 불가합니다." (order-resv-list)
            raise self._unsupported()
        self._tr(call, UsTR.RESERVE_LIST)
        q = call.query
        account_id = self.api._account(call, q)
        self._now()
        start = q.get("INQR_STRT_DT", "").strip() or "00000101"
        end = q.get("INQR_END_DT", "").strip() or "99991231"
        acct = self.sim.us_trading.account(account_id)
        rows = [pay.reservation_row(self.sim.us_market, acct, r) for r in reversed(acct.reservations)
                if start <= r.received_date <= end]
        page, tr_cont, ctx = self._page(call, rows, o.RESERVE_LIST_PAGE_SIZE, account_id)
        return Reply(_ok(output=page, **ctx), tr_cont)
