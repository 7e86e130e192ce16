"""Reply bodies of the simulated endpoints, with every field of KIS's catalogue, all as strings.

Formats follow KIS_API.md §10.2: integer strings for volumes and counts, decimal strings for
rates, ``YYYYMMDD``/``HHMMSS`` dates and times, ``Y``/``N`` flags, never an empty string where a
client parses a number.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from chatbot.kis import protocol as p
from chatbot.markets.symbols import Kind
from chatbot.sim.exchange import PaperAccount, SimOrder, _gross_buy_cost
from chatbot.sim.market import Market, SymbolState

ORDER_DIVISION_NAMES = {
    "00": "지정가", "01": "시장가", "02": "조건부지정가", "03": "최유리지정가", "04": "최우선지정가",
    "11": "IOC지정가", "12": "FOK지정가", "13": "IOC시장가", "14": "FOK시장가",
}
SIDE_NAMES: dict[str, str] = {p.Side.SELL: "매도", p.Side.BUY: "매수"}


def _pct(numerator: int | Decimal, denominator: int | Decimal, places: str = "0.01") -> str:
    if not denominator:
        return "0.00"
    return str((Decimal(numerator) * 100 / Decimal(denominator)).quantize(Decimal(places), ROUND_HALF_UP))


def isin(code: str) -> str:
    """KRX ISIN of a share code (``KR7`` + code + ``00`` + Luhn check digit over the letter-expanded text)."""
    body = f"KR7{code}00"
    digits = "".join(str(int(ch, 36)) for ch in body)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 0:
            n *= 2
            n = n - 9 if n > 9 else n
        total += n
    return body + str((10 - total % 10) % 10)


def _fifty_two_week(market: Market, s: SymbolState) -> tuple[int, str, int, str]:
    high, high_day, low, low_day = market.fifty_two_week(s.instrument.code)
    return high, high_day.strftime("%Y%m%d"), low, low_day.strftime("%Y%m%d")


def price_output(market: Market, code: str) -> dict[str, str]:
    s = market.quoted(code)
    if s is None:
        return _unknown_price_output(code)
    listing = market.listing(s.instrument.code) or s.instrument  # the directory's flags of today
    lower, upper = s.limits
    change = s.price - s.base
    sign = p.change_sign(s.price, s.base, lower, upper)
    w52h, w52hd, w52l, w52ld = _fifty_two_week(market, s)
    cap_eok = s.price * s.listed_shares // 100_000_000
    vwap = Decimal(s.value) / s.volume if s.volume else Decimal(s.price)
    eps = max(1, s.base // 12)
    bps = max(1, s.base * 3 // 4)
    out = {f: "0" for f in p.PRICE_FIELDS}
    out.update({
        "iscd_stat_cls_code": "58" if listing.halted else "51" if listing.administrative else "55",
        "marg_rate": "20.00",
        "rprs_mrkt_kor_name": "KOSPI" if s.instrument.market == "KOSPI" else "KOSDAQ",
        "new_hgpr_lwpr_cls_code": "", "bstp_kor_isnm": "기타",
        "temp_stop_yn": "Y" if listing.halted else "N", "oprc_rang_cont_yn": "N",
        "clpr_rang_cont_yn": "N", "crdt_able_yn": "Y", "grmn_rate_cls_code": "40", "elw_pblc_yn": "N",
        "stck_prpr": str(s.price), "prdy_vrss": str(change), "prdy_vrss_sign": sign,
        "prdy_ctrt": _pct(change, s.base), "acml_tr_pbmn": str(s.value), "acml_vol": str(s.volume),
        "prdy_vrss_vol_rate": _pct(s.volume, s.prev_volume), "stck_oprc": str(s.open), "stck_hgpr": str(s.high),
        "stck_lwpr": str(s.low), "stck_mxpr": str(upper), "stck_llam": str(lower), "stck_sdpr": str(s.base),
        "wghn_avrg_stck_prc": str(vwap.quantize(Decimal("0.01"), ROUND_HALF_UP)), "hts_frgn_ehrt": "25.00",
        "pvt_scnd_dmrs_prc": str(upper), "pvt_frst_dmrs_prc": str(s.high), "pvt_pont_val": str(s.base),
        "pvt_frst_dmsp_prc": str(s.low), "pvt_scnd_dmsp_prc": str(lower), "dmrs_val": str(s.high),
        "dmsp_val": str(s.low), "cpfn": str(max(1, s.listed_shares * 100 // 100_000_000)),
        "rstc_wdth_prc": str(upper - s.base), "stck_fcam": "100", "stck_sspr": str(s.base * 7 // 10),
        "aspr_unit": str(s.tick_for(s.price)), "hts_deal_qty_unit_val": "1", "lstn_stcn": str(s.listed_shares),
        "hts_avls": str(cap_eok), "per": _pct(s.price, eps * 100), "pbr": _pct(s.price, bps * 100),
        "stac_month": "12", "vol_tnrt": _pct(s.volume, s.listed_shares, "0.01"), "eps": f"{eps}.00",
        "bps": f"{bps}.00", "d250_hgpr": str(w52h), "d250_hgpr_date": w52hd,
        "d250_hgpr_vrss_prpr_rate": _pct(s.price - w52h, w52h), "d250_lwpr": str(w52l), "d250_lwpr_date": w52ld,
        "d250_lwpr_vrss_prpr_rate": _pct(s.price - w52l, w52l), "stck_dryy_hgpr": str(w52h),
        "dryy_hgpr_vrss_prpr_rate": _pct(s.price - w52h, w52h), "dryy_hgpr_date": w52hd,
        "stck_dryy_lwpr": str(w52l), "dryy_lwpr_vrss_prpr_rate": _pct(s.price - w52l, w52l),
        "dryy_lwpr_date": w52ld, "w52_hgpr": str(w52h), "w52_hgpr_vrss_prpr_ctrt": _pct(s.price - w52h, w52h),
        "w52_hgpr_date": w52hd, "w52_lwpr": str(w52l), "w52_lwpr_vrss_prpr_ctrt": _pct(s.price - w52l, w52l),
        "w52_lwpr_date": w52ld, "whol_loan_rmnd_rate": "0.10", "ssts_yn": "Y", "stck_shrn_iscd": code,
        "fcam_cnnm": "100", "cpfn_cnnm": f"{max(1, s.listed_shares * 100 // 100_000_000):,} 억",
        "apprch_rate": "0.00", "frgn_hldn_qty": str(s.listed_shares // 4), "vi_cls_code": "N",
        "ovtm_vi_cls_code": "N", "last_ssts_cntg_qty": "0", "invt_caful_yn": "N", "mrkt_warn_cls_code": "00",
        "short_over_yn": "N", "sltr_yn": "N",
        "mang_issu_cls_code": "Y" if listing.administrative else "N",
    })
    return out


def _unknown_price_output(code: str) -> dict[str, str]:
    """What KIS answers for a code it does not know: a success envelope with a zero price."""
    out = {f: "0" for f in p.PRICE_FIELDS}
    for f in ("rprs_mrkt_kor_name", "bstp_kor_isnm", "new_hgpr_lwpr_cls_code", "cpfn_cnnm", "fcam_cnnm"):
        out[f] = ""
    for f in ("temp_stop_yn", "oprc_rang_cont_yn", "clpr_rang_cont_yn", "crdt_able_yn", "elw_pblc_yn", "ssts_yn",
              "vi_cls_code", "ovtm_vi_cls_code", "invt_caful_yn", "short_over_yn", "sltr_yn", "mang_issu_cls_code"):
        out[f] = "N"
    today = dt.date.today().strftime("%Y%m%d")
    for f in ("d250_hgpr_date", "d250_lwpr_date", "dryy_hgpr_date", "dryy_lwpr_date", "w52_hgpr_date",
              "w52_lwpr_date"):
        out[f] = today
    out.update({"prdy_vrss_sign": "3", "mrkt_warn_cls_code": "00", "stck_shrn_iscd": code,
                "iscd_stat_cls_code": "00"})
    return out


def search_info_output(market: Market, code: str) -> dict[str, str] | None:
    s = market.get(code)
    if s is None:
        return None
    inst = s.instrument
    is_etf = inst.kind in (Kind.ETF, Kind.ETN)
    out = {f: "" for f in p.SEARCH_INFO_FIELDS}
    out.update({
        "pdno": f"00000A{code}", "prdt_type_cd": "300", "std_pdno": isin(code), "shtn_pdno": code,
        "prdt_abrv_name": inst.name_ko, "prdt_name": inst.name_ko, "prdt_name120": inst.name_ko,
        "prdt_eng_name": inst.name_en, "prdt_eng_abrv_name": inst.name_en, "prdt_eng_name120": inst.name_en,
        "prdt_clsf_cd": "101210" if is_etf else "101110",
        "prdt_clsf_name": ("ETN" if inst.is_etn else "ETF") if is_etf else "주권",
        "prdt_sale_stat_cd": "", "prdt_risk_grad_cd": "", "sale_strt_dt": "", "sale_end_dt": "",
        "wrap_asst_type_cd": "", "ivst_prdt_type_cd": "", "ivst_prdt_type_cd_name": "",
        "frst_erlm_dt": market.earliest_date().strftime("%Y%m%d"),
    })
    return out


def holding_rows(market: Market, acct: PaperAccount) -> list[dict[str, str]]:
    rows = []
    for code in sorted(acct.positions):
        pos = acct.positions[code]
        s = market.get(code)
        if s is None:
            continue
        price = s.price
        evlu = pos.quantity * price
        avg = (Decimal(pos.cost) / pos.quantity) if pos.quantity else Decimal(0)
        pnl = evlu - pos.cost
        row = {f: "" for f in p.BALANCE_HOLDING_FIELDS}
        row.update({
            "pdno": code, "prdt_name": s.instrument.name_ko, "trad_dvsn_name": "현금",
            "bfdy_buy_qty": str(pos.prev_buy), "bfdy_sll_qty": str(pos.prev_sell), "thdt_buyqty": str(pos.today_buy),
            "thdt_sll_qty": str(pos.today_sell), "hldg_qty": str(pos.quantity),
            "ord_psbl_qty": str(max(0, acct.sellable(code))),
            "pchs_avg_pric": str(avg.quantize(Decimal("0.0001"), ROUND_HALF_UP)), "pchs_amt": str(pos.cost),
            "prpr": str(price), "evlu_amt": str(evlu), "evlu_pfls_amt": str(pnl),
            "evlu_pfls_rt": _pct(pnl, pos.cost), "evlu_erng_rt": "0.00000000", "loan_dt": "", "loan_amt": "0",
            "stln_slng_chgs": "0", "expd_dt": "", "fltt_rt": _pct(price - s.base, s.base),
            "bfdy_cprs_icdc": str(price - s.base), "item_mgna_rt_name": "20%", "grta_rt_name": "",
            "sbst_pric": str(s.base * 7 // 10), "stck_loan_unpr": "0",
        })
        rows.append(row)
    return rows


def balance_summary(market: Market, acct: PaperAccount) -> dict[str, str]:
    purchase = evaluation = 0
    for code, pos in acct.positions.items():
        s = market.get(code)
        if s is None:
            continue
        purchase += pos.cost
        evaluation += pos.quantity * s.price
    pnl = evaluation - purchase
    out = {f: "0" for f in p.BALANCE_SUMMARY_FIELDS}
    out.update({
        "dnca_tot_amt": str(acct.cash), "nxdy_excc_amt": str(acct.cash), "prvs_rcdl_excc_amt": str(acct.cash),
        "bfdy_buy_amt": str(acct.prev_buy_amount), "thdt_buy_amt": str(acct.today_buy_amount),
        "bfdy_sll_amt": str(acct.prev_sell_amount), "thdt_sll_amt": str(acct.today_sell_amount),
        "bfdy_tlex_amt": str(acct.prev_fees), "thdt_tlex_amt": str(acct.today_fees),
        "scts_evlu_amt": str(evaluation), "tot_evlu_amt": str(evaluation + acct.cash),
        "nass_amt": str(evaluation + acct.cash), "fncg_gld_auto_rdpt_yn": "N", "pchs_amt_smtl_amt": str(purchase),
        "evlu_amt_smtl_amt": str(evaluation), "evlu_pfls_smtl_amt": str(pnl),
        "bfdy_tot_asst_evlu_amt": str(evaluation + acct.cash), "asst_icdc_amt": "0", "asst_icdc_erng_rt": "0.00000000",
    })
    return out


def open_order_row(market: Market, order: SimOrder) -> dict[str, str]:
    s = market.get(order.code)
    row = {f: "" for f in p.PSBL_RVSECNCL_FIELDS}
    row.update({
        "ord_gno_brno": order.branch, "odno": order.order_no, "orgn_odno": order.original_order_no,
        "ord_dvsn_name": ORDER_DIVISION_NAMES.get(order.division, ""), "pdno": order.code,
        "prdt_name": s.instrument.name_ko if s else "", "rvse_cncl_dvsn_name": "정정" if order.kind == "revise" else "",
        "ord_qty": str(order.quantity), "ord_unpr": str(order.price), "ord_tmd": order.time,
        "tot_ccld_qty": str(order.filled_qty), "tot_ccld_amt": str(order.filled_amount),
        "psbl_qty": str(order.remaining), "sll_buy_dvsn_cd": order.side, "ord_dvsn_cd": order.division,
        "mgco_aptm_odno": "", "excg_dvsn_cd": p.EXCG_DVSN_KRX, "excg_id_dvsn_cd": order.exchange,
        "excg_id_dvsn_name": p.EXCHANGE_NAMES.get(order.exchange, order.exchange), "stpm_cndt_pric": "0", "stpm_efct_occr_yn": "N",
    })
    return row


def execution_row(market: Market, order: SimOrder) -> dict[str, str]:
    s = market.get(order.code)
    cancel = order.kind == "cancel"
    row = {f: "" for f in p.DAILY_CCLD_FIELDS}
    row.update({
        "ord_dt": order.date, "ord_gno_brno": order.branch, "odno": order.order_no,
        "orgn_odno": order.original_order_no,
        "ord_dvsn_name": ("취소" if cancel else "") + ORDER_DIVISION_NAMES.get(order.division, ""),
        "sll_buy_dvsn_cd": order.side, "sll_buy_dvsn_cd_name": ("현금" + SIDE_NAMES.get(order.side, "")),
        "pdno": order.code, "prdt_name": s.instrument.name_ko if s else "", "ord_qty": str(order.quantity),
        "ord_unpr": str(order.price), "ord_tmd": order.time, "tot_ccld_qty": str(order.filled_qty),
        "avg_prvs": str(int(order.average_fill_price)), "cncl_yn": "Y" if cancel else "N",
        "tot_ccld_amt": str(order.filled_amount), "loan_dt": "", "ordr_empno": "OpnAPI",
        "ord_dvsn_cd": order.division, "cnc_cfrm_qty": str(order.quantity - order.refused_qty if cancel else order.cancelled_qty),
        "rmn_qty": str(order.remaining), "rjct_qty": str(order.refused_qty), "ccld_cndt_name": "없음", "inqr_ip_addr": "",
        "cpbc_ordp_ord_rcit_dvsn_cd": "", "cpbc_ordp_infm_mthd_dvsn_cd": "", "infm_tmd": "", "ctac_tlno": "",
        "prdt_type_cd": "300", "excg_dvsn_cd": p.EXCG_DVSN_KRX, "cpbc_ordp_mtrl_dvsn_cd": "",
        "ord_orgno": order.branch, "rsvn_ord_end_dt": "", "excg_id_dvsn_Cd": order.exchange, "stpm_cndt_pric": "0",
        "stpm_efct_occr_dtmd": "",
    })
    return row


def execution_summary(orders: list[SimOrder]) -> dict[str, str]:
    placed = [o for o in orders if o.kind != "cancel"]
    qty = sum(o.quantity for o in placed)
    filled = sum(o.filled_qty for o in placed)
    amount = sum(o.filled_amount for o in placed)
    avg = (Decimal(amount) / filled).quantize(Decimal("0.01")) if filled else Decimal(0)
    return {"tot_ord_qty": str(qty), "tot_ccld_qty": str(filled), "tot_ccld_amt": str(amount),
            "prsm_tlex_smtl": str(amount * 15 // 100_000), "pchs_avg_pric": str(avg)}


def buying_power_output(market: Market, acct: PaperAccount, code: str, price: int,
                        margin_reflected: bool = True) -> dict[str, str]:
    """inquire-psbl-order. At ``price`` (0: a market order, reserved at the upper limit). KIS reflects the
    stock's margin rate only when asked with ORD_DVSN 01 (or the order's own division); with 00 it does
    not, and can approve a quantity the order then fails on (§4.7). This account has no margin: the
    stand-in for that gap (our choice) is to leave the order's commission out when not ``margin_reflected``."""
    s = market.get(code)
    calc = price if price > 0 else (s.limits[1] if s else 0)
    cash = acct.orderable_cash()
    qty = cash // calc if calc else 0
    if margin_reflected and qty:  # the most the exchange will take: the reserve covers the commission too
        qty = cash * 100_000 // (calc * 100_015)
        while _gross_buy_cost((qty + 1) * calc) <= cash:
            qty += 1
        while qty > 0 and _gross_buy_cost(qty * calc) > cash:
            qty -= 1
    out = {f: "0" for f in p.PSBL_ORDER_FIELDS}
    out.update({
        "ord_psbl_cash": str(cash), "ord_psbl_sbst": "0", "ruse_psbl_amt": "0", "fund_rpch_chgs": "0",
        "psbl_qty_calc_unpr": str(calc if s else 0), "nrcvb_buy_amt": str(qty * calc), "nrcvb_buy_qty": str(qty),
        "max_buy_amt": str(qty * calc), "max_buy_qty": str(qty), "cma_evlu_amt": "0", "ovrs_re_use_amt_wcrc": "0",
        "ord_psbl_frcr_amt_wcrc": "0",
    })
    return out


def chart_payload(market: Market, code: str, period: str, start: dt.date, end: dt.date) -> dict[str, Any]:
    s = market.quoted(code)
    if s is None:
        summary = {f: "0" for f in p.CHART_SUMMARY_FIELDS}
        summary.update({"prdy_vrss_sign": "3", "hts_kor_isnm": "", "stck_shrn_iscd": code})
        return {"output1": summary, "output2": []}
    lower, upper = s.limits
    summary = {f: "0" for f in p.CHART_SUMMARY_FIELDS}
    summary.update({
        "prdy_vrss": str(s.price - s.base), "prdy_vrss_sign": p.change_sign(s.price, s.base, lower, upper),
        "prdy_ctrt": _pct(s.price - s.base, s.base), "stck_prdy_clpr": str(s.base), "acml_vol": str(s.volume),
        "acml_tr_pbmn": str(s.value), "hts_kor_isnm": s.instrument.name_ko, "stck_prpr": str(s.price),
        "stck_shrn_iscd": code, "prdy_vol": str(s.prev_volume), "stck_mxpr": str(upper), "stck_llam": str(lower),
        "stck_oprc": str(s.open), "stck_hgpr": str(s.high), "stck_lwpr": str(s.low), "stck_prdy_oprc": str(s.base),
        "stck_prdy_hgpr": str(s.base), "stck_prdy_lwpr": str(s.base), "askp": str(s.price + s.tick_for(s.price)),
        "bidp": str(s.price), "prdy_vrss_vol": str(s.volume - s.prev_volume), "vol_tnrt": "0.10",
        "stck_fcam": "100", "lstn_stcn": str(s.listed_shares),
        "cpfn": str(max(1, s.listed_shares * 100 // 100_000_000)),
        "hts_avls": str(s.price * s.listed_shares // 100_000_000), "per": "10.00", "eps": "1000.00",
        "pbr": "1.00", "itewhol_loan_rmnd_ratem": "0.00",
    })
    rows = []
    bars = market.bars(s.instrument.code, period, start, end)
    for i, bar in enumerate(bars):
        prev_close = bars[i + 1].close if i + 1 < len(bars) else bar.open
        change = bar.close - prev_close
        row = {f: "" for f in p.CHART_BAR_FIELDS}
        row.update({
            "stck_bsop_date": bar.date.strftime("%Y%m%d"), "stck_clpr": str(bar.close), "stck_oprc": str(bar.open),
            "stck_hgpr": str(bar.high), "stck_lwpr": str(bar.low), "acml_vol": str(bar.volume),
            "acml_tr_pbmn": str(bar.value), "flng_cls_code": "00", "prtt_rate": "0.00", "mod_yn": "N",
            "prdy_vrss_sign": "2" if change > 0 else "5" if change < 0 else "3", "prdy_vrss": str(change),
            "revl_issu_reas": "",
        })
        rows.append(row)
    return {"output1": summary, "output2": rows}
