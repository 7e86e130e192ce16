"""Overload is fair and said: Telegram's overall limit is shared by turns between chats (a chat
with many sends queued does not hold the others back), an urgent notice goes first, and a user
whose update waits without a word is told once that it is queued."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chatbot.console.botapi import BotApiEmulator
from chatbot.telegram.i18n import t
from chatbot.telegram.pacing import URGENT, ChatPacedRateLimiter, FairLimiter
from tests.harness import BotHarness

ALICE = BotApiEmulator.user(6101, "ko")
BOB = BotApiEmulator.user(6102, "en")


async def test_chats_take_turns_and_an_urgent_request_goes_first() -> None:
    limiter = FairLimiter(20)  # bursts of 2, then one every 50 ms
    granted: list[str] = []
    stamps: list[float] = []
    loop = asyncio.get_running_loop()

    async def send(name: str, chat: int, urgent: bool = False) -> None:
        await limiter.acquire(chat, urgent)
        granted.append(name)
        stamps.append(loop.time())

    # All queued at once, in this order: one chat's burst (pushes), two other chats, an urgent notice.
    flood = [asyncio.create_task(send(f"a{i}", 1)) for i in range(16)]
    others = [asyncio.create_task(send(name, chat)) for name, chat in (("b0", 2), ("b1", 2), ("c0", 3))]
    gone = asyncio.create_task(send("a-cancelled", 1))
    urgent = asyncio.create_task(send("notice", 4, urgent=True))
    await asyncio.sleep(0)
    gone.cancel()  # a request given up while queued takes no slot
    await asyncio.gather(*flood, *others, urgent)
    assert "a-cancelled" not in granted and len(granted) == 20
    position = {name: granted.index(name) for name in granted}
    assert position["notice"] <= 3 and position["notice"] < min(position["b0"], position["c0"])  # after the burst
    # then the chats take turns: the others are served among chat 1's next few, not after all 16
    assert max(position["b0"], position["c0"], position["b1"]) < position["a6"]
    assert position["b0"] < position["b1"]
    for i in range(len(stamps)):  # never more than the burst plus the rate in any window
        for k in range(3, len(stamps) - i):
            assert stamps[i + k] - stamps[i] >= (k - limiter.capacity) / limiter.rate - 0.005


async def test_bot_api_requests_on_the_wire_are_bounded_and_the_long_poll_is_not_counted() -> None:
    """A burst of sends goes out a few at a time (each waits for a slot, in order), so the connection
    pool never grows past the bound; the long poll, held open for seconds, takes no slot."""
    limiter = ChatPacedRateLimiter(0.0, overall_max_rate=0, max_in_flight=2)
    on_wire: list[str] = []
    release = asyncio.Event()

    async def post(endpoint: str, data: dict[str, Any]) -> bool:
        on_wire.append(str(data.get("chat_id", endpoint)))
        await release.wait()
        return True

    async def send(endpoint: str, chat: int) -> Any:
        data = {"chat_id": chat} if chat else {}
        return await limiter.process_request(post, (endpoint, data), {}, endpoint, data, None)

    sends = [asyncio.create_task(send("sendMessage", chat)) for chat in (1, 2, 3, 4, 5)]
    for _ in range(20):
        await asyncio.sleep(0)
    assert on_wire == ["1", "2"]  # the other three wait their turn
    poll = asyncio.create_task(send("getUpdates", 0))
    for _ in range(20):
        await asyncio.sleep(0)
    assert on_wire == ["1", "2", "getUpdates"]
    release.set()
    assert await asyncio.gather(*sends, poll) == [True] * 6
    assert on_wire == ["1", "2", "getUpdates", "3", "4", "5"]


async def test_an_urgent_request_takes_the_next_slot_on_the_wire() -> None:
    """The wire is full and sends wait for a slot: the urgent notice takes the next free one, ahead of the sends
    the flood limits let go before it (a plain semaphore kept it behind all of them)."""
    limiter = ChatPacedRateLimiter(0.0, overall_max_rate=0, max_in_flight=2)
    on_wire: list[str] = []
    replies = {chat: asyncio.Event() for chat in range(1, 7)}

    async def post(endpoint: str, data: dict[str, Any]) -> bool:
        on_wire.append(str(data["chat_id"]))
        await replies[data["chat_id"]].wait()
        return True

    async def send(chat: int, urgent: bool = False) -> Any:
        data = {"chat_id": chat}
        return await limiter.process_request(post, ("sendMessage", data), {}, "sendMessage", data,
                                             URGENT if urgent else None)

    sends = [asyncio.create_task(send(chat)) for chat in (1, 2, 3, 4, 5)]
    for _ in range(20):
        await asyncio.sleep(0)
    notice = asyncio.create_task(send(6, urgent=True))
    for _ in range(20):
        await asyncio.sleep(0)
    assert on_wire == ["1", "2"]
    replies[1].set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert on_wire == ["1", "2", "6"]
    for reply in replies.values():
        reply.set()
    assert await asyncio.gather(*sends, notice) == [True] * 6
    assert on_wire == ["1", "2", "6", "3", "4", "5"]


@pytest.fixture
async def bot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[BotHarness]:
    harness = BotHarness(f"sqlite:///{tmp_path}/bot.sqlite3")
    await harness.start()
    yield harness
    await harness.stop()


def held_quotes(bot: BotHarness, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """/price waits until the returned event is set (a reply held up: KIS slow, a queue ahead)."""
    assert bot.runtime is not None
    market = bot.runtime.market
    quote, release = market.quote, asyncio.Event()

    async def held(user_id: int, text: str) -> Any:
        await release.wait()
        return await quote(user_id, text)

    monkeypatch.setattr(market, "quote", held)
    return release


async def wait_until(condition: Any, timeout: float = 30.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


async def test_a_waiting_user_is_told_once_per_wait(bot: BotHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    processor = bot.app.update_processor
    processor.retell_after = 0.0  # every wait may be told (the default spaces notices 30 s apart)
    processor.patience = 60.0
    for user in (ALICE, BOB):  # answered without a long wait: no notice
        assert [m["text"][:4] for m in await bot.say(user, "/price 005930")] == ["삼성전자" if user is ALICE else "Sams"]
    processor.patience = 0.2
    release = held_quotes(bot, monkeypatch)
    first = bot.api.send_text(ALICE, "/price 005930")
    bot.api.send_text(ALICE, "/price 000660")  # behind the first, in the same chat
    await bot.wait_for_message(ALICE["id"], t("queued", "ko"))
    checks = processor.checks
    await wait_until(lambda: processor.checks >= checks + 3)  # looked at again and again: still one notice
    assert bot.count_messages(ALICE["id"], t("queued", "ko")) == 1
    assert bot.count_messages(BOB["id"], t("queued", "en")) == 0
    # The first reply starts a new wait for the second update: told again if its reply took over
    # `patience` more (0.2 s is not much on a loaded machine). Not this one's subject: patience is long.
    processor.patience = 60.0
    release.set()
    await bot._wait(first["update_id"])
    await wait_until(lambda: bot.count_messages(ALICE["id"], "SK하이닉스") == 1)
    assert bot.count_messages(ALICE["id"], t("queued", "ko")) == 1
    processor.patience = 0.2
    release.clear()  # a new wait, after a reply reached the chat: told again, in the user's language
    bot.api.send_text(BOB, "/price 005930")
    await bot.wait_for_message(BOB["id"], t("queued", "en"))
    release.set()
    await wait_until(lambda: bot.count_messages(BOB["id"], "Samsung") == 2)
    assert processor.notices_sent == 2
    processor.retell_after = 3600.0  # told a moment ago: a new wait is not told again (and not polled hot)
    release.clear()
    loop = asyncio.get_running_loop()
    bot.api.send_text(BOB, "/price 005930")
    checks, started = processor.checks, loop.time()
    await wait_until(lambda: processor.checks >= checks + 3)
    assert processor.checks - checks <= (loop.time() - started) / processor.patience + 2
    release.set()
    await wait_until(lambda: bot.count_messages(BOB["id"], "Samsung") == 3)
    assert processor.notices_sent == 2 and bot.count_messages(BOB["id"], t("queued", "en")) == 1


async def test_a_request_that_may_have_reached_telegram_is_not_sent_again() -> None:
    """Only a request that never left is sent again (its connection not made in time); one that timed out reading
    the reply may have been delivered: sending it again could double a message, so its TimedOut is raised."""
    import httpx
    from telegram.error import TimedOut

    from chatbot.telegram.pacing import ChatPacedRateLimiter

    limiter = ChatPacedRateLimiter(per_chat_interval=0)
    calls = 0

    async def send() -> None:
        nonlocal calls
        calls += 1
        raise TimedOut() from httpx.ReadTimeout("no reply in time")

    with pytest.raises(TimedOut):
        await limiter._send_in_turn(send, False)
    assert calls == 1
