"""Structured logging with secrets redacted.

Log lines carry their ``extra=`` fields as ``key=value`` pairs (or one JSON object per line).
Before anything is written, registered secrets (app keys and secrets, tokens, the bot token) and
anything shaped like a bot token or a bearer token are replaced by ``[REDACTED]``.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_PATTERNS = (
    re.compile(r"(?<![0-9])\d{6,12}:[A-Za-z0-9_-]{30,}"),  # Telegram bot token, also inside /bot<token>/
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{16,}"),
    re.compile(r"(?i)(\"?(?:appsecret|app_secret|secretkey|access_token|appkey|approval_key)\"?\s*[:=]\s*\"?)"
               r"[^\s\",}]{8,}"),
    re.compile(r"(?<![A-Za-z0-9])PS[A-Za-z0-9]{34}(?![A-Za-z0-9])"),  # shaped like a KIS app key
    re.compile(r"[A-Za-z0-9+/=_-]{120,}"),  # shaped like a KIS app secret or a token
)
REDACTED = "[REDACTED]"


class SecretRegistry:
    """Values that must never appear in a log line, registered as they become known.

    A value that stops being a secret at a known time (an access token, at its expiry) is registered with
    ``until`` (epoch seconds) and forgotten once that has passed: a token is issued again every day for
    every user, and kept for ever the registry grew by one ~350-character token per user per day, each log
    line redacting against all of them (a sort and a scan per registered value)."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._until: dict[str, float] = {}  # value -> when it stops being secret (epoch seconds)
        self._sorted: list[str] | None = []  # every value, longest first (None: to be sorted again)
        self._lock = threading.Lock()
        self.clock: Callable[[], float] = time.time

    def add(self, *values: str | None, until: float | None = None) -> None:
        """Register ``values``; with ``until``, only until then (a value registered without one stays)."""
        with self._lock:
            fresh = [v for v in values if v and len(v) >= 6]
            if until is None:
                self._secrets.update(fresh)
                for value in fresh:
                    self._until.pop(value, None)
            else:
                for value in fresh:
                    if value not in self._secrets:
                        self._until[value] = max(until, self._until.get(value, until))
                self._prune(self.clock())
            self._sorted = None

    def discard(self, value: str) -> None:
        with self._lock:
            self._secrets.discard(value)
            self._until.pop(value, None)
            self._sorted = None

    def __len__(self) -> int:
        return len(self._secrets) + len(self._until)

    def _prune(self, now: float) -> None:
        for value in [v for v, until in self._until.items() if until <= now]:
            del self._until[value]

    def _longest_first(self) -> list[str]:
        with self._lock:
            if self._sorted is None:
                self._sorted = sorted((*self._secrets, *self._until), key=len, reverse=True)
            return self._sorted

    def redact(self, text: str) -> str:
        for secret in self._longest_first():
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
        return text


SECRETS = SecretRegistry()


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = f"{self.formatTime(record, '%Y-%m-%d %H:%M:%S')} {record.levelname:<7} {record.name}: " \
               f"{record.getMessage()}"
        extras = " ".join(f"{k}={v!r}" if isinstance(v, str) and " " in v else f"{k}={v}"
                          for k, v in _fields(record).items())
        line = f"{base} {extras}" if extras else base
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return SECRETS.redact(line)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                               "logger": record.name, "msg": record.getMessage(), **_fields(record)}
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return SECRETS.redact(json.dumps(doc, ensure_ascii=False, default=str))


def setup_logging(level: str = "INFO", json_lines: bool = False, stream: Any = None,
                  file: str | Path | None = None) -> None:
    """Log to ``stream`` (stderr by default) or, when ``file`` is given, append to that file (created
    0600, rotated at 10 MB, three kept)."""
    handler: logging.Handler
    if file is not None:
        path = Path(file)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=10 << 20, backupCount=3, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every URL at INFO, and the Telegram URL carries the bot token.
    for noisy in ("httpx", "httpcore", "aiohttp.access", "alembic.runtime.migration", "apscheduler",
                  "aiosqlite", "websockets", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # At DEBUG, python-telegram-bot logs whole updates and request payloads, which carry what users
    # type (a /login secret, for one): never below INFO, whatever the bot's level.
    logging.getLogger("telegram").setLevel(max(logging.INFO, root.level))
