"""Settings: a TOML file plus ``KISBOT_<SECTION>_<KEY>`` environment overrides, validated once.

Every key has a default, so the bot starts with no file at all (simulator + SQLite). A bad or
unknown value fails at start-up with one line naming the key (:class:`ConfigError`).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from chatbot.market_hours import parse_windows

ENV_PREFIX = "KISBOT_"

# Two KIS facts the settings are validated against, stated here so that the settings do not import the
# KIS client (tests/test_config.py holds them equal to chatbot.kis.protocol's).
NIGHTLY_MAINTENANCE_KST = "00:00-01:00"  # kis.protocol.NIGHTLY_MAINTENANCE_KST
WS_CLIENT_MAX_SUBSCRIPTIONS = 40  # kis.protocol.WS_CLIENT_MAX_SUBSCRIPTIONS: the shared feed's symbols

Environment = Literal["simulator", "virtual", "real"]  # kis.environment; the code names it Mode (service.views)


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the key."""


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    token: str = ""
    base_url: str = "https://api.telegram.org/bot"
    allowed_users: tuple[int, ...] = ()
    confirmation_ttl_seconds: int = 60
    # Webhook mode (instead of long polling): the public HTTPS URL Telegram posts to (your reverse
    # proxy → http.host:http.port + webhook_path), and the secret Telegram sends back with each call.
    webhook_url: str = ""
    webhook_path: str = "/telegram"
    webhook_secret: str = ""

    def __repr__(self) -> str:  # the bot token is a secret
        return (
            f"TelegramSettings(token={'<set>' if self.token else '<unset>'}, base_url={self.base_url!r}, "
            f"allowed_users={self.allowed_users!r})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class KisSettings:
    environment: Environment = "simulator"
    rest_url: str = ""
    ws_url: str = ""
    # 0 means "the KIS limit of the environment" (real 20/s, virtual 2/s, simulator 20/s).
    requests_per_second: int = 0
    timeout_seconds: float = 10.0
    order_timeout_seconds: float = 15.0
    # An order whose outcome is unknown (a crash while sending, no answer from KIS) is looked up in the
    # day's orders every order_reconcile_interval_seconds until found; it is "not placed" once absent
    # on 3 such looks made at least order_settle_seconds after it was sent.
    order_settle_seconds: float = 60.0
    order_reconcile_interval_seconds: float = 20.0
    # Real-money trading must be switched on explicitly even with environment = "real".
    allow_real_orders: bool = False
    # The operator's key pair for the shared market-data feed that drives price alerts (virtual/real;
    # the simulator needs none). Prefer KISBOT_KIS_MARKET_DATA_APP_KEY / _SECRET.
    market_data_app_key: str = ""
    market_data_app_secret: str = ""
    # -- feed capacity (README "Feed capacity") --
    # More operator market-data keys, each one more 40-symbol WebSocket session shared by every user:
    # comma-separated, secrets in the same order (KISBOT_KIS_MARKET_DATA_APP_KEYS / _SECRETS).
    market_data_app_keys: tuple[str, ...] = ()
    market_data_app_secrets: tuple[str, ...] = ()
    # Simulator mode: how many operator market-data sessions to open (keys made up, as for the first).
    simulator_feed_sessions: int = 1
    # A symbol beyond every session's room is polled over REST on an operator key, at most this many
    # requests a second per key (0: half the environment's limit, the rest left for the key's other use).
    feed_poll_requests_per_second: float = 0.0
    # Telegram ids to whom /status also shows the feed's capacity (slots used of how many, polled symbols).
    feed_status_users: tuple[int, ...] = ()
    max_alerts_per_user: int = 50
    # Distinct symbols one user's alerts may watch. The live feed carries at most 40 symbols for everyone
    # (one KIS WebSocket session), so one user must not be able to take them all.
    max_alert_symbols_per_user: int = 10
    alert_cooldown_seconds: int = 600
    # Conditional orders (/stop, /tp, /trail, /bracket): how long one stays armed unless cancelled, and
    # how many one user may have armed at once.
    conditional_expiry_days: int = 30
    max_conditional_per_user: int = 20
    # Seconds between the conditional orders' upkeep passes: a firing whose outcome reconciliation told
    # (after a restart) is settled by the next pass, and expired orders are disarmed.
    conditional_sync_seconds: float = 2.0
    # US conditional orders (KIS has no US market order): a stop without a typed limit sells at a
    # marketable limit, the trigger (or the crossing trade, if lower) less this percent, down to the US
    # tick. A decimal as text ("1", "0.5"); "0": a US stop needs a typed limit.
    us_stop_slippage_percent: str = "1"
    # KIS maintenance windows, KST, e.g. "23:50-00:10, 05:00-05:30" (KIS publishes no fixed schedule):
    # inside them the bot does not call KIS and says why.
    maintenance_windows: str = ""
    # When KIS usually runs its nightly maintenance (KST): a call that fails inside this window is
    # reported as probable maintenance rather than as KIS not responding. Empty: never.
    nightly_maintenance: str = NIGHTLY_MAINTENANCE_KST
    # Send a hashkey (/uapi/hashkey) with every order. KIS does not require it and its own samples omit
    # it; with it on, a hashkey outage blocks orders.
    use_hashkey: bool = False
    # KIS's master files (종목정보파일), the symbol directory's daily refresh (virtual/real). Empty:
    # no refresh, the snapshot bundled with the bot (dated) is all it knows.
    master_files_url: str = "https://new.real.download.dws.co.kr/common/master/"

    def __repr__(self) -> str:  # the market-data secret stays out of reprs
        return (f"KisSettings(environment={self.environment!r}, rest_url={self.rest_url!r}, ws_url={self.ws_url!r}, "
                f"market_data_key={'<set>' if self.market_data_app_key else '<unset>'})")


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = "sqlite:///./data/kisbot.sqlite3"


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    master_key_file: str = "./data/master.key"


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    seed: int = 20240101
    starting_cash: int = 10_000_000
    tick_interval_seconds: float = 1.0
    host: str = "127.0.0.1"
    port: int = 0


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """The bot's HTTP endpoint: /healthz, /metrics and the webhook. Port 0 turns it off (unless webhook)."""

    host: str = "127.0.0.1"
    port: int = 0
    # Replicas (README, Running replicas): this replica's address as the others reach it, e.g.
    # http://bot1:8080. A /login in progress here gets its user's next webhook updates forwarded here.
    advertise_url: str = ""


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    level: str = "INFO"
    json: bool = False
    # Append logs to this file instead of stderr. `chatbot console` always logs to a file (this one, or
    # CONSOLE_LOG_FILE when empty) so the chat is not interleaved with log lines, unless --verbose.
    file: str = ""


CONSOLE_LOG_FILE = "./data/console.log"


@dataclass(frozen=True, slots=True)
class Settings:
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    kis: KisSettings = field(default_factory=KisSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    simulator: SimulatorSettings = field(default_factory=SimulatorSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)


_SECTION_TYPES: dict[str, type] = {
    "telegram": TelegramSettings,
    "kis": KisSettings,
    "database": DatabaseSettings,
    "security": SecuritySettings,
    "simulator": SimulatorSettings,
    "http": HttpSettings,
    "logging": LoggingSettings,
}


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` (optional) and apply environment overrides; raise :class:`ConfigError` on any bad key."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} not found")
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {str(p)!r} is not valid TOML: {exc}") from None
    for section in raw:
        if section not in _SECTION_TYPES:
            raise ConfigError(f"unknown config section [{section}]")
        if not isinstance(raw[section], dict):
            raise ConfigError(f"[{section}] must be a table")

    sections: dict[str, Any] = {}
    for name, cls in _SECTION_TYPES.items():
        values: dict[str, Any] = {}
        known = {f.name: f for f in dataclasses.fields(cls)}
        for key, value in raw.get(name, {}).items():
            if key not in known:
                raise ConfigError(f"unknown config key {name}.{key}")
            values[key] = _coerce(f"{name}.{key}", value, _field_type(cls, key), from_env=False)
        for key in known:
            env_name = f"{ENV_PREFIX}{name.upper()}_{key.upper()}"
            if env_name in environ:
                values[key] = _coerce(env_name, environ[env_name], _field_type(cls, key), from_env=True)
        sections[name] = cls(**values)
    settings = Settings(**sections)
    _validate(settings)
    return settings


def _field_type(cls: type, key: str) -> Any:
    return typing.get_type_hints(cls)[key]


def _coerce(key: str, value: Any, typ: Any, *, from_env: bool) -> Any:
    origin = typing.get_origin(typ)
    try:
        if origin is Literal:
            allowed = typing.get_args(typ)
            text = str(value).strip().lower()
            if text not in allowed:
                raise ConfigError(f"{key}: must be one of {', '.join(allowed)}, got {value!r}")
            return text
        if typ is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        if typ is int:
            if isinstance(value, bool):
                raise ConfigError(f"{key}: expected an integer, got {value!r}")
            return int(str(value).strip().replace("_", ""))
        if typ is float:
            return float(value)
        if typ is str:
            if not isinstance(value, str) and not from_env:
                raise ConfigError(f"{key}: expected a string, got {value!r}")
            return str(value)
        if origin is tuple or typ is tuple or origin is types.GenericAlias:
            (item_type, _ellipsis) = typing.get_args(typ)
            items: list[Any]
            if isinstance(value, str):
                items = [part for part in value.replace(";", ",").split(",") if part.strip()]
            elif isinstance(value, list):
                items = value
            else:
                raise ConfigError(f"{key}: expected a list, got {value!r}")
            return tuple(_coerce(key, item, item_type, from_env=True) for item in items)
    except ConfigError:
        raise
    except (ValueError, TypeError, InvalidOperation):
        raise ConfigError(f"{key}: expected {getattr(typ, '__name__', typ)}, got {value!r}") from None
    raise ConfigError(f"{key}: unsupported type {typ!r}")  # pragma: no cover - programming error


def _validate(s: Settings) -> None:
    if s.telegram.confirmation_ttl_seconds < 5:
        raise ConfigError("telegram.confirmation_ttl_seconds: must be at least 5")
    for uid in s.telegram.allowed_users:
        if uid <= 0:
            raise ConfigError(f"telegram.allowed_users: {uid} is not a Telegram user id")
    if not s.telegram.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"telegram.base_url: must be an http(s) URL, got {s.telegram.base_url!r}")
    for key in ("rest_url", "ws_url"):
        url = getattr(s.kis, key)
        if url and not url.startswith(("http://", "https://", "ws://", "wss://")):
            raise ConfigError(f"kis.{key}: must be a URL, got {url!r}")
    if s.kis.master_files_url and not s.kis.master_files_url.startswith(("http://", "https://")):
        raise ConfigError(f"kis.master_files_url: must be an http(s) URL or empty, got {s.kis.master_files_url!r}")
    if s.kis.requests_per_second < 0 or s.kis.requests_per_second > 1000:
        raise ConfigError("kis.requests_per_second: must be between 0 (environment default) and 1000")
    for key in ("maintenance_windows", "nightly_maintenance"):
        try:
            parse_windows(getattr(s.kis, key))
        except ValueError:
            raise ConfigError(f"kis.{key}: expected HH:MM-HH:MM[, …], got {getattr(s.kis, key)!r}") from None
    if not 1 <= s.kis.conditional_expiry_days <= 365:
        raise ConfigError("kis.conditional_expiry_days: must be between 1 and 365")
    if not 1 <= s.kis.max_conditional_per_user <= 1000:
        raise ConfigError("kis.max_conditional_per_user: must be between 1 and 1000")
    if not 0 < s.kis.conditional_sync_seconds <= 3600:
        raise ConfigError("kis.conditional_sync_seconds: must be above 0 and at most 3600")
    try:
        slippage = Decimal(s.kis.us_stop_slippage_percent)
    except InvalidOperation:
        slippage = Decimal(-1)
    if not (slippage.is_finite() and 0 <= slippage <= 10):
        raise ConfigError("kis.us_stop_slippage_percent: a percent between 0 and 10, e.g. \"1\"")
    if not 1 <= s.kis.max_alerts_per_user <= 1000:
        raise ConfigError("kis.max_alerts_per_user: must be between 1 and 1000")
    if not 1 <= s.kis.max_alert_symbols_per_user < WS_CLIENT_MAX_SUBSCRIPTIONS:
        raise ConfigError(f"kis.max_alert_symbols_per_user: must be between 1 and {WS_CLIENT_MAX_SUBSCRIPTIONS - 1} "
                          f"(the shared feed carries {WS_CLIENT_MAX_SUBSCRIPTIONS} symbols for all users)")
    if len(s.kis.market_data_app_keys) != len(s.kis.market_data_app_secrets):
        raise ConfigError("kis.market_data_app_keys / market_data_app_secrets: as many secrets as keys, same order")
    if not 1 <= s.kis.simulator_feed_sessions <= 100 or s.kis.feed_poll_requests_per_second < 0:
        raise ConfigError("kis.simulator_feed_sessions: 1..100; kis.feed_poll_requests_per_second: 0 or more")
    if s.kis.timeout_seconds <= 0 or s.kis.order_timeout_seconds <= 0:
        raise ConfigError("kis.timeout_seconds: must be positive")
    if s.kis.order_settle_seconds < 0 or s.kis.order_reconcile_interval_seconds <= 0:
        raise ConfigError("kis.order_settle_seconds / order_reconcile_interval_seconds: must be positive")
    if not s.database.url.startswith(("sqlite", "postgresql", "postgres")):
        raise ConfigError(f"database.url: only sqlite and postgresql URLs are supported, got {s.database.url!r}")
    if s.simulator.starting_cash <= 0:
        raise ConfigError("simulator.starting_cash: must be positive")
    if s.simulator.tick_interval_seconds <= 0:
        raise ConfigError("simulator.tick_interval_seconds: must be positive")
    if not 0 <= s.simulator.port <= 65535:
        raise ConfigError("simulator.port: must be 0..65535")
    if not 0 <= s.http.port <= 65535:
        raise ConfigError("http.port: must be 0..65535")
    if s.telegram.webhook_url and not s.telegram.webhook_url.startswith("https://") \
            and not s.telegram.webhook_url.startswith("http://127.0.0.1"):
        raise ConfigError("telegram.webhook_url: Telegram posts only to https:// URLs")
    if not s.telegram.webhook_path.startswith("/"):
        raise ConfigError("telegram.webhook_path: must start with /")
    if s.logging.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"logging.level: must be DEBUG, INFO, WARNING or ERROR, got {s.logging.level!r}")
