"""Typed results of KIS's US-stock calls: money as :class:`Money` (a ``Decimal`` with its currency),
rates and percentages as ``Decimal``, times as aware datetimes. Never a float, never a bare amount."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from chatbot.kis.models import OrderSide
from chatbot.kis.overseas_protocol import UsExchange
from chatbot.markets.money import Currency as Currency  # noqa: PLC0414 (moved: chatbot.markets.money)
from chatbot.markets.money import Money as Money  # noqa: PLC0414


@dataclass(frozen=True, slots=True)
class UsQuote:
    """``quotations/price`` (HHDFS00000300)."""

    symbol: str
    exchange: UsExchange
    realtime_key: str  # rsym, e.g. DNASAAPL
    price: Money
    previous_close: Money
    change: Money  # signed (KIS sends it unsigned beside ``sign``)
    sign: str  # 1 upper limit, 2 up, 3 flat, 4 lower limit, 5 down
    change_rate: Decimal  # percent, signed
    volume: int
    traded_value: Money
    decimals: int  # zdiv
    orderable: str  # ordy as KIS words it (매수가능, 매도불가, …)


@dataclass(frozen=True, slots=True)
class UsQuoteDetail:
    """``quotations/price-detail`` (HHDFS76200200)."""

    symbol: str
    exchange: UsExchange
    price: Money
    previous_close: Money
    open: Money
    high: Money
    low: Money
    upper_limit: Money  # 0 where the exchange has none
    lower_limit: Money
    volume: int
    traded_value: Money
    previous_volume: int
    week52_high: Money
    week52_high_date: dt.date | None
    week52_low: Money
    week52_low_date: dt.date | None
    per: Decimal
    pbr: Decimal
    eps: Decimal
    bps: Decimal
    shares: int
    market_cap: Money
    tick: Money  # e_hogau
    lot: int  # vnit, shares per trading unit
    tradable: bool  # e_ordyn == "매매 가능"
    tradable_text: str
    sector: str
    krw_per_usd: Decimal  # t_rate, the day's rate KIS quotes with
    price_krw: Money  # t_xprc, KIS's KRW conversion of the price
    decimals: int
    product_kind: str  # etyp_nm (ETP class), empty for shares


@dataclass(frozen=True, slots=True)
class UsBar:
    date: dt.date  # exchange-local date
    open: Money
    high: Money
    low: Money
    close: Money
    volume: int
    traded_value: Money


@dataclass(frozen=True, slots=True)
class UsOrderAck:
    order_no: str  # ODNO
    branch: str  # KRX_FWDG_ORD_ORGNO
    exchange: UsExchange
    accepted_at: dt.datetime  # ORD_TMD, a KST time, placed on the nearest date


@dataclass(frozen=True, slots=True)
class UsPlacedOrder:
    ack: UsOrderAck
    attempts: int
    reconciled: bool  # found in today's orders after an unknown outcome


@dataclass(frozen=True, slots=True)
class UsReservationAck:
    reservation_no: str  # OVRS_RSVN_ODNO (also ODNO of the reply)
    received_date: dt.date  # RSVN_ORD_RCIT_DT, KST
    exchange: UsExchange


@dataclass(frozen=True, slots=True)
class UsReservation:
    """A row of ``order-resv-list`` (real accounts only)."""

    reservation_no: str
    received_date: dt.date
    symbol: str
    name: str
    exchange: UsExchange | None
    side: OrderSide
    quantity: int
    price: Money
    filled_quantity: int
    status: str  # ovrs_rsvn_ord_stat_cd_name
    cancelled: bool
    order_no: str  # odno once sent at the open, else empty
    reason: str  # nprc_rson_text, why it was not sent


@dataclass(frozen=True, slots=True)
class UsHolding:
    symbol: str
    name: str
    exchange: UsExchange | None
    quantity: int
    orderable_quantity: int
    average_cost: Money
    last_price: Money
    cost: Money
    value: Money
    profit_loss: Money
    profit_loss_rate: Decimal  # percent


@dataclass(frozen=True, slots=True)
class UsBalance:
    """``inquire-balance`` (TTTS3012R): US holdings and their dollar totals."""

    holdings: tuple[UsHolding, ...]
    cost_total: Money
    value_total: Money
    profit_loss_total: Money
    realised_profit_loss: Money
    return_rate: Decimal  # percent (tot_pftrt)


@dataclass(frozen=True, slots=True)
class UsCash:
    """One currency row of the present balance (output2)."""

    currency: str
    cash: Money  # frcr_dncl_amt_2
    withdrawable: Money  # frcr_drwg_psbl_amt_1
    krw_rate: Decimal  # frst_bltn_exrt, KRW per unit, first posted today


@dataclass(frozen=True, slots=True)
class UsAccountTotals:
    """The present balance's output3: KRW totals of the whole foreign account."""

    purchase: Money
    evaluation: Money
    profit_loss: Money
    return_rate: Decimal  # percent
    total_assets: Money
    deposits: Money
    foreign_evaluation: Money
    foreign_usable: Money
    withdrawable: Money


@dataclass(frozen=True, slots=True)
class UsPresentBalance:
    """``inquire-present-balance`` (CTRP6504R). On paper only ``totals`` is meaningful at KIS."""

    holdings: tuple[UsHolding, ...]
    cash: tuple[UsCash, ...]
    totals: UsAccountTotals
    krw_per_usd: Decimal  # the rate KIS values the account at (bass_exrt, else the USD row's)

    def cash_in(self, currency: str = "USD") -> UsCash | None:
        return next((c for c in self.cash if c.currency == currency), None)


@dataclass(frozen=True, slots=True)
class UsBuyingPower:
    """``inquire-psamount`` (TTTS3007R) for one symbol at one price."""

    orderable_cash: Money  # ord_psbl_frcr_amt
    overseas_orderable: Money  # ovrs_ord_psbl_amt (foreign currency only)
    max_quantity: int  # max_ord_psbl_qty
    orderable_quantity: int  # ord_psbl_qty
    krw_per_usd: Decimal  # exrt


@dataclass(frozen=True, slots=True)
class UsOrder:
    """A row of ``inquire-ccnl`` or ``inquire-nccs``: an order, a revision or a cancellation."""

    order_no: str
    branch: str
    original_order_no: str
    symbol: str
    name: str
    exchange: UsExchange | None
    side: OrderSide
    revise_cancel: str  # "" or 00 new, 01 revision, 02 cancellation
    quantity: int
    price: Money  # ft_ord_unpr3, 0 for MOO/MOC
    filled_quantity: int
    fill_price: Money  # average, ft_ccld_unpr3
    filled_amount: Money
    unfilled_quantity: int
    status: str  # prcs_stat_name (완료/거부/전송)
    rejected_reason: str
    local_time: dt.datetime | None  # ord_dt + ord_tmd at the exchange
    kst_time: dt.datetime | None  # dmst_ord_dt + thco_ord_tmd, where KIS gives them

    @property
    def is_cancellation(self) -> bool:
        return self.revise_cancel == "02"

    @property
    def is_revision(self) -> bool:
        return self.revise_cancel == "01"

    @property
    def open(self) -> bool:
        """Still working at the exchange: something left, not a cancellation record, not refused."""
        return self.unfilled_quantity > 0 and not self.is_cancellation and not self.rejected_reason
