"""The security pass: forged and reused callbacks, strangers, groups, secrets in DEBUG logs, REAL mode
shown plainly and off unless enabled, SQL only through the ORM."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest

from chatbot.config import KisSettings
from chatbot.console.botapi import BotApiEmulator
from chatbot.logs import setup_logging
from chatbot.sim.server import KisSimulator, SimulatorOptions
from tests.conftest import SQLITE_ONLY
from tests.harness import TOKEN, BotHarness
from tests.helpers import new_credentials

ROOT = Path(__file__).resolve().parents[1]
ALICE = BotApiEmulator.user(7001, "ko")
MALLORY = BotApiEmulator.user(7666, "en")


async def test_callback_reuse_after_settlement_and_forgery(db_url: str) -> None:
    bot = BotHarness(db_url)
    await bot.start()
    try:
        (card,) = await bot.say(ALICE, "/buy 005930 1")
        confirm = BotApiEmulator.buttons(card)[0][1]
        await bot.press(ALICE, card, confirm)
        for _ in range(3):  # replayed later, by the owner and by someone else
            await bot.press(ALICE, card, confirm)
            await bot.press(MALLORY, card, confirm)
        token = confirm.split(":")[1]
        for forged in (f"oy:{token[:-1]}A", f"oy:{token}x", f"on:{token}", "oy:" + "A" * 16):
            await bot.press(MALLORY, card, forged)
        assert bot.sim.orders_accepted == 1
        assert not bot.api.unanswered_callbacks()
    finally:
        await bot.stop()


async def test_secrets_never_reach_debug_logs(db_url: str) -> None:
    stream = io.StringIO()
    setup_logging("DEBUG", stream=stream)
    bot = BotHarness(db_url)
    await bot.start()
    try:
        creds = new_credentials("11223344-01")
        for text in ("/login", creds.app_key, creds.app_secret, "11223344-01", "-", "/buy 005930 1", "/balance",
                     "/me"):
            await bot.say(ALICE, text)
        await bot.press_button(ALICE, (await bot.say(ALICE, "/buy 005930 1"))[0], 0)
        tokens = [a.client.tokens._token.access_token for a in bot.runtime.accounts._cache.values()  # type: ignore[union-attr]
                  if a.client.tokens._token]
        logging.getLogger("chatbot.test").debug("careless line with %s and %s", creds.app_key, tokens[0])
    finally:
        await bot.stop()
        logging.getLogger().handlers.clear()
        logging.getLogger().setLevel(logging.WARNING)
    logs = stream.getvalue()
    assert "runtime ready" in logs and "careless line with [REDACTED]" in logs
    for secret in [creds.app_key, creds.app_secret, TOKEN, TOKEN.split(":")[1], *tokens]:
        assert secret not in logs, f"{secret[:6]}… leaked into the logs"


async def test_real_mode_is_off_unless_enabled_and_shown_plainly(tmp_path: Path) -> None:
    sim = KisSimulator(SimulatorOptions(tick_interval=0, pingpong_interval=0))
    await sim.start()
    creds = new_credentials("55667788-01")
    try:
        for allowed in (False, True):
            kis = KisSettings(environment="real", rest_url=sim.rest_url("real"), ws_url=sim.ws_url("real"),
                              allow_real_orders=allowed, master_files_url=sim.master_files_url())
            bot = BotHarness(f"sqlite:///{tmp_path}/real{allowed}.sqlite3", kis=kis)
            await bot.start()
            try:
                (msg,) = await bot.say(ALICE, "/buy 005930 1")
                # real mode: nothing without registration, and nothing at all while real orders are off
                assert ("/login" in msg["text"]) if allowed else ("실전 주문이 꺼져 있습니다" in msg["text"])
                for text in ("/login", creds.app_key, creds.app_secret, "55667788-01", "hts55"):
                    await bot.say(ALICE, text)
                (msg,) = await bot.say(ALICE, "/buy 005930 1")
                if not allowed:
                    assert "실전 주문이 꺼져 있습니다" in msg["text"] and not BotApiEmulator.buttons(msg)
                else:
                    assert "REAL MONEY" in msg["text"] and "🔴 REAL" in msg["text"]
                    await bot.press_button(ALICE, msg, 0)
                    assert "주문 접수" in bot.current(msg)["text"]
                (start,) = await bot.say(ALICE, "/start")
                assert "🔴 REAL" in start["text"]
            finally:
                await bot.stop()
        assert sim.orders_accepted == 1
    finally:
        await sim.stop()


# Where SQL text is allowed: one constant statement with bound parameters only (no value is ever put into
# its text), because one statement per fire chunk is the point of the path. Each is tested row for row
# against the ORM reference it mirrors (tests/test_alert_storms.py). SQLite's counterpart runs on the
# driver's thread in alerts/fire_sqlite.py, as module constants too.
CONSTANT_SQL = {"chatbot/alerts/engine.py": "PostgreSQL fires an alert chunk in one CTE (_PG_FIRE)"}


def test_sql_only_through_the_orm() -> None:
    """No SQL text is built anywhere: no text(), no execute() on strings, no formatted SQL (outside the
    constant statements of ``CONSTANT_SQL``, which still may not format SQL from values)."""
    offenders = []
    sql_words = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b\s+\w", re.IGNORECASE)
    for path in (ROOT / "chatbot").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        constant_sql = path.relative_to(ROOT).as_posix() in CONSTANT_SQL
        for number, line in enumerate(source.splitlines(), 1):
            stripped = line.strip()
            if stripped.startswith(("#", '"""')):
                continue
            if constant_sql and re.fullmatch(r"from sqlalchemy import [\w, ]+", stripped):
                pass
            elif (re.search(r"\bsqlalchemy\b.*\btext\b", line) or re.search(r"\.execute\(\s*f?[\"']", line)) \
                    and "PRAGMA" not in line and "BEGIN IMMEDIATE" not in line:  # settings, transaction control
                    offenders.append(f"{path.name}:{number}: {stripped}")
            if re.search(r"f[\"'].*" + sql_words.pattern, line):
                offenders.append(f"{path.name}:{number}: {stripped}")
    assert offenders == []


@SQLITE_ONLY
@pytest.mark.parametrize("text", ["/balance", "/orders", "/alerts", "/me", "/login"])
async def test_account_commands_in_groups_are_refused(db_url: str, text: str) -> None:
    bot = BotHarness(db_url)
    await bot.start()
    try:
        (msg,) = await bot.say(ALICE, text, chat_id=-4242)
        assert "개인 대화" in msg["text"]
    finally:
        await bot.stop()
