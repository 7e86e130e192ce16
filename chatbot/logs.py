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
    """Values that must never appear in a log line, registered as they become known."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *values: str | None) -> None:
        with self._lock:
            self._secrets.update(v for v in values if v and len(v) >= 6)

    def discard(self, value: str) -> None:
        with self._lock:
            self._secrets.discard(value)

    def redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
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
