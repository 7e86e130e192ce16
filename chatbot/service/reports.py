"""The daily report at the close (``/report on|off``, ``/report``) and the executions of the last days
(``/history [days]``), transport-neutral.

Schedule: one row per market in :data:`REPORT_MARKETS` says when a trading day's report is due (KRX:
15:40 KST; US: 20 minutes after the NYSE close, the early closes included), on that market's calendar
(:mod:`chatbot.market_hours`, :mod:`chatbot.markets.us_hours`): a weekend or a holiday has no report.
A market is reported when a :class:`ReportSource` is registered for it in
:attr:`ReportService.sources`: KRX and US by default (the US one on KIS's overseas balance and orders;
it returns None for a user without US holdings or fills that day, who then gets no US push).

Exactly once: :meth:`ReportService.run_due` (the runtime's scheduler calls it every
:data:`POLL_SECONDS`; a test calls it with any clock) writes the sent report (user, market, trading day:
a unique key) and its push in the outbox in one transaction. A restart, a second pass or a second
replica finds the row (or meets the unique key) and sends nothing more; a report missed while the bot
was down is sent when it is back, up to :data:`CATCH_UP` after the close.

Realised P/L: KIS's balance and daily-executions queries, which the bot uses on every account (the
simulator and KIS's paper server included), give no realised figure; KIS's own (inquire-balance-rlz-pl,
inquire-period-trade-profit) are real-account only, and the overseas balance's ``ovrs_rlzt_pfls_amt``
has no documented period. So it is **derived**, and the report says so: each sale × (its price − the
average purchase price in force when it was made), before commission and tax. KIS keeps a moving
average (a buy moves it, a sale does not), so the average at each sale is walked back from KIS's
average of the holding at the close, or forward from the average recorded with the previous report
(or from an empty position); a sale whose cost cannot be known is listed as such and left out of the
total (:func:`realised_lines`).

Conditional orders still armed: :attr:`ReportService.armed_orders`, a callable (user, market) → lines,
none by default; the conditional-orders work sets it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, Protocol

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from chatbot import market_hours, tasks
from chatbot.alerts.daily_report import (
    REALISED_DERIVED,
    DailyReport,
    HoldingLine,
    RealisedLine,
    ReportFill,
)
from chatbot.alerts.outbox import Push, enqueue
from chatbot.kis.errors import KisError
from chatbot.kis.models import Execution, OrderSide
from chatbot.kis.overseas import KisOverseasClient
from chatbot.kis.overseas_models import UsOrder
from chatbot.kis.protocol import KST
from chatbot.kis.rest import KisRestClient
from chatbot.markets import us_hours
from chatbot.service.accounts import AccountProvider
from chatbot.service.errors import UserError, kis_errors
from chatbot.service.names import SymbolNames
from chatbot.service.views import Mode
from chatbot.storage.db import Database
from chatbot.storage.tables import (
    AlertRow,
    ConditionalOrderRow,
    DailyReportRow,
    OrderJournalRow,
    ReportSettingRow,
    UserRow,
)
from chatbot.storage.types import utcnow

__all__ = ["REPORT_MARKETS", "DailyReport", "HistoryDay", "HistoryView", "HoldingLine", "RealisedLine",
           "ReportFill", "ReportMarket", "ReportService", "ReportSetting", "ReportSource", "parse_days"]

log = logging.getLogger(__name__)

POLL_SECONDS: Final = 30.0  # how often the scheduler looks for a report due
CATCH_UP: Final = dt.timedelta(hours=12)
PREVIOUS_WITHIN: Final = dt.timedelta(days=45)  # a previous report older than this says nothing about today's costs  # a report missed while the bot was down is still sent this long after
MAX_RETRY_WAIT: Final = dt.timedelta(minutes=30)  # between attempts at a report that could not be built
MAX_REMEMBERED_FAILURES: Final = 10_000
DEFAULT_DAYS: Final = 7
MAX_DAYS: Final = 90  # within KIS's recent-executions query (TTTC8001R); older days take CTSC9115R, slow by day
KRX_REPORT_TIME: Final = dt.time(15, 40)  # KST: after the 15:30 closing auction has printed
US_REPORT_DELAY: Final = dt.timedelta(minutes=20)  # after the NYSE's regular (or early) close

ArmedOrders = Callable[[int, str], Awaitable[Sequence[str]]]  # (user, market) -> one line per armed order


async def no_armed_orders(user_id: int, market: str) -> Sequence[str]:
    """The default seam: no conditional orders (the conditional-orders work replaces it)."""
    return ()


# -- the schedule -------------------------------------------------------------------------------------------
def _krx_report_at(day: dt.date) -> dt.datetime | None:
    return dt.datetime.combine(day, KRX_REPORT_TIME, KST) if market_hours.is_trading_day(day) else None


def _us_report_at(day: dt.date) -> dt.datetime | None:
    session = us_hours.session(day)
    return session.close + US_REPORT_DELAY if session is not None else None


@dataclass(frozen=True, slots=True)
class ReportMarket:
    """When a market's daily report is due: ``report_at(day)`` for a trading day of that market (its own
    date), None for a day it does not trade."""

    market: str  # KRX | US
    currency: str
    report_at: Callable[[dt.date], dt.datetime | None]
    local_date: Callable[[dt.datetime], dt.date]

    def due_days(self, now: dt.datetime, catch_up: dt.timedelta = CATCH_UP) -> list[dt.date]:
        """The trading days whose report is due at ``now`` (at most two: today's and yesterday's)."""
        today = self.local_date(now)
        due = []
        for day in (today - dt.timedelta(days=1), today):
            at = self.report_at(day)
            if at is not None and at <= now < at + catch_up:
                due.append(day)
        return due


KRX_REPORT: Final = ReportMarket("KRX", "KRW", _krx_report_at, lambda now: now.astimezone(KST).date())
US_REPORT: Final = ReportMarket("US", "USD", _us_report_at, lambda now: now.astimezone(us_hours.NEW_YORK).date())
REPORT_MARKETS: Final = (KRX_REPORT, US_REPORT)


# -- views ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReportSetting:
    enabled: bool
    markets: tuple[str, ...]  # the markets reported (KRX: 15:40 KST; US: 20 minutes after the NYSE close)


@dataclass(frozen=True, slots=True)
class HistoryDay:
    day: dt.date
    fills: tuple[ReportFill, ...]  # oldest first
    bought: Decimal
    sold: Decimal


@dataclass(frozen=True, slots=True)
class HistoryView:
    mode: Mode
    days: int
    start: dt.date
    end: dt.date
    currency: str
    by_day: tuple[HistoryDay, ...]  # newest first; days without fills left out (domestic: KST dates, won)
    # US executions in dollars, by New York trading day (the US report's day), times in KST; newest first
    us_by_day: tuple[HistoryDay, ...] = ()
    us_unavailable: bool = False  # KIS's US orders did not answer (the domestic part stands)

    @property
    def fill_count(self) -> int:
        return sum(len(d.fills) for d in (*self.by_day, *self.us_by_day))


def parse_days(text: str | None) -> int:
    """``/history [days]``: a whole number 1..:data:`MAX_DAYS` (``30``, ``30d``, ``30일``); default 7."""
    if text is None or not text.strip():
        return DEFAULT_DAYS
    if len(text) > 12:
        raise UserError("input_too_long")
    word = text.strip().lower().removesuffix("days").removesuffix("day").removesuffix("d").removesuffix("일")
    if not word.isascii() or not word.isdigit() or not 1 <= int(word) <= MAX_DAYS:
        raise UserError("bad_history_days", value=text.strip(), maximum=MAX_DAYS)
    return int(word)


# -- building a report ----------------------------------------------------------------------------------------
Costs = Mapping[str, tuple[int, Decimal]]  # code -> (quantity, average purchase price) at a close


def _costs(recorded: Mapping[str, Any] | None) -> dict[str, tuple[int, Decimal]]:
    """A report row's ``costs`` (code → [quantity, average as text]) read back; a malformed entry is skipped."""
    costs: dict[str, tuple[int, Decimal]] = {}
    for code, value in (recorded or {}).items():
        with contextlib.suppress(TypeError, ValueError, ArithmeticError, IndexError):
            costs[str(code)] = (int(value[0]), Decimal(str(value[1])))
    return costs


class ReportSource(Protocol):
    """Builds one user's report of one trading day in one market; None when there is nothing of that
    market to report for the user (no holdings, no fills)."""

    async def build(self, user_id: int, day: dt.date, language: str, previous_costs: Costs) -> DailyReport | None: ...


def _quantize(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1) if currency == "KRW" else Decimal("0.01"), rounding=ROUND_HALF_UP)


def _quantize_price(amount: Decimal, currency: str) -> Decimal:
    """A price (not an amount): whole won; a dollar price to the US tick's places (four under a dollar, where
    cents would turn $0.5123 into $0.51)."""
    if currency == "USD" and abs(amount) < 1:
        return amount.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    return _quantize(amount, currency)


def _oldest_first(executions: Sequence[Execution]) -> list[Execution]:
    """Filled orders in the order they were placed (KIS lists the newest first; order numbers rise)."""
    return sorted((e for e in executions if e.filled_quantity > 0), key=lambda e: (e.date, e.time, e.order_no))


def _fill(e: Execution, currency: str) -> ReportFill:
    return ReportFill(time=e.time, side=e.side.value, code=e.code, name=e.name, quantity=e.filled_quantity,
                      price=e.average_fill_price,
                      amount=_quantize(e.average_fill_price * e.filled_quantity, currency))


def _sell_costs(fills: Sequence[ReportFill], held: tuple[int, Decimal] | None,
                opening: tuple[int, Decimal | None]) -> list[Decimal | None]:
    """The average purchase price in force at each sale of one stock's day (``fills`` oldest first).

    KIS keeps a moving average: a buy moves it, a sale does not. So it is walked forward from the
    opening position (its average known when the position was empty, or from the previous report) and
    backward from the close (KIS's average of the holding left); a sale takes the close's when both are
    known, the opening's when only that one is, else None. Backward, a buy of q at p that took the
    position from Q−q to Q had before it (A·Q − p·q) / (Q − q); it cannot be walked past a buy that
    opened an empty position."""
    forward: list[Decimal | None] = []
    qty, avg = opening
    for f in fills:
        if f.side == OrderSide.BUY.value:
            avg = f.price if qty <= 0 else None if avg is None else (avg * qty + f.price * f.quantity) / (qty + f.quantity)
            qty += f.quantity
        else:
            forward.append(avg if qty >= f.quantity else None)
            qty -= f.quantity
    backward: list[Decimal | None] = []
    if held is not None and held[0] > 0 and held[1] > 0:
        b_qty, b_avg = held[0], held[1]
        walk: Decimal | None = b_avg
        for f in reversed(fills):
            if f.side == OrderSide.BUY.value:
                before = b_qty - f.quantity
                walk = None if walk is None or before <= 0 else (walk * b_qty - f.price * f.quantity) / before
                b_qty = before
            else:
                backward.append(walk)
                b_qty += f.quantity
        backward.reverse()
    else:
        backward = [None] * len(forward)
    return [b if b is not None and b > 0 else fw for fw, b in zip(forward, backward, strict=True)]


def realised_lines(fills: Sequence[ReportFill], held: Costs, previous: Costs, currency: str) -> tuple[RealisedLine, ...]:
    """What each stock sold in ``fills`` (one day, oldest first) realised, against the average purchase
    price in force at each sale (:func:`_sell_costs`): ``held`` is the balance at the close, ``previous``
    the previous report's record of it. A stock with a sale whose cost cannot be known has no figure."""
    lines = []
    for code in dict.fromkeys(f.code for f in fills if f.side == OrderSide.SELL.value):
        mine = [f for f in fills if f.code == code]
        sells = [f for f in mine if f.side == OrderSide.SELL.value]
        sold, sold_amount = sum(f.quantity for f in sells), sum((f.price * f.quantity for f in sells), Decimal(0))
        net = sum((f.quantity if f.side == OrderSide.BUY.value else -f.quantity) for f in mine)
        held_now = held.get(code)
        opening_qty = (held_now[0] if held_now else 0) - net  # what was held before the day's trades
        before = previous.get(code)
        opening_avg = before[1] if before is not None and before[0] == opening_qty else None
        costs = _sell_costs(mine, held_now, (opening_qty, opening_avg if opening_qty > 0 else Decimal(0)))
        known = [c for c in costs if c is not None]
        cost_amount = (sum((c * f.quantity for c, f in zip(known, sells, strict=True)), Decimal(0))
                       if len(known) == len(sells) else None)
        lines.append(RealisedLine(
            code=code, name=sells[0].name, quantity=sold, sell_price=_quantize_price(sold_amount / sold, currency),
            cost_price=None if cost_amount is None else _quantize_price(cost_amount / sold, currency),
            profit_loss=None if cost_amount is None else _quantize(sold_amount - cost_amount, currency)))
    return tuple(lines)


class KrxReportSource:
    """Domestic stocks: the day's executions (inquire-daily-ccld) and the balance (inquire-balance)."""

    def __init__(self, accounts: AccountProvider, mode: Mode, names: SymbolNames | None = None) -> None:
        self.accounts = accounts
        self.mode = mode
        self.names = names  # KIS names the stocks in Korean; None: as KIS names them, whatever the language

    def _name(self, code: str, name: str, language: str) -> str:
        return self.names.name(code, name, language) if self.names is not None else name

    async def build(self, user_id: int, day: dt.date, language: str, previous_costs: Costs) -> DailyReport:
        account = await self.accounts.for_user(user_id)
        with kis_errors():
            executions = await account.client.executions(day, day)
            balance = await account.client.balance()
        fills = tuple(dataclasses.replace(f, name=self._name(f.code, f.name, language))
                      for f in (_fill(e, "KRW") for e in _oldest_first(executions)))
        held = {h.code: (h.quantity, h.average_price) for h in balance.holdings}
        realised = realised_lines(fills, held, previous_costs, "KRW")
        holdings = tuple(HoldingLine(
            code=h.code, name=self._name(h.code, h.name, language), quantity=h.quantity,
            average_price=h.average_price, current_price=Decimal(h.current_price), evaluation=Decimal(h.evaluation),
            profit_loss=Decimal(h.profit_loss), profit_loss_rate=h.profit_loss_rate) for h in balance.holdings)
        return DailyReport(
            language=language, market="KRX", day=day.isoformat(), currency="KRW", fills=fills, realised=realised,
            realised_total=sum((r.profit_loss for r in realised if r.profit_loss is not None), Decimal(0)),
            realised_source=REALISED_DERIVED, holdings=holdings, purchase_total=Decimal(balance.purchase_total),
            evaluation_total=Decimal(sum(h.evaluation for h in balance.holdings)),
            profit_loss_total=Decimal(balance.profit_loss_total), mode=self.mode.value)


def _kst_hms(moment: dt.datetime | None) -> str:
    """A US order's time as the bot shows every time: KST (New York's 09:31 is 23:31 or 22:31 here)."""
    return moment.astimezone(KST).strftime("%H%M%S") if moment is not None else ""


def _us_filled(orders: Sequence[UsOrder], keep: Callable[[UsOrder, dt.datetime], bool]) -> list[UsOrder]:
    """The orders that filled (cancellations left out) with an exchange time that ``keep`` (the order, that
    time) accepts, oldest first."""
    filled = [o for o in orders if o.filled_quantity > 0 and not o.is_cancellation
              and o.local_time is not None and keep(o, o.local_time)]
    return sorted(filled, key=lambda o: (o.local_time or dt.datetime.min.replace(tzinfo=dt.UTC), o.order_no))


def _us_fill(o: UsOrder) -> ReportFill:
    """A US order's fill as a report line: in dollars, its time in KST."""
    return ReportFill(time=_kst_hms(o.kst_time or o.local_time), side=o.side.value, code=o.symbol,
                      name=o.name or o.symbol, quantity=o.filled_quantity, price=o.fill_price.amount,
                      amount=_quantize(o.filled_amount.amount or o.fill_price.amount * o.filled_quantity, "USD"))


class UsReportSource:
    """US stocks: the day's orders (inquire-ccnl; KIS files a US order under its New York date, asked
    up to the next day and matched on the exchange's date) and the overseas balance (inquire-balance),
    in dollars. None for a user with neither US holdings nor US fills that day: no push for them.

    The balance's ``ovrs_rlzt_pfls_amt`` is not used: its period is not documented (the simulator keeps
    it since the account opened), so the day's realised P/L is derived like the domestic one."""

    def __init__(self, accounts: AccountProvider, mode: Mode) -> None:
        self.accounts = accounts
        self.mode = mode

    async def build(self, user_id: int, day: dt.date, language: str, previous_costs: Costs) -> DailyReport | None:
        client = KisOverseasClient((await self.accounts.for_user(user_id)).client)
        with kis_errors():
            balance = await client.balance()
            orders = await client.orders(day, day + dt.timedelta(days=1), filled=True)
        filled = _us_filled(orders, lambda o, local: local.date() == day)
        if not balance.holdings and not filled:
            return None
        fills = tuple(_us_fill(o) for o in filled)
        held = {h.symbol: (h.quantity, h.average_cost.amount) for h in balance.holdings}
        realised = realised_lines(fills, held, previous_costs, "USD")
        holdings = tuple(HoldingLine(
            code=h.symbol, name=h.name or h.symbol, quantity=h.quantity, average_price=h.average_cost.amount,
            current_price=h.last_price.amount, evaluation=h.value.amount, profit_loss=h.profit_loss.amount,
            profit_loss_rate=h.profit_loss_rate) for h in balance.holdings)
        return DailyReport(
            language=language, market="US", day=day.isoformat(), currency="USD", fills=fills, realised=realised,
            realised_total=sum((r.profit_loss for r in realised if r.profit_loss is not None), Decimal(0)),
            realised_source=REALISED_DERIVED, holdings=holdings, purchase_total=balance.cost_total.amount,
            evaluation_total=balance.value_total.amount, profit_loss_total=balance.profit_loss_total.amount,
            mode=self.mode.value)


def _history_days(by_day: Mapping[dt.date, Sequence[ReportFill]]) -> tuple[HistoryDay, ...]:
    return tuple(HistoryDay(
        day=day, fills=tuple(fills),
        bought=sum((f.amount for f in fills if f.side == OrderSide.BUY.value), Decimal(0)),
        sold=sum((f.amount for f in fills if f.side == OrderSide.SELL.value), Decimal(0)))
        for day, fills in sorted(by_day.items(), reverse=True))


async def _us_history(rest: KisRestClient, start: dt.date, end: dt.date) -> dict[dt.date, list[ReportFill]]:
    """US fills made on the KST days ``start``..``end`` (the view's span: last night's session, 23:30–06:00
    KST, is in "/history 1"), grouped by their New York trading day (the US report's day), oldest first,
    in dollars, their times in KST. KIS files a US order under the exchange's date: asked from the day
    before ``start`` (New York is behind) up to the day after ``end`` (a server filing by KST)."""
    client = KisOverseasClient(rest)
    with kis_errors():
        orders = await client.orders(start - dt.timedelta(days=1), end + dt.timedelta(days=1), filled=True)

    def in_span(o: UsOrder, local: dt.datetime) -> bool:
        return start <= (o.kst_time or local).astimezone(KST).date() <= end

    by_day: dict[dt.date, list[ReportFill]] = {}
    for o in _us_filled(orders, in_span):
        assert o.local_time is not None
        by_day.setdefault(o.local_time.date(), []).append(_us_fill(o))
    return by_day


# -- the service ------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class ReportService:
    """``/report`` and ``/history``, and the scheduled report at each market's close."""

    db: Database
    accounts: AccountProvider
    mode: Mode
    wake_sender: Callable[[], None] = lambda: None
    markets: tuple[ReportMarket, ...] = REPORT_MARKETS
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(KST)
    poll_seconds: float = POLL_SECONDS
    sources: dict[str, ReportSource] = field(default_factory=dict)
    armed_orders: ArmedOrders = no_armed_orders
    concurrency: int = 8  # reports built at once
    names: SymbolNames | None = None  # domestic stocks as an English reader reads them (None: KIS's names)
    # Seconds the scheduler waits before its first pass, then loads the holiday calendars that pass needs on a
    # worker thread (0.3–0.5 CPU s in one piece): the runtime lets the bot come up first (README "Benchmarks").
    first_pass_delay: float = 0.0
    # Called once the calendars are loaded ahead (the process may then move them out of the cyclic garbage
    # collector's way, as it did what start-up built: they live as long as it does).
    warmed: Callable[[], None] = lambda: None
    sent: int = 0
    _task: asyncio.Task[None] | None = None
    _failures: dict[tuple[int, str, str], tuple[int, dt.datetime]] = field(default_factory=dict)  # -> (count, next try)

    def __post_init__(self) -> None:
        self.sources.setdefault("KRX", KrxReportSource(self.accounts, self.mode, self.names))
        self.sources.setdefault("US", UsReportSource(self.accounts, self.mode))

    # -- the setting ---------------------------------------------------------------------------------------
    def _reported(self) -> tuple[str, ...]:
        return tuple(m.market for m in self.markets if m.market in self.sources)

    async def setting(self, user_id: int) -> ReportSetting:
        async with self.db.session() as session:
            row = await session.get(ReportSettingRow, user_id)
        return ReportSetting(bool(row and row.enabled), self._reported())

    async def set_enabled(self, user_id: int, chat_id: int, language: str, enabled: bool) -> ReportSetting:
        async with self.db.write() as session:
            row = await session.get(ReportSettingRow, user_id)
            if row is None:
                row = ReportSettingRow(telegram_id=user_id, chat_id=chat_id, language=language, enabled=enabled)
            else:
                row.chat_id, row.language, row.enabled, row.updated_at = chat_id, language, enabled, utcnow()
            session.add(row)
        return ReportSetting(enabled, self._reported())

    # -- on demand ------------------------------------------------------------------------------------------
    async def today(self, user_id: int, language: str) -> tuple[DailyReport, ...]:
        """Today's reports as they stand now (``/report``), nothing recorded or pushed: the domestic one
        (its faults are the user's answer), then any other market's the user has something in (a fault
        there leaves it out). The markets are asked at once."""
        now = self.clock()
        markets = [m for m in (KRX_REPORT, *(m for m in self.markets if m.market != KRX_REPORT.market))
                   if m.market in self.sources]

        async def build(market: ReportMarket) -> DailyReport | None:
            day = market.local_date(now)
            previous = (await self._previous_costs([user_id], market.market, day))[user_id]
            return await self.sources[market.market].build(user_id, day, language, previous)

        built = await asyncio.gather(*(build(m) for m in markets), return_exceptions=True)
        reports = []
        for market, report in zip(markets, built, strict=True):
            if isinstance(report, BaseException):
                if market.market == KRX_REPORT.market:
                    raise report
                log.info("report of another market left out", exc_info=report, extra={"market": market.market})
            elif report is not None:
                reports.append(await self._with_armed(user_id, report))
        return tuple(reports)

    async def history(self, user_id: int, days_text: str | None) -> HistoryView:
        """Executions over the last ``days`` calendar days (today included), grouped by day, newest first."""
        days = parse_days(days_text)
        end = self.clock().astimezone(KST).date()
        start = end - dt.timedelta(days=days - 1)
        account = await self.accounts.for_user(user_id)
        with kis_errors():
            executions = await account.client.executions(start, end)
        by_day: dict[dt.date, list[ReportFill]] = {}
        for e in _oldest_first(executions):
            by_day.setdefault(dt.datetime.strptime(e.date, "%Y%m%d").date(), []).append(_fill(e, "KRW"))
        us_by_day: dict[dt.date, list[ReportFill]] = {}
        us_unavailable = False
        if "US" in self.sources:  # the US market is served: its executions too, in their own section
            try:
                us_by_day = await _us_history(account.client, start, end)
            except (KisError, UserError) as exc:
                # said only to a user the bot knows to trade US stocks: an account without overseas trading
                # (KIS refuses its US orders) gets the domestic view alone, as /report leaves the US out
                us_unavailable = await self._us_activity(user_id)
                log.warning("US executions not loaded for /history", extra={"error": type(exc).__name__,
                                                                            "said": us_unavailable})
        return HistoryView(self.mode, days, start, end, "KRW", _history_days(by_day), _history_days(us_by_day),
                           us_unavailable)

    async def _us_activity(self, user_id: int) -> bool:
        """Whether the bot knows of the user's US trading: a US order journalled, a US alert or conditional
        order, or a US report pushed (holdings or fills seen)."""
        async with self.db.session() as session:
            for query in (
                select(OrderJournalRow.id).where(col(OrderJournalRow.owner_id) == user_id,
                                                 col(OrderJournalRow.market) == "US"),
                select(AlertRow.id).where(col(AlertRow.owner_id) == user_id, col(AlertRow.currency) == "USD"),
                select(ConditionalOrderRow.id).where(col(ConditionalOrderRow.owner_id) == user_id,
                                                     col(ConditionalOrderRow.market) == "US"),
                select(DailyReportRow.id).where(col(DailyReportRow.telegram_id) == user_id,
                                                col(DailyReportRow.market) == "US", col(DailyReportRow.pushed)),
            ):
                if (await session.exec(query.limit(1))).first() is not None:
                    return True
        return False

    # -- the schedule --------------------------------------------------------------------------------------
    async def run_due(self, now: dt.datetime | None = None) -> int:
        """Send every report due at ``now`` and not sent yet (by anyone); returns how many this call sent.
        Up to :attr:`concurrency` users are built at once (each asks their own KIS account). A user whose
        report cannot be built now (KIS down, keys withdrawn) is tried again later, each failure doubling
        the wait (from :attr:`poll_seconds` up to :data:`MAX_RETRY_WAIT`)."""
        now = now or self.clock()
        gate = asyncio.Semaphore(self.concurrency)

        async def attempt(source: ReportSource, setting: ReportSettingRow, market: str, day: dt.date,
                          previous: Costs) -> bool:
            key = (setting.telegram_id, market, day.isoformat())
            async with gate:
                try:
                    sent = await self._send(source, setting, market, day, previous)
                except Exception as exc:  # one user's failure must not stop the others' reports
                    failures = self._failures.get(key, (0, now))[0] + 1
                    wait = min(dt.timedelta(seconds=self.poll_seconds * 2 ** failures), MAX_RETRY_WAIT)
                    self._failures[key] = (failures, now + wait)
                    reason = exc.key if isinstance(exc, UserError) else type(exc).__name__
                    log.warning("daily report not built; tried again later", exc_info=not isinstance(exc, UserError),
                                extra={"market": market, "reason": reason, "failures": failures})
                    return False
            self._failures.pop(key, None)
            return sent

        attempts = []
        for market in self.markets:
            source = self.sources.get(market.market)
            if source is None:
                continue
            for day in market.due_days(now):
                due = [setting for setting in await self._unreported(market.market, day)
                       if (retry := self._failures.get((setting.telegram_id, market.market, day.isoformat()))) is None
                       or retry[1] <= now]
                previous = await self._previous_costs([setting.telegram_id for setting in due], market.market, day)
                attempts += [attempt(source, setting, market.market, day, previous[setting.telegram_id])
                             for setting in due]
        if len(self._failures) > MAX_REMEMBERED_FAILURES:  # days long past: forget them
            self._failures.clear()
        sent = sum(await asyncio.gather(*attempts))
        if sent:
            self.sent += sent
            self.wake_sender()
        return sent

    async def _unreported(self, market: str, day: dt.date) -> list[ReportSettingRow]:
        done = select(DailyReportRow.telegram_id).where(
            col(DailyReportRow.market) == market, col(DailyReportRow.trading_day) == day.isoformat())
        blocked = select(UserRow.telegram_id).where(col(UserRow.blocked).is_(True))
        async with self.db.session() as session:
            return list((await session.exec(select(ReportSettingRow).where(
                col(ReportSettingRow.enabled).is_(True), col(ReportSettingRow.telegram_id).not_in(done),
                col(ReportSettingRow.telegram_id).not_in(blocked)).order_by(col(ReportSettingRow.telegram_id)))).all())

    async def _previous_costs(self, user_ids: Sequence[int], market: str, day: dt.date) -> dict[int, Costs]:
        """Each user's holdings at their latest report of ``market`` before ``day`` (code → quantity,
        average purchase price), within :data:`PREVIOUS_WITHIN`: one query per 500 users."""
        found: dict[int, Costs] = {user_id: {} for user_id in user_ids}
        since = (day - PREVIOUS_WITHIN).isoformat()
        ids = list(found)
        async with self.db.session() as session:
            for start in range(0, len(ids), 500):
                rows = (await session.exec(select(DailyReportRow.telegram_id, DailyReportRow.costs).where(
                    col(DailyReportRow.telegram_id).in_(ids[start:start + 500]), col(DailyReportRow.market) == market,
                    col(DailyReportRow.trading_day) < day.isoformat(), col(DailyReportRow.trading_day) >= since,
                ).order_by(col(DailyReportRow.trading_day)))).all()
                for user_id, recorded in rows:  # oldest first: the latest stays
                    found[user_id] = _costs(recorded)
        return found

    async def _with_armed(self, user_id: int, report: DailyReport) -> DailyReport:
        try:
            armed = tuple(await self.armed_orders(user_id, report.market))
        except Exception:  # a report without that part beats no report
            log.warning("armed conditional orders unavailable for the report", exc_info=True)
            return report
        return dataclasses.replace(report, armed=armed)

    async def _send(self, source: ReportSource, setting: ReportSettingRow, market: str, day: dt.date,
                    previous: Costs) -> bool:
        """Build the report and write it with its push, once; a user with nothing of this market to report
        (no US holdings or fills) gets a row without a push, so the day is not asked about again."""
        user_id = setting.telegram_id
        try:
            report = await source.build(user_id, day, setting.language, previous)
        except UserError as exc:
            if exc.key != "not_registered":
                raise
            report = None  # logged out (real or virtual mode): no account, nothing to report, the day is done
        if report is not None:
            report = await self._with_armed(user_id, report)
        costs = {h.code: [h.quantity, str(h.average_price)] for h in report.holdings} if report else {}
        try:
            # The unique keys decide: the row's (user, market, day), and the push's in the outbox (new
            # whenever the row is). A second pass, a restart or another replica meets them and rolls back.
            async with self.db.write() as session:
                session.add(DailyReportRow(telegram_id=user_id, market=market, trading_day=day.isoformat(),
                                           costs=costs, pushed=report is not None))
                await session.flush()
                if report is not None:
                    push = Push(f"report:{market}:{day.isoformat()}:{user_id}", user_id, setting.chat_id, report)
                    await enqueue(session, [push], keys_are_new=True)
        except IntegrityError:  # sent already (by another pass, process or replica)
            return False
        log.info("daily report queued" if report else "nothing to report", extra={"market": market, "day": day.isoformat()})
        return report is not None

    # -- the scheduler ---------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="daily-reports")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await tasks.cancel(task)

    async def _run(self) -> None:
        if self.first_pass_delay > 0:
            await asyncio.sleep(self.first_pass_delay)
            now = self.clock()
            try:
                await asyncio.to_thread(lambda: [market.due_days(now) for market in self.markets])
            except Exception:  # the pass below meets it again and logs it
                log.debug("holiday calendars not loaded ahead", exc_info=True)
            else:
                self.warmed()
        while True:
            try:
                await self.run_due()
            except Exception:  # the scheduler outlives one bad pass (the database away)
                log.warning("daily report pass failed", exc_info=True)
            await asyncio.sleep(self.poll_seconds)
