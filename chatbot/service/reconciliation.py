"""Every order attempt ends in a state its user sees: orders whose outcome is unknown are looked up
in KIS's list of the day's orders until it is known, then the user's card is edited to say it.

An order's outcome is unknown when the process that sent it died before writing it (kill -9, power
cut: its journal row stays ``submitting``), or when KIS did not answer and the submitter's own looks
did not find it (``uncertain``). At start-up (in the background, once the runtime is up) and then
every ``interval_seconds`` while any such row is left, each one is matched against the day's list of
orders for its code and side (:func:`chatbot.kis.orders.find_candidates`): a matching order that was
not in the snapshot taken before sending, and that no other journal row has, is this one.

* Found: placed, with its number. The journal and card say so, the user's card is edited (or a new
  message sent when it cannot be), and what has already filled is journalled and pushed like any
  fill; the user's fill notices are watched from then on.
* Not placed is certain when the request never left (no time of sending was committed: the process
  died before sending), or when the order is absent from the day's list on ``absent_looks`` looks
  (default 3) spaced at least ``interval_seconds`` apart, all made at least ``settle_seconds``
  (default 60 s: longer than any order request can be in flight, and KIS lists an order within
  seconds of accepting it) after the request left — or on one such look once that market day is
  over.
* Until then a card that still said "Sending…" says "checking with KIS".

Nothing is ever sent again. The user is told exactly once: the outcome, the card's status and the
push (an outbox row with a key of its own) are written in one transaction, and ``told_at`` marks the
journal row done. Rows another live bot process is submitting are left to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal

from sqlmodel import col, select

from chatbot import tasks
from chatbot.alerts import outbox
from chatbot.alerts.notices import CardSnapshot, OrderFilled, OrderOutcome
from chatbot.alerts.outbox import Push
from chatbot.kis.errors import KisError
from chatbot.kis.models import Execution, OrderSide
from chatbot.kis.orders import OrderIntent, find_candidates
from chatbot.kis.overseas import KisOverseasClient
from chatbot.kis.overseas_orders import us_order_listing
from chatbot.kis.protocol import KST
from chatbot.markets.money import Currency, Money, price_units
from chatbot.markets.us_hours import NEW_YORK
from chatbot.service.accounts import AccountProvider
from chatbot.service.cards import CardStatus, CardStore
from chatbot.service.fill_prices import ListedPrice, counted_fills, fill_detail, listed_fill_price
from chatbot.service.journal import (
    DATABASE_ERRORS,
    LISTED,
    UNRESOLVED,
    OrderJournal,
    Settling,
    claimed_order_nos,
)
from chatbot.service.users import Users
from chatbot.service.views import Mode, Outcome
from chatbot.storage.db import Database
from chatbot.storage.leases import RUNTIME, is_live
from chatbot.storage.tables import LeaseRow, OrderEventRow, OrderJournalRow, PendingOrderRow
from chatbot.storage.types import utcnow
from chatbot.symbols import SymbolDirectory

log = logging.getLogger(__name__)
LISTING_SKEW = dt.timedelta(minutes=2)  # a row without a snapshot: KIS's clock may run this much behind


class OrderReconciler:
    def __init__(self, db: Database, accounts: AccountProvider, journal: OrderJournal, cards: CardStore,
                 users: Users, symbols: SymbolDirectory, mode: Mode, settling: Settling, *, process_id: str,
                 settle_seconds: float = 60.0, interval_seconds: float = 20.0, absent_looks: int = 3,
                 idle_seconds: float = 300.0, watch_fills: Callable[[int, int], Awaitable[None]] | None = None,
                 wake_sender: Callable[[], None] = lambda: None,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.db = db
        self.accounts = accounts
        self.journal = journal
        self.cards = cards
        self.users = users
        self.symbols = symbols
        self.mode = mode
        self.settling = settling  # rows this process is settling itself: left alone
        self.process_id = process_id
        self.settle = dt.timedelta(seconds=settle_seconds)
        self.interval = interval_seconds
        self.absent_looks = max(1, absent_looks)
        self.idle = idle_seconds
        self.watch_fills = watch_fills
        self.wake_sender = wake_sender
        self.clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.passes = 0
        self.settled: dict[str, int] = {}  # outcomes told, by outcome (metrics, tests)
        self.first_pass_done = asyncio.Event()

    # -- the background loop ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="order-reconciliation")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        await tasks.cancel(task)

    async def _run(self) -> None:
        """Supervised: a failed pass is logged and the next one comes after the interval."""
        while True:
            try:
                remaining = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("order reconciliation pass failed; trying again")
                remaining = 1
            self.passes += 1
            self.first_pass_done.set()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):  # not wait_for: on 3.11 it can swallow the stop's cancel
                async with asyncio.timeout(self.interval if remaining else self.idle):
                    await self._wake.wait()

    # -- one pass --------------------------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Look at every unresolved row once; returns how many remain unresolved."""
        rows = await self.journal.unresolved()
        if not rows:
            return 0
        busy = self.settling.journal_ids()
        live = await self._live_owners()
        remaining = 0
        for row in rows:
            assert row.id is not None
            if row.id in busy or (row.submitted_by and row.submitted_by != self.process_id
                                  and row.submitted_by in live):
                remaining += 1  # being settled right now, here or by another running bot
                continue
            try:
                settled = await self._reconcile(row)
            except DATABASE_ERRORS as exc:
                log.warning("order reconciliation could not write; next pass", extra={
                    "journal_id": row.id, "error": type(exc).__name__})
                settled = False
            except Exception:
                log.exception("order reconciliation failed for a row", extra={"journal_id": row.id})
                settled = False
            remaining += not settled
        return remaining

    async def _live_owners(self) -> set[str]:
        async with self.db.session() as session:
            leases = (await session.exec(select(LeaseRow).where(col(LeaseRow.kind) == RUNTIME))).all()
        return {lease.owner for lease in leases if is_live(lease)}

    async def _reconcile(self, row: OrderJournalRow) -> bool:
        now = self.clock()
        card = await self.cards.get(row.idempotency_key)
        if row.sent_at is None:  # the process died before the request left
            return await self._tell(row, card, Outcome.NOT_PLACED, "not_placed", message="never sent")
        if row.checked_at is not None and (now - row.checked_at).total_seconds() < self.interval * 0.9:
            return False  # looks are spaced: the last one was just now
        try:
            account = await self.accounts.for_user(row.owner_id)
        except Exception as exc:  # noqa: BLE001 -- the user logged out since: orders cannot be listed any more
            return await self._tell(row, card, Outcome.UNVERIFIABLE, "uncertain",
                                    message=f"no KIS account for this user any more ({type(exc).__name__})")
        if row.account and str(account.account) != row.account:
            return await self._tell(row, card, Outcome.UNVERIFIABLE, "uncertain",
                                    message=f"sent from account {row.account}, now registered {account.account}")
        if row.action == "reserve" or row.order_type == "RESV":  # a US reservation (or its cancel) is no order
            # until the open; paper cannot list them
            return await self._tell(row, card, Outcome.UNVERIFIABLE, "uncertain",
                                    message="a US reservation order: check KIS's reservation list (예약주문 조회)")
        cancel, revise = row.action == "cancel", row.action == "revise"
        intent = OrderIntent(OrderSide(row.side), row.code, row.quantity,
                             None if row.price is None else price_units(row.price, row.currency),  # won; $1/10,000
                             row.original_order_no if cancel or revise else None, revise=revise)
        day = row.sent_at.astimezone(KST).date()
        listed_from = ""
        if row.known_orders is None:  # written before snapshots were kept: only what was listed after it left
            start = (row.sent_at - LISTING_SKEW).astimezone(KST)
            listed_from = start.strftime("%H%M%S") if start.date() == day else ""
        if not cancel and self.watch_fills is not None and card is not None:
            try:  # listening before looking: a fill after the look is pushed by the watcher
                await self.watch_fills(row.owner_id, card.chat_id)
            except Exception:
                log.warning("could not start fill notifications", exc_info=True)
        us = row.market == "US"  # the day's US orders (KIS_OVERSEAS.md §6.3), prices in ten-thousandths of a dollar
        listing = us_order_listing(KisOverseasClient(account.client)) if us else account.client
        try:
            found = await find_candidates(listing, day, intent, set(row.known_orders or ()),
                                          listed_from=listed_from)
        except KisError as exc:
            log.warning("order reconciliation lookup failed; next pass", extra={
                "journal_id": row.id, "error": type(exc).__name__, "msg_cd": exc.msg_cd})
            return False
        if found:
            async with self.db.session() as session:
                taken = await claimed_order_nos(session, row.account or str(account.account),
                                                {e.order_no: _listed_day(e.date) for e in found},
                                                # a US trading day starts on the New York day before (KIS's
                                                # daytime session): which date KIS files it under is not known
                                                NEW_YORK if us else KST, slack_days=1 if us else 0)
            found = [e for e in found if e.order_no not in taken]
        if found:
            execution = found[0]
            log.info("order found by reconciliation", extra={"journal_id": row.id, "order_no": execution.order_no})
            found_outcome = (Outcome.CANCELLED_ORDER if cancel else Outcome.REVISED_ORDER if revise
                             else Outcome.PLACED)
            return await self._tell(row, card, found_outcome, "accepted",
                                    execution=execution, message="found in KIS's list of the day's orders")
        after_settling = now - row.sent_at >= self.settle
        looks = row.absent_looks + after_settling
        day_over = now.astimezone(KST).date() > day + dt.timedelta(days=1 if us else 0)  # US: ends 07:00 KST next day
        if after_settling and (looks >= self.absent_looks or day_over):
            return await self._tell(row, card, Outcome.NOT_PLACED, "not_placed", looks=looks,
                                    message=f"absent from the day's orders on {looks} looks")
        await self._checked(row, card, looks)
        return False

    # -- writing what was learned ------------------------------------------------------------------------------
    async def _checked(self, row: OrderJournalRow, card: PendingOrderRow | None, looks: int) -> None:
        """Not found yet: count the look; a card that still says "Sending…" now says "checking with KIS"."""
        now = self.clock()
        checking = row.status == "submitting"
        language = await self.users.language(row.owner_id) if checking else "ko"
        async with self.db.write() as session:
            entry = await session.get(OrderJournalRow, row.id, with_for_update=True)
            if entry is None or entry.id is None or entry.status not in UNRESOLVED or entry.told_at is not None:
                return
            entry.absent_looks, entry.checked_at = looks, now
            if checking:
                entry.status, entry.updated_at = "uncertain", now
                session.add(OrderEventRow(journal_id=entry.id, status="uncertain",
                                          detail="outcome unknown after a restart; checking with KIS"))
                if card is not None:
                    await self.cards.finish_in(session, card.id, CardStatus.UNCERTAIN, "checking with KIS")
                    await outbox.enqueue(session, [Push(f"order-checking:{entry.id}", entry.owner_id, card.chat_id,
                                                        self._notice(card, language, Outcome.UNCERTAIN, None, ""))])
            session.add(entry)
        if checking:
            self.wake_sender()

    async def _tell(self, row: OrderJournalRow, card: PendingOrderRow | None, outcome: Outcome, status: str, *,
                    execution: Execution | None = None, message: str = "", looks: int | None = None) -> bool:
        """The outcome, the card, what has filled and the push to the user: one transaction."""
        now = self.clock()
        language = await self.users.language(row.owner_id)
        order_no = execution.order_no if execution is not None else None
        card_status = {Outcome.PLACED: CardStatus.PLACED, Outcome.CANCELLED_ORDER: CardStatus.PLACED,
                       Outcome.REVISED_ORDER: CardStatus.PLACED,
                       Outcome.NOT_PLACED: CardStatus.FAILED}.get(outcome, CardStatus.UNCERTAIN)
        filled: tuple[int, ListedPrice] | None = None
        async with self.db.write() as session:
            entry = await session.get(OrderJournalRow, row.id, with_for_update=True)
            if entry is None or entry.id is None or entry.status not in UNRESOLVED or entry.told_at is not None:
                return True  # settled meanwhile (by the submitter, or another process)
            entry.status, entry.message, entry.updated_at, entry.told_at, entry.checked_at = (
                status, message or entry.message, now, now, now)
            entry.kis_order_no = order_no or entry.kis_order_no
            entry.absent_looks = entry.absent_looks if looks is None else looks
            session.add(OrderEventRow(journal_id=entry.id, status=status, detail=message or None))
            if execution is not None and outcome is Outcome.PLACED and execution.filled_quantity > 0:
                before, cost = await counted_fills(session, entry.id, entry.currency)
                if execution.filled_quantity > before:
                    # KIS's list gives the order's filled amount and average (won; a US order's in dollars), its
                    # limit (price units) and no fill's time: the new shares' price is derived from them and
                    # what the journal counted
                    currency = Currency(entry.currency)
                    priced = listed_fill_price(
                        Money(Decimal(execution.average_fill_price), currency), execution.filled_quantity, before,
                        cost, amount=None if execution.filled_amount is None else Money(execution.filled_amount,
                                                                                        currency),
                        limit=Money.of_price_units(execution.price, currency) if execution.price > 0 else None,
                        side=entry.side)
                    quantity = execution.filled_quantity - before
                    entry.status = "filled" if execution.filled_quantity >= entry.quantity else "partially_filled"
                    session.add(OrderEventRow(journal_id=entry.id, status=entry.status,
                                              detail=fill_detail(quantity, priced.price), source=LISTED))
                    filled = (quantity, priced)
            session.add(entry)
            chat_id = card.chat_id if card is not None else entry.owner_id
            if card is not None:
                await self.cards.finish_in(session, card.id, card_status, order_no or message,
                                            only_from=(CardStatus.SUBMITTING, CardStatus.UNCERTAIN))
                notice = self._notice(card, language, outcome, order_no, message)
            else:  # the card is gone: a message of its own, from the journal's copy of the order
                notice = self._notice(_card_from_journal(entry), language, outcome, order_no, message, card_gone=True)
            pushes = [Push(f"order:{entry.id}", entry.owner_id, chat_id, notice)]
            if filled is not None and execution is not None:
                quantity, priced = filled
                name = card.name if card is not None else execution.name
                pushes.append(Push(f"fill:reconciled:{entry.id}:{execution.filled_quantity}", entry.owner_id, chat_id,
                                   OrderFilled(language, execution.order_no, entry.code, name, entry.side, quantity,
                                               priced.units, "", currency=entry.currency,
                                               price_basis=priced.basis)))
            await outbox.enqueue(session, pushes)
        self.settled[outcome.value] = self.settled.get(outcome.value, 0) + 1
        log.info("order outcome told after reconciliation", extra={
            "journal_id": row.id, "outcome": outcome.value, "order_no": order_no,
            "filled": filled[0] if filled is not None else None})
        self.wake_sender()
        return True

    def _notice(self, card: PendingOrderRow, language: str, outcome: Outcome, order_no: str | None,
                message: str, *, card_gone: bool = False) -> OrderOutcome:
        symbol = self.symbols.by_code(card.code) if card.code else None
        snapshot = CardSnapshot(token=card.id, mode=self.mode.value, action=card.action, side=card.side,
                                code=card.code, name=card.name, name_en=symbol.name_en if symbol else "",
                                quantity=card.quantity,
                                price=None if card.price is None else price_units(card.price, card.currency),
                                quoted_price=price_units(card.quoted_price, card.currency),
                                order_no=card.order_no, market=card.market, exchange=card.exchange or "",
                                order_type=card.order_type or "")
        return OrderOutcome(language, snapshot, outcome.value, order_no, message,
                            None if card_gone else card.message_id)


def _listed_day(text: str) -> dt.date | None:
    """The day a row of KIS's list of orders is filed under (``YYYYMMDD``), None when it says none."""
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


def _card_from_journal(entry: OrderJournalRow) -> PendingOrderRow:
    now = utcnow()
    return PendingOrderRow(id=entry.idempotency_key, owner_id=entry.owner_id, chat_id=entry.owner_id,
                           environment=entry.environment, action=entry.action, side=entry.side, code=entry.code,
                           name=entry.code, quantity=entry.quantity, price=entry.price,
                           quoted_price=entry.price or Decimal(0), currency=entry.currency,
                           order_no=entry.original_order_no, expires_at=now,
                           market=entry.market, exchange=entry.exchange, order_type=entry.order_type)

