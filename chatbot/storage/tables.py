"""Every table of the bot. Each arrives by an Alembic migration in ``migrations/versions``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint, column
from sqlmodel import Field, SQLModel

from chatbot.storage.types import Amount, UTCDateTime, utcnow


class KisTokenRow(SQLModel, table=True):
    """A cached KIS access token, so a restart reuses it (KIS allows ~1 issuance a minute)."""

    __tablename__ = "kis_tokens"

    key: str = Field(primary_key=True, max_length=64)  # sha256 of environment + app key
    access_token: str  # encrypted (SecretBox, owner = key)
    key_version: int | None = None  # None: written before encryption (upgraded at start-up)
    expires_at: float  # epoch seconds
    issued_at: float
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class SimDocumentRow(SQLModel, table=True):
    """The embedded simulator's state: one JSON document per paper account, plus market and auth."""

    __tablename__ = "sim_documents"

    key: str = Field(primary_key=True, max_length=120)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class UserRow(SQLModel, table=True):
    """A Telegram user the bot has seen."""

    __tablename__ = "users"

    telegram_id: int = Field(primary_key=True, sa_type=BigInteger)
    language: str = Field(default="ko", max_length=8)
    blocked: bool = False  # the user blocked the bot: pushes stop, alerts are paused
    first_seen: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    last_seen: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class PaperAccountRow(SQLModel, table=True):
    """The simulator key pair and account the bot opened for a user in simulator mode.

    These keys exist only inside the embedded simulator; they give access to nothing else.
    """

    __tablename__ = "paper_accounts"

    telegram_id: int = Field(primary_key=True, sa_type=BigInteger)
    app_key: str  # encrypted (SecretBox, owner = telegram id)
    app_secret: str  # encrypted
    account: str = Field(max_length=16)
    key_version: int | None = None  # None: written before encryption (upgraded at start-up)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class PendingOrderRow(SQLModel, table=True):
    """A confirmation card: the exact parameters quoted, waiting for its owner's single press."""

    __tablename__ = "pending_orders"

    id: str = Field(primary_key=True, max_length=32)  # the opaque token in the callback data
    owner_id: int = Field(sa_type=BigInteger, index=True)
    chat_id: int = Field(sa_type=BigInteger)
    message_id: int | None = Field(default=None, sa_type=BigInteger)
    environment: str = Field(max_length=16)
    action: str = Field(max_length=8)  # order | cancel
    side: str = Field(max_length=4)  # buy | sell
    code: str = Field(max_length=12)
    name: str = Field(max_length=80)
    quantity: int
    price: Decimal | None = Field(default=None, sa_type=Amount)  # None: market order
    quoted_price: Decimal = Field(sa_type=Amount)  # the price shown on the card
    currency: str = Field(default="KRW", max_length=3)  # of both prices (chatbot.markets.money.Currency)
    order_no: str | None = Field(default=None, max_length=16)  # cancel: the order to cancel
    branch: str | None = Field(default=None, max_length=8)
    status: str = Field(default="pending", max_length=12, index=True)
    result: str | None = None
    # US orders (revision 0015): KRX or US (a US row's prices are dollars, currency USD)
    market: str = Field(default="KRX", max_length=8)
    exchange: str | None = Field(default=None, max_length=8)  # US: NASDAQ…; KRX cancel/revise: KRX, NXT, SOR
    order_type: str | None = Field(default=None, max_length=8)  # US: LIMIT, LOO, LOC, MOO, MOC
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    # The account it was quoted for (revision 0019): an identity, not a secret (chatbot.service.cards.account_ref);
    # a press when the user's account is another one sends nothing. None: a card made before 0019.
    account_ref: str | None = Field(default=None, max_length=32)


class OrderJournalRow(SQLModel, table=True):
    """Every order attempt that left the bot, keyed by the confirmation it came from."""

    __tablename__ = "order_journal"

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=32, unique=True)  # the pending order id
    owner_id: int = Field(sa_type=BigInteger, index=True)
    environment: str = Field(max_length=16)
    account: str = Field(max_length=16)
    action: str = Field(max_length=8)
    side: str = Field(max_length=4)
    code: str = Field(max_length=12)
    quantity: int
    price: Decimal | None = Field(default=None, sa_type=Amount)
    currency: str = Field(default="KRW", max_length=3)
    original_order_no: str | None = Field(default=None, max_length=16)
    kis_order_no: str | None = Field(default=None, max_length=16)
    # submitting | accepted | rejected | failed | uncertain | not_placed | partially_filled | filled
    status: str = Field(max_length=20, index=True)  # 20 since revision 0016
    msg_cd: str | None = Field(default=None, max_length=16)
    message: str | None = None
    # What reconciliation after a crash needs (see chatbot.service.reconciliation): the order numbers
    # of the day's list for this code and side taken just before sending (None: not taken, or a row
    # older than this column), when the request left (None: it never did), the process that sent it
    # (its runtime lease owner), how many looks at the day's list did not find it, and when the user
    # was told the outcome (None: not yet).
    known_orders: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    sent_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    submitted_by: str | None = Field(default=None, max_length=140)
    absent_looks: int = 0
    checked_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    told_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    # US orders (revision 0015), as on the card
    market: str = Field(default="KRX", max_length=8)
    exchange: str | None = Field(default=None, max_length=8)
    order_type: str | None = Field(default=None, max_length=8)


class OrderEventRow(SQLModel, table=True):
    """One status transition of a journalled order."""

    __tablename__ = "order_events"

    id: int | None = Field(default=None, primary_key=True)
    journal_id: int = Field(foreign_key="order_journal.id", index=True)
    status: str = Field(max_length=20)  # an order journal status; 20 since revision 0016
    detail: str | None = None
    at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    # A fill's: "notice" (one execution notice's own quantity) or "listed" (a cumulative reading of KIS's list of
    # the day's orders); None: any other status, or a fill written before revision 0018 (read as a notice's).
    source: str | None = Field(default=None, max_length=8)


class CredentialRow(SQLModel, table=True):
    """A user's own KIS app key, secret and account; key and secret encrypted, bound to the user."""

    __tablename__ = "credentials"

    telegram_id: int = Field(primary_key=True, sa_type=BigInteger)
    environment: str = Field(max_length=16)
    account: str = Field(max_length=16)
    app_key: str  # encrypted (SecretBox, owner = telegram id, field "app_key")
    app_secret: str  # encrypted (field "app_secret")
    key_hint: str = Field(max_length=16)  # "PSab…9x", for /me without decrypting
    key_version: int
    hts_id: str | None = Field(default=None, max_length=16)  # the tr_key KIS wants for execution notices
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))

    def __repr__(self) -> str:
        return f"CredentialRow(telegram_id={self.telegram_id}, key={self.key_hint}, account={self.account})"


class MasterKeyCheckRow(SQLModel, table=True):
    """A known value encrypted with each master key version: a wrong key is found before anything else."""

    __tablename__ = "master_key_checks"

    version: int = Field(primary_key=True)
    check_value: str
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class LeaseRow(SQLModel, table=True):
    """A process's hold on the database (a running bot, or maintenance such as rotate-key), with an expiry
    its holder renews; see ``chatbot.storage.leases``."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=160)  # "maintenance" or "runtime:<owner>"
    kind: str = Field(max_length=16, index=True)  # runtime | maintenance
    owner: str = Field(max_length=140)  # host:pid:start:nonce
    host: str = Field(max_length=100)
    pid: int
    purpose: str = Field(default="", max_length=40)  # "bot", "console", "rotate-key", …
    acquired_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class AlertRow(SQLModel, table=True):
    """A price alert: fires once when the trade price crosses, or again after a cooldown (repeat)."""

    __tablename__ = "alerts"
    # The feed's owner looks for alerts armed on other replicas since its last look (chatbot.service.replicas).
    __table_args__ = (Index("ix_alerts_status_updated_at", "status", "updated_at"),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(sa_type=BigInteger, index=True)
    chat_id: int = Field(sa_type=BigInteger)
    language: str = Field(default="ko", max_length=8)
    code: str = Field(max_length=12, index=True)
    name: str = Field(max_length=80)
    direction: str = Field(max_length=8)  # above | below
    threshold: Decimal = Field(sa_type=Amount)
    reference_price: Decimal = Field(sa_type=Amount)  # the price when the alert was set
    currency: str = Field(default="KRW", max_length=3)  # of both prices
    percent: str | None = Field(default=None, max_length=12)  # "+5" for a percent alert, as typed
    repeat: bool = False
    cooldown_seconds: int = 600
    status: str = Field(default="armed", max_length=12, index=True)  # armed | cooling | fired | paused | deleted
    fired_count: int = 0
    rearm_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class OutboxRow(SQLModel, table=True):
    """A push to send (alert fired, order filled); written with the event, marked when sent."""

    __tablename__ = "outbox"
    # Two partial indexes (pending rows only), made by migration 0014: see declare_partial_indexes.

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=120, unique=True)
    owner_id: int = Field(sa_type=BigInteger, index=True)
    chat_id: int = Field(sa_type=BigInteger)
    kind: str = Field(max_length=12)  # alert | fill
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=12, index=True)  # pending | sent | dead
    attempts: int = 0
    last_error: str | None = None
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    sent_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class ReportSettingRow(SQLModel, table=True):
    """A user's choice of the daily report at the close (``/report on|off``) and where to push it."""

    __tablename__ = "report_settings"

    telegram_id: int = Field(primary_key=True, sa_type=BigInteger)
    chat_id: int = Field(sa_type=BigInteger)
    language: str = Field(default="ko", max_length=8)
    enabled: bool = Field(default=False, index=True)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class DailyReportRow(SQLModel, table=True):
    """A daily report sent (its push written to the outbox in the same transaction): one per user, market
    and trading day, whichever replica or restart tries again. ``costs`` keeps the average purchase price
    of every holding at that close: the next day's sale of a position sold out is measured against it."""

    __tablename__ = "daily_reports"
    __table_args__ = (UniqueConstraint("telegram_id", "market", "trading_day", name="uq_daily_reports_user_day"),)

    id: int | None = Field(default=None, primary_key=True)
    telegram_id: int = Field(sa_type=BigInteger, index=True)
    market: str = Field(max_length=8)  # KRX | US
    trading_day: str = Field(max_length=10)  # YYYY-MM-DD, the market's date
    costs: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))  # code -> [qty, avg]
    pushed: bool = True  # False: nothing of that market to report for the user (no push), the day is done
    sent_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
class ProcessedUpdateRow(SQLModel, table=True):
    """A Telegram update taken by a replica (webhook mode): Telegram re-sends one it did not see
    acknowledged, perhaps to another replica; the first to insert its id processes it. Pruned after
    :data:`chatbot.service.replicas.UPDATES_KEPT` (Telegram keeps an update a day at most)."""

    __tablename__ = "processed_updates"

    update_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    owner: str = Field(max_length=140)  # the runtime lease's owner that took it
    received_at: dt.datetime = Field(default_factory=utcnow,
                                     sa_column=Column(UTCDateTime(), nullable=False, index=True))


class LoginFlowRow(SQLModel, table=True):
    """A /login in progress on one replica (its steps live in that replica's memory): the replica's
    address, so another replica given the user's next update forwards it there. Until ``expires_at``."""

    __tablename__ = "login_flows"

    user_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    owner: str = Field(max_length=140)  # the runtime lease's owner
    url: str = Field(max_length=300)  # where that replica takes webhook calls
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
class ConditionalOrderRow(SQLModel, table=True):
    """A conditional order (stop-loss, take-profit, trailing stop, bracket): armed by its owner's
    confirmation, placed by the bot exactly once when a trade crosses its trigger.

    ``pending`` (its card shown) → ``armed`` (confirmed) → ``firing`` (crossed: the sell is journalled
    under ``fire_key``) → ``placed`` | ``failed``; or ``cancelled`` / ``expired`` while armed.
    Prices are integers in the price units of ``currency`` (:attr:`Currency.price_units`: whole won;
    1/10,000 dollar), as the alert book counts them; read as Decimal by the service."""

    __tablename__ = "conditional_orders"

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(sa_type=BigInteger, index=True)
    chat_id: int = Field(sa_type=BigInteger)
    language: str = Field(default="ko", max_length=8)
    environment: str = Field(max_length=16)
    market: str = Field(default="KRX", max_length=8)
    currency: str = Field(default="KRW", max_length=3)
    kind: str = Field(max_length=8)  # stop | tp | trail | bracket
    code: str = Field(max_length=12, index=True)
    name: str = Field(max_length=80)
    quantity: int
    stop_price: int | None = Field(default=None, sa_type=BigInteger)  # stop, bracket; trail: the current level
    take_price: int | None = Field(default=None, sa_type=BigInteger)  # tp, bracket
    limit_price: int | None = Field(default=None, sa_type=BigInteger)  # None: sell at market
    trail_percent: str | None = Field(default=None, max_length=8)  # "5" or "2.5"
    high_water: int | None = Field(default=None, sa_type=BigInteger)  # trail: the highest trade since armed
    reference_price: int = Field(sa_type=BigInteger)  # the price when it was set
    card_token: str | None = Field(default=None, max_length=32, index=True)
    status: str = Field(default="pending", max_length=12, index=True)
    fired_leg: str | None = Field(default=None, max_length=8)  # stop | take
    fired_price: int | None = Field(default=None, sa_type=BigInteger)
    fired_time: str | None = Field(default=None, max_length=6)  # HHMMSS of the trade, market time
    fire_key: str | None = Field(default=None, max_length=32)  # the sell's idempotency key (order journal)
    sold_quantity: int | None = None
    order_no: str | None = Field(default=None, max_length=16)
    result: str | None = None
    armed_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    fired_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    # The account it sells on (revision 0019), as on its card: cancelled when the user's account changes, never
    # fired on another one. None: armed before 0019 (cancelled at the user's next change of account).
    account_ref: str | None = Field(default=None, max_length=32)


class WatermarkRow(SQLModel, table=True):
    """Until when something was watched (``feed:market-data``: the market-data feed, by the replica
    owning it): a restart, or a replica coming back when every one was down, takes the time since as a
    feed gap (chatbot.service.watermark). One row per watched thing."""

    __tablename__ = "watermarks"

    name: str = Field(primary_key=True, max_length=60)
    watched_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


def declare_partial_indexes() -> None:
    """Add the outbox's two partial indexes to the metadata, once (the migrations' environment calls
    this, so Alembic compares them as before). Replicas claim the oldest pending push of each chat
    (chatbot.alerts.outbox): "an earlier one pending?"; both indexes hold pending rows only, so sent
    ones never slow the claim down. They are not declared with the table because an index's
    ``postgresql_where`` makes SQLAlchemy import the PostgreSQL dialect to check the argument (~40 ms
    of every SQLite start); the bot itself never reads indexes off the metadata (migrations make them)."""
    table = OutboxRow.__table__  # type: ignore[attr-defined]
    if any(index.name == "ix_outbox_pending" for index in table.indexes):
        return
    pending = column("status") == "pending"
    Index("ix_outbox_pending", table.c.id, postgresql_where=pending, sqlite_where=pending)
    Index("ix_outbox_pending_chat", table.c.chat_id, table.c.id, postgresql_where=pending, sqlite_where=pending)
