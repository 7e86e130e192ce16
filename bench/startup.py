"""Start-up: ``chatbot console`` to its prompt, against a bare python-telegram-bot Application started
on the same in-process fake Bot API (the anchor), each in a fresh process, alternated, the same
number of times; plus the resident memory of each and whether matplotlib / holidays got imported.

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

ROUNDS = 5
ROOT = Path(__file__).resolve().parent.parent
PROMPT = "kis-chatops console"
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

class Out:
    def __init__(self, stream):
        self.stream = stream
    def write(self, text):
        self.stream.write(text)
        if "{PROMPT}" in text:
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


def timed_start(code: str, prompt: str, env: dict[str, str]) -> tuple[float, float, str]:
    """Seconds from spawning the process to its prompt, its peak RSS (MB), what it had imported."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=env)
    assert proc.stdout is not None and proc.stdin is not None
    ready = float("nan")
    loaded = ""
    for line in proc.stdout:
        if prompt in line and ready != ready:
            ready = time.perf_counter() - started
        if line.startswith("loaded:"):
            loaded = line.strip()[7:]
            proc.stdin.write("/quit\n")
            proc.stdin.flush()
            proc.stdin.close()
            break
    proc.stdout.read()
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return ready, usage.ru_maxrss / 1024, loaded


def main_sync() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "KISBOT_DATABASE_URL": f"sqlite:///{tmp}/bot.sqlite3",
               "KISBOT_SECURITY_MASTER_KEY_FILE": f"{tmp}/master.key", "KISBOT_LOGGING_LEVEL": "WARNING"}
        first, first_rss, _ = timed_start(OURS, PROMPT, env)  # creates the database and the master key
        ours: list[tuple[float, float, str]] = []
        bare: list[tuple[float, float, str]] = []
        for _ in range(ROUNDS):
            bare.append(timed_start(BARE, BARE_PROMPT, env))
            ours.append(timed_start(OURS, PROMPT, env))
    o, b = statistics.median(t for t, _, _ in ours), statistics.median(t for t, _, _ in bare)
    orss, brss = statistics.median(r for _, r, _ in ours), statistics.median(r for _, r, _ in bare)
    print(f"start to prompt, fresh process, medians of {ROUNDS} alternated: chatbot console {o:.2f} s "
          f"({orss:.0f} MB peak RSS) vs a bare PTB bot on the same fake Bot API {b:.2f} s ({brss:.0f} MB) → "
          f"{o / b:.2f}×; first start (creates the database) {first:.2f} s; imported by the start: "
          f"{ours[-1][2] or 'neither matplotlib nor holidays'}", flush=True)


async def main() -> None:
    main_sync()


if __name__ == "__main__":
    main_sync()
