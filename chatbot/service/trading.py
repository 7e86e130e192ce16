"""What a user can do: quote, prepare an order (a confirmation card), confirm or dismiss it, list and
cancel open orders, read the balance. Every check happens here, before anything reaches KIS."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from chatbot import __version__
from chatbot.charts import render_candles
from chatbot.kis import protocol as p
from chatbot.kis.errors import (
    KisError,
    KisNotFound,
    KisOrderRejected,
    KisOrderUncertain,
    KisTokenIssueThrottled,
)
from chatbot.kis.models import OrderSide
from chatbot.market_hours import MarketCalendar, Phase
from chatbot.service import fees
from chatbot.service.accounts import AccountProvider, UserAccount
from chatbot.service.confirmations import CardStatus, ClaimRefused, PendingOrders
from chatbot.service.errors import UserError, kis_unavailable
from chatbot.service.journal import DatabaseUnavailable, OrderJournal, UnwrittenOutcomes, retry_write
from chatbot.service.views import (
    BalanceView,
    ChartView,
    ConfirmResult,
    Mode,
    OpenOrdersView,
    OrderCard,
    Outcome,
    QuoteView,
    StatusView,
)
from chatbot.storage.tables import PendingOrderRow
from chatbot.symbols import Symbol, SymbolDirectory

log = logging.getLogger(__name__)

MAX_ARG_LENGTH = 40
MAX_QUANTITY = 1_000_000
MAX_PRICE = 100_000_000  # won: above any KRX share price, and inside every integer column
MARKET_WORDS = frozenset({"market", "mkt", "시장가", "시장"})
_INT = re.compile(r"^[0-9]{1,3}(,[0-9]{3})*$|^[0-9]+$")
_REFUSALS = {
    ClaimRefused.UNKNOWN: Outcome.UNKNOWN,
    ClaimRefused.NOT_OWNER: Outcome.NOT_OWNER,
    ClaimRefused.EXPIRED: Outcome.EXPIRED,
    ClaimRefused.ALREADY_HANDLED: Outcome.ALREADY_HANDLED,
}


@dataclass(frozen=True, slots=True)
class ClaimedCard:
    """A card this press won: it is ``submitting`` in the database and must be submitted."""

    row: PendingOrderRow
    card: OrderCard
    journal_id: int | None = None  # None: not an order (a paper-account reset)


@dataclass(slots=True)
class _Sending:
    """Whether the request may have left (the journal took the snapshot and the time of sending)."""

    started: bool = False
    callback: Callable[[set[str]], Awaitable[None]] | None = None


def parse_quantity(text: str) -> int:
    text = text.strip()
    if len(text) > MAX_ARG_LENGTH:
        raise UserError("input_too_long")
    if not _INT.match(text):
        raise UserError("bad_quantity", value=text)
    qty = int(text.replace(",", ""))
    if qty <= 0:
        raise UserError("bad_quantity", value=text)
    if qty > MAX_QUANTITY:
        raise UserError("quantity_too_large", maximum=MAX_QUANTITY)
    return qty


def parse_price(text: str | None) -> int | None:
    """A limit price in won, or None for a market order (no price, ``market`` or ``시장가``)."""
    if text is None or text.strip().lower() in MARKET_WORDS:
        return None
    text = text.strip().removesuffix("원")
    if len(text) > MAX_ARG_LENGTH:
        raise UserError("input_too_long")
    if not _INT.match(text) or int(text.replace(",", "")) <= 0:
        raise UserError("bad_price", value=text)
    if int(text.replace(",", "")) > MAX_PRICE:
        raise UserError("price_too_large", maximum=MAX_PRICE)
    return int(text.replace(",", ""))


class TradingService:
    def __init__(self, accounts: AccountProvider, pending: PendingOrders, journal: OrderJournal,
                 symbols: SymbolDirectory, mode: Mode, *, allow_real_orders: bool = False,
                 calendar: MarketCalendar | None = None, process_id: str = "") -> None:
        self.accounts = accounts
        self.pending = pending
        self.journal = journal
        self.symbols = symbols
        self.mode = mode
        self.allow_real_orders = allow_real_orders
        self.calendar = calendar or MarketCalendar()
        self.feed_connected: Callable[[], bool] | None = None  # set when a market-data feed exists
        self.outcomes: collections.Counter[str] = collections.Counter()  # settled cards by outcome (metrics)
        self.on_reset: Callable[[int], Awaitable[None]] | None = None  # simulator: renew a paper account
        self.before_order: Callable[[int, int], Awaitable[None]] | None = None  # (user, chat): watch fills
        self.on_uncertain: Callable[[], None] | None = None  # an outcome left unknown: reconciliation looks
        self.process_id = process_id or f"process:{uuid.uuid4().hex[:12]}"  # the runtime lease's owner
        self.db_retry_seconds = 5.0  # how long a database write on the order path is retried in line
        self.in_flight: set[int] = set()
        self.unwritten = UnwrittenOutcomes()

    # -- symbols and quotes ------------------------------------------------------------------------
    def resolve(self, text: str) -> Symbol:
        if len(text) > MAX_ARG_LENGTH:
            raise UserError("input_too_long")
        found = self.symbols.lookup(text)
        if found.symbol is not None:
            return found.symbol
        if found.candidates:
            raise UserError("ambiguous_symbol", query=text, candidates=found.candidates)
        raise UserError("unknown_symbol", query=text)

    def _check_maintenance(self) -> None:
        state = self.calendar.state()
        if state.phase is Phase.MAINTENANCE:
            raise UserError("kis_maintenance", until=state.next_open)

    async def quote(self, user_id: int, symbol_text: str) -> QuoteView:
        self._check_maintenance()
        symbol = self.resolve(symbol_text)
        account = await self.accounts.for_user(user_id)
        with kis_errors():
            return QuoteView(symbol, await account.client.quote(p.quotation_code(symbol.code, symbol.is_etn)))

    # -- orders -----------------------------------------------------------------------------------------
    async def prepare_order(self, user_id: int, chat_id: int, side: OrderSide, symbol_text: str, qty_text: str,
                            price_text: str | None) -> OrderCard:
        """Validate everything and store a confirmation card; nothing is sent to KIS's order endpoint."""
        self._check_real_allowed()
        self._check_maintenance()
        quantity = parse_quantity(qty_text)
        price = parse_price(price_text)
        symbol = self.resolve(symbol_text)
        account = await self.accounts.for_user(user_id)
        with kis_errors():
            quote = await account.client.quote(p.quotation_code(symbol.code, symbol.is_etn))
            if price is not None:  # the day's limits first: no tick advice for a price that cannot trade
                if not quote.lower_limit <= price <= quote.upper_limit:
                    raise UserError("out_of_limits", price=price, lower=quote.lower_limit, upper=quote.upper_limit)
                tick = quote.tick_for(price)  # KIS's aspr_unit when it gives one (ETFs/ETNs), else the table
                if price % tick:
                    below = price - price % tick
                    raise UserError("off_tick", price=price, tick=tick, below=below, above=below + tick)
            if side is OrderSide.SELL:
                held = next((h for h in (await account.client.balance()).holdings if h.code == symbol.code), None)
                have = held.orderable_quantity if held else 0
                if quantity > have:
                    raise UserError("insufficient_holdings", have=have, want=quantity, name=symbol.name_ko)
            else:
                power = await account.client.buying_power(symbol.code, price)
                if quantity > power.max_quantity:
                    raise UserError("insufficient_cash", max_quantity=power.max_quantity, cash=power.orderable_cash)
        row = await self.pending.create(owner_id=user_id, chat_id=chat_id, environment=self.mode.value.lower(),
                                        action="order", side=side.value, code=symbol.code, name=symbol.name_ko,
                                        quantity=quantity, price=price, quoted_price=quote.price)
        return self._card(row, symbol)

    async def prepare_cancel(self, user_id: int, chat_id: int, order_no_text: str) -> OrderCard:
        self._check_real_allowed()
        wanted = order_no_text.strip().lstrip("0")
        if not (wanted.isascii() and wanted.isdigit()) or len(order_no_text.strip()) > 16:
            raise UserError("bad_order_no", value=order_no_text[:MAX_ARG_LENGTH])
        account = await self.accounts.for_user(user_id)
        with kis_errors():
            orders = await account.client.open_orders()
        order = next((o for o in orders if o.order_no.lstrip("0") == wanted), None)
        if order is None:
            raise UserError("no_such_open_order", order_no=order_no_text.strip())
        symbol = self.symbols.by_code(order.code) or Symbol(order.code, order.name, order.name, "")
        row = await self.pending.create(owner_id=user_id, chat_id=chat_id, environment=self.mode.value.lower(),
                                        action="cancel", side=order.side.value, code=order.code, name=symbol.name_ko,
                                        quantity=order.cancellable_quantity, price=order.price or None,
                                        quoted_price=order.price, order_no=order.order_no, branch=order.branch)
        return self._card(row, symbol)

    async def prepare_reset(self, user_id: int, chat_id: int) -> OrderCard:
        """A confirmation card for restarting the user's paper account (simulator mode only)."""
        if self.mode is not Mode.PAPER or self.on_reset is None:
            raise UserError("reset_paper_only")
        row = await self.pending.create(owner_id=user_id, chat_id=chat_id, environment=self.mode.value.lower(),
                                        action="reset", side=OrderSide.BUY.value, code="", name="", quantity=0,
                                        price=None, quoted_price=0)
        return self._card(row, Symbol("", "", "", ""))

    async def attach_card(self, card: OrderCard, owner_id: int, message_id: int) -> None:
        """Record which message shows the card: only a press on that message counts."""
        await self.pending.attach_message(card.token, owner_id, message_id)

    async def confirm(self, token: str, user_id: int, message_id: int) -> ConfirmResult:
        """Claim the card and submit it (the two steps of :meth:`claim` and :meth:`submit`)."""
        claimed = await self.claim(token, user_id, message_id)
        return claimed if isinstance(claimed, ConfirmResult) else await self.submit(claimed)

    async def claim(self, token: str, user_id: int, message_id: int) -> "ClaimedCard | ConfirmResult":
        """The atomic single use: only the owner's first press on the card's own message, before expiry.
        An order's journal row is opened in the same transaction: no card is ever being submitted
        without one."""
        opened: list[int] = []

        async def open_journal(session: AsyncSession, row: PendingOrderRow) -> None:
            if row.action in ("order", "cancel"):
                opened.append(await self.journal.add(session, row, self.process_id))

        row, refused = await self.pending.claim(token, user_id, message_id, CardStatus.SUBMITTING, open_journal)
        if refused is not None or row is None:
            card = self._card(row, None) if row is not None and refused is not ClaimRefused.NOT_OWNER else None
            return ConfirmResult(_REFUSALS[refused or ClaimRefused.UNKNOWN], card)
        journal_id = opened[0] if opened else None
        if journal_id is not None:  # ours to settle from now on: reconciliation leaves it alone (see submit)
            self.in_flight.add(journal_id)
        return ClaimedCard(row, self._card(row, None), journal_id)

    async def submit(self, claimed: "ClaimedCard") -> ConfirmResult:
        """Send a claimed card to KIS (exactly once) and settle it."""
        row, card = claimed.row, claimed.card
        user_id, token = row.owner_id, row.id
        if claimed.journal_id is None:  # a paper-account reset: nothing goes to KIS's order endpoint
            if self.mode is Mode.REAL and not self.allow_real_orders:
                await self.pending.finish(token, CardStatus.FAILED, "real orders disabled")
                return ConfirmResult(Outcome.REAL_DISABLED, card)
            assert self.on_reset is not None
            await self.on_reset(user_id)
            await self.pending.finish(token, CardStatus.PLACED, "paper account renewed")
            return ConfirmResult(Outcome.RESET_DONE, card)
        journal_id = claimed.journal_id
        self.in_flight.add(journal_id)  # since the claim; the front end must call submit after claim
        try:
            if self.mode is Mode.REAL and not self.allow_real_orders:
                return await self._settle(row, journal_id, Outcome.REAL_DISABLED, card,
                                          message="real orders disabled")
            try:
                account = await self.accounts.for_user(user_id)
            except Exception as exc:  # nothing was sent
                log.warning("no KIS account for a claimed card", extra={"card": token, "error": type(exc).__name__})
                return await self._settle(row, journal_id, Outcome.FAILED, card, message=type(exc).__name__)
            if row.action == "cancel":
                return await self._submit_cancel(row, card, account, journal_id)
            return await self._submit_order(row, card, account, journal_id)
        finally:
            self.in_flight.discard(journal_id)

    async def dismiss(self, token: str, user_id: int, message_id: int) -> ConfirmResult:
        row, refused = await self.pending.claim(token, user_id, message_id, CardStatus.DISMISSED)
        if refused is not None or row is None:
            card = self._card(row, None) if row is not None and refused is not ClaimRefused.NOT_OWNER else None
            return ConfirmResult(_REFUSALS[refused or ClaimRefused.UNKNOWN], card)
        return ConfirmResult(Outcome.DISMISSED, self._card(row, None))

    def _before_sending(self, journal_id: int, account: UserAccount) -> "_Sending":
        """What the submitter calls with its snapshot just before sending: the journal row gets the
        account, the snapshot and the time, committed (retried a while); if the database will not
        take it, nothing is sent."""
        sending = _Sending()

        async def on_sending(known: set[str]) -> None:
            await retry_write(lambda: self.journal.mark_sending(journal_id, str(account.account), known),
                              self.db_retry_seconds, "journal before sending")
            sending.started = True

        sending.callback = on_sending
        return sending

    async def _submit_order(self, row: PendingOrderRow, card: OrderCard, account: UserAccount,
                            journal_id: int) -> ConfirmResult:
        if self.before_order is not None:  # a market order fills at once: listen for its notice first
            try:
                await self.before_order(row.owner_id, row.chat_id)
            except Exception:  # fill pushes are a convenience; the order goes ahead
                log.exception("could not start fill notifications")
        sending = self._before_sending(journal_id, account)
        try:
            placed = await account.submitter.place(card.side, row.code, row.quantity, row.price,
                                                   on_sending=sending.callback)
        except DatabaseUnavailable:
            return await self._settle(row, journal_id, Outcome.FAILED, card, message="database unavailable")
        except KisOrderRejected as exc:
            return await self._settle(row, journal_id, Outcome.REJECTED, card, msg_cd=exc.msg_cd, message=exc.msg1)
        except KisOrderUncertain as exc:
            return await self._settle(row, journal_id, Outcome.UNCERTAIN, card, msg_cd=exc.msg_cd, message=str(exc))
        except KisError as exc:  # proven not placed: gateway refusal, unreachable, token wait, no snapshot
            return await self._settle(row, journal_id, Outcome.FAILED, card, msg_cd=exc.msg_cd,
                                      message=exc.msg1 or type(exc).__name__)
        detail = "found by lookup after an unknown outcome" if placed.reconciled else None
        return await self._settle(row, journal_id, Outcome.PLACED, card, order_no=placed.ack.order_no, message=detail)

    async def _submit_cancel(self, row: PendingOrderRow, card: OrderCard, account: UserAccount,
                             journal_id: int) -> ConfirmResult:
        assert row.order_no is not None
        sending = self._before_sending(journal_id, account)
        try:
            ack = await account.submitter.cancel(row.order_no, row.branch or "", OrderSide(row.side), row.code,
                                                 on_sending=sending.callback)
        except DatabaseUnavailable:
            return await self._settle(row, journal_id, Outcome.FAILED, card, message="database unavailable")
        except KisOrderRejected as exc:
            return await self._settle(row, journal_id, Outcome.REJECTED, card, msg_cd=exc.msg_cd, message=exc.msg1)
        except KisError as exc:
            if sending.started and exc.maybe_sent:  # did the cancel land? the open-order listing says
                with contextlib.suppress(KisError):
                    still_open = {o.order_no for o in await account.client.open_orders()}
                    if row.order_no not in still_open:
                        return await self._settle(row, journal_id, Outcome.CANCELLED_ORDER, card,
                                                  message="confirmed by lookup")
                return await self._settle(row, journal_id, Outcome.UNCERTAIN, card, msg_cd=exc.msg_cd,
                                          message=str(exc))
            return await self._settle(row, journal_id, Outcome.FAILED, card, msg_cd=exc.msg_cd,
                                      message=exc.msg1 or type(exc).__name__)
        return await self._settle(row, journal_id, Outcome.CANCELLED_ORDER, card, order_no=ack.order_no)

    async def _settle(self, row: PendingOrderRow, journal_id: int, outcome: Outcome, card: OrderCard, *,
                      order_no: str | None = None, msg_cd: str = "", message: str | None = None) -> ConfirmResult:
        """Write the outcome (journal and card, one transaction), retried with back-off; when the
        database still refuses, the user is told all the same (the result is returned) and the write
        waits in memory until the database takes it (:class:`UnwrittenOutcomes`). An unknown outcome
        is not told as final: reconciliation keeps looking for the order."""
        status = {Outcome.PLACED: CardStatus.PLACED, Outcome.CANCELLED_ORDER: CardStatus.PLACED,
                  Outcome.REJECTED: CardStatus.REJECTED, Outcome.UNCERTAIN: CardStatus.UNCERTAIN}.get(
            outcome, CardStatus.FAILED)
        journal_status = {Outcome.PLACED: "accepted", Outcome.CANCELLED_ORDER: "accepted"}.get(outcome, status.value)
        final = outcome is not Outcome.UNCERTAIN

        async def write() -> None:
            await self.journal.settle(
                journal_id, journal_status, kis_order_no=order_no, msg_cd=msg_cd or None, message=message,
                told=final, also=lambda session: self.pending.finish_in(session, row.id, status, order_no or message))

        try:
            await retry_write(write, self.db_retry_seconds, "order outcome")
        except DatabaseUnavailable:
            log.error("order outcome told but not written; it is written when the database is back",
                      extra={"card": row.id, "outcome": outcome.value, "order_no": order_no})
            self.unwritten.add(journal_id, order_no, write)
        self.outcomes[outcome.value] += 1
        log.info("order card settled", extra={"card": row.id, "outcome": outcome.value, "order_no": order_no,
                                              "msg_cd": msg_cd})
        if not final and self.on_uncertain is not None:
            self.on_uncertain()
        return ConfirmResult(outcome, card, order_no=order_no, msg_cd=msg_cd, message=message or "")

    def busy(self) -> set[int]:
        """Journal rows this process is settling (in flight, or told but not yet written)."""
        return self.in_flight | self.unwritten.journal_ids

    async def recover(self) -> int:
        """At start-up: a card left in ``submitting`` without a journal row was never sent (every
        version opened the journal before sending); it gets one, never sent, which reconciliation
        settles as not placed and tells. A paper reset left half-way is marked uncertain."""
        stale = await self.pending.stale_submitting()
        count = 0
        for row in stale:
            if row.action == "reset":
                await self.pending.finish(row.id, CardStatus.UNCERTAIN, "bot restarted while submitting")
                count += 1
            elif await self.journal.by_key(row.id) is None:
                async with self.journal.db.write() as session:
                    await self.journal.add(session, row, "")
                count += 1
        if count:
            log.warning("cards left in submission by a restart handed to reconciliation", extra={"count": count})
        return count

    async def aclose(self) -> None:
        await self.unwritten.stop()

    # -- account ------------------------------------------------------------------------------------------
    async def open_orders(self, user_id: int) -> OpenOrdersView:
        self._check_maintenance()
        account = await self.accounts.for_user(user_id)
        with kis_errors():
            return OpenOrdersView(self.mode, tuple(await account.client.open_orders()))

    async def balance(self, user_id: int) -> BalanceView:
        self._check_maintenance()
        account = await self.accounts.for_user(user_id)
        with kis_errors():
            return BalanceView(self.mode, await account.client.balance(), str(account.account))

    async def chart(self, user_id: int, symbol_text: str, period_text: str | None) -> ChartView:
        """Recent daily/weekly/monthly candles as a PNG (rendered off the event loop)."""
        self._check_maintenance()
        period = {"d": "D", "day": "D", "일": "D", "w": "W", "week": "W", "주": "W", "m": "M", "month": "M",
                  "월": "M"}.get((period_text or "d").strip().lower())
        if period is None:
            raise UserError("usage_chart")
        symbol = self.resolve(symbol_text)
        account = await self.accounts.for_user(user_id)
        with kis_errors():
            bars = await account.client.bars(p.quotation_code(symbol.code, symbol.is_etn), period)
        if not bars:
            raise UserError("unknown_symbol", query=symbol_text)
        title = f"{symbol.code} {symbol.name_en} · {dict(D='daily', W='weekly', M='monthly')[period]}"
        png = await asyncio.to_thread(render_candles, bars, title)
        return ChartView(symbol, period, png, len(bars), bars[0].close)

    def status(self) -> StatusView:
        state = self.calendar.state()
        connected = self.feed_connected() if self.feed_connected is not None else None
        return StatusView(self.mode, state.phase.value, state.next_open, state.holiday_name, connected, __version__)

    # -- helpers --------------------------------------------------------------------------------------------
    def _check_real_allowed(self) -> None:
        if self.mode is Mode.REAL and not self.allow_real_orders:
            raise UserError("real_disabled")

    def _card(self, row: PendingOrderRow, symbol: Symbol | None) -> OrderCard:
        symbol = symbol or self.symbols.by_code(row.code) or Symbol(row.code, row.name, row.name, "")
        side = OrderSide(row.side)
        unit = row.price if row.price is not None else row.quoted_price
        amount = unit * row.quantity
        commission, tax = fees.estimate(side, amount)
        state = self.calendar.state()
        session = Phase.REGULAR if self.mode is Mode.PAPER else state.phase  # the simulator never closes
        return OrderCard(token=row.id, mode=self.mode, action=row.action, side=side, symbol=symbol,
                         quantity=row.quantity, price=row.price, quoted_price=row.quoted_price, amount=amount,
                         commission=commission, tax=tax, expires_at=row.expires_at, order_no=row.order_no,
                         ttl_seconds=int(self.pending.ttl.total_seconds()), session=session.value,
                         next_open=state.next_open)


@contextlib.contextmanager
def kis_errors() -> Iterator[None]:
    """KIS failures on queries, as messages a user can act on."""
    try:
        yield
    except KisNotFound:
        raise UserError("unknown_symbol", query="") from None
    except KisTokenIssueThrottled:
        raise UserError("kis_token_wait") from None
    except KisError as exc:
        log.warning("kis query failed", extra={"error": type(exc).__name__, "msg_cd": exc.msg_cd})
        raise kis_unavailable(exc) from None
