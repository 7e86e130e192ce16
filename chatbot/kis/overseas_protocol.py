"""KIS Developers protocol facts for US stocks (해외주식): paths, TR IDs, exchange codes, field tables.

Facts only, no behaviour beyond pure helpers, restated from ``shared/kis/KIS_OVERSEAS.md`` (section
numbers below are that sheet's). Shared by the client (``chatbot.kis.overseas*``) and the simulator
(``chatbot.sim.us_*``) as :mod:`chatbot.kis.protocol` is for domestic stocks; hosts, headers, the
envelope, tokens, paging headers, AES and the WebSocket envelope are that module's. Where KIS's own
documents disagree, the choice made here is listed in :data:`UNVERIFIED_CHOICES` and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Final

from chatbot.kis.protocol import Flavour
from chatbot.markets.ticks import ONE_CENT as ONE_CENT  # noqa: PLC0414
from chatbot.markets.ticks import SUB_DOLLAR_TICK as SUB_DOLLAR_TICK  # noqa: PLC0414
from chatbot.markets.ticks import us_is_on_tick, us_round_to_tick, us_tick_size
from chatbot.markets.us_hours import NEW_YORK

CURRENCY: Final = "USD"
NATION_CODE: Final = "840"  # NATN_CD of the US (present balance, notices)
PRICE_DECIMALS: Final = 4  # zdiv of US quotes; CNTG_UNPR of US notices carries 4 implied decimals (§8.3)


# --- exchanges: three vocabularies (§1) ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Codes:
    market: str  # the directory's market name (chatbot.markets.symbols.US_MARKETS)
    quote: str  # EXCD of the quotation TRs, also the realtime key's infix (DNASAAPL)
    order: str  # OVRS_EXCG_CD of orders and account queries
    daytime: str  # EXCD of the KST-daytime session (주간거래)
    present_balance: str  # TR_MKET_CD of inquire-present-balance under NATN_CD 840
    product_type: str  # PRDT_TYPE_CD of search-info
    notice: str  # ODER_COND of H0GSCNI0 notices
    name_ko: str  # tr_mket_name as KIS writes it


class UsExchange(Enum):
    NASDAQ = _Codes("NASDAQ", "NAS", "NASD", "BAQ", "01", "512", "6", "나스닥")
    NYSE = _Codes("NYSE", "NYS", "NYSE", "BAY", "02", "513", "7", "뉴욕")
    AMEX = _Codes("AMEX", "AMS", "AMEX", "BAA", "05", "529", "8", "아멕스")

    def __repr__(self) -> str:
        return f"UsExchange.{self.name}"

    @property
    def codes(self) -> _Codes:
        value: _Codes = self.value
        return value

    @property
    def quote_code(self) -> str:
        return self.codes.quote

    @property
    def order_code(self) -> str:
        return self.codes.order

    @classmethod
    def of_market(cls, market: str) -> UsExchange:
        """The exchange of a directory market name (``NASDAQ``, ``NYSE``, ``AMEX``)."""
        return _BY_MARKET[market.upper()]

    @classmethod
    def of_quote_code(cls, code: str) -> UsExchange | None:
        return _BY_QUOTE.get(code.upper())

    @classmethod
    def of_order_code(cls, code: str) -> UsExchange | None:
        return _BY_ORDER.get(code.upper())

    @classmethod
    def of_notice_code(cls, code: str) -> UsExchange | None:
        return _BY_NOTICE.get(code)


_BY_MARKET: Final = {e.codes.market: e for e in UsExchange}
_BY_QUOTE: Final = {e.codes.quote: e for e in UsExchange}
_BY_ORDER: Final = {e.codes.order: e for e in UsExchange}
_BY_NOTICE: Final = {e.codes.notice: e for e in UsExchange}

# OVRS_EXCG_CD values that mean "every US exchange" (§1): NASD in real inquire-balance, inquire-nccs and
# inquire-ccnl; "%" in inquire-ccnl. In paper inquire-balance NASD is NASDAQ alone.
ALL_US: Final = "NASD"
ALL_EXCHANGES_WILDCARD: Final = "%"
REAL_BALANCE_NASDAQ_ONLY: Final = "NAS"


def realtime_key(exchange: UsExchange, symbol: str) -> str:
    """``tr_key`` of HDFSCNT0/HDFSASP0 (free delayed feed; 0-minute delay for the US): ``DNASAAPL``."""
    return f"D{exchange.quote_code}{symbol}"


def parse_realtime_key(key: str) -> tuple[UsExchange, str] | None:
    """(exchange, ticker) of a ``D``/``R`` + EXCD + ticker key, or None."""
    if len(key) < 5 or key[0] not in "DR":
        return None
    exchange = UsExchange.of_quote_code(key[1:4])
    return (exchange, key[4:]) if exchange is not None else None


# --- REST paths (§2–§9) ------------------------------------------------------------------------------
_OP: Final = "/uapi/overseas-price/v1/quotations"
_OS: Final = "/uapi/overseas-stock/v1/trading"
PATH_PRICE: Final = f"{_OP}/price"
PATH_PRICE_DETAIL: Final = f"{_OP}/price-detail"
PATH_DAILY_PRICE: Final = f"{_OP}/dailyprice"
PATH_ORDER: Final = f"{_OS}/order"
PATH_ORDER_RVSECNCL: Final = f"{_OS}/order-rvsecncl"
PATH_BALANCE: Final = f"{_OS}/inquire-balance"
PATH_PRESENT_BALANCE: Final = f"{_OS}/inquire-present-balance"
PATH_PSAMOUNT: Final = f"{_OS}/inquire-psamount"
PATH_NCCS: Final = f"{_OS}/inquire-nccs"
PATH_CCNL: Final = f"{_OS}/inquire-ccnl"
PATH_ORDER_RESV: Final = f"{_OS}/order-resv"
PATH_ORDER_RESV_CCNL: Final = f"{_OS}/order-resv-ccnl"
PATH_ORDER_RESV_LIST: Final = f"{_OS}/order-resv-list"
PATH_DAYTIME_ORDER: Final = f"{_OS}/daytime-order"
PATH_DAYTIME_RVSECNCL: Final = f"{_OS}/daytime-order-rvsecncl"


# --- TR IDs -------------------------------------------------------------------------------------------
class UsTR(StrEnum):
    """US TR IDs in their real-server spelling; :func:`tr_for` gives what the paper server takes."""

    PRICE = "HHDFS00000300"
    PRICE_DETAIL = "HHDFS76200200"
    DAILY_PRICE = "HHDFS76240000"
    BUY = "TTTT1002U"
    SELL = "TTTT1006U"
    REVISE_CANCEL = "TTTT1004U"
    BALANCE = "TTTS3012R"
    PRESENT_BALANCE = "CTRP6504R"
    PSAMOUNT = "TTTS3007R"
    NCCS = "TTTS3018R"
    CCNL = "TTTS3035R"
    RESERVE_BUY = "TTTT3014U"
    RESERVE_SELL = "TTTT3016U"
    RESERVE_CANCEL = "TTTT3017U"
    RESERVE_LIST = "TTTT3039R"
    DAYTIME_BUY = "TTTS6036U"
    DAYTIME_SELL = "TTTS6037U"
    DAYTIME_REVISE_CANCEL = "TTTS6038U"


# The paper US sell TR (§3, §12.1): KIS's documents say VTTT1001U, KIS's own code sends VTTT1006U.
PAPER_SELL_DOCUMENTED: Final = "VTTT1001U"
PAPER_SELL_AS_CODED: Final = "VTTT1006U"

# Functions the paper server does not offer ("모의투자 미지원"): daytime orders (§7), the reservation list
# (catalogue), and — per the portal, against KIS's Postman and legacy samples — inquire-nccs (§6.2).
PAPER_UNSUPPORTED: Final = frozenset({UsTR.DAYTIME_BUY, UsTR.DAYTIME_SELL, UsTR.DAYTIME_REVISE_CANCEL,
                                      UsTR.RESERVE_LIST})


def tr_for(tr: UsTR, flavour: Flavour) -> str:
    """The TR ID a client sends on ``flavour``: quote TRs (``H…``) are shared; paper swaps a leading
    T/C for V, except the sell, for which the documented ``VTTT1001U`` is sent."""
    text = str(tr)
    if flavour == "real" or text[0] == "H":
        return text
    if tr is UsTR.SELL:
        return PAPER_SELL_DOCUMENTED
    return "V" + text[1:]


def accepted_trs(tr: UsTR, flavour: Flavour) -> frozenset[str]:
    """Every TR ID a server of ``flavour`` takes for ``tr`` (paper sells: both spellings in use)."""
    if flavour == "virtual" and tr is UsTR.SELL:
        return frozenset({PAPER_SELL_DOCUMENTED, PAPER_SELL_AS_CODED})
    return frozenset({tr_for(tr, flavour)})


# --- order codes (§3, §4, §9) --------------------------------------------------------------------------
class UsOrderDivision(StrEnum):
    """``ORD_DVSN`` for US orders. There is no plain market order (``01`` is refused)."""

    LIMIT = "00"
    MOO = "31"  # market on open (sell only)
    LOO = "32"  # limit on open
    MOC = "33"  # market on close (sell only)
    LOC = "34"  # limit on close
    TWAP = "35"  # portal only
    VWAP = "36"  # portal only

    @property
    def priced(self) -> bool:
        """Whether the order carries a limit price (``OVRS_ORD_UNPR``); MOO/MOC send ``"0"``."""
        return self not in (UsOrderDivision.MOO, UsOrderDivision.MOC)

    @property
    def at_open(self) -> bool:
        return self in (UsOrderDivision.MOO, UsOrderDivision.LOO)

    @property
    def at_close(self) -> bool:
        return self in (UsOrderDivision.MOC, UsOrderDivision.LOC)


BUY_DIVISIONS: Final = frozenset({UsOrderDivision.LIMIT, UsOrderDivision.LOO, UsOrderDivision.LOC,
                                  UsOrderDivision.TWAP, UsOrderDivision.VWAP})
SELL_DIVISIONS: Final = frozenset(UsOrderDivision)
PAPER_DIVISIONS: Final = frozenset({UsOrderDivision.LIMIT})
# Reservation orders (§9): limit only, except that a reservation sell may be MOO.
RESERVE_BUY_DIVISIONS: Final = frozenset({UsOrderDivision.LIMIT})
RESERVE_SELL_DIVISIONS: Final = frozenset({UsOrderDivision.LIMIT, UsOrderDivision.MOO})

SIDE_SELL: Final = "01"  # SLL_BUY_DVSN_CD / SELN_BYOV_CLS
SIDE_BUY: Final = "02"
SLL_TYPE_SELL: Final = "00"
ORDER_SERVER: Final = "0"  # ORD_SVR_DVSN_CD
REVISE: Final = "01"  # RVSE_CNCL_DVSN_CD
CANCEL: Final = "02"

# ODER_KIND2 of H0GSCNI0 notices (§8.3) for each ORD_DVSN.
NOTICE_ORDER_KIND: Final[dict[str, str]] = {"00": "2", "31": "A", "32": "B", "33": "C", "34": "D"}

# Inquiry codes.
PRESENT_BALANCE_KRW: Final = "01"  # WCRC_FRCR_DVSN_CD
PRESENT_BALANCE_FOREIGN: Final = "02"
PRESENT_BALANCE_ALL_MARKETS: Final = "00"  # TR_MKET_CD
PRESENT_BALANCE_ALL_KINDS: Final = "00"  # INQR_DVSN_CD
CCNL_ALL: Final = "00"  # SLL_BUY_DVSN, CCLD_NCCS_DVSN
CCNL_FILLED: Final = "01"
CCNL_UNFILLED: Final = "02"
SORT_ASCENDING: Final = "DS"  # 정순
SORT_DESCENDING: Final = "AS"  # 역순 (inquire-ccnl)
BAR_PERIODS: Final[dict[str, str]] = {"D": "0", "W": "1", "M": "2"}  # GUBN


# --- US market rules ----------------------------------------------------------------------------------
MIN_ORDER_PRICE: Final = ONE_CENT  # APBK1507 "가격 $0.01 미만시 온라인 주문불가" (§10)


# The US tick rule lives in chatbot.markets.ticks; its names here as before.
tick_size = us_tick_size
is_on_tick = us_is_on_tick
round_to_tick = us_round_to_tick


def price_text(price: Decimal, decimals: int = PRICE_DECIMALS) -> str:
    """A price as KIS writes it in quotes: ``zdiv`` decimals (``"190.2500"``)."""
    return f"{price:.{decimals}f}"


def notice_price_text(price: Decimal) -> str:
    """``CNTG_UNPR`` of a US notice: 9 digits with 4 implied decimals (148.01 → ``001480100``)."""
    return f"{int((price * 10 ** PRICE_DECIMALS).to_integral_value()):09d}"


def notice_price(text: str) -> Decimal:
    return Decimal(text or "0").scaleb(-PRICE_DECIMALS)


# --- envelope codes ----------------------------------------------------------------------------------
APBK_MARKET_CLOSED: Final = "APBK1664"  # python-kis: "market not open" on §3/§7 orders (meaning disputed)
APBK_NO_SUCH_SYMBOL: Final = "APBK0656"
APBK_PRICE_BELOW_CENT: Final = "APBK1507"
MSG_PRICE_BELOW_CENT: Final = "가격 $0.01 미만시 온라인 주문불가"
MSG_BAD_DIVISION: Final = "주문구분 입력오류입니다."
MSG_NOT_PAPER_TR: Final = "모의투자 TR 이 아닙니다."
MSG_PAPER_UNSUPPORTED: Final = "모의투자에서는 해당업무가 제공되지 않습니다."
PRICE_TRADABLE: Final = "매매 가능"  # e_ordyn of a tradable symbol (python-kis: halted otherwise)

# --- paging and page sizes -----------------------------------------------------------------------------
BALANCE_PAGE_SIZE: Final = 100  # §5.1 (real); paper unverified
NCCS_PAGE_SIZE: Final = 40  # §6.2
CCNL_PAGE_SIZE: Final[dict[Flavour, int]] = {"real": 20, "virtual": 15}  # §6.3
BARS_PER_CALL: Final = 100  # §2.3
RESERVE_LIST_PAGE_SIZE: Final = 20  # unverified


# --- response field tables ---------------------------------------------------------------------------
def _fields(names: str) -> tuple[str, ...]:
    return tuple(names.split())


PRICE_FIELDS: Final = _fields("rsym zdiv base pvol last sign diff rate tvol tamt ordy")
PRICE_DETAIL_FIELDS: Final = _fields(
    "rsym pvol open high low last base tomv pamt uplp dnlp h52p h52d l52p l52d perx pbrx epsx bpsx shar mcap curr "
    "zdiv vnit t_xprc t_xdif t_xrat p_xprc p_xdif p_xrat t_rate p_rate t_xsgn p_xsng e_ordyn e_hogau e_icod e_parp "
    "tvol tamt etyp_nm"
)
DAILY_PRICE_SUMMARY_FIELDS: Final = _fields("rsym zdiv nrec")
DAILY_PRICE_BAR_FIELDS: Final = _fields("xymd clos sign diff rate open high low tvol tamt pbid vbid pask vask")
ORDER_OUTPUT_FIELDS: Final = ("KRX_FWDG_ORD_ORGNO", "ODNO", "ORD_TMD")
RESERVE_OUTPUT_FIELDS: Final = ("ODNO", "RSVN_ORD_RCIT_DT", "OVRS_RSVN_ODNO")
RESERVE_CANCEL_OUTPUT_FIELDS: Final = ("OVRS_RSVN_ODNO",)
BALANCE_HOLDING_FIELDS: Final = _fields(
    "cano acnt_prdt_cd prdt_type_cd ovrs_pdno ovrs_item_name frcr_evlu_pfls_amt evlu_pfls_rt pchs_avg_pric "
    "ovrs_cblc_qty ord_psbl_qty frcr_pchs_amt1 ovrs_stck_evlu_amt now_pric2 tr_crcy_cd ovrs_excg_cd loan_type_cd "
    "loan_dt expd_dt"
)
BALANCE_SUMMARY_FIELDS: Final = _fields(
    "frcr_pchs_amt1 ovrs_rlzt_pfls_amt ovrs_tot_pfls rlzt_erng_rt tot_evlu_pfls_amt tot_pftrt frcr_buy_amt_smtl1 "
    "ovrs_rlzt_pfls_amt2 frcr_buy_amt_smtl2"
)
PRESENT_HOLDING_FIELDS: Final = _fields(
    "prdt_name cblc_qty13 thdt_buy_ccld_qty1 thdt_sll_ccld_qty1 ccld_qty_smtl1 ord_psbl_qty1 frcr_pchs_amt "
    "frcr_evlu_amt2 evlu_pfls_amt2 evlu_pfls_rt1 pdno bass_exrt buy_crcy_cd ovrs_now_pric1 avg_unpr3 tr_mket_name "
    "natn_kor_name pchs_rmnd_wcrc_amt thdt_buy_ccld_frcr_amt thdt_sll_ccld_frcr_amt unit_amt std_pdno prdt_type_cd "
    "scts_dvsn_name loan_rmnd loan_dt loan_expd_dt ovrs_excg_cd item_lnkg_excg_cd"
)
PRESENT_CURRENCY_FIELDS: Final = _fields(
    "crcy_cd crcy_cd_name frcr_buy_amt_smtl frcr_sll_amt_smtl frcr_dncl_amt_2 frst_bltn_exrt frcr_buy_mgn_amt "
    "frcr_etc_mgna frcr_drwg_psbl_amt_1 frcr_evlu_amt2 acpl_cstd_crcy_yn nxdy_frcr_drwg_psbl_amt"
)
PRESENT_TOTAL_FIELDS: Final = _fields(
    "pchs_amt_smtl evlu_amt_smtl evlu_pfls_amt_smtl dncl_amt cma_evlu_amt tot_dncl_amt etc_mgna wdrw_psbl_tot_amt "
    "frcr_evlu_tota evlu_erng_rt1 pchs_amt_smtl_amt evlu_amt_smtl_amt tot_evlu_pfls_amt tot_asst_amt buy_mgn_amt "
    "mgna_tota frcr_use_psbl_amt ustl_sll_amt_smtl ustl_buy_amt_smtl tot_frcr_cblc_smtl tot_loan_amt"
)
PSAMOUNT_FIELDS: Final = _fields(
    "tr_crcy_cd ord_psbl_frcr_amt sll_ruse_psbl_amt ovrs_ord_psbl_amt max_ord_psbl_qty echm_af_ord_psbl_amt "
    "echm_af_ord_psbl_qty ord_psbl_qty exrt frcr_ord_psbl_amt1 ovrs_max_ord_psbl_qty"
)
NCCS_FIELDS: Final = _fields(
    "ord_dt ord_gno_brno odno orgn_odno pdno prdt_name sll_buy_dvsn_cd sll_buy_dvsn_cd_name rvse_cncl_dvsn_cd "
    "rvse_cncl_dvsn_cd_name rjct_rson rjct_rson_name ord_tmd tr_mket_name tr_crcy_cd natn_cd natn_kor_name "
    "ft_ord_qty ft_ccld_qty nccs_qty ft_ord_unpr3 ft_ccld_unpr3 ft_ccld_amt3 ovrs_excg_cd prcs_stat_name "
    "loan_type_cd loan_dt usa_amk_exts_rqst_yn splt_buy_attr_name"
)
CCNL_FIELDS: Final = _fields(
    "ord_dt ord_gno_brno odno orgn_odno sll_buy_dvsn_cd sll_buy_dvsn_cd_name rvse_cncl_dvsn rvse_cncl_dvsn_name "
    "pdno prdt_name ft_ord_qty ft_ord_unpr3 ft_ccld_qty ft_ccld_unpr3 ft_ccld_amt3 nccs_qty prcs_stat_name "
    "rjct_rson rjct_rson_name ord_tmd tr_mket_name tr_crcy_cd tr_natn ovrs_excg_cd tr_natn_name dmst_ord_dt "
    "thco_ord_tmd loan_type_cd loan_dt mdia_dvsn_name usa_amk_exts_rqst_yn splt_buy_attr_name"
)
RESERVE_LIST_FIELDS: Final = _fields(
    "cncl_yn rsvn_ord_rcit_dt ovrs_rsvn_odno ord_dt ord_gno_brno odno sll_buy_dvsn_cd sll_buy_dvsn_name "
    "ovrs_rsvn_ord_stat_cd ovrs_rsvn_ord_stat_cd_name pdno prdt_type_cd prdt_name ord_rcit_tmd ord_fwdg_tmd "
    "tr_dvsn_name ovrs_excg_cd tr_mket_name ord_stfno ft_ord_qty ft_ord_unpr3 ft_ccld_qty nprc_rson_text "
    "splt_buy_attr_name"
)
# prcs_stat_name of inquire-ccnl (§6.3).
STATUS_DONE: Final = "완료"
STATUS_REFUSED: Final = "거부"
STATUS_SENT: Final = "전송"


# --- realtime (§8) -------------------------------------------------------------------------------------
WS_US_TRADE: Final = "HDFSCNT0"
WS_US_ORDERBOOK: Final = "HDFSASP0"
WS_US_NOTICE: Final[dict[Flavour, str]] = {"real": "H0GSCNI0", "virtual": "H0GSCNI9"}
WS_US_NOTICE_TRS: Final = frozenset(WS_US_NOTICE.values())
WS_US_MARKET_TRS: Final = frozenset({WS_US_TRADE, WS_US_ORDERBOOK})
# Which servers stream US market data: KIS's paper server does not ("모의투자 미지원", §8; its fills and notices,
# H0GSCNI9, it does). The embedded simulator speaks both ports alike.
US_MARKET_DATA_STREAMED: Final[dict[Flavour, bool]] = {"real": True, "virtual": False}

# HDFSCNT0: 26 fields per record, RSYM first (§8.1; KIS's newest sample lists 25 without RSYM).
US_TRADE_FIELDS: Final = _fields(
    "RSYM SYMB ZDIV TYMD XYMD XHMS KYMD KHMS OPEN HIGH LOW LAST SIGN DIFF RATE PBID PASK VBID VASK EVOL TVOL TAMT "
    "BIVL ASVL STRN MTYP"
)
# MTYP: 1 regular, 2 pre-market, 3 after-market.
MTYP_REGULAR: Final = "1"
MTYP_PRE: Final = "2"
MTYP_AFTER: Final = "3"
# HDFSASP0: 17 fields, level 1 (§8.2).
US_ORDERBOOK_FIELDS: Final = _fields(
    "RSYM SYMB ZDIV XYMD XHMS KYMD KHMS BVOL AVOL BDVL ADVL PBID1 PASK1 VBID1 VASK1 DBID1 DASK1"
)
# H0GSCNI0/H0GSCNI9 (§8.3): 25 fields in KIS's samples; the portal's 24 stop at TM_DIV_TP and
# python-kis 2.1.x reads 21 (to DEBT_DATE) and drops any other length.
US_NOTICE_FIELDS: Final = _fields(
    "CUST_ID ACNT_NO ODER_NO OODER_NO SELN_BYOV_CLS RCTF_CLS ODER_KIND2 STCK_SHRN_ISCD CNTG_QTY CNTG_UNPR "
    "STCK_CNTG_HOUR RFUS_YN CNTG_YN ACPT_YN BRNC_NO ODER_QTY ACNT_NAME CNTG_ISNM ODER_COND DEBT_GB DEBT_DATE "
    "START_TM END_TM TM_DIV_TP CNTG_UNPR12"
)
US_NOTICE_LAYOUTS: Final[dict[int, tuple[str, ...]]] = {
    25: US_NOTICE_FIELDS, 24: US_NOTICE_FIELDS[:24], 21: US_NOTICE_FIELDS[:21]}
DEBT_CASH: Final = "10"
# The clock of a notice's STCK_CNTG_HOUR (unverified, see UNVERIFIED_CHOICES): the simulator writes it and the
# client reads it in this zone, nowhere else.
NOTICE_TIME_ZONE: Final = NEW_YORK
assert len(US_TRADE_FIELDS) == 26 and len(US_ORDERBOOK_FIELDS) == 17 and len(US_NOTICE_FIELDS) == 25


# --- decisions on disputed or unverified facts, in one place ------------------------------------------
UNVERIFIED_CHOICES: Final[dict[str, str]] = {
    "paper US sell TR sent by the client": f"{PAPER_SELL_DOCUMENTED} (documented, python-kis); the simulator also "
                                           f"takes {PAPER_SELL_AS_CODED} (KIS's code)",
    "inquire-nccs on the paper host": "refused as unsupported (portal); the client lists paper open orders through "
                                      "inquire-ccnl nccs_qty; the simulator can be told to answer VTTS3018R",
    "order outside US hours": f"{APBK_MARKET_CLOSED} (python-kis's market-closed code; other meanings seen)",
    "a real TR on the paper host": f"HTTP 500, rt_cd 1, msg1 {MSG_NOT_PAPER_TR!r}; msg_cd OPSQ0002 (ours)",
    "TWAP/VWAP (ORD_DVSN 35/36, portal only)": "not served by the simulator: refused as an ORD_DVSN it does not offer",
    "revise/cancel of an order with nothing left": "APBK0917 (not APBK0918, which makes python-kis retry as a "
                                                   "daytime order)",
    "ORD_DVSN the server does not offer (01, paper session orders)": f"msg1 {MSG_BAD_DIVISION!r}",
    "off-tick US price": "refused (Rule 612 grid), domestic tick-error wording",
    "HDFSCNT0 record": "26 fields with RSYM (portal, legacy, python-kis)",
    "H0GSCNI0 record": "25 fields by default; 24 (portal) or 21 (python-kis) per connection",
    "H0GSCNI0 STCK_CNTG_HOUR and CNTG_UNPR12": "exchange-local HHMMSS (NOTICE_TIME_ZONE, written by the simulator "
                                               "and read by the client); the price as decimal text (148.0100)",
    "HDFSCNT0 DIFF": "signed (python-kis derives the previous close as LAST - DIFF); REST diff is unsigned",
    "dailyprice nrec": "record count (python-kis; the minute-bar TR's meaning)",
    "dailyprice paging": "one call per BYMD, tr_cont D; the client moves BYMD back",
    "inquire-ccnl/nccs ord_dt, ord_tmd": "exchange-local date and time; dmst_ord_dt/thco_ord_tmd are KST",
    "ORD_TMD of the order reply": "HHMMSS KST (portal)",
    "present balance on paper": "only output3 (KRW totals) served, output1 and output2 empty (KIS's sample: only "
                                "output3 is output normally); the client reads the dollar cash from output3 "
                                "(frcr_evlu_tota, frcr_use_psbl_amt) at inquire-psamount's exrt; positions come "
                                "from inquire-balance per exchange",
    "inquire-balance OVRS_EXCG_CD \"\"": "every US exchange on both hosts (python-kis sends it)",
    "price-detail uplp/dnlp": "0 (US exchanges have no daily price limits)",
    "search-info std_pdno of a US symbol": "empty (the simulator knows no CUSIP)",
    "reservation list page size": str(RESERVE_LIST_PAGE_SIZE),
    "paper inquire-balance page size": str(BALANCE_PAGE_SIZE),
}
