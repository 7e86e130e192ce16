"""Paper accounts, orders and executions, and the matching of resting orders against market trades.

Market orders fill at once at the current price; a marketable limit order fills at once at the
current price; other limit orders rest and fill at their limit price when a trade crosses it.
A market buy reserves cash at the upper limit price, as KIS does. Everything here is synchronous
and in memory: the server persists the accounts a call touched before it answers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any, Protocol, TypeVar

from chatbot.kis import protocol as p
from chatbot.sim.market import Market, Trade

BRANCH = "06010"
COMMISSION_RATE = Decimal("0.00015")  # 0.015 % per fill, both sides
SELL_TAX_RATE = Decimal("0.0020")  # securities transaction tax on sells
MARKET_DIVISIONS = frozenset({p.OrderDivision.MARKET, p.OrderDivision.BEST_LIMIT, p.OrderDivision.IOC_MARKET,
                              p.OrderDivision.FOK_MARKET})
LIMIT_DIVISIONS = frozenset({p.OrderDivision.LIMIT, p.OrderDivision.CONDITIONAL_LIMIT,
                             p.OrderDivision.TOP_PRIORITY_LIMIT})


class SimReject(Exception):
    """An order the exchange refuses; ``reason`` maps to a KIS error per flavour in the server."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class SimOrder:
    order_no: str
    original_order_no: str
    account_id: str
    code: str
    side: str  # "01" sell, "02" buy
    division: str
    quantity: int
    price: int  # limit price; 0 for market
    date: str  # YYYYMMDD
    time: str  # HHMMSS
    kind: str = "new"  # new | revise | cancel
    filled_qty: int = 0
    filled_amount: int = 0
    cancelled_qty: int = 0  # cancelled or moved to a revision
    reserve_price: int = 0  # price used to reserve cash on buys
    branch: str = BRANCH
    exchange: str = p.EXCHANGE_KRX  # EXCG_ID_DVSN_CD it was placed on; its revisions and cancels must name it
    refused_qty: int = 0  # refused by the exchange after KIS accepted it (rjct_qty; the notice's RFUS_YN=1)

    @property
    def remaining(self) -> int:
        if self.kind == "cancel":
            return 0
        return self.quantity - self.filled_qty - self.cancelled_qty - self.refused_qty

    @property
    def is_buy(self) -> bool:
        return self.side == p.Side.BUY

    @property
    def average_fill_price(self) -> Decimal:
        if not self.filled_qty:
            return Decimal(0)
        return (Decimal(self.filled_amount) / self.filled_qty).quantize(Decimal("0.01"), ROUND_DOWN)


@dataclass(slots=True)
class Position:
    quantity: int = 0
    cost: int = 0  # purchase amount of the quantity held (pchs_amt)
    today_buy: int = 0
    today_sell: int = 0
    prev_buy: int = 0
    prev_sell: int = 0


@dataclass(slots=True)
class PaperAccount:
    account_id: str  # CANO-ACNT_PRDT_CD
    cash: int
    positions: dict[str, Position] = field(default_factory=dict)
    orders: list[SimOrder] = field(default_factory=list)
    today_buy_amount: int = 0
    today_sell_amount: int = 0
    today_fees: int = 0
    prev_buy_amount: int = 0
    prev_sell_amount: int = 0
    prev_fees: int = 0

    def open_orders(self) -> list[SimOrder]:
        return [o for o in self.orders if o.remaining > 0]

    def reserved_cash(self) -> int:
        return sum(_gross_buy_cost(o.remaining * o.reserve_price) for o in self.orders
                   if o.is_buy and o.remaining > 0)

    def orderable_cash(self) -> int:
        return self.cash - self.reserved_cash()

    def reserved_shares(self, code: str) -> int:
        return sum(o.remaining for o in self.orders if not o.is_buy and o.code == code and o.remaining > 0)

    def sellable(self, code: str) -> int:
        pos = self.positions.get(code)
        return (pos.quantity if pos else 0) - self.reserved_shares(code)

    def find(self, order_no: str) -> SimOrder | None:
        want = p.order_no_key(order_no)
        for order in self.orders:
            if p.order_no_key(order.order_no) == want:
                return order
        return None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PaperAccount:
        account = cls(**{k: v for k, v in data.items() if k not in ("positions", "orders")})
        account.positions = {code: Position(**pos) for code, pos in data.get("positions", {}).items()}
        account.orders = [SimOrder(**o) for o in data.get("orders", [])]
        return account


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """Something that happened to a paper order: what execution notices (WebSocket) are made from.

    ``kind`` is ``accepted``, ``cancelled``, ``revised``, ``filled``, ``refused`` (the exchange refused
    an accepted order) or ``change_refused`` (it refused an accepted revision or cancellation, ``order``);
    for fills ``quantity`` and ``price`` are the fill's, otherwise the order's.
    """

    kind: str
    account_id: str
    order: SimOrder
    quantity: int
    price: int
    time: str


def _commission(amount: int) -> int:
    return int((Decimal(amount) * COMMISSION_RATE).to_integral_value(ROUND_DOWN))


def _sell_tax(amount: int) -> int:
    return int((Decimal(amount) * SELL_TAX_RATE).to_integral_value(ROUND_DOWN))


def _gross_buy_cost(amount: int) -> int:
    return amount + _commission(amount)


class Exchange:
    """Every paper account and the matching engine."""

    def __init__(self, market: Market, starting_cash: int, clock: Callable[[], dt.datetime]) -> None:
        self.market = market
        self.starting_cash = starting_cash
        self.clock = clock
        self.accounts: dict[str, PaperAccount] = {}
        self.next_order_no = 1000
        self.dirty: set[str] = set()
        self._resting: dict[str, list[SimOrder]] = {}  # code -> open limit orders
        self._order_listeners: list[Callable[[OrderEvent], None]] = []
        market.add_listener(self._on_trade)

    def add_order_listener(self, callback: Callable[[OrderEvent], None]) -> None:
        self._order_listeners.append(callback)

    def _emit(self, kind: str, order: SimOrder, quantity: int, price: int, time: str) -> None:
        event = OrderEvent(kind, order.account_id, order, quantity, price, time)
        for listener in self._order_listeners:
            listener(event)

    # -- accounts --------------------------------------------------------------------------------
    def account(self, account_id: str) -> PaperAccount:
        """The paper account, opened with the starting cash on first use."""
        acct = self.accounts.get(account_id)
        if acct is None:
            acct = PaperAccount(account_id=account_id, cash=self.starting_cash)
            self.accounts[account_id] = acct
            self.dirty.add(account_id)
        return acct

    def reset(self, account_id: str) -> PaperAccount:
        self.accounts.pop(account_id, None)
        for orders in self._resting.values():
            orders[:] = [o for o in orders if o.account_id != account_id]
        return self.account(account_id)

    # -- orders ----------------------------------------------------------------------------------
    def _new_order_no(self) -> str:
        self.next_order_no += 1
        return f"{self.next_order_no:010d}"

    def _stamp(self) -> tuple[str, str]:
        now = self.clock()
        return now.strftime("%Y%m%d"), now.strftime("%H%M%S")

    def place(self, account_id: str, code: str, side: str, division: str, quantity: int, price: int,
              exchange: str = p.EXCHANGE_KRX) -> SimOrder:
        """Validate and accept an order; fill it at once when it is marketable. Orders on every exchange
        (KRX, NXT, SOR) meet the same market here; the exchange is recorded and listed."""
        state = self.market.get(code)
        if state is None:
            raise SimReject("unknown_code", code)
        code = state.instrument.code  # an ETN may come as Q + its code (KIS_API.md §4.1: "ETN: 7")
        self._refuse_halted(code)
        if quantity <= 0:
            raise SimReject("bad_quantity")
        lower, upper = state.limits
        if division in MARKET_DIVISIONS:
            price, reserve = 0, upper
        elif division in LIMIT_DIVISIONS:
            if price <= 0:
                raise SimReject("bad_price")
            if price % state.tick_for(price):
                raise SimReject("off_tick", str(state.tick_for(price)))
            if not lower <= price <= upper:
                raise SimReject("out_of_limits", f"{lower}~{upper}")
            reserve = price
        else:
            raise SimReject("bad_division", division)
        acct = self.account(account_id)
        if side == p.Side.BUY:
            if _gross_buy_cost(quantity * reserve) > acct.orderable_cash():
                raise SimReject("insufficient_cash")
        elif side == p.Side.SELL:
            if quantity > acct.sellable(code):
                raise SimReject("insufficient_shares")
        else:
            raise SimReject("bad_side", side)
        day, hms = self._stamp()
        order = SimOrder(order_no=self._new_order_no(), original_order_no="", account_id=account_id, code=code,
                         side=side, division=division, quantity=quantity, price=price, date=day, time=hms,
                         reserve_price=reserve if side == p.Side.BUY else 0, exchange=exchange)
        acct.orders.append(order)
        self.dirty.add(account_id)
        self._emit("accepted", order, quantity, price, hms)
        self._match_on_entry(acct, order)
        return order

    def _refuse_halted(self, code: str) -> None:
        """No new order or revision on a symbol whose trading is halted (the master's 거래정지, as KIS's quotes
        say with temp_stop_yn): KIS refuses it; the code it answers with is not documented (our choice)."""
        listing = self.market.listing(code)
        if listing is not None and listing.halted:
            raise SimReject("halted", code)

    def _modifiable(self, account_id: str, original_no: str, quantity: int, all_remaining: bool, exchange: str,
                    action: str) -> tuple[PaperAccount, SimOrder, int]:
        """The order a cancel or revision acts on, and the quantity it takes (KIS's APBK0918 when none).
        Sent to another exchange than the order's, it is refused as KIS refuses it (§4.2)."""
        acct = self.account(account_id)
        orig = acct.find(original_no)
        if orig is None or orig.kind == "cancel" or orig.remaining <= 0:
            raise SimReject("nothing_to_cancel")
        if exchange != orig.exchange:
            raise SimReject("exchange_mismatch", p.exchange_mismatch_msg(
                "cancel" if action == "cancel" else "revise", orig.exchange, exchange))
        qty = orig.remaining if all_remaining or quantity <= 0 else quantity
        if qty > orig.remaining:
            raise SimReject("nothing_to_cancel")
        return acct, orig, qty

    def cancel(self, account_id: str, original_no: str, quantity: int, all_remaining: bool,
               exchange: str = p.EXCHANGE_KRX) -> SimOrder:
        acct, orig, qty = self._modifiable(account_id, original_no, quantity, all_remaining, exchange, "cancel")
        day, hms = self._stamp()
        orig.cancelled_qty += qty
        record = SimOrder(order_no=self._new_order_no(), original_order_no=orig.order_no, account_id=account_id,
                          code=orig.code, side=orig.side, division=orig.division, quantity=qty, price=0,
                          date=day, time=hms, kind="cancel", exchange=orig.exchange)
        acct.orders.append(record)
        self.dirty.add(account_id)
        self._emit("cancelled", record, qty, orig.price, hms)
        return record

    def revise(self, account_id: str, original_no: str, division: str, quantity: int, price: int,
               all_remaining: bool, exchange: str = p.EXCHANGE_KRX) -> SimOrder:
        acct, orig, qty = self._modifiable(account_id, original_no, quantity, all_remaining, exchange, "revise")
        self._refuse_halted(orig.code)  # a cancel is taken: it only takes an order off the halted book
        state = self.market.get(orig.code)
        assert state is not None
        lower, upper = state.limits
        if division in MARKET_DIVISIONS:
            price, reserve = 0, upper
        else:
            if price <= 0 or price % state.tick_for(price):
                raise SimReject("off_tick", str(state.tick_for(price)) if price > 0 else "")
            if not lower <= price <= upper:
                raise SimReject("out_of_limits", f"{lower}~{upper}")
            reserve = price
        if orig.is_buy:
            freed = _gross_buy_cost(qty * orig.reserve_price)
            if _gross_buy_cost(qty * reserve) > acct.orderable_cash() + freed:
                raise SimReject("insufficient_cash")
        day, hms = self._stamp()
        orig.cancelled_qty += qty
        new = SimOrder(order_no=self._new_order_no(), original_order_no=orig.order_no, account_id=account_id,
                       code=orig.code, side=orig.side, division=division, quantity=qty, price=price, date=day,
                       time=hms, kind="revise", reserve_price=reserve if orig.is_buy else 0, exchange=orig.exchange)
        acct.orders.append(new)
        self.dirty.add(account_id)
        self._emit("revised", new, qty, price, hms)
        self._match_on_entry(acct, new)
        return new

    def refuse(self, order_no: str) -> SimOrder:
        """The exchange refuses an order KIS had accepted (a test and soak hook: e.g. its price fell outside
        the day's limits after a VI): what remains of it ends, and an execution notice with RFUS_YN=1 goes
        out. :class:`KeyError` when no open order has that number."""
        for acct in self.accounts.values():
            order = acct.find(order_no)
            if order is not None and order.kind != "cancel" and order.remaining > 0:
                refused = order.remaining
                order.refused_qty += refused
                self.dirty.add(acct.account_id)
                self._emit("refused", order, refused, order.price, self._stamp()[1])
                return order
        raise KeyError(f"no open order {order_no}")

    def refuse_change(self, order_no: str) -> SimOrder:
        """The exchange refuses a revision or cancellation KIS had accepted (a test and soak hook, beside
        :meth:`refuse`: e.g. it reached the exchange after the order had moved on). The change does not take:
        the original order gets back what the change took from it (it works on as before), the revision's
        row ends refused, and an execution notice with RFUS_YN=1 and RCTF_CLS of the change (1 revise,
        2 cancel) goes out under the change's number. :class:`KeyError` when no revision still untouched
        (nothing filled) or cancellation not refused already has that number."""
        for acct in self.accounts.values():
            found = refuse_change_in(acct, order_no)
            if found is None:
                continue
            record, original = found
            resting = self._resting.setdefault(original.code, [])
            if original.price > 0 and original not in resting:
                resting.append(original)
            self.dirty.add(acct.account_id)
            self._emit("change_refused", record, record.quantity, record.price, self._stamp()[1])
            return record
        raise KeyError(f"no revision or cancellation {order_no} to refuse")

    # -- matching ----------------------------------------------------------------------------------
    def _match_on_entry(self, acct: PaperAccount, order: SimOrder) -> None:
        state = self.market.get(order.code)
        assert state is not None
        current = state.price
        if order.price == 0 or (order.is_buy and order.price >= current) or (
                not order.is_buy and order.price <= current):
            self._fill(acct, order, order.remaining, current, self._stamp()[1])
        if order.remaining > 0:
            self._resting.setdefault(order.code, []).append(order)

    def _on_trade(self, trade: Trade) -> None:
        resting = self._resting.get(trade.code)
        if not resting:
            return
        for order in resting:
            if order.remaining <= 0:
                continue
            if (order.is_buy and trade.price <= order.price) or (not order.is_buy and trade.price >= order.price):
                self._fill(self.accounts[order.account_id], order, order.remaining, order.price, trade.time)
        resting[:] = [o for o in resting if o.remaining > 0]

    def _fill(self, acct: PaperAccount, order: SimOrder, qty: int, price: int, hms: str) -> None:
        amount = qty * price
        fee = _commission(amount)
        pos = acct.positions.setdefault(order.code, Position())
        if order.is_buy:
            acct.cash -= amount + fee
            pos.quantity += qty
            pos.cost += amount
            pos.today_buy += qty
            acct.today_buy_amount += amount
        else:
            tax = _sell_tax(amount)
            fee += tax
            acct.cash += amount - fee
            pos.cost -= pos.cost * qty // pos.quantity if pos.quantity else 0
            pos.quantity -= qty
            pos.today_sell += qty
            acct.today_sell_amount += amount
        acct.today_fees += fee
        order.filled_qty += qty
        order.filled_amount += amount
        self.dirty.add(acct.account_id)
        self._emit("filled", order, qty, price, hms)

    # -- day boundary ------------------------------------------------------------------------------
    def roll_day(self) -> None:
        """Expire the day's open orders and move today's figures to "previous day"."""
        self._resting.clear()
        for acct in self.accounts.values():
            for order in acct.orders:
                if order.remaining > 0:
                    order.cancelled_qty += order.remaining
            acct.prev_buy_amount, acct.prev_sell_amount, acct.prev_fees = (
                acct.today_buy_amount, acct.today_sell_amount, acct.today_fees)
            acct.today_buy_amount = acct.today_sell_amount = acct.today_fees = 0
            for code, pos in list(acct.positions.items()):
                pos.prev_buy, pos.prev_sell, pos.today_buy, pos.today_sell = pos.today_buy, pos.today_sell, 0, 0
                if pos.quantity == 0 and pos.prev_buy == 0 and pos.prev_sell == 0:
                    del acct.positions[code]
            self.dirty.add(acct.account_id)

    # -- persistence ---------------------------------------------------------------------------------
    def restore_account(self, data: dict[str, Any]) -> None:
        acct = PaperAccount.from_dict(data)
        self.accounts[acct.account_id] = acct
        for order in acct.orders:
            self.next_order_no = max(self.next_order_no, int(order.order_no))
            if order.remaining > 0 and order.price > 0:
                self._resting.setdefault(order.code, []).append(order)
                self.market.get(order.code)  # in play: its trades must reach the resting order

    def take_dirty(self) -> list[PaperAccount]:
        dirty = [self.accounts[a] for a in sorted(self.dirty) if a in self.accounts]
        self.dirty.clear()
        return dirty


class _ChangeRecord(Protocol):
    """An order row of either simulated market, as a refused change reads and writes it."""

    kind: str
    quantity: int
    filled_qty: int
    cancelled_qty: int
    refused_qty: int
    original_order_no: str

    @property
    def remaining(self) -> int: ...


R = TypeVar("R", bound=_ChangeRecord)
R_co = TypeVar("R_co", bound=_ChangeRecord, covariant=True)


class _OrderBook(Protocol[R_co]):
    def find(self, order_no: str) -> R_co | None: ...


def refuse_change_in(account: _OrderBook[R], order_no: str) -> tuple[R, R] | None:
    """An account's revision or cancellation numbered ``order_no`` refused, the domestic and the US exchange
    alike: the change keeps none of its quantity and its original gets back what it took. (change, original),
    or None when the account has no such change still refusable (a revision untouched: nothing filled; a
    cancellation not refused already) or its original is gone."""
    record = account.find(order_no)
    if record is None or record.kind not in ("revise", "cancel") or record.refused_qty:
        return None
    if record.kind == "revise" and (record.filled_qty or record.remaining != record.quantity):
        return None
    original = account.find(record.original_order_no)
    if original is None:
        return None
    record.refused_qty = record.quantity
    original.cancelled_qty -= record.quantity
    return record, original
