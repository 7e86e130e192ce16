"""Users' own sessions among replicas (PostgreSQL): a registered user's symbol rides their own session
(KIS allows one per app key) on exactly one replica, the feed's owner; a replica standing by opens no
user's session and polls nothing; the owner killed, the next one takes the feed and the user's session
over, and an alert crossed meanwhile fires once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection

import pytest
from sqlmodel import col, select

from chatbot.alerts.engine import AlertEngine
from chatbot.alerts.feeds import FeedPlanner, OperatorKey, Placement, UserSessions
from chatbot.kis import protocol as p
from chatbot.kis.rest import KisCredentials, KisEndpoint, KisRestClient
from chatbot.kis.standby import StandbyRealtimeClient
from chatbot.service.replicas import FEED, Replicas
from chatbot.sim.server import KisSimulator, SimulatorOptions
from chatbot.storage import Database
from chatbot.storage.locks import OwnershipLocks
from chatbot.storage.tables import AlertRow, OutboxRow
from tests.helpers import new_credentials
from tests.test_feed_capacity import add_alerts, price_of, sim_sessions, wait_until

USER, PAPER_USER = 7, 9


@pytest.fixture
async def second(database: Database) -> AsyncIterator[Database]:
    """Another replica's connection pool on the same database."""
    other = Database(str(database.engine.url.render_as_string(hide_password=False)))
    yield other
    await other.dispose()


@pytest.fixture
async def sim() -> AsyncIterator[KisSimulator]:
    simulator = KisSimulator(SimulatorOptions(tick_interval=0, pingpong_interval=0))
    await simulator.start()
    yield simulator
    await simulator.stop()


class Keys:
    """USER brought their own key (the same key on every replica: KIS allows one session on it)."""

    def __init__(self, sim: KisSimulator, user_credentials: KisCredentials) -> None:
        self.rest = KisRestClient(KisEndpoint("real", sim.rest_url()), user_credentials)

    async def own_keys(self, user_ids: Collection[int]) -> set[int]:
        return {u for u in user_ids if u == USER}

    async def approval_key(self, user_id: int) -> Callable[[], Awaitable[str]]:
        assert user_id == USER
        return self.rest.approval_key

    async def registered(self) -> int:
        return 1


class Replica:
    """One replica's feed: the operator's key (shared by all replicas), the planner, the engine, its roles."""

    def __init__(self, sim: KisSimulator, db: Database, name: str, operator: KisCredentials,
                 user: KisCredentials) -> None:
        self.db = db
        self.keys = Keys(sim, user)
        self.rest = KisRestClient(KisEndpoint("real", sim.rest_url()), operator)
        self.users = UserSessions(sim.ws_url())
        self.planner = FeedPlanner(
            db, [OperatorKey(StandbyRealtimeClient(sim.ws_url(), self.rest.approval_key, backoff_initial=0.05),
                             self.rest)], self.users, self.keys, poll_rate=50)
        self.engine = AlertEngine(db, self.planner, lambda: None)
        self.engine.demand_changed = self.planner.review
        self.replicas = Replicas(db, name, interval=0.2)
        self.replicas.feed_role(self.engine)

    async def kill(self) -> None:
        """As a SIGKILL: nothing given up cleanly; the server drops its locks with its connection, KIS its
        sockets."""
        task = self.replicas._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.replicas._task = None
        await self.replicas.locks._drop_connection()
        planning, self.planner._task = self.planner._task, None
        if planning is not None:
            planning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await planning
        for work in self.engine._tasks:
            work.cancel()
        await asyncio.gather(*self.engine._tasks, return_exceptions=True)
        self.engine._tasks.clear()
        await self.users.aclose()
        for op in self.planner.operators:
            await op.session.aclose()
        for poller in self.planner._pollers:
            await poller.aclose()
        self.replicas.active.clear()

    async def aclose(self) -> None:
        await self.replicas.stop()
        await self.users.aclose()
        await self.rest.aclose()
        await self.keys.rest.aclose()


async def _count(db: Database, *where: object) -> int:
    async with db.session() as session:
        return len((await session.exec(select(AlertRow).where(*where))).all())  # type: ignore[arg-type]


async def _outbox(db: Database) -> int:
    async with db.session() as session:
        return len((await session.exec(select(OutboxRow))).all())


async def _true(value: bool) -> bool:
    return value


async def test_a_users_symbol_rides_their_own_session_on_the_feed_owner_and_moves_with_it(
        database: Database, second: Database, sim: KisSimulator) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite serves one process: no replicas")
    code, polled_code = sorted(sim.market.symbols)[:2]
    price = price_of(sim, code)
    await add_alerts(database, [(USER, code)], sim)  # fires 3 ticks above the price
    operator, user = new_credentials(), new_credentials()
    a = Replica(sim, database, "replica-a", operator, user)
    b = Replica(sim, second, "replica-b", operator, user)
    try:
        await a.replicas.start()
        await b.replicas.start()
        assert a.replicas.owns(FEED) and not b.replicas.owns(FEED)
        # USER's symbol rides USER's own session, on the feed's owner only; it holds USER's session lock.
        assert a.planner.placement(code) == Placement("own", frozenset({USER}))
        assert a.planner.carried_by(("user", USER)) == {code}
        assert "fills:7" in a.replicas.locks.held
        assert await b.replicas.locks.held_anywhere(["fills:7"]) == {"fills:7"}
        assert len(b.users) == 0 and not await b.replicas.claim_session(USER)
        on_sim = [{c for tr, c in s.subscriptions if tr == p.WS_TRADE} for s in sim_sessions(sim)]
        assert on_sim == [{code}]  # one session carries it, in the whole system
        # A replica standing by keeps a symbol it has no slot for on its polling list, and polls nothing.
        b.planner.operators[0].session.max_subscriptions = 0
        await b.planner.expect(PAPER_USER, polled_code)
        assert b.planner.placement(polled_code) == Placement("poll", operator=0)
        assert b.planner._pollers[0]._task is None and b.planner._pollers[0].polls == 0
        b.planner.operators[0].session.max_subscriptions = p.WS_CLIENT_MAX_SUBSCRIPTIONS
        await b.planner.unsubscribe(p.WS_TRADE, polled_code)  # let go (no alert on it): out of the way

        await a.kill()
        # Nobody listens: the price crosses the alert and comes back before the next owner is up.
        threshold = price + 3 * p.tick_size(price)
        sim.set_price(code, threshold + 2 * p.tick_size(price))
        sim.set_price(code, price)
        await wait_until(lambda: _true(b.replicas.owns(FEED) and b.planner.carried_by(("user", USER)) == {code}),
                         timeout=60)
        assert b.planner.placement(code) == Placement("own", frozenset({USER}))
        assert "fills:7" in b.replicas.locks.held and len(a.users) == 0
        await wait_until(lambda: _true([{c for tr, c in s.subscriptions if tr == p.WS_TRADE}
                                        for s in sim_sessions(sim)] == [{code}]), timeout=60)
        handover = dict(b.replicas.handovers)[FEED]
        print(f"feed and USER's session taken over in {handover:.2f} s")
        # The first tick on the new owner's session carries the day's high made in the gap: fired, once.
        sim.set_price(code, price)
        await wait_until(lambda: _fired(database, code), timeout=60)
        sim.set_price(code, threshold + 4 * p.tick_size(price))  # a later crossing: already fired
        await wait_until(lambda: _true(b.engine._idle.is_set()), timeout=60)
        await b.replicas.run_once()
        assert await _count(database, col(AlertRow.code) == code, col(AlertRow.status) == "fired") == 1
        assert await _outbox(database) == 1
    finally:
        await b.aclose()
        await a.aclose()


async def _fired(db: Database, code: str) -> bool:
    return await _count(db, col(AlertRow.code) == code, col(AlertRow.status) == "fired") == 1


async def test_a_users_session_lock_held_elsewhere_is_asked_for_again(
        database: Database, second: Database, sim: KisSimulator) -> None:
    """A host that vanished still holds USER's session lock (until the server's keepalive drops it): the
    feed's new owner carries USER's symbol on the operator's session meanwhile, and moves it onto
    USER's own session at the next rebalance once the lock is free."""
    if database.is_sqlite:
        pytest.skip("SQLite serves one process: no replicas")
    code = min(sim.market.symbols)
    await add_alerts(database, [(USER, code)], sim)
    vanished = OwnershipLocks(second)
    assert await vanished.take("fills:7")
    a = Replica(sim, database, "replica-a", new_credentials(), new_credentials())
    try:
        await a.replicas.start()
        assert a.replicas.owns(FEED)
        assert a.planner.placement(code) == Placement("shared", operator=0) and len(a.users) == 0
        await vanished.close()
        await a.planner.rebalance()
        assert a.planner.placement(code) == Placement("own", frozenset({USER}))
        assert a.planner.carried_by(("user", USER)) == {code} and "fills:7" in a.replicas.locks.held
    finally:
        await vanished.close()
        await a.aclose()
