"""A local stand-in for the Telegram Bot API: the methods a python-telegram-bot Application uses,
with Telegram's semantics (update offsets and long polling, message ids per chat, HTML parsing,
"message is not modified", 4096-character limit, blocked users) and a user side that types and
presses buttons.

The console front end puts it behind PTB as an in-process request; the tests serve it over HTTP
on loopback (``tests/fake_telegram.py``). See shared/telegram/TELEGRAM_NOTES.md §2.

What it keeps of a session (messages, their HTML, calls, callback answers, deletions) is bounded by
``keep`` (:data:`KEEP`, the newest of each; a photo's bytes only until its listeners have had them): a
``chatbot console`` session runs for as long as its user likes, and the bot polls getUpdates every second. What the console reads is recent (the newest
message with buttons, the message a press is on, the one the bot edits); an older message is gone, as
a deleted one is (an edit of it is refused). The tests' fake Telegram keeps everything (``keep=None``):
they read a whole run's transcript afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")
MAX_TEXT = 4096
# What a session keeps of each kind (messages, calls, answers, ...), newest first: a console session's
# memory stays flat (~1-2 KB a message) however long it runs.
KEEP = 1_000
ALLOWED_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a",
                          "tg-spoiler", "span", "blockquote", "tg-emoji"})
JSON_PARAMS = frozenset({"reply_markup", "commands", "allowed_updates", "entities", "reply_parameters", "scope",
                         "link_preview_options", "caption_entities"})


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            raise ApiError(400, f"Bad Request: can't parse entities: unsupported start tag \"{tag}\"")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            raise ApiError(400, f"Bad Request: can't parse entities: unmatched end tag \"{tag}\"")
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(text: str) -> str:
    """The plain text Telegram shows for an HTML message; raise like Telegram on bad markup."""
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    if parser.stack:
        raise ApiError(400, f"Bad Request: can't parse entities: unclosed tag \"{parser.stack[-1]}\"")
    return "".join(parser.parts)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _decode(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in JSON_PARAMS and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ApiError(400, f"Bad Request: can't parse {key} JSON object") from None
        out[key] = value
    return out


def _keep_newest(store: OrderedDict[K, V], key: K, value: V, keep: int | None) -> None:
    """``store[key] = value``, then drop the oldest entries (first stored) past ``keep``; None keeps all."""
    store[key] = value
    if keep is not None:
        while len(store) > keep:
            store.popitem(last=False)


def _int(params: dict[str, Any], key: str, default: int | None = None) -> int:
    value = params.get(key, default)
    if value is None:
        raise ApiError(400, f"Bad Request: {key} is empty")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"Bad Request: invalid {key}") from None


class BotApiEmulator:
    def __init__(self, bot_id: int = 7_000_000_001, username: str = "kis_chatops_bot", *,
                 keep: int | None = KEEP) -> None:
        """``keep``: how many of each kind of record (messages, calls, ...) the session keeps, the newest;
        None: all of them (tests that read a whole run back)."""
        self.me = {"id": bot_id, "is_bot": True, "first_name": "KIS ChatOps", "username": username,
                   "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
        self.keep = keep
        self.updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._callback_ids = itertools.count(1)
        self._new_update: asyncio.Event | None = None
        # the newest ``keep`` messages, user's and bot's, in the order they were sent
        self.messages: OrderedDict[tuple[int, int], dict[str, Any]] = OrderedDict()
        self.html: OrderedDict[tuple[int, int], str] = OrderedDict()  # the bot's messages as sent (HTML)
        self.deleted: deque[tuple[int, int]] = deque(maxlen=keep)
        self.calls: deque[tuple[str, dict[str, Any]]] = deque(maxlen=keep)
        self.callback_answers: OrderedDict[str, dict[str, Any]] = OrderedDict()
        # queries the bot has not answered yet (Telegram forgets them after a while; so does this)
        self.pending_callbacks: OrderedDict[str, None] = OrderedDict()
        self.commands: dict[str, list[dict[str, str]]] = {}
        self.blocked: set[int] = set()
        self.left_chats: deque[int] = deque(maxlen=keep)
        self.webhook_url = ""
        self.webhook_secret = ""
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self.confirmed_offset = 0

    # -- Bot API side --------------------------------------------------------------------------------
    async def call(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Handle one Bot API call; return (HTTP status, JSON body) as Telegram would."""
        params = dict(params)
        self.calls.append((method, params))
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
        try:
            result = await handler(_decode(params))
        except ApiError as exc:
            body: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
            if exc.parameters:
                body["parameters"] = exc.parameters
            return exc.code, body
        return 200, {"ok": True, "result": result}

    async def _m_getMe(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.me

    async def _m_deleteWebhook(self, p: dict[str, Any]) -> bool:
        self.webhook_url = ""
        if str(p.get("drop_pending_updates", "")).lower() == "true":
            self.updates.clear()
        return True

    async def _m_getWebhookInfo(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.webhook_url, "has_custom_certificate": False, "pending_update_count": len(self.updates)}

    async def _m_setWebhook(self, p: dict[str, Any]) -> bool:
        self.webhook_url = str(p.get("url", ""))
        self.webhook_secret = str(p.get("secret_token", ""))
        self._event().set()
        return True

    async def _m_getUpdates(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(p.get("offset") or 0)
        limit = int(p.get("limit") or 100)
        timeout = float(p.get("timeout") or 0)
        if offset:
            self.confirmed_offset = max(self.confirmed_offset, offset)
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates and timeout > 0:
            event = self._event()
            event.clear()
            with contextlib.suppress(TimeoutError):  # not wait_for: on 3.11 it can swallow a cancel
                async with asyncio.timeout(timeout):
                    await event.wait()
        return self.updates[:limit]

    async def _m_sendMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat(p)
        text = str(p.get("text", ""))
        plain = self._text(p, text)
        message = self._bot_message(chat_id, plain, p.get("reply_markup"))
        _keep_newest(self.html, (chat_id, message["message_id"]), text, self.keep)
        self._notify("sent", message)
        return message

    async def _m_sendPhoto(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat(p)
        message = self._bot_message(chat_id, None, p.get("reply_markup"))
        photo = p.get("photo")
        size = len(photo) if isinstance(photo, bytes | bytearray) else 0
        message["photo"] = [{"file_id": f"photo{message['message_id']}", "file_unique_id": f"u{message['message_id']}",
                             "width": 1200, "height": 800, "file_size": size}]
        if p.get("caption"):
            message["caption"] = html_to_text(str(p["caption"])) if p.get("parse_mode") == "HTML" else p["caption"]
        message["_photo_bytes"] = photo if isinstance(photo, bytes | bytearray) else None
        self._notify("photo", message)
        if self.keep is not None:  # a bounded session: the image went to the listeners (the console saves it)
            message["_photo_bytes"] = None  # and is not kept, a chart being ~100 KB
        return {k: v for k, v in message.items() if not k.startswith("_")}

    async def _m_editMessageText(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat(p)
        message = self._find(chat_id, p, "message to edit not found")
        text = str(p.get("text", ""))
        plain = self._text(p, text)
        markup = p.get("reply_markup")
        if plain == message.get("text") and markup == message.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified: specified new message content and reply "
                                "markup are exactly the same as a current content and reply markup of the message")
        message["text"] = plain
        message["edit_date"] = int(time.time())
        if markup and markup.get("inline_keyboard"):
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        _keep_newest(self.html, (chat_id, message["message_id"]), text, self.keep)
        self._notify("edited", message)
        return message

    async def _m_editMessageReplyMarkup(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat(p)
        message = self._find(chat_id, p, "message to edit not found")
        markup = p.get("reply_markup")
        if markup == message.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified")
        if markup and markup.get("inline_keyboard"):
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        self._notify("edited", message)
        return message

    async def _m_answerCallbackQuery(self, p: dict[str, Any]) -> bool:
        query_id = str(p.get("callback_query_id", ""))
        if query_id not in self.pending_callbacks:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        text = p.get("text")
        if text is not None and len(str(text)) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        del self.pending_callbacks[query_id]
        answer = {"text": text, "show_alert": str(p.get("show_alert", "")).lower() == "true"}
        _keep_newest(self.callback_answers, query_id, answer, self.keep)
        self._notify("answer", {"id": query_id, **answer})
        return True

    async def _m_deleteMessage(self, p: dict[str, Any]) -> bool:
        chat_id = self._chat(p)
        key = (chat_id, _int(p, "message_id"))
        if key not in self.messages:
            raise ApiError(400, "Bad Request: message to delete not found")
        del self.messages[key]
        self.deleted.append(key)
        self._notify("deleted", {"chat_id": chat_id, "message_id": key[1]})
        return True

    async def _m_setMyCommands(self, p: dict[str, Any]) -> bool:
        commands = p.get("commands") or []
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: commands must be an array")
        self.commands[str(p.get("language_code") or "")] = commands
        return True

    async def _m_getMyCommands(self, p: dict[str, Any]) -> list[dict[str, str]]:
        return self.commands.get(str(p.get("language_code") or ""), [])

    async def _m_deleteMyCommands(self, p: dict[str, Any]) -> bool:
        self.commands.pop(str(p.get("language_code") or ""), None)
        return True

    async def _m_sendChatAction(self, p: dict[str, Any]) -> bool:
        self._chat(p)
        return True

    async def _m_leaveChat(self, p: dict[str, Any]) -> bool:
        self.left_chats.append(self._chat(p))
        return True

    async def _m_close(self, p: dict[str, Any]) -> bool:
        return True

    async def _m_logOut(self, p: dict[str, Any]) -> bool:
        return True

    def release_pollers(self) -> None:
        """Let a pending long poll return at once (the bot is shutting down)."""
        self._event().set()

    # -- helpers ----------------------------------------------------------------------------------------
    def _event(self) -> asyncio.Event:
        if self._new_update is None:
            self._new_update = asyncio.Event()
        return self._new_update

    def _chat(self, p: dict[str, Any]) -> int:
        chat_id = _int(p, "chat_id")
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat_id

    def _text(self, p: dict[str, Any], text: str) -> str:
        plain = html_to_text(text) if str(p.get("parse_mode", "")).upper() == "HTML" else text
        if not plain.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(plain) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        return plain

    def _find(self, chat_id: int, p: dict[str, Any], missing: str) -> dict[str, Any]:
        message = self.messages.get((chat_id, _int(p, "message_id")))
        if message is None or message["from"]["id"] != self.me["id"]:
            raise ApiError(400, f"Bad Request: {missing}")
        return message

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def _chat_obj(self, chat_id: int) -> dict[str, Any]:
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": f"user{chat_id}"}
        return {"id": chat_id, "type": "supergroup" if chat_id < -10**12 else "group", "title": f"group{chat_id}"}

    def _bot_message(self, chat_id: int, text: str | None, markup: Any) -> dict[str, Any]:
        message: dict[str, Any] = {"message_id": self._next_message_id(chat_id), "date": int(time.time()),
                                   "chat": self._chat_obj(chat_id), "from": self.me}
        if text is not None:
            message["text"] = text
        if isinstance(markup, dict) and markup.get("inline_keyboard"):
            message["reply_markup"] = markup
        _keep_newest(self.messages, (chat_id, message["message_id"]), message, self.keep)
        return message

    def _notify(self, event: str, payload: dict[str, Any]) -> None:
        for listener in self.listeners:
            listener(event, payload)

    def _push(self, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **payload}
        self.updates.append(update)
        self._event().set()
        return update

    # -- user side --------------------------------------------------------------------------------------
    @staticmethod
    def user(user_id: int, language: str = "ko", first_name: str = "") -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": first_name or f"user{user_id}",
                "language_code": language}

    def send_text(self, user: dict[str, Any], text: str, chat_id: int | None = None, *,
                  reply_to: dict[str, Any] | None = None) -> dict[str, Any]:
        """The user types ``text`` (a command gets its bot_command entity), as a reply to ``reply_to`` if
        given (Telegram includes the message replied to, without its own reply); returns the update."""
        chat_id = user["id"] if chat_id is None else chat_id
        message: dict[str, Any] = {"message_id": self._next_message_id(chat_id), "date": int(time.time()),
                                   "chat": self._chat_obj(chat_id), "from": user, "text": text}
        if reply_to is not None:
            replied = self.messages.get((chat_id, reply_to["message_id"]), reply_to)
            message["reply_to_message"] = {k: v for k, v in replied.items() if k != "reply_to_message"}
        if text.startswith("/"):
            command = text.split()[0] if text.split() else text
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}]
        _keep_newest(self.messages, (chat_id, message["message_id"]), message, self.keep)
        return self._push({"message": message})

    def press(self, user: dict[str, Any], message: dict[str, Any], data: str) -> str:
        """The user presses a button carrying ``data`` under ``message``; returns the callback query id."""
        query_id = str(next(self._callback_ids))
        _keep_newest(self.pending_callbacks, query_id, None, self.keep)
        current = self.messages.get((message["chat"]["id"], message["message_id"]), message)
        self._push({"callback_query": {"id": query_id, "from": user, "chat_instance": f"ci{message['chat']['id']}",
                                       "message": current, "data": data}})
        return query_id

    def membership(self, user: dict[str, Any], chat_id: int, status: str = "member") -> dict[str, Any]:
        """Someone adds the bot to (or removes it from) a group."""
        now = int(time.time())
        return self._push({"my_chat_member": {
            "chat": self._chat_obj(chat_id), "from": user, "date": now,
            "old_chat_member": {"status": "left", "user": self.me},
            "new_chat_member": {"status": status, "user": self.me}}})

    # -- reading what the bot did ---------------------------------------------------------------------------
    def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        return [m for (c, _), m in sorted(self.messages.items()) if c == chat_id and m["from"]["id"] == self.me["id"]]

    @staticmethod
    def buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
        rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]

    def unanswered_callbacks(self) -> set[str]:
        return set(self.pending_callbacks)


