"""US realtime frames (KIS_OVERSEAS.md §8) as typed records, on :mod:`chatbot.kis.frames`' mechanism.

``HDFSCNT0`` (trades, 26 fields) and ``HDFSASP0`` (level-1 book, 17 fields) arrive in clear;
``H0GSCNI0``/``H0GSCNI9`` (order and fill notices) encrypted, 25 fields in KIS's samples, 24 in the
portal, 21 where python-kis reads them: the layout is told by the record's length. A record is a
tuple of the strings KIS sent with typed properties (``Decimal`` dollars, ``int`` sizes, aware
times) converting on access, exactly as the domestic ones.

:func:`parse_frame` reads US frames and hands any other to :func:`chatbot.kis.frames.parse_frame`,
so one :class:`~chatbot.kis.realtime.RealtimeClient` (``parser=``) carries both markets.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from chatbot.kis import frames
from chatbot.kis import overseas_protocol as o
from chatbot.kis.frames import (
    Decrypt,
    FrameError,
    Record,
    _converters,
    _dec,
    _flag,
    _int,
    _str,
    _to_dec,
    _to_flag,
    _to_int,
)
from chatbot.kis.models import OrderSide
from chatbot.kis.overseas_protocol import UsExchange
from chatbot.markets.us_hours import NEW_YORK, SEOUL


def _stamp(day: str, hms: str, zone: dt.tzinfo) -> dt.datetime:
    return dt.datetime(int(day[:4]), int(day[4:6]), int(day[6:8]), int(hms[:2]), int(hms[2:4]), int(hms[4:6]),
                       tzinfo=zone)


class UsTick(Record):
    """HDFSCNT0, a US trade (delayed feed; 0 minutes for the US): all 26 fields."""

    __slots__ = ()
    TR_ID = o.WS_US_TRADE
    FIELD_NAMES = tuple(o.US_TRADE_FIELDS)
    realtime_key = _str(0)  # DNASAAPL
    symbol = _str(1)
    decimals = _int(2)
    business_date = _str(3)  # exchange-local business date
    local_date = _str(4)
    local_time = _str(5)
    kst_date = _str(6)
    kst_time = _str(7)
    open = _dec(8)
    high = _dec(9)
    low = _dec(10)
    price = _dec(11)
    sign = _str(12)  # 1 upper limit, 2 up, 3 flat, 4 lower limit, 5 down
    diff = _dec(13)  # as sent; see ``change``
    change_rate = _dec(14)
    bid = _dec(15)
    ask = _dec(16)
    bid_size = _int(17)
    ask_size = _int(18)
    trade_volume = _int(19)
    volume = _int(20)
    traded_value = _dec(21)  # dollars
    sell_volume = _int(22)
    buy_volume = _int(23)
    strength = _dec(24)
    session_code = _str(25)  # 1 regular, 2 pre-market, 3 after-market

    @property
    def change(self) -> Decimal:
        """The change against the previous close, signed (whether KIS signs DIFF or not)."""
        diff: Decimal = abs(self.diff)
        return -diff if self[12] in ("4", "5") else diff

    @property
    def exchange(self) -> UsExchange | None:
        return UsExchange.of_quote_code(self[0][1:4])

    @property
    def timestamp(self) -> dt.datetime:
        """The trade's time at the exchange (New York)."""
        return _stamp(self[4], self[5], NEW_YORK)

    @property
    def kst_timestamp(self) -> dt.datetime:
        return _stamp(self[6], self[7], SEOUL)


class UsOrderBook(Record):
    """HDFSASP0, the US level-1 book (17 fields)."""

    __slots__ = ()
    TR_ID = o.WS_US_ORDERBOOK
    FIELD_NAMES = tuple(o.US_ORDERBOOK_FIELDS)
    realtime_key = _str(0)
    symbol = _str(1)
    decimals = _int(2)
    local_date = _str(3)
    local_time = _str(4)
    kst_date = _str(5)
    kst_time = _str(6)
    total_bid_size = _int(7)
    total_ask_size = _int(8)
    total_bid_change = _int(9)
    total_ask_change = _int(10)
    bid = _dec(11)
    ask = _dec(12)
    bid_size = _int(13)
    ask_size = _int(14)
    bid_size_change = _int(15)
    ask_size_change = _int(16)


def _notice_class(name: str, layout: tuple[str, ...]) -> type[Record]:
    at = {field: i for i, field in enumerate(layout)}

    def optional(field: str) -> property:
        return _str(at[field]) if field in at else property(lambda self: "")

    price_at = at["CNTG_UNPR"]
    market_at = at["ODER_COND"]
    attrs: dict[str, Any] = {
        "__slots__": (), "TR_ID": o.WS_US_NOTICE["real"], "FIELD_NAMES": layout,
        "customer_id": _str(at["CUST_ID"]), "account": _str(at["ACNT_NO"]), "order_no": _str(at["ODER_NO"]),
        "original_order_no": _str(at["OODER_NO"]),
        "side": property(lambda self: OrderSide.BUY if self[at["SELN_BYOV_CLS"]] == "02" else OrderSide.SELL),
        "revise_cancel": _str(at["RCTF_CLS"]), "order_kind": _str(at["ODER_KIND2"]),
        "symbol": _str(at["STCK_SHRN_ISCD"]), "quantity": _int(at["CNTG_QTY"]),
        "price": property(lambda self: o.notice_price(self[price_at]),
                          doc="CNTG_UNPR with its 4 implied decimals, in dollars"),
        "time": _str(at["STCK_CNTG_HOUR"]), "refused": _flag(at["RFUS_YN"], "1"),
        "is_fill": _flag(at["CNTG_YN"], "2"), "accept_code": _str(at["ACPT_YN"]), "branch": _str(at["BRNC_NO"]),
        "order_quantity": _int(at["ODER_QTY"]), "account_name": _str(at["ACNT_NAME"]),
        "name": _str(at["CNTG_ISNM"]), "market_code": _str(market_at),
        "exchange": property(lambda self: UsExchange.of_notice_code(self[market_at])),
        "debt_class": _str(at["DEBT_GB"]), "debt_date": _str(at["DEBT_DATE"]),
        "start_time": optional("START_TM"), "end_time": optional("END_TM"), "time_division": optional("TM_DIV_TP"),
        "price12": optional("CNTG_UNPR12"),
        "__doc__": f"H0GSCNI0/H0GSCNI9 US order and fill notice, {len(layout)}-field layout (decrypted).",
    }
    return type(name, (Record,), attrs)


UsFillNotice = _notice_class("UsFillNotice", o.US_NOTICE_LAYOUTS[25])
UsPortalFillNotice = _notice_class("UsPortalFillNotice", o.US_NOTICE_LAYOUTS[24])
UsShortFillNotice = _notice_class("UsShortFillNotice", o.US_NOTICE_LAYOUTS[21])
_NOTICES: dict[int, type[Record]] = {25: UsFillNotice, 24: UsPortalFillNotice, 21: UsShortFillNotice}

for _cls in (UsTick, UsOrderBook):
    _cls.CONVERTERS = _converters(_cls)
    _cls.INT_FIELDS = tuple(i for i, c in enumerate(_cls.CONVERTERS) if c is _to_int)
    _cls.DECIMAL_FIELDS = tuple(i for i, c in enumerate(_cls.CONVERTERS) if c is _to_dec)
    _cls.FLAG_FIELDS = tuple(i for i, c in enumerate(_cls.CONVERTERS) if c is _to_flag)

_PLAIN: dict[str, tuple[type[Record], int]] = {o.WS_US_TRADE: (UsTick, 26), o.WS_US_ORDERBOOK: (UsOrderBook, 17)}
_US_TRS = frozenset(_PLAIN) | o.WS_US_NOTICE_TRS
# the common case, one plain record of a known TR (US or domestic), told by the envelope's 15 characters
_PLAIN_SINGLE: dict[str, tuple[type[Record], int]] = {
    **frames._PLAIN_SINGLE, **{f"0|{tr}|001|": spec for tr, spec in _PLAIN.items()}}


def parse_frame(text: str, decrypt: Decrypt | None = None) -> list[Record]:
    """Every record of one data frame, US or domestic; :class:`FrameError` when it cannot be read."""
    spec = _PLAIN_SINGLE.get(text[:15])
    if spec is not None:
        fields = text[15:].split("^")
        if len(fields) == spec[1]:
            return [spec[0](fields)]
    if text[2:10] not in _US_TRS or text[10:11] != "|":  # every TR id is 8 characters: "0|HDFSCNT0|001|…"
        return frames.parse_frame(text, decrypt)
    parts = text.split("|", 3)
    if len(parts) != 4:
        raise FrameError("truncated frame")
    enc, tr_id, count_text, payload = parts
    if not count_text.isdigit():
        raise FrameError("bad record count")
    count = int(count_text)
    if enc == "1":
        if decrypt is None:
            raise FrameError(f"encrypted {tr_id} frame without a key")
        payload = decrypt(tr_id, payload)
    elif enc != "0":
        raise FrameError("bad encryption flag")
    fields = payload.split("^")
    spec = _PLAIN.get(tr_id)
    if spec is None:
        per = len(fields) // count if count else 0
        cls = _NOTICES.get(per)
        if cls is None:
            raise FrameError(f"{tr_id} record of {per} fields")
    else:
        cls, per = spec
    if count <= 0 or len(fields) != count * per:
        raise FrameError(f"{tr_id}: {len(fields)} fields for {count} records of {per}")
    if count == 1:
        return [cls(fields)]
    return [cls(fields[i * per:(i + 1) * per]) for i in range(count)]
