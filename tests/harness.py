"""Drive the real python-telegram-bot Application, through the fake Bot API, against the simulator."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update

from chatbot.config import DatabaseSettings, KisSettings, Settings, SimulatorSettings, TelegramSettings
from chatbot.console.botapi import BotApiEmulator
from chatbot.runtime import Runtime
from chatbot.security.keyring import MasterKeyring
from chatbot.service.notices import Delivered, Delivery, Notice
from chatbot.sim.server import KisSimulator, SimulatorOptions
from chatbot.telegram import app as tg
from chatbot.telegram.notifier import TelegramNotifier
from tests.fake_telegram import FakeTelegram

TOKEN = "123456789:TEST-TOKEN-abcdefghijklmnopqrstuvwxyz0"


class BotHarness:
    def __init__(self, db_url: str, *, allowed_users: tuple[int, ...] = (), per_chat_interval: float = 0.0,
                 ttl: int = 60, kis: KisSettings | None = None, us_always_open: bool = False) -> None:
        self.settings = Settings(
            telegram=TelegramSettings(token=TOKEN, allowed_users=allowed_users, confirmation_ttl_seconds=ttl),
            kis=kis or KisSettings(), database=DatabaseSettings(url=db_url),
            simulator=SimulatorSettings(tick_interval_seconds=0))
        self.per_chat_interval = per_chat_interval
        self.us_always_open = us_always_open  # the simulator's switch: the US market open at any hour
        self.keyring = MasterKeyring(1, {1: secrets.token_bytes(32)})
        self.telegram = FakeTelegram(TOKEN)
        self.runtime: Runtime | None = None
        self.app: Any = None
        self._done: set[int] = set()
        self.pushed: set[tuple[int, int]] = set()  # (chat, message id) of pushes, which arrive on their own
        self._done_event = asyncio.Event()

    @property
    def api(self) -> BotApiEmulator:
        return self.telegram.emulator

    @property
    def sim(self) -> KisSimulator:
        assert self.runtime is not None and self.runtime.sim is not None
        return self.runtime.sim

    async def start(self) -> None:
        await self.telegram.start()
        self.settings = dataclasses.replace(self.settings, telegram=dataclasses.replace(
            self.settings.telegram, base_url=self.telegram.base_url))
        await self._start_bot()

    async def _start_bot(self) -> None:
        self.runtime = await Runtime.start(self.settings, SimulatorOptions(tick_interval=0,
                                                                           enforce_token_issue_interval=True,
                                                                           us_always_open=self.us_always_open),
                                           keyring=self.keyring)
        self.app = tg.build_application(self.settings.telegram, self.runtime.services,
                                        per_chat_interval=self.per_chat_interval)
        original = self.app.process_update

        async def process_update(update: object) -> None:
            try:
                await original(update)
            finally:
                if isinstance(update, Update):
                    self._done.add(update.update_id)
                    self._done_event.set()

        self.app.process_update = process_update
        await tg.start(self.app, poll_timeout=1)
        await self.runtime.services.pushes.start(RecordingNotifier(TelegramNotifier(self.app.bot), self.pushed))

    async def restart(self, while_down: Callable[[], Awaitable[None]] | None = None) -> None:
        """Stop the bot (and its embedded simulator) and start it again on the same database;
        ``while_down`` runs between the two (the market moving while nobody watches, say)."""
        await self._stop_bot()
        if while_down is not None:
            await while_down()
        await self._start_bot()

    async def _stop_bot(self) -> None:
        if self.app is not None:
            stopping = asyncio.create_task(tg.stop(self.app))
            await asyncio.sleep(0)
            self.api.release_pollers()
            await stopping
        if self.runtime is not None:
            await self.runtime.aclose()

    async def stop(self) -> None:
        """Stop the bot; one that has not stopped after :data:`STOP_PATIENCE` seconds fails the test with
        what it is stuck on (every task's stack, and PostgreSQL's sessions that are not idle) instead of
        hanging until pytest-timeout, whose report shows only an idle event loop."""
        stopping = asyncio.create_task(self._stop_bot())
        done, _ = await asyncio.wait({stopping}, timeout=STOP_PATIENCE)
        if not done:
            report = stuck_report(self.settings.database.url)
            stopping.cancel()
            await asyncio.wait({stopping}, timeout=5.0)
            await self.telegram.stop()
            raise AssertionError(f"the bot did not stop within {STOP_PATIENCE:g} s\n{report}")
        await stopping
        await self.telegram.stop()

    async def _wait(self, update_id: int, timeout: float = 30.0) -> None:
        async def done() -> None:
            while update_id not in self._done:
                self._done_event.clear()
                await self._done_event.wait()

        await asyncio.wait_for(done(), timeout)

    async def say(self, user: dict[str, Any], text: str, chat_id: int | None = None, *,
                  timeout: float = 30.0, reply_to: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The user types ``text`` (a reply to ``reply_to``, if given); returns the bot messages sent to
        that chat while handling it."""
        chat = user["id"] if chat_id is None else chat_id
        before = {m["message_id"] for m in self.api.bot_messages(chat)}
        update = self.api.send_text(user, text, chat_id, reply_to=reply_to)
        await self._wait(update["update_id"], timeout)
        await asyncio.sleep(0)
        return [m for m in self.api.bot_messages(chat) if m["message_id"] not in before
                and (chat, m["message_id"]) not in self.pushed and not _looks_pushed(m)]

    async def press(self, user: dict[str, Any], message: dict[str, Any], data: str, *,
                    timeout: float = 30.0) -> dict[str, Any]:
        """The user presses a button; returns the callback answer (text, show_alert)."""
        query_id = self.api.press(user, message, data)
        await self._wait(self.api.updates[-1]["update_id"] if self.api.updates else 0, timeout)
        return self.api.callback_answers.get(query_id, {})

    async def press_button(self, user: dict[str, Any], message: dict[str, Any], index: int) -> dict[str, Any]:
        return await self.press(user, message, BotApiEmulator.buttons(message)[index][1])

    def current(self, message: dict[str, Any]) -> dict[str, Any]:
        return self.api.messages[(message["chat"]["id"], message["message_id"])]

    async def wait_for_message(self, chat_id: int, contains: str, timeout: float = 60.0) -> dict[str, Any]:
        """The first bot message in ``chat_id`` containing ``contains`` (pushes arrive on their own). ``timeout`` is
        a deadline for a loaded machine, not a measure."""
        async def find() -> dict[str, Any]:
            while True:
                for message in self.api.bot_messages(chat_id):
                    if contains in (message.get("text") or ""):
                        return message
                await asyncio.sleep(0.02)
        return await asyncio.wait_for(find(), timeout)

    def count_messages(self, chat_id: int, contains: str) -> int:
        return sum(contains in (m.get("text") or "") for m in self.api.bot_messages(chat_id))


STOP_PATIENCE = 60.0


def stuck_report(db_url: str) -> str:
    """Every task's stack and, on PostgreSQL, the sessions that are not idle (what a stop waits for)."""
    out = io.StringIO()
    for task in asyncio.all_tasks():
        if task is asyncio.current_task():
            continue
        out.write(f"--- {task.get_name()}\n")
        awaited: Any = task.get_coro()
        while awaited is not None:  # the whole chain of awaits, not only the task's own frame
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is not None:
                out.write(f"    {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}\n")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    if db_url.startswith("postgresql"):
        import psycopg

        base = db_url.split("?", 1)[0]
        with psycopg.connect(base, connect_timeout=5) as conn:
            for row in conn.execute(
                    "SELECT pid, state, wait_event_type, wait_event, xact_start, application_name, left(query, 300)"
                    " FROM pg_stat_activity WHERE datname = current_database() AND state <> 'idle'"
                    " AND pid <> pg_backend_pid()"):
                out.write(f"pg: {row}\n")
    return out.getvalue()


class RecordingNotifier:
    """The Telegram notifier, noting (chat, message id) of every push it delivers."""

    def __init__(self, notifier: TelegramNotifier, pushed: set[tuple[int, int]]) -> None:
        self.notifier = notifier
        self.pushed = pushed

    async def deliver(self, chat_id: int, notice: Notice) -> Delivery:
        delivery = await self.notifier.deliver(chat_id, notice)
        if isinstance(delivery, Delivered) and delivery.message_id is not None:
            self.pushed.add((chat_id, delivery.message_id))
        return delivery


def _looks_pushed(message: dict[str, Any]) -> bool:
    """A push whose send is still in flight (its id is recorded only once send_message returns)."""
    text = message.get("text") or ""
    return text.startswith(("🔔 ", "✅ 체결", "✅ Filled", "⛔ 주문 거부", "⛔ Order refused")) and "#" not in text.split("\n")[0][:12]


async def confirm(bot: BotHarness, user: dict[str, Any], text: str) -> dict[str, Any]:
    """Send ``text``, press the card's Confirm, and return the card as it stands after."""
    (card,) = await bot.say(user, text)
    assert BotApiEmulator.buttons(card), card["text"]
    await bot.press_button(user, card, 0)
    return bot.current(card)
