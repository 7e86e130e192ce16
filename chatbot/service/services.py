"""The service surface: everything a front end (Telegram, the console) may use, built once by the
runtime and handed over whole. A front end touches nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chatbot.alerts.engine import AlertEngine
from chatbot.alerts.feeds import FeedCapacity, FeedPlanner
from chatbot.alerts.notices import Notifier
from chatbot.service.account import AccountService
from chatbot.service.accounts import AccountProvider
from chatbot.service.alerts import AlertService
from chatbot.service.conditional import ConditionalOrders
from chatbot.service.fills import FillWatcher
from chatbot.service.market_data import MarketData
from chatbot.service.orders import Orders
from chatbot.service.registration import Registration
from chatbot.service.replicas import Replicas
from chatbot.service.reports import ReportService
from chatbot.service.users import Users
from chatbot.service.views import Mode


class PushDelivery(Protocol):
    """The outbox's sender. Pushes (alerts, fills, outcomes told late) wait in the outbox until the
    front end that sends them starts the delivery with its notifier; it stops it before it stops
    sending, so the push in hand is delivered and marked."""

    @property
    def sent(self) -> int: ...

    async def start(self, notifier: Notifier) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Figures:
    """What the bot has done since it started, and whether its feed is up (metrics, health)."""

    orders_by_outcome: dict[str, int]  # confirmed cards
    alerts_fired: int
    feed_reconnects: int  # the market-data feed's and the fill feeds'
    feed_connected: bool | None  # the market-data feed; None: none configured
    pushes_sent: int
    kis_rate_limit_wait_seconds: float  # waiting for KIS's per-second limit, every cached client
    kis_rate_limit_retries: int  # queries retried after KIS's EGW00201


class Operations:
    """How the bot is doing, read on demand."""

    def __init__(self, orders: Orders, accounts: AccountProvider, fills: FillWatcher, engine: AlertEngine | None,
                 pushes: PushDelivery, *, feeds: FeedPlanner | None = None,
                 feed_status_users: frozenset[int] = frozenset()) -> None:
        self.orders = orders
        self.accounts = accounts
        self.fills = fills
        self.engine = engine
        self.pushes = pushes
        self.feeds = feeds  # the feed planner (README "Feed capacity")
        self.feed_status_users = feed_status_users

    def feed_capacity(self, user_id: int) -> FeedCapacity | None:
        """The feed's slots used of how many, for the operator (kis.feed_status_users); None for others."""
        if self.feeds is None or user_id not in self.feed_status_users:
            return None
        return self.feeds.capacity()

    def figures(self) -> Figures:
        engine = self.engine
        clients = [account.client for account in self.accounts.cached()]
        return Figures(
            orders_by_outcome=dict(self.orders.outcomes),
            alerts_fired=engine.fired if engine else 0,
            feed_reconnects=(engine.feed.reconnects if engine else 0) + self.fills.reconnects(),
            feed_connected=engine.feed.connected.is_set() if engine else None,
            pushes_sent=self.pushes.sent,
            kis_rate_limit_wait_seconds=sum(c.pacer.waited_seconds for c in clients),
            kis_rate_limit_retries=sum(c.rate_limit_retries for c in clients))


@dataclass(frozen=True, slots=True)
class Services:
    """Built by :class:`chatbot.runtime.Runtime`; the only thing front ends are given."""

    mode: Mode
    market: MarketData  # symbols, quotes, charts, /status
    orders: Orders  # cards for /buy, /sell, /cancel, /modify; Confirm and Cancel on any card
    account: AccountService  # balance, open orders, the paper-account reset card
    alerts: AlertService
    registration: Registration  # /login, /logout, /me
    users: Users
    pushes: PushDelivery
    operations: Operations
    allowed_users: frozenset[int] = frozenset()  # who may use the bot (telegram.allowed_users); empty: anyone
    reports: ReportService | None = None  # /report, /history and the daily report at the close
    replicas: Replicas | None = None  # once-only work among replicas: the poller, webhook updates taken once
    conditional: ConditionalOrders | None = None  # /stop, /tp, /trail, /bracket, /stops (None: no market-data feed)
