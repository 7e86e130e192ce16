"""The daily report at the close: one scheduler pass for N users who turned it on, each with a buy and a
sell that day, against the embedded simulator (PAPER mode, over loopback HTTP, as the bot runs it); on
SQLite and on PostgreSQL when it answers.

Figures: the pass's wall time and reports per second (each report: the day's executions and the
balance from KIS, the realised P/L, one transaction writing the sent-report row and its push); a
second pass over the same users (everything already sent: what every 30-second tick costs for the
rest of the day); ``/history 30`` through the service, p50/p99. Anchor, same run, same users, same
concurrency: the two KIS queries alone (no database), so the ratio is what the report adds to them.

    python -m bench.reports [--db sqlite|postgres|URL] [--users 300]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import secrets
import sys
import time

from bench.common import backends, ms, pct, scratch_database
from chatbot.config import DatabaseSettings, KisSettings, Settings, SimulatorSettings, TelegramSettings
from chatbot.kis.models import OrderSide
from chatbot.kis.protocol import KST
from chatbot.runtime import Runtime
from chatbot.security.keyring import MasterKeyring
from chatbot.service.reports import KRX_REPORT, ReportService
from chatbot.sim.server import SimulatorOptions

CODES = ("005930", "000660", "035420", "005380")
EVERY_DAY = dataclasses.replace(KRX_REPORT, report_at=lambda day: dt.datetime.combine(day, dt.time(15, 40), KST))


async def _run(db_url: str, users: int) -> None:
    settings = Settings(telegram=TelegramSettings(token="1:bench"), kis=KisSettings(),
                        database=DatabaseSettings(url=db_url), simulator=SimulatorSettings(tick_interval_seconds=0))
    runtime = await Runtime.start(settings, SimulatorOptions(tick_interval=0),
                                  keyring=MasterKeyring(1, {1: secrets.token_bytes(32)}))
    try:
        reports = runtime.services.reports
        assert isinstance(reports, ReportService)
        await reports.stop()  # driven by hand, on its own clock
        reports.markets = (EVERY_DAY,)  # KRX; today counts as a trading day, whatever day it is
        ids = list(range(10_001, 10_001 + users))
        for uid in ids:
            await reports.set_enabled(uid, uid, "ko", True)

        async def trade(uid: int) -> None:
            client = (await runtime.accounts.for_user(uid)).client
            code = CODES[uid % len(CODES)]
            await client.place_order(OrderSide.BUY, code, 10, None)
            await client.place_order(OrderSide.SELL, code, 4, None)

        gate = asyncio.Semaphore(reports.concurrency)

        async def bounded(uid: int, job: object) -> None:
            async with gate:
                await job(uid)  # type: ignore[operator]

        await asyncio.gather(*(bounded(uid, trade) for uid in ids))
        today = dt.datetime.now(KST).date()

        async def kis_only(uid: int) -> None:
            client = (await runtime.accounts.for_user(uid)).client
            await client.executions(today, today)
            await client.balance()

        started = time.perf_counter()
        await asyncio.gather(*(bounded(uid, kis_only) for uid in ids))
        anchor = time.perf_counter() - started

        close = dt.datetime.combine(today, dt.time(15, 45), KST)
        started = time.perf_counter()
        sent = await reports.run_due(close)
        first = time.perf_counter() - started
        started = time.perf_counter()
        again = await reports.run_due(close + dt.timedelta(seconds=30))
        idle = time.perf_counter() - started

        history: list[float] = []
        for uid in ids[: min(100, users)]:
            t0 = time.perf_counter()
            await reports.history(uid, "30")
            history.append(time.perf_counter() - t0)

        print(f"   {users} users, concurrency {reports.concurrency}")
        print(f"   pass at the close: {sent} reports in {first:.2f} s = {sent / first:,.0f} reports/s; "
              f"anchor (the 2 KIS queries alone): {anchor:.2f} s; ratio {first / anchor:.2f}x")
        print(f"   second pass (all sent, {again} more): {ms(idle)}")
        print(f"   /history 30 (service): p50 {ms(pct(history, 0.5))}, p99 {ms(pct(history, 0.99))}")
    finally:
        await runtime.aclose()


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reports")
    parser.add_argument("--db", action="append", help="sqlite, postgres or a URL (default: both when PG answers)")
    parser.add_argument("--users", type=int, default=300)
    args = parser.parse_args(argv if argv is not None else [])
    for backend in args.db or backends():
        print(f"-- {backend}", flush=True)
        async with scratch_database(backend) as url:
            await _run(url, args.users)


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.ERROR)
    asyncio.run(main(sys.argv[1:]))
