"""Start-up: ``chatbot console`` to its prompt and to the bot being up, against a bare
python-telegram-bot Application started on the same in-process fake Bot API (the anchor), each in
a fresh process, alternated, the same number of times; wall seconds and the process's own CPU
seconds to ready (the CPU figure holds on a busy machine), the peak resident memory of each (VmHWM
at ready) and which heavy modules the start imported. Then ``chatbot run`` (long polling a fake
Bot API over HTTP) against a bare PTB bot polling the same fake: its resident memory once idle.

Every child gets a compiled-bytecode cache (``PYTHONPYCACHEPREFIX``, warmed by a first start of
each) even where the environment says ``PYTHONDONTWRITEBYTECODE``: an installed bot has its .pyc
files, and without them every start of ours recompiled ~100 modules the bare bot never imports.

    python -m bench.startup
    python -m bench.startup --baseline DIR   # against earlier code: git archive <commit> | tar -x -C DIR
    python -m bench.startup --baseline DIR --rounds 3
    python -m bench.startup --libraries      # what the console imports beyond the bare bot, per library
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROUNDS = 5
ROOT = Path(__file__).resolve().parent.parent
PROMPT = "kis-chatops console"  # the banner: printed first, typing may start
READY = "ready · mode"  # the bot is up: what was typed gets answered
ANSWER = "bot> "  # the first answer: to FIRST, typed at spawn (before the bot is up, as a user may)
FIRST = "/price 005930"
BARE_PROMPT = "bare bot ready"
HEAVY = ("alembic", "aiohttp", "trio", "matplotlib", "holidays")  # reported when the start imported them

# A bare PTB bot: Application built with the console's in-process Bot API transport, one command
# handler, initialize + start + polling, then the prompt (what `chatbot console` does, minus the bot).
BARE = f"""
import asyncio, sys, time
from telegram.ext import ApplicationBuilder, CommandHandler
from chatbot.console.botapi import BotApiEmulator
from chatbot.console.transport import EmulatorRequest

async def price(update, context):
    await update.effective_message.reply_text("price")

async def main():
    request = EmulatorRequest(BotApiEmulator())
    app = (ApplicationBuilder().token("0:bare").request(request).get_updates_request(request).build())
    app.add_handler(CommandHandler("price", price))
    await app.initialize()
    await app.start()
    await app.updater.start_polling(timeout=1)
    print("{BARE_PROMPT}", flush=True)
    print("cpu:%f" % time.process_time(), flush=True)
    loaded = [m for m in {HEAVY!r} if sys.modules.get(m) is not None]
    print("loaded:" + ",".join(loaded), flush=True)
    print("hwm:" + next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await app.updater.stop()
    await app.stop()
    await app.shutdown()

asyncio.run(main())
"""

# Ours: the real entry point; it reports which heavy modules the start imported once at the prompt.
OURS = f"""
import sys, threading, time
from chatbot.__main__ import main

def report():
    print("cpu:%f" % time.process_time(), flush=True)
    print("loaded:" + ",".join(m for m in {HEAVY!r} if sys.modules.get(m) is not None), flush=True)
    print("hwm:" + next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")), flush=True)

class Out:
    def __init__(self, stream):
        self.stream = stream
        self.answered = False
    def write(self, text):
        self.stream.write(text)
        if "{READY}" in text:
            self.stream.flush()
            report()
        if text.startswith("{ANSWER}") and not self.answered:
            self.answered = True
            self.stream.flush()
            print("acpu:%f" % time.process_time(), flush=True)
        return len(text)
    def flush(self):
        self.stream.flush()
    def __getattr__(self, name):
        return getattr(self.stream, name)

sys.stdout = Out(sys.stdout)
sys.argv = ["chatbot", "console"]
sys.exit(main())
"""


def timed_start(code: str, prompt: str, ready_line: str, env: dict[str, str], cwd: Path = ROOT,
                first: str | None = None) -> dict[str, Any]:
    """Seconds from spawning the process to its prompt and to ready, its peak RSS (MB), what the
    start had imported; with ``first``, that command is typed at spawn (before the bot is up) and
    the seconds and CPU seconds to its answer are noted too."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=cwd, env=env)
    assert proc.stdout is not None and proc.stdin is not None
    out: dict[str, Any] = {"prompt": float("nan"), "ready": float("nan"), "cpu": float("nan"), "loaded": "",
                           "answer": float("nan"), "acpu": float("nan")}
    if first is not None:
        proc.stdin.write(first + "\n")
        proc.stdin.flush()
    for line in proc.stdout:
        now = time.perf_counter() - started
        if prompt in line and out["prompt"] != out["prompt"]:
            out["prompt"] = now
        if ready_line in line and out["ready"] != out["ready"]:
            out["ready"] = now
        if line.startswith("cpu:"):  # the child's own CPU seconds at ready
            out["cpu"] = float(line.strip()[4:])
        if line.startswith("loaded:"):
            out["loaded"] = line.strip()[7:]
        if line.startswith(ANSWER) and out["answer"] != out["answer"]:
            out["answer"] = now
        if line.startswith("acpu:"):  # the child's CPU seconds at the first answer
            out["acpu"] = float(line.strip()[5:])
        if line.startswith("hwm:"):  # the process's own peak RSS at ready (kB; not the forking parent's)
            out["rss"] = int(line.strip()[4:]) / 1024
        if "rss" in out and (first is None or out["acpu"] == out["acpu"]):
            proc.stdin.write("/quit\n")
            proc.stdin.flush()
            proc.stdin.close()
            break
    proc.stdout.read()
    proc.wait()
    return out


def child_env(tmp: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KISBOT_DATABASE_URL": f"sqlite:///{tmp}/bot.sqlite3",
           "KISBOT_SECURITY_MASTER_KEY_FILE": f"{tmp}/master.key", "KISBOT_LOGGING_LEVEL": "WARNING",
           "PYTHONPYCACHEPREFIX": f"{tmp}/pycache"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def main_sync() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = child_env(tmp)
        timed_start(BARE, BARE_PROMPT, BARE_PROMPT, env)  # warms the bytecode cache
        first = timed_start(OURS, PROMPT, READY, env)  # creates the database and the master key
        ours: list[dict[str, Any]] = []
        bare: list[dict[str, Any]] = []
        for _ in range(ROUNDS):
            bare.append(timed_start(BARE, BARE_PROMPT, BARE_PROMPT, env))
            ours.append(timed_start(OURS, PROMPT, READY, env, first=FIRST))
    med = {k: statistics.median(r[k] for r in ours) for k in ("prompt", "ready", "cpu", "rss", "answer", "acpu")}
    anchor = {k: statistics.median(r[k] for r in bare) for k in ("ready", "cpu", "rss")}
    print(f"chatbot console, fresh process, medians of {ROUNDS} alternated with a bare PTB bot started on the same "
          f"in-process fake Bot API ({anchor['ready']:.2f} s, {anchor['cpu']:.2f} CPU s to its prompt, "
          f"{anchor['rss']:.0f} MB): prompt {med['prompt']:.2f} s → {med['prompt'] / anchor['ready']:.2f}× (what is "
          f"typed from then on is answered once the bot is up); bot up {med['ready']:.2f} s → "
          f"{med['ready'] / anchor['ready']:.2f}×, {med['cpu']:.2f} CPU s → {med['cpu'] / anchor['cpu']:.2f}×; "
          f"`{FIRST}` typed at spawn answered at {med['answer']:.2f} s ({med['acpu']:.2f} CPU s); peak "
          f"RSS {med['rss']:.0f} MB; first start (creates the database) up in {first['ready']:.2f} s; imported by "
          f"the start: ours {ours[-1]['loaded'] or 'none of ' + ', '.join(HEAVY)}, the bare bot "
          f"{bare[-1]['loaded'] or 'none'}", flush=True)


# `chatbot run` and a bare PTB bot, each long polling the fake Bot API over HTTP; the resident memory
# once idle (ready, then IDLE seconds with nothing to do but poll and, for ours, the simulator ticking).
IDLE = 3.0
RUN = """
import sys
from chatbot.__main__ import main
sys.exit(main(["run"]))
"""
BARE_RUN = """
import asyncio, os, sys
from telegram.ext import ApplicationBuilder, CommandHandler

async def price(update, context):
    await update.effective_message.reply_text("price")

async def main():
    app = ApplicationBuilder().token(os.environ["KISBOT_TELEGRAM_TOKEN"]).base_url(
        os.environ["KISBOT_TELEGRAM_BASE_URL"]).build()
    app.add_handler(CommandHandler("price", price))
    await app.initialize()
    await app.start()
    await app.updater.start_polling(timeout=1)
    print("kis-chatops running (bare)", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(2, stop.set)
    await stop.wait()
    await app.updater.stop()
    await app.stop()
    await app.shutdown()

asyncio.run(main())
"""


async def idle_rss(code: str, env: dict[str, str], cwd: Path = ROOT) -> dict[str, float]:
    """Spawn → "running" line, IDLE seconds, then the child's VmRSS and VmHWM (MB); SIGINT to stop."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.DEVNULL, cwd=cwd, env=env)
    assert proc.stdout is not None
    started = time.perf_counter()
    while b"kis-chatops running" not in await asyncio.wait_for(proc.stdout.readline(), 60):
        pass
    ready = time.perf_counter() - started
    await asyncio.sleep(IDLE)
    status = dict(line.split(":", 1) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines())
    proc.send_signal(signal.SIGINT)
    await proc.communicate()
    return {"ready": ready, "rss": int(status["VmRSS"].split()[0]) / 1024, "hwm": int(status["VmHWM"].split()[0]) / 1024}


async def run_memory() -> None:
    from tests.fake_telegram import FakeTelegram
    from tests.harness import TOKEN

    fake = FakeTelegram(TOKEN)
    await fake.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**child_env(tmp), "KISBOT_TELEGRAM_TOKEN": TOKEN, "KISBOT_TELEGRAM_BASE_URL": fake.base_url}
            await idle_rss(BARE_RUN, env)  # warms the bytecode cache
            await idle_rss(RUN, env)  # and creates the database
            ours, bare = [], []
            for _ in range(3):
                bare.append(await idle_rss(BARE_RUN, env))
                ours.append(await idle_rss(RUN, env))
    finally:
        await fake.stop()
    o = {k: statistics.median(r[k] for r in ours) for k in ("ready", "rss", "hwm")}
    b = {k: statistics.median(r[k] for r in bare) for k in ("ready", "rss", "hwm")}
    print(f"chatbot run (simulator mode, long polling a fake Bot API over HTTP), medians of 3 alternated with a bare "
          f"PTB bot polling the same fake: idle RSS {o['rss']:.0f} MB (peak {o['hwm']:.0f} MB) vs {b['rss']:.0f} MB "
          f"(peak {b['hwm']:.0f} MB) → {o['rss'] / b['rss']:.2f}×; spawn → running {o['ready']:.2f} s vs "
          f"{b['ready']:.2f} s", flush=True)


async def against(baseline: Path, rounds: int = ROUNDS) -> None:
    """This tree against ``baseline`` (a copy of earlier code: ``git archive <commit> | tar -x -C DIR``),
    interleaved with the bare bot, each with its own database and bytecode cache: console start and
    ``chatbot run`` idle memory, as ratios new / baseline from the same run."""
    from tests.fake_telegram import FakeTelegram
    from tests.harness import TOKEN

    trees = {"baseline": baseline.resolve(), "this tree": ROOT}
    fake = FakeTelegram(TOKEN)
    await fake.start()
    console: dict[str, list[dict[str, Any]]] = {name: [] for name in ("bare", *trees)}
    run: dict[str, list[dict[str, float]]] = {name: [] for name in ("bare", *trees)}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            envs = {}
            for name, root in trees.items():
                os.makedirs(f"{tmp}/{name}")
                envs[name] = {**child_env(f"{tmp}/{name}"), "PYTHONPATH": str(root), "KISBOT_TELEGRAM_TOKEN": TOKEN,
                              "KISBOT_TELEGRAM_BASE_URL": fake.base_url}
                timed_start(OURS, PROMPT, READY, envs[name], root)  # bytecode cache, database, master key
            timed_start(BARE, BARE_PROMPT, BARE_PROMPT, envs["this tree"])
            await idle_rss(BARE_RUN, envs["this tree"])
            for _ in range(rounds):
                console["bare"].append(timed_start(BARE, BARE_PROMPT, BARE_PROMPT, envs["this tree"]))
                run["bare"].append(await idle_rss(BARE_RUN, envs["this tree"]))
                for name, root in trees.items():
                    console[name].append(timed_start(OURS, PROMPT, READY, envs[name], root, first=FIRST))
                    run[name].append(await idle_rss(RUN, envs[name], root))
    finally:
        await fake.stop()
    keys = ("ready", "cpu", "rss", "answer", "acpu")
    c = {name: {k: statistics.median(r[k] for r in rows) for k in keys} for name, rows in console.items()}
    spread = {name: {k: (min(r[k] for r in rows), max(r[k] for r in rows)) for k in keys} for name, rows in console.items()}
    m = {name: statistics.median(r["rss"] for r in rows) for name, rows in run.items()}
    for name in ("bare", *trees):
        lo, hi = spread[name]["ready"], spread[name]["cpu"]
        versus = "" if name == "bare" else (
            f" ({c[name]['ready'] / c['bare']['ready']:.2f}× the bare bot's wall, {c[name]['cpu'] / c['bare']['cpu']:.2f}× "
            f"its CPU); `{FIRST}` typed at spawn answered at {c[name]['answer']:.2f} s, {c[name]['acpu']:.2f} CPU s "
            f"({c[name]['answer'] - c[name]['ready']:.2f} s after up)")
        print(f"  {name}: console up {c[name]['ready']:.2f} s [{lo[0]:.2f}–{lo[1]:.2f}], {c[name]['cpu']:.2f} CPU s "
              f"[{hi[0]:.2f}–{hi[1]:.2f}]{versus}, peak RSS {c[name]['rss']:.0f} MB; chatbot run idle RSS "
              f"{m[name]:.0f} MB", flush=True)
    new, old = c["this tree"], c["baseline"]
    print(f"this tree / baseline, medians of {rounds} interleaved: console up {new['ready'] / old['ready']:.2f}×, CPU "
          f"{new['cpu'] / old['cpu']:.2f}×, first answer {new['answer'] / old['answer']:.2f}× (CPU "
          f"{new['acpu'] / old['acpu']:.2f}×), peak RSS {new['rss'] / old['rss']:.2f}×; chatbot run idle RSS "
          f"{m['this tree'] / m['baseline']:.2f}× (bare PTB bot: {m['this tree'] / m['bare']:.2f}× vs "
          f"{m['baseline'] / m['bare']:.2f}×)", flush=True)


# What `chatbot console` loads beyond the bare bot before it answers, library by library: one fresh
# process imports them in this order after the bare bot's own imports and notes its CPU seconds after
# each (what a library shares with an earlier one counts for the earlier one); medians of LIBRARY_RUNS.
LIBRARY_RUNS = 7
LIBRARIES = (
    ("bare bot (PTB, httpx, the in-process Bot API)",
     "import asyncio, telegram, telegram.ext; import chatbot.console.botapi, chatbot.console.transport"),
    ("the entry point (config, logging, argument parsing)", "import chatbot.__main__"),
    ("SQLAlchemy (core, ORM, asyncio, aiosqlite)", "import sqlalchemy.orm, sqlalchemy.ext.asyncio, aiosqlite"),
    ("pydantic + SQLModel", "import sqlmodel"),
    ("SQLAlchemy's PostgreSQL dialects (the outbox's partial indexes name postgresql_where)",
     "import sqlalchemy.dialects.postgresql"),
    ("our 18 SQLModel tables (and the secret box: cryptography itself comes with PTB)",
     "import chatbot.storage.tables, chatbot.storage.master_files"),
    ("aiohttp (the simulator's server; its client half and two TLS contexts come with it)", "import aiohttp.web"),
    ("websockets (the feed's client)", "import websockets.asyncio.client"),
    ("holidays (the KRX calendar, first asked by the daily-report catch-up at start)",
     "import datetime; from chatbot.markets.krx_hours import is_trading_day; is_trading_day(datetime.date(2026, 1, 2))"),
    ("the rest of chatbot (runtime, services, simulator, KIS client: ~150 modules)", "import chatbot.runtime, chatbot.sim.server"),
    ("chatbot.telegram (handlers, rendering, i18n)", "import chatbot.telegram.app"),
)
LIBRARY_CODE = """
import sys, time
sys.modules.setdefault("httpx._main", None); sys.modules.setdefault("trio", None)
steps = {steps!r}
for code in steps:
    exec(code)
    print("%f" % time.process_time(), flush=True)
"""


def libraries(env: dict[str, str]) -> list[tuple[str, float]]:
    """(library, median CPU seconds its import adds) for :data:`LIBRARIES`, in order."""
    code = LIBRARY_CODE.format(steps=[step for _, step in LIBRARIES])
    runs = []
    for _ in range(LIBRARY_RUNS + 1):  # the first warms the bytecode cache
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, check=True)
        marks = [float(x) for x in done.stdout.split()]
        runs.append([b - a for a, b in zip([0.0, *marks], marks, strict=False)])
    return [(name, statistics.median(run[i] for run in runs[1:])) for i, (name, _) in enumerate(LIBRARIES)]


def print_libraries() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = libraries(child_env(tmp))
    total = sum(cpu for _, cpu in rows)
    print(f"what `chatbot console` imports before its first answer, CPU ms, medians of {LIBRARY_RUNS} fresh processes "
          f"(in this order; shared modules count for the first): " + "; ".join(f"{name} {cpu * 1e3:.0f}" for name, cpu in rows)
          + f"; in all {total * 1e3:.0f} ms (the bare bot's part {rows[0][1] * 1e3:.0f})", flush=True)


async def main() -> None:
    if "--libraries" in sys.argv:
        print_libraries()
        return
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else ROUNDS
    if "--baseline" in sys.argv:
        await against(Path(sys.argv[sys.argv.index("--baseline") + 1]), rounds)
        return
    await asyncio.get_running_loop().run_in_executor(None, main_sync)
    await run_memory()


if __name__ == "__main__":
    asyncio.run(main())
