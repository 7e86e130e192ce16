"""``/price`` round trip through a fake Telegram Bot API over HTTP (long polling), ours against a bare
python-telegram-bot bot (the anchor) in the same run.

Both answer ``/price 005930`` with a quote from the KIS simulator (in-process), one app key per
user, and both run without Telegram's flood limiter (the fake does not enforce one; with it, 30
messages a second would set the pace for both). The bare bot is the least a bot doing this job
does: PTB with concurrent updates, one handler that asks KIS and replies. Ours is the real
Application (access gate, per-chat ordering, services, rendering) over the real runtime (SQLite).

At 1, 10 and 50 concurrent users, each user sends a command 0.2 s after the previous one was
answered (several commands in flight; under KIS's 20 requests a second per app key, which would
otherwise set the pace): the round trip is the command's update queued → the reply received by
the fake.

    python -m bench.bot_roundtrip
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from bench.common import pct
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis.rest import KisEndpoint, KisRestClient
from chatbot.sim.server import KisSimulator, SimulatorOptions
from tests.fake_telegram import FakeTelegram
from tests.harness import TOKEN, BotHarness
from tests.helpers import new_credentials

LEVELS = (1, 10, 50)
SECONDS = 6.0  # per level
COMMAND = "/price 005930"
THINK = 0.2  # seconds a user waits after a reply before the next command (KIS allows 20/s per app key)


class Load:
    """N users in a closed loop against whatever bot polls ``api``."""

    def __init__(self, api: BotApiEmulator) -> None:
        self.api = api
        self.waiting: dict[int, asyncio.Future[float]] = {}
        api.listeners.append(self._on_event)

    def _on_event(self, event: str, payload: dict[str, Any]) -> None:
        if event == "sent":
            future = self.waiting.pop(payload["chat"]["id"], None)
            if future is not None and not future.done():
                future.set_result(time.perf_counter())

    async def ask(self, user: dict[str, Any]) -> float:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[user["id"]] = future
        sent = time.perf_counter()
        self.api.send_text(user, COMMAND)
        return await asyncio.wait_for(future, 30) - sent

    async def run(self, users: list[dict[str, Any]], seconds: float) -> tuple[list[float], float]:
        times: list[float] = []
        deadline = time.perf_counter() + seconds

        async def user_loop(user: dict[str, Any]) -> None:
            await asyncio.sleep(random.uniform(0, THINK))  # users do not type in step
            while time.perf_counter() < deadline:
                times.append(await self.ask(user))
                await asyncio.sleep(THINK)

        started = time.perf_counter()
        await asyncio.gather(*(user_loop(u) for u in users))
        return times, len(times) / (time.perf_counter() - started)


async def measure(api: BotApiEmulator, users: list[dict[str, Any]]) -> dict[int, tuple[list[float], float]]:
    load = Load(api)
    for user in users:  # warm-up: accounts, tokens, connections
        await load.ask(user)
    out = {}
    for level in LEVELS:
        await load.run(users[:level], 1.0)
        out[level] = await load.run(users[:level], SECONDS)
    return out


async def bare_bot(users: list[dict[str, Any]]) -> dict[int, tuple[list[float], float]]:
    sim = KisSimulator(SimulatorOptions(tick_interval=0))
    await sim.start()
    fake = FakeTelegram(TOKEN)
    await fake.start()
    clients = {u["id"]: KisRestClient(KisEndpoint("real", sim.rest_url("real")), new_credentials()) for u in users}

    async def price(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_user is not None and update.effective_message is not None
        code = (context.args or ["005930"])[0]
        quote = await clients[update.effective_user.id].quote(code)
        await update.effective_message.reply_text(
            f"<b>{code}</b> {quote.price:,}원 ({quote.change:+,}, {quote.change_rate}%)\n"
            f"거래량 {quote.volume:,} · 고가 {quote.high:,} · 저가 {quote.low:,}", parse_mode="HTML")

    app = (ApplicationBuilder().token(TOKEN).base_url(fake.base_url).concurrent_updates(True).build())
    app.add_handler(CommandHandler("price", price))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    try:
        return await measure(fake.emulator, users)
    finally:
        stopping = asyncio.create_task(app.updater.stop())
        await asyncio.sleep(0)
        fake.emulator.release_pollers()
        await stopping
        await app.stop()
        await app.shutdown()
        for client in clients.values():
            await client.aclose()
        await fake.stop()
        await sim.stop()


async def our_bot(users: list[dict[str, Any]]) -> dict[int, tuple[list[float], float]]:
    with tempfile.TemporaryDirectory() as tmp:
        harness = BotHarness(f"sqlite:///{tmp}/bench.sqlite3")
        await harness.start()
        limiter = harness.app.bot.rate_limiter
        limiter._base_limiter = None  # no global flood limit: the fake enforces none (see the docstring)
        try:
            return await measure(harness.api, users)
        finally:
            await harness.stop()


def line(name: str, results: dict[int, tuple[list[float], float]], anchor: dict[int, tuple[list[float], float]]
         ) -> list[str]:
    out = []
    for level in LEVELS:
        times, rate = results[level]
        a_times, a_rate = anchor[level]
        out.append(f"/price round trip, {level} concurrent user(s), {name}: p50 {pct(times, 0.5) * 1e3:.2f} ms, "
                   f"p99 {pct(times, 0.99) * 1e3:.2f} ms, {rate:.0f} commands/s; bare PTB bot p50 "
                   f"{pct(a_times, 0.5) * 1e3:.2f} ms, p99 {pct(a_times, 0.99) * 1e3:.2f} ms, {a_rate:.0f}/s → p50 "
                   f"{pct(times, 0.5) / pct(a_times, 0.5):.2f}× the bare bot's")
    return out


async def main() -> None:
    users = [BotApiEmulator.user(1000 + i, "ko") for i in range(max(LEVELS))]
    runs: list[tuple[str, Callable[[list[dict[str, Any]]], Awaitable[dict[int, tuple[list[float], float]]]]]] = [
        ("bare", bare_bot), ("ours", our_bot)]
    results = {name: await run(users) for name, run in runs}
    for text in line("ours", results["ours"], results["bare"]):
        print(text, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
