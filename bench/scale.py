"""The bot at scale, on SQLite with the embedded simulator (the default of ``chatbot run``).

1. Adding users: 10,000 users each get what their first command gives them (a paper account and
   key pair, stored encrypted; a KIS token, cached; their first balance query, which opens the
   simulator's account), one after the other; the largest size the SQLite WAL file reached (sampled
   after every user), with the background checkpoints running. The build keeps a copy of the
   database at 0, half and all the users (``VACUUM INTO``). Figure: time per added user at each of
   those populations, measured alternately: ``--samples`` rounds, each starting the bot on a fresh
   copy of every population's database in turn (the order reversed every other round), adding
   ``--batch`` users after ``--warm-up`` untimed ones, each batch's median per user, in wall seconds
   and in the process's CPU seconds (which other processes' load hardly moves). Fair on a
   noisy machine: every population is measured the same way (same process, same start, same
   warm-up, same users added), close together in time and in alternating order, so a burst of
   other work lands on either alike; the median of a batch drops a user's stall (a GC, another
   process), the median of the rounds a batch's. The ratio (all users against none) is given for the
   rounds' medians and, paired within each round, as the median and range of the per-round ratios.
   (The build prints each thousand's seconds as it goes: minutes apart, for progress, not a figure.)
2. Start-up at that scale: the same database given 100,000 armed alerts (each on one of 40
   symbols, owned by those users, thresholds 35–100 % away from the price, so none fires while
   the bot starts: every one is in the book at ready), then ``chatbot run`` in a fresh process,
   long polling a fake Bot API over HTTP: seconds from spawn to ready (its "running" line: the
   bot answers commands, the alert book is loaded and the feed subscribed) and from
   ``Runtime.start`` to ready, and the process's peak RSS (VmHWM at ready). ``--rounds`` starts of
   each, alternated with the same start on an empty database (the anchor, same run), medians and
   spread; ``--baseline DIR`` alternates the same starts of another tree on a copy of the same
   database (``git archive <commit> | tar -x -C DIR``); ``--postgres URL`` repeats it all on a
   PostgreSQL copy of the database (a new database on that server, dropped afterwards).

    python -m bench.scale [--users 10000] [--alerts 100000] [--rounds 3] [--samples 5 --batch 200]
    python -m bench.scale --no-start-up       # adding users only (1.), not the start-ups (2.)
    python -m bench.scale --reuse DIR --adding --no-start-up   # 1.'s timing again on a --keep run's copies
    python -m bench.scale --keep DIR          # build the database in DIR and keep it
    python -m bench.scale --reuse DIR         # start-up only, on a database kept with --keep (not --no-start-up)
    python -m bench.scale --reuse DIR --baseline /tmp/base --postgres postgresql://root@127.0.0.1:5432/test
    python -m bench.scale --reuse DIR --profile OUT   # one start profiled: pyinstrument and -X importtime
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
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
# The children's compiled bytecode (PYTHONPYCACHEPREFIX; one for every tree: the paths under it are
# the sources' own), kept even where the environment says PYTHONDONTWRITEBYTECODE, as bench.startup
# does: an installed bot has its .pyc files. Without it every start recompiled each of our modules
# (~0.2 CPU s) and the uncounted first round warmed nothing. Set by main() for the run.
PYCACHE: str | None = None
READY = "kis-chatops running"

# `chatbot run` as installed (its own entry point: collection paused until ready, as it does), with
# Runtime.start timed from outside: the JSON line comes when the "running" line is printed.
START = """
import json, os, sys, time
spawned = float(sys.argv[1])
profile = os.environ.get("BENCH_SCALE_PROFILE")
if profile:
    from pyinstrument import Profiler
    profiler = Profiler(interval=0.0005)
    profiler.start()
import chatbot.__main__ as entry

timed = {}
start_runtime = entry._start_runtime

async def timed_start(*args, **kwargs):
    started, cpu = time.perf_counter(), time.process_time()
    runtime = await start_runtime(*args, **kwargs)
    timed["start_to_ready"] = time.perf_counter() - started
    timed["start_cpu"] = time.process_time() - cpu
    timed["armed"] = len(runtime.engine.book) if runtime.engine is not None else 0
    return runtime

entry._start_runtime = timed_start

class Out:
    def __init__(self, stream):
        self.stream = stream
    def write(self, text):
        self.stream.write(text)
        if "READY_LINE" in text:
            hwm = next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM"))
            figures = {"spawn_to_ready": time.time() - spawned, "cpu": time.process_time(), "rss_mb": int(hwm) / 1024,
                       **timed}
            if profile:
                profiler.stop()
                with open(profile + "/profile.txt", "w") as out:
                    out.write(profiler.output_text(unicode=True, show_all=False))
                with open(profile + "/profile.html", "w") as out:
                    out.write(profiler.output_html())
            self.stream.write("\\n" + json.dumps(figures) + "\\n")
            self.stream.flush()
        return len(text)
    def flush(self):
        self.stream.flush()
    def __getattr__(self, name):
        return getattr(self.stream, name)

sys.stdout = Out(sys.stdout)
sys.exit(entry.main(["run"]))
""".replace("READY_LINE", READY)


def settings_for(tmp: str) -> Settings:
    return Settings(database=DatabaseSettings(url=f"sqlite:///{tmp}/bot.sqlite3"), kis=KisSettings(),
                    security=SecuritySettings(master_key_file=f"{tmp}/master.key"),
                    simulator=SimulatorSettings(tick_interval_seconds=0))


def snapshot_path(tmp: str, population: int) -> str:
    return f"{tmp}/users-{population}.sqlite3"


async def add_users(tmp: str, users: int, snapshots: tuple[int, ...] = ()) -> dict[str, Any]:
    """``users`` users added one after the other; a copy of the database kept at each population of
    ``snapshots`` (the simulator saves its state after every call that changed it: a copy between two
    users holds it all)."""
    keyring = MasterKeyring.load(f"{tmp}/master.key")
    runtime = await Runtime.start(settings_for(tmp), SimulatorOptions(tick_interval=0), keyring=keyring)
    wal = f"{tmp}/bot.sqlite3-wal"
    per_thousand: list[float] = []
    wal_max = 0
    try:
        block = time.perf_counter()
        for i in range(users + 1):
            if i in snapshots:
                await vacuum_into(runtime, snapshot_path(tmp, i))
            if i == users:
                break
            await add_user(runtime, 10_000_000 + i)
            wal_max = max(wal_max, file_size(wal))
            if (i + 1) % 1000 == 0:
                now = time.perf_counter()
                per_thousand.append(now - block)
                block = now
                print(f"  … {i + 1:,} users, last thousand {per_thousand[-1]:.1f} s, WAL now "
                      f"{file_size(wal) / 2**20:.1f} MB", flush=True)
                runtime.accounts._cache.clear()  # as many clients as a real bot keeps: not all at once
        assert runtime.sim is not None
        prices = {inst.code: state.price for inst in list(runtime.sim.market.directory.symbols("KRX"))[:SYMBOLS]
                  if (state := runtime.sim.market.get(inst.code)) is not None}
    finally:
        await runtime.aclose()
    return {"per_thousand": per_thousand, "wal_max": wal_max, "db": file_size(f"{tmp}/bot.sqlite3"),
            "prices": prices}


async def add_user(runtime: Runtime, user_id: int) -> None:
    """What a user's first command costs: a paper account and key pair, a token, the first balance."""
    account = await runtime.accounts.for_user(user_id)
    await account.client.balance()


async def vacuum_into(runtime: Runtime, path: str) -> None:
    Path(path).unlink(missing_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))  # private, as the bot's (and empty)
    async with runtime.db.engine.connect() as conn:
        await conn.exec_driver_sql("VACUUM INTO ?", (path,))


async def time_adding(tmp: str, population: int, batch: int, warm_up: int, first_id: int) -> dict[str, Any]:
    """The bot started on a fresh copy of the database kept at ``population`` users; ``warm_up`` users
    added untimed, then ``batch`` timed one by one, in wall and in CPU seconds (the process's: the
    embedded simulator and the database driver's threads are in it too). Per user: the batch's medians
    (and its WAL's largest)."""
    work = Path(tmp) / "adding"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    shutil.copy(snapshot_path(tmp, population), work / "bot.sqlite3")
    keyring = MasterKeyring.load(f"{tmp}/master.key")
    runtime = await Runtime.start(settings_for(str(work)), SimulatorOptions(tick_interval=0), keyring=keyring)
    wall: list[float] = []
    cpu: list[float] = []
    wal_max = 0
    try:
        for i in range(warm_up + batch):
            t0, c0 = time.perf_counter(), time.process_time()
            await add_user(runtime, first_id + i)
            if i >= warm_up:
                wall.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            wal_max = max(wal_max, file_size(work / "bot.sqlite3-wal"))
    finally:
        await runtime.aclose()
        shutil.rmtree(work, ignore_errors=True)
    return {"wall": statistics.median(wall), "cpu": statistics.median(cpu), "wal_max": wal_max}


async def compare_adding(tmp: str, populations: tuple[int, ...], samples: int, batch: int,
                         warm_up: int) -> None:
    """``samples`` rounds of :func:`time_adding` at every population, alternated (ABC, CBA, ...)."""
    medians: dict[str, dict[int, list[float]]] = {"wall": {n: [] for n in populations},
                                                  "CPU": {n: [] for n in populations}}
    wal_max = 0
    for r in range(samples):
        for n in (populations if r % 2 == 0 else populations[::-1]):
            got = await time_adding(tmp, n, batch, warm_up, 20_000_000 + r * (batch + warm_up))
            medians["wall"][n].append(got["wall"])
            medians["CPU"][n].append(got["cpu"])
            wal_max = max(wal_max, got["wal_max"])
        print(f"  … round {r + 1}/{samples}: " + ", ".join(
            f"{n:,} users {medians['wall'][n][-1] * 1e3:.1f} ms ({medians['CPU'][n][-1] * 1e3:.1f} CPU ms)"
            for n in populations), flush=True)
    print(f"adding a user (paper account, token, first balance) at each population: median of {samples} alternated "
          f"rounds, each the median of {batch} users (after {warm_up} untimed) on a fresh copy; largest WAL "
          f"meanwhile {wal_max / 2**20:.1f} MB", flush=True)
    first, last = populations[0], populations[-1]
    for what, by_population in medians.items():
        paired = sorted(b / a for a, b in zip(by_population[first], by_population[last], strict=True))
        overall = {n: statistics.median(v) for n, v in by_population.items()}
        print(f"  {what} per user (range): " + ", ".join(
            f"{n:,} users {overall[n] * 1e3:.1f} ms ({min(v) * 1e3:.1f}–{max(v) * 1e3:.1f})"
            for n, v in by_population.items())
            + f" → at {last:,} / at {first:,}: {overall[last] / overall[first]:.2f}× (paired by round: median "
            f"{statistics.median(paired):.2f}×, range {paired[0]:.2f}–{paired[-1]:.2f}×)", flush=True)


async def add_alerts(tmp: str, users: int, alerts: int, prices: dict[str, int]) -> None:
    """``alerts`` armed alerts, each of a random user on a random one of the symbols, above or below,
    35–100 % away from the symbol's price (KRX moves at most 30 % a day: none fires during the run)."""
    from chatbot.storage import Database

    db = Database(f"sqlite:///{tmp}/bot.sqlite3")
    rng = random.Random(3)
    codes = sorted(prices)
    now = utcnow()
    rows = []
    for _ in range(alerts):
        user, code, above = 10_000_000 + rng.randrange(users), rng.choice(codes), rng.random() < 0.5
        price = prices[code]
        threshold = price * rng.randrange(135, 200) // 100 if above else max(1, price * rng.randrange(1, 65) // 100)
        rows.append({"owner_id": user, "chat_id": user, "language": "ko", "code": code, "name": code,
                     "direction": "above" if above else "below", "threshold": threshold, "reference_price": price,
                     "percent": None, "repeat": False, "cooldown_seconds": 600, "status": "armed",
                     "fired_count": 0, "created_at": now, "updated_at": now})
    async with db.engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            await conn.execute(insert(AlertRow), rows[i:i + 5000])
    await db.dispose()


async def copy_to_postgres(source: str, server_url: str, name: str) -> str:
    """A new PostgreSQL database ``name`` on the server of ``server_url`` (migrated), holding every row of
    the SQLite database ``source``; its URL."""
    import psycopg
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from chatbot.storage import Database

    server = make_url(server_url)
    async with await psycopg.AsyncConnection.connect(server.set(drivername="postgresql").render_as_string(
            hide_password=False), autocommit=True) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    pg = Database(url)
    await pg.migrate()
    lite = sa.create_engine(f"sqlite:///{source}")
    pg_meta = sa.MetaData()
    async with pg.engine.connect() as conn:
        await conn.run_sync(pg_meta.reflect)
    try:
        with lite.connect() as read:
            for table in pg_meta.sorted_tables:
                if table.name == "alembic_version":
                    continue
                # SQLite's raw values (no type processing), given to PostgreSQL's columns' own types
                raw = read.exec_driver_sql(f"SELECT {', '.join(c.name for c in table.c)} FROM {table.name}")
                rows = [dict(zip(table.c.keys(), r, strict=True)) for r in raw]
                for column in table.c:
                    convert = _from_sqlite(column.type)
                    if convert is not None:
                        for row in rows:
                            if row[column.name] is not None:
                                row[column.name] = convert(row[column.name])
                async with pg.engine.begin() as conn:
                    for i in range(0, len(rows), 5000):
                        await conn.execute(table.insert(), rows[i:i + 5000])
                    key = list(table.primary_key.columns)
                    if rows and len(key) == 1 and isinstance(key[0].type, sa.Integer) and key[0].autoincrement:
                        await conn.exec_driver_sql(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', '{key[0].name}'), "
                            f"(SELECT max({key[0].name}) FROM {table.name}))")
    finally:
        lite.dispose()
        await pg.dispose()
    return url


def _from_sqlite(sql_type: Any) -> Any:
    import datetime as dt

    import sqlalchemy as sa

    if isinstance(sql_type, sa.Boolean):
        return bool
    if isinstance(sql_type, sa.DateTime):
        return lambda v: dt.datetime.fromisoformat(v) if isinstance(v, str) else v
    if isinstance(sql_type, sa.JSON):
        return json.loads
    return None


async def drop_postgres(server_url: str, name: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    async with await psycopg.AsyncConnection.connect(server, autocommit=True) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def start_in_fresh_process(url: str, key_file: str, fake_url: str, tree: Path = ROOT,
                                  extra_env: dict[str, str] | None = None, flags: tuple[str, ...] = ()
                                  ) -> dict[str, Any]:
    """Spawn ``chatbot run`` (tree ``tree``) on the database ``url``; its figures at ready; then SIGINT."""
    from tests.harness import TOKEN

    env = {**os.environ, **(extra_env or {}), "PYTHONPATH": str(tree), "KISBOT_DATABASE_URL": url,
           "KISBOT_SECURITY_MASTER_KEY_FILE": key_file,
           "KISBOT_LOGGING_LEVEL": os.environ.get("BENCH_SCALE_LOG_LEVEL", "WARNING"),
           "KISBOT_TELEGRAM_TOKEN": TOKEN, "KISBOT_TELEGRAM_BASE_URL": fake_url}
    if PYCACHE is not None:
        env["PYTHONPYCACHEPREFIX"] = PYCACHE
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    log = os.open(env.get("BENCH_SCALE_LOG", os.devnull), os.O_WRONLY | os.O_CREAT | os.O_APPEND)  # its logs
    spawned = time.time()
    proc = await asyncio.create_subprocess_exec(sys.executable, *flags, "-c", START, repr(spawned), cwd=tree, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=log)
    assert proc.stdout is not None
    result: dict[str, Any] = {}
    try:
        while not result:
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
            if not line:
                raise RuntimeError(f"chatbot run ended before ready (tree {tree})")
            if line.startswith(b"{"):
                result = json.loads(line)
    finally:
        proc.send_signal(signal.SIGINT)
        await proc.communicate()
        os.close(log)
    return result


async def profile_start(where: Path, pristine: str, key_file: str, fake_url: str, postgres: str | None,
                        sqlite_url: str, reset: Any) -> None:
    """One start warmed (bytecode, page cache), then one under pyinstrument, then one under -X importtime."""
    where.mkdir(parents=True, exist_ok=True)
    url, name = sqlite_url, f"bench_scale_{os.getpid()}"
    if postgres:
        url = await copy_to_postgres(pristine, postgres, name)
    try:
        for what, extra, flags in (("warm-up", {}, ()), ("pyinstrument", {"BENCH_SCALE_PROFILE": str(where)}, ()),
                                   ("importtime", {"BENCH_SCALE_LOG": str(where / "importtime.txt")},
                                    ("-X", "importtime"))):
            if not postgres:
                await reset()
            Path(where / "importtime.txt").unlink(missing_ok=True)
            figures = await start_in_fresh_process(url, key_file, fake_url, extra_env=extra, flags=flags)
            print(f"{what}: spawn → ready {figures['spawn_to_ready']:.2f} s, Runtime.start "
                  f"{figures['start_to_ready']:.2f} s, {figures['cpu']:.2f} CPU s", flush=True)
    finally:
        if postgres:
            await drop_postgres(postgres, name)
    print(f"written to {where}: profile.txt, profile.html, importtime.txt", flush=True)


def spread(rows: list[dict[str, Any]], key: str) -> str:
    values = sorted(r[key] for r in rows)
    return f"{statistics.median(values):.2f} s ({values[0]:.2f}–{values[-1]:.2f})"


async def compare(label: str, scale_url: str, empty_url: str, keys: dict[str, str], rounds: int,
                  baseline: Path | None, fake_url: str, reset: Any) -> None:
    """``rounds`` starts of this tree on the large database, alternated with the empty one (and the
    baseline tree on the large one); ``reset()`` puts the large database back before each start."""
    runs: dict[str, list[dict[str, Any]]] = {"scale": [], "empty": [], "baseline": []}
    for _ in range(rounds + 1):  # the first round warms the page cache and the bytecode: not counted
        await reset()
        scale = await start_in_fresh_process(scale_url, keys["scale"], fake_url)
        empty = await start_in_fresh_process(empty_url, keys["empty"], fake_url)
        old = None
        if baseline is not None:
            await reset()
            old = await start_in_fresh_process(scale_url, keys["scale"], fake_url, baseline)
        if _ > 0:
            runs["scale"].append(scale)
            runs["empty"].append(empty)
            if old is not None:
                runs["baseline"].append(old)
    s, e = runs["scale"], runs["empty"]
    med = {k: statistics.median(r[k] for r in s)
           for k in ("spawn_to_ready", "start_to_ready", "rss_mb", "cpu", "start_cpu")}
    anchor = {k: statistics.median(r[k] for r in e) for k in ("spawn_to_ready", "start_to_ready", "rss_mb")}
    print(f"{label}: start-up of `chatbot run` with {s[-1]['armed']:,} armed alerts in the book at ready, fresh "
          f"process, medians of {rounds} (range): spawn → ready {spread(s, 'spawn_to_ready')}, Runtime.start "
          f"{spread(s, 'start_to_ready')} ({med['start_cpu']:.2f} CPU s), {med['cpu']:.2f} CPU s to ready, peak RSS {med['rss_mb']:.0f} MB; empty "
          f"database (same run): spawn → ready {anchor['spawn_to_ready']:.2f} s, Runtime.start "
          f"{anchor['start_to_ready']:.2f} s, {anchor['rss_mb']:.0f} MB → Runtime.start "
          f"{med['start_to_ready'] / anchor['start_to_ready']:.1f}× the empty one's, "
          f"+{med['rss_mb'] - anchor['rss_mb']:.0f} MB", flush=True)
    if runs["baseline"]:
        b = runs["baseline"]
        old = {k: statistics.median(r[k] for r in b)
               for k in ("spawn_to_ready", "start_to_ready", "rss_mb", "cpu", "start_cpu")}
        print(f"  baseline {baseline}, same database, alternated: spawn → ready {spread(b, 'spawn_to_ready')}, "
              f"Runtime.start {spread(b, 'start_to_ready')} ({old['start_cpu']:.2f} CPU s), {old['cpu']:.2f} CPU s to ready, peak RSS {old['rss_mb']:.0f} MB "
              f"({b[-1]['armed']:,} armed) → this tree / baseline: spawn → ready "
              f"{med['spawn_to_ready'] / old['spawn_to_ready']:.2f}×, Runtime.start "
              f"{med['start_to_ready'] / old['start_to_ready']:.2f}× (CPU {med['start_cpu'] / old['start_cpu']:.2f}×), CPU to ready "
              f"{med['cpu'] / old['cpu']:.2f}×, "
              f"peak RSS {med['rss_mb'] / old['rss_mb']:.2f}×", flush=True)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=5, help="rounds of adding users at each population")
    parser.add_argument("--batch", type=int, default=200, help="users timed per round and population")
    parser.add_argument("--warm-up", type=int, default=50, help="users added untimed before each batch")
    parser.add_argument("--no-start-up", action="store_true", help="adding users only: no alerts, no start-ups")
    parser.add_argument("--adding", action="store_true",
                        help="with --reuse: time adding users again, on the copies a --keep run kept")
    parser.add_argument("--keep", help="build the database in this (new) directory and keep it")
    parser.add_argument("--reuse", help="start-up only, on the database a --keep run left in this directory")
    parser.add_argument("--baseline", type=Path, help="another tree, its starts alternated with this one's")
    parser.add_argument("--postgres", help="also on a PostgreSQL copy (a server URL; a new database on it)")
    parser.add_argument("--profile", type=Path, help="instead of the rounds: one start of this tree on the large "
                        "database (SQLite, or --postgres) profiled into this directory: profile.txt and .html "
                        "(pyinstrument, spawn to ready), importtime.txt (python -X importtime)")
    args = parser.parse_args(argv if argv is not None else [])
    from tests.fake_telegram import FakeTelegram
    from tests.harness import TOKEN

    global PYCACHE
    fake = FakeTelegram(TOKEN)
    await fake.start()
    try:
        with (tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as scratch,
              tempfile.TemporaryDirectory() as pycache):
            PYCACHE = pycache
            built = args.reuse or args.keep or scratch
            Path(built).mkdir(parents=True, exist_ok=True)
            if args.reuse and args.adding:
                kept = sorted(int(f.stem.split("-")[1]) for f in Path(built).glob("users-*.sqlite3"))
                await compare_adding(built, tuple(kept), args.samples, args.batch, args.warm_up)
                if args.no_start_up:
                    return
            if not args.reuse:
                populations = tuple(sorted({0, args.users // 2, args.users}))
                r = await add_users(built, args.users, populations)
                print(f"adding {args.users:,} users (paper account, token, first balance each): largest WAL "
                      f"{r['wal_max'] / 2**20:.1f} MB (database {r['db'] / 2**20:.1f} MB)", flush=True)
                await compare_adding(built, populations, args.samples, args.batch, args.warm_up)
                if args.no_start_up:
                    return
                await add_alerts(built, args.users, args.alerts, r["prices"])
                async with _sqlite(f"{built}/bot.sqlite3") as conn:  # a clean copy to start each run from
                    await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                shutil.copy(f"{built}/bot.sqlite3", f"{built}/pristine.sqlite3")
            work = Path(scratch) / "run"
            work.mkdir(exist_ok=True)

            async def reset_sqlite() -> None:  # each start on the same data (a start saves the simulator's state)
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{work}/bot.sqlite3{suffix}").unlink(missing_ok=True)
                shutil.copy(f"{built}/pristine.sqlite3", f"{work}/bot.sqlite3")

            keys = {"scale": f"{built}/master.key", "empty": f"{empty}/master.key"}
            if args.profile:
                await profile_start(args.profile, f"{built}/pristine.sqlite3", keys["scale"], fake.base_url,
                                    args.postgres, f"sqlite:///{work}/bot.sqlite3", reset_sqlite)
                return
            await compare("SQLite", f"sqlite:///{work}/bot.sqlite3", f"sqlite:///{empty}/bot.sqlite3", keys,
                          args.rounds, args.baseline, fake.base_url, reset_sqlite)
            if args.postgres:
                name = f"bench_scale_{os.getpid()}"
                pg_url = await copy_to_postgres(f"{built}/pristine.sqlite3", args.postgres, name)
                empty_pg = await copy_to_postgres(f"{empty}/bot.sqlite3", args.postgres, name + "_empty")

                async def reset_pg() -> None:  # a start changes only the simulator's state and leases
                    return None

                try:
                    await compare("PostgreSQL", pg_url, empty_pg, keys, args.rounds, args.baseline, fake.base_url,
                                  reset_pg)
                finally:
                    await drop_postgres(args.postgres, name)
                    await drop_postgres(args.postgres, name + "_empty")
    finally:
        await fake.stop()


def _sqlite(path: str) -> Any:
    from sqlalchemy.ext.asyncio import create_async_engine

    class Conn:
        async def __aenter__(self) -> Any:
            self.engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
            self.conn = await self.engine.connect()
            return self.conn

        async def __aexit__(self, *exc: object) -> None:
            await self.conn.close()
            await self.engine.dispose()

    return Conn()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
