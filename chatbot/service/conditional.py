"""Conditional orders: a stop-loss (``/stop``), a take-profit (``/tp``), a trailing stop (``/trail``)
or a bracket of both (``/bracket``), confirmed once by its owner on a card and placed by the bot,
exactly once, when a trade crosses its trigger.

* Arming: every check is made before the card is shown (the shares held — orderable quantity —
  less what the user's other conditional orders on the symbol already sell; triggers on the tick,
  within plausible bounds, not already crossed). The card is a confirmation card like an order's
  (single use, owner only, expiring); the Confirm press arms it in the same transaction that claims
  the card, after the holdings and the price are checked again.
* Firing (:meth:`ConditionalOrders.fire`, called by :class:`~chatbot.alerts.triggers.TriggerEngine`):
  one transaction moves the order ``armed`` → ``firing`` (a conditional update: it fires once, and a
  bracket's other leg with it is gone), opens its sell's journal row under its own idempotency key
  (``fire_key``, with a card row of its own as every journalled order has) and queues the "triggered"
  push. The holdings are read again (never more than held is sold; the user is told when less is),
  the sell goes through the account's broker (its once-only submitter), and its outcome, the order's new status
  (``placed``/``failed``) and the push are written in one transaction. A failed or refused firing
  is told and stays failed; nothing is re-armed.
* An outcome left unknown (no answer from KIS, a crash while sending) is the order reconciliation's,
  like any order's; this service copies what it learns into the conditional order (:meth:`sync`).
  A firing whose sell provably never left (a crash before sending) is sent after a restart when it
  is recent and the market still open, else reconciliation tells it as not placed; the process that fired
  it, if it still runs (a replica that lost the feed role), then finds it taken over and sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import bindparam, case, insert, or_, update
from sqlalchemy import select as core_select
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chatbot.alerts import outbox
from chatbot.alerts.feeds import AlertFeed
from chatbot.alerts.notices import ConditionalNotice
from chatbot.alerts.outbox import Push
from chatbot.alerts.triggers import (
    STOP,
    TAKE,
    ArmedTrigger,
    Crossed,
    TriggerEngine,
    is_us_key,
    regular_session,
    trailing_level,
    us_trailing_level,
)
from chatbot.kis.errors import KisError, KisOrderRejected, KisOrderUncertain
from chatbot.kis.models import OrderSide
from chatbot.kis.overseas import UsOrderNotOffered
from chatbot.kis.protocol import KST
from chatbot.market_hours import MarketCalendar, Phase
from chatbot.markets.money import Money, whole_units
from chatbot.service.accounts import AccountProvider, UserAccount
from chatbot.service.alerts import refuse_unwatchable
from chatbot.service.cards import (
    CardStatus,
    CardStore,
    ClaimRefused,
    account_ref,
    current_account_ref,
    new_token,
)
from chatbot.service.errors import UserError, kis_errors, off_tick
from chatbot.service.inputs import (
    MARKET_WORDS,
    MAX_ARG_LENGTH,
    MAX_SYMBOL_WORDS,
    parse_limit_price,
    parse_quantity,
)
from chatbot.service.journal import (
    OPEN_STATUSES,
    DatabaseUnavailable,
    OrderJournal,
    SendingTaken,
    Settling,
    retry_write,
)
from chatbot.service.market_data import MarketData
from chatbot.service.names import SymbolNames
from chatbot.service.us_conditional import (
    UsConditional,
    UsRequest,
    dollars,
    down_to_tick,
    exchange_of_key,
    ticker_of,
)
from chatbot.service.views import CommandDraft, Mode, Outcome
from chatbot.storage.db import Database
from chatbot.storage.tables import AlertRow, ConditionalOrderRow, OrderJournalRow, PendingOrderRow, UserRow
from chatbot.storage.types import utcnow
from chatbot.symbols import Symbol

log = logging.getLogger(__name__)
KINDS = ("stop", "tp", "trail", "bracket")
ACTIVE = ("armed", "firing")
PLAUSIBLE = (Decimal("0.5"), Decimal(2))  # a trigger beyond halving or doubling is taken for a typo
MAX_TRAIL_PERCENT = Decimal(30)
_PERCENT = re.compile(r"^([0-9]{1,3}(?:\.[0-9]{1,2})?)%$")
_ID = re.compile(r"^[0-9]{1,9}$")
ACCEPTED = (*OPEN_STATUSES, "filled")
ADOPT_MARGIN = 5.0  # seconds: orders stored this long before the last look are looked at again (commit lag)
ARMING_MARGIN = 2.0  # seconds before an adopted order was stored that its gap check starts
SWEEP_SECONDS = 30.0  # the feed's owner checks every order in its engine against the database this often


@dataclass(frozen=True, slots=True)
class ConditionalCard:
    """The confirmation card of a conditional order: what will be sent, when, and for how long."""

    token: str
    mode: Mode
    kind: str
    symbol: Symbol
    quantity: int
    stop: Decimal | None  # stop, bracket; trail: the level now
    take: Decimal | None
    limit: Decimal | None  # None: sold at market
    trail_percent: Decimal | None
    price: Decimal  # the price now
    held: int  # orderable quantity
    committed: int  # what the user's other conditional orders on it already sell
    currency: str
    expires_on: dt.date  # KST: stays armed until then unless cancelled
    ttl_seconds: int  # the time to press Confirm
    slippage_percent: Decimal | None = None  # US without a typed limit: a marketable limit, trigger less this


@dataclass(frozen=True, slots=True)
class ConditionalView:
    """A conditional order as its owner sees it in /stops."""

    id: int
    kind: str
    code: str
    name: str
    quantity: int
    stop: Decimal | None
    take: Decimal | None
    limit: Decimal | None
    trail_percent: Decimal | None
    high_water: Decimal | None
    status: str
    price: Decimal | None  # the last trade (None: not known)
    distance_percent: Decimal | None  # from the price to the nearest trigger, percent of the price
    expires_at: dt.datetime
    order_no: str | None
    result: str | None
    currency: str


@dataclass(frozen=True, slots=True)
class ArmResult:
    """What a press on a conditional order's card came to: ``ARMED``-like outcomes use
    :class:`Outcome.PLACED` (armed) and :class:`Outcome.DISMISSED`; refusals as for order cards."""

    outcome: Outcome
    view: ConditionalView | None = None

    @property
    def refused(self) -> bool:
        return self.outcome in (Outcome.NOT_OWNER, Outcome.ALREADY_HANDLED, Outcome.UNKNOWN, Outcome.EXPIRED,
                                Outcome.ACCOUNT_CHANGED)


_REFUSALS = {ClaimRefused.UNKNOWN: Outcome.UNKNOWN, ClaimRefused.NOT_OWNER: Outcome.NOT_OWNER,
             ClaimRefused.EXPIRED: Outcome.EXPIRED, ClaimRefused.ALREADY_HANDLED: Outcome.ALREADY_HANDLED,
             ClaimRefused.ACCOUNT_CHANGED: Outcome.ACCOUNT_CHANGED}
ACCOUNT_CHANGED = "account changed"  # the result of an order cancelled because the user's account changed


@dataclass(frozen=True, slots=True)
class _Request:
    symbol_text: str
    quantity: int
    stop: int | None = None
    take: int | None = None
    limit: int | None = None
    trail: Decimal | None = None


class ConditionalOrders:
    def __init__(self, db: Database, accounts: AccountProvider, cards: CardStore, journal: OrderJournal,
                 market: MarketData, mode: Mode, settling: Settling, *, process_id: str,
                 expiry_days: int = 30, max_per_user: int = 20, allow_real_orders: bool = False,
                 watch_fills: Callable[[int, int], Awaitable[None]] | None = None,
                 on_uncertain: Callable[[], None] | None = None, wake_sender: Callable[[], None] = lambda: None,
                 resume_seconds: float = 300.0, sync_seconds: float = 2.0, max_concurrent_firings: int = 8) -> None:
        self.db = db
        self.accounts = accounts
        self.cards = cards
        self.journal = journal
        self.market = market
        self.names = SymbolNames(market.symbols)  # a domestic stock as its reader reads it
        self.mode = mode
        self.settling = settling
        self.process_id = process_id
        self.expiry = dt.timedelta(days=expiry_days)
        self.max_per_user = max_per_user
        self.allow_real_orders = allow_real_orders
        self.watch_fills = watch_fills
        self.on_uncertain = on_uncertain
        self.wake_sender = wake_sender
        self.resume_seconds = resume_seconds
        self.sync_seconds = sync_seconds
        self.db_retry_seconds = 5.0
        self.engine: TriggerEngine | None = None
        self.us: UsConditional | None = None  # US stocks (set by the runtime with the US services)
        # Several replicas on one database (set by the runtime): a replica without the trigger engine
        # (another owns the feed) still arms, lists and cancels, through the database; the feed's owner
        # adopts what it arms (:meth:`adopt_armed`). ``feed_capacity()``: the feed's symbol slots now.
        self.replicated = False
        self.feed_capacity: Callable[[], int] | None = None
        self.adopted_until: dt.datetime | None = None
        self._swept = 0.0
        self._locks: dict[int, asyncio.Lock] = {}  # per user: holdings read and sell sent together
        # Sells in progress at once: a storm of firings queues here rather than in front of every other
        # database write (the alert engine's commits wait behind at most this many firings' writes).
        self._sending = asyncio.Semaphore(max_concurrent_firings)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self.counts: dict[str, int] = {"armed": 0, "fired": 0, "placed": 0, "failed": 0, "reduced": 0}
        self.sent_latencies: list[float] = []  # crossing trade seen → sell request leaving (seconds)
        self.record_latencies = False

    # -- lifecycle --------------------------------------------------------------------------------------
    def attach(self, engine: TriggerEngine) -> None:
        self.engine = engine

    async def armed_triggers(self) -> list[ArmedTrigger]:
        """Every armed order's trigger, loaded at the engine's start: the eight columns it needs, not ORM
        rows (10,000 armed orders: ~0.02 CPU s instead of ~0.25). A trailing stop's ``updated_at`` is when its
        level was last stored raised (:meth:`store_trails`), or armed."""
        t = ConditionalOrderRow
        armed = core_select(col(t.id), col(t.code), col(t.stop_price), col(t.take_price), col(t.trail_percent),
                            col(t.high_water), col(t.armed_at), col(t.updated_at)).where(col(t.status) == "armed")
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(armed)).all()
        return [ArmedTrigger(order_id, code, stop, take, Decimal(percent) if percent else None, high,
                             at.timestamp() if at is not None else None, updated.timestamp() if percent else None)
                for order_id, code, stop, take, percent, high, at, updated in rows if order_id is not None]

    async def start(self) -> None:
        """After the engine started: the firings a restart interrupted, then the background upkeep."""
        await self.recover()
        if self._loop is None:
            self._loop = asyncio.create_task(self._upkeep(), name="conditional-upkeep")

    async def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=10)

    async def _upkeep(self) -> None:
        while True:
            await asyncio.sleep(self.sync_seconds)
            try:
                await self.sync()
                await self.expire_due()
            except Exception:
                log.exception("conditional order upkeep failed; next pass")

    # -- cards ----------------------------------------------------------------------------------------------
    async def prepare(self, user_id: int, chat_id: int, language: str, kind: str, args: Sequence[str]
                      ) -> ConditionalCard:
        """Parse, check everything, store the card (and the order, pending); nothing is armed yet."""
        engine = self._engine_or_elsewhere()
        if self.us is not None and (us_request := self.us.request(kind, args)) is not None:
            return await self._prepare_us(engine, self.us, user_id, chat_id, language, kind, us_request)
        request = _parse(kind, args, lambda text: self.market.symbols.lookup(text).symbol is not None)
        check_stop_limit(request.stop, request.limit, "KRW")
        self._check_real_allowed()
        self.market.check_maintenance()
        try:
            symbol = self.market.resolve(request.symbol_text)
        except UserError as err:
            if err.key == "ambiguous_symbol":  # each candidate may bring this order's card (not a quote)
                err.params["order"] = CommandDraft(kind, _plain_words(kind, request))
            raise
        refuse_unwatchable(symbol)
        account = await self.accounts.for_user(user_id)
        with kis_errors():
            quote = await account.broker.quote(symbol.code, kind=symbol.kind)
            held = await self._held(account, symbol.code)
        price = whole_units(quote.price.amount)
        stop, take, limit = request.stop, request.take, request.limit
        if request.trail is not None:
            stop = trailing_level(price, request.trail)
            if stop >= price:
                raise UserError("cond_trail_too_tight", percent=request.trail)
        for value in (v for v in (request.stop, take, limit) if v is not None):
            low, high = int(price * PLAUSIBLE[0]), int(price * PLAUSIBLE[1])
            if not low <= value <= high:
                raise UserError("cond_implausible", price=Money.krw(value), low=Money.krw(low),
                                high=Money.krw(high))
            tick = quote.tick_for(Money.krw(value), fund=symbol.is_fund)
            if value % tick.amount:
                raise off_tick(Money.krw(value), tick)
        if stop is not None and price <= stop:
            raise UserError("cond_would_fire_now", price=Money.krw(price), trigger=Money.krw(stop))
        if take is not None and price >= take:
            raise UserError("cond_would_fire_now", price=Money.krw(price), trigger=Money.krw(take))
        committed = await self._committed(user_id, symbol.code)
        if request.quantity + committed > held:
            raise _exceeds_holdings(held, committed, request.quantity, symbol.name_ko)
        await self._check_room(engine, user_id, symbol.code)
        now = utcnow()
        ref = self._ref(user_id, account)
        card = PendingOrderRow(id=new_token(), owner_id=user_id, chat_id=chat_id, environment=self.mode.setting,
                               action=kind, side="sell", code=symbol.code, name=symbol.name_ko,
                               quantity=request.quantity, price=_dec(limit), quoted_price=Decimal(price), created_at=now,
                               updated_at=now, expires_at=now + self.cards.ttl, account_ref=ref)
        row = ConditionalOrderRow(owner_id=user_id, chat_id=chat_id, language=language,
                                  environment=self.mode.setting, kind=kind, code=symbol.code, name=symbol.name_ko,
                                  quantity=request.quantity, stop_price=stop, take_price=take, limit_price=limit,
                                  trail_percent=str(request.trail) if request.trail is not None else None,
                                  high_water=price if request.trail is not None else None, reference_price=price,
                                  card_token=card.id, status="pending", expires_at=now + self.expiry,
                                  account_ref=ref)
        async with self.db.write() as session:
            session.add(card)
            session.add(row)
        return ConditionalCard(card.id, self.mode, kind, symbol, request.quantity, _dec(stop), _dec(take),
                               _dec(limit), request.trail, Decimal(price), held, committed, row.currency,
                               (now + self.expiry).astimezone(KST).date(), int(self.cards.ttl.total_seconds()))

    async def _prepare_us(self, engine: TriggerEngine | None, us: UsConditional, user_id: int, chat_id: int,
                          language: str, kind: str, request: UsRequest) -> ConditionalCard:
        """A US conditional order's card: prices in dollars on the US tick, held from the US balance,
        a limit typed or a marketable one from the slippage setting (none: refused)."""
        check_stop_limit(request.stop, request.limit, "USD")
        self._check_real_allowed()
        self.market.check_maintenance()
        symbol = request.symbol
        account = await self.accounts.for_user(user_id)
        with kis_errors():
            code = await us.key(account, symbol)
            price = await us.price(account, code)
            held = await us.held(account, code)
        stop, take, limit = request.stop, request.take, request.limit
        if request.trail is not None:
            stop = us_trailing_level(price, request.trail)
            if stop >= price:
                raise UserError("cond_trail_too_tight", percent=request.trail)
        for value in (v for v in (request.stop, take, limit) if v is not None):
            low, high = int(price * PLAUSIBLE[0]), int(price * PLAUSIBLE[1])
            if not low <= value <= high:
                shown_low = down_to_tick(low)  # the range on the tick: $95.13, not $95.1250
                shown_low += 100 if shown_low < low else 0  # up a cent (below $1 every unit is on the tick)
                raise UserError("us_cond_implausible", price=f"${dollars(value)}", low=f"${dollars(shown_low)}",
                                high=f"${dollars(down_to_tick(high))}")
        if stop is not None and price <= stop:
            raise UserError("us_cond_would_fire_now", price=f"${dollars(price)}", trigger=f"${dollars(stop)}")
        if take is not None and price >= take:
            raise UserError("us_cond_would_fire_now", price=f"${dollars(price)}", trigger=f"${dollars(take)}")
        slippage = None
        if limit is None:
            if us.marketable(stop or take or price) is None:
                raise UserError("us_cond_limit_needed", code=symbol.code)
            slippage = us.slippage_percent
        committed = await self._committed(user_id, code)
        if request.quantity + committed > held:
            raise _exceeds_holdings(held, committed, request.quantity, symbol.name_ko)
        await self._check_room(engine, user_id, code)
        now = utcnow()
        shown_limit = limit if limit is not None else us.marketable(stop) if kind == "stop" and stop else \
            us.marketable(take) if kind == "tp" and take else None
        name = symbol.name_ko[:80] or symbol.code
        ref = self._ref(user_id, account)
        card = PendingOrderRow(id=new_token(), owner_id=user_id, chat_id=chat_id, environment=self.mode.setting,
                               action=kind, side="sell", code=symbol.code, name=name, quantity=request.quantity,
                               price=dollars(limit), quoted_price=dollars(price) or Decimal(0), created_at=now,
                               updated_at=now, expires_at=now + self.cards.ttl, currency="USD", market="US",
                               account_ref=ref)
        row = ConditionalOrderRow(owner_id=user_id, chat_id=chat_id, language=language,
                                  environment=self.mode.setting, kind=kind, code=code, name=name,
                                  quantity=request.quantity, stop_price=stop, take_price=take, limit_price=limit,
                                  trail_percent=str(request.trail) if request.trail is not None else None,
                                  high_water=price if request.trail is not None else None, reference_price=price,
                                  card_token=card.id, status="pending", expires_at=now + self.expiry,
                                  market="US", currency="USD", account_ref=ref)
        async with self.db.write() as session:
            session.add(card)
            session.add(row)
        return ConditionalCard(card.id, self.mode, kind, symbol, request.quantity, dollars(stop), dollars(take),
                               dollars(shown_limit), request.trail, dollars(price) or Decimal(0), held, committed,
                               "USD", (now + self.expiry).astimezone(KST).date(), int(self.cards.ttl.total_seconds()),
                               slippage)

    def sell_limit(self, row: ConditionalOrderRow) -> int | None:
        """The price the fired sell goes at (price units): the typed limit; for a US order without one, a
        marketable limit from the fired leg's trigger and the crossing trade (deterministic from the row,
        so a sell resumed after a restart goes at the same price)."""
        if row.limit_price is not None or row.market != "US" or self.us is None:
            return row.limit_price
        trigger = (row.take_price if row.fired_leg == TAKE else row.stop_price) or row.fired_price or 0
        return self.us.marketable(trigger, row.fired_price)

    async def attach_card(self, token: str, owner_id: int, message_id: int, *, in_place: bool = False,
                          moved_from: int | None = None) -> bool:
        """Record which message shows the card (as :meth:`chatbot.service.orders.Orders.attach_card`: False,
        refused — the message shows, or ``in_place`` ever showed, another card)."""
        return await self.cards.attach_message(token, owner_id, message_id, in_place=in_place,
                                               moved_from=moved_from) is not None

    async def confirm(self, token: str, user_id: int, message_id: int, *, chat_id: int | None = None,
                      language: str = "ko") -> ArmResult:
        """Confirm on a card: the holdings and the price are checked again, then the card is claimed and
        the order armed in one transaction (single use: any other press changes nothing; a card made for
        another account than the user's now is refused, voided)."""
        engine = self._engine_or_elsewhere()
        async with self.db.session() as session:
            pending = (await session.exec(select(ConditionalOrderRow).where(
                col(ConditionalOrderRow.card_token) == token))).first()
        if pending is None or pending.owner_id != user_id or pending.status != "pending":
            _, refused = await self.cards.claim(token, user_id, message_id, CardStatus.FAILED, actions=(),
                                                chat_id=chat_id)
            return ArmResult(_REFUSALS[refused or ClaimRefused.UNKNOWN])
        try:
            account = await self.accounts.current(user_id)  # read afresh: another replica's /logout counts
        except UserError:  # no account now (logged out): a card made for one is void
            if pending.account_ref is None:
                raise
            _, refused = await self.cards.claim(token, user_id, message_id, CardStatus.FAILED, actions=(),
                                                chat_id=chat_id, account=None)
            return ArmResult(_REFUSALS[refused or ClaimRefused.UNKNOWN])
        ref = self._ref(user_id, account)
        with kis_errors():
            held = await self._held(account, pending.code)
        armed: list[ConditionalOrderRow] = []
        not_armed: list[Outcome] = []  # the order was cancelled before the press could arm it: why
        async with contextlib.AsyncExitStack() as stack:
            # No trigger engine here (another replica owns the feed): the price now from a quote, best
            # effort; the feed's owner adopts the order with a gap check from the moment it is stored.
            seen = await stack.enter_async_context(engine.arming(pending.code)) if engine is not None else None
            last = engine.last_price.get(pending.code) if engine is not None else await self._quote(account,
                                                                                                   pending.code)

            async def arm(session: AsyncSession, _card: PendingOrderRow) -> None:
                row = await session.get(ConditionalOrderRow, pending.id)
                assert row is not None
                if row.status != "pending":  # cancelled since it was read (the account changed): never revived
                    await _not_armed(session, row.result)
                    return
                if last is not None and ((row.stop_price is not None and last <= row.stop_price)
                                         or (row.take_price is not None and last >= row.take_price)):
                    trigger = row.stop_price if row.stop_price and last <= row.stop_price else row.take_price
                    raise UserError("cond_would_fire_now", price=Money.of_price_units(last, row.currency),
                                    trigger=Money.of_price_units(trigger or 0, row.currency))
                committed = await _committed_in(session, user_id, row.code)
                if row.quantity + committed > held:
                    raise _exceeds_holdings(held, committed, row.quantity, row.name)
                now = utcnow()
                high_water = row.high_water if row.high_water is None or last is None else max(row.high_water, last)
                moved = await session.exec(update(ConditionalOrderRow).where(  # only one still pending: the row
                    # read above may have been cancelled since by another transaction (PostgreSQL)
                    col(ConditionalOrderRow.id) == row.id, col(ConditionalOrderRow.status) == "pending")
                    .values(status="armed", armed_at=now, updated_at=now, expires_at=now + self.expiry,
                            high_water=high_water).execution_options(synchronize_session=False))
                if moved.rowcount != 1:
                    await _not_armed(session, (await session.exec(select(ConditionalOrderRow.result).where(
                        col(ConditionalOrderRow.id) == row.id))).first())
                    return
                session.expunge(row)
                row.status, row.armed_at, row.updated_at, row.expires_at = "armed", now, now, now + self.expiry
                row.high_water = high_water
                armed.append(row)

            async def _not_armed(session: AsyncSession, result: str | None) -> None:
                """The order is no longer pending (cancelled, as the user was told): the card is spent, not
                placed — voided when the account changed (its press says so), else failed."""
                account_changed = result == ACCOUNT_CHANGED
                not_armed.append(Outcome.ACCOUNT_CHANGED if account_changed else Outcome.ALREADY_HANDLED)
                await self.cards.finish_in(session, token, CardStatus.VOIDED if account_changed else CardStatus.FAILED,
                                           result, only_from=CardStatus.PLACED)

            _, refused = await self.cards.claim(token, user_id, message_id, CardStatus.PLACED, arm,
                                                   actions=KINDS, chat_id=chat_id, account=ref)
            if refused is None and not_armed:
                log.info("a conditional order's card pressed after it was cancelled; not armed",
                         extra={"order_id": pending.id, "outcome": not_armed[0].value})
                return ArmResult(not_armed[0])
            if refused is not None or not armed:
                return ArmResult(_REFUSALS[refused or ClaimRefused.UNKNOWN])
            armed_row = armed[0]
            if engine is not None:
                engine.arm(_trigger(armed_row), seen)
        self.counts["armed"] += 1
        log.info("conditional order armed", extra={"order_id": armed_row.id, "kind": armed_row.kind,
                                                   "code": armed_row.code})
        return ArmResult(Outcome.PLACED, self._view(armed_row, language=language))

    async def dismiss(self, token: str, user_id: int, message_id: int, *, chat_id: int | None = None) -> ArmResult:
        async def drop(session: AsyncSession, _card: PendingOrderRow) -> None:
            await session.exec(update(ConditionalOrderRow).where(
                col(ConditionalOrderRow.card_token) == token, col(ConditionalOrderRow.status) == "pending")
                .values(status="cancelled", result="dismissed", updated_at=utcnow()))

        _, refused = await self.cards.claim(token, user_id, message_id, CardStatus.DISMISSED, drop, actions=KINDS,
                                            chat_id=chat_id)
        return ArmResult(_REFUSALS[refused] if refused is not None else Outcome.DISMISSED)

    # -- listing and cancelling ------------------------------------------------------------------------------
    async def armed_lines(self, user_id: int, market: str) -> list[str]:
        """The daily report's seam (:attr:`chatbot.service.reports.ReportService.armed_orders`): one
        plain line per conditional order still armed on ``market``, from storage (no engine needed)."""
        async with self.db.session() as session:
            rows = list((await session.exec(select(ConditionalOrderRow).where(
                col(ConditionalOrderRow.owner_id) == user_id, col(ConditionalOrderRow.market) == market,
                col(ConditionalOrderRow.status).in_(ACTIVE)).order_by(col(ConditionalOrderRow.id)))).all())
            user = await session.get(UserRow, user_id)
        language = "en" if user is not None and user.language == "en" else "ko"  # the report's language
        words = _REPORT_WORDS[language]
        lines = []
        for row in rows:
            def shown(value: int, us: bool = row.market == "US") -> str:
                return f"${dollars(value)}" if us else f"{value:,}"
            triggers = [f"{words['stop']} ≤ {shown(row.stop_price)}" if row.stop_price is not None else "",
                        f"{words['take']} ≥ {shown(row.take_price)}" if row.take_price is not None else "",
                        f"{words['trail']} -{row.trail_percent}%" if row.trail_percent else ""]
            name = row.name if row.market == "US" else self.names.name(row.code, row.name, language)
            lines.append(f"#{row.id} {words[row.kind]} {name} {words['qty'].format(row.quantity)} · "
                         + " · ".join(x for x in triggers if x))
        return lines

    async def active(self, user_id: int, language: str = "ko") -> list[ConditionalView]:
        """The user's armed (and firing) conditional orders, with the live distance to their trigger, each
        stock named as a ``language`` reader reads it."""
        engine = self._engine_or_elsewhere()
        async with self.db.session() as session:
            rows = list((await session.exec(select(ConditionalOrderRow).where(
                col(ConditionalOrderRow.owner_id) == user_id, col(ConditionalOrderRow.status).in_(ACTIVE))
                .order_by(col(ConditionalOrderRow.id)))).all())
        last = engine.last_price if engine is not None else {}
        prices = {code: last[code] for code in {r.code for r in rows} if code in last}
        missing = {r.code for r in rows} - set(prices)
        if missing:
            with contextlib.suppress(Exception):
                account = await self.accounts.for_user(user_id)
                for code in sorted(missing):
                    with contextlib.suppress(KisError):
                        if self.us is not None and is_us_key(code):
                            prices[code] = await self.us.price(account, code)
                        else:
                            prices[code] = await self._krx_price(account, code)
        return [self._view(row, prices.get(row.code), language) for row in rows]

    async def cancel(self, user_id: int, order_id_text: str) -> ConditionalView:
        """The owner's cancel (single use: the first cancel, or the firing, wins). Without the trigger engine
        here, the feed's owner drops it on its next replica pass (a firing meanwhile finds it cancelled)."""
        engine = self._engine_or_elsewhere()
        text = order_id_text.strip().lstrip("#")
        if not _ID.match(text):
            raise UserError("no_such_conditional", order_id=order_id_text[:MAX_ARG_LENGTH])
        order_id = int(text)
        now = utcnow()
        async with self.db.write() as session:
            result = await session.exec(update(ConditionalOrderRow).where(
                col(ConditionalOrderRow.id) == order_id, col(ConditionalOrderRow.owner_id) == user_id,
                col(ConditionalOrderRow.status) == "armed").values(status="cancelled", result="cancelled by owner",
                                                                     updated_at=now))
            row = await session.get(ConditionalOrderRow, order_id)
        if row is None or row.owner_id != user_id or row.status == "pending":
            raise UserError("no_such_conditional", order_id=text)
        if result.rowcount != 1:
            raise UserError("cond_already_handled", order_id=order_id, status=row.status)
        if engine is not None:
            await engine.disarm(order_id)
        return self._view(row)

    async def covering(self, user_id: int, code: str) -> list[tuple[int, int]]:
        """The user's conditional orders in force (armed, firing) that sell ``code`` (a KRX code or a US
        ticker), as (id, quantity): what a sell card of that stock warns of. They stay armed after a sale by
        hand and, when one fires, sell at most what is held then — shares bought afterwards too."""
        async with self.db.session() as session:
            rows = (await session.exec(select(ConditionalOrderRow).where(
                col(ConditionalOrderRow.owner_id) == user_id, col(ConditionalOrderRow.status).in_(ACTIVE))
                .order_by(col(ConditionalOrderRow.id)))).all()
        return [(row.id, row.quantity) for row in rows if row.id is not None
                and (ticker_of(row.code) if row.market == "US" else row.code) == code]

    async def account_changed(self, user_id: int) -> list[int]:
        """The user's account changed (/login, /logout, a paper /reset): their conditional orders armed (or
        awaiting their card's press) for any other account than the one they have now are cancelled — an
        order armed before orders recorded their account too, as it cannot be told apart — taken out of the
        trigger engine, and the user is told which in one message. Returns the ids cancelled. (One firing
        already is checked when it sends: :meth:`_execute` never sells on another account.)"""
        now_ref = await current_account_ref(self.accounts, self.mode, user_id)
        other = [] if now_ref is None else [or_(  # no account now: every one
            col(ConditionalOrderRow.account_ref).is_(None), col(ConditionalOrderRow.account_ref) != now_ref)]
        now = utcnow()
        table = ConditionalOrderRow.__table__  # type: ignore[attr-defined]
        cancelled: dict[str, list[ConditionalOrderRow]] = {}
        async with self.db.write_connection() as conn:
            for status in ("armed", "pending"):  # exactly those this update moves (a firing meanwhile is not)
                returned = (await conn.execute(update(ConditionalOrderRow).where(
                    col(ConditionalOrderRow.owner_id) == user_id, col(ConditionalOrderRow.status) == status, *other)
                    .values(status="cancelled", result=ACCOUNT_CHANGED, updated_at=now)
                    .returning(*table.columns))).mappings().all()
                cancelled[status] = sorted((ConditionalOrderRow(**r) for r in returned), key=lambda r: r.id or 0)
            armed = cancelled["armed"]
            if armed:  # one message for them all (a pending one's card is voided: its press says so)
                first = armed[0]
                assert first.id is not None
                await outbox.enqueue(conn, [Push(f"cond:{first.id}:account", user_id, first.chat_id,
                                                 self._notice(first, "account", 0, "", detail=_order_lines(armed)))])
        ids = [r.id for rows in cancelled.values() for r in rows if r.id is not None]
        if self.engine is not None:
            for order_id in ids:
                await self.engine.disarm(order_id)
        if armed:
            log.info("conditional orders cancelled: the account changed",
                     extra={"user_id": user_id, "orders": [r.id for r in armed]})
            self.wake_sender()
        return [r.id for r in armed if r.id is not None]

    # -- firing ----------------------------------------------------------------------------------------------
    async def fire(self, crossed: list[Crossed]) -> None:
        """Crossed legs from the engine: each order fires once (one leg of a bracket: the first crossed;
        both in one tick, the one whose trade came first, the stop on a tie)."""
        chosen: dict[int, Crossed] = {}
        for item in sorted(crossed, key=lambda c: (c.tick_time, c.leg != STOP)):
            chosen.setdefault(item.order_id, item)
        now = utcnow()
        fired: list[tuple[ConditionalOrderRow, int, Crossed]] = []
        opened: list[int] = []  # ours to settle from the moment they exist: reconciliation leaves them alone

        async def claim() -> None:
            # Retried while the database refuses it (a lock, a fail-over): the trade that crossed is gone
            # once this returns, and an order put back in the book fires only if a later trade crosses too.
            # Each attempt starts clean (a failed one rolled back: no such rows).
            self.settling.in_flight.difference_update(opened)
            opened.clear()
            fired.clear()
            await self._claim_firings(chosen, now, fired, opened)

        try:
            await retry_write(claim, self.db_retry_seconds, "conditional firing")
        except BaseException:
            self.settling.in_flight.difference_update(opened)  # rolled back: no such rows
            raise
        if fired:
            self.counts["fired"] += len(fired)
            self.wake_sender()
            for row, journal_id, item in fired:
                self._spawn(self._execute(row, journal_id, item.seen_at))
        if self.engine is not None:  # the crossed ones left the book, fired or not (cancelled, expired
            # meanwhile): their symbols off the feed unless something else there needs them
            await self.engine.release_fired([item.code for item in chosen.values()])

    async def _claim_firings(self, chosen: dict[int, Crossed], now: dt.datetime,
                             fired: list[tuple[ConditionalOrderRow, int, Crossed]], opened: list[int]) -> None:
        """One transaction (Core statements, a few per batch): each order still armed → firing, its
        sell's card and journal row, its "triggered" push."""
        async with self.db.write_connection() as conn:
            ids = list(chosen)
            table = ConditionalOrderRow.__table__  # type: ignore[attr-defined]
            returned = (await conn.execute(update(ConditionalOrderRow).where(
                col(ConditionalOrderRow.id).in_(ids), col(ConditionalOrderRow.status) == "armed")
                .values(status="firing", fired_at=now, updated_at=now,
                        fired_leg=case({i: chosen[i].leg for i in ids}, value=table.c.id),
                        fired_price=case({i: chosen[i].price for i in ids}, value=table.c.id),
                        fired_time=case({i: chosen[i].tick_time for i in ids}, value=table.c.id),
                        fire_key=case({i: f"cond-{i}" for i in ids}, value=table.c.id))
                .returning(*table.columns))).mappings().all()  # the others: cancelled, expired or fired meanwhile
            won = [(ConditionalOrderRow(**r), chosen[r["id"]]) for r in returned]
            if not won:
                return
            cards = [self._fire_card(row, item, now) for row, item in won]
            await conn.execute(insert(PendingOrderRow), [card.model_dump() for card in cards])
            journal_ids = await self.journal.add_many(conn, cards, self.process_id)
            opened.extend(journal_ids.values())
            self.settling.in_flight.update(journal_ids.values())
            await outbox.enqueue(conn, [Push(f"cond:{row.id}:triggered", row.owner_id, row.chat_id,
                                             self._notice(row, "triggered", item.price, item.tick_time))
                                        for row, item in won], keys_are_new=True)  # armed → firing happens once
            fired.extend((row, journal_ids[row.fire_key or ""], item) for row, item in won)

    def _fire_card(self, row: ConditionalOrderRow, item: Crossed, now: dt.datetime) -> PendingOrderRow:
        """The fired sell's card row (journalled under ``fire_key``): a US one as US order cards are
        (ticker, dollars, exchange, LIMIT), so reconciliation looks for it among the day's US orders."""
        if row.market == "US":
            exchange = exchange_name(row.code)
            return PendingOrderRow(id=row.fire_key or "", owner_id=row.owner_id, chat_id=row.chat_id,
                                   environment=row.environment, action="order", side="sell", code=ticker_of(row.code),
                                   name=row.name, quantity=row.quantity, price=dollars(self.sell_limit(row)),
                                   quoted_price=dollars(item.price) or Decimal(0), status=CardStatus.SUBMITTING.value,
                                   created_at=now, updated_at=now, expires_at=now, result="conditional order",
                                   currency="USD", market="US", exchange=exchange, order_type="LIMIT",
                                   account_ref=row.account_ref)
        return PendingOrderRow(id=row.fire_key or "", owner_id=row.owner_id, chat_id=row.chat_id,
                               environment=row.environment, action="order", side="sell", code=row.code,
                               name=row.name, quantity=row.quantity, price=_dec(row.limit_price),
                               quoted_price=Decimal(item.price), status=CardStatus.SUBMITTING.value, created_at=now,
                               updated_at=now, expires_at=now, result="conditional order", account_ref=row.account_ref)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("conditional order firing failed", exc_info=task.exception())

    async def _execute(self, row: ConditionalOrderRow, journal_id: int, seen_at: float | None) -> None:
        """Sell what is held (at most the order's quantity) through the broker's once-only submitter; settle."""
        assert row.id is not None and row.fire_key is not None
        try:
            try:
                account = await self.accounts.current(row.owner_id)  # afresh: another replica's /logout counts
            except Exception as exc:  # noqa: BLE001 -- nothing was sent: any fault fails the firing, told
                await self._settle(row, journal_id, "failed", message=f"no KIS account ({type(exc).__name__})")
                return
            if self.mode is Mode.REAL and not self.allow_real_orders:
                await self._settle(row, journal_id, "failed", message="real orders disabled")
                return
            if row.account_ref is not None and self._ref(row.owner_id, account) != row.account_ref:
                # armed on another account than the user's now (a change of account that did not cancel it
                # first: a replica's race, a crash between): never sold here; cancelled and told
                log.warning("a conditional order fired for another account than the user's now; not sent",
                            extra={"order_id": row.id, "journal_id": journal_id})
                await self._settle(row, journal_id, "failed", quantity=0, message=ACCOUNT_CHANGED,
                                   account_changed=True)
                return
            lock = self._locks.setdefault(row.owner_id, asyncio.Lock())
            # The user's own orders one at a time (each reads what the other left), then a slot among
            # everyone's: one user's many firings never hold every slot while waiting for each other.
            async with lock, self._sending:
                try:
                    held = await self._held_retried(account, row.code)
                except KisError as exc:
                    await self._settle(row, journal_id, "failed", msg_cd=exc.msg_cd,
                                       message=f"holdings could not be read: {exc.msg1 or type(exc).__name__}")
                    return
                quantity = min(row.quantity, held)
                if quantity <= 0:
                    await self._settle(row, journal_id, "failed", quantity=0, message="nothing held to sell")
                    return
                if quantity < row.quantity:
                    self.counts["reduced"] += 1
                    try:
                        await retry_write(lambda: self._reduce(row, journal_id, quantity), self.db_retry_seconds,
                                          "conditional quantity")
                    except SendingTaken:  # taken over (and perhaps sold) meanwhile: its quantity is the taker's
                        log.warning("a conditional order's sell was taken over before it was sent; not sending it",
                                    extra={"order_id": row.id, "journal_id": journal_id})
                        return
                if self.watch_fills is not None:
                    try:
                        await self.watch_fills(row.owner_id, row.chat_id)
                    except Exception:  # fill pushes are a convenience; the sell goes ahead
                        log.exception("could not start fill notifications")

                async def on_sending(known: set[str]) -> None:
                    await retry_write(lambda: self.journal.mark_sending(journal_id, str(account.account), known,
                                                                        by=self.process_id),
                                      self.db_retry_seconds, "journal before sending")
                    if self.record_latencies and seen_at is not None:
                        self.sent_latencies.append(time.perf_counter() - seen_at)

                sent = [False]

                async def on_sending_us(known: set[str]) -> None:
                    await on_sending(known)
                    sent[0] = True

                try:
                    if row.market == "US":
                        limit = self.sell_limit(row)
                        if self.us is None or limit is None:
                            await self._settle(row, journal_id, "failed", quantity=quantity,
                                               message="no US limit price")
                            return
                        order_no = (await self.us.sell(account, row.code, quantity, limit, on_sending_us)).ack.order_no
                    else:
                        krw_limit = None if row.limit_price is None else Money.krw(row.limit_price)
                        order_no = (await account.broker.place(OrderSide.SELL, row.code, quantity, krw_limit,
                                                               on_sending=on_sending)).ack.order_no
                except SendingTaken:  # another replica took the firing over before it left: it sends it, once
                    log.warning("a conditional order's sell was taken over before it was sent; not sending it",
                                extra={"order_id": row.id, "journal_id": journal_id})
                    return
                except (UsOrderNotOffered, ValueError) as exc:  # refused before anything was sent
                    await self._settle(row, journal_id, "failed", quantity=quantity, message=str(exc))
                    return
                except DatabaseUnavailable:
                    await self._settle(row, journal_id, "failed", quantity=quantity, message="database unavailable")
                    return
                except KisOrderRejected as exc:
                    await self._settle(row, journal_id, "rejected", quantity=quantity, msg_cd=exc.msg_cd,
                                       message=exc.msg1)
                    return
                except KisOrderUncertain as exc:
                    await self._settle(row, journal_id, "uncertain", quantity=quantity, msg_cd=exc.msg_cd,
                                       message=str(exc))
                    return
                except KisError as exc:
                    if sent[0] and exc.maybe_sent:  # a US sell that may have left: reconciliation's, as US orders
                        await self._settle(row, journal_id, "uncertain", quantity=quantity, msg_cd=exc.msg_cd,
                                           message=str(exc))
                        return
                    await self._settle(row, journal_id, "failed", quantity=quantity, msg_cd=exc.msg_cd,
                                       message=exc.msg1 or type(exc).__name__)
                    return
            await self._settle(row, journal_id, "accepted", quantity=quantity, order_no=order_no)
        finally:
            self.settling.in_flight.discard(journal_id)

    async def _reduce(self, row: ConditionalOrderRow, journal_id: int, quantity: int) -> None:
        """Less is held than armed: the journal and the card say what is actually sent (reconciliation
        matches the day's orders by quantity). Only while the row is still this process's to send
        (:class:`SendingTaken` otherwise: the process that took it over sends its own quantity)."""
        async with self.db.write() as session:
            result = await session.exec(update(OrderJournalRow).where(
                col(OrderJournalRow.id) == journal_id, col(OrderJournalRow.submitted_by) == self.process_id,
                col(OrderJournalRow.sent_at).is_(None), col(OrderJournalRow.told_at).is_(None))
                .values(quantity=quantity))
            if result.rowcount != 1:
                raise SendingTaken(f"journal row {journal_id} is no longer {self.process_id}'s to send")
            await session.exec(update(PendingOrderRow).where(col(PendingOrderRow.id) == row.fire_key)
                               .values(quantity=quantity))

    async def _settle(self, row: ConditionalOrderRow, journal_id: int, status: str, *, quantity: int | None = None,
                      order_no: str | None = None, msg_cd: str = "", message: str | None = None,
                      account_changed: bool = False) -> None:
        """The sell's outcome, the card's, the conditional order's and the push: one transaction.
        ``account_changed``: nothing was sent, the order was for another account: cancelled, told so."""
        assert row.id is not None and row.fire_key is not None
        final = status != "uncertain"
        placed = status == "accepted"
        card_status = (CardStatus.PLACED if placed else CardStatus.UNCERTAIN if not final
                       else CardStatus.REJECTED if status == "rejected" else CardStatus.FAILED)
        stage = "placed" if placed else "uncertain" if not final else "account" if account_changed else "failed"
        sold = quantity if quantity is not None else row.quantity
        notice = self._notice(row, stage, row.fired_price or 0, row.fired_time or "", order_no=order_no,
                              detail=_order_lines([row]) if account_changed else message or "", quantity=sold)

        async def also(session: AsyncSession) -> None:
            conn = await session.connection()  # Core statements: no ORM bookkeeping on the hot path
            await conn.execute(update(PendingOrderRow).where(
                col(PendingOrderRow.id) == row.fire_key, col(PendingOrderRow.status) == CardStatus.SUBMITTING.value)
                .values(status=card_status.value, result=order_no or message, updated_at=utcnow()))
            if final:
                await conn.execute(update(ConditionalOrderRow).where(
                    col(ConditionalOrderRow.id) == row.id, col(ConditionalOrderRow.status) == "firing")
                    .values(status="placed" if placed else "cancelled" if account_changed else "failed",
                            order_no=order_no, sold_quantity=sold if placed else 0, result=message or status,
                            updated_at=utcnow()))
            await outbox.enqueue(conn, [Push(f"cond:{row.id}:{stage}", row.owner_id, row.chat_id, notice)])

        taken = [False]

        async def write() -> None:
            # Only while the row is still this process's: a firing another process took over before this one
            # sent it (this one then found nothing held, or no account, ...) is that one's to settle and tell.
            taken[0] = not await self.journal.settle(journal_id, status, kis_order_no=order_no, msg_cd=msg_cd or None,
                                                     message=message, told=final, also=also, by=self.process_id)

        try:
            await retry_write(write, self.db_retry_seconds, "conditional order outcome")
        except DatabaseUnavailable:
            log.error("conditional order outcome not written yet; written when the database is back",
                      extra={"order_id": row.id, "status": status, "order_no": order_no})
            self.settling.unwritten.add(journal_id, order_no, write)
        if taken[0]:
            log.warning("a conditional order's firing was taken over by another process; its outcome is that one's",
                        extra={"order_id": row.id, "journal_id": journal_id, "status": status})
            return
        self.counts["placed" if placed else "failed" if final else "uncertain"] = (
            self.counts.get("placed" if placed else "failed" if final else "uncertain", 0) + 1)
        log.info("conditional order settled", extra={"order_id": row.id, "status": status, "order_no": order_no})
        self.wake_sender()
        if not final and self.on_uncertain is not None:
            self.on_uncertain()

    # -- upkeep ------------------------------------------------------------------------------------------------
    async def recover(self) -> int:
        """At start-up: a firing whose sell provably never left (no time of sending in its journal row)
        is sent now if it is recent and the market open; anything else is reconciliation's."""
        cutoff = utcnow() - dt.timedelta(seconds=self.resume_seconds)
        async with self.db.session() as session:
            rows = list((await session.exec(select(ConditionalOrderRow, OrderJournalRow).join(
                OrderJournalRow, col(OrderJournalRow.idempotency_key) == col(ConditionalOrderRow.fire_key)).where(
                col(ConditionalOrderRow.status) == "firing", col(OrderJournalRow.sent_at).is_(None),
                col(OrderJournalRow.told_at).is_(None)))).all())
        resumed = 0
        open_now = self.mode is Mode.PAPER or self.market.calendar.state().phase.value == "regular"
        for row, entry in rows:
            assert entry.id is not None
            is_open = (self.us.in_session() if self.us is not None else False) if row.market == "US" else open_now
            if not is_open or row.fired_at is None or row.fired_at < cutoff:
                continue  # reconciliation tells it as not placed; sync() marks it failed
            if entry.id in self.settling.in_flight:
                continue  # this process is sending it still (the feed role lost and taken back meanwhile)
            # Taken over only from the process it was read under, and only while unsent: the one that
            # fired it, still running (a replica that lost the feed role, its sell queued behind a lock or a
            # database retry), then finds the row no longer its own when it marks it sending
            # (OrderJournal.mark_sending ``by``) and sends nothing. Exactly one of the two sends it.
            owner = entry.submitted_by
            held_by = (col(OrderJournalRow.submitted_by) == owner if owner is not None
                       else col(OrderJournalRow.submitted_by).is_(None))
            async with self.db.write() as session:
                result = await session.exec(update(OrderJournalRow).where(
                    col(OrderJournalRow.id) == entry.id, col(OrderJournalRow.sent_at).is_(None),
                    col(OrderJournalRow.told_at).is_(None), held_by).values(submitted_by=self.process_id))
            if result.rowcount != 1:
                continue
            self.settling.in_flight.add(entry.id)
            log.warning("resuming a conditional order's sell that a restart stopped before sending",
                        extra={"order_id": row.id, "journal_id": entry.id})
            self._spawn(self._execute(row, entry.id, None))
            resumed += 1
        return resumed

    async def sync(self) -> int:
        """Firings whose outcome reconciliation has told: the conditional order says it too."""
        busy = self.settling.journal_ids()
        async with self.db.session() as session:
            rows = list((await session.exec(select(ConditionalOrderRow, OrderJournalRow).join(
                OrderJournalRow, col(OrderJournalRow.idempotency_key) == col(ConditionalOrderRow.fire_key)).where(
                col(ConditionalOrderRow.status) == "firing", col(OrderJournalRow.told_at).is_not(None)))).all())
        done = 0
        for row, entry in rows:
            if entry.id in busy:
                continue
            placed = entry.status in ACCEPTED
            async with self.db.write() as session:
                await session.exec(update(ConditionalOrderRow).where(
                    col(ConditionalOrderRow.id) == row.id, col(ConditionalOrderRow.status) == "firing")
                    .values(status="placed" if placed else "failed", order_no=entry.kis_order_no,
                            sold_quantity=entry.quantity if placed else 0,
                            result=entry.message or entry.status, updated_at=utcnow()))
            done += 1
        return done

    async def expire_due(self) -> int:
        now = utcnow()
        async with self.db.session() as session:
            due = list((await session.exec(select(ConditionalOrderRow).where(
                col(ConditionalOrderRow.status) == "armed", col(ConditionalOrderRow.expires_at) <= now))).all())
        expired = 0
        for row in due:
            async with self.db.write() as session:
                result = await session.exec(update(ConditionalOrderRow).where(
                    col(ConditionalOrderRow.id) == row.id, col(ConditionalOrderRow.status) == "armed")
                    .values(status="expired", result="expired", updated_at=now))
                if result.rowcount == 1:
                    await outbox.enqueue(session, [Push(f"cond:{row.id}:expired", row.owner_id, row.chat_id,
                                                        self._notice(row, "expired", 0, ""))])
            if result.rowcount == 1 and row.id is not None:
                expired += 1
                if self.engine is not None:
                    await self.engine.disarm(row.id)
        if expired:
            self.wake_sender()
        return expired

    async def adopt_armed(self, recent: Callable[[str, float], list[int]]) -> int:
        """The feed's owner, on each replica pass: orders armed through another replica since the last look
        into the trigger engine, with the gap check from the moment they were stored (and ``recent(code,
        since)``, the prices of the trades this replica saw since then, judged now); orders another replica
        cancelled (or that expired or fired) out of it. Returns the orders adopted."""
        engine = self.engine
        if engine is None:
            return 0
        since = (self.adopted_until or utcnow()) - dt.timedelta(seconds=ADOPT_MARGIN)
        now = utcnow()
        async with self.db.session() as session:
            rows = list((await session.exec(select(ConditionalOrderRow).where(
                col(ConditionalOrderRow.updated_at) >= since,
                col(ConditionalOrderRow.status) != "pending",
                # (not those still armed since earlier: a trailing stop's level stored raised, every second of a rally)
                or_(col(ConditionalOrderRow.status) != "armed", col(ConditionalOrderRow.armed_at) >= since,
                    col(ConditionalOrderRow.armed_at).is_(None))))).all())
        self.adopted_until = now
        gone = [r.id for r in rows if r.status != "armed" and r.id is not None and engine.armed(r.id) is not None]
        if time.monotonic() - self._swept >= SWEEP_SECONDS:  # and, now and then, a full look (a late commit)
            self._swept = time.monotonic()
            known = engine.order_ids()
            async with self.db.session() as session:
                armed = {x for x in (await session.exec(select(ConditionalOrderRow.id).where(
                    col(ConditionalOrderRow.status) == "armed"))).all() if x is not None}
                # An order is stamped (armed_at, updated_at) before its transaction commits: one whose commit
                # came more than ADOPT_MARGIN later (a stalled replica, a database under load) is older than
                # every window above by the time it can be seen. Every armed order the engine lacks, then.
                seen = {r.id for r in rows}
                missing = sorted(x for x in armed if x not in seen and not engine.knows(x))
                for i in range(0, len(missing), 1000):
                    rows += (await session.exec(select(ConditionalOrderRow).where(
                        col(ConditionalOrderRow.id).in_(missing[i:i + 1000]),
                        col(ConditionalOrderRow.status) == "armed"))).all()
            gone += [order_id for order_id in known if order_id not in armed]
        for order_id in set(gone):
            await engine.disarm(order_id)
        # In their arming order (the sweep's rows were appended last): the earlier ones first
        new = sorted((r for r in rows if r.status == "armed" and r.id is not None and not engine.knows(r.id)),
                     key=lambda r: r.armed_at or r.updated_at)
        by_code: dict[str, list[ConditionalOrderRow]] = {}
        for r in new:
            by_code.setdefault(r.code, []).append(r)
        adopted = 0
        for code, orders in by_code.items():
            for r in orders:
                # From a moment before it was stored: the price check of the replica that armed it (a quote)
                # came a little earlier; a crossing after that check fires it as arming on the feed would. Each
                # from its own (judged from the earliest on its symbol, a stop armed later sold on a low made
                # before it existed).
                stored = (r.armed_at or r.updated_at).timestamp() - ARMING_MARGIN
                try:
                    adopted += len(await engine.adopt([_trigger(r)], stored, {code: recent(code, stored)}))
                except Exception as exc:  # noqa: BLE001 -- the session full (or the feed down): tried next pass
                    self.adopted_until = min(self.adopted_until or now, min(r.updated_at for r in orders))
                    log.warning("a conditional order armed on another replica cannot be watched yet",
                                extra={"code": code, "error": type(exc).__name__})
                    break
        if adopted or gone:
            log.info("conditional orders adopted from other replicas",
                     extra={"adopted": adopted, "dropped": len(set(gone))})
        return adopted

    async def store_trails(self, levels: dict[int, tuple[int, int]]) -> None:
        """Trailing stops' raised highs and levels (the engine's batches): one executemany, so that
        thousands of trailing stops moving with a rally hold the write lock for milliseconds. Stamped
        (``updated_at``): a restart judges the level from then (a low made before the raise, above the level
        in force then, must not sell at a restart whose gap began earlier: see TriggerEngine.assume_gap)."""
        if not levels:
            return
        table = ConditionalOrderRow.__table__  # type: ignore[attr-defined]
        statement = (update(table).where(table.c.id == bindparam("order_id"), table.c.status == "armed")
                     .values(high_water=bindparam("high"), stop_price=bindparam("level"), updated_at=utcnow()))
        async with self.db.write_connection() as conn:
            await conn.execute(statement, [{"order_id": order_id, "high": high, "level": level}
                                           for order_id, (high, level) in levels.items()])

    # -- helpers -----------------------------------------------------------------------------------------------
    def _engine_or_elsewhere(self) -> TriggerEngine | None:
        """The trigger engine; None when another replica runs it (the database carries the orders there).
        A single process without one (the feed not up): conditional orders are unavailable."""
        if self.engine is None and not self.replicated:
            raise UserError("alerts_unavailable")
        return self.engine

    async def _quote(self, account: UserAccount, code: str) -> int | None:
        """The last price from a REST quote, best effort (None when it cannot be had)."""
        try:
            if self.us is not None and is_us_key(code):
                return await self.us.price(account, code)
            return await self._krx_price(account, code)
        except Exception:  # the feed's owner judges the order from the moment it is stored
            log.warning("no quote for a conditional order armed without the feed", exc_info=True,
                        extra={"code": code})
            return None

    async def _krx_price(self, account: UserAccount, code: str) -> int:
        """A KRX symbol's last price, quoted under its instrument's code (an ETN's has a Q in front)."""
        symbol = self.market.symbols.by_code(code)
        quote = await account.broker.quote(code, kind=symbol.kind if symbol is not None else None)
        return whole_units(quote.price.amount)

    def _ref(self, user_id: int, account: UserAccount) -> str:
        """The account ``account`` as orders record it (:func:`~chatbot.service.cards.account_ref`)."""
        return account_ref(self.mode.setting, user_id, account.account)

    def _check_real_allowed(self) -> None:
        if self.mode is Mode.REAL and not self.allow_real_orders:
            raise UserError("real_disabled")

    async def _held(self, account: UserAccount, code: str) -> int:
        if self.us is not None and is_us_key(code):
            return await self.us.held(account, code)
        held = next((h for h in await account.broker.holdings() if h.symbol == code), None)
        return int(held.orderable_quantity) if held else 0

    async def _held_retried(self, account: UserAccount, code: str, attempts: int = 3) -> int:
        """At firing: a read, so a failure is asked again (twice, briefly) before the firing fails."""
        for attempt in range(attempts):
            try:
                return await self._held(account, code)
            except KisError as exc:
                if attempt + 1 >= attempts:
                    raise
                log.warning("holdings read failed at firing; asking again", extra={"error": type(exc).__name__})
                await asyncio.sleep(0.2 * 2 ** attempt)
        raise AssertionError("unreachable")

    async def _committed(self, user_id: int, code: str) -> int:
        async with self.db.session() as session:
            return await _committed_in(session, user_id, code)

    async def _check_room(self, engine: TriggerEngine | None, user_id: int, code: str) -> None:
        async with self.db.session() as session:
            count = (await session.exec(select(func.count()).select_from(ConditionalOrderRow).where(
                col(ConditionalOrderRow.owner_id) == user_id, col(ConditionalOrderRow.status).in_(ACTIVE)))).one()
        if count >= self.max_per_user:
            raise UserError("cond_limit", maximum=self.max_per_user)
        if engine is not None:
            if not engine.has_capacity_for(code):
                raise UserError("alert_capacity", maximum=engine.feed.max_subscriptions)
        elif self.feed_capacity is not None and not await self._room_elsewhere(code, capacity := self.feed_capacity()):
            raise UserError("alert_capacity", maximum=capacity)

    async def _room_elsewhere(self, code: str, capacity: int) -> bool:
        """Best effort without the feed: the symbols the feed's owner watches, as the database tells them
        (armed alerts and conditional orders), leave room for ``code``."""
        async with self.db.session() as session:
            codes = set((await session.exec(select(ConditionalOrderRow.code).distinct().where(
                col(ConditionalOrderRow.status) == "armed"))).all())
            codes |= set((await session.exec(select(AlertRow.code).distinct().where(
                col(AlertRow.status).in_(("armed", "cooling"))))).all())
        return code in codes or len(codes) < capacity

    def _view(self, row: ConditionalOrderRow, price: int | None = None, language: str = "ko") -> ConditionalView:
        assert row.id is not None
        engine = self.engine
        stop, high = row.stop_price, row.high_water
        if engine is not None and (state := engine.trail_state(row.id)) is not None:
            high, stop = state[0], state[1]
        if price is None and engine is not None:
            price = engine.last_price.get(row.code)
        distance = None
        if price:
            gaps = [Decimal(price - stop) for stop in (stop,) if stop is not None]
            gaps += [Decimal(row.take_price - price)] if row.take_price is not None else []
            if gaps:
                distance = (min(gaps) * 100 / price).quantize(Decimal("0.01"))
        if row.market == "US":  # price units as dollars, the ticker for the key
            return ConditionalView(row.id, row.kind, ticker_of(row.code), row.name, row.quantity, dollars(stop),
                                   dollars(row.take_price), dollars(row.limit_price),
                                   Decimal(row.trail_percent) if row.trail_percent else None, dollars(high),
                                   row.status, dollars(price), distance, row.expires_at, row.order_no, row.result,
                                   row.currency)
        name = self.names.name(row.code, row.name, language)
        return ConditionalView(row.id, row.kind, row.code, name, row.quantity, _dec(stop), _dec(row.take_price),
                               _dec(row.limit_price), Decimal(row.trail_percent) if row.trail_percent else None,
                               _dec(high), row.status, _dec(price), distance, row.expires_at, row.order_no,
                               row.result, row.currency)

    def _notice(self, row: ConditionalOrderRow, stage: str, price: int, tick_time: str, *,
                order_no: str | None = None, detail: str = "", quantity: int | None = None) -> ConditionalNotice:
        assert row.id is not None
        leg = row.fired_leg or STOP
        trigger = (row.take_price if leg == TAKE else row.stop_price) or 0
        code = ticker_of(row.code) if row.market == "US" else row.code
        limit = self.sell_limit(row) if row.fired_price is not None else row.limit_price
        return ConditionalNotice(row.language, row.id, stage, row.kind, leg, code, row.name,
                                 row.quantity if quantity is None else quantity, trigger, price, tick_time,
                                 order_no, detail, row.quantity, limit, row.currency)


async def _committed_in(session: AsyncSession, user_id: int, code: str) -> int:
    """What the user's conditional orders in force on ``code`` would sell together."""
    total = (await session.exec(select(func.coalesce(func.sum(ConditionalOrderRow.quantity), 0)).where(
        col(ConditionalOrderRow.owner_id) == user_id, col(ConditionalOrderRow.code) == code,
        col(ConditionalOrderRow.status).in_(ACTIVE)))).one()
    return int(total)


def exchange_name(code: str) -> str | None:
    found = exchange_of_key(code)
    return found.name if found is not None else None


def check_stop_limit(stop: int | None, limit: int | None, currency: str) -> None:
    """A stop-loss (a sell, the only side conditional orders have) fires when the price falls to its
    trigger; a limit above the trigger would then usually not fill (the price is below it, and falling), so
    the stop-loss would silently do nothing. Refused before anything is asked or stored. A limit at the
    trigger is a plain stop-limit (it may miss a gap, as any stop-limit); a take-profit's limit above its
    trigger only waits for a higher price, as the trader asked. ``stop``/``limit``: price units."""
    if stop is not None and limit is not None and limit > stop:
        raise UserError("cond_stop_limit_above", limit=Money.of_price_units(limit, currency),
                        trigger=Money.of_price_units(stop, currency))


# The daily report's words for an armed order: it said "#1 stop 삼성전자 ×5 stop 3,400" in Korean too.
_REPORT_WORDS: dict[str, dict[str, str]] = {
    "ko": {"stop": "손절", "tp": "익절", "trail": "트레일링 스탑", "bracket": "브래킷", "take": "익절",
           "qty": "{:,}주"},
    "en": {"stop": "stop-loss", "tp": "take-profit", "trail": "trailing stop", "bracket": "bracket",
           "take": "take-profit", "qty": "×{:,}"},
}


def _order_lines(rows: Sequence[ConditionalOrderRow]) -> str:
    """Conditional orders as one line each, in their owner's language (the account-change message)."""
    lines = []
    for row in rows:
        words = _REPORT_WORDS["en" if row.language == "en" else "ko"]
        code = ticker_of(row.code) if row.market == "US" else row.code
        lines.append(f"#{row.id} {words[row.kind]} {row.name} ({code}) {words['qty'].format(row.quantity)}")
    return "\n".join(lines)


def _exceeds_holdings(held: int, committed: int, want: int, name: str) -> UserError:
    """Too many shares for a conditional sell; with none held at all, that is what it says (not "0 of 0
    are already in other conditional orders")."""
    if held <= 0:
        return UserError("cond_no_holdings", name=name, want=want)
    return UserError("cond_exceeds_holdings", have=held, committed=committed, want=want, name=name)


def _trigger(row: ConditionalOrderRow) -> ArmedTrigger:
    assert row.id is not None
    percent = Decimal(row.trail_percent) if row.trail_percent else None
    return ArmedTrigger(row.id, row.code, row.stop_price, row.take_price, percent, row.high_water,
                        row.armed_at.timestamp() if row.armed_at is not None else None)


def _dec(value: int | None) -> Decimal | None:
    return Decimal(value) if value is not None else None


# -- what a person types -----------------------------------------------------------------------------------
def _numberish(word: str) -> bool:
    return word.removesuffix("원").removesuffix("주").replace(",", "").isdigit()


def _quantity(word: str) -> int:
    return parse_quantity(word.removesuffix("주"))


def _price(word: str) -> int:
    return parse_limit_price(word)


def _parse(kind: str, args: Sequence[str], names_one: Callable[[str], bool] | None = None) -> _Request:
    """``/stop|/tp <symbol> <qty> <trigger> [<limit>]``, ``/trail <symbol> <qty> <N>%``,
    ``/bracket <symbol> <qty> <stop> <take>``; Korean units (``65,000원``, ``10주``) as typed.
    ``names_one`` (does this text name exactly one stock?) keeps a name's own number, as
    :func:`~chatbot.service.inputs.split_order_args` does: ``/stop KODEX 200 5 8000`` is 5 of KODEX 200
    at 8,000, not 200 of "KODEX" at 5 with a limit of 8,000."""
    words = [w for w in args if w]
    if any(len(w) > MAX_ARG_LENGTH for w in words):
        raise UserError("input_too_long")
    usage = f"usage_{kind}"
    if kind == "trail":
        if len(words) < 3:
            raise UserError(usage)
        match = _PERCENT.match(words[-1])
        if match is None or not _numberish(words[-2]):
            raise UserError(usage)
        percent = Decimal(match.group(1))
        if not 0 < percent <= MAX_TRAIL_PERCENT:
            raise UserError("bad_percent", maximum=int(MAX_TRAIL_PERCENT))
        symbol = _symbol_words(words[:-2], usage)
        return _Request(symbol, _quantity(words[-2]), trail=percent)
    numbers = {"stop": (2, 3), "tp": (2, 3), "bracket": (3,)}[kind]
    if kind in ("stop", "tp") and len(words) > 2 and words[-1].lower() in MARKET_WORDS:
        words = words[:-1]  # "… 65,000원 시장가": at market, said out loud
    tail = 0
    while tail < len(words) and _numberish(words[len(words) - 1 - tail]):
        tail += 1
    if tail == len(words):  # a code is number-shaped too: the first word is the symbol
        tail -= 1
    count = max((n for n in numbers if n <= tail), default=0)
    if not count or len(words) - count < 1:
        raise UserError(usage)
    if (count == 3 and kind in ("stop", "tp") and names_one is not None
            and not names_one(" ".join(words[:-3])) and names_one(" ".join(words[:-2]))):
        count = 2  # the name's number is the name's: no limit typed
    symbol = _symbol_words(words[:-count], usage)
    values = words[-count:]
    quantity = _quantity(values[0])
    if kind == "bracket":
        stop, take = _price(values[1]), _price(values[2])
        if stop >= take:
            raise UserError("cond_bracket_order", stop=Money.krw(stop), take=Money.krw(take))
        return _Request(symbol, quantity, stop=stop, take=take)
    trigger = _price(values[1])
    limit = _price(values[2]) if count == 3 else None
    if kind == "stop":
        return _Request(symbol, quantity, stop=trigger, limit=limit)
    return _Request(symbol, quantity, take=trigger, limit=limit)


def _plain_words(kind: str, request: _Request) -> tuple[str, ...]:
    """The words after the stock of the command ``request`` was read from, written plainly (``10주`` → ``10``,
    ``65,000원`` → ``65000``): typed after a code, they read as the same request."""
    if kind == "trail":
        return str(request.quantity), f"{request.trail}%"
    prices = (request.stop, request.take) if kind == "bracket" else \
        (request.stop if kind == "stop" else request.take, request.limit)
    return (str(request.quantity), *(str(p) for p in prices if p is not None))


def _symbol_words(words: Sequence[str], usage: str) -> str:
    if not words:
        raise UserError(usage)
    if len(words) > MAX_SYMBOL_WORDS:
        raise UserError("too_many_args")
    return " ".join(words)


# -- wiring (the runtime) -------------------------------------------------------------------------------------
def session_gate(mode: Mode, calendar: MarketCalendar) -> Callable[[str], bool]:
    """Which trades may fire: the regular session's (the simulator's market never closes)."""
    if mode is Mode.PAPER:
        return lambda _tick_time: True
    last: list[object] = ["", False]

    def gate(tick_time: str) -> bool:
        if last[0] != tick_time:  # one calendar look per second of trades
            last[0], last[1] = tick_time, regular_session(tick_time) and calendar.state().phase is Phase.REGULAR
        return bool(last[1])

    return gate


async def start_conditional(service: ConditionalOrders, feed: AlertFeed, mode: Mode,
                            calendar: MarketCalendar, since: float | None = None) -> TriggerEngine:
    """The trigger engine on the alert engine's feed (started), its armed orders loaded, then the
    service's recovery of interrupted firings and its upkeep. ``since``: the feed taken over from a
    replica last seen alive then (a gap from that moment)."""
    us = service.us
    engine = TriggerEngine(feed, service.fire, on_trail=service.store_trails, in_session=session_gate(mode, calendar),
                           us_in_session=us.in_session if us is not None else lambda: False)
    service.attach(engine)
    service.adopted_until = utcnow()  # what is armed from now on elsewhere: adopted (adopt_armed)
    await engine.start(await service.armed_triggers())
    if since is not None:
        engine.assume_gap(since)
    await service.start()
    return engine


async def stop_conditional(service: ConditionalOrders) -> None:
    engine = service.engine
    if engine is not None:
        await engine.stop()
    await service.stop()
    service.engine = None  # the feed gone from this replica: another one's engine watches the orders now
