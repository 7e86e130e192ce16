"""Users' own KIS credentials: encryption at rest, the /login flow, key rotation, isolation."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from chatbot.console.botapi import BotApiEmulator
from chatbot.kis.rest import mask
from chatbot.kis.token import token_cache_key
from chatbot.runtime import Runtime
from chatbot.security.keyring import KeyringError, MasterKeyring
from chatbot.security.secretbox import DecryptionError, SecretBox
from chatbot.sim.auth import AuthFailure
from chatbot.storage import vault
from chatbot.storage.credentials import CredentialStore
from chatbot.storage.tables import CredentialRow, KisTokenRow
from chatbot.telegram import login
from tests.conftest import PG_BASE, SQLITE_ONLY
from tests.harness import BotHarness
from tests.helpers import new_credentials

ALICE = BotApiEmulator.user(2001, "ko")
BOB = BotApiEmulator.user(2002, "en")


@pytest.fixture
async def bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url)
    await harness.start()
    yield harness
    assert not harness.api.unanswered_callbacks()
    await harness.stop()


async def login_flow(bot: BotHarness, user: dict, key: str, secret: str, account: str, hts: str = "myhts01"
                     ) -> list[dict]:
    replies = await bot.say(user, "/login")
    for text in (key, secret, account, hts):
        replies += await bot.say(user, text)
    return replies


async def rows(bot: BotHarness, table: type) -> list:
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        return list((await session.exec(select(table))).all())


async def test_login_deletes_secret_messages_and_stores_a_working_credential(bot: BotHarness) -> None:
    creds = new_credentials("12345678-01")
    replies = await login_flow(bot, ALICE, creds.app_key, creds.app_secret, "12345678-01")
    assert "등록했습니다" in replies[-1]["text"] and mask(creds.app_key) in replies[-1]["text"]
    deleted = [params for method, params in bot.api.calls if method == "deleteMessage"]
    assert len(deleted) == 4  # app key, secret, account and HTS id messages, each deleted as soon as read
    assert not any(creds.app_key in (m.get("text") or "") or creds.app_secret in (m.get("text") or "")
                   for m in bot.api.messages.values())
    for method, params in bot.api.calls:  # nor does the bot ever echo them
        assert creds.app_secret not in str(params) or method in ("getUpdates",)
    (me,) = await bot.say(ALICE, "/me")
    assert mask(creds.app_key) in me["text"] and "12******-01" in me["text"] and "12345678" not in me["text"]
    assert creds.app_key not in me["text"]
    await bot.press_button(ALICE, (await bot.say(ALICE, "/buy 005930 1"))[0], 0)
    assert "12345678-01" in bot.sim.exchange.accounts  # the order went to the registered account
    sessions = bot.sim.realtime["real"].sessions
    assert any(("H0STCNI0", "myhts01") in s.subscriptions for s in sessions)  # notices keyed by the HTS id
    (balance,) = await bot.say(ALICE, "/balance")
    assert "12******-01" in balance["text"]


async def test_logout_removes_credentials_and_token(bot: BotHarness) -> None:
    creds = new_credentials()
    await login_flow(bot, ALICE, creds.app_key, creds.app_secret, str(creds.account))
    await bot.say(ALICE, "/balance")  # a token gets cached
    assert await rows(bot, CredentialRow) and await rows(bot, KisTokenRow)
    tokens_before = len(await rows(bot, KisTokenRow))
    (msg,) = await bot.say(ALICE, "/logout")
    assert "삭제했습니다" in msg["text"]
    assert await rows(bot, CredentialRow) == [] and len(await rows(bot, KisTokenRow)) == tokens_before - 1
    (msg,) = await bot.say(ALICE, "/me")
    assert "시뮬레이터 모의계좌" in msg["text"]
    (msg,) = await bot.say(ALICE, "/logout")
    assert "없습니다" in msg["text"]


@SQLITE_ONLY
@pytest.mark.parametrize(("step", "bad", "needle"), [
    (0, "short-key", "앱키 형식"), (0, "x" * 35 + "!", "앱키 형식"), (1, "s" * 179, "앱 시크릿 형식"),
    (2, "1234-5678", "계좌번호"), (2, "1234567801x", "계좌번호"), (3, "bad id!", "HTS ID"),
])
async def test_invalid_input_at_each_step_asks_again_and_stores_nothing(bot: BotHarness, step: int, bad: str,
                                                                       needle: str) -> None:
    creds = new_credentials()
    good = [creds.app_key, creds.app_secret, str(creds.account), "-"]
    await bot.say(ALICE, "/login")
    for i in range(step):
        await bot.say(ALICE, good[i])
    (msg,) = await bot.say(ALICE, bad)
    assert needle in msg["text"]
    assert await rows(bot, CredentialRow) == []
    for text in good[step:]:  # the flow goes on from the same step
        await bot.say(ALICE, text)
    assert len(await rows(bot, CredentialRow)) == 1


async def test_refused_keys_store_nothing(bot: BotHarness) -> None:
    creds = new_credentials()
    await login_flow(bot, ALICE, creds.app_key, creds.app_secret, str(creds.account))
    impostor_secret = new_credentials().app_secret  # the same app key with another secret: KIS refuses it
    replies = await login_flow(bot, BOB, creds.app_key, impostor_secret, "87654321-01")
    assert "KIS refused" in replies[-1]["text"] and "EGW00105" in replies[-1]["text"]
    assert [r.telegram_id for r in await rows(bot, CredentialRow)] == [ALICE["id"]]


async def test_cancel_and_timeout_store_nothing(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(login, "LOGIN_TIMEOUT_SECONDS", 0.5)
    harness = BotHarness(db_url)
    await harness.start()
    try:
        creds = new_credentials()
        await harness.say(ALICE, "/login")
        await harness.say(ALICE, creds.app_key)
        (msg,) = await harness.say(ALICE, "/cancel")
        assert "아무것도 저장하지 않았습니다" in msg["text"]
        (msg,) = await harness.say(ALICE, creds.app_secret)  # after /cancel: a stray secret, deleted at once
        assert "삭제했습니다" in msg["text"] and "/login" in msg["text"]
        assert not [m for m in harness.api.messages.values() if m.get("text") == creds.app_secret]
        await harness.say(ALICE, "/login")
        await harness.say(ALICE, creds.app_key)
        # the flow's 0.5 s run out, whenever the machine gets to it (a fixed sleep of 1.5 s was not always enough)
        await harness.wait_for_message(ALICE["id"], "시간이 지나", timeout=60)
        assert "시간이 지나" in harness.api.bot_messages(ALICE["id"])[-1]["text"]
        assert await rows(harness, CredentialRow) == []
        assert not harness.app.user_data.get(ALICE["id"], {}).get("login_draft")
    finally:
        await harness.stop()


async def test_no_plaintext_secret_in_the_database(bot: BotHarness, db_url: str, tmp_path: Path) -> None:
    creds = new_credentials()
    await login_flow(bot, ALICE, creds.app_key, creds.app_secret, str(creds.account))
    await bot.press_button(ALICE, (await bot.say(ALICE, "/buy 005930 1"))[0], 0)
    await bot.press_button(BOB, (await bot.say(BOB, "/buy 005930 1"))[0], 0)  # Bob trades on a paper account
    assert bot.runtime is not None
    secrets_seen = {creds.app_key, creds.app_secret}
    for account in bot.runtime.accounts._cache.values():
        token = account.client.tokens._token
        assert token is not None
        secrets_seen |= {account.client.credentials.app_key, account.client.credentials.app_secret,
                         token.access_token}
    assert len(secrets_seen) == 6
    await bot.runtime.sim.persist(force_market=True)  # type: ignore[union-attr]
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    else:
        schema = db_url.split("search_path%3D")[1]
        raw = (await asyncio.to_thread(subprocess.run, ["pg_dump", "-n", schema, PG_BASE], check=True,
                                       capture_output=True)).stdout
    assert len(raw) > 10_000
    for secret in secrets_seen:
        assert secret.encode() not in raw, f"plaintext {mask(secret)} found in the database"


async def test_wrong_master_key_fails_clearly_and_destroys_nothing(db_url: str) -> None:
    from dataclasses import replace

    from chatbot.config import DatabaseSettings, Settings, SimulatorSettings

    settings = Settings(database=DatabaseSettings(url=db_url), simulator=SimulatorSettings(tick_interval_seconds=0))
    right = MasterKeyring(1, {1: os.urandom(32)})
    creds = new_credentials()
    runtime = await Runtime.start(settings, keyring=right)
    await runtime.registration.register(ALICE["id"], creds.app_key, creds.app_secret, creds.account)
    await runtime.aclose()
    with pytest.raises(KeyringError, match="master key does not open"):
        await Runtime.start(settings, keyring=MasterKeyring(1, {1: os.urandom(32)}))
    runtime = await Runtime.start(replace(settings), keyring=right)
    loaded = await runtime.registration.credentials.load(ALICE["id"])
    assert loaded is not None and loaded.app_secret == creds.app_secret
    await runtime.aclose()


async def test_rotation_keeps_every_credential_usable(db_url: str, tmp_path: Path) -> None:
    from chatbot.config import DatabaseSettings, SecuritySettings, Settings, SimulatorSettings

    key_file = tmp_path / "master.key"
    settings = Settings(database=DatabaseSettings(url=db_url), security=SecuritySettings(str(key_file)),
                        simulator=SimulatorSettings(tick_interval_seconds=0))
    runtime = await Runtime.start(settings)
    users = {uid: new_credentials() for uid in (11, 12, 13)}
    for uid, creds in users.items():
        await runtime.registration.register(uid, creds.app_key, creds.app_secret, creds.account)
    await (await runtime.accounts.for_user(99)).client.balance()  # a paper account and a cached token
    await runtime.aclose()
    old_key = MasterKeyring.load(key_file).keys[1]
    from chatbot.storage import Database

    db = Database(db_url)
    count = await vault.rotate(db, MasterKeyring.load(key_file))
    await db.dispose()
    assert count >= 3 * 2 + 2
    ring = MasterKeyring.load(key_file)
    assert ring.current == 2 and list(ring.keys) == [2] and old_key not in ring.keys.values()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    runtime = await Runtime.start(settings)
    for uid, creds in users.items():
        loaded = await runtime.registration.credentials.load(uid)
        assert loaded is not None and (loaded.app_key, loaded.app_secret) == (creds.app_key, creds.app_secret)
        await (await runtime.accounts.for_user(uid)).client.balance()
    await runtime.aclose()


async def test_a_ciphertext_moved_to_another_user_does_not_open(database, box: SecretBox) -> None:
    store = CredentialStore(database, box)
    alice, bob = new_credentials(), new_credentials()
    await store.save(1, "simulator", alice)
    await store.save(2, "simulator", bob)
    async with database.session() as session:
        a = await session.get(CredentialRow, 1)
        b = await session.get(CredentialRow, 2)
        assert a is not None and b is not None
        b.app_key, b.app_secret = a.app_key, a.app_secret  # someone with database access swaps rows
        session.add(b)
        await session.commit()
    with pytest.raises(DecryptionError):
        await store.load(2)
    assert (await store.load(1)) == alice
    assert alice.app_secret not in repr(await store.info(1))


def test_key_file_permissions(tmp_path: Path) -> None:
    path = tmp_path / "k" / "master.key"
    ring = MasterKeyring.load(path, environ={})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(ring.keys[1]) == 32
    assert MasterKeyring.load(path, environ={}).keys == ring.keys
    path.chmod(0o644)
    with pytest.raises(KeyringError, match="chmod 600"):
        MasterKeyring.load(path, environ={})
    env_ring = MasterKeyring.load(path, environ={"KISBOT_MASTER_KEY": "A" * 43 + "="})  # env wins, no file read
    assert env_ring.path is None and env_ring.current == 1
    with pytest.raises(KeyringError):
        MasterKeyring.load(path, environ={"KISBOT_MASTER_KEY": "not base64 at all!"})


async def test_reset_paper_account(bot: BotHarness) -> None:
    await bot.press_button(ALICE, (await bot.say(ALICE, "/buy 005930 3"))[0], 0)
    (card,) = await bot.say(ALICE, "/reset")
    assert "초기화" in card["text"]
    await bot.press_button(ALICE, card, 0)
    assert "새 모의계좌" in bot.current(card)["text"]
    (balance,) = await bot.say(ALICE, "/balance")
    assert "보유 종목이 없습니다" in balance["text"] and "₩10,000,000" in balance["text"]


async def test_logout_revokes_the_token_at_kis(bot: BotHarness) -> None:
    """KIS keeps a token valid a day and hands it out again within 6 h: /logout revokes it there too, so a
    removed key's token stops working at KIS at once (not only our cached copy deleted)."""
    creds = new_credentials()
    await login_flow(bot, ALICE, creds.app_key, creds.app_secret, str(creds.account))
    await bot.say(ALICE, "/balance")  # a token gets issued and cached
    accounts = bot.runtime.accounts
    cached = await accounts.token_store.load(
        token_cache_key(accounts.endpoint.cache_scope, creds.app_key, creds.app_secret))
    assert cached is not None
    bearer = f"Bearer {cached.access_token}"
    assert bot.sim.auth.authenticate(bearer, creds.app_key, creds.app_secret) == creds.app_key
    (msg,) = await bot.say(ALICE, "/logout")
    assert "삭제했습니다" in msg["text"]
    with pytest.raises(AuthFailure):
        bot.sim.auth.authenticate(bearer, creds.app_key, creds.app_secret)
