"""KIS's US-stock endpoints (해외주식) on top of :class:`~chatbot.kis.rest.KisRestClient`.

The REST client paces every call, keeps the token, adds the hashkey to orders and types errors;
this module builds each request exactly as ``KIS_OVERSEAS.md`` gives it and types each reply.
What differs between the real and the paper server is decided here, in one place per call:

* balance: the real server answers every US exchange for ``OVRS_EXCG_CD=NASD``; paper treats NASD as
  NASDAQ alone, so paper asks NASD, NYSE and AMEX in turn (§5.1);
* open orders: real asks ``inquire-nccs``; the paper server does not offer it (portal), so paper
  lists today's orders with ``inquire-ccnl`` and keeps those with an unfilled quantity (§6.2);
* order history on paper takes only ``PDNO ""``, ``SLL_BUY_DVSN 00``, ``CCLD_NCCS_DVSN 00`` and
  ``OVRS_EXCG_CD ""``: the filters are applied here instead (§6.3);
* paper trades only limit orders (``ORD_DVSN 00``); MOO and MOC exist only for sells (§3);
* present balance: on paper only ``output3`` (KRW totals) is meaningful (§5.2), so the dollar cash is
  read from there, at the rate of the buyable-amount query (``exrt``).

An order is sent once; :class:`chatbot.kis.overseas_orders.UsOrderSubmitter` decides what a failure
means, as :class:`chatbot.kis.orders.OrderSubmitter` does for domestic orders.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from chatbot.kis import overseas_protocol as o
from chatbot.kis import protocol as p
from chatbot.kis.errors import KisNotFound, KisPagingError, KisServerError
from chatbot.kis.models import OrderSide
from chatbot.kis.overseas_models import (
    Money,
    UsAccountTotals,
    UsBalance,
    UsBar,
    UsBuyingPower,
    UsCash,
    UsHolding,
    UsOrder,
    UsOrderAck,
    UsPresentBalance,
    UsQuote,
    UsQuoteDetail,
    UsReservation,
    UsReservationAck,
)
from chatbot.kis.overseas_protocol import UsExchange, UsOrderDivision, UsTR
from chatbot.kis.rest import KisRestClient, RawReply
from chatbot.markets.money import Currency
from chatbot.markets.us_hours import NEW_YORK, SEOUL

MAX_PAGES = 100
DEFAULT_BAR_SPAN: dict[str, dt.timedelta] = {
    "D": dt.timedelta(days=150), "W": dt.timedelta(days=730), "M": dt.timedelta(days=3650)}
_ZERO = Decimal(0)
_CENT = Decimal("0.01")
# What the buyable-amount query is asked about on paper, only for its KRW rate (exrt, the same for every
# symbol): a listing KIS's paper server trades, at a price on the tick.
PAPER_RATE_PROBE: tuple[str, UsExchange, Decimal] = ("AAPL", UsExchange.NASDAQ, Decimal("1.00"))


class UsOrderNotOffered(ValueError):
    """KIS does not offer this US order (type, side or server); nothing was sent."""


def _dec(value: Any) -> Decimal:
    if value is None or value == "":
        return _ZERO
    try:
        return Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        return _ZERO


def _int(value: Any) -> int:
    return int(_dec(value))


def _usd(value: Any) -> Money:
    return Money(_dec(value), Currency.USD)


def _krw(value: Any) -> Money:
    return Money(_dec(value), Currency.KRW)


def _paper_cash(totals: UsAccountTotals, rate: Decimal) -> tuple[UsCash, ...]:
    """The dollar cash of a paper account from the present balance's KRW totals (output3) at ``rate``;
    none when KIS gave no rate (a figure of 0 would read as an empty account)."""
    if rate <= 0:
        return ()

    def dollars(won: Money) -> Money:
        return Money((won.amount / rate).quantize(_CENT, ROUND_HALF_UP), Currency.USD)

    return (UsCash(currency=o.CURRENCY, cash=dollars(totals.foreign_evaluation),
                   withdrawable=dollars(totals.foreign_usable), krw_rate=rate),)


def _date(text: Any) -> dt.date | None:
    text = str(text or "").strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def _moment(day: Any, hms: Any, zone: dt.tzinfo) -> dt.datetime | None:
    date = _date(day)
    text = str(hms or "").strip()
    if date is None or len(text) != 6 or not text.isdigit():
        return None
    try:
        return dt.datetime.combine(date, dt.time(int(text[:2]), int(text[2:4]), int(text[4:])), zone)
    except ValueError:
        return None


def nearest_kst(hms: str, now: dt.datetime, zone: dt.tzinfo = SEOUL) -> dt.datetime:
    """An ``HHMMSS`` of ``zone`` (KST unless said) placed on the date that puts it nearest to ``now`` (ORD_TMD
    has no date), in that zone."""
    local = now.astimezone(zone)
    try:
        t = dt.time(int(hms[:2]), int(hms[2:4]), int(hms[4:6]))
    except (ValueError, IndexError):
        return local
    candidates = [dt.datetime.combine(local.date() + dt.timedelta(days=d), t, zone) for d in (-1, 0, 1)]
    return min(candidates, key=lambda c: abs(c - local))


def _side(code: Any) -> OrderSide:
    return OrderSide.BUY if str(code) == o.SIDE_BUY else OrderSide.SELL


def order_price_text(price: Decimal) -> str:
    """``OVRS_ORD_UNPR`` of a priced order: the tick's decimals (``"190.50"``, ``"0.5123"``)."""
    return f"{price:.2f}" if price >= 1 else f"{price:.4f}"


def _signed_change(diff: Decimal, sign: str) -> Decimal:
    return -abs(diff) if sign in ("4", "5") else abs(diff)


class KisOverseasClient:
    """US stocks through one app key's :class:`KisRestClient` (same pacing, token and account)."""

    def __init__(self, rest: KisRestClient) -> None:
        self.rest = rest

    @property
    def flavour(self) -> p.Flavour:
        return self.rest.flavour

    @property
    def paper(self) -> bool:
        return self.rest.flavour == "virtual"

    def _account(self) -> dict[str, str]:
        return {"CANO": self.rest.account.cano, "ACNT_PRDT_CD": self.rest.account.product}

    async def _get(self, path: str, tr: UsTR, params: dict[str, str], tr_cont: str = "") -> RawReply:
        return await self.rest._call("GET", path, tr, params=params, tr_cont=tr_cont,
                                     tr_id=o.tr_for(tr, self.flavour))

    async def _post(self, path: str, tr: UsTR, body: dict[str, str]) -> RawReply:
        return await self.rest._call("POST", path, tr, body=body, order=True, tr_id=o.tr_for(tr, self.flavour))

    async def _pages(self, path: str, tr: UsTR, params: dict[str, str]) -> list[dict[str, Any]]:
        """Every page of a query paged with ``CTX_AREA_FK200``/``NK200`` and header ``tr_cont``."""
        pages: list[dict[str, Any]] = []
        params = {**params, "CTX_AREA_FK200": "", "CTX_AREA_NK200": ""}
        tr_cont = ""
        for _ in range(MAX_PAGES):
            reply = await self._get(path, tr, params, tr_cont)
            pages.append(reply.body)
            if reply.tr_cont not in p.TR_CONT_MORE:
                return pages
            fk, nk = str(reply.body.get("ctx_area_fk200", "")), str(reply.body.get("ctx_area_nk200", ""))
            if not fk.strip() and not nk.strip():
                raise KisPagingError("KIS signalled more pages without continuation keys", tr_id=str(tr))
            params = {**params, "CTX_AREA_FK200": fk, "CTX_AREA_NK200": nk}
            tr_cont = p.TR_CONT_NEXT_REQUEST
        raise KisPagingError(f"more than {MAX_PAGES} pages", tr_id=str(tr))

    # -- quotations (shared TRs on both hosts) ----------------------------------------------------------
    @staticmethod
    def _quote_params(symbol: str, exchange: UsExchange) -> dict[str, str]:
        return {"AUTH": "", "EXCD": exchange.quote_code, "SYMB": symbol}

    async def quote(self, symbol: str, exchange: UsExchange) -> UsQuote:
        reply = await self._get(o.PATH_PRICE, UsTR.PRICE, self._quote_params(symbol, exchange))
        out = reply.body.get("output") or {}
        if not str(out.get("last", "")).strip():  # KIS's answer for a symbol not listed there
            raise KisNotFound(f"no US price for {symbol} on {exchange.name}", msg_cd=str(reply.body.get("msg_cd", "")))
        sign = str(out.get("sign", "3"))
        return UsQuote(
            symbol=symbol, exchange=exchange, realtime_key=str(out.get("rsym", "")), price=_usd(out.get("last")),
            previous_close=_usd(out.get("base")), change=Money(_signed_change(_dec(out.get("diff")), sign), Currency.USD),
            sign=sign, change_rate=_dec(out.get("rate")), volume=_int(out.get("tvol")),
            traded_value=_usd(out.get("tamt")), decimals=_int(out.get("zdiv")), orderable=str(out.get("ordy", "")))

    async def locate(self, symbol: str) -> UsQuote:
        """The quote of ``symbol`` on whichever US exchange lists it (NASDAQ, NYSE, AMEX in turn)."""
        for exchange in UsExchange:
            try:
                return await self.quote(symbol, exchange)
            except KisNotFound:
                continue
        raise KisNotFound(f"{symbol} is not listed on a US exchange")

    async def quote_detail(self, symbol: str, exchange: UsExchange) -> UsQuoteDetail:
        reply = await self._get(o.PATH_PRICE_DETAIL, UsTR.PRICE_DETAIL, self._quote_params(symbol, exchange))
        out = reply.body.get("output") or {}
        if not str(out.get("last", "")).strip():
            raise KisNotFound(f"no US price for {symbol} on {exchange.name}", msg_cd=str(reply.body.get("msg_cd", "")))
        return UsQuoteDetail(
            symbol=symbol, exchange=exchange, price=_usd(out.get("last")), previous_close=_usd(out.get("base")),
            open=_usd(out.get("open")), high=_usd(out.get("high")), low=_usd(out.get("low")),
            upper_limit=_usd(out.get("uplp")), lower_limit=_usd(out.get("dnlp")), volume=_int(out.get("tvol")),
            traded_value=_usd(out.get("tamt")), previous_volume=_int(out.get("pvol")),
            week52_high=_usd(out.get("h52p")), week52_high_date=_date(out.get("h52d")),
            week52_low=_usd(out.get("l52p")), week52_low_date=_date(out.get("l52d")), per=_dec(out.get("perx")),
            pbr=_dec(out.get("pbrx")), eps=_dec(out.get("epsx")), bps=_dec(out.get("bpsx")),
            shares=_int(out.get("shar")), market_cap=_usd(out.get("tomv")), tick=_usd(out.get("e_hogau")),
            lot=_int(out.get("vnit")) or 1, tradable=str(out.get("e_ordyn", "")) == o.PRICE_TRADABLE,
            tradable_text=str(out.get("e_ordyn", "")), sector=str(out.get("e_icod", "")),
            krw_per_usd=_dec(out.get("t_rate")), price_krw=_krw(out.get("t_xprc")), decimals=_int(out.get("zdiv")),
            product_kind=str(out.get("etyp_nm", "")))

    async def bars(self, symbol: str, exchange: UsExchange, period: str = "D", start: dt.date | None = None,
                   end: dt.date | None = None, *, adjusted: bool = True) -> list[UsBar]:
        """Daily, weekly or monthly bars between two exchange-local dates, newest first.

        KIS answers at most 100 bars ending at ``BYMD``; older ones come by asking again with
        ``BYMD`` set to the day before the oldest bar received (§2.3)."""
        gubn = o.BAR_PERIODS.get(period)
        if gubn is None:
            raise ValueError(f"period must be one of {', '.join(o.BAR_PERIODS)}")
        end = end or dt.datetime.now(NEW_YORK).date()
        start = start or end - DEFAULT_BAR_SPAN[period]
        bars: list[UsBar] = []
        reference = end
        for page in range(MAX_PAGES):
            reply = await self._get(o.PATH_DAILY_PRICE, UsTR.DAILY_PRICE, {
                **self._quote_params(symbol, exchange), "GUBN": gubn, "BYMD": reference.strftime("%Y%m%d"),
                "MODP": "1" if adjusted else "0", "KEYB": ""})
            summary = reply.body.get("output1") or {}
            rows = [(day, r) for r in reply.body.get("output2") or [] if r and (day := _date(r.get("xymd")))]
            count = _int(summary.get("nrec"))  # the record count (python-kis's reading, §2.3)
            if 0 < count < len(rows):
                rows = rows[:count]
            if page == 0 and not rows and not str(summary.get("rsym", "")).strip():
                raise KisNotFound(f"no US bars for {symbol} on {exchange.name}")
            oldest = min((day for day, _ in rows), default=None)
            for day, row in rows:
                if start <= day <= end and (not bars or day < bars[-1].date):
                    bars.append(UsBar(date=day, open=_usd(row.get("open")), high=_usd(row.get("high")),
                                      low=_usd(row.get("low")), close=_usd(row.get("clos")),
                                      volume=_int(row.get("tvol")), traded_value=_usd(row.get("tamt"))))
            if oldest is None or oldest <= start or len(rows) < o.BARS_PER_CALL:
                return bars
            reference = oldest - dt.timedelta(days=1)
        raise KisPagingError(f"more than {MAX_PAGES} pages of bars", tr_id=str(UsTR.DAILY_PRICE))

    # -- orders (sent once; see overseas_orders for what a failure means) ------------------------------
    def check_order(self, side: OrderSide, division: UsOrderDivision, price: Decimal | None) -> str:
        """The ``OVRS_ORD_UNPR`` text of an order KIS offers, or :class:`UsOrderNotOffered`."""
        if self.paper and division not in o.PAPER_DIVISIONS:
            raise UsOrderNotOffered(f"paper trading takes only limit orders for US stocks, not {division.name}")
        allowed = o.BUY_DIVISIONS if side is OrderSide.BUY else o.SELL_DIVISIONS
        if division not in allowed:
            raise UsOrderNotOffered(f"KIS offers {division.name} for sells only")
        if not division.priced:
            return "0"
        if price is None or price < o.MIN_ORDER_PRICE:
            raise UsOrderNotOffered("a US limit price must be at least $0.01")
        if not o.is_on_tick(price):
            raise UsOrderNotOffered(f"${price} is not on the US tick (${o.tick_size(price)})")
        return order_price_text(price)

    async def place(self, exchange: UsExchange, side: OrderSide, symbol: str, quantity: int, price: Decimal | None,
                    division: UsOrderDivision = UsOrderDivision.LIMIT) -> UsOrderAck:
        """One US order, sent once (``price`` is None only for MOO/MOC)."""
        if quantity <= 0:
            raise UsOrderNotOffered("quantity must be positive")
        price_text = self.check_order(side, division, price)
        body = {**self._account(), "OVRS_EXCG_CD": exchange.order_code, "PDNO": symbol, "ORD_QTY": str(quantity),
                "OVRS_ORD_UNPR": price_text, "CTAC_TLNO": "", "MGCO_APTM_ODNO": "",
                "SLL_TYPE": o.SLL_TYPE_SELL if side is OrderSide.SELL else "", "ORD_SVR_DVSN_CD": o.ORDER_SERVER,
                "ORD_DVSN": division.value}
        reply = await self._post(o.PATH_ORDER, UsTR.BUY if side is OrderSide.BUY else UsTR.SELL, body)
        return self._ack(reply, exchange)

    async def revise(self, exchange: UsExchange, symbol: str, order_no: str, quantity: int,
                     price: Decimal) -> UsOrderAck:
        """Change the price (and quantity) of an open order; KIS gives the revision a new order number."""
        if quantity <= 0:
            raise UsOrderNotOffered("quantity must be positive")
        if price < o.MIN_ORDER_PRICE or not o.is_on_tick(price):
            raise UsOrderNotOffered(f"${price} is not a US limit price (at least $0.01, on the tick)")
        return await self._revise_cancel(exchange, symbol, order_no, o.REVISE, quantity, order_price_text(price))

    async def cancel(self, exchange: UsExchange, symbol: str, order_no: str, quantity: int = 0) -> UsOrderAck:
        """Cancel ``quantity`` shares of an open order, or all that remain (``0``)."""
        return await self._revise_cancel(exchange, symbol, order_no, o.CANCEL, max(0, quantity), "0")

    async def _revise_cancel(self, exchange: UsExchange, symbol: str, order_no: str, kind: str, quantity: int,
                             price_text: str) -> UsOrderAck:
        body = {**self._account(), "OVRS_EXCG_CD": exchange.order_code, "PDNO": symbol, "ORGN_ODNO": order_no,
                "RVSE_CNCL_DVSN_CD": kind, "ORD_QTY": str(quantity), "OVRS_ORD_UNPR": price_text,
                "MGCO_APTM_ODNO": "", "ORD_SVR_DVSN_CD": o.ORDER_SERVER}
        return self._ack(await self._post(o.PATH_ORDER_RVSECNCL, UsTR.REVISE_CANCEL, body), exchange)

    @staticmethod
    def _ack(reply: RawReply, exchange: UsExchange) -> UsOrderAck:
        out = {str(k).upper(): v for k, v in (reply.body.get("output") or {}).items()}
        order_no = str(out.get("ODNO", ""))
        if not order_no:
            raise KisServerError("order reply without ODNO")
        return UsOrderAck(order_no=order_no, branch=str(out.get("KRX_FWDG_ORD_ORGNO", "")), exchange=exchange,
                          accepted_at=nearest_kst(str(out.get("ORD_TMD", "")), dt.datetime.now(SEOUL)))

    # -- reservation orders (outside US hours; sent at the next regular open) -------------------------
    async def reserve(self, exchange: UsExchange, side: OrderSide, symbol: str, quantity: int,
                      price: Decimal | None, division: UsOrderDivision = UsOrderDivision.LIMIT) -> UsReservationAck:
        """A reservation order (§9): limit, or MOO for a sell; KIS checks no cash or holding until it
        sends the order at the open of the next US trading day."""
        if quantity <= 0:
            raise UsOrderNotOffered("quantity must be positive")
        allowed = o.RESERVE_BUY_DIVISIONS if side is OrderSide.BUY else o.RESERVE_SELL_DIVISIONS
        if division not in allowed:
            raise UsOrderNotOffered(f"KIS takes US reservation {side.value}s as {', '.join(d.name for d in allowed)}")
        price_text = self.check_order(side, division, price) if division.priced else "0"
        body = {**self._account(), "PDNO": symbol, "OVRS_EXCG_CD": exchange.order_code, "FT_ORD_QTY": str(quantity),
                "FT_ORD_UNPR3": price_text, "ORD_DVSN": division.value}
        reply = await self._post(o.PATH_ORDER_RESV, UsTR.RESERVE_BUY if side is OrderSide.BUY else UsTR.RESERVE_SELL,
                                 body)
        out = {str(k).upper(): v for k, v in (reply.body.get("output") or {}).items()}
        number = str(out.get("OVRS_RSVN_ODNO") or out.get("ODNO") or "")
        received = _date(out.get("RSVN_ORD_RCIT_DT"))
        if not number or received is None:
            raise KisServerError("reservation reply without OVRS_RSVN_ODNO/RSVN_ORD_RCIT_DT")
        return UsReservationAck(reservation_no=number, received_date=received, exchange=exchange)

    async def cancel_reservation(self, received_date: dt.date, reservation_no: str) -> str:
        body = {**self._account(), "RSVN_ORD_RCIT_DT": received_date.strftime("%Y%m%d"),
                "OVRS_RSVN_ODNO": reservation_no}
        reply = await self._post(o.PATH_ORDER_RESV_CCNL, UsTR.RESERVE_CANCEL, body)
        out = {str(k).upper(): v for k, v in (reply.body.get("output") or {}).items()}
        return str(out.get("OVRS_RSVN_ODNO", reservation_no))

    async def reservations(self, start: dt.date, end: dt.date) -> list[UsReservation]:
        """US reservation orders received between two KST dates (real accounts only: KIS's paper
        server does not offer the list)."""
        pages = await self._pages(o.PATH_ORDER_RESV_LIST, UsTR.RESERVE_LIST, {
            **self._account(), "INQR_STRT_DT": start.strftime("%Y%m%d"), "INQR_END_DT": end.strftime("%Y%m%d"),
            "INQR_DVSN_CD": "00", "OVRS_EXCG_CD": o.ALL_US, "PRDT_TYPE_CD": ""})
        out = []
        for page in pages:
            for r in page.get("output") or []:
                received = _date(r.get("rsvn_ord_rcit_dt"))
                if not r or received is None:
                    continue
                out.append(UsReservation(
                    reservation_no=str(r.get("ovrs_rsvn_odno", "")), received_date=received,
                    symbol=str(r.get("pdno", "")), name=str(r.get("prdt_name", "")),
                    exchange=UsExchange.of_order_code(str(r.get("ovrs_excg_cd", ""))),
                    side=_side(r.get("sll_buy_dvsn_cd")), quantity=_int(r.get("ft_ord_qty")),
                    price=_usd(r.get("ft_ord_unpr3")), filled_quantity=_int(r.get("ft_ccld_qty")),
                    status=str(r.get("ovrs_rsvn_ord_stat_cd_name", "")), cancelled=str(r.get("cncl_yn")) == "Y",
                    order_no=str(r.get("odno", "")), reason=str(r.get("nprc_rson_text", ""))))
        return out

    # -- account -------------------------------------------------------------------------------------------
    async def balance(self) -> UsBalance:
        """US holdings with dollar totals: one query on the real server (NASD = all US), one per
        exchange on paper (§5.1)."""
        codes = [o.ALL_US] if not self.paper else [e.order_code for e in UsExchange]
        holdings: list[UsHolding] = []
        cost = pnl = realised = _ZERO
        for code in codes:
            pages = await self._pages(o.PATH_BALANCE, UsTR.BALANCE, {
                **self._account(), "OVRS_EXCG_CD": code, "TR_CRCY_CD": o.CURRENCY})
            for page in pages:
                holdings.extend(_holding(r) for r in page.get("output1") or [] if r and _int(r.get("ovrs_cblc_qty")) > 0)
            summary = pages[-1].get("output2") or {}
            if isinstance(summary, list):
                summary = summary[0] if summary else {}
            cost += _dec(summary.get("frcr_pchs_amt1"))
            pnl += _dec(summary.get("tot_evlu_pfls_amt"))
            realised += _dec(summary.get("ovrs_rlzt_pfls_amt"))
        value = sum((h.value.amount for h in holdings), _ZERO)
        rate = (pnl * 100 / cost).quantize(Decimal("0.01")) if cost else _ZERO
        return UsBalance(holdings=tuple(holdings), cost_total=Money(cost, Currency.USD), value_total=Money(value, Currency.USD),
                         profit_loss_total=Money(pnl, Currency.USD), realised_profit_loss=Money(realised, Currency.USD),
                         return_rate=rate)

    async def present_balance(self) -> UsPresentBalance:
        """KRW totals of the account, the US cash row and the rate KIS values them at (§5.2).

        On paper KIS fills only ``output3`` ("모의계좌의 경우 output3(외화평가총액 등 확인 가능)만 정상
        출력됩니다", KIS's own sample): holdings and the cash row of ``output1``/``output2`` are not read there.
        The dollar cash is then ``output3``'s foreign-currency total (``frcr_evlu_tota``) and usable amount
        (``frcr_use_psbl_amt``), both in won, at the rate of the buyable-amount query (one more request)."""
        reply = await self._get(o.PATH_PRESENT_BALANCE, UsTR.PRESENT_BALANCE, {
            **self._account(), "WCRC_FRCR_DVSN_CD": o.PRESENT_BALANCE_FOREIGN, "NATN_CD": o.NATION_CODE,
            "TR_MKET_CD": o.PRESENT_BALANCE_ALL_MARKETS, "INQR_DVSN_CD": o.PRESENT_BALANCE_ALL_KINDS})
        body = reply.body
        t = body.get("output3") or {}
        if isinstance(t, list):
            t = t[0] if t else {}
        totals = UsAccountTotals(
            purchase=_krw(t.get("pchs_amt_smtl")), evaluation=_krw(t.get("evlu_amt_smtl")),
            profit_loss=_krw(t.get("tot_evlu_pfls_amt")), return_rate=_dec(t.get("evlu_erng_rt1")),
            total_assets=_krw(t.get("tot_asst_amt")), deposits=_krw(t.get("tot_dncl_amt")),
            foreign_evaluation=_krw(t.get("frcr_evlu_tota")), foreign_usable=_krw(t.get("frcr_use_psbl_amt")),
            withdrawable=_krw(t.get("wdrw_psbl_tot_amt")))
        if self.paper:
            rate = await self._paper_rate()
            return UsPresentBalance(holdings=(), cash=_paper_cash(totals, rate), totals=totals, krw_per_usd=rate)
        holdings = tuple(_present_holding(r) for r in body.get("output1") or []
                         if r and _int(r.get("ccld_qty_smtl1")) > 0)
        cash = tuple(UsCash(currency=str(r.get("crcy_cd", "")),
                            cash=Money(_dec(r.get("frcr_dncl_amt_2")), Currency.USD),
                            withdrawable=Money(_dec(r.get("frcr_drwg_psbl_amt_1")), Currency.USD),
                            krw_rate=_dec(r.get("frst_bltn_exrt")))
                     for r in body.get("output2") or [] if r and str(r.get("crcy_cd", "")) == o.CURRENCY)
        rates = [_dec(r.get("bass_exrt")) for r in body.get("output1") or [] if r] + [c.krw_rate for c in cash]
        return UsPresentBalance(holdings=holdings, cash=cash, totals=totals,
                                krw_per_usd=next((r for r in rates if r > 0), _ZERO))

    async def _paper_rate(self) -> Decimal:
        """KIS's KRW rate on paper, where the present balance names none (output1/output2 are empty there):
        the buyable-amount query's ``exrt`` (§5.2 "other FX sources")."""
        symbol, exchange, price = PAPER_RATE_PROBE
        return (await self.buying_power(exchange, symbol, price)).krw_per_usd

    async def buying_power(self, exchange: UsExchange, symbol: str, price: Decimal) -> UsBuyingPower:
        reply = await self._get(o.PATH_PSAMOUNT, UsTR.PSAMOUNT, {
            **self._account(), "OVRS_EXCG_CD": exchange.order_code, "OVRS_ORD_UNPR": f"{price:f}",
            "ITEM_CD": symbol})
        out = reply.body.get("output") or {}
        return UsBuyingPower(orderable_cash=_usd(out.get("ord_psbl_frcr_amt")),
                             overseas_orderable=_usd(out.get("ovrs_ord_psbl_amt")),
                             max_quantity=_int(out.get("max_ord_psbl_qty")),
                             orderable_quantity=_int(out.get("ord_psbl_qty")), krw_per_usd=_dec(out.get("exrt")))

    async def open_orders(self) -> list[UsOrder]:
        """US orders still working: inquire-nccs on the real server; on paper, today's orders from
        inquire-ccnl with an unfilled quantity (§6.2)."""
        if not self.paper:
            pages = await self._pages(o.PATH_NCCS, UsTR.NCCS, {
                **self._account(), "OVRS_EXCG_CD": o.ALL_US, "SORT_SQN": ""})
            return [r for r in (_order(row) for page in pages for row in page.get("output") or [] if row) if r.open]
        start, end = trading_dates()
        return [r for r in await self.orders(start, end) if r.open]

    async def orders(self, start: dt.date, end: dt.date, *, symbol: str = "", side: OrderSide | None = None,
                     filled: bool | None = None) -> list[UsOrder]:
        """Orders, revisions and cancellations between two exchange-local dates (§6.3), newest first.

        ``filled`` True keeps orders with a fill, False those with an unfilled quantity."""
        side_code = {None: o.CCNL_ALL, OrderSide.SELL: o.SIDE_SELL, OrderSide.BUY: o.SIDE_BUY}[side]
        fill_code = {None: o.CCNL_ALL, True: o.CCNL_FILLED, False: o.CCNL_UNFILLED}[filled]
        if self.paper:  # the paper server takes only the "everything" values; filter here
            params = {"PDNO": "", "SLL_BUY_DVSN": o.CCNL_ALL, "CCLD_NCCS_DVSN": o.CCNL_ALL, "OVRS_EXCG_CD": ""}
        else:
            params = {"PDNO": symbol or o.ALL_EXCHANGES_WILDCARD, "SLL_BUY_DVSN": side_code,
                      "CCLD_NCCS_DVSN": fill_code, "OVRS_EXCG_CD": o.ALL_US}
        pages = await self._pages(o.PATH_CCNL, UsTR.CCNL, {
            **self._account(), "PDNO": params["PDNO"], "ORD_STRT_DT": start.strftime("%Y%m%d"),
            "ORD_END_DT": end.strftime("%Y%m%d"), "SLL_BUY_DVSN": params["SLL_BUY_DVSN"],
            "CCLD_NCCS_DVSN": params["CCLD_NCCS_DVSN"], "OVRS_EXCG_CD": params["OVRS_EXCG_CD"],
            "SORT_SQN": o.SORT_DESCENDING, "ORD_DT": "", "ORD_GNO_BRNO": "", "ODNO": ""})
        rows = [_order(r) for page in pages for r in page.get("output") or [] if r and r.get("odno")]
        rows.sort(key=_newest_first)  # the paper server answers oldest first whatever SORT_SQN says
        return [r for r in rows
                if (not symbol or r.symbol == symbol) and (side is None or r.side is side)
                and (filled is None or (r.filled_quantity > 0 if filled else r.unfilled_quantity > 0))]


def trading_dates(now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    """The dates KIS files today's US orders under: the New York date, up to the Korean one (KIS's
    order date of US orders is the exchange's, §6.3; the span also covers a server using KST)."""
    now = now or dt.datetime.now(SEOUL)
    return now.astimezone(NEW_YORK).date(), now.astimezone(SEOUL).date()


def _newest_first(order: UsOrder) -> tuple[float, int]:
    stamp = order.local_time.timestamp() if order.local_time else 0.0
    return -stamp, -int(order.order_no) if order.order_no.isdigit() else 0


def _holding(r: dict[str, Any]) -> UsHolding:
    return UsHolding(
        symbol=str(r.get("ovrs_pdno", "")), name=str(r.get("ovrs_item_name", "")),
        exchange=UsExchange.of_order_code(str(r.get("ovrs_excg_cd", ""))), quantity=_int(r.get("ovrs_cblc_qty")),
        orderable_quantity=_int(r.get("ord_psbl_qty")), average_cost=_usd(r.get("pchs_avg_pric")),
        last_price=_usd(r.get("now_pric2")), cost=_usd(r.get("frcr_pchs_amt1")),
        value=_usd(r.get("ovrs_stck_evlu_amt")), profit_loss=_usd(r.get("frcr_evlu_pfls_amt")),
        profit_loss_rate=_dec(r.get("evlu_pfls_rt")))


def _present_holding(r: dict[str, Any]) -> UsHolding:
    return UsHolding(
        symbol=str(r.get("pdno", "")), name=str(r.get("prdt_name", "")),
        exchange=UsExchange.of_order_code(str(r.get("ovrs_excg_cd", ""))), quantity=_int(r.get("ccld_qty_smtl1")),
        orderable_quantity=_int(r.get("ord_psbl_qty1")), average_cost=_usd(r.get("avg_unpr3")),
        last_price=_usd(r.get("ovrs_now_pric1")), cost=_usd(r.get("frcr_pchs_amt")),
        value=_usd(r.get("frcr_evlu_amt2")), profit_loss=_usd(r.get("evlu_pfls_amt2")),
        profit_loss_rate=_dec(r.get("evlu_pfls_rt1")))


def _order(r: dict[str, Any]) -> UsOrder:
    return UsOrder(
        order_no=str(r.get("odno", "")), branch=str(r.get("ord_gno_brno", "")),
        original_order_no=str(r.get("orgn_odno", "") or "").strip(), symbol=str(r.get("pdno", "")),
        name=str(r.get("prdt_name", "")), exchange=UsExchange.of_order_code(str(r.get("ovrs_excg_cd", ""))),
        side=_side(r.get("sll_buy_dvsn_cd")),
        revise_cancel=str(r.get("rvse_cncl_dvsn", r.get("rvse_cncl_dvsn_cd", "")) or ""),
        quantity=_int(r.get("ft_ord_qty")), price=_usd(r.get("ft_ord_unpr3")),
        filled_quantity=_int(r.get("ft_ccld_qty")), fill_price=_usd(r.get("ft_ccld_unpr3")),
        filled_amount=_usd(r.get("ft_ccld_amt3")), unfilled_quantity=_int(r.get("nccs_qty")),
        status=str(r.get("prcs_stat_name", "")),
        rejected_reason=str(r.get("rjct_rson_name") or r.get("rjct_rson") or "").strip(),
        local_time=_moment(r.get("ord_dt"), r.get("ord_tmd"), NEW_YORK),
        kst_time=_moment(r.get("dmst_ord_dt"), r.get("thco_ord_tmd"), SEOUL))
