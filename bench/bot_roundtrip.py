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
the fake. Beside it, the CPU time of this whole process per command while that bot runs (the bot,
the fake Bot API, the simulator and the load all share this one process and its event loop).

The machine is shared and its load swings within seconds, so the two bots take turns often: one
user, command by command (ONE_USER_COMMANDS each, who goes first alternating); 10 and 50 users,
in SLICES one-second slices each, in the order bare, ours, ours, bare, … (each bot as often first
as second, so a drift of the machine's load over a level weighs on both alike). At 50 users the
loop is close to saturation: the round trip is then mostly queueing, which grows much faster than
the CPU per command (a tenth more CPU can double a queue), so the CPU per command is printed
beside each p50, and the spread of the slice pairs' p50 ratios beside the pooled one (a wide
spread: the machine, not the bot, moved the figure). Once both bots are up, the heap is settled as
``chatbot run`` does (:func:`chatbot.__main__.settle_heap`).

    python -m bench.bot_roundtrip
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from typing import Any

from telegram import Update
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from bench.common import pct
from chatbot.__main__ import settle_heap
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis.rest import KisEndpoint, KisRestClient
from chatbot.sim.server import KisSimulator, SimulatorOptions
from tests.fake_telegram import FakeTelegram
from tests.harness import TOKEN, BotHarness
from tests.helpers import new_credentials

LEVELS = (1, 10, 50)
SLICE = 1.0  # seconds of one bot's turn at 10 and 50 users
SLICES = 8  # turns per level and bot (alternated: bare, ours, ours, bare, …)
ONE_USER_COMMANDS = 120  # one user: each bot's commands, alternated one by one (a slice holds too few)
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

    async def run(self, users: list[dict[str, Any]], seconds: float) -> tuple[list[float], float, float]:
        """Round trips, commands a second, CPU seconds of this process in all."""
        times: list[float] = []
        deadline = time.perf_counter() + seconds

        async def user_loop(user: dict[str, Any]) -> None:
            await asyncio.sleep(random.uniform(0, THINK))  # users do not type in step
            while time.perf_counter() < deadline:
                times.append(await self.ask(user))
                await asyncio.sleep(THINK)

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(user_loop(u) for u in users))
        return times, len(times) / (time.perf_counter() - started), time.process_time() - cpu

    def forget(self) -> None:
        """Drop the fake's copies of the messages exchanged so far (between turns; /price never refers
        to an earlier message). The fake keeps every message for the console's chat history: ~5
        container objects each, ~25,000 by the end of the 50-user turns, all in this one process, where
        each full cyclic-GC collection walks them and stalls both bots' event loop (30-60 ms late in a
        run). Telegram keeps them on its servers, outside the bot's process."""
        self.api.messages.clear()
        self.api.html.clear()


async def one_user(loads: dict[str, Load], user: dict[str, Any], commands: int) -> dict[str, tuple[list[float], float, float]]:
    """One user, the bots' commands alternated one by one (who goes first alternates too), each
    followed by THINK: both see the same machine, command by command. CPU per command: this process's
    from sending a command to the end of the pause after its reply."""
    times: dict[str, list[float]] = {name: [] for name in loads}
    cpu = dict.fromkeys(loads, 0.0)
    busy = dict.fromkeys(loads, 0.0)
    names = list(loads)
    for i in range(commands):
        for name in names if i % 2 == 0 else names[::-1]:
            started, used = time.perf_counter(), time.process_time()
            times[name].append(await loads[name].ask(user))
            await asyncio.sleep(THINK)
            cpu[name] += time.process_time() - used
            busy[name] += time.perf_counter() - started
    return {name: (times[name], commands / busy[name], cpu[name] / commands) for name in loads}


Results = dict[int, tuple[list[float], float, float]]  # round trips, commands/s, CPU s per command


class BareBot:
    """The anchor: PTB with concurrent updates and one handler that asks KIS and replies."""

    async def start(self, users: list[dict[str, Any]]) -> BotApiEmulator:
        self.sim = KisSimulator(SimulatorOptions(tick_interval=0))
        await self.sim.start()
        self.fake = FakeTelegram(TOKEN)
        await self.fake.start()
        endpoint = KisEndpoint("real", self.sim.rest_url("real"))
        self.clients = {u["id"]: KisRestClient(endpoint, new_credentials()) for u in users}
        clients = self.clients

        async def price(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            assert update.effective_user is not None and update.effective_message is not None
            code = (context.args or ["005930"])[0]
            quote = await clients[update.effective_user.id].quote(code)
            await update.effective_message.reply_text(
                f"<b>{code}</b> {quote.price:,}원 ({quote.change:+,}, {quote.change_rate}%)\n"
                f"거래량 {quote.volume:,} · 고가 {quote.high:,} · 저가 {quote.low:,}", parse_mode="HTML")

        self.app = ApplicationBuilder().token(TOKEN).base_url(self.fake.base_url).concurrent_updates(True).build()
        self.app.add_handler(CommandHandler("price", price))
        await self.app.initialize()
        await self.app.start()
        assert self.app.updater is not None
        await self.app.updater.start_polling(poll_interval=0.0, timeout=1)
        return self.fake.emulator

    async def stop(self) -> None:
        assert self.app.updater is not None
        stopping = asyncio.create_task(self.app.updater.stop())
        await asyncio.sleep(0)
        self.fake.emulator.release_pollers()
        await stopping
        await self.app.stop()
        await self.app.shutdown()
        for client in self.clients.values():
            await client.aclose()
        await self.fake.stop()
        await self.sim.stop()


async def several_users(loads: dict[str, Load], users: list[dict[str, Any]]) -> tuple[dict[str, tuple[list[float], float, float]], list[float]]:
    """Each bot's round trips, commands a second and CPU seconds per command over SLICES turns of SLICE
    seconds, in the order bare, ours, ours, bare, …; and each pair of turns' p50 ratio (ours / bare)."""
    times: dict[str, list[float]] = {name: [] for name in loads}
    cpu = dict.fromkeys(loads, 0.0)
    busy = dict.fromkeys(loads, 0.0)
    ratios = []
    for turn in range(SLICES):
        p50 = {}
        for name in ("bare", "ours") if turn % 2 == 0 else ("ours", "bare"):
            started = time.perf_counter()
            slice_times, _, used = await loads[name].run(users, SLICE)
            busy[name] += time.perf_counter() - started
            cpu[name] += used
            times[name] += slice_times
            p50[name] = pct(slice_times, 0.5)
            loads[name].forget()
        ratios.append(p50["ours"] / p50["bare"])
    return {name: (times[name], len(times[name]) / busy[name], cpu[name] / max(1, len(times[name])))
            for name in loads}, ratios


async def main() -> None:
    users = [BotApiEmulator.user(1000 + i, "ko") for i in range(max(LEVELS))]
    bare = BareBot()
    loads = {"bare": Load(await bare.start(users))}
    spreads: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        harness = BotHarness(f"sqlite:///{tmp}/bench.sqlite3")
        await harness.start()
        harness.app.bot.rate_limiter._base_limiter = None  # no global flood limit (see the docstring)
        loads["ours"] = Load(harness.api)
        settle_heap()
        try:
            for load in loads.values():  # warm-up: accounts, tokens, connections
                for user in users:
                    await load.ask(user)
            results: dict[str, Results] = {"bare": {}, "ours": {}}
            for name, result in (await one_user(loads, users[0], ONE_USER_COMMANDS)).items():
                results[name][1] = result
            for load in loads.values():
                load.forget()
            for level in LEVELS[1:]:
                by_bot, spreads[level] = await several_users(loads, users[:level])
                for name, result in by_bot.items():
                    results[name][level] = result
        finally:
            await harness.stop()
            await bare.stop()
    for text in line("ours", results["ours"], results["bare"], spreads):
        print(text, flush=True)


def line(name: str, results: Results, anchor: Results, spreads: dict[int, list[float]]) -> list[str]:
    out = []
    for level in LEVELS:
        times, rate, cpu = results[level]
        a_times, a_rate, a_cpu = anchor[level]
        spread = sorted(spreads.get(level, []))
        pairs = (f" (turn pairs: median {spread[len(spread) // 2]:.2f}×, {spread[0]:.2f}–{spread[-1]:.2f}×)"
                 if spread else "")
        out.append(f"/price round trip, {level} concurrent user(s), {name}: p50 {pct(times, 0.5) * 1e3:.2f} ms, "
                   f"p99 {pct(times, 0.99) * 1e3:.2f} ms, {rate:.0f} commands/s; bare PTB bot p50 "
                   f"{pct(a_times, 0.5) * 1e3:.2f} ms, p99 {pct(a_times, 0.99) * 1e3:.2f} ms, {a_rate:.0f}/s → p50 "
                   f"{pct(times, 0.5) / pct(a_times, 0.5):.2f}× the bare bot's{pairs}; CPU per command (whole "
                   f"process) {cpu * 1e3:.2f} vs {a_cpu * 1e3:.2f} ms → {cpu / a_cpu:.2f}×")
    return out


if __name__ == "__main__":
    asyncio.run(main())
