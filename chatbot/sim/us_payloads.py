"""Reply bodies of the simulated US endpoints, every field of KIS's tables, all as strings.

Formats (KIS_OVERSEAS.md §2, §11.6): prices with ``zdiv`` = 4 decimals, dollar amounts with 2, rates
with 2, integer strings for volumes, counts and quantities, ``YYYYMMDD`` dates, ``HHMMSS`` times;
a symbol unknown on the asked exchange answers ``last: ""`` (python-kis probes exchanges that way).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from chatbot.kis import overseas_protocol as o
from chatbot.kis import protocol as p
from chatbot.kis.overseas_protocol import UsExchange
from chatbot.markets.symbols import Kind
from chatbot.sim.us_market import UNITS, UsBar, UsMarket, UsSymbolState, tick_units
from chatbot.sim.us_trading import COMMISSION_RATE, UsAccount, UsOrder, UsReservation, gross_buy

SIDE_NAMES = {o.SIDE_SELL: "매도", o.SIDE_BUY: "매수"}
KIND_CODES = {"new": "00", "revise": o.REVISE, "cancel": o.CANCEL}
KIND_NAMES = {"new": "", "revise": "정정", "cancel": "취소"}
RESERVATION_STATUS = {"received": ("01", "접수"), "sent": ("02", "전송"), "unsent": ("03", "미처리"),
                      "cancelled": ("04", "취소")}
PRODUCT_KINDS = {Kind.ETF: "ETF", Kind.ETN: "ETN"}
_ZERO = Decimal(0)


def price4(units: int) -> str:
    return f"{Decimal(units).scaleb(-4):.4f}"


def amount2(units: int) -> str:
    """Dollars with cents from units (× shares), rounded half up."""
    return str(Decimal(units).scaleb(-4).quantize(Decimal("0.01"), ROUND_HALF_UP))


def amount4(units: int) -> str:
    """Dollars to the 1/10,000 from units (× shares), unrounded: what an order's fills cost (ft_ccld_amt3), as
    KIS's rows give it (a sub-dollar price's sub-cent; rows seen: "1833.9032")."""
    return f"{Decimal(units).scaleb(-4):.4f}"


def rate2(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), ROUND_HALF_UP))


def pct(numerator: int | Decimal, denominator: int | Decimal) -> str:
    if not denominator:
        return "0.00"
    return rate2(Decimal(numerator) * 100 / Decimal(denominator))


def krw(units: int, rate: Decimal) -> str:
    """A dollar amount in whole won at ``rate``."""
    return str((Decimal(units).scaleb(-4) * rate).quantize(Decimal(1), ROUND_HALF_UP))


def sign_of(diff: int) -> str:
    return "2" if diff > 0 else "5" if diff < 0 else "3"


def empty(fields: Iterable[str]) -> dict[str, str]:
    return {f: "" for f in fields}


# -- quotations ---------------------------------------------------------------------------------------
def price_output(s: UsSymbolState | None) -> dict[str, str]:
    if s is None:
        return empty(o.PRICE_FIELDS)
    diff = s.price - s.base
    return {
        "rsym": s.realtime_key, "zdiv": str(o.PRICE_DECIMALS), "base": price4(s.base), "pvol": str(s.prev_volume),
        "last": price4(s.price), "sign": sign_of(diff), "diff": price4(abs(diff)), "rate": pct(diff, s.base),
        "tvol": str(s.volume), "tamt": str(s.traded_dollars), "ordy": "매수가능",
    }


def price_detail_output(market: UsMarket, s: UsSymbolState | None, rate: Decimal) -> dict[str, str]:
    if s is None:
        return empty(o.PRICE_DETAIL_FIELDS)
    high_bar, low_bar = market.fifty_two_week(s)
    diff = s.price - s.base
    eps = max(1, s.base // 18)
    bps = max(1, s.base // 5)
    krw_now = Decimal(s.price).scaleb(-4) * rate
    krw_base = Decimal(s.base).scaleb(-4) * rate
    listing = s.listing
    out = empty(o.PRICE_DETAIL_FIELDS)
    out.update({
        "rsym": s.realtime_key, "pvol": str(s.prev_volume), "open": price4(s.open), "high": price4(s.high),
        "low": price4(s.low), "last": price4(s.price), "base": price4(s.base),
        "tomv": str(s.shares * s.price // UNITS), "pamt": str(s.prev_value), "uplp": price4(0), "dnlp": price4(0),
        "h52p": price4(high_bar.high if high_bar else s.high), "h52d": (high_bar.date if high_bar else market.today)
        .strftime("%Y%m%d"), "l52p": price4(low_bar.low if low_bar else s.low),
        "l52d": (low_bar.date if low_bar else market.today).strftime("%Y%m%d"),
        "perx": pct(s.price, eps * 100), "pbrx": pct(s.price, bps * 100), "epsx": amount2(eps),
        "bpsx": amount2(bps), "shar": str(s.shares), "mcap": str(s.shares // 100), "curr": o.CURRENCY,
        "zdiv": str(o.PRICE_DECIMALS), "vnit": "1", "t_xprc": str(krw_now.quantize(Decimal(1), ROUND_HALF_UP)),
        "t_xdif": str(abs(krw_now - krw_base).quantize(Decimal(1), ROUND_HALF_UP)),
        "t_xrat": pct(diff, s.base), "p_xprc": str(krw_base.quantize(Decimal(1), ROUND_HALF_UP)), "p_xdif": "0",
        "p_xrat": "0.00", "t_rate": rate2(rate), "p_rate": rate2(rate), "t_xsgn": sign_of(diff), "p_xsng": "3",
        "e_ordyn": "매매 불가" if listing.halted else o.PRICE_TRADABLE, "e_hogau": price4(tick_units(s.price)),
        "e_icod": "", "e_parp": "0.0000", "tvol": str(s.volume), "tamt": str(s.traded_dollars),
        "etyp_nm": PRODUCT_KINDS.get(listing.kind, ""),
    })
    return out


def daily_price_payload(market: UsMarket, s: UsSymbolState | None, bars: list[UsBar]) -> dict[str, Any]:
    if s is None:
        return {"output1": {"rsym": "", "zdiv": "0", "nrec": "0"}, "output2": []}
    rows = []
    for i, bar in enumerate(bars):
        prev = bars[i + 1].close if i + 1 < len(bars) else bar.open
        diff = bar.close - prev
        rows.append({
            "xymd": bar.date.strftime("%Y%m%d"), "clos": price4(bar.close), "sign": sign_of(diff),
            "diff": price4(abs(diff)), "rate": pct(diff, prev), "open": price4(bar.open), "high": price4(bar.high),
            "low": price4(bar.low), "tvol": str(bar.volume), "tamt": str(bar.value),
            "pbid": price4(bar.close), "vbid": str(100 + bar.volume % 900),
            "pask": price4(bar.close + tick_units(bar.close)), "vask": str(100 + bar.volume % 700),
        })
    return {"output1": {"rsym": s.realtime_key, "zdiv": str(o.PRICE_DECIMALS), "nrec": str(len(rows))},
            "output2": rows}


def search_info_output(s: UsSymbolState) -> dict[str, str]:
    """Domestic search-info (CTPF1604R) asked with a US product type (512/513/529), as python-kis does."""
    listing = s.listing
    name_en = listing.name_en or listing.name_ko
    out = empty(p.SEARCH_INFO_FIELDS)
    out.update({
        "pdno": listing.code, "prdt_type_cd": s.exchange.codes.product_type, "std_pdno": "",
        "shtn_pdno": listing.code, "prdt_abrv_name": listing.name_ko, "prdt_name": listing.name_ko,
        "prdt_name120": listing.name_ko, "prdt_eng_name": name_en, "prdt_eng_abrv_name": name_en,
        "prdt_eng_name120": name_en, "prdt_clsf_name": PRODUCT_KINDS.get(listing.kind, "주권"),
    })
    return out


# -- account ---------------------------------------------------------------------------------------------
def holding_rows(market: UsMarket, acct: UsAccount, cano: str, product: str,
                 exchanges: frozenset[UsExchange]) -> list[dict[str, str]]:
    rows = []
    for symbol in sorted(acct.positions):
        pos = acct.positions[symbol]
        s = market.get(symbol)
        if s is None or pos.quantity <= 0 or s.exchange not in exchanges:
            continue
        value = pos.quantity * s.price
        row = empty(o.BALANCE_HOLDING_FIELDS)
        row.update({
            "cano": cano, "acnt_prdt_cd": product, "prdt_type_cd": s.exchange.codes.product_type,
            "ovrs_pdno": symbol, "ovrs_item_name": s.listing.name_ko, "frcr_evlu_pfls_amt": amount2(value - pos.cost),
            "evlu_pfls_rt": pct(value - pos.cost, pos.cost), "pchs_avg_pric": price4(pos.cost // pos.quantity),
            "ovrs_cblc_qty": str(pos.quantity), "ord_psbl_qty": str(max(0, acct.sellable(symbol))),
            "frcr_pchs_amt1": amount2(pos.cost), "ovrs_stck_evlu_amt": amount2(value), "now_pric2": price4(s.price),
            "tr_crcy_cd": o.CURRENCY, "ovrs_excg_cd": s.exchange.order_code, "loan_type_cd": o.DEBT_CASH,
        })
        rows.append(row)
    return rows


def balance_summary(market: UsMarket, acct: UsAccount, exchanges: frozenset[UsExchange]) -> dict[str, str]:
    cost = value = 0
    for symbol, pos in acct.positions.items():
        s = market.get(symbol)
        if s is not None and pos.quantity > 0 and s.exchange in exchanges:
            cost += pos.cost
            value += pos.quantity * s.price
    unrealised = value - cost
    realised = sum(acct.realised.get(e.name, 0) for e in exchanges)
    out = empty(o.BALANCE_SUMMARY_FIELDS)
    out.update({
        "frcr_pchs_amt1": amount2(cost), "ovrs_rlzt_pfls_amt": amount2(realised),
        "ovrs_tot_pfls": amount2(realised + unrealised), "rlzt_erng_rt": pct(realised, cost or 1),
        "tot_evlu_pfls_amt": amount2(unrealised), "tot_pftrt": pct(unrealised, cost),
        "frcr_buy_amt_smtl1": amount2(acct.today_buy_amount), "ovrs_rlzt_pfls_amt2": amount2(realised),
        "frcr_buy_amt_smtl2": amount2(acct.today_buy_amount),
    })
    return out


def present_balance_payload(market: UsMarket, acct: UsAccount, rate: Decimal, *, holdings: bool,
                            foreign_amounts: bool, markets: frozenset[UsExchange]) -> dict[str, Any]:
    output1 = []
    cost = value = 0
    for symbol in sorted(acct.positions):
        pos = acct.positions[symbol]
        s = market.get(symbol)
        if s is None or pos.quantity <= 0:
            continue
        cost += pos.cost
        value += pos.quantity * s.price
        if not holdings or s.exchange not in markets:
            continue
        worth = pos.quantity * s.price

        def money(units: int) -> str:
            return amount2(units) if foreign_amounts else krw(units, rate)

        row = empty(o.PRESENT_HOLDING_FIELDS)
        row.update({
            "prdt_name": s.listing.name_ko, "cblc_qty13": str(pos.quantity), "thdt_buy_ccld_qty1": str(pos.today_buy),
            "thdt_sll_ccld_qty1": str(pos.today_sell), "ccld_qty_smtl1": str(pos.quantity),
            "ord_psbl_qty1": str(max(0, acct.sellable(symbol))), "frcr_pchs_amt": amount2(pos.cost),
            "frcr_evlu_amt2": money(worth), "evlu_pfls_amt2": money(worth - pos.cost),
            "evlu_pfls_rt1": pct(worth - pos.cost, pos.cost), "pdno": symbol, "bass_exrt": rate2(rate),
            "buy_crcy_cd": o.CURRENCY, "ovrs_now_pric1": price4(s.price), "avg_unpr3": price4(pos.cost // pos.quantity),
            "tr_mket_name": s.exchange.codes.name_ko, "natn_kor_name": "미국",
            "pchs_rmnd_wcrc_amt": krw(pos.cost, rate), "thdt_buy_ccld_frcr_amt": "0.00",
            "thdt_sll_ccld_frcr_amt": "0.00", "unit_amt": "1", "std_pdno": "",
            "prdt_type_cd": s.exchange.codes.product_type, "scts_dvsn_name": "현금", "loan_rmnd": "0",
            "ovrs_excg_cd": s.exchange.order_code, "item_lnkg_excg_cd": s.exchange.order_code,
        })
        output1.append(row)
    cash = acct.cash
    usable = acct.orderable_cash()
    currency = empty(o.PRESENT_CURRENCY_FIELDS)
    currency.update({
        "crcy_cd": o.CURRENCY, "crcy_cd_name": "미국 달러", "frcr_buy_amt_smtl": amount2(acct.today_buy_amount),
        "frcr_sll_amt_smtl": amount2(acct.today_sell_amount), "frcr_dncl_amt_2": amount2(cash),
        "frst_bltn_exrt": rate2(rate), "frcr_buy_mgn_amt": amount2(cash - usable), "frcr_etc_mgna": "0.00",
        "frcr_drwg_psbl_amt_1": amount2(usable), "frcr_evlu_amt2": krw(usable, rate), "acpl_cstd_crcy_yn": "N",
        "nxdy_frcr_drwg_psbl_amt": amount2(usable),
    })
    totals = {f: "0" for f in o.PRESENT_TOTAL_FIELDS}
    pnl = value - cost
    totals.update({
        "pchs_amt_smtl": krw(cost, rate), "evlu_amt_smtl": krw(value, rate), "evlu_pfls_amt_smtl": krw(pnl, rate),
        "dncl_amt": krw(cash, rate), "tot_dncl_amt": krw(cash, rate), "wdrw_psbl_tot_amt": krw(usable, rate),
        "frcr_evlu_tota": krw(cash, rate), "evlu_erng_rt1": pct(pnl, cost), "pchs_amt_smtl_amt": krw(cost, rate),
        "evlu_amt_smtl_amt": krw(value, rate), "tot_evlu_pfls_amt": krw(pnl, rate),
        "tot_asst_amt": krw(value + cash, rate), "buy_mgn_amt": krw(cash - usable, rate),
        "mgna_tota": krw(cash - usable, rate), "frcr_use_psbl_amt": krw(usable, rate),
        "tot_frcr_cblc_smtl": krw(cash, rate),
    })
    return {"output1": output1, "output2": [currency], "output3": totals}


def max_quantity(cash: int, price: int) -> int:
    """The most shares ``cash`` buys at ``price`` with the commission on the whole amount."""
    if price <= 0 or cash <= 0:
        return 0
    qty = int(Decimal(cash) / (Decimal(price) * (1 + COMMISSION_RATE)))
    while qty > 0 and gross_buy(qty * price) > cash:
        qty -= 1
    while gross_buy((qty + 1) * price) <= cash:
        qty += 1
    return qty


def psamount_output(acct: UsAccount, price: int, rate: Decimal) -> dict[str, str]:
    usable = acct.orderable_cash()
    qty = max_quantity(usable, price)
    out = empty(o.PSAMOUNT_FIELDS)
    out.update({
        "tr_crcy_cd": o.CURRENCY, "ord_psbl_frcr_amt": amount2(usable), "sll_ruse_psbl_amt": "0.00",
        "ovrs_ord_psbl_amt": amount2(usable), "max_ord_psbl_qty": str(qty), "echm_af_ord_psbl_amt": "0.00",
        "echm_af_ord_psbl_qty": "0", "ord_psbl_qty": str(qty), "exrt": rate2(rate),
        "frcr_ord_psbl_amt1": amount2(usable), "ovrs_max_ord_psbl_qty": str(qty),
    })
    return out


def _order_common(market: UsMarket, order: UsOrder) -> dict[str, str]:
    s = market.get(order.symbol)
    exchange = order.us_exchange
    return {
        "ord_dt": order.local_date, "ord_gno_brno": order.branch, "odno": order.order_no,
        "orgn_odno": order.original_order_no, "pdno": order.symbol, "prdt_name": s.listing.name_ko if s else "",
        "sll_buy_dvsn_cd": order.side, "sll_buy_dvsn_cd_name": KIND_NAMES[order.kind] + SIDE_NAMES[order.side],
        "rjct_rson": "", "rjct_rson_name": order.refusal, "ord_tmd": order.local_time, "tr_mket_name": exchange.codes.name_ko,
        "tr_crcy_cd": o.CURRENCY, "ft_ord_qty": str(order.quantity), "ft_ccld_qty": str(order.filled_qty),
        "nccs_qty": str(order.remaining), "ft_ord_unpr3": price4(order.price),
        "ft_ccld_unpr3": price4(order.average_fill_price), "ft_ccld_amt3": amount4(order.filled_amount),
        "ovrs_excg_cd": exchange.order_code, "prcs_stat_name": o.STATUS_DONE, "loan_type_cd": o.DEBT_CASH,
        "loan_dt": "", "usa_amk_exts_rqst_yn": "N", "splt_buy_attr_name": "",
    }


def nccs_row(market: UsMarket, order: UsOrder) -> dict[str, str]:
    row = empty(o.NCCS_FIELDS)
    row.update(_order_common(market, order))
    row.update({"rvse_cncl_dvsn_cd": KIND_CODES[order.kind], "rvse_cncl_dvsn_cd_name": KIND_NAMES[order.kind],
                "natn_cd": o.NATION_CODE, "natn_kor_name": "미국"})
    return row


def ccnl_row(market: UsMarket, order: UsOrder) -> dict[str, str]:
    row = empty(o.CCNL_FIELDS)
    row.update(_order_common(market, order))
    row.update({"rvse_cncl_dvsn": KIND_CODES[order.kind], "rvse_cncl_dvsn_name": KIND_NAMES[order.kind],
                "tr_natn": o.NATION_CODE, "tr_natn_name": "미국", "dmst_ord_dt": order.kst_date,
                "thco_ord_tmd": order.kst_time, "mdia_dvsn_name": "OpenAPI"})
    return row


def reservation_row(market: UsMarket, acct: UsAccount, r: UsReservation) -> dict[str, str]:
    s = market.get(r.symbol)
    exchange = UsExchange[r.exchange]
    order = acct.find(r.order_no) if r.order_no else None
    code, name = RESERVATION_STATUS[r.status]
    row = empty(o.RESERVE_LIST_FIELDS)
    row.update({
        "cncl_yn": "Y" if r.status == "cancelled" else "N", "rsvn_ord_rcit_dt": r.received_date,
        "ovrs_rsvn_odno": r.reservation_no, "ord_dt": order.local_date if order else "",
        "ord_gno_brno": order.branch if order else "", "odno": r.order_no, "sll_buy_dvsn_cd": r.side,
        "sll_buy_dvsn_name": SIDE_NAMES[r.side], "ovrs_rsvn_ord_stat_cd": code, "ovrs_rsvn_ord_stat_cd_name": name,
        "pdno": r.symbol, "prdt_type_cd": exchange.codes.product_type, "prdt_name": s.listing.name_ko if s else "",
        "ord_rcit_tmd": r.received_time, "ord_fwdg_tmd": r.sent_time, "tr_dvsn_name": "예약" + SIDE_NAMES[r.side],
        "ovrs_excg_cd": exchange.order_code, "tr_mket_name": exchange.codes.name_ko, "ord_stfno": "",
        "ft_ord_qty": str(r.quantity), "ft_ord_unpr3": price4(r.price),
        "ft_ccld_qty": str(order.filled_qty if order else 0), "nprc_rson_text": r.reason, "splt_buy_attr_name": "",
    })
    return row

