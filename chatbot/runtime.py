"""Everything the bot runs on, wired once: database (migrated), the embedded simulator in
simulator mode, the per-user KIS accounts and the trading service. Front ends take it as it is."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from chatbot.alerts.engine import AlertEngine
from chatbot.alerts.outbox import OutboxSender, Push
from chatbot.config import Settings
from chatbot.kis import protocol as p
from chatbot.kis.realtime import RealtimeClient
from chatbot.kis.rest import KisCredentials, KisEndpoint, KisRestClient
from chatbot.security.keyring import MasterKeyring
from chatbot.security.secretbox import SecretBox
from chatbot.kis.models import Account
from chatbot.market_hours import MarketCalendar, parse_windows
from chatbot.service.accounts import AccountProvider
from chatbot.service.alerts import AlertService
from chatbot.service.fills import FillWatcher
from chatbot.service.confirmations import PendingOrders
from chatbot.service.journal import OrderJournal
from chatbot.service.reconciliation import OrderReconciler
from chatbot.service.registration import Registration
from chatbot.service.trading import TradingService
from chatbot.service.users import Users
from chatbot.service.views import Mode
from chatbot.sim.server import KisSimulator, SimulatorOptions
from chatbot.storage import Database, vault
from chatbot.storage.credentials import CredentialStore, PaperAccountStore
from chatbot.storage.leases import RUNTIME, Lease
from chatbot.storage.sim_state import DbSimStateStore
from chatbot.storage.tokens import DbTokenStore
from chatbot.markets.directory import SymbolDirectory
from chatbot.markets.refresh import MasterRefresher
from chatbot.storage.master_files import MasterFileStore

log = logging.getLogger(__name__)
MODES = {"simulator": Mode.PAPER, "virtual": Mode.VIRTUAL, "real": Mode.REAL}


@dataclass(slots=True)
class Runtime:
    settings: Settings
    db: Database
    sim: KisSimulator | None
    accounts: AccountProvider
    trading: TradingService
    registration: Registration
    users: Users
    mode: Mode
    alerts: AlertService
    engine: AlertEngine | None
    fills: FillWatcher
    market_data: KisRestClient | None
    sender: OutboxSender | None = None
    directory_refresh: MasterRefresher | None = None
    lease: Lease | None = None  # this process's hold on the database (see chatbot.storage.leases)
    reconciler: OrderReconciler | None = None  # orders whose outcome is unknown, looked up until told

    def wake_sender(self) -> None:
        if self.sender is not None:
            self.sender.wake()

    async def start_pushes(self, push: Push) -> OutboxSender:
        """Start delivering the outbox through ``push`` (the front end's sender)."""
        self.sender = OutboxSender(self.db, push, self.alerts.user_blocked_bot)
        await self.sender.start()
        self.sender.wake()
        return self.sender

    @classmethod
    async def start(cls, settings: Settings, sim_options: SimulatorOptions | None = None,
                    keyring: MasterKeyring | None = None) -> "Runtime":
        db = Database(settings.database.url)
        sim: KisSimulator | None = None
        lease: Lease | None = None
        kis = settings.kis
        mode = MODES[kis.environment]
        directory = SymbolDirectory.bundled()  # the simulator's universe too, in simulator mode
        try:
            await db.migrate()
            lease = Lease(db, RUNTIME, "bot")
            await lease.acquire()  # refused while rotate-key runs; rotate-key is refused while this is held
            db.start_checkpoints()
            keyring = keyring or await vault.open_keyring(db, settings.security.master_key_file)
            box = SecretBox(keyring)
            await vault.verify(db, box)  # a wrong master key stops here, before anything is written
            await vault.upgrade_plaintext(db, box)
            if kis.environment == "simulator":
                s = settings.simulator
                options = sim_options or SimulatorOptions(seed=s.seed, starting_cash=s.starting_cash,
                                                          tick_interval=s.tick_interval_seconds,
                                                          enforce_token_issue_interval=True)
                sim = KisSimulator(options, DbSimStateStore(db), directory=directory)
                await sim.start(s.host)
                endpoint = KisEndpoint("real", kis.rest_url or sim.rest_url("real"), "simulator")
            else:
                flavour: p.Flavour = "virtual" if kis.environment == "virtual" else "real"
                endpoint = KisEndpoint(flavour, kis.rest_url or p.REST_URLS[flavour], kis.environment)
            credentials, paper = CredentialStore(db, box), PaperAccountStore(db, box)
            accounts = AccountProvider(credentials, paper, endpoint, mode, DbTokenStore(db, box),
                                       requests_per_second=kis.requests_per_second or None,
                                       timeout=kis.timeout_seconds, order_timeout=kis.order_timeout_seconds,
                                       use_hashkey=kis.use_hashkey,
                                       maintenance_windows=parse_windows(kis.nightly_maintenance))
            pending = PendingOrders(db, settings.telegram.confirmation_ttl_seconds)
            calendar = MarketCalendar(parse_windows(kis.maintenance_windows))
            trading = TradingService(accounts, pending, OrderJournal(db), directory, mode,
                                     allow_real_orders=kis.allow_real_orders, calendar=calendar,
                                     process_id=lease.owner)
            await trading.recover()
        except BaseException:
            if sim is not None:
                await sim.stop()
            if lease is not None:
                await lease.release()
            await db.dispose()
            raise
        registration = Registration(accounts, credentials, paper, mode)
        trading.on_reset = registration.reset_paper
        users = Users(db)
        flavour_ws: p.Flavour = "virtual" if kis.environment == "virtual" else "real"
        ws_url = kis.ws_url or (sim.ws_url("real") if sim is not None else p.WS_URLS[flavour_ws])
        holder: list[Runtime] = []

        def wake() -> None:
            if holder:
                holder[0].wake_sender()

        market_data = _market_data_client(settings, endpoint, sim is not None)
        engine = AlertEngine(db, RealtimeClient(ws_url, market_data.approval_key), wake) if market_data else None
        alerts = AlertService(db, engine, accounts, trading, max_per_user=kis.max_alerts_per_user,
                              max_symbols_per_user=kis.max_alert_symbols_per_user,
                              cooldown_seconds=kis.alert_cooldown_seconds)
        fills = FillWatcher(db, accounts, users, ws_url, p.WS_NOTICE[flavour_ws], wake)
        fills.unwritten_order_nos = lambda: trading.unwritten.order_nos
        trading.before_order = fills.watch
        reconciler = OrderReconciler(db, accounts, trading, users, settle_seconds=kis.order_settle_seconds,
                                     interval_seconds=kis.order_reconcile_interval_seconds,
                                     watch_fills=fills.watch, wake_sender=wake)
        trading.on_uncertain = reconciler.wake
        if engine is not None:
            trading.feed_connected = engine.feed.connected.is_set
        runtime = cls(settings, db, sim, accounts, trading, registration, users, mode, alerts, engine, fills,
                      market_data, lease=lease, reconciler=reconciler)
        holder.append(runtime)
        if engine is not None:
            await engine.start()
        await fills.resume_recent()
        reconciler.start()  # in the background: start-up does not wait for KIS
        # KIS's master files: downloaded in virtual/real mode; in simulator mode only a stored copy.
        runtime.directory_refresh = MasterRefresher(directory, MasterFileStore(db), kis.master_files_url,
                                                    download=kis.environment != "simulator")
        runtime.directory_refresh.start()
        log.info("runtime ready", extra={"mode": mode.value, "kis": endpoint.rest_url, "alerts": engine is not None})
        return runtime

    async def aclose(self) -> None:
        if self.directory_refresh is not None:
            await self.directory_refresh.stop()
        if self.reconciler is not None:
            await self.reconciler.stop()
        if self.sender is not None:
            await self.sender.stop()
        if self.engine is not None:
            await self.engine.stop()
        await self.fills.stop()
        await self.trading.aclose()  # outcomes still waiting for the database: one last try
        if self.market_data is not None:
            await self.market_data.aclose()
        await self.accounts.aclose()
        if self.sim is not None:
            await self.sim.stop()
        if self.lease is not None:
            await self.lease.release()
        await self.db.dispose()


def _market_data_client(settings: Settings, endpoint: KisEndpoint, simulator: bool) -> KisRestClient | None:
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
