"""Start-up: ``chatbot console`` to its prompt and to the bot being up, against a bare
python-telegram-bot Application started on the same in-process fake Bot API (the anchor), each in
a fresh process, alternated, the same number of times; plus the peak resident memory of each (VmHWM at ready) and
whether matplotlib / holidays got imported by the start.

    python -m bench.startup
"""

from __future__ import annotations

import os
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
BARE_PROMPT = "bare bot ready"

# A bare PTB bot: Application built with the console's in-process Bot API transport, one command
# handler, initialize + start + polling, then the prompt (what `chatbot console` does, minus the bot).
BARE = f"""
import asyncio, sys
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
    loaded = [m for m in ("matplotlib", "holidays") if m in sys.modules]
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
import sys, threading
from chatbot.__main__ import main

def report():
    print("loaded:" + ",".join(m for m in ("matplotlib", "holidays") if m in sys.modules), flush=True)
    print("hwm:" + next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")), flush=True)

class Out:
    def __init__(self, stream):
        self.stream = stream
    def write(self, text):
        self.stream.write(text)
        if "{READY}" in text:
            self.stream.flush()
            report()
        return len(text)
    def flush(self):
        self.stream.flush()
    def __getattr__(self, name):
        return getattr(self.stream, name)

sys.stdout = Out(sys.stdout)
sys.argv = ["chatbot", "console"]
sys.exit(main())
"""


def timed_start(code: str, prompt: str, ready_line: str, env: dict[str, str]) -> dict[str, Any]:
    """Seconds from spawning the process to its prompt and to ready, its peak RSS (MB), what the
    start had imported."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=env)
    assert proc.stdout is not None and proc.stdin is not None
    out: dict[str, Any] = {"prompt": float("nan"), "ready": float("nan"), "loaded": ""}
    for line in proc.stdout:
        now = time.perf_counter() - started
        if prompt in line and out["prompt"] != out["prompt"]:
            out["prompt"] = now
        if ready_line in line and out["ready"] != out["ready"]:
            out["ready"] = now
        if line.startswith("loaded:"):
            out["loaded"] = line.strip()[7:]
        if line.startswith("hwm:"):  # the process's own peak RSS at ready (kB; not the forking parent's)
            out["rss"] = int(line.strip()[4:]) / 1024
            proc.stdin.write("/quit\n")
            proc.stdin.flush()
            proc.stdin.close()
            break
    proc.stdout.read()
    proc.wait()
    return out


def main_sync() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "KISBOT_DATABASE_URL": f"sqlite:///{tmp}/bot.sqlite3",
               "KISBOT_SECURITY_MASTER_KEY_FILE": f"{tmp}/master.key", "KISBOT_LOGGING_LEVEL": "WARNING"}
        first = timed_start(OURS, PROMPT, READY, env)  # creates the database and the master key
        ours: list[dict[str, Any]] = []
        bare: list[dict[str, Any]] = []
        for _ in range(ROUNDS):
            bare.append(timed_start(BARE, BARE_PROMPT, BARE_PROMPT, env))
            ours.append(timed_start(OURS, PROMPT, READY, env))
    med = {k: statistics.median(r[k] for r in ours) for k in ("prompt", "ready", "rss")}
    anchor = {k: statistics.median(r[k] for r in bare) for k in ("ready", "rss")}
    print(f"chatbot console, fresh process, medians of {ROUNDS} alternated with a bare PTB bot started on the same "
          f"in-process fake Bot API ({anchor['ready']:.2f} s to its prompt, {anchor['rss']:.0f} MB): prompt "
          f"{med['prompt']:.2f} s → {med['prompt'] / anchor['ready']:.2f}× (what is typed from then on is answered "
          f"once the bot is up); bot up {med['ready']:.2f} s → {med['ready'] / anchor['ready']:.2f}×; peak RSS "
          f"{med['rss']:.0f} MB; first start (creates the database) up in {first['ready']:.2f} s; imported by the "
          f"start: {ours[-1]['loaded'] or 'neither matplotlib nor holidays'}", flush=True)


async def main() -> None:
    main_sync()


if __name__ == "__main__":
    main_sync()
