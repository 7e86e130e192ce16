"""Everything the bot runs on, wired once: database (migrated), the embedded simulator in
simulator mode, the per-user KIS accounts and the trading service. Front ends take it as it is."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chatbot.config import Settings
from chatbot.kis import protocol as p
from chatbot.kis.rest import KisEndpoint
from chatbot.security.keyring import MasterKeyring
from chatbot.security.secretbox import SecretBox
from chatbot.service.accounts import AccountProvider
from chatbot.service.confirmations import PendingOrders
from chatbot.service.journal import OrderJournal
from chatbot.service.registration import Registration
from chatbot.service.trading import TradingService
from chatbot.service.users import Users
from chatbot.service.views import Mode
from chatbot.sim.server import KisSimulator, SimulatorOptions
from chatbot.storage import Database, vault
from chatbot.storage.credentials import CredentialStore, PaperAccountStore
from chatbot.storage.sim_state import DbSimStateStore
from chatbot.storage.tokens import DbTokenStore
from chatbot.symbols import SymbolDirectory

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

    @classmethod
    async def start(cls, settings: Settings, sim_options: SimulatorOptions | None = None,
                    keyring: MasterKeyring | None = None) -> "Runtime":
        keyring = keyring or MasterKeyring.load(settings.security.master_key_file)
        box = SecretBox(keyring)
        db = Database(settings.database.url)
        sim: KisSimulator | None = None
        kis = settings.kis
        mode = MODES[kis.environment]
        try:
            await db.migrate()
            await vault.verify(db, box)  # a wrong master key stops here, before anything is written
            await vault.upgrade_plaintext(db, box)
            if kis.environment == "simulator":
                s = settings.simulator
                options = sim_options or SimulatorOptions(seed=s.seed, starting_cash=s.starting_cash,
                                                          tick_interval=s.tick_interval_seconds,
                                                          enforce_token_issue_interval=True)
                sim = KisSimulator(options, DbSimStateStore(db))
                await sim.start(s.host)
                endpoint = KisEndpoint("real", kis.rest_url or sim.rest_url("real"), "simulator")
            else:
                flavour: p.Flavour = "virtual" if kis.environment == "virtual" else "real"
                endpoint = KisEndpoint(flavour, kis.rest_url or p.REST_URLS[flavour], kis.environment)
            credentials, paper = CredentialStore(db, box), PaperAccountStore(db, box)
            accounts = AccountProvider(credentials, paper, endpoint, mode, DbTokenStore(db, box),
                                       requests_per_second=kis.requests_per_second or None,
                                       timeout=kis.timeout_seconds, order_timeout=kis.order_timeout_seconds)
            pending = PendingOrders(db, settings.telegram.confirmation_ttl_seconds)
            trading = TradingService(accounts, pending, OrderJournal(db), SymbolDirectory.bundled(), mode,
                                     allow_real_orders=kis.allow_real_orders)
            await trading.recover()
        except BaseException:
            if sim is not None:
                await sim.stop()
            await db.dispose()
            raise
        registration = Registration(accounts, credentials, paper, mode)
        trading.on_reset = registration.reset_paper
        log.info("runtime ready", extra={"mode": mode.value, "kis": endpoint.rest_url})
        return cls(settings, db, sim, accounts, trading, registration, Users(db), mode)

    async def aclose(self) -> None:
        await self.accounts.aclose()
        if self.sim is not None:
            await self.sim.stop()
        await self.db.dispose()
