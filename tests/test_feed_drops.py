"""Feed drops across the planner's sessions (README "Feed capacity"), over real loopback sockets to the
simulator: an alert crossed while the session carrying its symbol was down fires once when the feed is
back, whatever became of the other sessions meanwhile: a user's session that dropped and was closed or
emptied (their symbols moved) instead of coming back, a session closed and opened again (a replica giving
the feed up and taking it back), two sessions down at once coming back one after the other."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chatbot.kis import protocol as p
from chatbot.kis.realtime import RealtimeClient
from chatbot.sim.server import KisSimulator, SimulatorOptions
from chatbot.storage import Database
from tests.test_feed_capacity import Rig, add_alerts, codes, db, fired, price_of, pushes, wait_until

__all__ = ["db"]  # the feed-capacity tests' migrated database, shared

ALICE, CAROL = 1, 3  # alice brought her own key; carol did not (the operator's session carries hers)
DEAD_URL = "ws://127.0.0.1:1/tryitout"  # nothing listens: a session sent there stays down


@pytest.fixture
async def sim() -> AsyncIterator[KisSimulator]:
    simulator = KisSimulator(SimulatorOptions(tick_interval=0, pingpong_interval=0))
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def rig(sim: KisSimulator, db: Database) -> AsyncIterator[Rig]:
    made = Rig(sim, db, 1)
    made.keys.own = {ALICE}
    yield made
    await made.aclose()


async def add_alert(db: Database, owner: int, code: str, sim: KisSimulator) -> None:
    """``owner``'s alert 3 ticks above ``code``'s price."""
    await add_alerts(db, [(owner, code)], sim)


async def cut(client: RealtimeClient) -> str:
    """Drop ``client``'s connection and keep it down (it reconnects to nowhere) until :func:`mend`."""
    url, client.ws_url, client.backoff_max = client.ws_url, DEAD_URL, 0.2
    ws = client._ws
    assert ws is not None and client.connected.is_set()
    ws.transport.abort()
    await wait_until(lambda: _true(not client.connected.is_set()), timeout=60)
    return url


def mend(client: RealtimeClient, url: str) -> None:
    client.ws_url = url


def cross_and_back(sim: KisSimulator, code: str) -> int:
    """A trade past the alert (3 ticks up) and one back at the price: only the day's high tells of it."""
    price = price_of(sim, code)
    sim.set_price(code, price + 5 * p.tick_size(price))
    sim.set_price(code, price)
    return price


async def fires_once_by_the_days_high(rig: Rig, code: str, price: int) -> None:
    """Trades at ``price`` (under the alert) until the alert fired: only a gap's judgement of the day's high
    they carry can fire it. Then it has fired once, and told once."""
    async def judged() -> bool:
        if await _fired_once(rig.db, code):
            return True
        rig.sim.set_price(code, price)
        return False
    await wait_until(judged, timeout=60)
    await wait_until(lambda: _true(rig.engine._idle.is_set()), timeout=60)


async def _true(value: bool) -> bool:
    return value


async def _fired_once(db: Database, code: str) -> bool:
    return len(await fired(db, code)) == 1


def user_session(rig: Rig, user_id: int) -> RealtimeClient:
    session = rig.users.get(user_id)
    assert session is not None
    return session


async def test_a_session_closed_while_down_does_not_swallow_the_next_drop(
        rig: Rig, sim: KisSimulator, db: Database) -> None:
    """Alice's own session drops and never comes back: she logs out (her symbol moves to the operator's
    session) and her session is let go while down. A later drop of the operator's session, during which
    carol's symbol crosses her alert, is a gap still: the alert fires once when the feed is back. (The
    planner kept alice's session as down for good: every later drop was swallowed, and no Reconnected
    ever came: the crossing was never judged.)"""
    mine, hers = codes(sim, 2)
    await add_alert(db, ALICE, mine, sim)
    await add_alert(db, CAROL, hers, sim)
    await rig.engine.start()
    assert rig.planner.carried_by(("user", ALICE)) == {mine}
    assert rig.planner.carried_by(("op", 0)) == {hers}
    alices = user_session(rig, ALICE)
    await cut(alices)
    rig.keys.own.discard(ALICE)  # /logout: her symbol goes to the shared session
    rig.planner.user_changed(ALICE)
    await rig.planner.rebalance()
    assert rig.planner.carried_by(("op", 0)) == {mine, hers} and rig.planner.carried_by(("user", ALICE)) == set()
    await rig.users.close(ALICE)  # her session let go while down: no Reconnected will come from it

    op = rig.planner.operators[0].session
    url = await cut(op)
    price = cross_and_back(sim, hers)
    mend(op, url)
    await fires_once_by_the_days_high(rig, hers, price)
    assert await fired(db, mine) == []  # never crossed
    assert await pushes(db) == 1

    async def gap_over() -> bool:  # every symbol's first trade after the gap (mine's to come): it is over
        if rig.engine.unwatched_since() is None:
            return True
        sim.set_price(mine, price_of(sim, mine))
        return False
    await wait_until(gap_over, timeout=60)
    assert not alices._listeners  # nothing of the planner's is kept on the dead session
    assert ("user", ALICE) not in rig.planner._listening and not rig.planner._down


async def test_a_symbol_moved_off_a_session_that_is_down_is_judged_for_what_it_missed(
        rig: Rig, sim: KisSimulator, db: Database) -> None:
    """Alice's own session drops for good; her symbol crosses her alert and comes back meanwhile. She logs
    out: her symbol moves to the operator's session, whose first trade of it carries the day's high: the
    alert fires once. A later drop of the operator's session is judged too."""
    mine, hers = codes(sim, 2)
    await add_alert(db, ALICE, mine, sim)
    await add_alert(db, CAROL, hers, sim)
    await rig.engine.start()
    assert rig.planner.carried_by(("user", ALICE)) == {mine}
    await cut(user_session(rig, ALICE))
    price = cross_and_back(sim, mine)
    rig.keys.own.discard(ALICE)
    rig.planner.user_changed(ALICE)
    await rig.planner.rebalance()
    assert rig.planner.carried_by(("op", 0)) == {mine, hers}
    await fires_once_by_the_days_high(rig, mine, price)
    assert not rig.planner._down  # alice's session, still down, carries nothing: no gap of the feed's

    op = rig.planner.operators[0].session
    url = await cut(op)
    price = cross_and_back(sim, hers)
    mend(op, url)
    await fires_once_by_the_days_high(rig, hers, price)
    assert await pushes(db) == 2


async def test_a_session_closed_while_down_is_opened_again_and_heard(
        rig: Rig, sim: KisSimulator, db: Database) -> None:
    """Alice's own session drops and is closed while down (its Reconnected never comes); she still has her
    key: her symbol goes on her next session, heard by the planner, and the crossing it missed fires once."""
    mine, hers = codes(sim, 2)
    await add_alert(db, ALICE, mine, sim)
    await add_alert(db, CAROL, hers, sim)
    await rig.engine.start()
    alices = user_session(rig, ALICE)
    await cut(alices)
    price = cross_and_back(sim, mine)
    await rig.users.close(ALICE)
    await wait_until(lambda: _true(rig.users.get(ALICE) not in (None, alices)
                                   and rig.planner.carried_by(("user", ALICE)) == {mine}), timeout=60)
    await fires_once_by_the_days_high(rig, mine, price)

    op = rig.planner.operators[0].session
    url = await cut(op)
    price = cross_and_back(sim, hers)
    mend(op, url)
    await fires_once_by_the_days_high(rig, hers, price)
    assert await pushes(db) == 2
    assert not alices._listeners  # nothing of the planner's is kept on the closed session


async def test_the_feed_given_up_and_taken_back_hears_the_users_new_sessions(
        rig: Rig, sim: KisSimulator, db: Database) -> None:
    """A replica gives the feed up (the engine stops, users' sessions are closed) and takes it back: alice's
    symbol rides her new session, whose trades reach the engine (the planner listened to the closed one
    only), and a later drop of the operator's session is still a gap."""
    mine, hers = codes(sim, 2)
    await add_alert(db, ALICE, mine, sim)
    await add_alert(db, CAROL, hers, sim)
    await rig.engine.start()
    before = user_session(rig, ALICE)
    await rig.engine.stop()  # replicas: lose()
    await rig.users.aclose()
    await rig.engine.start()  # gain()
    assert rig.planner.carried_by(("user", ALICE)) == {mine} and user_session(rig, ALICE) is not before
    price = price_of(sim, mine)
    sim.set_price(mine, price + 5 * p.tick_size(price))  # a live crossing on her new session
    await wait_until(lambda: _fired_once(db, mine), timeout=60)

    op = rig.planner.operators[0].session
    url = await cut(op)
    price = cross_and_back(sim, hers)
    mend(op, url)
    await fires_once_by_the_days_high(rig, hers, price)
    assert await pushes(db) == 2
    assert not before._listeners and not rig.planner._down


async def test_two_sessions_down_at_once_each_judged_when_it_is_back(
        rig: Rig, sim: KisSimulator, db: Database) -> None:
    """Alice's session and the operator's drop together; alice's comes back first. Her symbol crossed her
    alert meanwhile: its first trade on her session, the operator's still down, is judged for the day's
    high (it was taken for one seen live, its extremes never judged again). Carol's, on the operator's
    session, fires when that one is back."""
    mine, hers = codes(sim, 2)
    await add_alert(db, ALICE, mine, sim)
    await add_alert(db, CAROL, hers, sim)
    await rig.engine.start()
    alices, op = user_session(rig, ALICE), rig.planner.operators[0].session
    alices_url, op_url = await cut(alices), await cut(op)
    mine_price, hers_price = cross_and_back(sim, mine), cross_and_back(sim, hers)
    mend(alices, alices_url)
    await fires_once_by_the_days_high(rig, mine, mine_price)
    assert not op.connected.is_set() and await fired(db, hers) == []
    mend(op, op_url)
    await fires_once_by_the_days_high(rig, hers, hers_price)
    assert await pushes(db) == 2


