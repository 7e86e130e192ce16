"""Several ``chatbot run`` replicas on one PostgreSQL database: who does what must happen once.

* Each piece of once-only work is a *role* owned through a named lock
  (:class:`~chatbot.storage.locks.OwnershipLocks`): the market-data feed session (KIS allows one per
  app key), each user's own WebSocket session (``fills:<user>``: one per user's key), the reconciliation
  of uncertain orders, the master-file refresh, the daily reports at the close, and in polling mode the long poller. Every
  :attr:`Replicas.interval` seconds each replica checks the connection holding its locks and tries to
  take the roles nobody holds, so a replica that dies (its locks go with its connection) is replaced
  within about one interval; a vanished host within the server's keepalive bound.
* A replica taking the feed over treats it as a feed gap since it last saw the other holder alive: the
  first tick of each symbol fires what the day's high or low crossed meanwhile. Alerts armed on
  another replica reach the feed's owner through the database (:meth:`Replicas._adopt_alerts`), with
  the same gap check from the moment each was stored.
* **A restart is a gap too.** With no holder seen (the only process restarted; every replica was
  down and one comes back) there is no moment to start the gap from: the feed's owner stamps in the
  database, while the feed is up, when it last watched it (:mod:`chatbot.service.watermark`), and one
  taking the feed with no holder seen starts the gap from that stamp. Only the feed's owner stamps.
* Telegram re-sends a webhook update it did not see acknowledged, perhaps to another replica:
  :meth:`Replicas.first_delivery` lets one replica take each update id.
* **Users' sessions follow the feed.** A registered user's one session (KIS allows one per app key)
  carries both their fill notices and their own live symbols (the feed planner's "own" placements,
  README "Feed capacity"). Those symbols' ticks must reach the alert engine, whose book and
  exactly-once firing live on the feed's owner. So, where there is a feed, *the feed's owner holds every
  user's session lock* (:meth:`Replicas.claim_session`): it alone opens users' sessions, for their symbols
  and for their fills; a replica standing by opens none (an order placed through it is watched by the
  feed's owner within one interval, which then catches up what filled meanwhile). Why not spread users'
  sessions and carry their ticks to the owner instead: that needs a replica-to-replica tick channel
  (one more thing to lose or reorder ticks, and a second gap logic for it), whereas one replica holding
  a few thousand idle-most-of-the-time WebSockets is cheap. The cost: a dying feed owner takes every
  user's session with it, and the new owner re-opens them within the same bound, treating the hand-over
  as a feed gap (the day's high/low of each symbol's first tick) and catching up fills.
  Without a feed (no market-data key) users' fill sessions are spread over replicas as before.
* The outbox needs no role: every replica sends, each row claimed atomically (see
  :mod:`chatbot.alerts.outbox`).
* SQLite serves one process: there every role is this process's.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy import select as core_select
from sqlmodel import col, select

from chatbot import tasks
from chatbot.alerts.engine import THRESHOLD_UNITS, AlertEngine
from chatbot.alerts.feeds import FeedPlanner, UserSessions
from chatbot.kis.frames import Tick
from chatbot.kis.realtime import Event, SubscriptionError
from chatbot.service.fills import FillWatcher
from chatbot.service.journal import OPEN_STATUSES
from chatbot.service.watermark import Watermark
from chatbot.storage.db import Database
from chatbot.storage.leases import RUNTIME, is_live
from chatbot.storage.locks import OwnershipLocks
from chatbot.storage.tables import AlertRow, LeaseRow, LoginFlowRow, OrderJournalRow, ProcessedUpdateRow
from chatbot.storage.types import utcnow

log = logging.getLogger(__name__)
UPDATES_KEPT = dt.timedelta(days=2)
LOGIN_FLOW_TTL = dt.timedelta(minutes=6)  # /login's own timeout is 5 minutes  # Telegram keeps an undelivered update for 24 hours
PRUNE_EVERY = 600.0  # seconds
ADOPT_MARGIN = 5.0  # seconds: alerts stored this long before the last look are looked at again (commit lag)
ADOPT_SWEEP = 60.0  # seconds: every armed alert the book lacks is looked for, however long ago it was stored
FEED, RECONCILE, MASTER_FILES, POLLER = "feed:market-data", "reconcile", "master-files", "poller"
DAILY_REPORTS = "daily-reports"
FILLS = "fills:"
STANDBY_PRUNE = 10.0  # seconds
RECENT_TICKS = 15.0  # seconds of prices kept per symbol: longer than an alert takes to be adopted


@dataclass(slots=True)
class Role:
    name: str
    gain: Callable[[float | None], Awaitable[None]]  # given when another replica was last seen holding it
    lose: Callable[[], Awaitable[None]]


class Replicas:
    """This replica's share of the once-only work, and the Telegram updates it takes."""

    def __init__(self, db: Database, owner: str, *, interval: float = 1.0, advertise_url: str = "") -> None:
        self.db = db
        self.owner = owner  # the runtime lease's owner (host:pid:start:nonce)
        self.advertise_url = advertise_url.rstrip("/")  # where the other replicas reach this one (http.advertise_url)
        self.interval = interval
        self.locks = OwnershipLocks(db)
        self.roles: dict[str, Role] = {}
        self.active: set[str] = set()
        self.held_elsewhere: dict[str, float] = {}  # role -> when a try last found another replica holding it
        self.handovers: list[tuple[str, float]] = []  # (role, seconds from the last refusal to taking it)
        self.fills: FillWatcher | None = None
        self.engine: AlertEngine | None = None
        self.riders_pass: Callable[[Callable[[str, float], list[int]]], Awaitable[int]] | None = None
        self._adopted_until: dt.datetime | None = None
        self._swept = 0.0  # time.monotonic() of the last look at every armed alert (_adopt_alerts)
        self._task: asyncio.Task[None] | None = None
        self._pass_lock = asyncio.Lock()
        self._pruned = 0.0
        self._background: set[asyncio.Task[None]] = set()
        self._no_feed: dict[int, float] = {}  # user -> when to look again (no fill feed possible)
        self._recent: dict[str, collections.deque[tuple[float, int]]] = {}  # code -> (time, price) of late ticks
        self._unsubscribable: set[str] = set()  # symbols the feed had no slot for (logged once)
        self._pruned_book = 0.0
        self.passes = 0
        self.sessions_follow_feed = False  # True once there is a feed role among replicas (see the module's doc)
        self.sessions: UserSessions | None = None  # users' own sessions (shared by the fill watcher and the planner)
        self.watermark: Watermark | None = None  # until when the feed was watched (feed_role)
        # beside the alert engine's, what else rides the feed and judges its gaps (the trigger engine): when
        # its open gap began, else None
        self.unwatched: list[Callable[[], float | None]] = []
        self._watching = False  # the feed role's gain done and its lose not begun: the feed is this replica's
        self._locks_lost = False  # the roles are being lost with the connection holding their locks

    @property
    def single_process(self) -> bool:
        return self.locks.exclusive

    def add(self, name: str, gain: Callable[[float | None], Awaitable[None]],
            lose: Callable[[], Awaitable[None]]) -> None:
        """A role: ``gain(since)`` when this replica takes it, ``lose()`` when it gives it up or loses it."""
        self.roles[name] = Role(name, gain, lose)

    def owns(self, name: str) -> bool:
        return name in self.active

    # -- lifecycle ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.run_once()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="replica-roles")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await tasks.cancel(task)
        for work in list(self._background):
            work.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        async with self._pass_lock:
            for name in sorted(self.active):
                await self._lose(name)
            await self.locks.close()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # the next pass tries again; roles held stay held while the connection lives
                log.exception("replica roles: a pass failed")

    async def run_once(self) -> None:
        async with self._pass_lock:
            if not await self.locks.check():
                self._locks_lost = True  # another replica may own them already: no more stamps from here
                try:
                    for name in sorted(self.active):
                        await self._lose(name)
                finally:
                    self._locks_lost = False
                await self._drop_user_sessions()  # they were owned through the lost locks
            for name, role in list(self.roles.items()):
                if name in self.active:
                    continue
                if await self.locks.take(name):
                    since = self.held_elsewhere.pop(name, None)
                    self.active.add(name)
                    if since is not None:
                        self.handovers.append((name, time.time() - since))
                        log.info("role taken over", extra={"role": name, "since_s": round(time.time() - since, 2)})
                    try:
                        await role.gain(since)
                    except Exception:
                        log.exception("could not take a role up; giving it back", extra={"role": name})
                        await self._lose(name)
                else:
                    self.held_elsewhere[name] = time.time()
            if self.owns(FEED):
                self._mark_watched()
                await self._adopt_alerts()
                await self._adopt_riders()
            else:
                await self._prune_standby_book()
            if self.fills is not None:
                await self._watch_fills()
            await self._prune()
            self.passes += 1

    async def _lose(self, name: str) -> None:
        self.active.discard(name)
        role = self.roles.get(name)
        try:
            if role is not None:
                await role.lose()
        except Exception:
            log.exception("a role did not stop cleanly", extra={"role": name})
        finally:
            await self.locks.give_up(name)

    # -- the alert feed ------------------------------------------------------------------------------------------
    def feed_role(self, engine: AlertEngine, riders: Callable[[float | None], Awaitable[None]] | None = None,
                  riders_stop: Callable[[], Awaitable[None]] | None = None,
                  riders_pass: Callable[[Callable[[str, float], list[int]]], Awaitable[int]] | None = None) -> None:
        """The market-data feed: its owner runs the engine on a live session; the others stand by.
        ``riders(since)`` start what rides on the feed once it is up (the conditional orders' trigger engine;
        ``since`` as for the feed: a gap from then);
        ``riders_stop`` stops them before the feed goes; ``riders_pass(recent)``, on the owner's every pass,
        adopts what other replicas armed for them through the database (``recent``: :meth:`recent_prices`)."""
        self.engine = engine
        self.riders_pass = riders_pass
        watermark = self.watermark = Watermark(self.db, FEED)

        async def gain(since: float | None) -> None:
            self._adopted_until, self._swept = utcnow(), time.monotonic()  # the book is loaded in full
            if since is None:  # no holder seen: the feed was last watched when the last owner stamped it
                since = await watermark.read()
                if since is not None:
                    log.info("feed unwatched since its last stamp: a gap from then",
                             extra={"since_s": round(time.time() - since, 2)})
            await engine.start(since)  # (the previous owner was alive then: a gap from that moment)
            if riders is not None:
                await riders(since)
            self._watching = True

        async def lose() -> None:
            watching, self._watching = self._watching, False
            await watermark.settle()
            if watching and not self._locks_lost and engine.feed.connected.is_set():
                await watermark.mark(self._watched_until())  # (a feed down since: its last stamp stands)
            if riders_stop is not None:
                await riders_stop()
            await engine.stop()
            if self.sessions_follow_feed:
                await self._drop_user_sessions()

        self.add(FEED, gain, lose)
        if isinstance(engine.feed, FeedPlanner):
            engine.feed.claim = self.claim_session
            self.sessions = engine.feed.users
        if not self.single_process:
            self.sessions_follow_feed = True
            engine.feed.add_listener(self._note_tick)

    def _mark_watched(self) -> None:
        """The feed's owner, on each pass: while the feed is up, stamp that it is watched (every few
        seconds, in the background: a locked or unreachable database delays no pass and costs no role)."""
        if self._watching and self.watermark is not None and self.engine is not None \
                and self.engine.feed.connected.is_set():
            self.watermark.mark_soon(self._watched_until())

    def _watched_until(self) -> float:
        """Until when every symbol's trades were seen: now, when a gap still open began (a symbol's first
        trade after a reconnect is still to come; a crash now must not stamp past what it missed), or when the
        feed was last heard (a connection silently dead looks connected until its ping timeout, 40 s)."""
        now = time.time()
        engine = self.engine
        starts = [engine.unwatched_since() if engine is not None else None,
                  engine.feed.last_heard if engine is not None else None, *(f() for f in self.unwatched)]
        return min([now, *(start for start in starts if start is not None)])

    async def claim_session(self, user_id: int) -> bool:
        """May this replica open ``user_id``'s own session (fill notices, their own symbols)? Taking its
        lock, ``fills:<user>``; where there is a feed, only the feed's owner may (see the module's doc)."""
        if self.single_process:
            return True
        if self.sessions_follow_feed and not self.owns(FEED):
            return False
        try:
            return await self.locks.take(f"{FILLS}{user_id}")
        except Exception:
            log.warning("could not claim a user's session", exc_info=True, extra={"user_id": user_id})
            return False

    async def _drop_user_sessions(self) -> None:
        """Close every user's session this replica opened and give their locks up (the feed went, or the
        connection holding the locks broke)."""
        if self.fills is not None:
            await self.fills.stop()
        sessions = self.sessions or (self.fills.sessions if self.fills is not None else None)
        if sessions is not None:
            await sessions.aclose()
        for name in sorted(held for held in self.locks.held if held.startswith(FILLS)):
            await self.locks.give_up(name)

    def _note_tick(self, event: Event) -> None:
        """The feed's last :data:`RECENT_TICKS` seconds of prices per symbol (on the event loop, per tick)."""
        if type(event) is not Tick:
            return
        now = time.time()
        ticks = self._recent.get(event[0])
        if ticks is None:
            ticks = self._recent[event[0]] = collections.deque()
        ticks.append((now, int(event[2])))
        while ticks[0][0] < now - RECENT_TICKS:
            ticks.popleft()

    async def _adopt_alerts(self) -> None:
        """Armed alerts the engine does not know (armed, or re-armed after a cooldown, by another
        replica): into its book, with the gap check from the moment they were stored."""
        engine = self.engine
        if engine is None or self.single_process:
            return
        since = (self._adopted_until or utcnow()) - dt.timedelta(seconds=ADOPT_MARGIN)
        now = utcnow()
        columns = (col(AlertRow.id), col(AlertRow.code), col(AlertRow.direction), THRESHOLD_UNITS,
                   col(AlertRow.updated_at))
        sweep = time.monotonic() - self._swept >= ADOPT_SWEEP
        async with self.db.engine.connect() as conn:
            rows = list((await conn.execute(core_select(*columns).where(
                col(AlertRow.status) == "armed", col(AlertRow.updated_at) >= since))).all())
            if sweep:
                # An alert is stamped (updated_at) before its transaction commits: one whose commit came
                # more than ADOPT_MARGIN later (a stalled replica, a database under load) is older than
                # every window above by the time it can be seen. Every armed alert the book lacks, then.
                armed = (await conn.execute(core_select(col(AlertRow.id)).where(
                    col(AlertRow.status) == "armed"))).scalars().all()
                seen = {r[0] for r in rows}
                missing = [i for i in armed if i is not None and i not in seen and engine.book.where(i) is None]
                for i in range(0, len(missing), 1000):
                    rows += (await conn.execute(core_select(*columns).where(
                        col(AlertRow.id).in_(missing[i:i + 1000]), col(AlertRow.status) == "armed"))).all()
        self._adopted_until = now
        if sweep:
            self._swept = time.monotonic()
        new = [r for r in rows if r[0] is not None and engine.book.where(r[0]) is None]
        if not new:
            return
        added: set[int] = set()
        by_code: dict[str, list[Any]] = {}
        for r in new:
            by_code.setdefault(r[1], []).append(r)
        for code, alerts in by_code.items():
            try:
                # Each judged from its own storing (from the earliest on its symbol, one stored later fired on an
                # extreme made before it existed).
                added.update(await engine.adopt([(r[0], r[1], r[2], r[3]) for r in alerts],
                                                [r[4].timestamp() for r in alerts]))
            except SubscriptionError as exc:  # the session is full: its alerts wait for a free slot
                if code not in self._unsubscribable:
                    log.warning("an alert armed on another replica cannot be watched: the feed session is full",
                                extra={"code": code, "msg_cd": exc.msg_cd})
                self._unsubscribable.add(code)
        if not added:
            return
        # A tick that crossed an alert after it was stored, before this replica knew of it: fired now.
        crossed = 0
        for alert_id, code, direction, threshold, updated_at in new:
            if alert_id not in added:
                continue
            prices = [price for seen, price in self._recent.get(code, ()) if seen >= updated_at.timestamp()]
            if direction == "above" and prices and max(prices) >= threshold:
                crossed += engine.cross(alert_id, max(prices))
            elif direction == "below" and prices and min(prices) <= threshold:
                crossed += engine.cross(alert_id, min(prices))
        log.info("alerts armed on another replica adopted", extra={"alerts": len(added), "crossed": crossed})

    def recent_prices(self, code: str, since: float) -> list[int]:
        """The prices of the feed's trades of ``code`` seen since ``since`` (epoch seconds; the last
        :data:`RECENT_TICKS` seconds at most), oldest first."""
        return [price for seen, price in self._recent.get(code, ()) if seen >= since]

    async def _adopt_riders(self) -> None:
        """What rides on the feed (conditional orders) armed or cancelled on other replicas, as for alerts."""
        if self.riders_pass is None or self.single_process:
            return
        try:
            await self.riders_pass(self.recent_prices)
        except Exception:  # the next pass looks again (from the same moment)
            log.exception("could not adopt conditional orders armed on other replicas")

    def feed_connected(self, local: Callable[[], bool]) -> Callable[[], bool]:
        """Whether the market-data feed is up, as /status tells it: this replica's session when it owns the
        feed; else, whether another replica was seen holding it lately."""
        def connected() -> bool:
            if self.owns(FEED) or FEED not in self.roles:
                return local()
            seen = self.held_elsewhere.get(FEED)
            return seen is not None and time.time() - seen < 3 * self.interval + 5.0
        return connected

    async def _prune_standby_book(self) -> None:
        """A replica standing by keeps the alerts armed through it in its engine's book (and their symbols in
        its unconnected session, which /alert's capacity check counts): those fired or deleted elsewhere
        leave it, every :data:`STANDBY_PRUNE` seconds."""
        engine = self.engine
        if engine is None or self.single_process or time.monotonic() - self._pruned_book < STANDBY_PRUNE:
            return
        self._pruned_book = time.monotonic()
        ids = engine.book.ids()
        if not ids:
            return
        armed: set[int] = set()
        async with self.db.engine.connect() as conn:
            for i in range(0, len(ids), 1000):
                armed.update(alert_id for alert_id in (await conn.execute(core_select(col(AlertRow.id)).where(
                    col(AlertRow.id).in_(ids[i:i + 1000]), col(AlertRow.status) == "armed"))).scalars()
                    if alert_id is not None)
        for alert_id in ids:
            where = engine.book.where(alert_id)
            if alert_id not in armed and where is not None:
                await engine.disarm(alert_id, where[0])

    # -- the fill feeds -------------------------------------------------------------------------------------------
    def fill_roles(self, fills: FillWatcher) -> None:
        """Each user's fill-notice session is owned by one replica (``fills:<user id>``); once this replica listens
        on a session it took up, :meth:`FillWatcher.catch_up` journals and pushes what filled meanwhile."""
        self.fills = fills
        fills.claim = self.claim_session

    async def _watch_fills(self) -> None:
        """Users with orders still open in the last day whose fill feed nobody owns: this replica takes them."""
        fills = self.fills
        if fills is None or self.single_process or (self.sessions_follow_feed and not self.owns(FEED)):
            return
        since = utcnow() - dt.timedelta(days=1)
        async with self.db.session() as session:
            owners = set((await session.exec(select(OrderJournalRow.owner_id).where(
                col(OrderJournalRow.created_at) >= since,
                col(OrderJournalRow.status).in_(OPEN_STATUSES)))).all())
        now = time.monotonic()
        candidates = owners - fills.watched()
        # One look at which sessions another replica owns, rather than one try per user and pass.
        taken = await self.locks.held_anywhere([f"{FILLS}{owner}" for owner in candidates]) - self.locks.held
        for owner in sorted(candidates):
            if self._no_feed.get(owner, 0.0) > now:
                continue
            if f"{FILLS}{owner}" in taken:
                self.held_elsewhere[f"{FILLS}{owner}"] = time.time()
                continue
            name = f"{FILLS}{owner}"
            before = self.held_elsewhere.get(name)
            await fills.watch(owner, owner)
            if owner in fills.watched():
                self._spawn(self._catch_up(fills, owner))
                if before is not None:
                    self.handovers.append((name, time.time() - before))
                    log.info("role taken over", extra={"role": name, "since_s": round(time.time() - before, 2)})
                self.held_elsewhere.pop(name, None)
            elif owner in fills.elsewhere:
                self.held_elsewhere[name] = time.time()
            else:  # no fill feed for this user (no HTS id): looked at again in a minute
                self._no_feed[owner] = now + 60.0

    async def _catch_up(self, fills: FillWatcher, user_id: int) -> None:
        try:
            await fills.catch_up(user_id)
        except Exception:
            log.warning("could not look for fills made while no replica listened", exc_info=True,
                        extra={"user_id": user_id})

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name="replica-work")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- Telegram updates ----------------------------------------------------------------------------------------
    async def first_delivery(self, update_id: int) -> bool:
        """True when this replica is to process ``update_id``: no replica took it yet, or the one that
        did died before acknowledging it (Telegram re-sends only what was not acknowledged)."""
        insert = self.db.upsert_insert()  # this backend's INSERT … ON CONFLICT
        async with self.db.write() as session:
            inserted = (await session.exec(insert(ProcessedUpdateRow).values(
                update_id=update_id, owner=self.owner, received_at=utcnow()).on_conflict_do_nothing()
                .returning(col(ProcessedUpdateRow.update_id)))).first()
            if inserted is not None:
                return True
            taken = await session.get(ProcessedUpdateRow, update_id)
            if taken is None or taken.owner == self.owner:
                return False
            holder = await session.get(LeaseRow, f"{RUNTIME}:{taken.owner}")
            if holder is not None and is_live(holder):
                return False
            moved = (await session.exec(update(ProcessedUpdateRow).where(
                col(ProcessedUpdateRow.update_id) == update_id, col(ProcessedUpdateRow.owner) == taken.owner)
                .values(owner=self.owner, received_at=utcnow()).returning(col(ProcessedUpdateRow.update_id)))).first()
            return moved is not None

    # -- /login in progress on one replica -----------------------------------------------------------------------
    async def login_started(self, user_id: int) -> None:
        """A /login began here: its steps live in this replica's memory, so the user's next updates that reach
        another replica are forwarded here (while it lives, for :data:`LOGIN_FLOW_TTL`)."""
        if self.single_process or not self.advertise_url:
            return
        insert = self.db.upsert_insert()(LoginFlowRow).values(
            user_id=user_id, owner=self.owner, url=self.advertise_url, expires_at=utcnow() + LOGIN_FLOW_TTL)
        async with self.db.write() as session:
            await session.exec(insert.on_conflict_do_update(index_elements=[col(LoginFlowRow.user_id)], set_={
                "owner": insert.excluded.owner, "url": insert.excluded.url, "expires_at": insert.excluded.expires_at}))

    async def login_elsewhere(self, user_id: int) -> str | None:
        """The address of the live replica where this user's /login is in progress, if not this one."""
        if self.single_process:
            return None
        async with self.db.session() as session:
            flow = await session.get(LoginFlowRow, user_id)
            if flow is None or flow.owner == self.owner or flow.expires_at < utcnow():
                return None
            holder = await session.get(LeaseRow, f"{RUNTIME}:{flow.owner}")
        return flow.url if holder is not None and is_live(holder) else None

    async def _prune(self) -> None:
        if time.monotonic() - self._pruned < PRUNE_EVERY:
            return
        self._pruned = time.monotonic()
        async with self.db.write() as session:
            await session.exec(delete(ProcessedUpdateRow).where(
                col(ProcessedUpdateRow.received_at) < utcnow() - UPDATES_KEPT))
            await session.exec(delete(LoginFlowRow).where(col(LoginFlowRow.expires_at) < utcnow()))
