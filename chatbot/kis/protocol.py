"""KIS Developers protocol facts: hosts, paths, TR IDs, message codes, field tables, KRX market rules.

Facts only, no behaviour beyond pure helpers. Shared by the client (``chatbot.kis``) and the
simulator (``chatbot.sim``); everything here is restated from ``shared/kis/KIS_API.md``. Items the
fact sheet marks *unverified* are collected in :data:`UNVERIFIED_CHOICES` and the tables below
say which of their entries are our choice.
"""

from __future__ import annotations

import calendar
import datetime as dt
from enum import StrEnum
from typing import Final, Literal

from chatbot.markets import krx_hours as _krx_hours
from chatbot.markets import ticks as _ticks

KST: Final = _krx_hours.KST  # KIS's clock: every time it sends or takes

Flavour = Literal["real", "virtual"]

# --- hosts (§1) ---------------------------------------------------------------------------
REST_URLS: Final[dict[Flavour, str]] = {
    "real": "https://openapi.koreainvestment.com:9443",
    "virtual": "https://openapivts.koreainvestment.com:29443",
}
WS_URLS: Final[dict[Flavour, str]] = {
    "real": "ws://ops.koreainvestment.com:21000",
    "virtual": "ws://ops.koreainvestment.com:31000",
}
WS_PATH: Final = "/tryitout"

# --- REST paths ---------------------------------------------------------------------------
PATH_TOKEN: Final = "/oauth2/tokenP"
PATH_REVOKE: Final = "/oauth2/revokeP"
PATH_APPROVAL: Final = "/oauth2/Approval"
PATH_HASHKEY: Final = "/uapi/hashkey"
_DS: Final = "/uapi/domestic-stock/v1"
PATH_INQUIRE_PRICE: Final = f"{_DS}/quotations/inquire-price"
PATH_SEARCH_INFO: Final = f"{_DS}/quotations/search-info"
PATH_DAILY_CHART: Final = f"{_DS}/quotations/inquire-daily-itemchartprice"
PATH_BALANCE: Final = f"{_DS}/trading/inquire-balance"
PATH_ORDER_CASH: Final = f"{_DS}/trading/order-cash"
PATH_ORDER_RVSECNCL: Final = f"{_DS}/trading/order-rvsecncl"
PATH_PSBL_RVSECNCL: Final = f"{_DS}/trading/inquire-psbl-rvsecncl"
PATH_DAILY_CCLD: Final = f"{_DS}/trading/inquire-daily-ccld"
PATH_PSBL_ORDER: Final = f"{_DS}/trading/inquire-psbl-order"
PATH_PSBL_SELL: Final = f"{_DS}/trading/inquire-psbl-sell"
# Overseas endpoints python-kis calls from account-level helpers (§7); answered with empty lists.
PATH_OVRS_PRESENT_BALANCE: Final = "/uapi/overseas-stock/v1/trading/inquire-present-balance"
PATH_OVRS_BALANCE: Final = "/uapi/overseas-stock/v1/trading/inquire-balance"
PATH_OVRS_NCCS: Final = "/uapi/overseas-stock/v1/trading/inquire-nccs"
PATH_OVRS_CCNL: Final = "/uapi/overseas-stock/v1/trading/inquire-ccnl"


# --- TR IDs (§4, §10.1) ---------------------------------------------------------------------
class TR(StrEnum):
    """Current ("new") TR IDs in their real-server spelling; :func:`tr_for` gives the paper twin."""

    PRICE = "FHKST01010100"
    DAILY_CHART = "FHKST03010100"
    SEARCH_INFO = "CTPF1604R"
    BALANCE = "TTTC8434R"
    SELL = "TTTC0011U"
    BUY = "TTTC0012U"
    REVISE_CANCEL = "TTTC0013U"
    PSBL_RVSECNCL = "TTTC0084R"
    DAILY_CCLD = "TTTC0081R"
    DAILY_CCLD_OLD_PERIOD = "CTSC9215R"
    PSBL_ORDER = "TTTC8908R"
    PSBL_SELL = "TTTC8408R"


# Old ("구TR") IDs still sent by python-kis and mojito; KIS may block them without notice.
OLD_TR: Final[dict[TR, tuple[str, ...]]] = {
    TR.SELL: ("TTTC0801U",),
    TR.BUY: ("TTTC0802U",),
    TR.REVISE_CANCEL: ("TTTC0803U",),
    TR.PSBL_RVSECNCL: ("TTTC8036R",),
    TR.DAILY_CCLD: ("TTTC8001R",),
    TR.DAILY_CCLD_OLD_PERIOD: ("CTSC9115R",),
}


def tr_for(tr: TR | str, flavour: Flavour) -> str:
    """The TR ID to send on ``flavour``: paper swaps a leading T/J/C for V; F/H quote TRs are shared."""
    tr = str(tr)
    if flavour == "virtual" and tr[0] in "TJC":
        return "V" + tr[1:]
    return tr


def accepted_trs(tr: TR, flavour: Flavour) -> frozenset[str]:
    """Every TR ID a server of ``flavour`` accepts for the function ``tr`` (current and old family)."""
    names = (str(tr), *OLD_TR.get(tr, ()))
    return frozenset(tr_for(name, flavour) for name in names)


# --- envelope and message codes (§2.3, §6.2) -------------------------------------------------
RT_OK: Final = "0"
MSG_ORDER_OK: Final = "APBK0013"  # 주문 전송 완료 되었습니다.
MSG_QUERY_OK: Final = "MCA00000"  # 정상처리 되었습니다.  (exact success code per TR unverified)

# Gateway errors. Usually non-2xx, but a client must recognise them whatever the HTTP status: KIS's own
# backtester (backtester/kis_auth.py) retries EGW00201 found in an HTTP-200 body.
EGW_PREFIX: Final = "EGW"
EGW_RATE_LIMIT: Final = "EGW00201"
EGW_TOKEN_EXPIRED: Final = "EGW00123"
EGW_TOKEN_INVALID: Final = "EGW00121"
EGW_TOKEN_TOO_OFTEN: Final = "EGW00133"
EGW_APPKEY_INVALID: Final = "EGW00103"  # our choice (unverified)
EGW_APPSECRET_INVALID: Final = "EGW00105"
EGW_AUTH_CODES: Final = frozenset({EGW_TOKEN_EXPIRED, EGW_TOKEN_INVALID, EGW_APPKEY_INVALID, EGW_APPSECRET_INVALID,
                                   "EGW00122"})

# Business errors (HTTP 200, rt_cd != "0").
APBK_INSUFFICIENT_CASH: Final = "APBK0952"
APBK_MARKET_NOT_OPEN: Final = "APBK0919"
APBK_NO_SUCH_STOCK: Final = "APBK0656"
APBK_NOTHING_TO_CANCEL: Final = "APBK0918"
OPSQ_INVALID_INQR_DVSN: Final = "OPSQ2001"
OPSQ_UNKNOWN_SERVICE: Final = "OPSQ0002"  # "없는 서비스 코드 입니다" (our choice for a wrong tr_id; unverified)
SYDB_DATA_CHANGED: Final = "SYDB0050"

# WebSocket control codes (§5.2).
OPSP_SUBSCRIBED: Final = "OPSP0000"
OPSP_UNSUBSCRIBED: Final = "OPSP0001"
OPSP_ALREADY_SUBSCRIBED: Final = "OPSP0002"
OPSP_NOT_SUBSCRIBED: Final = "OPSP0003"
OPSP_MAX_SUBSCRIPTIONS: Final = "OPSP0008"
OPSP_APPKEY_IN_USE: Final = "OPSP8996"
# Registrations per session: the server refuses the 42nd (41 allowed, §5.5); KIS's own client and
# python-kis stop at 40, and so does ours (one in reserve).
WS_MAX_SUBSCRIPTIONS: Final = 41
WS_CLIENT_MAX_SUBSCRIPTIONS: Final = 40

# --- paging (§2.2, §2.3) ---------------------------------------------------------------------
TR_CONT_MORE: Final = frozenset({"F", "M"})
TR_CONT_LAST: Final = frozenset({"D", "E"})
TR_CONT_NEXT_REQUEST: Final = "N"

# --- rate limits (§6.1) ----------------------------------------------------------------------
REQUESTS_PER_SECOND: Final[dict[Flavour, int]] = {"real": 20, "virtual": 2}
TOKEN_ISSUE_MIN_INTERVAL_SECONDS: Final = 60.0
TOKEN_SAME_WITHIN_SECONDS: Final = 6 * 3600.0
TOKEN_LIFETIME_SECONDS: Final = 86_400
TOKEN_TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"  # access_token_token_expired, KST

# Page sizes (§4.4, §4.5, §4.6).
BALANCE_PAGE_SIZE: Final[dict[Flavour, int]] = {"real": 50, "virtual": 20}
DAILY_CCLD_PAGE_SIZE: Final[dict[Flavour, int]] = {"real": 100, "virtual": 15}
PSBL_RVSECNCL_PAGE_SIZE: Final = 50

# inquire-daily-ccld has two TRs (§4.6): TTTC0081R for orders of the last three months, CTSC9215R for older
# ones. Where the first stops is our reading of "3개월 이내" (unverified): three calendar months back, that day
# included.
DAILY_CCLD_RECENT_MONTHS: Final = 3


def daily_ccld_recent_since(today: dt.date) -> dt.date:
    """The first day the recent daily-ccld TR answers for: :data:`DAILY_CCLD_RECENT_MONTHS` calendar months
    before ``today`` (the day of the month clamped to that month's last)."""
    months = today.year * 12 + today.month - 1 - DAILY_CCLD_RECENT_MONTHS
    year, month = divmod(months, 12)
    return dt.date(year, month + 1, min(today.day, calendar.monthrange(year, month + 1)[1]))

CHART_MAX_BARS: Final = 100

APP_KEY_LENGTH: Final = 36
APP_SECRET_LENGTH: Final = 180


# --- order codes (§4.0) ----------------------------------------------------------------------
class OrderDivision(StrEnum):
    LIMIT = "00"
    MARKET = "01"
    CONDITIONAL_LIMIT = "02"
    BEST_LIMIT = "03"
    TOP_PRIORITY_LIMIT = "04"
    IOC_LIMIT = "11"
    FOK_LIMIT = "12"
    IOC_MARKET = "13"
    FOK_MARKET = "14"


class Side(StrEnum):
    """``SLL_BUY_DVSN_CD`` / ``SELN_BYOV_CLS`` values."""

    SELL = "01"
    BUY = "02"


REVISE: Final = "01"
CANCEL: Final = "02"

# Buying power (inquire-psbl-order, §4.7): KIS's guidance is that ORD_DVSN "00" ignores the stock's
# margin rate (증거금율), so the quantity must "반드시" be asked with "01", also for a limit order (with
# its price in ORD_UNPR, as KIS's own example does).
BUYING_POWER_DIVISION: Final = OrderDivision.MARKET


def order_no_key(order_no: str) -> str:
    """An order number as a comparison key: KIS writes ``ODNO`` zero-padded to 10 digits, but a
    notice or a user may not (python-kis compares them with ``int()``). ``"0000001234"`` → ``"1234"``."""
    return order_no.strip().lstrip("0")


# --- exchanges (§4.1, §4.2, §4.5) --------------------------------------------------------------------
EXCHANGE_KRX: Final = "KRX"
EXCHANGES: Final = ("KRX", "NXT", "SOR")  # EXCG_ID_DVSN_CD; the paper server takes KRX only
EXCHANGE_ALL: Final = "ALL"  # inquire-daily-ccld only: every exchange's orders (absent = KRX's only)
EXCHANGE_NAMES: Final[dict[str, str]] = {"KRX": "한국거래소", "NXT": "넥스트레이드", "SOR": "SOR"}


def exchange_code(text: object) -> str:
    """``EXCG_ID_DVSN_CD`` as a listing gives it (any case, empty = the default, KRX)."""
    code = str(text or "").strip().upper()
    return code or EXCHANGE_KRX

# --- instrument codes (§4.3) -------------------------------------------------------------------
ETN_CODE_PREFIX: Final = "Q"  # "ETN의 경우 Q로 시작 (EX. Q500001)": FID_INPUT_ISCD of the quotation TRs


def quotation_code(code: str, etn: bool) -> str:
    """The code a quotation TR takes (``FID_INPUT_ISCD``): an ETN's six characters behind a ``Q``."""
    return ETN_CODE_PREFIX + code if etn and not code.startswith(ETN_CODE_PREFIX) else code


def order_code(code: str, etn: bool) -> str:
    """``PDNO`` of an order or an order query (§4.1: "종목코드(6자리), ETN의 경우 7자리"): an ETN's code behind its
    ``Q``, as quotations take it. Its bare six characters are another instrument's code space (ELWs)."""
    return quotation_code(code, etn)


def listed_code(pdno: str) -> str:
    """A code as a listing or notice gives it, in the directory's form: an ETN's ``Q`` + six dropped."""
    text = pdno.strip()
    return text[1:] if len(text) == 7 and text.startswith(ETN_CODE_PREFIX) else text


# --- KRX market rules (§6.4, §6.5) -----------------------------------------------------------
# The tick table moved to chatbot.markets.ticks (a market rule, not a protocol fact); re-exported here
# for the simulator, which may use only this module of chatbot.kis.
FUND_TICK_BOUND = _ticks.FUND_TICK_BOUND
TICK_TABLE = _ticks.TICK_TABLE
TOP_TICK = _ticks.TOP_TICK
fund_tick_size = _ticks.fund_tick_size
is_on_tick = _ticks.is_on_tick
round_down_to_tick = _ticks.round_down_to_tick
round_up_to_tick = _ticks.round_up_to_tick
tick_size = _ticks.tick_size

DAILY_LIMIT_RATE_PERCENT: Final = 30


def price_limits(base_price: int) -> tuple[int, int]:
    """(lower, upper) daily price limits around the base price, ±30 % snapped inside the band.

    The exact KRX rounding of the limit prices is unverified; we round towards the base price so
    the limits are always valid tick prices within ±30 %.
    """
    upper = round_down_to_tick(base_price * (100 + DAILY_LIMIT_RATE_PERCENT) // 100)
    lower = round_up_to_tick(-(-base_price * (100 - DAILY_LIMIT_RATE_PERCENT) // 100))
    return max(lower, 1), upper


def change_sign(price: int, base: int, lower: int, upper: int) -> str:
    """``prdy_vrss_sign``: 1 upper limit, 2 up, 3 flat, 4 lower limit, 5 down."""
    if price >= upper:
        return "1"
    if price <= lower:
        return "4"
    if price > base:
        return "2"
    if price < base:
        return "5"
    return "3"


# --- response field tables (kis_api_catalog.csv column_mapping, §10.2) ----------------------
PRICE_FIELDS: Final = (
    "iscd_stat_cls_code marg_rate rprs_mrkt_kor_name new_hgpr_lwpr_cls_code bstp_kor_isnm temp_stop_yn "
    "oprc_rang_cont_yn clpr_rang_cont_yn crdt_able_yn grmn_rate_cls_code elw_pblc_yn stck_prpr prdy_vrss "
    "prdy_vrss_sign prdy_ctrt acml_tr_pbmn acml_vol prdy_vrss_vol_rate stck_oprc stck_hgpr stck_lwpr stck_mxpr "
    "stck_llam stck_sdpr wghn_avrg_stck_prc hts_frgn_ehrt frgn_ntby_qty pgtr_ntby_qty pvt_scnd_dmrs_prc "
    "pvt_frst_dmrs_prc pvt_pont_val pvt_frst_dmsp_prc pvt_scnd_dmsp_prc dmrs_val dmsp_val cpfn rstc_wdth_prc "
    "stck_fcam stck_sspr aspr_unit hts_deal_qty_unit_val lstn_stcn hts_avls per pbr stac_month vol_tnrt eps bps "
    "d250_hgpr d250_hgpr_date d250_hgpr_vrss_prpr_rate d250_lwpr d250_lwpr_date d250_lwpr_vrss_prpr_rate "
    "stck_dryy_hgpr dryy_hgpr_vrss_prpr_rate dryy_hgpr_date stck_dryy_lwpr dryy_lwpr_vrss_prpr_rate dryy_lwpr_date "
    "w52_hgpr w52_hgpr_vrss_prpr_ctrt w52_hgpr_date w52_lwpr w52_lwpr_vrss_prpr_ctrt w52_lwpr_date "
    "whol_loan_rmnd_rate ssts_yn stck_shrn_iscd fcam_cnnm cpfn_cnnm apprch_rate frgn_hldn_qty vi_cls_code "
    "ovtm_vi_cls_code last_ssts_cntg_qty invt_caful_yn mrkt_warn_cls_code short_over_yn sltr_yn mang_issu_cls_code"
).split()

SEARCH_INFO_FIELDS: Final = (
    "pdno prdt_type_cd std_pdno shtn_pdno prdt_abrv_name prdt_name prdt_name120 prdt_eng_name prdt_eng_abrv_name "
    "prdt_eng_name120 prdt_clsf_cd prdt_clsf_name prdt_sale_stat_cd prdt_risk_grad_cd sale_strt_dt sale_end_dt "
    "wrap_asst_type_cd ivst_prdt_type_cd ivst_prdt_type_cd_name frst_erlm_dt"
).split()

BALANCE_HOLDING_FIELDS: Final = (
    "pdno prdt_name trad_dvsn_name bfdy_buy_qty bfdy_sll_qty thdt_buyqty thdt_sll_qty hldg_qty ord_psbl_qty "
    "pchs_avg_pric pchs_amt prpr evlu_amt evlu_pfls_amt evlu_pfls_rt evlu_erng_rt loan_dt loan_amt stln_slng_chgs "
    "expd_dt fltt_rt bfdy_cprs_icdc item_mgna_rt_name grta_rt_name sbst_pric stck_loan_unpr"
).split()

BALANCE_SUMMARY_FIELDS: Final = (
    "dnca_tot_amt nxdy_excc_amt prvs_rcdl_excc_amt cma_evlu_amt bfdy_buy_amt thdt_buy_amt nxdy_auto_rdpt_amt "
    "bfdy_sll_amt thdt_sll_amt d2_auto_rdpt_amt bfdy_tlex_amt thdt_tlex_amt tot_loan_amt scts_evlu_amt tot_evlu_amt "
    "nass_amt fncg_gld_auto_rdpt_yn pchs_amt_smtl_amt evlu_amt_smtl_amt evlu_pfls_smtl_amt tot_stln_slng_chgs "
    "bfdy_tot_asst_evlu_amt asst_icdc_amt asst_icdc_erng_rt"
).split()

PSBL_RVSECNCL_FIELDS: Final = (
    "ord_gno_brno odno orgn_odno ord_dvsn_name pdno prdt_name rvse_cncl_dvsn_name ord_qty ord_unpr ord_tmd "
    "tot_ccld_qty tot_ccld_amt psbl_qty sll_buy_dvsn_cd ord_dvsn_cd mgco_aptm_odno excg_dvsn_cd excg_id_dvsn_cd "
    "excg_id_dvsn_name stpm_cndt_pric stpm_efct_occr_yn"
).split()

DAILY_CCLD_FIELDS: Final = (
    "ord_dt ord_gno_brno odno orgn_odno ord_dvsn_name sll_buy_dvsn_cd sll_buy_dvsn_cd_name pdno prdt_name ord_qty "
    "ord_unpr ord_tmd tot_ccld_qty avg_prvs cncl_yn tot_ccld_amt loan_dt ordr_empno ord_dvsn_cd cnc_cfrm_qty "
    "rmn_qty rjct_qty ccld_cndt_name inqr_ip_addr cpbc_ordp_ord_rcit_dvsn_cd cpbc_ordp_infm_mthd_dvsn_cd infm_tmd "
    "ctac_tlno prdt_type_cd excg_dvsn_cd cpbc_ordp_mtrl_dvsn_cd ord_orgno rsvn_ord_end_dt excg_id_dvsn_Cd "
    "stpm_cndt_pric stpm_efct_occr_dtmd"
).split()
DAILY_CCLD_SUMMARY_FIELDS: Final = "tot_ord_qty tot_ccld_qty tot_ccld_amt prsm_tlex_smtl pchs_avg_pric".split()
# python-kis accepts only these excg_dvsn_cd values (§4.6); "01" is used for KRX rows.
EXCG_DVSN_KRX: Final = "01"

PSBL_ORDER_FIELDS: Final = (
    "ord_psbl_cash ord_psbl_sbst ruse_psbl_amt fund_rpch_chgs psbl_qty_calc_unpr nrcvb_buy_amt nrcvb_buy_qty "
    "max_buy_amt max_buy_qty cma_evlu_amt ovrs_re_use_amt_wcrc ord_psbl_frcr_amt_wcrc"
).split()

CHART_SUMMARY_FIELDS: Final = (
    "prdy_vrss prdy_vrss_sign prdy_ctrt stck_prdy_clpr acml_vol acml_tr_pbmn hts_kor_isnm stck_prpr stck_shrn_iscd "
    "prdy_vol stck_mxpr stck_llam stck_oprc stck_hgpr stck_lwpr stck_prdy_oprc stck_prdy_hgpr stck_prdy_lwpr askp "
    "bidp prdy_vrss_vol vol_tnrt stck_fcam lstn_stcn cpfn hts_avls per eps pbr itewhol_loan_rmnd_ratem"
).split()
CHART_BAR_FIELDS: Final = (
    "stck_bsop_date stck_clpr stck_oprc stck_hgpr stck_lwpr acml_vol acml_tr_pbmn flng_cls_code prtt_rate mod_yn "
    "prdy_vrss_sign prdy_vrss revl_issu_reas"
).split()

ORDER_OUTPUT_FIELDS: Final = ("KRX_FWDG_ORD_ORGNO", "ODNO", "ORD_TMD")

# KIS's nightly maintenance: no schedule is published (§6.3, unverified); KIS's systems are usually
# down around midnight KST. A call failing inside this window is explained as maintenance.
NIGHTLY_MAINTENANCE_KST: Final = "00:00-01:00"
TimeWindows = tuple[tuple[dt.time, dt.time], ...]
NIGHTLY_MAINTENANCE_WINDOWS: Final[TimeWindows] = ((dt.time(0, 0), dt.time(1, 0)),)


def in_time_windows(t: dt.time, windows: TimeWindows) -> bool:
    """Is ``t`` inside one of ``windows`` (start inclusive, end exclusive; a window may cross midnight)?"""
    for start, end in windows:
        if (start <= t < end) if start <= end else (t >= start or t < end):
            return True
    return False
# A revise or cancel sent to another exchange than the order's (the cancel text is KIS's, seen live;
# the msg_cd and the revise wording are our choice).
EXCHANGE_MISMATCH_MSG_CD: Final = "APBK1702"


def exchange_mismatch_msg(action: Literal["cancel", "revise"], original: str, given: str) -> str:
    word = "취소" if action == "cancel" else "정정"
    return f"{word}주문 불가합니다. 원주문 거래소[{original}] {word}주문 거래소[{given}]"


# --- decisions on unverified facts, in one place ----------------------------------------------
UNVERIFIED_CHOICES: Final[dict[str, str]] = {
    "tr_cont on non-paginated replies": "D",
    "tr_cont for first/middle/last page": "F, M, E (D for a single page)",
    "missing or malformed appkey": f"HTTP 500 {EGW_APPKEY_INVALID}",
    "wrong appsecret for an appkey": f"HTTP 500 {EGW_APPSECRET_INVALID}",
    "tr_id not valid for the path": f"HTTP 500 {OPSQ_UNKNOWN_SERVICE}",
    "hashkey response body key": "JsonBody",
    "limit price rounding": "towards the base price",
    "real tick-size error msg_cd": "APBK1680 (msg1 주식주문호가단위 오류입니다.)",
    "psbl-rvsecncl on the paper host": "served (our bot lists open orders on paper through daily-ccld)",
    "ETF/ETN tick": "1 won below 2,000 won, 5 won from 2,000 (KRX's fund rule as commonly stated)",
    "revise/cancel sent to another exchange than the order's": (
        f"rt_cd 7, {EXCHANGE_MISMATCH_MSG_CD}, msg1 as KIS's cancel refusal (Jiho-Son/Ouroboros#375), 정정 for a revision"),
    "inquire-psbl-order with ORD_DVSN 00": "the simulator leaves the order's commission out of the quantity "
                                           "(its stand-in for the margin rate KIS then ignores)",
    "KIS nightly maintenance": f"{NIGHTLY_MAINTENANCE_KST} KST (no schedule is published, §6.3)",
    "edge of the recent daily-ccld TR": f"{DAILY_CCLD_RECENT_MONTHS} calendar months back, that day included "
                                        "(daily_ccld_recent_since); a range across it is asked of each TR for its part",
}


# --- realtime WebSocket (§5) -------------------------------------------------------------------
WS_TRADE = "H0STCNT0"  # KRX trade price
WS_ORDERBOOK = "H0STASP0"  # KRX order book
WS_NOTICE: Final[dict[Flavour, str]] = {"real": "H0STCNI0", "virtual": "H0STCNI9"}
WS_NOTICE_TRS: Final = frozenset({"H0STCNI0", "H0STCNI9"})
WS_OVERSEAS_NOTICE_TRS: Final = frozenset({"H0GSCNI0", "H0GSCNI9"})  # python-kis subscribes these too
WS_PINGPONG: Final = "PINGPONG"
WS_SUBSCRIBE: Final = "1"
WS_UNSUBSCRIBE: Final = "2"

# H0STCNT0: 46 fields per record, in order (§5.6).
TRADE_FIELDS: Final = (
    "MKSC_SHRN_ISCD STCK_CNTG_HOUR STCK_PRPR PRDY_VRSS_SIGN PRDY_VRSS PRDY_CTRT WGHN_AVRG_STCK_PRC STCK_OPRC "
    "STCK_HGPR STCK_LWPR ASKP1 BIDP1 CNTG_VOL ACML_VOL ACML_TR_PBMN SELN_CNTG_CSNU SHNU_CNTG_CSNU NTBY_CNTG_CSNU CTTR "
    "SELN_CNTG_SMTN SHNU_CNTG_SMTN CCLD_DVSN SHNU_RATE PRDY_VOL_VRSS_ACML_VOL_RATE OPRC_HOUR OPRC_VRSS_PRPR_SIGN "
    "OPRC_VRSS_PRPR HGPR_HOUR HGPR_VRSS_PRPR_SIGN HGPR_VRSS_PRPR LWPR_HOUR LWPR_VRSS_PRPR_SIGN LWPR_VRSS_PRPR "
    "BSOP_DATE NEW_MKOP_CLS_CODE TRHT_YN ASKP_RSQN1 BIDP_RSQN1 TOTAL_ASKP_RSQN TOTAL_BIDP_RSQN VOL_TNRT "
    "PRDY_SMNS_HOUR_ACML_VOL PRDY_SMNS_HOUR_ACML_VOL_RATE HOUR_CLS_CODE MRKT_TRTM_CLS_CODE VI_STND_PRC"
).split()

# H0STASP0: 59 fields (§5.7).
ORDERBOOK_FIELDS: Final = (
    ["MKSC_SHRN_ISCD", "BSOP_HOUR", "HOUR_CLS_CODE"]
    + [f"ASKP{i}" for i in range(1, 11)] + [f"BIDP{i}" for i in range(1, 11)]
    + [f"ASKP_RSQN{i}" for i in range(1, 11)] + [f"BIDP_RSQN{i}" for i in range(1, 11)]
    + "TOTAL_ASKP_RSQN TOTAL_BIDP_RSQN OVTM_TOTAL_ASKP_RSQN OVTM_TOTAL_BIDP_RSQN ANTC_CNPR ANTC_CNQN ANTC_VOL "
      "ANTC_CNTG_VRSS ANTC_CNTG_VRSS_SIGN ANTC_CNTG_PRDY_CTRT ACML_VOL TOTAL_ASKP_RSQN_ICDC TOTAL_BIDP_RSQN_ICDC "
      "OVTM_TOTAL_ASKP_ICDC OVTM_TOTAL_BIDP_ICDC STCK_DEAL_CLS_CODE".split()
)

# H0STCNI0 / H0STCNI9: the current 26-field layout (§5.8), and the pre-NXT 23-field one that
# python-kis 2.1.6 and mojito still parse.
NOTICE_FIELDS: Final = (
    "CUST_ID ACNT_NO ODER_NO OODER_NO SELN_BYOV_CLS RCTF_CLS ODER_KIND ODER_COND STCK_SHRN_ISCD CNTG_QTY CNTG_UNPR "
    "STCK_CNTG_HOUR RFUS_YN CNTG_YN ACPT_YN BRNC_NO ODER_QTY ACNT_NAME ORD_COND_PRC ORD_EXG_GB POPUP_YN FILLER "
    "CRDT_CLS CRDT_LOAN_DATE CNTG_ISNM40 ODER_PRC"
).split()
NOTICE_FIELDS_LEGACY: Final = (
    "CUST_ID ACNT_NO ODER_NO OODER_NO SELN_BYOV_CLS RCTF_CLS ODER_KIND ODER_COND STCK_SHRN_ISCD CNTG_QTY CNTG_UNPR "
    "STCK_CNTG_HOUR RFUS_YN CNTG_YN ACPT_YN BRNC_NO ODER_QTY ACNT_NAME CNTG_ISNM CRDT_CLS CRDT_LOAN_DATE CNTG_ISNM40 "
    "ODER_PRC"
).split()
assert len(TRADE_FIELDS) == 46 and len(ORDERBOOK_FIELDS) == 59
assert len(NOTICE_FIELDS) == 26 and len(NOTICE_FIELDS_LEGACY) == 23


# Execution notices are AES-256-CBC, key and iv being the UTF-8 bytes of the strings in the
# subscribe ack, PKCS#7 padding, base64 text (§5.4).
def notice_encrypt(plaintext: str, key: str, iv: str) -> str:
    import base64

    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key.encode("utf-8")), modes.CBC(iv.encode("utf-8"))).encryptor()
    return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode("ascii")


def notice_decrypt(payload: str, key: str, iv: str) -> str:
    import base64

    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    decryptor = Cipher(algorithms.AES(key.encode("utf-8")), modes.CBC(iv.encode("utf-8"))).decryptor()
    data = decryptor.update(base64.b64decode(payload)) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(data) + unpadder.finalize()).decode("utf-8")
