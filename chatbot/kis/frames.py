"""Real-time frames (``<enc>|<TR>|<count>|a^b^c…``) parsed into typed events.

This is the hot path. An event is a tuple subclass holding the record's fields as the strings
KIS sent; each field has a typed property (``int`` won, ``Decimal`` rates, ``str`` codes and
times) that converts on access. Parsing a frame costs one slice of the envelope, one ``split`` of the
payload and one tuple; no dict is built, and a consumer pays only for the fields it reads.

``Record.typed()`` converts every field at once with a function compiled per record class from its
converters: straight-line code, one builtin call per numeric field, no per-field loop or list.
Measured (``python -m bench.realtime``), that is cheaper than C-level loops over the fields
(``map(int, itemgetter(*ints)(record))`` per type and an ``itemgetter`` putting the fields back in
order): the 24 ``int()`` and 7 ``Decimal()`` calls are most of the time, not the bytecode around them.

An install compiles this module with mypyc where it can (``setup.py``; :data:`COMPILED` tells). The record
classes stay ordinary Python classes (``mypyc_attr(native_class=False)``: a tuple subclass with properties
made at import time is not something mypyc's native classes can be); the functions are compiled, and
``typed()`` is then a loop over the fields' kinds (:func:`_typed_natively`), C code, instead of the
generated straight-line Python, which mypyc never sees. Same results either way (tests/test_typed_frames.py
runs on whichever is installed; ``KISBOT_PURE_PYTHON=1`` at install time gives the pure one).
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Any, ClassVar, Final, cast

from mypy_extensions import mypyc_attr

from chatbot.kis import protocol as p
from chatbot.kis.models import OrderSide
from chatbot.kis.protocol import KST

# True when this is the mypyc-compiled module (a shared library), False when the .py runs interpreted.
COMPILED: Final = not __file__.endswith(".py")


class FrameError(ValueError):
    """A frame that cannot be read (truncated, unknown TR, wrong field count, undecryptable)."""


def _str(i: int) -> property:
    return property(lambda self: self[i], doc=f"field {i} as sent")


def _int(i: int) -> property:
    def get(self: tuple[str, ...]) -> int:
        value = self[i]
        return int(value) if value else 0
    return property(get, doc=f"field {i} as int")


def _dec(i: int) -> property:
    def get(self: tuple[str, ...]) -> Decimal:
        value = self[i]
        return Decimal(value) if value else Decimal(0)
    return property(get, doc=f"field {i} as Decimal")


def _flag(i: int, true: str = "Y") -> property:
    return property(lambda self: self[i] == true, doc=f"field {i} == {true!r}")


@mypyc_attr(native_class=False)
class Record(tuple):  # type: ignore[type-arg]
    """One record of a frame: the fields as sent, with typed properties added per TR."""

    __slots__ = ()
    TR_ID: ClassVar[str] = ""
    FIELD_NAMES: ClassVar[tuple[str, ...]] = ()
    CONVERTERS: ClassVar[tuple[Callable[[str], Any], ...]] = ()
    INT_FIELDS: ClassVar[tuple[int, ...]] = ()
    DECIMAL_FIELDS: ClassVar[tuple[int, ...]] = ()
    FLAG_FIELDS: ClassVar[tuple[int, ...]] = ()

    def as_dict(self) -> dict[str, str]:
        """KIS field name → raw value (for logs and debugging; not for the hot path)."""
        return dict(zip(self.FIELD_NAMES, self, strict=False))

    def typed(self) -> tuple[Any, ...]:
        """Every field converted at once (int, Decimal, bool or str, as the properties give them).

        The first call on a record class compiles that class's converter (:func:`_compile_typed`) and
        installs it as the class's ``typed``; this one then only serves classes without converters."""
        cls = type(self)
        if not cls.CONVERTERS or "typed" in vars(cls):
            return _typed_slowly(self)
        fast = _compile_typed(cls)
        cls.typed = fast  # type: ignore[assignment,method-assign]
        return fast(self)


def _to_int(v: str) -> int:
    return int(v) if v else 0


def _to_dec(v: str) -> Decimal:
    return Decimal(v) if v else Decimal(0)


def _to_flag(v: str) -> bool:
    return v == "Y"


def _converters(cls: type[Record]) -> tuple[Callable[[str], Any], ...]:
    """The conversion of each field, read off the class's typed properties."""
    kinds: dict[int, Callable[[str], Any]] = {}
    for prop in vars(cls).values():
        if isinstance(prop, property) and prop.__doc__ and prop.__doc__.startswith("field "):
            index_text, _, kind = prop.__doc__[6:].partition(" ")
            kinds[int(index_text)] = {"as int": _to_int, "as Decimal": _to_dec}.get(
                kind, _to_flag if kind.startswith("==") else str)
    return tuple(kinds.get(i, str) for i in range(len(cls.FIELD_NAMES)))


def _typed_slowly(record: Record) -> tuple[Any, ...]:
    """Every field through its converter, one by one: the reference :meth:`Record.typed` follows, and
    its path for a record the compiled one cannot take (an empty numeric field, a wrong length)."""
    converters = type(record).CONVERTERS
    if not converters:
        return tuple(record)
    return tuple([conv(v) for conv, v in zip(converters, record, strict=True)])


def _exact_decimal() -> Callable[[str], Decimal]:
    """``Decimal(text)`` for the compiled path, ~15 % cheaper: ``create_decimal`` of a context as wide
    as the one the constructor converts text under (libmpdec's maximum precision and exponents, so
    nothing rounds), without the constructor's keyword parsing and current-context look-up. It traps
    every signal, so a text the constructor would not take exactly as written (or takes with a signal
    at all) raises here and the record goes down :func:`_typed_slowly`, which calls ``Decimal``."""
    signals = [decimal.Clamped, decimal.DivisionByZero, decimal.Inexact, decimal.InvalidOperation,
               decimal.Overflow, decimal.Rounded, decimal.Subnormal, decimal.Underflow, decimal.FloatOperation]
    return Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, clamp=0, traps=signals).create_decimal


def _compile_typed(cls: type[Record]) -> Callable[[Record], tuple[Any, ...]]:
    """``cls.typed`` as straight-line code: unpack the record, convert each numeric field with the
    builtin (:func:`_exact_decimal` for decimals), build the tuple. A field they refuse (an empty
    numeric field reads as zero, as its property does) sends the record down :func:`_typed_slowly`,
    which gives the same values or raises the same error as the properties."""
    if COMPILED:
        return _typed_natively(cls)
    names = [f"f{i}" for i in range(len(cls.CONVERTERS))]
    out = [f"to_int({name})" if conv is _to_int else f"to_dec({name})" if conv is _to_dec
           else f"{name} == 'Y'" if conv is _to_flag else name
           for conv, name in zip(cls.CONVERTERS, names, strict=True)]
    source = (
        "def typed(self):\n"
        "    try:\n"
        f"        {', '.join(names)}, = self\n"
        f"        return ({', '.join(out)},)\n"
        "    except (ValueError, ArithmeticError):\n"
        "        return slowly(self)\n")
    namespace: dict[str, Any] = {"to_int": int, "to_dec": _exact_decimal(), "slowly": _typed_slowly}
    exec(compile(source, f"<{cls.__name__}.typed>", "exec"), namespace)  # noqa: S102 - our own source
    typed: Callable[[Record], tuple[Any, ...]] = namespace["typed"]
    typed.__qualname__ = f"{cls.__name__}.typed"
    typed.__doc__ = Record.typed.__doc__
    return typed


def _typed_natively(cls: type[Record]) -> Callable[[Record], tuple[Any, ...]]:
    """``cls.typed`` when mypyc compiled this module: the record copied to a list, then loops over the
    numeric and flag fields replacing each with its conversion, which mypyc turns into C (``int(text)``
    straight to CPython's parser, not a call through the ``int`` type), instead of the generated Python
    above, which mypyc never sees. The same fall-back to :func:`_typed_slowly`.
    A nested function, because mypyc's closures bind as methods where its plain functions do not."""
    width = len(cls.CONVERTERS)
    ints = tuple(i for i, conv in enumerate(cls.CONVERTERS) if conv is _to_int)
    decimals = tuple(i for i, conv in enumerate(cls.CONVERTERS) if conv is _to_dec)
    flags = tuple(i for i, conv in enumerate(cls.CONVERTERS) if conv is _to_flag)
    to_dec = _exact_decimal()

    def typed(self: tuple[str, ...]) -> tuple[Any, ...]:
        if len(self) != width:
            return _typed_slowly(cast(Record, self))
        out: list[Any] = list(self)
        try:
            for i in ints:
                out[i] = int(self[i])
            for i in decimals:
                out[i] = to_dec(self[i])
        except (ValueError, ArithmeticError):
            return _typed_slowly(cast(Record, self))
        for i in flags:
            out[i] = self[i] == "Y"
        return tuple(out)

    typed.__doc__ = Record.typed.__doc__
    return typed


@mypyc_attr(native_class=False)
class Tick(Record):
    """H0STCNT0, the real-time trade price: all 46 fields."""

    __slots__ = ()
    TR_ID = p.WS_TRADE
    FIELD_NAMES = tuple(p.TRADE_FIELDS)
    code = _str(0)
    time = _str(1)  # HHMMSS, KST
    price = _int(2)
    sign = _str(3)  # 1 upper limit, 2 up, 3 flat, 4 lower limit, 5 down
    change = _int(4)
    change_rate = _dec(5)
    vwap = _dec(6)
    open = _int(7)
    high = _int(8)
    low = _int(9)
    ask = _int(10)
    bid = _int(11)
    trade_volume = _int(12)
    volume = _int(13)
    traded_value = _int(14)
    sell_count = _int(15)
    buy_count = _int(16)
    net_buy_count = _int(17)
    strength = _dec(18)
    sell_volume = _int(19)
    buy_volume = _int(20)
    side_code = _str(21)  # 1 buy, 3 pre-open, 5 sell
    buy_ratio = _dec(22)
    volume_rate = _dec(23)
    open_time = _str(24)
    open_sign = _str(25)
    from_open = _int(26)
    high_time = _str(27)
    high_sign = _str(28)
    from_high = _int(29)
    low_time = _str(30)
    low_sign = _str(31)
    from_low = _int(32)
    business_date = _str(33)  # YYYYMMDD
    session_code = _str(34)
    halted = _flag(35)
    ask_size = _int(36)
    bid_size = _int(37)
    total_ask_size = _int(38)
    total_bid_size = _int(39)
    turnover = _dec(40)
    prev_same_time_volume = _int(41)
    prev_same_time_rate = _dec(42)
    hour_code = _str(43)
    random_end = _str(44)
    vi_base_price = _int(45)

    @property
    def timestamp(self) -> dt.datetime:
        d, t = self[33], self[1]
        return dt.datetime(int(d[:4]), int(d[4:6]), int(d[6:8]), int(t[:2]), int(t[2:4]), int(t[4:6]), tzinfo=KST)


@mypyc_attr(native_class=False)
class OrderBook(Record):
    """H0STASP0, the real-time order book: 10 levels a side and the totals (59 fields)."""

    __slots__ = ()
    TR_ID = p.WS_ORDERBOOK
    FIELD_NAMES = tuple(p.ORDERBOOK_FIELDS)
    code = _str(0)
    time = _str(1)
    hour_code = _str(2)
    total_ask_size = _int(43)
    total_bid_size = _int(44)
    overtime_total_ask_size = _int(45)
    overtime_total_bid_size = _int(46)
    expected_price = _int(47)
    expected_quantity = _int(48)
    expected_volume = _int(49)
    expected_change = _int(50)
    expected_sign = _str(51)
    expected_change_rate = _dec(52)
    volume = _int(53)
    total_ask_change = _int(54)
    total_bid_change = _int(55)
    overtime_ask_change = _int(56)
    overtime_bid_change = _int(57)
    deal_code = _str(58)

    @property
    def asks(self) -> tuple[int, ...]:
        return tuple(int(v or 0) for v in self[3:13])

    @property
    def bids(self) -> tuple[int, ...]:
        return tuple(int(v or 0) for v in self[13:23])

    @property
    def ask_sizes(self) -> tuple[int, ...]:
        return tuple(int(v or 0) for v in self[23:33])

    @property
    def bid_sizes(self) -> tuple[int, ...]:
        return tuple(int(v or 0) for v in self[33:43])


@mypyc_attr(native_class=False)
class ExecutionNotice(Record):
    """H0STCNI0/H0STCNI9 execution notice (decrypted): what every layout of it has. The two layouts
    (:data:`FillNotice`, :data:`LegacyFillNotice`) are built from their field tables below."""

    __slots__ = ()
    customer_id: str
    account: str
    order_no: str
    original_order_no: str
    side: OrderSide
    revise_cancel: str
    order_kind: str
    order_condition: str
    code: str
    quantity: int  # executed (CNTG_QTY)
    price: int  # executed (CNTG_UNPR)
    time: str  # HHMMSS, KST
    refused: bool
    is_fill: bool  # an execution, not an acceptance
    accept_code: str
    branch: str
    order_quantity: int
    account_name: str
    condition_price: str
    exchange: str
    credit_class: str
    credit_loan_date: str
    name: str
    order_price: int


def _notice_class(name: str, layout: list[str]) -> type[ExecutionNotice]:
    at = {field: i for i, field in enumerate(layout)}

    def opt_str(field: str) -> property:
        return _str(at[field]) if field in at else property(lambda self: "")

    attrs: dict[str, Any] = {
        "__slots__": (), "TR_ID": "H0STCNI0", "FIELD_NAMES": tuple(layout),
        "customer_id": _str(at["CUST_ID"]), "account": _str(at["ACNT_NO"]), "order_no": _str(at["ODER_NO"]),
        "original_order_no": _str(at["OODER_NO"]),
        "side": property(lambda self: OrderSide.BUY if self[at["SELN_BYOV_CLS"]] == "02" else OrderSide.SELL),
        "revise_cancel": _str(at["RCTF_CLS"]), "order_kind": _str(at["ODER_KIND"]),
        "order_condition": _str(at["ODER_COND"]), "code": _str(at["STCK_SHRN_ISCD"]),
        "quantity": _int(at["CNTG_QTY"]), "price": _int(at["CNTG_UNPR"]), "time": _str(at["STCK_CNTG_HOUR"]),
        "refused": _flag(at["RFUS_YN"], "1"), "is_fill": _flag(at["CNTG_YN"], "2"), "accept_code": _str(at["ACPT_YN"]),
        "branch": _str(at["BRNC_NO"]), "order_quantity": _int(at["ODER_QTY"]), "account_name": _str(at["ACNT_NAME"]),
        "condition_price": opt_str("ORD_COND_PRC"), "exchange": opt_str("ORD_EXG_GB"),
        "credit_class": _str(at["CRDT_CLS"]), "credit_loan_date": _str(at["CRDT_LOAN_DATE"]),
        "name": _str(at["CNTG_ISNM40"]), "order_price": _int(at["ODER_PRC"]),
        "__doc__": f"H0STCNI0/H0STCNI9 execution notice, {len(layout)}-field layout (decrypted).",
    }
    return type(name, (ExecutionNotice,), attrs)


FillNotice = _notice_class("FillNotice", list(p.NOTICE_FIELDS))
LegacyFillNotice = _notice_class("LegacyFillNotice", list(p.NOTICE_FIELDS_LEGACY))
for _cls in (Tick, OrderBook):
    _cls.CONVERTERS = _converters(_cls)
    _cls.INT_FIELDS = tuple(i for i, c in enumerate(_cls.CONVERTERS) if c is _to_int)
    _cls.DECIMAL_FIELDS = tuple(i for i, c in enumerate(_cls.CONVERTERS) if c is _to_dec)
    _cls.FLAG_FIELDS = tuple(i for i, c in enumerate(_cls.CONVERTERS) if c is _to_flag)

_PLAIN: dict[str, tuple[type[Record], int]] = {p.WS_TRADE: (Tick, 46), p.WS_ORDERBOOK: (OrderBook, 59)}
# the common case, one plain record of a known TR, told by the envelope's 15 characters
_PLAIN_SINGLE: dict[str, tuple[type[Record], int]] = {f"0|{tr}|001|": spec for tr, spec in _PLAIN.items()}
Decrypt = Callable[[str, str], str]  # (tr_id, base64 payload) -> plaintext


def parse_frame(text: str, decrypt: Decrypt | None = None) -> list[Record]:
    """Every record of one data frame; :class:`FrameError` when the frame cannot be read."""
    spec = _PLAIN_SINGLE.get(text[:15])
    if spec is not None:
        fields = text[15:].split("^")
        if len(fields) == spec[1]:
            return [spec[0](fields)]
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
    spec = _PLAIN.get(tr_id)
    fields = payload.split("^")
    if spec is None:
        if tr_id not in p.WS_NOTICE_TRS:
            raise FrameError(f"unknown TR {tr_id}")
        per = len(fields) // count if count else 0
        cls: type[Record] = FillNotice if per == 26 else LegacyFillNotice if per == 23 else Record
        if cls is Record:
            raise FrameError(f"{tr_id} record of {per} fields")
    else:
        cls, per = spec
    if count <= 0 or len(fields) != count * per:
        raise FrameError(f"{tr_id}: {len(fields)} fields for {count} records of {per}")
    if count == 1:
        return [cls(fields)]
    return [cls(fields[i * per:(i + 1) * per]) for i in range(count)]
