"""The console's fake Bot API keeps a bounded session (chatbot/console/botapi.py): a ``chatbot console``
session runs for as long as its user likes, and kept every message, call and answer until it ended."""

from __future__ import annotations

import json
from typing import Any

from chatbot.console import botapi
from chatbot.console.botapi import BotApiEmulator

USER = BotApiEmulator.user(77, "en")


async def _card(api: BotApiEmulator, text: str) -> dict[str, Any]:
    """The bot sends a message with one button, as an order card."""
    markup = json.dumps({"inline_keyboard": [[{"text": "Confirm", "callback_data": f"ok:{text}"}]]})
    status, body = await api.call("sendMessage", {"chat_id": USER["id"], "text": text, "reply_markup": markup})
    assert status == 200, body
    result: dict[str, Any] = body["result"]
    return result


def _sizes(api: BotApiEmulator) -> dict[str, int]:
    return {"messages": len(api.messages), "html": len(api.html), "calls": len(api.calls),
            "answers": len(api.callback_answers), "pending": len(api.pending_callbacks),
            "deleted": len(api.deleted), "updates": len(api.updates)}


async def test_a_long_session_keeps_no_more_than_its_bound_and_recent_buttons_still_work() -> None:
    keep = 40
    api = BotApiEmulator(keep=keep)
    offset = 0
    for i in range(400):  # the user types, the bot answers with a card, the user presses, the bot answers and edits
        api.send_text(USER, f"/buy 005930 {i + 1}")
        card = await _card(api, f"card {i}")
        query = api.press(USER, card, f"ok:card {i}")
        updates = (await api.call("getUpdates", {"offset": offset, "timeout": 0}))[1]["result"]
        offset = updates[-1]["update_id"] + 1
        assert updates[-1]["callback_query"]["message"]["text"] == f"card {i}"
        assert (await api.call("answerCallbackQuery", {"callback_query_id": query, "text": "placed"}))[0] == 200
        status, body = await api.call("editMessageText", {"chat_id": USER["id"], "message_id": card["message_id"],
                                                          "text": f"card {i}: placed"})
        assert status == 200, body
        if i % 3 == 0:
            note = await _card(api, f"note {i}")
            assert (await api.call("deleteMessage", {"chat_id": USER["id"], "message_id": note["message_id"]}))[0] == 200
        assert max(_sizes(api).values()) <= keep, _sizes(api)

    # what the console reads is there: the newest messages, the last answer, the transcript's end
    assert [m["text"] for m in api.bot_messages(USER["id"])][-1] == "card 399: placed"
    assert api.callback_answers[query]["text"] == "placed"
    assert "editMessageText" in [method for method, _ in api.calls][-3:]
    # a press on a recent card still reaches the bot with the card as it is now, and may be answered
    query = api.press(USER, card, "ok:card 399")
    update = (await api.call("getUpdates", {"offset": offset, "timeout": 0}))[1]["result"][-1]
    assert update["callback_query"]["message"]["text"] == "card 399: placed"
    assert (await api.call("answerCallbackQuery", {"callback_query_id": query}))[0] == 200
    assert not api.unanswered_callbacks()
    # the first card is gone, as a deleted message is: editing it is refused the way Telegram refuses
    status, body = await api.call("editMessageText", {"chat_id": USER["id"], "message_id": 2, "text": "late"})
    assert status == 400 and "message to edit not found" in body["description"]


async def test_the_console_session_is_bounded_by_default_and_the_tests_fake_keeps_everything() -> None:
    api = BotApiEmulator()  # as run_console builds it
    for i in range(botapi.KEEP + 500):
        await _card(api, f"push {i}")
        await api.call("getUpdates", {"timeout": 0})  # the bot's idle poll, every second in a console session
    assert len(api.messages) == botapi.KEEP and len(api.calls) == botapi.KEEP
    assert api.bot_messages(USER["id"])[-1]["text"] == f"push {botapi.KEEP + 499}"

    everything = BotApiEmulator(keep=None)
    for i in range(botapi.KEEP + 5):
        await _card(everything, f"push {i}")
    assert len(everything.messages) == botapi.KEEP + 5 and len(everything.calls) == botapi.KEEP + 5


async def test_a_bounded_session_hands_a_photo_to_its_listeners_and_keeps_no_bytes() -> None:
    api = BotApiEmulator(keep=10)
    seen: list[bytes] = []
    api.listeners.append(lambda event, message: seen.append(message["_photo_bytes"]) if event == "photo" else None)
    png = b"\x89PNG\r\n\x1a\n" + bytes(100_000)
    status, body = await api.call("sendPhoto", {"chat_id": USER["id"], "photo": png, "caption": "chart"})
    assert status == 200 and body["result"]["photo"][0]["file_size"] == len(png)
    assert seen == [png]  # the console saves it from here
    assert api.messages[(USER["id"], body["result"]["message_id"])]["_photo_bytes"] is None
