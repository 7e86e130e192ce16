"""Fill notifications: each user's own execution-notice feed (H0STCNI0/H0STCNI9 on their app key),
recorded in the order journal and told as :class:`~chatbot.alerts.notices.OrderFilled` notices through
the outbox.

A user's notice feed starts when they place an order (and, at start-up, for users who placed one
in the last day); KIS sends notices on the app key of the account, so each user needs their own
connection. The subscription key KIS expects is the HTS user id (asked for by /login); without one
there is no feed (the account number works only on the embedded simulator, where it stands in), and
fills are reconciled from the daily executions."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, replace

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chatbot.alerts import outbox
from chatbot.alerts.feeds import UserSessions
from chatbot.alerts.notices import OrderFilled, OrderRefused
from chatbot.alerts.outbox import Push
from chatbot.broker import Execution, Fill
from chatbot.kis.errors import KisError
from chatbot.kis.frames import ExecutionNotice
from chatbot.kis.overseas import nearest_kst
from chatbot.kis.protocol import KST, listed_code, order_no_key
from chatbot.kis.realtime import Event, RealtimeClient, Reconnected
from chatbot.kis.us_broker import fill_of as us_fill_of
from chatbot.markets.money import price_units
from chatbot.markets.us_hours import AFTER_MARKET_END_KST, NEW_YORK
from chatbot.service.accounts import AccountProvider
from chatbot.service.fill_catchup import catch_up_fills, listed_fills, listed_now, listed_price
from chatbot.service.fill_prices import counted_fills, fill_detail
from chatbot.service.journal import (
    DATABASE_ERRORS,
    LISTED,
    NOTICE,
    OPEN_STATUSES,
    UNRESOLVED,
    last_fill,
)
from chatbot.service.orders import standing_order
from chatbot.service.users import Users
from chatbot.service.views import StandingOrder
from chatbot.storage.db import Database
from chatbot.storage.tables import OrderEventRow, OrderJournalRow
from chatbot.storage.types import utcnow

log = logging.getLogger(__name__)
MAX_WATCHERS = 1_000
WATCH_TRIES = 10  # subscriptions to a user's fill notices tried again after one failed (backing off to max_pause)
CHANGES = ("revise", "cancel")  # journal actions that change an order already working
# How long a fill notice waits for an order of its stock still being sent or looked for (no number yet) before it
# is pushed as one of an order placed elsewhere.
UNNUMBERED_PATIENCE = dt.timedelta(minutes=10)
# How late a notice may be handled and still be matched to the trading day of its own time (see _newest_row).
NOTICE_LATENESS = dt.timedelta(hours=1)
# A fill notice's time up to this long after a cumulative reading of KIS's list was counted on its order (the
# reading taken before) may be of a fill inside it: the notice's time has a second's resolution, and KIS's clock
# is not this host's. Such a notice is resolved by asking KIS for the order's figure.
LISTED_OVERLAP = dt.timedelta(seconds=5)
# How far KIS's list of the day's orders may lag behind its notices (KIS: same-day orders "may show with a
# delay"): a figure read sooner after a notice than this is not believed when it lacks the notice's fill.
LIST_LAG = dt.timedelta(seconds=30)


class _OrderRowNotWritten(Exception):
    """A fill of an order whose journal row is still waiting for the database."""


class _ListLags(Exception):
    """KIS's list of the day's orders does not show (yet) an order, or a figure that may lag behind the notices,
    and a fill notice needs it."""


@dataclass(frozen=True, slots=True)
class _Looked:
    """An order as KIS's list of the day's orders showed it, and when it was asked for (before the answer)."""

    execution: Execution
    at: dt.datetime


# A notice is tried again while the database, KIS or KIS's list is not ready (or its order's row is not written):
# it is never dropped for that.
_RETRYABLE: tuple[type[BaseException], ...] = (*DATABASE_ERRORS, _OrderRowNotWritten, KisError, _ListLags)
_CATCH_UP_RETRYABLE: tuple[type[BaseException], ...] = (*DATABASE_ERRORS, KisError)


class FillWatcher:
    def __init__(self, db: Database, accounts: AccountProvider, users: Users, ws_url: str, notice_tr: str,
                 wake_sender: Callable[[], None], *, sessions: UserSessions | None = None) -> None:
        self.db = db
        self.accounts = accounts
        self.users = users
        self.ws_url = ws_url
        self.notice_tr = notice_tr
        self.wake_sender = wake_sender
        self._clients: dict[int, RealtimeClient] = {}
        self._stop_listening: dict[int, Callable[[], None]] = {}  # user -> removes our listener from their session
        # Each user's one session on their key, shared with the feed planner (their own symbols).
        self.sessions = sessions if sessions is not None else UserSessions(ws_url)  # (an empty one is falsy)
        self._forget_on_close = self.sessions.on_close(self._session_closed)
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.recorded = 0
        self.refusals = 0  # refusal notices handled (told or found told already)
        self.retries = 0
        self.counted_already = 0  # fill notices found counted already (by a reading of KIS's list): not pushed
        self.lookups = 0  # orders looked up in KIS's list to tell whether a notice's fill was counted already
        self.list_lag = LIST_LAG
        self._order_locks: dict[int, tuple[asyncio.Lock, int]] = {}  # journal id -> (lock, notices holding it)
        self.max_pause = 30.0
        # Order numbers whose outcome was told but not yet written (the database refused it): a fill of
        # one waits for its journal row instead of being pushed unjournalled.
        self.unwritten_order_nos: Callable[[], set[str]] = set
        # Replicas (chatbot.service.replicas): a user's session is opened only by the replica that claims it
        # (KIS allows one per app key); None: this process is the only one.
        self.claim: Callable[[int], Awaitable[bool]] | None = None
        self.elsewhere: set[int] = set()  # users whose session another replica owns (last looked)
        self.us_notice_tr: str | None = None  # H0GSCNI0 (paper H0GSCNI9): US fills on the same connection
        self.us_names: Callable[[str], str | None] | None = None  # a US ticker's Korean name (the directory)
        self.clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(KST)
        self._stopped = False  # (a subscription tried again after stop() opens no session)

    async def watch(self, user_id: int, chat_id: int) -> None:
        if await self._watch(user_id, chat_id) is False:
            self._spawn(self._watch_again(user_id, chat_id), f"fill-watch-again-{user_id}")

    async def _watch(self, user_id: int, chat_id: int) -> bool | None:
        """Listen to the user's fill notices: True when listening, False when the subscription failed (undone:
        the user is not counted as watched), None when there is nothing to do here."""
        async with self._lock:
            if self._stopped or user_id in self._clients or len(self._clients) >= MAX_WATCHERS:
                return None
            if (notice_key := await self.accounts.notice_key(user_id)) is None:
                return None  # KIS keys fill notices by HTS id; without one, fills come from the daily executions
            if self.claim is not None and not await self.claim(user_id):
                self.elsewhere.add(user_id)
                return None  # another replica owns this user's session
            self.elsewhere.discard(user_id)
            account = await self.accounts.for_user(user_id)
            language = await self.users.language(user_id)
            client = await self.sessions.session(user_id, account.client.approval_key)
            stop_listening = client.add_listener(lambda event: self._on_event(user_id, chat_id, language, event))
            self._clients[user_id], self._stop_listening[user_id] = client, stop_listening
        subscribed: list[str] = []
        try:
            for tr_id in (self.notice_tr, *((self.us_notice_tr,) if self.us_notice_tr is not None else ())):
                await client.subscribe(tr_id, notice_key)
                subscribed.append(tr_id)
        except Exception as exc:  # noqa: BLE001 -- tried again (_watch_again); the daily executions still report fills
            # Undone: a user left counted as watched without a subscription was never subscribed again (every
            # later watch returned at once), and each fill of theirs went untold until a restart.
            log.warning("fill notices unavailable for a user", extra={"user_id": user_id, "error": type(exc).__name__})
            async with self._lock:
                if self._clients.get(user_id) is client:
                    del self._clients[user_id]
                    self._stop_listening.pop(user_id, None)
                stop_listening()
            for tr_id in subscribed:
                with contextlib.suppress(Exception):
                    await client.unsubscribe(tr_id, notice_key)
            return False
        return True

    async def _watch_again(self, user_id: int, chat_id: int) -> None:
        """Subscribe again, backing off, after a failed subscription (KIS slow to acknowledge, an approval key
        not issued); once listening, what filled meanwhile is caught up. A few tries: the user's next order
        (and, with replicas, the next pass) watches again too."""
        pause = min(1.0, self.max_pause)
        for _ in range(WATCH_TRIES):
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.max_pause)
            try:
                watching = await self._watch(user_id, chat_id)
            except _CATCH_UP_RETRYABLE as exc:
                log.warning("fill notices: watching again failed", extra={"user_id": user_id,
                                                                          "error": type(exc).__name__})
                continue
            if watching is not False:
                if watching:
                    await self.catch_up(user_id)
                return

    async def resume_recent(self) -> None:
        """At start-up: watch users who placed an order in the last day, and catch up (in the background) what
        filled while no process listened (the bot was down: those notices went nowhere)."""
        since = utcnow() - dt.timedelta(days=1)
        async with self.db.session() as session:
            owners = set((await session.exec(select(OrderJournalRow.owner_id).where(
                col(OrderJournalRow.created_at) >= since,
                col(OrderJournalRow.status).in_(OPEN_STATUSES)))).all())
        for owner in owners:
            await self.watch(owner, owner)
            if owner in self._clients:
                self._spawn(self.catch_up(owner), f"fill-catch-up-{owner}")

    def _on_event(self, user_id: int, chat_id: int, language: str, event: Event) -> None:
        if isinstance(event, Reconnected):  # notices sent while the connection was down are lost: ask KIS
            self._spawn(self.catch_up(user_id), f"fill-catch-up-{user_id}")
            return
        notice: ExecutionNotice | Fill | None = us_fill_of(event)  # a US fill or refusal, in dollars
        if notice is None and isinstance(event, ExecutionNotice) and (event.is_fill or event.refused):
            notice = event
        if notice is None:
            return
        # A refusal after KIS accepted the order (RFUS_YN=1): journalled as rejected and told, once.
        self._spawn(self._record_until_written(user_id, chat_id, language, notice),
                    f"{'refusal' if notice.refused else 'fill'}-{notice.order_no}")

    def _spawn(self, work: Coroutine[object, object, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    async def catch_up(self, user_id: int) -> None:
        """After the user's notice connection came back, the bot started again or a replica took the user's
        session over: what filled meanwhile (the day's orders against the journal), journalled and pushed once
        (:func:`catch_up_fills`); retried while KIS or the database fails, for as long as this watcher listens
        to the user (a fill made while nobody listened is told by nothing else: six tries, a minute, left it
        untold through a longer outage)."""
        pause = min(1.0, self.max_pause)
        while True:
            try:
                pushed = await catch_up_fills(self.db, self.accounts, self.users, user_id, self.wake_sender,
                                              hold=self._holding)
            except _CATCH_UP_RETRYABLE as exc:
                if user_id not in self._clients:  # logged out, stopped, or the session went to another replica
                    log.warning("fill catch-up abandoned: the user is no longer watched here",
                                extra={"user_id": user_id, "error": type(exc).__name__})
                    return
                log.warning("fill catch-up after a reconnect failed; retrying",
                            extra={"user_id": user_id, "error": type(exc).__name__, "pause_s": pause})
                await asyncio.sleep(pause)
                pause = min(pause * 2, self.max_pause)
                continue
            if pushed:
                log.info("fills made while the notice connection was down pushed",
                         extra={"user_id": user_id, "count": pushed})
            return

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # never silent
            log.error("fill notice task failed", exc_info=task.exception(), extra={"task": task.get_name()})

    async def _record_until_written(self, user_id: int, chat_id: int, language: str,
                                    notice: ExecutionNotice | Fill) -> None:
        """Record the fill; while the database refuses writes (or the order's own row is still waiting to be
        written, or KIS's list is needed and not ready), try again, backing off up to ``max_pause`` seconds — the
        notice is not lost meanwhile."""
        pause = 0.25
        arrived = utcnow()
        while True:
            try:
                if notice.refused:
                    await self._record_refusal(user_id, chat_id, language, notice)
                else:
                    await self._record(user_id, chat_id, language, notice, arrived)
                return
            except _RETRYABLE as exc:
                self.retries += 1
                log.warning("fill not recorded yet; retrying", extra={
                    "order_no": notice.order_no, "error": type(exc).__name__, "pause_s": pause})
            except Exception:
                log.exception("fill notice could not be recorded", extra={"order_no": notice.order_no})
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.max_pause)

    async def _journal_entry(self, user_id: int, order_no: str, market: str = "KRX", *,
                             stock: tuple[str, str] | None = None, at: str = "") -> OrderJournalRow | None:
        """The journal row of the order; a market order's fill can arrive before the row has its number.
        Only the fill's own market's rows: KIS numbers domestic and US orders in books of their own, so a
        number alone may name a domestic order and a US one (a US fill then counted on the domestic row,
        over its quantity, was dropped as "already journalled" and never told). While an order of the
        user's for the notice's ``stock`` (code, side) is still being sent or looked for (no number yet), the
        notice waits for it: KIS may answer the order many seconds after it filled."""
        for attempt in range(10):
            entry = await self._newest_row(user_id, order_no, market, at=at)
            if entry is not None:
                return entry
            if order_no in self.unwritten_order_nos():
                raise _OrderRowNotWritten(order_no)  # told, not yet written: wait for it, then journal the fill
            await asyncio.sleep(0.05 * (attempt + 1))
        if stock is not None and await self._unnumbered(user_id, market, *stock):
            raise _OrderRowNotWritten(order_no)  # its number is on its way: wait for it, then journal the fill
        # numbered between the last look and the one above, or an order placed elsewhere (HTS, another app):
        # then pushed, not journalled
        return await self._newest_row(user_id, order_no, market, at=at)

    async def _unnumbered(self, user_id: int, market: str, code: str, side: str) -> bool:
        """Whether an order (or revision) of ``user_id``'s for ``code`` and ``side``, journalled lately, is still
        being sent or looked for: its outcome unknown, no number yet."""
        async with self.db.session() as session:
            found = (await session.exec(select(OrderJournalRow.id).where(
                col(OrderJournalRow.owner_id) == user_id, col(OrderJournalRow.market) == market,
                col(OrderJournalRow.code) == code, col(OrderJournalRow.side) == side,
                col(OrderJournalRow.action).in_(("order", "revise")), col(OrderJournalRow.status).in_(UNRESOLVED),
                col(OrderJournalRow.told_at).is_(None), col(OrderJournalRow.kis_order_no).is_(None),
                col(OrderJournalRow.created_at) >= utcnow() - UNNUMBERED_PATIENCE).limit(1))).first()
        return found is not None

    async def _newest_row(self, user_id: int, order_no: str, market: str, *,
                          cancels: bool = True, at: str = "") -> OrderJournalRow | None:
        """The newest of ``user_id``'s journal rows in ``market`` with ``order_no``, cancellations left out unless
        ``cancels``. Only rows of the market's day: KIS numbers orders anew each day, and a notice can come before
        today's order has its number journalled (a market order fills at once) — an order of an earlier day with
        that number is not it. The day is the one of the notice's own time ``at`` (KST ``HHMMSS``), not of now: a
        notice handled late (its order's number awaited, the database retried) across a day's end (a US fill
        at 06:59 KST handled after 07:00) is still matched to its own day's order."""
        day_start = _trading_day_start(market, _handled_late(at, self.clock()))
        query = select(OrderJournalRow).where(
            col(OrderJournalRow.owner_id) == user_id, col(OrderJournalRow.market) == market,
            col(OrderJournalRow.created_at) >= day_start,
            func.ltrim(col(OrderJournalRow.kis_order_no), "0") == order_no_key(order_no))
        if not cancels:
            query = query.where(col(OrderJournalRow.action) != "cancel")
        async with self.db.session() as session:
            return (await session.exec(query.order_by(col(OrderJournalRow.id).desc()))).first()

    async def _record(self, user_id: int, chat_id: int, language: str, notice: ExecutionNotice | Fill,
                      arrived: dt.datetime | None = None) -> None:
        """Journal and push one fill notice (``arrived``: when it came; now unless said)."""
        arrived = arrived or utcnow()
        order_no = notice.order_no
        if isinstance(notice, Fill):  # US: the push counts the price in 1/10,000 dollar
            units = price_units(notice.price.amount, notice.price.currency)
            filled = OrderFilled(language, order_no, notice.symbol, self._us_name(notice.symbol), notice.side.value,
                                 notice.quantity, units, notice.time, currency=notice.price.currency.value)
            key = f"fill:us:{user_id}:{order_no}:{notice.time}:{notice.quantity}:{units}"
        else:
            filled = order_filled(notice, language)
            key = f"fill:{notice.account}:{order_no}:{notice.time}:{notice.quantity}:{notice.price}"
        found = await self._journal_entry(user_id, order_no, _market(notice), stock=_stock(notice), at=notice.time)
        if found is None or found.id is None:  # an order placed elsewhere (HTS, another app): told, not journalled
            async with self.db.write() as session:
                queued = await outbox.enqueue(session, [Push(key, user_id, chat_id, filled)])
            self._queued(queued)
            return
        async with self._one_at_a_time(found.id):
            looked: _Looked | None = None
            while not await self._journal_fill(user_id, chat_id, language, notice, arrived, filled, key, found.id,
                                               looked):
                looked = await self._look_up(user_id, found)

    async def _journal_fill(self, user_id: int, chat_id: int, language: str, notice: ExecutionNotice | Fill,
                            arrived: dt.datetime, filled: OrderFilled, key: str, journal_id: int,
                            looked: _Looked | None) -> bool:
        """Count the notice's fill on its journal row and push it, in one transaction under the row's lock; False
        (nothing written) when a cumulative reading of KIS's list counted on the row may already hold it and
        ``looked`` (the order as KIS lists it, looked at after the notice came) is still to be asked for."""
        async with self.db.write() as session:
            entry = await session.get(OrderJournalRow, journal_id, with_for_update=True)
            if entry is None or entry.id is None:  # purged meanwhile: told as an order the journal lacks
                pushes: list[Push] | None = [Push(key, user_id, chat_id, filled)]
            else:
                pushes = await self._count(session, entry, chat_id, language, notice, arrived, filled, key, looked)
            if pushes is None:
                return False  # asked outside the transaction (no network call while the row is locked)
            queued = await outbox.enqueue(session, pushes) if pushes else 0
        self._queued(queued)
        return True

    async def _count(self, session: AsyncSession, entry: OrderJournalRow, chat_id: int, language: str,
                     notice: ExecutionNotice | Fill, arrived: dt.datetime, filled: OrderFilled, key: str,
                     looked: _Looked | None) -> list[Push] | None:
        """The fill event of the notice on ``entry`` (locked) and its push; none when it is counted already; None
        (nothing written) when KIS is to be asked first.

        The notice alone adds its own quantity. Resolved with ``looked``, the journal is brought to KIS's figure
        instead (what it lacks of it, as a cumulative reading does): nothing when the fill is in it already; the
        notice itself when exactly its quantity is missing; else what is missing (fills made meanwhile, the
        notice's among them or not), at their price derived from KIS's average (fill_prices.listed_fill_price).
        Counting the notice's quantity whenever KIS's figure has room for it would count it twice when another
        fill made since took that room. The journal only ever rises to a figure KIS gave, so nothing is counted
        twice; KIS's list may lag behind its notices (a fill booked, not listed yet), so a figure short of the
        notice's quantity is believed only when it was read ``list_lag`` after the notice came and after the last
        fill counted from a notice: before, KIS is asked again (the notice is retried)."""
        assert entry.id is not None
        counted, cost = await counted_fills(session, entry.id, entry.currency)
        if counted + notice.quantity > entry.quantity:  # counted already (the journal never counts more than filled)
            log.info("fill already journalled; not pushed again", extra={"order_no": notice.order_no})
            self.counted_already += 1
            return []
        if looked is None:
            if self._maybe_counted(notice, await last_fill(session, entry.id, LISTED)):
                return None
            total, quantity, source = counted + notice.quantity, notice.quantity, NOTICE
        else:
            total, source = looked.execution.filled_quantity, LISTED
            quantity = total - counted
            if quantity < notice.quantity:
                noticed = max(arrived, await last_fill(session, entry.id, NOTICE) or arrived)
                if looked.at < noticed + self.list_lag:
                    raise _ListLags(notice.order_no)
            if quantity <= 0:
                log.info("fill already counted from KIS's list of the day's orders; not pushed again", extra={
                    "order_no": notice.order_no, "journal_id": entry.id, "listed": total, "counted": counted,
                    "quantity": notice.quantity})
                self.counted_already += 1
                return []
        priced = None if looked is None else listed_price(looked.execution, entry, counted, cost)
        # Of the notice's quantity, the shares missing may still be another fill's (the notice's own inside a
        # reading counted before): a late notice of a fill the catch-up had told lent its price and time to the
        # next fill of that quantity, whose own were never told. KIS's figure says when they cannot be its.
        if quantity == notice.quantity and (priced is None or priced.may_be(filled.price_money)):
            # Two executions alike (the same second, quantity and price) are two fills: the key counts the
            # order's total so far, so the second is told too (it was taken for the first's duplicate).
            push = Push(f"{key}:{total}", entry.owner_id, chat_id, filled)
            detail = fill_detail(quantity, filled.price_money)
        else:
            assert looked is not None and priced is not None
            caught_up = listed_fills(looked.execution, entry, language, counted, priced)
            push = Push(f"fill:caught-up:{entry.id}:{total}", entry.owner_id, chat_id, caught_up)
            detail = fill_detail(quantity, caught_up.price_money)
            log.info("fills counted from KIS's list of the day's orders instead of a notice", extra={
                "order_no": notice.order_no, "journal_id": entry.id, "listed": total, "counted": counted,
                "quantity": quantity, "notice_quantity": notice.quantity})
        entry.status = "filled" if total >= entry.quantity else "partially_filled"
        entry.updated_at = utcnow()
        session.add(entry)
        session.add(OrderEventRow(journal_id=entry.id, status=entry.status, detail=detail, source=source))
        return [push]

    def _maybe_counted(self, notice: ExecutionNotice | Fill, listed_at: dt.datetime | None) -> bool:
        """Whether the notice's fill may be inside a cumulative reading of KIS's list counted on its order at
        ``listed_at`` (taken before then): unless its own time is clearly later. A notice handled late (it waited
        for its order's number while reconciliation found the order, counting what had filled) has an earlier
        time; one whose fill KIS's list did not show yet (it lags) may have one too: only KIS can tell. A time
        to come is no time to go by (a US notice's clock is unverified: overseas_protocol.NOTICE_TIME_ZONE)."""
        if listed_at is None:
            return False
        if not (len(notice.time) == 6 and notice.time.isdigit()):
            return True  # no time to go by
        now = self.clock()
        made = nearest_kst(notice.time, now)
        return made <= listed_at + LISTED_OVERLAP or made > now + LISTED_OVERLAP

    async def _look_up(self, user_id: int, row: OrderJournalRow) -> _Looked:
        """The order as KIS lists it now, after the notice came (so with the notice's fill booked). A failed look
        raises: the notice is retried (:meth:`_record_until_written`), never dropped."""
        self.lookups += 1
        account = await self.accounts.for_user(user_id)
        looked_at = utcnow()
        listed = await listed_now(account, row)
        if listed is None:
            raise _ListLags(row.kis_order_no or "")
        return _Looked(listed, looked_at)

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, journal_id: int) -> AsyncIterator[None]:
        """The notices of one order counted one at a time: a notice resolved by KIS's figure (looked up, then
        counted) must not have another notice's fill counted between the look and the count (the figure may not
        hold that fill, which would then be taken off this one's)."""
        lock, holders = self._order_locks.get(journal_id, (asyncio.Lock(), 0))
        self._order_locks[journal_id] = (lock, holders + 1)
        try:
            async with lock:
                yield
        finally:
            lock, holders = self._order_locks[journal_id]
            if holders > 1:
                self._order_locks[journal_id] = (lock, holders - 1)
            else:
                del self._order_locks[journal_id]

    @contextlib.asynccontextmanager
    async def _holding(self, journal_ids: Sequence[int]) -> AsyncIterator[None]:
        """The turns of several orders' notices, taken in one order (ids ascending: a notice holds one turn
        only, so no two holders wait on each other), for the fill catch-up (:func:`catch_up_fills`)."""
        async with contextlib.AsyncExitStack() as stack:
            for journal_id in sorted(set(journal_ids)):
                await stack.enter_async_context(self._one_at_a_time(journal_id))
            yield

    def _queued(self, queued: int) -> None:
        """A push was queued (its transaction committed): the sender is woken for it."""
        if queued:
            self.recorded += 1
            self.wake_sender()

    async def _record_refusal(self, user_id: int, chat_id: int, language: str,
                              notice: ExecutionNotice | Fill) -> None:
        """An order the exchange refused after KIS accepted it: its journal row (an open order) becomes
        ``rejected`` and the user is told once (the key names the order; a replayed notice finds the row
        rejected already and the key queued). An order the journal lacks (placed elsewhere) is told only.

        A refused revision or cancellation (the journal's revise/cancel row, or the notice's RCTF_CLS 1/2 for
        one placed elsewhere) did not take: its row becomes ``rejected`` and the user is told so, with how
        the order it named stands now (looked up once: still working with what is left, no longer open, or
        unknown), never that an order "will not fill"."""
        order_no = notice.order_no
        market = _market(notice)
        found = await self._journal_entry(user_id, order_no, market, stock=_stock(notice), at=notice.time)
        if isinstance(notice, Fill):  # US: quantity/price slots carry the order's on a refusal notice
            refused = OrderRefused(language, order_no, notice.symbol, self._us_name(notice.symbol),
                                   notice.side.value, notice.quantity or notice.order_quantity,
                                   price_units(notice.price.amount, notice.price.currency), notice.time,
                                   currency=notice.price.currency.value)
        else:
            code = listed_code(notice.code)
            refused = OrderRefused(language, order_no, code, notice.name or code, notice.side.value,
                                   notice.order_quantity or notice.quantity, notice.order_price or notice.price,
                                   notice.time)
        # RCTF_CLS (domestic and US notices alike) says what was refused: a revision or cancellation only when it
        # says so (a cancellation's own row is refused as one; a refused revision's row, RCTF_CLS 0, is the revised
        # order itself refused: it will not fill). A notice without the flag under a number a cancel row carries
        # too is of the order with that number, never of the cancellation.
        flagged = {"1": "revise", "2": "cancel"}.get(notice.revise_cancel, "")
        if found is not None and found.action == "cancel" and not flagged:
            found = await self._newest_row(user_id, order_no, market, cancels=False, at=notice.time)
        change = "cancel" if flagged and found is not None and found.action == "cancel" else flagged
        if change and (found is None or found.status in OPEN_STATUSES):  # (a replay: told already)
            original_no = (found.original_order_no if found is not None else None) or notice.original_order_no
            refused = await self._change_refused(user_id, refused, change, original_no, market)
        # an order number is KIS's within a day only (numbered anew each day) and outbox keys are kept: the key
        # names the journal row, or for an order the journal lacks the market's date
        day = dt.datetime.now(NEW_YORK if market == "US" else KST).date()
        key = f"refused:{market}:{user_id}:{order_no_key(order_no)}:" + (
            f"j{found.id}" if found is not None else f"{day:%Y%m%d}")
        async with self.db.write() as session:
            entry = await session.get(OrderJournalRow, found.id, with_for_update=True) if found is not None else None
            if entry is not None and change and entry.action not in CHANGES:
                # a change refused under an order's own number: the order works on; its row stays as it is
                log.warning("change refusal under an order's own number; its row left open",
                            extra={"order_no": order_no, "change": change})
                entry = None
            if entry is not None and entry.id is not None:
                if entry.action not in ("order", *CHANGES) or entry.status not in OPEN_STATUSES:
                    log.info("refusal of an order not open in the journal; not told",
                             extra={"order_no": order_no, "status": entry.status})
                    self.refusals += 1
                    return
                entry.status, entry.updated_at = "rejected", utcnow()
                session.add(entry)
                detail = refused.reason or (f"{refused.change} refused by the exchange after acceptance; not done"
                                            if refused.change else "refused by the exchange after acceptance")
                session.add(OrderEventRow(journal_id=entry.id, status="rejected", detail=detail))
            queued = await outbox.enqueue(session, [Push(key, user_id, chat_id, refused)])
        log.warning("order refused after acceptance", extra={"order_no": order_no, "market": market,
                                                              "change": refused.change or None,
                                                              "journalled": found is not None, "told": bool(queued)})
        self.refusals += 1
        if queued:
            self.wake_sender()

    async def _change_refused(self, user_id: int, refused: OrderRefused, change: str,
                              original_no: str, market: str) -> OrderRefused:
        """The refusal of a revision or cancellation of ``original_no``, with how that order stands now
        (a US order: looked up through the account's US broker)."""
        standing = StandingOrder(original_no, None)
        if original_no:
            try:
                account = await self.accounts.for_user(user_id)
            except Exception as exc:  # noqa: BLE001 -- the refusal is told all the same, its state unknown
                log.warning("no account to look the order up", extra={"error": type(exc).__name__})
            else:
                standing = await standing_order(account.broker_for(market), original_no)
        price = 0 if standing.price is None else price_units(standing.price.amount, standing.price.currency)
        return replace(refused, change=change, original_order_no=original_no, original_open=standing.open,
                       original_remaining=standing.remaining, original_price=price)

    def watched(self) -> set[int]:
        return set(self._clients)

    def _session_closed(self, user_id: int) -> None:
        """A user's session was closed (:meth:`UserSessions.close`): our listener on it goes and the user is no
        longer counted as watched, so their next order watches again on a fresh session (left counted, every
        later watch returned at once and their fill notices went unheard until a restart)."""
        client = self._clients.get(user_id)
        if client is None or client is self.sessions.get(user_id):  # not watched, or still on a live session
            return
        del self._clients[user_id]
        stop_listening = self._stop_listening.pop(user_id, None)
        if stop_listening is not None:
            stop_listening()
        log.info("fill notices: the user's session closed", extra={"user_id": user_id})

    def _us_name(self, symbol: str) -> str:
        listed = self.us_names(symbol) if self.us_names is not None else None
        return listed or symbol

    def reconnects(self) -> int:
        return sum(client.reconnects for client in self._clients.values())

    async def stop(self) -> None:
        self._stopped = True
        for user_id in list(self._clients):  # (each close forgets its user: _session_closed)
            await self.sessions.close(user_id)
        self._clients.clear()
        self._stop_listening.clear()
        self._forget_on_close()
        if self._tasks:  # fills being recorded finish (a cancelled one would leave its transaction open)
            _, late = await asyncio.wait(set(self._tasks), timeout=5.0)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)


def _trading_day_start(market: str, now: dt.datetime) -> dt.datetime:
    """When the trading day ``now`` is in began: a KRX day at 00:00 KST; a US trading day (KIS's daytime session
    from 10:00 KST to the after-market's end at 07:00 KST the next day) at the last 07:00 KST."""
    kst = now.astimezone(KST)
    if market != "US":
        return dt.datetime.combine(kst.date(), dt.time(), KST)
    start = dt.datetime.combine(kst.date(), AFTER_MARKET_END_KST, KST)
    return start if start <= kst else start - dt.timedelta(days=1)


def _handled_late(at: str, now: dt.datetime) -> dt.datetime:
    """When a notice of time ``at`` (KST ``HHMMSS``) handled ``now`` was made: its own time when that is a past
    moment of the last hour (a notice handled late), else now (a time far from now says nothing sure)."""
    made = nearest_kst(at, now) if at else now
    return made if now - NOTICE_LATENESS <= made <= now else now


def _market(notice: ExecutionNotice | Fill) -> str:
    return "US" if isinstance(notice, Fill) else "KRX"


def _stock(notice: ExecutionNotice | Fill) -> tuple[str, str]:
    """The (code, side) of a notice's order, as the journal writes them (an ETN's code without the Q KIS names
    its orders by: with it, an ETN order's fill coming before the order's number found no order waiting for
    one, and was told as an order placed elsewhere, journalled nowhere, then told again from KIS's list)."""
    return (notice.symbol if isinstance(notice, Fill) else listed_code(notice.code)), notice.side.value


def order_filled(notice: ExecutionNotice, language: str) -> OrderFilled:
    """The notice a user gets of one execution KIS reported."""
    return OrderFilled(language, notice.order_no, listed_code(notice.code), notice.name, notice.side.value,
                       notice.quantity, notice.price, notice.time)
