"""US price alerts end to end on the HDFSCNT0 feed (keys like DNASAAPL), sharing the feed's slots
with domestic alerts: real PTB Application ↔ fake Bot API ↔ service ↔ simulator (US market held open)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from decimal import Decimal

import pytest
from sqlmodel import select

from chatbot.config import KisSettings
from chatbot.console.botapi import BotApiEmulator
from chatbot.storage.tables import AlertRow, OutboxRow
from tests.conftest import SQLITE_ONLY
from tests.harness import BotHarness

ALICE = BotApiEmulator.user(3101, "ko")
BOB = BotApiEmulator.user(3102, "en")
PUSH = "도달"


@pytest.fixture
async def bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url, kis=KisSettings(alert_cooldown_seconds=1, max_alerts_per_user=5),
                         us_always_open=True)
    await harness.start()
    assert harness.runtime is not None and harness.runtime.engine is not None
    harness.runtime.engine.rearm_interval = 0.1
    yield harness
    await harness.stop()


async def rows(bot: BotHarness, table: type) -> list:
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        return list((await session.exec(select(table))).all())


async def test_us_alert_fires_exactly_once(bot: BotHarness) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    (msg,) = await bot.say(ALICE, "/alert AAPL 이상 200")
    assert "알림 #1" in msg["text"] and "$200.00 이상" in msg["text"] and "$190.25" in msg["text"], msg["text"]
    assert bot.runtime is not None and bot.runtime.engine is not None
    assert ("HDFSCNT0", "DNASAAPL") in bot.runtime.engine.feed.subscriptions
    bot.sim.set_us_price("AAPL", Decimal("195.00"))  # not there yet
    await asyncio.sleep(0.3)
    assert bot.count_messages(ALICE["id"], PUSH) == 0
    bot.sim.set_us_price("AAPL", Decimal("200.50"))
    push = await bot.wait_for_message(ALICE["id"], PUSH)
    assert "애플" in push["text"] and "(AAPL)" in push["text"] and "$200.50" in push["text"], push["text"]
    assert "$200.00 이상" in push["text"]
    for price in ("201.00", "199.00", "202.00"):  # stays above, crosses again: nothing more
        bot.sim.set_us_price("AAPL", Decimal(price))
    await asyncio.sleep(0.3)
    assert bot.count_messages(ALICE["id"], PUSH) == 1
    (alert,) = await rows(bot, AlertRow)
    assert alert.status == "fired" and alert.fired_count == 1 and alert.code == "DNASAAPL"
    assert alert.threshold == Decimal(200) and alert.currency == "USD"
    (out,) = await rows(bot, OutboxRow)
    assert out.status == "sent"


async def test_us_and_domestic_alerts_share_the_feed_slots(bot: BotHarness) -> None:
    """Past the operator session's slots neither a US nor a domestic symbol is refused: both are polled
    over REST on the operator key, in one round at that key's rate (the overseas quote rides the same
    REST client), the user is told how often, and a polled US alert fires once when the price crosses."""
    assert bot.runtime is not None and bot.runtime.feeds is not None
    feeds = bot.runtime.feeds
    feeds.operators[0].session.max_subscriptions = 2  # one operator key; a paper user has none
    state = bot.sim.market.get("005930")
    assert state is not None
    (msg,) = await bot.say(ALICE, f"/alert 005930 above {state.price * 2}")
    assert "알림 #1" in msg["text"], msg["text"]
    bot.sim.set_us_price("TSLA", Decimal(250))
    (msg,) = await bot.say(ALICE, "/alert 테슬라 below 200.50")
    assert "알림 #" in msg["text"] and "$200.50 이하" in msg["text"], msg["text"]
    assert "초마다" not in msg["text"], msg["text"]  # one KRX + one US symbol fill both slots
    bot.sim.set_us_price("NVDA", Decimal(150))
    (msg,) = await bot.say(BOB, "/alert NVDA above 180")
    assert "checked every" in msg["text"] and "$180.00" in msg["text"], msg["text"]  # polled, not refused
    placement = feeds.placement("DNASNVDA")
    assert placement is not None and placement.kind == "poll"
    other = next(code for code in sorted(bot.sim.market.symbols) if code != "005930")
    other_state = bot.sim.market.get(other)
    assert other_state is not None
    (msg,) = await bot.say(BOB, f"/alert {other} above {other_state.price * 2}")
    assert "checked every" in msg["text"], msg["text"]
    poller = feeds._pollers[0]  # one key polls both, in one round at its rate
    assert set(poller.codes) == {"DNASNVDA", other} and poller.us is not None
    assert feeds.polled_every("DNASNVDA") == feeds.polled_every(other) == poller.every()
    assert feeds.capacity().polled == 2
    polls = poller.polls
    bot.sim.set_us_price("NVDA", Decimal("181.50"))  # crosses between two polls: the next poll fires it
    await bot.wait_for_message(BOB["id"], "$181.50", timeout=30)
    bot.sim.set_us_price("NVDA", Decimal(170))
    bot.sim.set_us_price("NVDA", Decimal(185))  # stays fired: nothing more
    await wait_for(lambda: poller.polls >= polls + 6)
    assert bot.count_messages(BOB["id"], "$181.50") == 1 and bot.count_messages(BOB["id"], "NVDA") == 2
    alert = next(a for a in await rows(bot, AlertRow) if a.code == "DNASNVDA")
    assert alert.status == "fired" and alert.fired_count == 1
    (listing,) = await bot.say(ALICE, "/alerts")
    assert "(TSLA) 🇺🇸" in listing["text"] and "$200.50" in listing["text"], listing["text"]


async def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.05)
    await asyncio.wait_for(poll(), timeout)


@SQLITE_ONLY
@pytest.mark.parametrize(("text", "needle"), [("/alert AAPL above 100", "already past"),
                                              ("/alert AAPL above 200.005", "tick"),
                                              ("/alert AAPL +50%", "30%"), ("/alert AAPL above", "/alert")])
async def test_us_alert_bad_input(bot: BotHarness, text: str, needle: str) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    (msg,) = await bot.say(BOB, text)
    assert needle in msg["text"], msg["text"]
    assert await rows(bot, AlertRow) == []


async def test_a_us_alert_keeps_its_exact_threshold_across_a_restart(bot: BotHarness) -> None:
    """The book is loaded from the database at start-up: $1.13 must be 11,300 price units there too (SQLite
    keeps a fractional price as a REAL, and 1.13 × 10,000 truncated is 11,299)."""
    bot.sim.set_us_price("AAPL", Decimal("1.20"))
    (msg,) = await bot.say(ALICE, "/alert AAPL 이하 1.13")
    assert "$1.13 이하" in msg["text"], msg["text"]
    await bot.restart()
    assert bot.runtime is not None and bot.runtime.engine is not None
    bot.runtime.engine.rearm_interval = 0.1
    bot.sim.set_us_price("AAPL", Decimal("1.13"))  # exactly the threshold: it fires
    push = await bot.wait_for_message(ALICE["id"], PUSH)
    assert "$1.13" in push["text"], push["text"]


class _AliceHasHerOwnKey:
    """The feed planner's key directory with ALICE registered (her own app key: her own 39-slot session),
    as in virtual/real mode; the bot runs in paper mode, whose users ride the operator's sessions only."""

    def __init__(self, bot: BotHarness) -> None:
        from chatbot.kis.rest import KisEndpoint, KisRestClient
        from tests.helpers import new_credentials

        self.rest = KisRestClient(KisEndpoint("real", bot.sim.rest_url()), new_credentials())

    async def own_keys(self, user_ids: Collection[int]) -> set[int]:
        return {u for u in user_ids if u == ALICE["id"]}

    async def approval_key(self, user_id: int) -> Callable[[], Awaitable[str]]:
        assert user_id == ALICE["id"], "only ALICE's own key may open a session"
        return self.rest.approval_key

    async def registered(self) -> int:
        return 1


async def test_a_us_alert_rides_its_owners_own_session_like_a_domestic_one(bot: BotHarness) -> None:
    """A US /alert tells the feed planner whose it is before the alert exists (as a domestic one does):
    a registered user's US symbol goes on her own session. Before, the planner met the symbol with no
    known watcher and put it on the operator's shared session, or, that session being full, on REST
    polling ("checked every N s": a crossing between two polls missed) while her own session had room."""
    assert bot.runtime is not None and bot.runtime.feeds is not None
    feeds = bot.runtime.feeds
    keys = _AliceHasHerOwnKey(bot)
    feeds.keys = keys
    feeds.user_changed(ALICE["id"])
    try:
        feeds.operators[0].session.max_subscriptions = 1
        state = bot.sim.market.get("005930")
        assert state is not None
        (msg,) = await bot.say(BOB, f"/alert 005930 above {state.price * 2}")  # BOB (no key) fills the operator's
        assert "Alert #" in msg["text"] and "checked every" not in msg["text"], msg["text"]
        bot.sim.set_us_price("AAPL", Decimal("190.25"))
        (msg,) = await bot.say(ALICE, "/alert AAPL 이상 200")
        assert "알림 #" in msg["text"] and "초마다" not in msg["text"], msg["text"]  # streamed, not polled
        placement = feeds.placement("DNASAAPL")
        assert placement is not None and placement.kind == "own" and placement.users == {ALICE["id"]}, placement
        assert feeds.carried_by(("user", ALICE["id"])) == {"DNASAAPL"}
        assert "DNASAAPL" not in feeds.carried_by(("op", 0)) and feeds.capacity().polled == 0
        bot.sim.set_us_price("AAPL", Decimal("200.50"))  # her own session's tick fires it, once
        push = await bot.wait_for_message(ALICE["id"], PUSH)
        assert "$200.50" in push["text"], push["text"]
        await asyncio.sleep(0.3)
        assert bot.count_messages(ALICE["id"], PUSH) == 1
    finally:
        await bot.runtime.feeds.users.aclose()
        await keys.rest.aclose()


async def test_a_us_alert_nothing_can_serve_is_refused_up_front_and_not_stored(bot: BotHarness) -> None:
    """Every live slot taken and an operator key without overseas quotes (no US polling): the US alert is
    refused with the capacity message before it exists, as a domestic one past every slot would be (pins
    the planner's refusal on the US path, now through ``expect``; it held before too, through the engine's
    subscribe)."""
    assert bot.runtime is not None and bot.runtime.feeds is not None
    feeds = bot.runtime.feeds
    feeds.operators[0].session.max_subscriptions = 1
    feeds._pollers[0].us = None
    state = bot.sim.market.get("005930")
    assert state is not None
    (msg,) = await bot.say(BOB, f"/alert 005930 above {state.price * 2}")
    assert "Alert #" in msg["text"], msg["text"]
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    (msg,) = await bot.say(ALICE, "/alert AAPL 이상 200")
    assert "구독 한도" in msg["text"] and "알림 #" not in msg["text"], msg["text"]
    assert [a.code for a in await rows(bot, AlertRow)] == ["005930"]
    assert feeds.placement("DNASAAPL") is None
