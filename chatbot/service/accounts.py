"""Which KIS account a user trades on, and the client and broker that talk to it.

In simulator mode every user gets a paper account on the embedded simulator the first time they
need one (a fresh key pair and account number, persisted). In virtual and real modes users bring
their own credentials (registration flow); without them, account commands say how to register.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from chatbot import broker as b
from chatbot.kis import protocol as p
from chatbot.kis.domestic_broker import DomesticBroker
from chatbot.kis.models import Account
from chatbot.kis.orders import OrderSubmitter
from chatbot.kis.overseas import KisOverseasClient
from chatbot.kis.rest import USER_AGENT, KisCredentials, KisEndpoint, KisRestClient, tls_for
from chatbot.kis.token import TokenStore
from chatbot.kis.us_broker import UsBroker
from chatbot.service.errors import UserError
from chatbot.service.views import Mode
from chatbot.storage.credentials import CredentialStore, PaperAccountStore

MAX_CACHED_CLIENTS = 2_000
# The users' clients share connection pools, spread by app key. httpcore looks at every connection of
# a pool (a poll(2) for each idle one) on every request: one pool of 32 keep-alive connections cost
# ~1 ms of CPU per /price at 50 concurrent users, a fifth of all the process did per command.
# Every connection of a pool is kept alive: with half kept, bursts over four per pool (50 concurrent users)
# closed connections only to open new ones a moment later (3–25 per second against the simulator), ~0.1 ms
# of CPU per /price on both ends (bench.bot_roundtrip, 50 users: CPU per command 1.08–1.09× → 1.04× the bare bot's).
HTTP_POOLS = 16
POOL_CONNECTIONS = 8


@dataclass(slots=True)
class UserAccount:
    """A user's KIS account. The domestic service path talks to ``broker`` (the broker port); ``client``
    stays for what lies outside the port (reports, the fill-notice session, the US broker over it,
    reconciliation's lookups), ``submitter`` is the broker's own once-only submitter."""

    client: KisRestClient
    submitter: OrderSubmitter
    broker: b.Broker  # KRX, in won: a DomesticBroker over this client and submitter
    account: Account

    @classmethod
    def of(cls, client: KisRestClient, is_etn: Callable[[str], bool] | None = None) -> UserAccount:
        """The account behind ``client``: one submitter (one order at a time) and one broker over both.
        ``is_etn``: whether a code is an ETN's (the symbol directory's word): its orders name it Q + code."""
        submitter = OrderSubmitter(client)
        return cls(client, submitter, DomesticBroker(client, submitter, is_etn=is_etn), client.account)

    def broker_for(self, market: str) -> b.Broker | UsBroker:
        """The broker port for ``market``'s orders: KRX the account's own; US a UsBroker over the same client
        (listings and look-ups: no exchange lookup, which only placing an order needs)."""
        return UsBroker(KisOverseasClient(self.client)) if market == "US" else self.broker


class AccountProvider:
    def __init__(self, credentials: CredentialStore, paper: PaperAccountStore, endpoint: KisEndpoint, mode: Mode,
                 token_store: TokenStore, *, requests_per_second: int | None = None, timeout: float = 10.0,
                 order_timeout: float = 15.0, use_hashkey: bool = False,
                 maintenance_windows: p.TimeWindows = p.NIGHTLY_MAINTENANCE_WINDOWS,
                 latency_observer: Callable[[str, float], None] | None = None,
                 is_etn: Callable[[str], bool] | None = None) -> None:
        self.credentials = credentials
        self.paper = paper
        self.endpoint = endpoint
        self.mode = mode
        self.token_store = token_store
        self.requests_per_second = requests_per_second
        self.timeout = timeout
        self.order_timeout = order_timeout
        self.use_hashkey = use_hashkey
        self.maintenance_windows = maintenance_windows
        self._pools: list[httpx.AsyncClient | None] = [None] * HTTP_POOLS
        self._cache: OrderedDict[int, UserAccount] = OrderedDict()
        self.latency_observer = latency_observer  # (path, seconds) of every KIS request, for metrics
        # Whether a KRX code is an ETN's (the symbol directory knows): KIS takes an ETN's orders as Q + code (§4.1),
        # and its bare six characters lie in the ELWs' code space.
        self.is_etn = is_etn
        self._lock = asyncio.Lock()

    async def for_user(self, telegram_id: int) -> UserAccount:
        cached = self._cache.get(telegram_id)
        if cached is not None:
            self._cache.move_to_end(telegram_id)
            return cached
        async with self._lock:
            cached = self._cache.get(telegram_id)
            if cached is not None:
                return cached
            client = self.client_for(await self._credentials(telegram_id))
            account = UserAccount.of(client, self.is_etn)
            self._cache[telegram_id] = account
            if len(self._cache) > MAX_CACHED_CLIENTS:
                self._cache.popitem(last=False)
            return account

    async def current(self, telegram_id: int) -> UserAccount:
        """The user's account as the database has it now: their credentials (or paper account) read afresh,
        not taken from this process's cache — another replica's /login, /logout or /reset forgets only its own
        cache. What a press and a firing check a card's or an order's account against, and send on. The cached
        client is kept when it is for the same credentials (its token and its submitter with it), else replaced.
        Raises :class:`UserError` ``not_registered`` as :meth:`for_user` does."""
        credentials = await self._credentials(telegram_id)
        async with self._lock:
            cached = self._cache.get(telegram_id)
            if cached is not None and cached.client.credentials == credentials:
                self._cache.move_to_end(telegram_id)
                return cached
            account = UserAccount.of(self.client_for(credentials), self.is_etn)
            self._cache[telegram_id] = account
            self._cache.move_to_end(telegram_id)
            if len(self._cache) > MAX_CACHED_CLIENTS:
                self._cache.popitem(last=False)
            return account

    async def _credentials(self, telegram_id: int) -> KisCredentials:
        own = await self.credentials.load(telegram_id)
        if own is not None:
            return own
        if self.mode is not Mode.PAPER:
            raise UserError("not_registered")
        return await self.paper.get_or_create(telegram_id)

    def client_for(self, credentials: KisCredentials) -> KisRestClient:
        """A client for credentials not yet saved (registration checks them by issuing a token)."""
        client = KisRestClient(self.endpoint, credentials, self.token_store,
                               requests_per_second=self.requests_per_second, timeout=self.timeout,
                               order_timeout=self.order_timeout, http=self._pool(credentials.app_key),
                               use_hashkey=self.use_hashkey,
                               maintenance_windows=self.maintenance_windows)
        client.latency_observer = self.latency_observer
        return client

    def _pool(self, app_key: str) -> httpx.AsyncClient:
        """The connection pool of an app key's client: one of :data:`HTTP_POOLS`, made on first use."""
        index = zlib.crc32(app_key.encode()) % HTTP_POOLS
        pool = self._pools[index]
        if pool is None:
            pool = self._pools[index] = httpx.AsyncClient(
                base_url=self.endpoint.rest_url, timeout=self.timeout, verify=tls_for(self.endpoint.rest_url),
                limits=httpx.Limits(max_connections=POOL_CONNECTIONS, max_keepalive_connections=POOL_CONNECTIONS),
                headers={"User-Agent": USER_AGENT})
        return pool

    async def notice_key(self, telegram_id: int) -> str | None:
        """What to subscribe execution notices with (``tr_key``): KIS keys them by the user's HTS id.
        Without one there is nothing to subscribe with — the account number works only on the simulator,
        so it stands in on the embedded simulator and nowhere else (None)."""
        row = await self.credentials.info(telegram_id)
        if row is not None and row.hts_id:
            return row.hts_id
        if self.mode is Mode.PAPER:  # the embedded simulator
            return (await self.for_user(telegram_id)).account.cano
        return None

    def cached(self) -> list[UserAccount]:
        return list(self._cache.values())

    def forget(self, telegram_id: int) -> None:
        """Drop the cached client (credentials changed or removed). This process's only: another replica's
        cache keeps the old client until it reads the credentials again (:meth:`current`)."""
        self._cache.pop(telegram_id, None)

    async def aclose(self) -> None:
        self._cache.clear()
        for pool in self._pools:
            if pool is not None:
                await pool.aclose()
