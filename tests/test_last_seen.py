"""The access gate notes users without writing the users table on every update: last-seen at most
once per interval, a language change at once, and a user back after blocking the bot at once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event
from sqlmodel import select
from telegram.error import Forbidden

from chatbot.console.botapi import BotApiEmulator
from chatbot.storage.tables import UserRow
from chatbot.telegram import access
from tests.harness import BotHarness

ALICE = BotApiEmulator.user(4101, "ko")


@pytest.fixture
async def bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url)
    await harness.start()
    yield harness
    await harness.stop()


def count_user_writes(bot: BotHarness) -> list[str]:
    assert bot.runtime is not None
    writes: list[str] = []

    def on_execute(conn: object, cursor: object, statement: str, *args: object) -> None:
        text = statement.lstrip().upper()
        if text.startswith(("INSERT INTO USERS", "UPDATE USERS")):
            writes.append(text[:40])

    event.listen(bot.runtime.db.engine.sync_engine, "before_cursor_execute", on_execute)
    return writes


async def user_row(bot: BotHarness) -> UserRow:
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        row = (await session.exec(select(UserRow).where(UserRow.telegram_id == ALICE["id"]))).one()
        return row


async def test_updates_within_the_interval_do_not_write_the_users_table(bot: BotHarness) -> None:
    writes = count_user_writes(bot)
    await bot.say(ALICE, "/help")
    assert len(writes) == 1  # a new user is written at once
    first = await user_row(bot)
    for _ in range(5):
        await bot.say(ALICE, "/help")
    assert len(writes) == 1
    assert (await user_row(bot)).last_seen == first.last_seen
    await bot.say(BotApiEmulator.user(ALICE["id"], "en"), "/help")  # the language changed: written at once
    assert len(writes) == 2 and (await user_row(bot)).language == "en"
    bot.app.bot_data[access.SEEN_KEY][ALICE["id"]] = (-1e9, "en")  # the interval has passed
    await bot.say(BotApiEmulator.user(ALICE["id"], "en"), "/help")
    assert len(writes) == 3 and (await user_row(bot)).last_seen > first.last_seen


async def returns(bot: BotHarness) -> list[int]:
    assert bot.runtime is not None
    returned: list[int] = []
    original = bot.runtime.alerts.user_returned

    async def spy(user_id: int) -> None:
        returned.append(user_id)
        await original(user_id)

    bot.runtime.alerts.user_returned = spy  # type: ignore[method-assign]
    return returned


async def test_back_after_a_refused_push_is_noticed_within_the_interval(bot: BotHarness) -> None:
    assert bot.runtime is not None
    await bot.say(ALICE, "/help")
    bot.api.blocked.add(ALICE["id"])
    with pytest.raises(Forbidden):  # a push to her is refused: the outbox marks her as blocked
        await bot.app.bot.send_message(ALICE["id"], "push")
    await bot.runtime.alerts.user_blocked_bot(ALICE["id"])
    assert (await user_row(bot)).blocked
    returned = await returns(bot)
    bot.api.blocked.clear()
    await bot.say(ALICE, "/help")  # seconds later, well within the last-seen interval
    assert returned == [ALICE["id"]] and not (await user_row(bot)).blocked
    await bot.say(ALICE, "/help")
    assert returned == [ALICE["id"]]


async def test_telegram_saying_she_unblocked_the_bot_notes_her_anew(bot: BotHarness) -> None:
    assert bot.runtime is not None
    await bot.say(ALICE, "/help")
    await bot.runtime.alerts.user_blocked_bot(ALICE["id"])  # as after a refused push
    returned = await returns(bot)
    update = bot.api._push({"my_chat_member": {  # Telegram: the user unblocked the bot (private chat)
        "chat": bot.api._chat_obj(ALICE["id"]), "from": ALICE, "date": 0,
        "old_chat_member": {"status": "kicked", "user": bot.api.me, "until_date": 0},
        "new_chat_member": {"status": "member", "user": bot.api.me}}})
    await bot._wait(update["update_id"])
    await bot.say(ALICE, "/start")
    assert returned == [ALICE["id"]] and not (await user_row(bot)).blocked
