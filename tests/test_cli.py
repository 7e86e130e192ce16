"""The entry points as an operator runs them: real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from chatbot.console.botapi import BotApiEmulator
from tests import forkserver
from tests.fake_telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123456789:CLI-TOKEN-abcdefghijklmnopqrstuvwxyz012"


async def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.05)


async def test_run_polls_the_bot_api_and_stops_on_sigterm(tmp_path: Path) -> None:
    fake = FakeTelegram(TOKEN)
    await fake.start()
    env = {**os.environ, "KISBOT_TELEGRAM_TOKEN": TOKEN, "KISBOT_TELEGRAM_BASE_URL": fake.base_url,
           "KISBOT_DATABASE_URL": f"sqlite:///{tmp_path}/run.sqlite3", "KISBOT_LOGGING_LEVEL": "DEBUG",
           "KISBOT_SECURITY_MASTER_KEY_FILE": f"{tmp_path}/master.key"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "chatbot", "run", cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        user = BotApiEmulator.user(31, "en")
        fake.emulator.send_text(user, "/price 005930")
        # the reply, not a "queued" notice a slow start-up may send before it (telegram/app.py)
        await _wait_for(lambda: any("Samsung Electronics" in m["text"] for m in fake.emulator.bot_messages(31)))
        assert fake.emulator.commands  # the menu was registered at start-up
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        await fake.stop()
    assert proc.returncode == 0, err.decode()[-2000:]
    logs = err.decode() + out.decode()
    assert TOKEN not in logs and TOKEN.split(":")[1] not in logs  # the bot token never reaches a log


async def test_run_without_token_says_how(tmp_path: Path) -> None:
    env = {**os.environ, "KISBOT_TELEGRAM_TOKEN": "", "KISBOT_DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "chatbot", "run", cwd=ROOT, env=env,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"telegram.token" in err and b"chatbot console" in err


async def test_console_runs_a_piped_session(tmp_path: Path) -> None:
    env = {**os.environ, "KISBOT_DATABASE_URL": f"sqlite:///{tmp_path}/c.sqlite3", "KISBOT_LOGGING_LEVEL": "WARNING",
           "KISBOT_SECURITY_MASTER_KEY_FILE": f"{tmp_path}/master.key", "KISBOT_LOGGING_FILE": f"{tmp_path}/console.log"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "chatbot", "console", "--lang", "en", cwd=ROOT,
                                                env=env, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(b"/buy 005930 2\n1\n/balance\n"), 60)
    text = out.decode()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert "[1] ✅ Confirm" in text and "Order accepted" in text and "2 sh" in text


async def test_bad_config_fails_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "KISBOT_KIS_ENVIRONMENT": "paper", "KISBOT_LOGGING_FILE": f"{tmp_path}/console.log"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "chatbot", "console", cwd=ROOT, env=env,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and err.decode().strip().count("\n") == 0 and "KISBOT_KIS_ENVIRONMENT" in err.decode()


async def test_rotate_key_command(tmp_path: Path) -> None:
    """``rotate-key`` as a fresh process; the console sessions before and after it (creating the key, a paper
    account and a token; then reading them with the new key) forked from the imported bot (tests/forkserver.py)."""
    env = {**os.environ, "KISBOT_DATABASE_URL": f"sqlite:///{tmp_path}/r.sqlite3", "KISBOT_LOGGING_LEVEL": "WARNING",
           "KISBOT_SECURITY_MASTER_KEY_FILE": f"{tmp_path}/master.key", "KISBOT_LOGGING_FILE": f"{tmp_path}/console.log"}
    env.pop("KISBOT_MASTER_KEY", None)
    balance = tmp_path / "balance.txt"
    balance.write_text("/balance\n")
    console = await forkserver.spawn(["console"], env, tmp_path / "before.log", stdin=balance)
    assert await asyncio.wait_for(console.wait(), 60) == 0, (tmp_path / "before.log").read_text()[-2000:]
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "chatbot", "rotate-key", cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"version 2" in out
    console = await forkserver.spawn(["console"], env, tmp_path / "after.log", stdin=balance)
    code = await asyncio.wait_for(console.wait(), 60)
    text = (tmp_path / "after.log").read_text()
    assert code == 0 and "10,000,000" in text, text[-1500:]


async def test_sigterm_shuts_down_cleanly_and_a_restart_resumes(tmp_path: Path) -> None:
    """Two runs of the bot, each stopped by SIGTERM; forked from the imported bot (tests/forkserver.py): the
    fresh ``python -m chatbot run`` is the test above."""
    fake = FakeTelegram(TOKEN)
    await fake.start()
    env = {**os.environ, "KISBOT_TELEGRAM_TOKEN": TOKEN, "KISBOT_TELEGRAM_BASE_URL": fake.base_url,
           "KISBOT_DATABASE_URL": f"sqlite:///{tmp_path}/g.sqlite3", "KISBOT_LOGGING_LEVEL": "INFO",
           "KISBOT_SECURITY_MASTER_KEY_FILE": f"{tmp_path}/master.key", "KISBOT_SIMULATOR_TICK_INTERVAL_SECONDS": "60"}
    user = BotApiEmulator.user(41, "en")

    async def run_once(text: str, expect: str) -> str:
        log = tmp_path / f"run{len(list(tmp_path.glob('run*.log')))}.log"
        proc = await forkserver.spawn(["run"], env, log)
        try:
            before = len(fake.emulator.bot_messages(41))
            fake.emulator.send_text(user, text)
            # the reply, not a "queued" notice a slow start-up may send before it (telegram/app.py)
            await _wait_for(lambda: any(expect in m["text"] for m in fake.emulator.bot_messages(41)[before:]))
        finally:
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 30)
        assert code == 0, log.read_text()[-2000:]
        return log.read_text()

    try:
        logs = await run_once("/alert 005930 above 9999999", "Alert #1")
        assert "Traceback" not in logs
        logs = await run_once("/alerts", "#1")  # after the restart the alert is still there, armed
        assert "alert engine started" in logs and "Traceback" not in logs
    finally:
        await fake.stop()


def test_garbage_collection_is_paused_while_starting_and_resumed_whatever_way_it_ends() -> None:
    import gc

    from chatbot import __main__ as entry

    seen: list[bool] = []

    def failing_start() -> None:
        seen.append(gc.isenabled())
        raise RuntimeError("start-up failed")

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        entry._until_ready_without_collection(failing_start)
    assert seen == [False] and gc.isenabled()
