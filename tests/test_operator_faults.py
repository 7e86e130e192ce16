"""What an unlucky operator meets: a full or read-only database at start-up, SIGTERM with a push in hand,
junk posted to the webhook; and the command line as the README promises it (``--config`` anywhere, a
console that keeps its logs out of the chat and saves charts as files)."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import secrets
import sys
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from chatbot.__main__ import _parser, main
from chatbot.config import DatabaseSettings, HttpSettings, Settings, SimulatorSettings, TelegramSettings
from chatbot.console.botapi import BotApiEmulator
from chatbot.runtime import Runtime
from chatbot.security.keyring import MasterKeyring
from chatbot.sim.server import SimulatorOptions
from chatbot.storage.tables import OutboxRow
from chatbot.telegram.runner import serve
from tests import forkserver
from tests.fake_telegram import FakeTelegram
from tests.harness import TOKEN
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
USER = BotApiEmulator.user(9501, "en")


async def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.05)
    await asyncio.wait_for(poll(), timeout)


def base_env(tmp_path: Path, db_url: str) -> dict[str, str]:
    env = {**os.environ, "KISBOT_TELEGRAM_TOKEN": TOKEN, "KISBOT_TELEGRAM_BASE_URL": "http://127.0.0.1:9/bot",
           "KISBOT_DATABASE_URL": db_url, "KISBOT_SECURITY_MASTER_KEY_FILE": f"{tmp_path}/master.key",
           "KISBOT_LOGGING_LEVEL": "WARNING"}
    env.pop("KISBOT_MASTER_KEY", None)
    return env


# -- start-up on a database that takes no writes -----------------------------------------------------------------
async def test_start_up_on_a_full_or_read_only_database_is_one_line_and_exit_2(db_url: str, tmp_path: Path) -> None:
    """SQLite on a full disk (the file-size limit stands in for it: writes fail as they would), PostgreSQL
    in read-only mode: one line naming the database and the reason, exit 2, no traceback."""
    limit = 8192

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    if db_url.startswith("sqlite"):
        env, preexec, reason = base_env(tmp_path, db_url), small_disk, ("disk is full", "disk I/O error")
    else:
        read_only = db_url.replace("options=", "options=-cdefault_transaction_read_only%3Don%20")
        env, preexec, reason = base_env(tmp_path, read_only), None, ("read-only transaction",)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "chatbot", "run", cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                preexec_fn=preexec)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    text = err.decode().strip()
    assert proc.returncode == 2, text[-2000:]
    assert text.count("\n") == 0 and "Traceback" not in text, text[-2000:]
    assert text.startswith("database error at start-up (") and any(r in text for r in reason), text
    assert not (tmp_path / "master.key").exists()  # nothing was set up on a database that takes no writes


async def test_start_up_with_an_unusable_database_path_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    env = base_env(tmp_path, f"sqlite:///{tmp_path}/file/kisbot.sqlite3")
    env["KISBOT_LOGGING_FILE"] = f"{tmp_path}/console.log"  # not ./data/console.log in the checkout
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "chatbot", "console", cwd=ROOT, env=env,
                                                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(b""), 60)
    text = err.decode().strip()
    assert proc.returncode == 2 and text.count("\n") == 0 and "Traceback" not in text, text[-2000:]
    assert text.startswith("database error at start-up") and f"({tmp_path}/file)" in text


# -- SIGTERM with a push in hand ----------------------------------------------------------------------------------
async def test_stopping_lets_the_push_in_hand_be_delivered(tmp_path: Path) -> None:
    fake = FakeTelegram(TOKEN)
    await fake.start()
    settings = Settings(telegram=TelegramSettings(token=TOKEN, base_url=fake.base_url),
                        database=DatabaseSettings(url=f"sqlite:///{tmp_path}/s.sqlite3"),
                        simulator=SimulatorSettings(tick_interval_seconds=0))
    runtime = await Runtime.start(settings, SimulatorOptions(tick_interval=0),
                                  keyring=MasterKeyring(1, {1: secrets.token_bytes(32)}))
    stop, ready, in_hand = asyncio.Event(), asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(runtime.services, settings, stop, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 20)
        send = fake.emulator._m_sendMessage

        async def slow_push(params: dict) -> dict:  # type: ignore[type-arg]
            if str(params.get("chat_id")) == str(USER["id"]):
                in_hand.set()
                await stop.wait()  # the stop arrives while Telegram has the push
                await asyncio.sleep(0.3)
            return await send(params)

        fake.emulator._m_sendMessage = slow_push  # type: ignore[method-assign]
        async with runtime.db.session() as session:
            session.add(OutboxRow(dedupe_key="alert:1:1", owner_id=USER["id"], chat_id=USER["id"], kind="alert",
                                  payload={"lang": "en", "name": "Samsung Electronics", "code": "005930",
                                           "price": 71000, "direction": "above", "threshold": 71000,
                                           "percent": None, "time": "101500"}))
            await session.commit()
        runtime.wake_sender()
        await asyncio.wait_for(in_hand.wait(), 20)
        stop.set()  # what SIGTERM does
        while not task.done():  # answer the long poll at once, as Telegram would on a quiet chat
            fake.emulator.release_pollers()
            await asyncio.wait({task}, timeout=0.1)
        await task
        async with runtime.db.session() as session:
            (row,) = (await session.exec(select(OutboxRow))).all()
        assert (row.status, row.attempts, row.last_error) == ("sent", 0, None)
        assert [m for m in fake.emulator.bot_messages(USER["id"]) if "Samsung Electronics" in m["text"]]
    finally:
        stop.set()
        if not task.done():
            await task
        await runtime.aclose()
        fake.emulator.release_pollers()  # the last long poll, abandoned by the stopped bot, ends now
        await fake.stop()


# -- junk through the webhook --------------------------------------------------------------------------------------
async def test_malformed_webhook_updates_are_logged_answered_200_and_dropped(tmp_path: Path,
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeTelegram(TOKEN)
    await fake.start()
    port = free_port()
    secret = secrets.token_urlsafe(24)
    settings = Settings(
        telegram=TelegramSettings(token=TOKEN, base_url=fake.base_url, webhook_url=f"http://127.0.0.1:{port}/hook",
                                  webhook_path="/hook", webhook_secret=secret),
        database=DatabaseSettings(url=f"sqlite:///{tmp_path}/w.sqlite3"), http=HttpSettings(port=port),
        simulator=SimulatorSettings(tick_interval_seconds=0))
    runtime = await Runtime.start(settings, SimulatorOptions(tick_interval=0),
                                  keyring=MasterKeyring(1, {1: secrets.token_bytes(32)}))
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(runtime.services, settings, stop, ready=ready))
    caplog.set_level(logging.INFO)
    try:
        await asyncio.wait_for(ready.wait(), 20)
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret, "Content-Type": "application/json"}
        junk = [b'{"update_id": 5, "message": "not a message"}', b'{"update_id": 6, "message": {"text": 1}}',
                b'{"update_id": 7, "callback_query": []}', b"not json at all", b"[1, 2]", b'{"no_id": true}',
                b'{"update_id": "8"}']
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for body in junk:
                answer = await http.post("/hook", content=body, headers=headers)
                assert answer.status_code == 200, body
            assert (await http.post("/hook", content=junk[0])).status_code == 403  # the secret still counts
        fake.emulator.send_text(USER, "/price 005930")  # and real updates still flow
        await wait_for(lambda: bool(fake.emulator.bot_messages(USER["id"])))
        assert "Samsung Electronics" in fake.emulator.bot_messages(USER["id"])[0]["text"]
    finally:
        stop.set()
        await task
        await runtime.aclose()
        await fake.stop()
    dropped = [r for r in caplog.records if r.getMessage().startswith("webhook update dropped")]
    assert len(dropped) == len(junk)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "not a message" not in caplog.text  # an update's content is never logged


# -- the command line --------------------------------------------------------------------------------------------
def test_config_is_accepted_before_and_after_every_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[kis]\nenvironment = "paper"\n')
    for command in ("run", "console", "rotate-key", "sim"):
        assert _parser().parse_args([command, "--config", "x.toml"]).config == "x.toml"
        assert _parser().parse_args(["--config", "x.toml", command]).config == "x.toml"
        assert not hasattr(_parser().parse_args([command]), "config")
        for argv in ([command, "--config", str(bad)], ["--config", str(bad), command]):
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert err.startswith("configuration error: kis.environment") and err.count("\n") == 1, err
    assert _parser().parse_args(["--config", "a.toml", "run", "--config", "b.toml"]).config == "b.toml"


async def test_console_keeps_logs_out_of_the_chat_and_saves_charts(tmp_path: Path) -> None:
    log_file, charts = tmp_path / "logs" / "console.log", tmp_path / "charts"
    config = tmp_path / "c.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/c.sqlite3"\n'
                      f'[security]\nmaster_key_file = "{tmp_path}/master.key"\n'
                      f'[logging]\nlevel = "INFO"\nfile = "{log_file}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("KISBOT_")}
    # forked from the imported bot (tests/forkserver.py; the fresh ``python -m chatbot console`` is test_cli's):
    # what it writes to the terminal, stdout and stderr both, is in the transcript
    commands, transcript = tmp_path / "commands.txt", tmp_path / "terminal.txt"
    commands.write_text("/chart 005930 w\n/price 005930\n")
    proc = await forkserver.spawn(["console", "--config", str(config), "--lang", "en", "--charts-dir", str(charts)],
                                  env, transcript, stdin=commands)
    code = await asyncio.wait_for(proc.wait(), 90)
    text = transcript.read_text()
    assert code == 0, text[-2000:]
    assert f"logs → {log_file}" in text and "Samsung Electronics" in text
    assert " INFO " not in text  # no log line between chat lines
    (png,) = charts.glob("chart-005930-*.png")
    assert f"saved: {png.resolve()}" in text and png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "runtime ready" in log_file.read_text()
    assert oct(log_file.stat().st_mode & 0o777) == "0o600"
    commands.write_text("/status\n")
    proc = await forkserver.spawn(["console", "--verbose", "--config", str(config)], env, tmp_path / "verbose.txt",
                                  stdin=commands)
    code = await asyncio.wait_for(proc.wait(), 90)
    text = (tmp_path / "verbose.txt").read_text()
    assert code == 0 and "runtime ready" in text and "logs →" not in text, text[-2000:]
