"""Typed results of KIS's domestic calls: prices as ``int`` won, rates as ``Decimal``, times in KST.

These are the wire's types, kept in whole won for the KRX hot paths; the service's front ends see the
broker port's models (:mod:`chatbot.broker`, money as ``Money``), converted by
:mod:`chatbot.kis.domestic_broker`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from chatbot.broker import OrderSide as OrderSide  # noqa: PLC0414 (the port's; re-exported)
from chatbot.kis import protocol as p
from chatbot.kis.protocol import KST as KST  # noqa: PLC0414 (re-exported: markets.refresh, alerts.engine)
from chatbot.security.credentials import Account as Account  # noqa: PLC0414 (moved; re-exported)


@dataclass(frozen=True, slots=True)
class Quote:
    code: str
    price: int
    change: int
    change_sign: str  # 1 upper limit, 2 up, 3 flat, 4 lower limit, 5 down
    change_rate: Decimal  # percent
    volume: int
    traded_value: int
    open: int
    high: int
    low: int
    upper_limit: int
    lower_limit: int
    base_price: int
    tick: int  # this stock's tick at its current price: KIS's aspr_unit (ETFs/ETNs differ), else the KRX table
    market_name: str
    sector: str
    halted: bool

    def tick_for(self, price: int) -> int:
        """The tick an order at ``price`` must sit on. KIS's ``aspr_unit`` is this stock's tick at its
        current price: when it is the share table's, the table gives the tick at any price; when it is not
        (ETFs and ETNs tick by their own rule), the stock's own tick holds, by the fund rule across its
        2,000-won step."""
        if self.tick == p.tick_size(self.price):
            return p.tick_size(price)
        if self.tick == p.fund_tick_size(self.price):
            return p.fund_tick_size(price)
        return self.tick


@dataclass(frozen=True, slots=True)
class StockInfo:
    code: str
    isin: str
    name: str
    name_en: str
    product_type: str


@dataclass(frozen=True, slots=True)
class Holding:
    code: str
    name: str
    quantity: int
    orderable_quantity: int
    average_price: Decimal
    purchase_amount: int
    current_price: int
    evaluation: int
    profit_loss: int
    profit_loss_rate: Decimal  # percent


@dataclass(frozen=True, slots=True)
class Balance:
    holdings: tuple[Holding, ...]
    cash: int  # 예수금 (dnca_tot_amt)
    cash_d2: int  # D+2 settlement cash
    securities_evaluation: int
    total_evaluation: int
    purchase_total: int
    profit_loss_total: int
    net_assets: int


@dataclass(frozen=True, slots=True)
class OrderAck:
    order_no: str  # ODNO, 10 digits
    branch: str  # KRX_FWDG_ORD_ORGNO, needed to revise/cancel
    time: str  # ORD_TMD, HHMMSS KST


@dataclass(frozen=True, slots=True)
class OpenOrder:
    order_no: str
    branch: str
    original_order_no: str
    code: str
    name: str
    side: OrderSide
    division: str  # ORD_DVSN code
    quantity: int
    price: int
    filled_quantity: int
    cancellable_quantity: int
    time: str
    exchange: str = "KRX"  # EXCG_ID_DVSN_CD as listed: KRX, NXT or SOR; a revise or cancel must name it


@dataclass(frozen=True, slots=True)
class Execution:
    """A row of the daily orders/executions listing (inquire-daily-ccld)."""

    date: str
    time: str
    order_no: str
    branch: str
    original_order_no: str
    code: str
    name: str
    side: OrderSide
    division: str
    quantity: int
    price: int
    filled_quantity: int
    average_fill_price: Decimal
    remaining_quantity: int
    rejected_quantity: int
    cancelled: bool
    exchange: str = "KRX"  # EXCG_ID_DVSN_CD as listed (excg_id_dvsn_Cd): KRX, NXT or SOR
    filled_amount: Decimal | None = None  # tot_ccld_amt (won); a US row's ft_ccld_amt3 (dollars); None: blank


@dataclass(frozen=True, slots=True)
class BuyingPower:
    orderable_cash: int
    calc_price: int
    max_quantity: int  # without receivables (nrcvb_buy_qty)
    max_amount: int


@dataclass(frozen=True, slots=True)
class Bar:
    date: dt.date
    open: int
    high: int
    low: int
    close: int
    volume: int
    traded_value: int
