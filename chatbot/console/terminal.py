"""``chatbot console``: chat with the bot in a terminal. Type commands; press a button by its number."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from chatbot.console.botapi import BotApiEmulator

if TYPE_CHECKING:
    from chatbot.config import TelegramSettings
    from chatbot.service.services import Services

QUIET_SECONDS = 0.25
REPLY_TIMEOUT = 20.0
# Printed before the bot is loaded (``chatbot console`` shows it first): what is typed meanwhile
# waits in stdin and is answered once the bot is up, which the "ready" line then says.
BANNER = "kis-chatops console · type /help, a number presses a button, /quit or Ctrl-D leaves"


class ConsoleChat:
    def __init__(self, emulator: BotApiEmulator, out: TextIO, user: dict[str, Any],
                 charts_dir: Path | None = None) -> None:
        self.emulator = emulator
        self.out = out
        self.user = user
        self.charts_dir = charts_dir  # where photos (charts) are saved as PNG files; None: not saved
        self.keyboard: dict[str, Any] | None = None  # the newest message with buttons
        self.activity = asyncio.Event()
        self.handled: set[int] = set()  # update ids the bot has finished with (see run_console)
        self.handled_one = asyncio.Event()
        emulator.listeners.append(self.on_event)

    def on_event(self, event: str, payload: dict[str, Any]) -> None:
        if event in ("sent", "edited", "photo"):
            label = {"sent": "bot", "edited": "bot (edited)", "photo": "bot (photo)"}[event]
            text = payload.get("text") or payload.get("caption") or ""
            self.write(f"{label}> " + text.replace("\n", "\n     "))
            if event == "photo":
                self.write("     " + self.save_photo(payload, text))
            buttons = BotApiEmulator.buttons(payload)
            if buttons:
                self.keyboard = payload
                self.write("     " + "   ".join(f"[{i}] {label}" for i, (label, _) in enumerate(buttons, 1)))
            elif self.keyboard is not None and self.keyboard.get("message_id") == payload.get("message_id"):
                self.keyboard = None
        elif event == "answer" and payload.get("text"):
            self.write(f"bot (notice)> {payload['text']}")
        self.activity.set()

    def save_photo(self, message: dict[str, Any], caption: str) -> str:
        """Save a photo the bot sent (a chart) as a PNG file; the line saying where, or why not."""
        data = message.get("_photo_bytes")
        if not isinstance(data, bytes | bytearray) or not data:
            return "(image not available)"
        if self.charts_dir is None:
            return f"(image, {len(data):,} bytes, not saved)"
        code = match.group(1) if (match := re.search(r"\(([0-9A-Z]{6})\)", caption)) else "image"
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = self.charts_dir / f"chart-{code}-{stamp}-{message.get('message_id', 0)}.png"
        try:
            self.charts_dir.mkdir(parents=True, exist_ok=True)
            path.write_bytes(bytes(data))
        except OSError as exc:
            return f"(could not save the image to {path}: {exc.strerror or exc})"
        return f"saved: {path.resolve()}"

    def write(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def submit(self, line: str) -> int | None:
        """Send what was typed; the update's id, None when there was nothing to send."""
        line = line.strip()
        if not line:
            return None
        if re.fullmatch(r"\d{1,2}", line) and self.keyboard is not None:
            buttons = BotApiEmulator.buttons(self.keyboard)
            index = int(line) - 1
            if 0 <= index < len(buttons):
                self.emulator.press(self.user, self.keyboard, buttons[index][1])
                return int(self.emulator.updates[-1]["update_id"])
            self.write(f"(no button {line})")
            return None
        return int(self.emulator.send_text(self.user, line)["update_id"])

    def done(self, update_id: int) -> None:
        """The bot has finished with an update (its handler returned)."""
        self.handled.add(update_id)
        self.handled_one.set()

    async def settle(self, update_id: int) -> None:
        """Wait until the bot has handled the update, then for a short quiet spell, so a transcript
        reads in order. Its handling, not its first word: a slow answer may be preceded by the
        'queued' notice, and a piped script's next line (a button's number) must meet the answer."""

        async def handled() -> None:
            while update_id not in self.handled:
                self.handled_one.clear()
                await self.handled_one.wait()

        try:
            await asyncio.wait_for(handled(), REPLY_TIMEOUT)
        except TimeoutError:
            return
        while True:
            self.activity.clear()
            try:
                await asyncio.wait_for(self.activity.wait(), QUIET_SECONDS)
            except TimeoutError:
                return


async def run_console(services: Services, settings: TelegramSettings, *, user_id: int = 1, language: str = "ko",
                      stdin: TextIO | None = None, out: TextIO | None = None, charts_dir: Path | None = None,
                      note: str = "", announced: bool = False) -> None:
    """Chat in the terminal; ``announced`` when :data:`BANNER` was already printed (before loading)."""
    from telegram import Update

    from chatbot.console.transport import EmulatorRequest
    from chatbot.telegram import app as tg
    from chatbot.telegram.notifier import TelegramNotifier

    stdin = stdin or sys.stdin
    out = out or sys.stdout
    emulator = BotApiEmulator()
    chat = ConsoleChat(emulator, out, BotApiEmulator.user(user_id, language), charts_dir)
    services = dataclasses.replace(services, allowed_users=frozenset())  # the terminal's user is the operator
    application = tg.build_application(settings, services, request=EmulatorRequest(emulator), per_chat_interval=0)
    process_update = application.process_update

    async def process_and_tell(update: object) -> None:
        try:
            await process_update(update)
        finally:
            if isinstance(update, Update):
                chat.done(update.update_id)

    application.process_update = process_and_tell  # type: ignore[method-assign]
    await tg.start(application, poll_timeout=1)
    await services.pushes.start(TelegramNotifier(application.bot))
    mode = services.mode.value
    chat.write((f"ready · mode {mode}" if announced else f"{BANNER} · mode {mode}")
               + (f"\n{note}" if note else ""))
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, stdin.readline)
            if not line or line.strip() in ("/quit", "/exit"):
                break
            if stdin is not sys.stdin or not sys.stdin.isatty():
                chat.write(f"you> {line.rstrip()}")
            update_id = chat.submit(line)
            if update_id is not None:
                await chat.settle(update_id)
    finally:
        await services.pushes.stop()  # the push in hand finishes while the bot can still send it
        stopping = asyncio.create_task(tg.stop(application))
        await asyncio.sleep(0)
        emulator.release_pollers()
        await stopping
