"""Bot-side round trip of /price: update handed to the Application → reply sent (fake Bot API over
HTTP, simulator in-process, SQLite). Also the user-visible time: update queued → reply received.

    python -m bench.bot_roundtrip
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from typing import Any

from chatbot.console.botapi import BotApiEmulator
from tests.harness import BotHarness

N = 400


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1e3


async def main(n: int = N) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        harness = BotHarness(f"sqlite:///{tmp}/bench.sqlite3")
        await harness.start()
        users = [BotApiEmulator.user(1000 + i, "ko") for i in range(40)]
        dispatched: dict[int, float] = {}
        replied: list[float] = []
        original = harness.app.process_update

        async def timed(update: Any) -> None:
            dispatched[update.update_id] = time.perf_counter()
            await original(update)

        harness.app.process_update = timed
        harness.api.listeners.append(lambda event, _: replied.append(time.perf_counter()) if event == "sent" else None)
        async def measure(who: list[dict[str, Any]], count: int, gap: float = 0.0
                          ) -> tuple[list[float], list[float]]:
            bot_side: list[float] = []
            end_to_end: list[float] = []
            for i in range(count):
                await asyncio.sleep(gap)
                replied.clear()
                queued = time.perf_counter()
                update = harness.api.send_text(who[i % len(who)], "/price 005930")
                await harness._wait(update["update_id"])
                bot_side.append(replied[0] - dispatched[update["update_id"]])
                end_to_end.append(replied[0] - queued)
            return bot_side, end_to_end

        try:
            for user in users:  # warm-up: paper accounts, tokens, connections
                await harness.say(user, "/price 005930")
            await asyncio.sleep(1.1)
            # 25 commands a second: under Telegram's 30 messages/s that AIORateLimiter enforces for the bot
            bot_side, end_to_end = await measure(users, n, gap=0.04)
            print(f"/price round trip, {n} commands from {len(users)} users at 25/s (fake Bot API over HTTP, "
                  f"simulator in-process): bot side p50 {pct(bot_side, 0.5):.2f} ms, p99 {pct(bot_side, 0.99):.2f} ms, "
                  f"mean {statistics.mean(bot_side) * 1e3:.2f} ms; update queued → reply p50 "
                  f"{pct(end_to_end, 0.5):.2f} ms, p99 {pct(end_to_end, 0.99):.2f} ms")
            await asyncio.sleep(1.1)
            one, _ = await measure(users[:1], 100)
            print(f"/price from one user back to back (100 commands): p50 {pct(one, 0.5):.2f} ms, "
                  f"p99 {pct(one, 0.99):.2f} ms — KIS's 20 requests/s per app key sets the pace here")
        finally:
            await harness.stop()


if __name__ == "__main__":
    asyncio.run(main())
