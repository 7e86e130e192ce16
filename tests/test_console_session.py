"""``chatbot console`` with its input piped (a script): each line waits for the bot's answer to the one
before, whatever came first (chatbot/console/terminal.py)."""

from __future__ import annotations

import io
import secrets
from pathlib import Path

import pytest

from chatbot.config import DatabaseSettings, Settings, SimulatorSettings
from chatbot.console.terminal import run_console
from chatbot.runtime import Runtime
from chatbot.security.keyring import MasterKeyring
from chatbot.sim.server import SimulatorOptions
from chatbot.telegram import app


async def test_a_piped_session_presses_the_card_its_command_brought(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow answer (a loaded machine: KIS slow here) was preceded by the 'queued' notice, which the
    console took for the answer: after a quarter second of quiet it read the next line, "1", before
    the card had come, and sent it as text; the order was never confirmed."""
    monkeypatch.setattr(app, "QUEUED_NOTICE_AFTER", 0.05)  # the notice comes before the slow answer
    settings = Settings(database=DatabaseSettings(url=f"sqlite:///{tmp_path}/c.sqlite3"),
                        simulator=SimulatorSettings(tick_interval_seconds=0))
    runtime = await Runtime.start(settings, SimulatorOptions(tick_interval=0),
                                  keyring=MasterKeyring(1, {1: secrets.token_bytes(32)}))
    out = io.StringIO()
    try:
        assert runtime.sim is not None
        runtime.sim.faults.latency_seconds = 0.6  # every KIS call
        await run_console(runtime.services, settings.telegram, language="en",
                          stdin=io.StringIO("/buy 005930 2\n1\n/balance\n"), out=out)
    finally:
        await runtime.aclose()
    text = out.getvalue()
    assert "Many requests right now" in text  # the notice did come first
    assert "[1] ✅ Confirm" in text and "Order accepted" in text and "2 sh" in text, text
