"""Price alerts and fill notifications, end to end: fake Bot API ↔ bot ↔ simulator (REST + WebSocket)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import select

from chatbot.alerts.book import AlertBook
from chatbot.config import KisSettings
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import protocol as p
from chatbot.storage.tables import AlertRow, OrderEventRow, OutboxRow, UserRow
from tests.harness import BotHarness

ALICE = BotApiEmulator.user(3001, "ko")
BOB = BotApiEmulator.user(3002, "en")
CODE = "005930"
PUSH = "도달"


@pytest.fixture
async def bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url, kis=KisSettings(alert_cooldown_seconds=1, max_alerts_per_user=5))
    await harness.start()
    assert harness.runtime is not None and harness.runtime.engine is not None
    harness.runtime.engine.rearm_interval = 0.1
    yield harness
    await harness.stop()


def price(bot: BotHarness) -> int:
    state = bot.sim.market.get(CODE)
    assert state is not None
    return state.price


def ticks(n: int, start: int) -> int:
    return start + n * p.tick_size(start)


async def rows(bot: BotHarness, table: type) -> list:
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        return list((await session.exec(select(table))).all())


async def settle(seconds: float = 0.3) -> None:
    """Time for something that must NOT happen to show up (what must happen is waited for: :func:`until`)."""
    await asyncio.sleep(seconds)


async def until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout)


async def test_alert_fires_exactly_once(bot: BotHarness) -> None:
    target = ticks(3, price(bot))
    (msg,) = await bot.say(ALICE, f"/alert {CODE} 이상 {target}")
    assert "알림 #1" in msg["text"]
    bot.sim.set_price(CODE, ticks(1, price(bot)))  # not there yet
    await settle()
    assert bot.count_messages(ALICE["id"], PUSH) == 0
    bot.sim.set_price(CODE, target + p.tick_size(target))
    push = await bot.wait_for_message(ALICE["id"], PUSH)
    assert "삼성전자" in push["text"] and f"₩{target:,} 이상" in push["text"]
    for _ in range(5):  # it stays above, and crosses again: nothing more
        bot.sim.set_price(CODE, ticks(2, target))
        await bot.sim.tick()
    await settle()
    assert bot.count_messages(ALICE["id"], PUSH) == 1
    (alert,) = await rows(bot, AlertRow)
    assert alert.status == "fired" and alert.fired_count == 1
    (out,) = await rows(bot, OutboxRow)
    assert out.status == "sent"
    (listing,) = await bot.say(ALICE, "/alerts")
    assert "설정된 알림이 없습니다" in listing["text"]


async def test_below_and_percent_alerts(bot: BotHarness) -> None:
    now = price(bot)
    await bot.say(BOB, f"/alert {CODE} -1%")
    await bot.say(BOB, f"/alert {CODE} below {ticks(-2, now)}")
    bot.sim.set_price(CODE, int(now * 0.97))
    await until(lambda: bot.count_messages(BOB["id"], "reached") >= 2)
    await settle()
    assert bot.count_messages(BOB["id"], "reached") == 2


async def test_repeat_alert_respects_the_cooldown(bot: BotHarness) -> None:
    target = ticks(2, price(bot))
    await bot.say(ALICE, f"/alert {CODE} above {target} repeat")
    bot.sim.set_price(CODE, ticks(1, target))
    await bot.wait_for_message(ALICE["id"], PUSH)
    bot.sim.set_price(CODE, ticks(2, target))  # within the cooldown: silent
    await settle(0.3)
    assert bot.count_messages(ALICE["id"], PUSH) == 1
    await asyncio.sleep(1.2)  # cooldown (1 s) over: re-armed
    bot.sim.set_price(CODE, ticks(3, target))
    await until(lambda: bot.count_messages(ALICE["id"], PUSH) >= 2)
    await settle()
    assert bot.count_messages(ALICE["id"], PUSH) == 2
    (alert,) = await rows(bot, AlertRow)
    assert alert.repeat and alert.fired_count == 2


async def test_restart_between_set_and_cross(bot: BotHarness) -> None:
    target = ticks(2, price(bot))
    await bot.say(ALICE, f"/alert {CODE} above {target}")
    await bot.restart()
    bot.sim.set_price(CODE, ticks(1, target))
    await bot.wait_for_message(ALICE["id"], PUSH)
    await bot.restart()  # and again after firing: nothing fires twice
    await bot.sim.tick()
    await settle()
    assert bot.count_messages(ALICE["id"], PUSH) == 1


async def test_feed_drop_during_the_crossing(bot: BotHarness) -> None:
    assert bot.runtime is not None and bot.runtime.engine is not None
    feed = bot.runtime.engine.feed
    target = ticks(2, price(bot))
    await bot.say(ALICE, f"/alert {CODE} above {target}")
    bot.sim.realtime["real"].drop_all()
    bot.sim.set_price(CODE, ticks(1, target))  # crossed while the feed is down: this tick is lost
    await _ticking_until(bot, lambda: bot.count_messages(ALICE["id"], PUSH) > 0)  # a tick after the gap tells it
    assert feed.reconnects >= 1
    bot.sim.realtime["real"].drop_all()
    reconnects = feed.reconnects
    await _ticking_until(bot, lambda: feed.reconnects > reconnects)  # (ticks lost while down, then live ones)
    for _ in range(3):
        await bot.sim.tick()
    await settle()
    assert bot.count_messages(ALICE["id"], PUSH) == 1


async def _ticking_until(bot: BotHarness, done: Callable[[], bool], deadline: float = 60.0) -> None:
    """Trade on, one tick each 0.1 s, until ``done``: whichever first tick after the feed is back (re-subscribed)
    reaches the engine is the one judged. (One tick after a fixed pause was lost when the subscription was not
    made again yet on a loaded machine.) ``deadline`` is not a measure."""
    async def ticking() -> None:
        while not done():
            await bot.sim.tick()
            await asyncio.sleep(0.1)
    await asyncio.wait_for(ticking(), deadline)


async def test_fired_but_unsent_push_is_sent_once_after_a_crash(bot: BotHarness) -> None:
    assert bot.runtime is not None and bot.runtime.sender is not None
    await bot.runtime.sender.stop()  # the bot "crashes" after firing, before sending
    target = ticks(2, price(bot))
    await bot.say(ALICE, f"/alert {CODE} above {target}")
    bot.sim.set_price(CODE, ticks(1, target))
    for _ in range(50):
        if await rows(bot, OutboxRow):
            break
        await asyncio.sleep(0.05)
    (out,) = await rows(bot, OutboxRow)
    assert out.status == "pending" and bot.count_messages(ALICE["id"], PUSH) == 0
    await bot.restart()
    await bot.wait_for_message(ALICE["id"], PUSH)
    await settle()
    assert bot.count_messages(ALICE["id"], PUSH) == 1
    assert [o.status for o in await rows(bot, OutboxRow)] == ["sent"]


async def test_fill_notice_after_a_resting_limit_order(bot: BotHarness) -> None:
    limit = ticks(-3, price(bot))
    (card,) = await bot.say(ALICE, f"/buy {CODE} 2 {limit}")
    await bot.press_button(ALICE, card, 0)
    assert "주문 접수" in bot.current(card)["text"]
    await settle(0.2)
    assert bot.count_messages(ALICE["id"], "체결") == 0
    bot.sim.set_price(CODE, limit)
    push = await bot.wait_for_message(ALICE["id"], "체결")
    assert "삼성전자" in push["text"] and f"@ ₩{limit:,}" in push["text"] and "2주" in push["text"]
    events = [e.status for e in await rows(bot, OrderEventRow)]
    assert events[-1] == "filled"


async def test_market_order_fill_is_pushed(bot: BotHarness) -> None:
    (card,) = await bot.say(BOB, f"/buy {CODE} 3")
    await bot.press_button(BOB, card, 0)
    push = await bot.wait_for_message(BOB["id"], "Filled")
    assert "3 @" in push["text"]
    for _ in range(40):  # the fill may beat the journal's order number; it is journalled all the same
        if "filled" in [e.status for e in await rows(bot, OrderEventRow)]:
            break
        await asyncio.sleep(0.05)
    assert [e.status for e in await rows(bot, OrderEventRow)][-1] == "filled"


async def test_blocked_user_alerts_are_paused_not_retried(bot: BotHarness) -> None:
    target = ticks(2, price(bot))
    await bot.say(ALICE, f"/alert {CODE} above {target}")
    await bot.say(ALICE, f"/alert {CODE} above {ticks(10, target)}")
    bot.api.blocked.add(ALICE["id"])
    bot.sim.set_price(CODE, ticks(1, target))
    for _ in range(200):  # dead push, then (separate transactions) the user marked and the alerts paused
        if [o for o in await rows(bot, OutboxRow) if o.status == "dead"] and "paused" in {
                a.status for a in await rows(bot, AlertRow)}:
            break
        await asyncio.sleep(0.05)
    (dead,) = await rows(bot, OutboxRow)
    assert dead.status == "dead" and dead.attempts == 1
    (user,) = [u for u in await rows(bot, UserRow) if u.telegram_id == ALICE["id"]]
    assert user.blocked
    assert {a.status for a in await rows(bot, AlertRow)} == {"fired", "paused"}
    sends = sum(1 for m, _ in bot.api.calls if m == "sendMessage")
    await settle(0.5)
    assert sum(1 for m, _ in bot.api.calls if m == "sendMessage") == sends  # no retry loop
    bot.api.blocked.clear()
    await bot.say(ALICE, "/start")  # back: alerts resume
    assert {a.status for a in await rows(bot, AlertRow)} == {"fired", "armed"}


async def test_alert_limits_and_bad_input(bot: BotHarness) -> None:
    now = price(bot)
    for i in range(5):
        await bot.say(ALICE, f"/alert {CODE} above {ticks(10 + i, now)}")
    (msg,) = await bot.say(ALICE, f"/alert {CODE} above {ticks(20, now)}")
    assert "5개까지" in msg["text"]
    for text, needle in [("/alert", "사용법"), ("/alert 005930", "사용법"), (f"/alert {CODE} above", "사용법"),
                         (f"/alert {CODE} above abc", "가격"), (f"/alert {CODE} +50%", "30%"),
                         (f"/alert {CODE} +0%", "30%"), ("/alert off 999", "없습니다"), ("/alert off x", "없습니다"),
                         (f"/alert {CODE} below {now * 2}", "이미")]:
        (msg,) = await bot.say(ALICE, text)
        assert needle in msg["text"], (text, msg["text"])
    (msg,) = await bot.say(BOB, "/alert off 1")  # Alice's alert: not Bob's to delete
    assert "No alert" in msg["text"]
    assert len([a for a in await rows(bot, AlertRow) if a.status == "armed"]) == 5


async def test_capacity_reached_polls_the_symbol_and_says_how_often(bot: BotHarness) -> None:
    """Past every live slot a symbol is not refused: it is polled over REST, and the user is told."""
    assert bot.runtime is not None and bot.runtime.feeds is not None
    feeds = bot.runtime.feeds
    feeds.operators[0].session.max_subscriptions = 2
    codes = [c for c, s in bot.sim.market.symbols.items()][:3]
    for code in codes[:2]:
        state = bot.sim.market.get(code)
        assert state is not None
        (msg,) = await bot.say(ALICE, f"/alert {code} above {ticks(5, state.price)}")
        assert "알림 #" in msg["text"] and "초마다" not in msg["text"]
    state = bot.sim.market.get(codes[2])
    assert state is not None
    target = ticks(5, state.price)
    (msg,) = await bot.say(ALICE, f"/alert {codes[2]} above {target}")
    assert "알림 #" in msg["text"] and "초마다" in msg["text"], msg["text"]
    placement = feeds.placement(codes[2])
    assert placement is not None and placement.kind == "poll"
    state = bot.sim.market.get(codes[0])
    assert state is not None
    (msg,) = await bot.say(BOB, f"/alert {codes[0]} above {ticks(6, state.price)}")  # a subscribed symbol: fine
    assert "Alert #" in msg["text"] and "checked every" not in msg["text"]
    bot.sim.set_price(codes[2], ticks(1, target))  # polled: fires on the next poll, once
    await bot.wait_for_message(ALICE["id"], PUSH)
    await settle(1.0)
    assert bot.count_messages(ALICE["id"], PUSH) == 1


async def test_delete_button(bot: BotHarness) -> None:
    await bot.say(ALICE, f"/alert {CODE} above {ticks(5, price(bot))}")
    (listing,) = await bot.say(ALICE, "/alerts")
    answer = await bot.press(BOB, listing, BotApiEmulator.buttons(listing)[0][1])  # not Bob's
    assert not (answer.get("text") or "").startswith("🗑")
    await bot.press_button(ALICE, listing, 0)
    assert [a.status for a in await rows(bot, AlertRow)] == ["deleted"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["above", "below"]), st.integers(1, 50)), max_size=40),
       st.lists(st.integers(1, 50), max_size=30))
def test_book_matches_brute_force(alerts: list[tuple[str, int]], prices: list[int]) -> None:
    book = AlertBook()
    live = {}
    for i, (direction, threshold) in enumerate(alerts):
        book.add(i, "X", direction, threshold)
        live[i] = (direction, threshold)
    for px in prices:
        expected = {i for i, (d, th) in live.items() if (d == "above" and px >= th) or (d == "below" and px <= th)}
        assert set(book.on_price("X", px)) == expected
        for i in expected:
            del live[i]
        if live and random.random() < 0.3:
            victim = next(iter(live))
            assert book.remove(victim)
            del live[victim]
    assert len(book) == len(live)


async def test_crossing_that_reverts_during_a_feed_gap_still_fires(bot: BotHarness) -> None:
    assert bot.runtime is not None and bot.runtime.engine is not None
    feed = bot.runtime.engine.feed
    start = price(bot)
    state = bot.sim.market.get(CODE)
    assert state is not None
    target = max(ticks(2, start), ticks(1, state.high))  # above today's high so far
    await bot.say(ALICE, f"/alert {CODE} above {target}")
    bot.sim.realtime["real"].drop_all()
    await asyncio.sleep(0.05)
    bot.sim.set_price(CODE, ticks(1, target))  # crossed during the gap…
    bot.sim.set_price(CODE, start)  # …and back before the feed returns
    for _ in range(100):
        if feed.connected.is_set() and feed.reconnects:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    await bot.sim.tick()  # the first tick after the gap carries the day's high and its time
    await bot.wait_for_message(ALICE["id"], PUSH)
    await bot.sim.tick()
    await settle()
    assert bot.count_messages(ALICE["id"], PUSH) == 1


async def test_a_feed_subscription_refused_is_told_and_the_next_alert_still_fires(bot: BotHarness) -> None:
    """Found by the soak: KIS refusing the WebSocket approval key while a first alert subscribed its
    symbol gave "Something went wrong", and left the symbol counted as subscribed though it was not,
    so the next alert on it never saw a tick."""
    bot.sim.faults.paths, bot.sim.faults.error_5xx_next = (p.PATH_APPROVAL,), 1
    (msg,) = await bot.say(ALICE, f"/alert {CODE} 이상 {ticks(3, price(bot))}")
    assert "KIS" in msg["text"] and "알림 #" not in msg["text"]
    assert await rows(bot, AlertRow) == []
    bot.sim.faults.clear()
    target = ticks(3, price(bot))
    (msg,) = await bot.say(ALICE, f"/alert {CODE} 이상 {target}")
    assert "알림 #" in msg["text"]
    bot.sim.set_price(CODE, ticks(1, target))
    await bot.wait_for_message(ALICE["id"], PUSH)
