"""Webhook mode against the fake Bot API posting to the bot's endpoint; /metrics and /healthz."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import httpx

from chatbot.config import DatabaseSettings, HttpSettings, Settings, SimulatorSettings, TelegramSettings
from chatbot.console.botapi import BotApiEmulator
from chatbot.metrics import Metrics
from chatbot.runtime import Runtime
from chatbot.security.keyring import MasterKeyring
from chatbot.sim.server import SimulatorOptions
from chatbot.telegram.runner import serve
from tests.fake_telegram import FakeTelegram
from tests.harness import TOKEN
from tests.helpers import free_port

USER = BotApiEmulator.user(9001, "en")


async def wait_for(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.05)
    await asyncio.wait_for(poll(), timeout)


async def test_webhook_mode_metrics_and_health(tmp_path: Path) -> None:
    fake = FakeTelegram(TOKEN)
    await fake.start()
    port = free_port()
    secret = secrets.token_urlsafe(24)
    settings = Settings(
        telegram=TelegramSettings(token=TOKEN, base_url=fake.base_url, webhook_url=f"http://127.0.0.1:{port}/hook",
                                  webhook_path="/hook", webhook_secret=secret),
        database=DatabaseSettings(url=f"sqlite:///{tmp_path}/w.sqlite3"), http=HttpSettings(port=port),
        simulator=SimulatorSettings(tick_interval_seconds=0))
    metrics = Metrics()
    runtime = await Runtime.start(settings, SimulatorOptions(tick_interval=0),
                                  keyring=MasterKeyring(1, {1: secrets.token_bytes(32)}), observe_kis=metrics.observe_kis)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(runtime.services, settings, stop, metrics=metrics, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 15)
        assert fake.emulator.webhook_url.endswith("/hook") and fake.emulator.webhook_secret == secret
        assert not [c for c in fake.emulator.calls if c[0] == "getUpdates"]  # no polling in webhook mode
        fake.emulator.send_text(USER, "/price 005930")
        await wait_for(lambda: bool(fake.emulator.bot_messages(9001)))
        assert "Samsung Electronics" in fake.emulator.bot_messages(9001)[0]["text"]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            forged = await http.post("/hook", json={"update_id": 999, "message": {}},
                                     headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
            assert forged.status_code == 403
            assert (await http.post("/hook", json={"update_id": 998})).status_code == 403  # no header at all
            health = (await http.get("/healthz")).json()
            assert health["ok"] and health["mode"] == "PAPER" and health["feed_connected"] is True
            metrics = (await http.get("/metrics")).text
        assert 'kisbot_commands_total{command="price"} 1.0' in metrics
        assert "kisbot_kis_request_seconds_count" in metrics and "kisbot_alerts_fired_total" in metrics
        assert "kisbot_feed_connected 1.0" in metrics and "kisbot_kis_rate_limit_wait_seconds_total" in metrics
        assert all(status == 200 for status in fake.webhook_statuses)
    finally:
        stop.set()
        await task
        await runtime.aclose()
        await fake.stop()
