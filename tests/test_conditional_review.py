"""Conditional orders under faults the other conditional tests do not reach: a replica taking the feed
over while this one is still sending a firing's sell, and the database refusing the firing's first write.

End to end through the simulator (fake Bot API ↔ bot ↔ simulator); prices move only when a test says so."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from chatbot.alerts.triggers import STOP, ArmedTrigger, Crossed, regular_session
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis.models import KST
from chatbot.service.conditional import ConditionalOrders
from chatbot.service.journal import Settling
from chatbot.storage.db import Database
from chatbot.storage.tables import ConditionalOrderRow, OrderJournalRow, OutboxRow
from tests.harness import BotHarness
from tests.test_alert_storms import tick
from tests.test_conditional import (
    ALICE,
    CODE,
    PLACED,
    TRIGGERED,
    arm,
    bot,
    buy,
    price,
    rows,
    service,
    ticks,
    wait_for,
)
from tests.test_triggers import engine_with, idle

US_PLACED = "매도 주문 접수"
__all__ = ["bot"]  # the fixture, shared with test_conditional


async def _status(harness: BotHarness) -> str:
    (row,) = await rows(harness, ConditionalOrderRow)
    return str(row.status)


async def test_a_replica_taking_the_feed_over_sends_an_unsent_firing_once_and_its_first_owner_does_not(
        bot: BotHarness) -> None:
    """Replica A fires a stop; before its sell leaves (waiting behind the user's other firing, a slow
    holdings read, a database retry) A loses the feed role and replica B takes it over. B's start-up
    resumes firings "that a restart stopped before sending" — but A was alive and sent it too: the trader
    holding 20 shares with a stop for 10 was sold 20. Leaving it to A instead loses the stop-loss if A
    has crashed on another host (its lease looks live for up to 30 s). B takes the unsent row over, sends
    it at once, and A, marking it sending, finds it no longer its own and sends nothing."""
    await buy(bot, ALICE, 20)
    accepted = bot.sim.orders_accepted
    a, turn = await _fired_and_held(bot)
    b = _replica(a, "other-host:4242::feed-taker")  # B: the same database and broker, its own process id
    assert await b.recover() == 1
    if b._tasks:
        await asyncio.wait(set(b._tasks), timeout=60)
    assert bot.sim.orders_accepted == accepted + 1, "B sent it: the stop does not wait for A, who may be gone"
    turn.release()
    await wait_for(lambda: _placed(bot))
    if a._tasks:
        await asyncio.wait(set(a._tasks), timeout=60)
    assert bot.sim.orders_accepted == accepted + 1, "one firing, one sell"
    (balance,) = await bot.say(ALICE, "/balance")
    assert "10주" in balance["text"], balance["text"]


async def _fired_and_held(bot: BotHarness) -> tuple[ConditionalOrders, asyncio.Lock]:
    """ALICE's stop for 10 armed and fired on replica A (the bot's own service), its sell held behind her
    lock (returned, acquired: release it to let A go on)."""
    stop = ticks(-1, price(bot))
    await arm(bot, ALICE, f"/stop {CODE} 10 {stop}")
    a = service(bot)
    turn = a._locks.setdefault(ALICE["id"], asyncio.Lock())
    await turn.acquire()  # A's sell waits its turn
    bot.sim.set_price(CODE, stop)
    await bot.wait_for_message(ALICE["id"], TRIGGERED, timeout=60)
    await wait_for(lambda: _firing(bot))
    return a, turn


async def _firing(harness: BotHarness) -> bool:
    return await _status(harness) == "firing"


async def _placed(harness: BotHarness) -> bool:
    return await _status(harness) == "placed"


async def _sell_filled(harness: BotHarness) -> bool:
    return [r.status for r in await rows(harness, OrderJournalRow) if r.side == "sell"] == ["filled"]


def _replica(service_: ConditionalOrders, process_id: str) -> ConditionalOrders:
    other = copy.copy(service_)
    other.process_id = process_id
    other._locks = {}
    other._tasks = set()
    other._sending = asyncio.Semaphore(8)
    other.settling = Settling()  # a process of its own: what A has in flight is not B's
    other._loop = None
    return other


class _RefuseFirstWriteConnection:
    """The service's database, whose next ``write_connection()`` fails ("database is locked") once."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.armed = False
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    @asynccontextmanager
    async def write_connection(self) -> AsyncIterator[AsyncConnection]:
        if self.armed:
            self.armed = False
            self.refused += 1
            raise OperationalError("UPDATE conditional_orders", {}, sqlite3.OperationalError("database is locked"))
        async with self._db.write_connection() as conn:
            yield conn


async def test_a_stop_crossed_while_the_database_refused_the_firing_write_still_fires_once(
        bot: BotHarness) -> None:
    """The trade at the stop comes while the database refuses one write (a lock, a fail-over): the
    firing's one transaction fails, the order is put back in the book — and the crossing is forgotten.
    The price recovers a tick later, and the stop-loss the trader relied on never fires."""
    await buy(bot, ALICE, 10)
    now = price(bot)
    stop = ticks(-1, now)
    await arm(bot, ALICE, f"/stop {CODE} 10 {stop}")
    accepted = bot.sim.orders_accepted
    svc = service(bot)
    refusing = _RefuseFirstWriteConnection(svc.db)
    svc.db = refusing  # type: ignore[assignment]
    refusing.armed = True
    bot.sim.set_price(CODE, stop)
    await wait_for(lambda: refusing.refused == 1)
    bot.sim.set_price(CODE, ticks(2, now))  # the rebound
    await bot.sim.tick()
    await bot.wait_for_message(ALICE["id"], PLACED, timeout=30)
    await wait_for(lambda: _placed(bot))
    (row,) = await rows(bot, ConditionalOrderRow)
    assert row.fired_price == stop
    bot.sim.set_price(CODE, ticks(-3, now))
    await bot.sim.tick()
    await asyncio.sleep(0.5)
    assert bot.sim.orders_accepted == accepted + 1
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 1


async def test_a_us_stop_crossed_while_the_feed_was_down_fires_once_after_the_reconnect(
        us_open_bot: BotHarness) -> None:
    """The feed drops; AAPL trades through the stop-loss and comes back before it reconnects. KRX trades
    carry the times of the day's extremes, HDFSCNT0 only the extremes: the first US trade after the gap
    was judged alone, so the stop the trader relied on never fired. Its day's low, lower than the one the
    last trade before the gap carried, was made during the gap: the stop fires, once."""
    bot = us_open_bot
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    (card,) = await bot.say(ALICE, "/buy AAPL 3 190.50")
    await bot.press_button(ALICE, card, 0)
    state = bot.sim.us_market.get("AAPL")
    assert state is not None
    stop = min(Decimal(180), (Decimal(state.low).scaleb(-4) - 1).quantize(Decimal(1)))  # below the day's low
    (card,) = await bot.say(ALICE, f"/stop AAPL 3 {stop}")
    assert BotApiEmulator.buttons(card), card["text"]
    await bot.press_button(ALICE, card, 0)
    (row,) = await rows(bot, ConditionalOrderRow)
    assert row.status == "armed"
    assert bot.runtime is not None and bot.runtime.engine is not None
    engine = service(bot).engine
    assert engine is not None
    bot.sim.set_us_price("AAPL", Decimal("190.00"))  # a trade before the gap: the day's low it carries
    await wait_for(lambda: engine.last_price.get("DNASAAPL") == 1_900_000)
    feed = bot.runtime.engine.feed
    reconnects = feed.reconnects
    accepted = bot.sim.orders_accepted
    bot.sim.realtime["real"].drop_all()
    await asyncio.sleep(0.05)
    bot.sim.set_us_price("AAPL", stop - Decimal("0.50"))  # through the stop while the feed is down…
    bot.sim.set_us_price("AAPL", Decimal("190.00"))  # …and back
    await wait_for(lambda: feed.connected.is_set() and feed.reconnects > reconnects)
    await asyncio.sleep(0.2)
    bot.sim.set_us_price("AAPL", Decimal("190.00"))  # the first US trade after the gap
    await bot.wait_for_message(ALICE["id"], US_PLACED, timeout=30)
    await wait_for(lambda: _placed(bot))
    bot.sim.set_us_price("AAPL", stop - Decimal(1))
    await asyncio.sleep(0.5)
    assert bot.count_messages(ALICE["id"], TRIGGERED) == 1
    assert bot.sim.orders_accepted == accepted + 1


async def test_a_stop_cancelled_the_moment_it_fires_gives_its_symbol_back_to_the_feed(bot: BotHarness) -> None:
    """The trade crosses the stop and the owner's cancel lands before the firing's transaction: the cancel
    wins (nothing is sold), but the symbol stayed on the feed for good — a slot of the few a KIS session
    has (every such race one more), until new alerts and conditional orders are refused for capacity."""
    await buy(bot, ALICE, 10)
    stop = ticks(-1, price(bot))
    await arm(bot, ALICE, f"/stop {CODE} 10 {stop}")
    svc = service(bot)
    engine = svc.engine
    assert engine is not None and bot.runtime is not None and bot.runtime.engine is not None
    feed = bot.runtime.engine.feed
    assert ("H0STCNT0", CODE) in feed.subscriptions
    accepted = bot.sim.orders_accepted
    crossed, go_on = asyncio.Event(), asyncio.Event()
    fire = engine.on_crossed

    async def held(batch: list[Crossed]) -> None:
        crossed.set()
        await go_on.wait()
        await fire(batch)

    engine.on_crossed = held
    bot.sim.set_price(CODE, stop)
    await asyncio.wait_for(crossed.wait(), 30)  # handed over, its transaction not begun
    (listing,) = await bot.say(ALICE, "/stops")
    (button,) = BotApiEmulator.buttons(listing)
    answer = await bot.press(ALICE, listing, button[1])
    assert "취소" in answer.get("text", ""), answer
    go_on.set()
    await asyncio.sleep(0)
    await asyncio.wait_for(engine.wait_idle(), 30)
    assert (await rows(bot, ConditionalOrderRow))[0].status == "cancelled"
    assert bot.sim.orders_accepted == accepted
    assert ("H0STCNT0", CODE) not in feed.subscriptions


async def test_a_krx_stop_crossed_in_a_gap_the_feed_came_back_from_after_the_session_fires_at_the_next() -> None:
    """Real mode (the session gate on): the feed drops at 15:10, the stop is crossed at 15:12 and the feed is
    back only after 15:20, so its first trade (the 15:30 closing print) is outside the session and was
    ignored, gap and all; the next trade in the session, the next morning, was judged against that day's
    extremes and the crossing before the close was lost. It now fires with that next trade, once."""
    engine, feed, fired = await engine_with(ArmedTrigger(1, CODE, 69_000, None), ArmedTrigger(2, CODE, 60_000, None),
                                            in_session=regular_session)
    nine = dt.datetime.now(KST).replace(hour=9, minute=0, second=0, microsecond=0)
    engine.assume_gap(nine.timestamp() + 6 * 3600 + 600)  # down from 15:10
    feed.emit(tick(CODE, 70_000, time="153000", low=68_500, low_time="151200", high=71_000, high_time="100000"))
    await idle(engine)
    assert fired == []  # the market takes no order now
    feed.emit(tick(CODE, 70_500, time="090100", low=69_800, low_time="090000", high=70_500, high_time="090100"))
    await idle(engine)
    assert [(c.order_id, c.leg, c.price) for c in fired] == [(1, STOP, 68_500)]
    feed.emit(tick(CODE, 68_000, time="090200", low=68_000, low_time="090200"))
    await idle(engine)
    assert [c.order_id for c in fired] == [1]
    assert engine.armed(2) is not None
    await engine.stop()


async def test_the_first_owner_of_a_firing_taken_over_writes_nothing_of_it_when_the_taker_sold_first(
        bot: BotHarness) -> None:
    """As above, but the trader holds exactly the stop's 10 shares: B takes the firing over and its sell
    fills before A's turn comes. A then reads the holdings (none left) and, the row no longer its own,
    must write nothing: it settled the firing 'failed: nothing held to sell' (the journal row of B's
    filled sell turned 'failed' and told, and the trader was told the stop-loss failed beside 'placed')."""
    await buy(bot, ALICE, 10)
    a, turn = await _fired_and_held(bot)
    b = _replica(a, "other-host:4242::feed-taker")
    assert await b.recover() == 1
    if b._tasks:
        await asyncio.wait(set(b._tasks), timeout=60)
    await wait_for(lambda: _placed(bot))
    (balance,) = await bot.say(ALICE, "/balance")
    assert "10주" not in balance["text"], "B's sell filled: nothing is held any more"
    # B's sell filled: its notice brings the journal row to 'filled' (in its own time); A goes on only then, so
    # whatever the row says after A's turn is A's doing
    await wait_for(lambda: _sell_filled(bot))
    (journal,) = [r for r in await rows(bot, OrderJournalRow) if r.side == "sell"]
    turn.release()
    if a._tasks:
        await asyncio.wait(set(a._tasks), timeout=60)
    (after,) = [r for r in await rows(bot, OrderJournalRow) if r.side == "sell"]
    assert after.status == journal.status and after.quantity == 10, (after.status, after.quantity, after.message)
    assert await _status(bot) == "placed"
    keys = [r.dedupe_key for r in await rows(bot, OutboxRow)]
    assert not [k for k in keys if k.startswith("cond:") and k.endswith(":failed")], keys


async def test_a_replica_taking_the_feed_back_leaves_alone_a_firing_it_is_still_sending(bot: BotHarness) -> None:
    """Replica A fires a stop; its sell waits behind the user's lock. A loses the feed role for a moment (its
    stop waits 10 s for the firing and leaves it running) and takes it back: its start-up resumed the unsent
    firings, its own one still in flight among them (the takeover's compare-and-set passes from A to A), and ran
    it a second time under the same owner: after the first sold the 10 shares, the second found nothing held and
    settled the firing 'failed' (the filled sell's journal row turned failed, the trader told the stop failed);
    had the first sell's outcome been unknown (not told), the second would have sold again."""
    await buy(bot, ALICE, 10)
    accepted = bot.sim.orders_accepted
    a, turn = await _fired_and_held(bot)
    resumed = await a.recover()
    turn.release()
    await wait_for(lambda: _placed(bot))
    if a._tasks:
        await asyncio.wait(set(a._tasks), timeout=60)
    assert bot.sim.orders_accepted == accepted + 1, "one firing, one sell"
    (journal,) = [r for r in await rows(bot, OrderJournalRow) if r.side == "sell"]
    assert journal.status in ("accepted", "filled"), (journal.status, journal.message)
    keys = [r.dedupe_key for r in await rows(bot, OutboxRow)]
    assert not [k for k in keys if k.startswith("cond:") and k.endswith(":failed")], keys
    assert resumed == 0, "A is sending it still"
