"""Everything the bot runs on, wired once: database (migrated), the embedded simulator in
simulator mode, the per-user KIS accounts, the services. Front ends get :class:`Services` only."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from chatbot.alerts.engine import THRESHOLD_UNITS, AlertEngine
from chatbot.alerts.feeds import FeedPlanner, OperatorKey, UserSessions, read_demand
from chatbot.alerts.notices import Notifier
from chatbot.alerts.outbox import OutboxSender
from chatbot.alerts.repository import armed_sides
from chatbot.config import Settings
from chatbot.kis import protocol as p
from chatbot.kis.models import Account
from chatbot.kis.overseas_frames import parse_frame as parse_us_or_krx_frame
from chatbot.kis.overseas_protocol import US_MARKET_DATA_STREAMED, WS_US_NOTICE
from chatbot.kis.rest import KisCredentials, KisEndpoint, KisRestClient
from chatbot.kis.standby import StandbyRealtimeClient
from chatbot.market_hours import MarketCalendar, parse_windows
from chatbot.markets.directory import SymbolDirectory
from chatbot.markets.refresh import MasterRefresher
from chatbot.security.keyring import MasterKeyring
from chatbot.security.secretbox import SecretBox
from chatbot.service.account import AccountService
from chatbot.service.accounts import AccountProvider
from chatbot.service.alerts import AlertService
from chatbot.service.cards import CardStore, current_account_ref
from chatbot.service.conditional import ConditionalOrders, start_conditional, stop_conditional
from chatbot.service.feed_keys import AccountKeys
from chatbot.service.fills import FillWatcher
from chatbot.service.journal import OrderJournal, Settling
from chatbot.service.market_data import MarketData
from chatbot.service.names import NamedNotifier, SymbolNames
from chatbot.service.orders import Orders
from chatbot.service.reconciliation import OrderReconciler
from chatbot.service.registration import Registration
from chatbot.service.replicas import DAILY_REPORTS, MASTER_FILES, RECONCILE, Replicas
from chatbot.service.reports import ReportService
from chatbot.service.services import Operations, Services
from chatbot.service.us_build import build_us
from chatbot.service.us_conditional import UsConditional
from chatbot.service.users import Users
from chatbot.service.views import Mode
from chatbot.storage import Database, vault
from chatbot.storage.credentials import CredentialStore, PaperAccountStore
from chatbot.storage.leases import RUNTIME, Lease, refuse_second_sqlite_bot
from chatbot.storage.master_files import MasterFileStore
from chatbot.storage.tokens import DbTokenStore

if TYPE_CHECKING:  # imported in simulator mode only (the simulator's HTTP server is aiohttp)
    from chatbot.sim.server import KisSimulator, SimulatorOptions

log = logging.getLogger(__name__)
REPORTS_WARM_UP_DELAY = 10.0  # seconds from taking the daily reports' role to their scheduler's first pass


class OutboxDelivery:
    """:attr:`Services.pushes`: the outbox's sender, built before everything that writes pushes (they
    wake it); it sends once the front end starts it with its notifier."""

    def __init__(self, db: Database, on_blocked: Callable[[int], Awaitable[None]], names: SymbolNames) -> None:
        self.sender = OutboxSender(db)
        self.on_blocked = on_blocked  # a user blocked the bot: their alerts pause
        self.names = names  # each push names its stock as its reader reads it

    @property
    def sent(self) -> int:
        return self.sender.sent

    def wake(self) -> None:
        self.sender.wake()

    async def start(self, notifier: Notifier) -> None:
        await self.sender.start(NamedNotifier(notifier, self.names), self.on_blocked)

    async def stop(self) -> None:
        await self.sender.stop()


@dataclass(slots=True)
class Runtime:
    """Everything the process runs, built in order by :meth:`start` (each part is handed what it
    uses when it is made), stopped in reverse by :meth:`aclose`. Front ends get :attr:`services`."""

    settings: Settings
    db: Database
    sim: KisSimulator | None
    mode: Mode
    accounts: AccountProvider
    registration: Registration
    users: Users
    market: MarketData
    orders: Orders
    account: AccountService
    alerts: AlertService
    engine: AlertEngine | None
    fills: FillWatcher
    reconciler: OrderReconciler  # orders whose outcome is unknown, looked up until told
    pushes: OutboxDelivery
    services: Services
    feed_client: KisRestClient | None  # the operator's client for the market-data feed
    lease: Lease  # this process's hold on the database (see chatbot.storage.leases)
    directory_refresh: MasterRefresher  # KIS's master files
    replicas: Replicas  # the once-only work this replica owns (see chatbot.service.replicas)
    feeds: FeedPlanner | None = None  # which session carries which symbol (README "Feed capacity")
    more_feed_clients: tuple[KisRestClient, ...] = ()  # the operator's other market-data keys

    @property
    def sender(self) -> OutboxSender:
        return self.pushes.sender

    def wake_sender(self) -> None:
        self.pushes.wake()

    @classmethod
    async def start(cls, settings: Settings, sim_options: SimulatorOptions | None = None,
                    keyring: MasterKeyring | None = None, *,
                    observe_kis: Callable[[str, float], None] | None = None) -> Runtime:
        """Build and start everything; ``observe_kis`` gets (path, seconds) of every KIS request (metrics)."""
        db = Database(settings.database.url)
        sim: KisSimulator | None = None
        lease: Lease | None = None
        kis = settings.kis
        mode = Mode.from_setting(kis.environment)
        directory = SymbolDirectory.bundled()  # the simulator's universe too, in simulator mode
        early: list[asyncio.Task[Any]] = []  # reads begun ahead of their use (see below)
        try:
            await db.migrate()
            lease = Lease(db, RUNTIME, "bot")
            await lease.acquire()  # refused while rotate-key runs; rotate-key is refused while this is held
            await refuse_second_sqlite_bot(lease)  # SQLite serves one process; replicas need PostgreSQL
            if db.is_sqlite:
                # The alert book's and the feed planner's reads (two GROUP BYs over every alert: ~0.15 CPU s
                # of SQLite at 100,000 alerts) begin now, on the driver's threads, while this start restores
                # the simulator and builds the services; the engine and the planner take them when they
                # start. On SQLite this process is the only one and nothing writes an alert before the bot
                # is up, so what they read now is what they would read then. (PostgreSQL: replicas may write
                # alerts meanwhile; they read at their start, as before.)
                early = [asyncio.create_task(armed_sides(db, THRESHOLD_UNITS), name="early-alert-book"),
                         asyncio.create_task(read_demand(db), name="early-feed-demand")]
            db.start_checkpoints()
            keyring = keyring or await vault.open_keyring(db, settings.security.master_key_file)
            box = SecretBox(keyring)
            await vault.verify(db, box)  # a wrong master key stops here, before anything is written
            await vault.upgrade_plaintext(db, box)
            if mode is Mode.PAPER:
                from chatbot.sim.server import KisSimulator, SimulatorOptions
                from chatbot.storage.sim_state import DbSimStateStore

                s = settings.simulator
                options = sim_options or SimulatorOptions(seed=s.seed, starting_cash=s.starting_cash,
                                                          tick_interval=s.tick_interval_seconds,
                                                          enforce_token_issue_interval=True)
                sim = KisSimulator(options, DbSimStateStore(db), directory=directory)
                await sim.start(s.host)
            rest_url = kis.rest_url or (sim.rest_url(mode.flavour) if sim else p.REST_URLS[mode.flavour])
            ws_url = kis.ws_url or (sim.ws_url(mode.flavour) if sim else p.WS_URLS[mode.flavour])
            endpoint = KisEndpoint(mode.flavour, rest_url, mode.setting)
            credentials, paper = CredentialStore(db, box), PaperAccountStore(db, box)
            accounts = AccountProvider(credentials, paper, endpoint, mode, DbTokenStore(db, box),
                                       requests_per_second=kis.requests_per_second or None,
                                       timeout=kis.timeout_seconds, order_timeout=kis.order_timeout_seconds,
                                       use_hashkey=kis.use_hashkey,
                                       maintenance_windows=parse_windows(kis.nightly_maintenance),
                                       latency_observer=observe_kis, is_etn=directory.is_etn)
            registration = Registration(accounts, credentials, paper, mode)
            users = Users(db)

            # -- notices: the outbox's delivery first (the engine, the fill watcher and reconciliation
            # wake it), the alert engine on the market-data feed, the fill watcher -------------------------
            async def user_blocked_bot(user_id: int) -> None:
                await alerts.user_blocked_bot(user_id)  # built below, before any push can be sent

            pushes = OutboxDelivery(db, user_blocked_bot, SymbolNames(directory))
            feed_client = _feed_client(settings, endpoint, sim is not None)
            # -- feed capacity: every operator key and every registered user's own key (README) --
            # One session per app key: a replica that does not own the feed keeps the operator sessions'
            # subscriptions unconnected (StandbyRealtimeClient) and polls nothing. Users' own sessions (their
            # fills and their own symbols) are opened by the feed's owner only, which holds every user's
            # session lock (chatbot.service.replicas: users' sessions follow the feed).
            # US trades (HDFSCNT0) share the sessions' 40 slots with domestic ones.
            more_feed_clients = _more_feed_clients(settings, endpoint, sim is not None) if feed_client else ()
            registration.operator_app_keys = frozenset(  # /logout never revokes their token
                c.credentials.app_key for c in (feed_client, *more_feed_clients) if c is not None)
            user_sessions = UserSessions(ws_url, parser=parse_us_or_krx_frame)  # US trades and fills too
            feeds = (FeedPlanner(db, [OperatorKey(StandbyRealtimeClient(ws_url, c.approval_key, parser=parse_us_or_krx_frame), c)
                                      for c in (feed_client, *more_feed_clients)],
                                 user_sessions, AccountKeys(db, accounts, mode),
                                 poll_rate=kis.feed_poll_requests_per_second
                                 or p.REQUESTS_PER_SECOND[mode.flavour] / 2,
                                 streams_us=sim is not None or US_MARKET_DATA_STREAMED[mode.flavour])
                     if feed_client else None)
            engine = AlertEngine(db, feeds, pushes.wake) if feeds else None
            if engine is not None and feeds is not None and early:
                engine.early_book, feeds.early_demand = early
            if engine is not None and feeds is not None:
                engine.demand_changed = feeds.review
                registration.keys_changed = feeds.user_changed
            replicas = Replicas(db, lease.owner, advertise_url=settings.http.advertise_url)
            settling = Settling()
            fills = FillWatcher(db, accounts, users, ws_url, p.WS_NOTICE[mode.flavour], pushes.wake,
                                sessions=user_sessions)
            fills.unwritten_order_nos = lambda: settling.unwritten.order_nos
            # ------------------------------------------------------------------------------------------

            calendar = MarketCalendar(parse_windows(kis.maintenance_windows))
            market = MarketData(accounts, directory, mode, calendar,
                                feed_connected=replicas.feed_connected(engine.feed.connected.is_set) if engine else None)
            cards = CardStore(db, settings.telegram.confirmation_ttl_seconds,
                              account_ref_of=lambda user_id: current_account_ref(accounts, mode, user_id))
            registration.account_changed.append(cards.void_pending)  # then conditional orders' (below)
            journal = OrderJournal(db)
            reconciler = OrderReconciler(db, accounts, journal, cards, users, directory, mode, settling,
                                         process_id=lease.owner, settle_seconds=kis.order_settle_seconds,
                                         interval_seconds=kis.order_reconcile_interval_seconds,
                                         watch_fills=fills.watch, wake_sender=pushes.wake)
            orders = Orders(accounts, cards, journal, market, mode, settling, allow_real_orders=kis.allow_real_orders,
                            process_id=lease.owner, watch_fills=fills.watch, on_uncertain=reconciler.wake,
                            renew_paper_account=registration.reset_paper if mode is Mode.PAPER else None)
            account = AccountService(accounts, market, cards, mode)
            alerts = AlertService(db, engine, accounts, market, max_per_user=kis.max_alerts_per_user,
                                  max_symbols_per_user=kis.max_alert_symbols_per_user,
                                  cooldown_seconds=kis.alert_cooldown_seconds, feeds=feeds)
            conditional = (ConditionalOrders(
                db, accounts, cards, journal, market, mode, settling, process_id=lease.owner,
                expiry_days=kis.conditional_expiry_days, max_per_user=kis.max_conditional_per_user,
                sync_seconds=kis.conditional_sync_seconds,
                allow_real_orders=kis.allow_real_orders, watch_fills=fills.watch, on_uncertain=reconciler.wake,
                wake_sender=pushes.wake) if engine is not None else None)
            us = build_us(accounts, directory, orders, alerts, always_open=sim.options.us_always_open if sim else False)
            fills.us_notice_tr, fills.us_names = WS_US_NOTICE[mode.flavour], us.market.name_of  # US fills too
            if conditional is not None:
                registration.account_changed.append(conditional.account_changed)
            if conditional is not None:  # /stop, /tp, /trail, /bracket on US stocks
                conditional.us = UsConditional(us.market, Decimal(kis.us_stop_slippage_percent))
            # its first pass loads the holiday calendars: after the bot is up, on a thread
            reports = ReportService(db, accounts, mode, wake_sender=pushes.wake, first_pass_delay=REPORTS_WARM_UP_DELAY,
                                    names=SymbolNames(directory))
            if conditional is not None:
                reports.armed_orders = conditional.armed_lines
            services = Services(mode, market, orders, account, alerts, registration, users, pushes,
                                Operations(orders, accounts, fills, engine, pushes, feeds=feeds,
                                           feed_status_users=frozenset(kis.feed_status_users)),
                                allowed_users=frozenset(settings.telegram.allowed_users), reports=reports,
                                replicas=replicas, conditional=conditional, us=us)
            # KIS's master files: downloaded in virtual/real mode; in simulator mode only a stored copy.
            directory_refresh = MasterRefresher(directory, MasterFileStore(db), kis.master_files_url,
                                                download=mode is not Mode.PAPER)
            directory_refresh.may_download = lambda: replicas.owns(MASTER_FILES)
            await orders.recover()
        except BaseException:
            await _drop_unused(early)
            if sim is not None:
                await sim.stop()
            if lease is not None:
                await lease.release()
            await db.dispose()
            raise
        runtime = cls(settings, db, sim, mode, accounts, registration, users, market, orders, account, alerts,
                      engine, fills, reconciler, pushes, services, feed_client, lease, directory_refresh, replicas,
                      feeds, more_feed_clients)
        # Once-only work, each part owned by one replica (on SQLite: this process): the feed, each
        # user's fill feed, reconciliation (in the background: start-up does not wait for KIS), the
        # master-file downloads.
        if engine is not None:
            # the conditional orders' trigger engine rides the feed: after it is up, before reconciliation
            replicas.feed_role(engine, *_conditional_hooks(conditional, engine, mode, calendar, replicas))
        replicas.fill_roles(fills)
        replicas.add(RECONCILE, lambda since: _started(reconciler.start), reconciler.stop)
        replicas.add(MASTER_FILES, lambda since: _nothing(), _nothing)
        replicas.add(DAILY_REPORTS, lambda since: _started(reports.start), reports.stop)  # at each market's close
        try:
            await replicas.start()
        finally:
            if engine is not None and feeds is not None:
                engine.early_book = feeds.early_demand = None  # taken by their start, on the feed's owner (us)
            await _drop_unused(early)
        await fills.resume_recent()
        directory_refresh.start()
        log.info("runtime ready", extra={"mode": mode.value, "kis": endpoint.rest_url, "alerts": engine is not None})
        return runtime

    async def aclose(self) -> None:
        await self.replicas.stop()
        await self.directory_refresh.stop()
        await self.reconciler.stop()
        await self.pushes.stop()
        if self.engine is not None:
            await self.engine.stop()
        await self.fills.stop()
        await self.fills.sessions.aclose()  # users' sessions the feed planner opened (README "Feed capacity")
        await self.orders.aclose()  # outcomes still waiting for the database: one last try
        if self.feed_client is not None:
            await self.feed_client.aclose()
        for client in self.more_feed_clients:
            await client.aclose()
        await self.accounts.aclose()
        if self.sim is not None:
            await self.sim.stop()
        await self.lease.release()
        await self.db.dispose()


async def _drop_unused(reads: list[asyncio.Task[Any]]) -> None:
    """Early reads nobody took (no feed, or the start failed): cancelled, their outcome discarded."""
    for read in reads:
        read.cancel()  # nothing, if it is done
    await asyncio.gather(*reads, return_exceptions=True)


async def _started(start: Callable[[], None]) -> None:
    start()


def _conditional_hooks(conditional: ConditionalOrders | None, engine: AlertEngine, mode: Mode,
                       calendar: MarketCalendar, replicas: Replicas) -> tuple[
        Callable[[float | None], Awaitable[None]] | None, Callable[[], Awaitable[None]] | None,
        Callable[[Callable[[str, float], list[int]]], Awaitable[int]] | None]:
    """The conditional orders' trigger engine starts on the feed's owner once the feed is up (before
    reconciliation, which a firing interrupted by a crash relies on) and stops before the feed. With
    several replicas, the others arm, list and cancel through the database, and the owner adopts."""
    if conditional is None:
        return None, None, None
    conditional.replicated = not replicas.single_process
    replicas.unwatched.append(lambda: conditional.engine.unwatched_since() if conditional.engine is not None else None)
    conditional.feed_capacity = lambda: engine.feed.max_subscriptions  # the planner's slots change

    async def start(since: float | None) -> None:
        await start_conditional(conditional, engine.feed, mode, calendar, since)

    async def stop() -> None:
        await stop_conditional(conditional)

    return start, stop, conditional.adopt_armed


async def _nothing() -> None:
    return None


def _feed_client(settings: Settings, endpoint: KisEndpoint, simulator: bool) -> KisRestClient | None:
    """The operator's client for the shared market-data feed (approval keys), or None without keys."""
    kis = settings.kis
    if simulator and not kis.market_data_app_key:  # the simulator accepts any well-formed pair
        creds = KisCredentials("PS" + secrets.token_hex(17), secrets.token_urlsafe(135), Account("00000000", "01"))
    elif kis.market_data_app_key and kis.market_data_app_secret:
        creds = KisCredentials(kis.market_data_app_key, kis.market_data_app_secret, Account("00000000", "01"))
    else:
        log.warning("price alerts are off: no kis.market_data_app_key configured")
        return None
    return KisRestClient(endpoint, creds)


def _more_feed_clients(settings: Settings, endpoint: KisEndpoint, simulator: bool) -> tuple[KisRestClient, ...]:
    """The operator's other market-data keys (kis.market_data_app_keys; in simulator mode as many made-up
    pairs as kis.simulator_feed_sessions asks for), each one more 40-symbol session."""
    kis = settings.kis
    pairs = list(zip(kis.market_data_app_keys, kis.market_data_app_secrets, strict=True))
    if simulator and not pairs:
        pairs = [("PS" + secrets.token_hex(17), secrets.token_urlsafe(135))
                 for _ in range(kis.simulator_feed_sessions - 1)]
    return tuple(KisRestClient(endpoint, KisCredentials(key, secret, Account("00000000", "01")))
                 for key, secret in pairs)
