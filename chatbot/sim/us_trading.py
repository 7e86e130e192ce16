"""Paper US trading: dollar accounts, orders, reservation orders, and their matching.

Money is in units of $0.0001 (as prices are, :mod:`chatbot.sim.us_market`), so fills and fees are
exact; fees are rounded to the cent. Orders are accepted during pre-market, regular and
after-market (KIS's hours for its regular order TR) and are day orders: what remains when the
after-market ends is cancelled. A limit order that is marketable fills at once at the last price;
otherwise it rests and fills at its limit when a trade reaches it. The session order types wait for
an auction the simulator holds when the regular session opens (MOO, LOO) or closes (MOC, LOC): MOO
and MOC fill at the auction price, LOO and LOC only if their limit allows it, and are cancelled
otherwise. Reservation orders are kept unchecked (as KIS keeps them) and sent as orders at the open
of their trading day, where the usual checks apply; one that fails them stays unsent with the reason.

Sessions come from :class:`chatbot.markets.us_hours.UsCalendar`; ``advance`` is called with the
simulator's clock before every US call and on every market step, so a clock that jumps (tests)
still passes through every open, close and expiry in order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from chatbot.kis import overseas_protocol as o
from chatbot.kis.overseas_protocol import UsExchange, UsOrderDivision
from chatbot.markets.us_hours import NEW_YORK, SEOUL, UsCalendar, UsPhase, session
from chatbot.sim.exchange import BRANCH, SimReject, refuse_change_in
from chatbot.sim.us_market import UsMarket, UsSymbolState, UsTrade, tick_units
from chatbot.sim.us_rejections import UNSENT_REASONS

COMMISSION_RATE = Decimal("0.0025")  # KIS's online US commission, both sides (the simulator's choice)
FIRST_ORDER_NO = 30_000_000
CENT = 100  # units


def commission(amount: int) -> int:
    """The fee on ``amount`` units, rounded to the cent."""
    fee = (Decimal(amount) * COMMISSION_RATE / CENT).to_integral_value(ROUND_HALF_UP)
    return int(fee) * CENT


def gross_buy(amount: int) -> int:
    return amount + commission(amount)


@dataclass(slots=True)
class UsOrder:
    order_no: str
    original_order_no: str
    account_id: str
    symbol: str
    exchange: str  # UsExchange name
    side: str  # 01 sell, 02 buy
    division: str
    quantity: int
    price: int  # units; 0 for MOO/MOC and cancellations
    session_day: str  # YYYYMMDD, the New York trading day it works in
    local_date: str  # YYYYMMDD HHMMSS in New York
    local_time: str
    kst_date: str
    kst_time: str
    kind: str = "new"  # new | revise | cancel
    filled_qty: int = 0
    filled_amount: int = 0  # units × shares
    cancelled_qty: int = 0  # cancelled, expired or moved to a revision
    reserve_price: int = 0  # units per share reserved for a buy
    branch: str = BRANCH
    reservation_no: str = ""  # set when a reservation sent it
    refused_qty: int = 0  # refused by the exchange after KIS accepted it (the notice's RFUS_YN=1)
    refusal: str = ""  # why (rjct_rson_name)

    @property
    def remaining(self) -> int:
        if self.kind == "cancel":
            return 0
        return self.quantity - self.filled_qty - self.cancelled_qty - self.refused_qty

    @property
    def is_buy(self) -> bool:
        return self.side == o.SIDE_BUY

    @property
    def us_exchange(self) -> UsExchange:
        return UsExchange[self.exchange]

    @property
    def average_fill_price(self) -> int:
        return self.filled_amount // self.filled_qty if self.filled_qty else 0


@dataclass(slots=True)
class UsReservation:
    reservation_no: str
    account_id: str
    symbol: str
    exchange: str
    side: str
    division: str
    quantity: int
    price: int
    received_date: str  # KST YYYYMMDD
    received_time: str
    target_day: str  # New York YYYYMMDD of the session it is sent to
    status: str = "received"  # received | sent | unsent | cancelled
    order_no: str = ""
    reason: str = ""
    sent_time: str = ""  # KST HHMMSS


@dataclass(slots=True)
class UsPosition:
    quantity: int = 0
    cost: int = 0  # units × shares of the quantity held
    today_buy: int = 0
    today_sell: int = 0


@dataclass(slots=True)
class UsAccount:
    account_id: str
    cash: int  # units
    positions: dict[str, UsPosition] = field(default_factory=dict)
    orders: list[UsOrder] = field(default_factory=list)
    reservations: list[UsReservation] = field(default_factory=list)
    realised: dict[str, int] = field(default_factory=dict)  # units since the account opened, by exchange
    today_buy_amount: int = 0
    today_sell_amount: int = 0

    def open_orders(self) -> list[UsOrder]:
        return [o_ for o_ in self.orders if o_.remaining > 0]

    def reserved_cash(self) -> int:
        return sum(gross_buy(x.remaining * x.reserve_price) for x in self.orders if x.is_buy and x.remaining > 0)

    def orderable_cash(self) -> int:
        return self.cash - self.reserved_cash()

    def sellable(self, symbol: str) -> int:
        pos = self.positions.get(symbol)
        held = pos.quantity if pos else 0
        return held - sum(x.remaining for x in self.orders if not x.is_buy and x.symbol == symbol and x.remaining > 0)

    def find(self, order_no: str) -> UsOrder | None:
        want = order_no.strip().lstrip("0")
        return next((x for x in self.orders if x.order_no.lstrip("0") == want), None) if want else None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UsAccount:
        plain = {k: v for k, v in data.items() if k not in ("positions", "orders", "reservations")}
        acct = cls(**plain)
        acct.positions = {k: UsPosition(**v) for k, v in data.get("positions", {}).items()}
        acct.orders = [UsOrder(**x) for x in data.get("orders", [])]
        acct.reservations = [UsReservation(**x) for x in data.get("reservations", [])]
        return acct


@dataclass(frozen=True, slots=True)
class UsOrderEvent:
    """What happened to an order (``accepted``, ``revised``, ``cancelled``, ``filled``, ``refused``,
    ``change_refused``: a revision or cancellation ``order`` refused after acceptance): notices are made of these. For fills ``quantity``/``price`` are the fill's, otherwise the order's."""

    kind: str
    account_id: str
    order: UsOrder
    quantity: int
    price: int
    at: dt.datetime


def _stamp(at: dt.datetime) -> tuple[str, str, str, str]:
    ny, kst = at.astimezone(NEW_YORK), at.astimezone(SEOUL)
    return ny.strftime("%Y%m%d"), ny.strftime("%H%M%S"), kst.strftime("%Y%m%d"), kst.strftime("%H%M%S")


def _ymd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


class UsTrading:
    """Every paper account's US side, the matching engine and the session auctions."""

    def __init__(self, market: UsMarket, calendar: UsCalendar, starting_cash: int,
                 clock: Callable[[], dt.datetime]) -> None:
        self.market = market
        self.calendar = calendar
        self.starting_cash = starting_cash
        self.clock = clock
        self.accounts: dict[str, UsAccount] = {}
        self.next_no = FIRST_ORDER_NO
        self.dirty: set[str] = set()
        self._resting: dict[str, list[UsOrder]] = {}  # symbol -> open limit orders
        self._auction: dict[str, list[UsOrder]] = {}  # symbol -> orders waiting for an auction
        self._listeners: list[Callable[[UsOrderEvent], None]] = []
        self._opened: set[str] = set()
        self._closed: set[str] = set()
        self._cursor = market.today  # first New York date whose session is not fully processed
        market.add_listener(self._on_trade)

    def add_listener(self, callback: Callable[[UsOrderEvent], None]) -> None:
        self._listeners.append(callback)

    def _emit(self, kind: str, order: UsOrder, quantity: int, price: int, at: dt.datetime) -> None:
        event = UsOrderEvent(kind, order.account_id, order, quantity, price, at)
        for listener in self._listeners:
            listener(event)

    # -- accounts -------------------------------------------------------------------------------------
    def account(self, account_id: str) -> UsAccount:
        acct = self.accounts.get(account_id)
        if acct is None:
            acct = self.accounts[account_id] = UsAccount(account_id, self.starting_cash)
            self.dirty.add(account_id)
        return acct

    def _number(self) -> str:
        self.next_no += 1
        return f"{self.next_no:010d}"

    # -- the clock ------------------------------------------------------------------------------------
    def session_phase(self, now: dt.datetime) -> tuple[UsPhase, dt.date]:
        state = self.calendar.state(now)
        return state.phase, state.session.day

    def advance(self, now: dt.datetime) -> None:
        """Pass every session boundary up to ``now``: opens, closes, expiries, New York day rolls."""
        ny_today = now.astimezone(NEW_YORK).date()
        while self._cursor <= ny_today:
            day = self._cursor
            if day > self.market.today:
                self._roll(day, now)
            s = session(day)
            if s is not None and not self.calendar.always_open:
                if now >= s.open and _ymd(day) not in self._opened:
                    self.open_auction(day, s.open)
                if now >= s.close and _ymd(day) not in self._closed:
                    self.close_auction(day, s.close)
                if now < s.after_close:
                    break
                self._expire(_ymd(day), s.after_close)
            elif day == ny_today:
                break
            self._cursor = day + dt.timedelta(days=1)

    def _roll(self, day: dt.date, now: dt.datetime) -> None:
        for stale in {x.session_day for a in self.accounts.values() for x in a.orders if x.remaining > 0}:
            if stale < _ymd(day):
                self._expire(stale, now)
        self.market.roll_day(day)
        for acct in self.accounts.values():
            acct.today_buy_amount = acct.today_sell_amount = 0
            for pos in acct.positions.values():
                pos.today_buy = pos.today_sell = 0
            acct.positions = {k: p for k, p in acct.positions.items() if p.quantity}
            self.dirty.add(acct.account_id)
        self._opened = {d for d in self._opened if d >= _ymd(day)}
        self._closed = {d for d in self._closed if d >= _ymd(day)}

    def _expire(self, day: str, at: dt.datetime) -> None:
        """Day orders of ``day`` end with the after-market: what remains is cancelled."""
        for acct in self.accounts.values():
            for order in acct.orders:
                if order.session_day == day and order.remaining > 0:
                    order.cancelled_qty += order.remaining
                    self.dirty.add(acct.account_id)
            for r in acct.reservations:
                if r.target_day == day and r.status == "received":
                    r.status, r.reason = "unsent", "예약주문 유효기간 경과"
        for book in (self._resting, self._auction):
            for symbol, orders in book.items():
                book[symbol] = [x for x in orders if x.remaining > 0]

    # -- orders ---------------------------------------------------------------------------------------
    def _listed(self, symbol: str, exchange: UsExchange) -> UsSymbolState:
        state = self.market.quoted(symbol, exchange)
        if state is None:
            raise SimReject("unknown_symbol", symbol)
        return state

    @staticmethod
    def check_price(division: UsOrderDivision, price: int) -> int:
        if not division.priced:
            return 0
        if price < CENT:  # "0" too: KIS answers a limit at $0 with APBK1507 (§3)
            raise SimReject("below_cent")
        if price % tick_units(price):
            raise SimReject("off_tick")
        return price

    def place(self, account_id: str, symbol: str, exchange: UsExchange, side: str, division: UsOrderDivision,
              quantity: int, price: int, now: dt.datetime, *, reservation_no: str = "") -> UsOrder:
        """Validate and accept an order (the caller checked the division against the server's offer).
        A reservation is sent at the open, in time for the opening auction."""
        phase, day = self.session_phase(now)
        if not phase.trading:
            raise SimReject("market_closed")
        state = self._listed(symbol, exchange)
        if quantity <= 0:
            raise SimReject("bad_quantity")
        price = self.check_price(division, price)
        s = session(day)
        if not self.calendar.always_open and s is not None and (
                (division.at_open and now >= s.open and not reservation_no)
                or (division.at_close and now >= s.close)):
            raise SimReject("session_over")
        if self.calendar.always_open and division.at_open and not reservation_no:
            raise SimReject("session_over")  # an always-open market has no opening auction ahead
        acct = self.account(account_id)
        if side == o.SIDE_BUY:
            if gross_buy(quantity * price) > acct.orderable_cash():
                raise SimReject("insufficient_cash")
        elif quantity > acct.sellable(state.symbol):
            raise SimReject("insufficient_shares")
        ny_date, ny_time, kst_date, kst_time = _stamp(now)
        order = UsOrder(order_no=self._number(), original_order_no="", account_id=account_id, symbol=state.symbol,
                        exchange=exchange.name, side=side, division=division.value, quantity=quantity, price=price,
                        session_day=_ymd(day), local_date=ny_date, local_time=ny_time, kst_date=kst_date,
                        kst_time=kst_time, reserve_price=price if side == o.SIDE_BUY else 0,
                        reservation_no=reservation_no)
        acct.orders.append(order)
        self.dirty.add(account_id)
        self._emit("accepted", order, quantity, price, now)
        self._enter(acct, order, state, now)
        return order

    def _enter(self, acct: UsAccount, order: UsOrder, state: UsSymbolState, now: dt.datetime) -> None:
        if order.division != UsOrderDivision.LIMIT:
            self._auction.setdefault(order.symbol, []).append(order)
            return
        if (order.is_buy and order.price >= state.price) or (not order.is_buy and order.price <= state.price):
            self._fill(acct, order, order.remaining, state.price, now)
        if order.remaining > 0:
            self._resting.setdefault(order.symbol, []).append(order)

    def _modifiable(self, account_id: str, original_no: str, quantity: int) -> tuple[UsAccount, UsOrder, int]:
        acct = self.account(account_id)
        orig = acct.find(original_no)
        if orig is None or orig.remaining <= 0:
            raise SimReject("nothing_to_cancel")
        return acct, orig, orig.remaining if quantity <= 0 else min(quantity, orig.remaining)

    def cancel(self, account_id: str, original_no: str, quantity: int, now: dt.datetime) -> UsOrder:
        acct, orig, qty = self._modifiable(account_id, original_no, quantity)
        orig.cancelled_qty += qty
        ny_date, ny_time, kst_date, kst_time = _stamp(now)
        record = UsOrder(order_no=self._number(), original_order_no=orig.order_no, account_id=account_id,
                         symbol=orig.symbol, exchange=orig.exchange, side=orig.side, division=orig.division,
                         quantity=qty, price=0, session_day=orig.session_day, local_date=ny_date,
                         local_time=ny_time, kst_date=kst_date, kst_time=kst_time, kind="cancel")
        acct.orders.append(record)
        self.dirty.add(account_id)
        self._emit("cancelled", record, qty, orig.price, now)
        return record

    def revise(self, account_id: str, original_no: str, quantity: int, price: int, now: dt.datetime) -> UsOrder:
        phase, _ = self.session_phase(now)
        if not phase.trading:
            raise SimReject("market_closed")
        acct, orig, qty = self._modifiable(account_id, original_no, quantity)
        division = UsOrderDivision(orig.division)
        price = self.check_price(division, price)
        if orig.is_buy:
            freed = gross_buy(qty * orig.reserve_price)
            if gross_buy(qty * price) > acct.orderable_cash() + freed:
                raise SimReject("insufficient_cash")
        orig.cancelled_qty += qty
        ny_date, ny_time, kst_date, kst_time = _stamp(now)
        new = UsOrder(order_no=self._number(), original_order_no=orig.order_no, account_id=account_id,
                      symbol=orig.symbol, exchange=orig.exchange, side=orig.side, division=orig.division,
                      quantity=qty, price=price, session_day=orig.session_day, local_date=ny_date,
                      local_time=ny_time, kst_date=kst_date, kst_time=kst_time, kind="revise",
                      reserve_price=price if orig.is_buy else 0)
        acct.orders.append(new)
        self.dirty.add(account_id)
        self._emit("revised", new, qty, price, now)
        state = self.market.get(orig.symbol)
        assert state is not None
        self._enter(acct, new, state, now)
        return new

    def refuse(self, order_no: str, now: dt.datetime, reason: str = "") -> UsOrder:
        """The exchange refuses an order KIS had accepted (a test and soak hook): what remains of it ends,
        and an H0GSCNI0 notice with RFUS_YN=1 goes out. :class:`KeyError` when no open order has that number."""
        for acct in self.accounts.values():
            order = acct.find(order_no)
            if order is not None and order.kind != "cancel" and order.remaining > 0:
                refused = order.remaining
                order.refused_qty += refused
                order.refusal = reason
                self.dirty.add(acct.account_id)
                for book in (self._resting, self._auction):
                    if order.symbol in book:
                        book[order.symbol] = [x for x in book[order.symbol] if x.remaining > 0]
                self._emit("refused", order, refused, order.price, now)
                return order
        raise KeyError(f"no open order {order_no}")

    def refuse_change(self, order_no: str, now: dt.datetime) -> UsOrder:
        """The exchange refuses a revision or cancellation KIS had accepted (a test and soak hook, beside
        :meth:`refuse`): the change does not take, the original order gets back what the change took from it
        (it works on as before) and an H0GSCNI0 notice with RFUS_YN=1 and RCTF_CLS of the change (1 revise,
        2 cancel) goes out under the change's number. :class:`KeyError` when no revision still untouched or
        cancellation not refused already has that number."""
        for acct in self.accounts.values():
            found = refuse_change_in(acct, order_no)
            if found is None:
                continue
            record, original = found
            for book in (self._resting, self._auction):  # the revision leaves its book; the original is back
                if record.symbol in book:
                    book[record.symbol] = [x for x in book[record.symbol] if x.remaining > 0]
            book = self._resting if original.division == UsOrderDivision.LIMIT else self._auction
            waiting = book.setdefault(original.symbol, [])
            if original not in waiting:
                waiting.append(original)
            self.dirty.add(acct.account_id)
            self._emit("change_refused", record, record.quantity, record.price, now)
            return record
        raise KeyError(f"no revision or cancellation {order_no} to refuse")

    # -- reservations -----------------------------------------------------------------------------------
    def reserve(self, account_id: str, symbol: str, exchange: UsExchange, side: str, division: UsOrderDivision,
                quantity: int, price: int, now: dt.datetime) -> UsReservation:
        """Take a reservation (no cash or holding check: KIS checks when it sends it at the open)."""
        if not self.calendar.reservation_open(now):
            raise SimReject("reservation_closed")
        state = self._listed(symbol, exchange)
        if quantity <= 0:
            raise SimReject("bad_quantity")
        price = self.check_price(division, price)
        target = self.calendar.reservation_target(now)
        kst = now.astimezone(SEOUL)
        r = UsReservation(reservation_no=self._number(), account_id=account_id, symbol=state.symbol,
                          exchange=exchange.name, side=side, division=division.value, quantity=quantity, price=price,
                          received_date=kst.strftime("%Y%m%d"), received_time=kst.strftime("%H%M%S"),
                          target_day=_ymd(target.day))
        self.account(account_id).reservations.append(r)
        self.dirty.add(account_id)
        return r

    def cancel_reservation(self, account_id: str, received_date: str, number: str) -> UsReservation:
        want = number.strip().lstrip("0")
        for r in self.account(account_id).reservations:
            if r.reservation_no.lstrip("0") == want and r.received_date == received_date and r.status == "received":
                r.status = "cancelled"
                self.dirty.add(account_id)
                return r
        raise SimReject("unknown_reservation")

    def _send_reservations(self, day: str, at: dt.datetime) -> None:
        for acct in list(self.accounts.values()):
            for r in acct.reservations:
                if r.target_day != day or r.status != "received":
                    continue
                try:
                    order = self.place(acct.account_id, r.symbol, UsExchange[r.exchange], r.side,
                                       UsOrderDivision(r.division), r.quantity, r.price, at,
                                       reservation_no=r.reservation_no)
                except SimReject as exc:
                    r.status, r.reason = "unsent", UNSENT_REASONS.get(exc.reason, "주문불가")
                else:
                    r.status, r.order_no = "sent", order.order_no
                r.sent_time = at.astimezone(SEOUL).strftime("%H%M%S")
                self.dirty.add(acct.account_id)

    # -- auctions and matching ------------------------------------------------------------------------
    def open_auction(self, day: dt.date, at: dt.datetime) -> None:
        """The regular session of ``day`` opens: reservations are sent, MOO/LOO orders meet the open."""
        key = _ymd(day)
        self._opened.add(key)
        self._send_reservations(key, at)
        self._auction_fill(key, at, lambda order: UsOrderDivision(order.division).at_open, o.MTYP_REGULAR)

    def close_auction(self, day: dt.date, at: dt.datetime) -> None:
        """The regular session of ``day`` closes: MOC/LOC orders meet the closing price."""
        key = _ymd(day)
        self._closed.add(key)
        self._auction_fill(key, at, lambda order: UsOrderDivision(order.division).at_close, o.MTYP_REGULAR)

    def _auction_fill(self, day: str, at: dt.datetime, takes: Callable[[UsOrder], bool], mtyp: str) -> None:
        for symbol, orders in list(self._auction.items()):
            waiting = [x for x in orders if x.remaining > 0 and x.session_day <= day and takes(x)]
            if not waiting:
                continue
            state = self.market.get(symbol)
            assert state is not None
            price = state.price
            volume = sum(x.remaining for x in waiting)
            self.market.set_price(symbol, price, at, mtyp, volume)  # the auction print
            for order in waiting:
                acct = self.accounts[order.account_id]
                marketable = (not UsOrderDivision(order.division).priced
                              or (order.is_buy and order.price >= price) or (not order.is_buy and order.price <= price))
                if marketable:
                    self._fill(acct, order, order.remaining, price, at)
                else:
                    order.cancelled_qty += order.remaining  # an unfilled LOO/LOC ends at its auction
                    self.dirty.add(acct.account_id)
            self._auction[symbol] = [x for x in orders if x.remaining > 0]

    def _on_trade(self, trade: UsTrade) -> None:
        resting = self._resting.get(trade.symbol)
        if not resting:
            return
        for order in resting:
            if order.remaining > 0 and ((order.is_buy and trade.price <= order.price)
                                        or (not order.is_buy and trade.price >= order.price)):
                self._fill(self.accounts[order.account_id], order, order.remaining, order.price, trade.at)
        self._resting[trade.symbol] = [x for x in resting if x.remaining > 0]

    def _fill(self, acct: UsAccount, order: UsOrder, qty: int, price: int, at: dt.datetime) -> None:
        amount = qty * price
        fee = commission(amount)
        pos = acct.positions.setdefault(order.symbol, UsPosition())
        if order.is_buy:
            acct.cash -= amount + fee
            pos.quantity += qty
            pos.cost += amount
            pos.today_buy += qty
            acct.today_buy_amount += amount
        else:
            basis = pos.cost * qty // pos.quantity if pos.quantity else 0
            acct.cash += amount - fee
            acct.realised[order.exchange] = acct.realised.get(order.exchange, 0) + amount - fee - basis
            pos.cost -= basis
            pos.quantity -= qty
            pos.today_sell += qty
            acct.today_sell_amount += amount
        order.filled_qty += qty
        order.filled_amount += amount
        self.dirty.add(acct.account_id)
        self._emit("filled", order, qty, price, at)

    # -- persistence ------------------------------------------------------------------------------------
    def restore_account(self, data: dict[str, Any]) -> None:
        acct = UsAccount.from_dict(data)
        self.accounts[acct.account_id] = acct
        for order in acct.orders:
            self.next_no = max(self.next_no, int(order.order_no))
            if order.remaining > 0:
                book = self._resting if order.division == UsOrderDivision.LIMIT else self._auction
                book.setdefault(order.symbol, []).append(order)
                self.market.get(order.symbol)
        for r in acct.reservations:
            self.next_no = max(self.next_no, int(r.reservation_no))

    def take_dirty(self) -> list[UsAccount]:
        dirty = [self.accounts[a] for a in sorted(self.dirty) if a in self.accounts]
        self.dirty.clear()
        return dirty

    def snapshot(self) -> dict[str, Any]:
        return {"cursor": self._cursor.isoformat(), "opened": sorted(self._opened), "closed": sorted(self._closed)}

    def restore(self, data: dict[str, Any]) -> None:
        self._cursor = dt.date.fromisoformat(data.get("cursor", self._cursor.isoformat()))
        self._opened, self._closed = set(data.get("opened", ())), set(data.get("closed", ()))

