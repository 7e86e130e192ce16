"""/logout revokes the user's token at KIS only when nobody else is on that app key: KIS has one token per
app key (the same one handed out again within 6 h, KIS_API.md §3.1/§3.2), so revoking it on a key the
operator's feed uses, or that another user registered too, would cut them off."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chatbot.console.botapi import BotApiEmulator
from chatbot.kis.rest import mask
from chatbot.kis.token import token_cache_key
from chatbot.sim.auth import AuthFailure
from tests.harness import BotHarness
from tests.helpers import new_credentials

ALICE = BotApiEmulator.user(2101, "ko")
BOB = BotApiEmulator.user(2102, "en")


@pytest.fixture
async def bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url)
    await harness.start()
    # Not what is tested here: two clients of one key may each ask for the token within a minute.
    harness.sim.auth.enforce_issue_interval = False
    yield harness
    await harness.stop()


async def login(bot: BotHarness, user: dict, key: str, secret: str, account: str) -> None:
    replies = await bot.say(user, "/login")
    for text in (key, secret, account, "myhts01"):
        replies += await bot.say(user, text)
    assert mask(key) in replies[-1]["text"], replies[-1]["text"]


def assert_told_token_kept(text: str, language: str) -> None:
    """The reply says the keys went and the token stayed, and never claims the token was deleted."""
    if language == "ko":
        assert "키를 삭제했습니다" in text and "토큰은 그대로 두었습니다" in text, text
        assert "토큰을 삭제" not in text, text
    else:
        assert "keys were deleted" in text and "token was left in place" in text, text
        assert "token were deleted" not in text, text


async def test_logout_says_the_token_was_kept_in_the_users_language(bot: BotHarness) -> None:
    """English too, and the user who logs out second (last on the key) is told the token went."""
    creds = new_credentials()
    await login(bot, BOB, creds.app_key, creds.app_secret, str(creds.account))
    await login(bot, ALICE, creds.app_key, creds.app_secret, str(creds.account))
    (msg,) = await bot.say(BOB, "/logout")
    assert_told_token_kept(msg["text"], "en")
    assert str(ALICE["id"]) not in msg["text"] and ALICE["first_name"] not in msg["text"]
    (msg,) = await bot.say(ALICE, "/logout")
    assert "키와 토큰을 삭제했습니다" in msg["text"], msg["text"]
    (msg,) = await bot.say(ALICE, "/logout")
    assert "등록된 KIS 키가 없습니다" in msg["text"], msg["text"]


async def test_logout_leaves_the_token_of_a_key_another_user_registered_too(bot: BotHarness) -> None:
    creds = new_credentials()
    await login(bot, ALICE, creds.app_key, creds.app_secret, str(creds.account))
    await login(bot, BOB, creds.app_key, creds.app_secret, str(creds.account))
    (balance,) = await bot.say(BOB, "/balance")
    accounts = bot.runtime.accounts
    cache_key = token_cache_key(accounts.endpoint.cache_scope, creds.app_key, creds.app_secret)
    cached = await accounts.token_store.load(cache_key)
    assert cached is not None
    (msg,) = await bot.say(ALICE, "/logout")
    assert_told_token_kept(msg["text"], "ko")
    assert str(BOB["id"]) not in msg["text"] and BOB["first_name"] not in msg["text"]  # never who
    # Bob's token still works at KIS, and he goes on without noticing.
    assert bot.sim.auth.authenticate(f"Bearer {cached.access_token}", creds.app_key, creds.app_secret)
    assert await accounts.token_store.load(cache_key) == cached
    (again,) = await bot.say(BOB, "/balance")
    assert again["text"] == balance["text"]
    # Bob is the last one on the key: his /logout revokes it.
    (msg,) = await bot.say(BOB, "/logout")
    assert "keys and token were deleted" in msg["text"]
    with pytest.raises(AuthFailure):
        bot.sim.auth.authenticate(f"Bearer {cached.access_token}", creds.app_key, creds.app_secret)


async def test_logout_leaves_the_token_of_the_operators_feed_key(bot: BotHarness) -> None:
    """A user who registered the key the operator's market-data feed runs on (an operator trading with
    their own key, say): the feed's token must survive the user's /logout."""
    feed = bot.runtime.feed_client
    assert feed is not None
    operator_token = await feed.tokens.get()
    key, secret = feed.credentials.app_key, feed.credentials.app_secret
    await login(bot, ALICE, key, secret, "12345678-01")
    (msg,) = await bot.say(ALICE, "/logout")
    assert_told_token_kept(msg["text"], "ko")
    assert bot.sim.auth.authenticate(f"Bearer {operator_token}", key, secret)
    issued = feed.tokens.issued
    await feed.quote("005930")  # the feed's REST calls go on with the same token
    assert feed.tokens.issued == issued
