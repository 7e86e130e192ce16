"""The bot at scale, on SQLite with the embedded simulator (the default of ``chatbot run``).

1. Adding users: 10,000 users each get what their first command gives them (a paper account and
   key pair, stored encrypted; a KIS token, cached; their first balance query, which opens the
   simulator's account), one after the other. Figure: seconds per thousand users, the last
   thousand against the first (the anchor: same run, same process); the largest size the SQLite
   WAL file reached (sampled after every user), with the background checkpoints running.
2. Start-up at that scale: the same database given 100,000 armed alerts (over 40 symbols, owned by
   those users), then ``Runtime.start`` in a fresh process: seconds from spawn to ready and from
   ``Runtime.start`` to ready, and the process's peak RSS; the anchor is the same start on an
   empty database, in the same run.

    python -m bench.scale [--users 10000] [--alerts 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench.common import file_size
from chatbot.config import DatabaseSettings, KisSettings, SecuritySettings, Settings, SimulatorSettings
from chatbot.runtime import Runtime
from chatbot.security.keyring import MasterKeyring
from chatbot.sim.server import SimulatorOptions
from chatbot.storage.tables import AlertRow
from chatbot.storage.types import utcnow

ROOT = Path(__file__).resolve().parent.parent
SYMBOLS = 40

START = """
import asyncio, json, sys, time
spawned = float(sys.argv[1])
imported = time.time()
from chatbot.config import load_settings
from chatbot.runtime import Runtime

async def main():
    started = time.perf_counter()
    runtime = await Runtime.start(load_settings())
    ready = time.perf_counter() - started
    armed = len(runtime.engine.book) if runtime.engine is not None else 0
    hwm = next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM"))
    print(json.dumps({"spawn_to_ready": time.time() - spawned, "start_to_ready": ready, "armed": armed,
                      "import_s": imported - spawned, "rss_mb": int(hwm) / 1024}), flush=True)
    await runtime.aclose()

asyncio.run(main())
"""


def settings_for(tmp: str) -> Settings:
    return Settings(database=DatabaseSettings(url=f"sqlite:///{tmp}/bot.sqlite3"), kis=KisSettings(),
                    security=SecuritySettings(master_key_file=f"{tmp}/master.key"),
                    simulator=SimulatorSettings(tick_interval_seconds=0))


async def add_users(tmp: str, users: int) -> dict[str, Any]:
    keyring = MasterKeyring.load(f"{tmp}/master.key")
    runtime = await Runtime.start(settings_for(tmp), SimulatorOptions(tick_interval=0), keyring=keyring)
    wal = f"{tmp}/bot.sqlite3-wal"
    per_thousand: list[float] = []
    each: list[float] = []  # seconds per user
    wal_max = 0
    try:
        block = time.perf_counter()
        for i in range(users):
            t0 = time.perf_counter()
            account = await runtime.accounts.for_user(10_000_000 + i)
            await account.client.balance()
            each.append(time.perf_counter() - t0)
            wal_max = max(wal_max, file_size(wal))
            if (i + 1) % 1000 == 0:
                now = time.perf_counter()
                per_thousand.append(now - block)
                block = now
                print(f"  … {i + 1:,} users, last thousand {per_thousand[-1]:.1f} s, WAL now "
                      f"{file_size(wal) / 2**20:.1f} MB", flush=True)
                runtime.accounts._cache.clear()  # as many clients as a real bot keeps: not all at once
    finally:
        await runtime.aclose()
    return {"per_thousand": per_thousand, "wal_max": wal_max, "db": file_size(f"{tmp}/bot.sqlite3"),
            "first_median": statistics.median(each[:1000]), "last_median": statistics.median(each[-1000:])}


async def add_alerts(tmp: str, users: int, alerts: int) -> None:
    from chatbot.sim.market import load_instruments
    from chatbot.storage import Database

    db = Database(f"sqlite:///{tmp}/bot.sqlite3")
    rng = random.Random(3)
    codes = [inst.code for inst in load_instruments()][:SYMBOLS]
    now = utcnow()
    rows = [{"owner_id": 10_000_000 + i % users, "chat_id": 10_000_000 + i % users, "language": "ko",
             "code": codes[i % SYMBOLS], "name": codes[i % SYMBOLS], "direction": "above" if i % 2 else "below",
             "threshold": rng.randrange(1_000, 1_000_000), "reference_price": 50_000, "percent": None,
             "repeat": False, "cooldown_seconds": 600, "status": "armed", "fired_count": 0, "created_at": now,
             "updated_at": now} for i in range(alerts)]
    async with db.engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            await conn.execute(insert(AlertRow), rows[i:i + 5000])
    await db.dispose()


def start_in_fresh_process(tmp: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KISBOT_DATABASE_URL": f"sqlite:///{tmp}/bot.sqlite3",
           "KISBOT_SECURITY_MASTER_KEY_FILE": f"{tmp}/master.key", "KISBOT_LOGGING_LEVEL": "WARNING"}
    spawned = time.time()
    proc = subprocess.Popen([sys.executable, "-c", START, repr(spawned)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=env)
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.wait()
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])  # rss_mb: its own VmHWM at ready
    return result


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--keep", help="build the database in this (new) directory and keep it")
    args = parser.parse_args(argv if argv is not None else [])
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        Path(tmp).mkdir(parents=True, exist_ok=True)
        anchor = start_in_fresh_process(empty)  # creates an empty database and its key
        anchor = start_in_fresh_process(empty)
        r = await add_users(tmp, args.users)
        first, last = r["per_thousand"][0], r["per_thousand"][-1]
        print(f"adding {args.users:,} users (paper account, token, first balance each): per user, median of the "
              f"last thousand {r['last_median'] * 1e3:.1f} ms vs the first thousand {r['first_median'] * 1e3:.1f} ms "
              f"→ {r['last_median'] / r['first_median']:.2f}× (whole thousands: {first:.1f} s and {last:.1f} s); "
              f"largest WAL {r['wal_max'] / 2**20:.1f} MB (database {r['db'] / 2**20:.1f} MB)", flush=True)
        await add_alerts(tmp, args.users, args.alerts)
        start_in_fresh_process(tmp)  # the page cache warmed once, as for the anchor
        s = start_in_fresh_process(tmp)
    print(f"start-up with {args.users:,} users and {s['armed']:,} armed alerts, fresh process: spawn → ready "
          f"{s['spawn_to_ready']:.2f} s (Runtime.start {s['start_to_ready']:.2f} s), peak RSS {s['rss_mb']:.0f} MB; "
          f"empty database: spawn → ready {anchor['spawn_to_ready']:.2f} s (Runtime.start "
          f"{anchor['start_to_ready']:.2f} s), {anchor['rss_mb']:.0f} MB → Runtime.start "
          f"{s['start_to_ready'] / anchor['start_to_ready']:.1f}× the empty one's, +{s['rss_mb'] - anchor['rss_mb']:.0f} MB",
          flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
