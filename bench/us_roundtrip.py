"""US commands through the whole bot beside their domestic twins, same run: ``/price AAPL`` against
``/price 005930`` and a US limit-order card (``/buy AAPL 1 150.00``) against a domestic one, one user
at a time through the real Application, fake Bot API (HTTP) and simulator (HTTP), SQLite.

A US quote asks KIS once (``price-detail``: price, change, range, limits, tick and KIS's KRW rate; the
plain ``price`` TR only where price-detail fails), as a domestic one does; a buy card asks for the quote
and the buying power on both sides. At KIS's 20 requests a second per app key the pacing, not the CPU,
sets these figures: the ratio says what the US path costs over the domestic one; the commands
alternate so both see the same machine.

    python -m bench.us_roundtrip
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from decimal import Decimal

from bench.common import pct
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import protocol as p
from tests.harness import BotHarness

ROUNDS = 60
USER = BotApiEmulator.user(4242, "ko")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bot = BotHarness(f"sqlite:///{tmp}/bench.sqlite3", us_always_open=True)
        await bot.start()
        try:
            bot.sim.set_us_price("AAPL", Decimal("190.25"))
            state = bot.sim.market.get("005930")
            assert state is not None
            limit = p.round_down_to_tick(state.limits[0] + 3 * p.tick_size(state.price))  # rests, as $150 does
            pairs = (("/price 005930", "/price AAPL"), (f"/buy 005930 1 {limit}", "/buy AAPL 1 150.00"))
            for pair in pairs:
                times: dict[str, list[float]] = {command: [] for command in pair}
                for command in pair:  # warm both paths (the US directory loads on first use)
                    await bot.say(USER, command)
                for _ in range(ROUNDS):
                    for command in pair:
                        started = time.perf_counter()
                        await bot.say(USER, command)
                        times[command].append(time.perf_counter() - started)
                krx, us = (pct(times[c], 0.5) for c in pair)
                print(f"{pair[1]:<22} median {us * 1000:6.1f} ms, p90 {pct(times[pair[1]], 0.9) * 1000:6.1f} ms  |  "
                      f"{pair[0]:<22} median {krx * 1000:6.1f} ms  →  US/KRX {us / krx:.2f}×", flush=True)
        finally:
            await bot.stop()


if __name__ == "__main__":
    asyncio.run(main())
