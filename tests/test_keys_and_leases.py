"""The master key under an unlucky operator: rotate-key beside a running bot, a key version missing from the
keyring, a deleted or misplaced key file; the database leases behind the refusals."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from chatbot.config import DatabaseSettings, SecuritySettings, Settings, SimulatorSettings
from chatbot.runtime import Runtime
from chatbot.security.keyring import KeyringError, MasterKeyring
from chatbot.security.secretbox import SecretBox
from chatbot.storage import Database, vault
from chatbot.storage.credentials import CredentialStore
from chatbot.storage.leases import HOST, MAINTENANCE, RUNTIME, Lease, LeaseHeld
from chatbot.storage.tables import CredentialRow, LeaseRow
from chatbot.storage.types import utcnow
from tests import forkserver
from tests.helpers import new_credentials

ROOT = Path(__file__).resolve().parents[1]


def settings_for(db_url: str, key_file: Path) -> Settings:
    return Settings(database=DatabaseSettings(url=db_url), security=SecuritySettings(str(key_file)),
                    simulator=SimulatorSettings(tick_interval_seconds=0))


async def test_rotate_key_is_refused_while_a_bot_runs_and_nothing_becomes_unreadable(db_url: str,
                                                                                      tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    settings = settings_for(db_url, key_file)
    runtime = await Runtime.start(settings)
    users = {uid: new_credentials() for uid in (11, 12)}
    db = Database(db_url)
    try:
        await runtime.registration.register(11, users[11].app_key, users[11].app_secret, users[11].account)
        on_disk = key_file.read_bytes()
        with pytest.raises(vault.RotationRefused, match="a bot is running on this database") as refused:
            await vault.rotate(db, MasterKeyring.load(key_file, create=False))
        assert f"pid {os.getpid()}" in str(refused.value) and "Nothing was changed" in str(refused.value)
        assert key_file.read_bytes() == on_disk  # no key added, none retired
        # the bot goes on encrypting with its key, which is still the key
        await runtime.registration.register(12, users[12].app_key, users[12].app_secret, users[12].account)
        await (await runtime.accounts.for_user(99)).client.balance()  # a paper account and a cached token
    finally:
        await runtime.aclose()
    try:
        assert await vault.rotate(db, MasterKeyring.load(key_file, create=False)) >= 2 * 2 + 2 + 1
    finally:
        await db.dispose()
    assert MasterKeyring.load(key_file).current == 2
    runtime = await Runtime.start(settings)  # every secret opens with the rotated keyring
    try:
        for uid, creds in users.items():
            loaded = await runtime.registration.credentials.load(uid)
            assert loaded is not None and loaded.app_secret == creds.app_secret
        await (await runtime.accounts.for_user(99)).client.balance()
    finally:
        await runtime.aclose()


async def test_a_bot_does_not_start_while_rotate_key_runs(db_url: str, tmp_path: Path) -> None:
    settings = settings_for(db_url, tmp_path / "master.key")
    db = Database(db_url)
    await db.migrate()
    maintenance = Lease(db, MAINTENANCE, "rotate-key")
    await maintenance.acquire()
    try:
        with pytest.raises(LeaseHeld, match="under maintenance .*rotate-key on"):
            await Runtime.start(settings)
        with pytest.raises(LeaseHeld):  # and only one maintenance at a time
            await Lease(db, MAINTENANCE, "rotate-key").acquire()
    finally:
        await maintenance.release()
    runtime = await Runtime.start(settings)
    await runtime.aclose()
    async with db.session() as session:
        assert list((await session.exec(select(LeaseRow))).all()) == []  # both released their rows
    await db.dispose()


async def test_leases_of_dead_processes_do_not_block(db_url: str, tmp_path: Path) -> None:
    """A bot killed with -9 leaves its row: on this host it is dead at once (its pid is gone)."""
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    db = Database(db_url)
    await db.migrate()
    now = utcnow()
    async with db.session() as session:
        session.add(LeaseRow(name=f"runtime:{HOST}:{dead.pid}::x", kind="runtime", owner=f"{HOST}:{dead.pid}::x",
                             host=HOST, pid=dead.pid, purpose="bot", acquired_at=now,
                             expires_at=now + dt.timedelta(hours=1)))
        await session.commit()
    ring = MasterKeyring.load(tmp_path / "master.key")
    try:
        assert await vault.rotate(db, ring) == 0
        async with db.session() as session:
            assert list((await session.exec(select(LeaseRow))).all()) == []
    finally:
        await db.dispose()


async def test_a_lease_survives_losing_its_row_and_its_lock_connection(db_url: str) -> None:
    db = Database(db_url)
    await db.migrate()
    lease = Lease(db, RUNTIME, "bot")
    await lease.acquire()
    try:
        async with db.session() as session:
            for row in (await session.exec(select(LeaseRow))).all():
                await session.delete(row)
            await session.commit()
        if lease._lock_conn is not None:  # PostgreSQL: the connection holding the lock breaks
            await lease._lock_conn.invalidate()
        await lease.renew()
        async with db.session() as session:
            assert [r.name for r in (await session.exec(select(LeaseRow))).all()] == [lease.name]
        with pytest.raises(LeaseHeld, match="a bot is running"):
            await Lease(db, MAINTENANCE, "rotate-key").acquire()
    finally:
        await lease.release()
        await db.dispose()


async def test_start_up_finds_secrets_under_a_key_version_the_keyring_lacks(db_url: str, tmp_path: Path) -> None:
    """What a bot that went on with a retired key leaves behind: start-up refuses, naming the version."""
    key_file = tmp_path / "master.key"
    settings = settings_for(db_url, key_file)
    runtime = await Runtime.start(settings)
    creds = new_credentials()
    await runtime.registration.register(21, creds.app_key, creds.app_secret, creds.account)
    await runtime.aclose()
    retired = MasterKeyring.load(key_file)
    db = Database(db_url)
    try:
        await vault.rotate(db, MasterKeyring.load(key_file))
        stale = new_credentials()  # written with the key the rotation retired, as a stale bot would
        await CredentialStore(db, SecretBox(retired)).save(22, "simulator", stale)
    finally:
        await db.dispose()
    with pytest.raises(KeyringError, match=r"^1 secret in the database is encrypted with master key version 1, "
                                           r"which the keyring .* does not hold"):
        await Runtime.start(settings)


async def test_wrong_keys_under_the_right_version_numbers_are_found(db_url: str, tmp_path: Path) -> None:
    """A keyring with the right version numbers but other keys: caught even without a check row."""
    key_file = tmp_path / "master.key"
    settings = settings_for(db_url, key_file)
    runtime = await Runtime.start(settings)
    creds = new_credentials()
    await runtime.registration.register(31, creds.app_key, creds.app_secret, creds.account)
    db = runtime.db
    async with db.session() as session:
        from chatbot.storage.tables import MasterKeyCheckRow

        for check in (await session.exec(select(MasterKeyCheckRow))).all():
            await session.delete(check)
        await session.commit()
    await runtime.aclose()
    MasterKeyring(1, {1: secrets.token_bytes(32)}, key_file).save()
    with pytest.raises(KeyringError, match="does not open the data"):
        await Runtime.start(settings)


async def test_a_deleted_key_file_is_never_silently_replaced(db_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    settings = settings_for(db_url, key_file)
    runtime = await Runtime.start(settings)  # a new database: the key file is created
    await runtime.aclose()
    key_file.unlink()
    runtime = await Runtime.start(settings)  # still no secret anywhere: a new key is harmless
    creds = new_credentials()
    await runtime.registration.register(41, creds.app_key, creds.app_secret, creds.account)
    await runtime.aclose()
    key_file.unlink()
    with pytest.raises(KeyringError, match=r"does not exist, but the database holds 2 secrets .*no new key was created"):
        await Runtime.start(settings)
    assert not key_file.exists()
    db = Database(db_url)
    try:
        async with db.session() as session:
            assert len(list((await session.exec(select(CredentialRow))).all())) == 1
    finally:
        await db.dispose()


def test_a_key_path_that_is_a_directory_is_reported_as_such(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o755)
    with pytest.raises(KeyringError, match="is a directory, not a key file") as err:
        MasterKeyring.load(folder, environ={})
    assert "readable by other users" not in str(err.value)


async def _wait_for_output(stream: asyncio.StreamReader, needle: bytes, timeout: float = 60.0) -> bytes:
    seen = b""

    async def read() -> bytes:
        nonlocal seen
        while needle not in seen:
            chunk = await stream.read(4096)
            if not chunk:
                raise AssertionError(f"stream ended before {needle!r}: {seen[-2000:]!r}")
            seen += chunk
        return seen

    return await asyncio.wait_for(read(), timeout)


async def test_rotate_key_command_against_a_live_and_a_killed_bot(db_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "KISBOT_DATABASE_URL": db_url, "KISBOT_SECURITY_MASTER_KEY_FILE": f"{tmp_path}/master.key",
           "KISBOT_LOGGING_FILE": f"{tmp_path}/console.log", "KISBOT_SIMULATOR_TICK_INTERVAL_SECONDS": "60"}
    env.pop("KISBOT_MASTER_KEY", None)
    console = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatbot", "console", "--lang", "en", cwd=ROOT, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert console.stdin is not None and console.stdout is not None
        console.stdin.write(b"/balance\n")
        await console.stdin.drain()
        await _wait_for_output(console.stdout, b"10,000,000")  # running, with a paper account and a token
        # rotate-key and the console after it forked from the imported bot (tests/forkserver.py; the fresh
        # ``python -m chatbot rotate-key`` is test_cli's): stdout and stderr both in the log
        rotate = await forkserver.spawn(["rotate-key"], env, tmp_path / "refused.log")
        code = await asyncio.wait_for(rotate.wait(), 60)
        line = (tmp_path / "refused.log").read_text().strip()
        assert code == 2, line
        assert line.count("\n") == 0 and line.startswith("rotate-key refused: a bot is running") \
            and f"pid {console.pid}" in line and "Traceback" not in line
        console.kill()  # kill -9: its lease row stays behind, its process does not
        await console.wait()
    finally:
        if console.returncode is None:
            console.kill()
            await console.wait()
    rotate = await forkserver.spawn(["rotate-key"], env, tmp_path / "rotated.log")
    code = await asyncio.wait_for(rotate.wait(), 60)
    text = (tmp_path / "rotated.log").read_text()
    assert code == 0 and "version 2" in text, text[-2000:]
    balance = tmp_path / "balance.txt"
    balance.write_text("/balance\n")
    after = await forkserver.spawn(["console", "--lang", "en"], env, tmp_path / "after.log", stdin=balance)
    code = await asyncio.wait_for(after.wait(), 60)
    text = (tmp_path / "after.log").read_text()
    assert code == 0 and "10,000,000" in text, text[-2000:]
