"""Three ``chatbot run`` replicas on one PostgreSQL database, in webhook mode behind a round-robin
load balancer, over one simulator and the fake Bot API: updates spread over them (one of them sent
twice, as Telegram does when it saw no acknowledgement), the replica owning the market-data feed
killed with SIGKILL mid-run and started again. Every update is answered once, every confirmed order
placed once, every crossed alert (one crossed while the feed had no owner) fired once, every fill
pushed once, and the dead replica's feed sessions are owned again (the hand-over time is printed).

Each replica is a real process, forked from one that has imported the bot already (tests/forkserver.py)."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import protocol as p
from chatbot.sim.server import KisSimulator, SimulatorOptions
from chatbot.storage import Database
from chatbot.storage.tables import AlertRow, ConditionalOrderRow, OutboxRow
from tests import forkserver
from tests.conftest import PG_BASE, POSTGRES
from tests.fake_telegram import FakeTelegram
from tests.forkserver import ForkedProcess
from tests.harness import TOKEN
from tests.helpers import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.skipif(not POSTGRES, reason="no PostgreSQL on 127.0.0.1:5432")]
ORDER_CODE, ALERT_CODE = "005930", "000660"
USERS = [BotApiEmulator.user(9700 + i, "en") for i in range(1, 5)]
ACCEPTED, FILLED, ALERT_SET, REACHED = "Order accepted", "Filled", "Alert #", "reached"
ARMED, TRIGGERED, SOLD = "armed:", "triggered", "sell order accepted"


async def wait_for(predicate: Callable[[], bool], timeout: float = 120.0, what: str = "") -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.05)
    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what or predicate}") from None


class RoundRobin:
    """The load balancer: each webhook call to the next replica, skipping one that does not answer."""

    def __init__(self, ports: list[int], path: str) -> None:
        self.ports, self.path = ports, path
        self.next = 0
        self.served: collections.Counter[int] = collections.Counter()
        self.updates: list[dict[str, Any]] = []  # every update posted, as Telegram sent it
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(self.path, self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}{self.path}"  # type: ignore[union-attr]
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def stop(self) -> None:
        await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.updates.append(json.loads(body))
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-telegram")}
        headers["Content-Type"] = "application/json"
        for _ in range(len(self.ports) * 3):
            port = self.ports[self.next % len(self.ports)]
            self.next += 1
            try:
                async with self._session.post(f"http://127.0.0.1:{port}{self.path}", data=body,
                                              headers=headers) as response:
                    self.served[port] += 1
                    return web.Response(status=response.status, text=await response.text())
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.05)
        return web.Response(status=502)


class Cluster:
    def __init__(self, sim: KisSimulator, telegram: FakeTelegram, lb: RoundRobin, env: dict[str, str],
                 tmp: Path, ports: list[int]) -> None:
        self.sim, self.telegram, self.lb, self.env, self.tmp, self.ports = sim, telegram, lb, env, tmp, ports
        self.procs: dict[int, ForkedProcess] = {}
        self.answers: collections.Counter[str] = collections.Counter()
        telegram.emulator.listeners.append(self._on_event)

    def _on_event(self, event: str, payload: dict[str, Any]) -> None:
        if event == "answer":
            self.answers[str(payload["id"])] += 1

    @property
    def api(self) -> BotApiEmulator:
        return self.telegram.emulator

    async def start(self, i: int, run: int = 0) -> None:
        env = {**self.env, "KISBOT_HTTP_PORT": str(self.ports[i]),
               "KISBOT_HTTP_ADVERTISE_URL": f"http://127.0.0.1:{self.ports[i]}"}
        self.procs[i] = await forkserver.spawn(["run"], env, self.tmp / f"replica{i}.{run}.log")

    def log(self, i: int, run: int = 0) -> str:
        return (self.tmp / f"replica{i}.{run}.log").read_text(errors="replace")

    async def healthy(self, i: int) -> bool:
        try:
            async with aiohttp.ClientSession() as session, session.get(
                    f"http://127.0.0.1:{self.ports[i]}/healthz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                return r.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False

    async def wait_healthy(self, i: int) -> None:
        for _ in range(1200):
            if self.procs[i].returncode is not None:
                raise AssertionError(f"replica {i} exited: {self.log(i)[-3000:]}")
            if await self.healthy(i):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"replica {i} never became healthy")

    def count(self, user: dict[str, Any], text: str) -> int:
        return sum(text in (m.get("text") or "") for m in self.api.bot_messages(user["id"]))

    async def say(self, user: dict[str, Any], text: str, expect: str) -> dict[str, Any]:
        before = {m["message_id"] for m in self.api.bot_messages(user["id"])}
        update = self.api.send_text(user, text)
        found: list[dict[str, Any]] = []

        def arrived() -> bool:
            found[:] = [m for m in self.api.bot_messages(user["id"])
                        if m["message_id"] not in before and expect in (m.get("text") or "")
                        or m["message_id"] not in before and expect == "" and BotApiEmulator.buttons(m)]
            return bool(found)

        await wait_for(arrived, what=f"an answer to {text!r}")
        found[0]["_update"] = update
        return found[0]

    async def order(self, user: dict[str, Any], text: str, *, double_tap: bool = False) -> dict[str, Any]:
        """A card, then Confirm (pressed twice at once with ``double_tap``: the two presses reach two replicas)."""
        card = await self.say(user, text, "")
        confirm = BotApiEmulator.buttons(card)[0][1]
        query = self.api.press(user, card, confirm)
        queries = [query, self.api.press(user, card, confirm)] if double_tap else [query]
        key = (card["chat"]["id"], card["message_id"])
        await wait_for(lambda: ACCEPTED in self.api.messages[key].get("text", ""), what=f"{text} accepted")
        await wait_for(lambda: all(self.answers[q] >= 1 for q in queries), what="the Confirm press answered")
        card["_query"] = query
        return card

    async def redeliver(self, update: dict[str, Any]) -> None:
        """Telegram re-sending an update it saw no acknowledgement for (to whichever replica the balancer picks)."""
        payload = {k: v for k, v in update.items() if not k.startswith("_")}
        async with aiohttp.ClientSession() as session, session.post(
                self.lb.url, json=payload, headers={"X-Telegram-Bot-Api-Secret-Token": self.api.webhook_secret}) as r:
            assert r.status == 200

    async def lock_holders(self, db: Database) -> dict[tuple[int, int], str]:
        """Advisory locks held in this database: (classid, objid) -> the holder's application name."""
        from sqlalchemy import text
        async with db.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT l.classid::bigint, l.objid::bigint, a.application_name FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                "AND a.application_name LIKE 'kis-chatops locks%'"))).all()
        return {(int(r[0]), int(r[1])): str(r[2]) for r in rows}

    async def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def split_key(key: int) -> tuple[int, int]:
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    import secrets

    import psycopg

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.mark.timeout(900)
async def test_three_replicas_one_killed_and_restarted(pg_url: str, tmp_path: Path) -> None:
    from chatbot.storage.locks import lock_key

    sim = KisSimulator(SimulatorOptions(tick_interval=0))
    await sim.start()
    telegram = FakeTelegram(TOKEN)
    await telegram.start()
    ports = [free_port() for _ in range(3)]
    lb = RoundRobin(ports, "/telegram")
    await lb.start()
    env = {**os.environ, "KISBOT_TELEGRAM_TOKEN": TOKEN, "KISBOT_TELEGRAM_BASE_URL": telegram.base_url,
           "KISBOT_TELEGRAM_WEBHOOK_URL": lb.url, "KISBOT_HTTP_HOST": "127.0.0.1",
           "KISBOT_DATABASE_URL": pg_url, "KISBOT_SECURITY_MASTER_KEY_FILE": f"{tmp_path}/master.key",
           "KISBOT_LOGGING_LEVEL": "INFO", "KISBOT_LOGGING_FILE": "",
           "KISBOT_KIS_REST_URL": sim.rest_url("real"), "KISBOT_KIS_WS_URL": sim.ws_url("real"),
           "KISBOT_SIMULATOR_TICK_INTERVAL_SECONDS": "3600"}  # each replica's embedded simulator: unused
    env.pop("KISBOT_MASTER_KEY", None)
    cluster = Cluster(sim, telegram, lb, env, tmp_path, ports)
    db = Database(pg_url)
    try:
        await cluster.start(0)  # the first creates the schema and the master key; the others join it
        await cluster.wait_healthy(0)
        await cluster.start(1)
        await cluster.start(2)
        await cluster.wait_healthy(1)
        await cluster.wait_healthy(2)
        api = cluster.api
        await wait_for(lambda: bool(api.webhook_url), what="the webhook set")

        market = sim.market.get(ORDER_CODE)
        assert market is not None
        resting = p.round_down_to_tick(market.limits[0] + 3 * p.tick_size(market.price))
        alert_state = sim.market.get(ALERT_CODE)
        assert alert_state is not None
        base = alert_state.price
        step = p.tick_size(base)

        # -- phase 1: every user sets an alert, places a resting order and a filled one --------------------------------
        orders = 0
        buy_updates: list[dict[str, Any]] = []
        cards: list[dict[str, Any]] = []

        async def first_steps(n: int, user: dict[str, Any]) -> list[dict[str, Any]]:
            await cluster.say(user, f"/alert {ALERT_CODE} above {base + (2 + n) * step}", ALERT_SET)
            resting_card = await cluster.order(user, f"/buy {ORDER_CODE} 1 {resting}")
            return [resting_card, await cluster.order(user, f"/buy {ORDER_CODE} 1", double_tap=True)]  # placed once

        for resting_card, card in await asyncio.gather(*(first_steps(n, user)  # the three users at once
                                                         for n, user in enumerate(USERS[:3], start=1))):
            cards += [resting_card, card]
            buy_updates.append(card["_update"])
            orders += 2
        for user in USERS[:3]:
            await wait_for(lambda u=user: cluster.count(u, FILLED) == 1, what="the fill pushed")  # type: ignore[misc]
        fill_keys = {split_key(lock_key(pg_url.rsplit("%3D", 1)[1], f"fills:{u['id']}")) for u in USERS[:3]}
        # A stop-loss on the share one user bought, armed through whichever replica the balancer picks (the
        # feed's owner adopts it from the database); the fall while the feed has no owner fires it, once.
        seller = USERS[2]
        now_price = sim.market.get(ORDER_CODE).price  # type: ignore[union-attr]
        stop_card = await cluster.say(seller, f"/stop {ORDER_CODE} 1 {now_price - 2 * p.tick_size(now_price)}", "")
        stop_press = api.press(seller, stop_card, BotApiEmulator.buttons(stop_card)[0][1])
        stop_key = (stop_card["chat"]["id"], stop_card["message_id"])
        await wait_for(lambda: ARMED in api.messages[stop_key].get("text", ""), what="the stop-loss armed")
        await wait_for(lambda: cluster.answers[stop_press] >= 1, what="its Confirm press answered")
        cards.append({**stop_card, "_query": stop_press})

        # Telegram re-sends a /buy and a Confirm press it saw no acknowledgement for: nothing happens twice.
        first = USERS[0]
        messages_before = len(api.bot_messages(first["id"]))
        await cluster.redeliver(buy_updates[0])
        press = next(u for u in lb.updates if u.get("callback_query", {}).get("id") == cards[1]["_query"])
        await cluster.redeliver(press)
        for update_id in (buy_updates[0]["update_id"], press["update_id"]):  # each dropped by whichever replica got it
            await wait_for(lambda u=update_id: any(f"dropped update_id={u}\n" in cluster.log(i)  # type: ignore[misc]
                                                   for i in range(3)), what=f"update {update_id} dropped")

        # -- the replica owning the market-data feed dies ----------------------------------------------------------------
        schema = pg_url.rsplit("%3D", 1)[1]
        feed_key = split_key(lock_key(schema, "feed:market-data"))
        holders = await cluster.lock_holders(db)
        assert feed_key in holders, holders
        victim_name = holders[feed_key]
        # It owns a user's fill feed too: more users place a resting order until one's session is its own (the
        # Confirm presses go round the replicas).
        extra: list[dict[str, Any]] = []
        for k in range(6):
            if victim_name in {holders.get(key) for key in fill_keys}:
                break
            user = BotApiEmulator.user(9711 + k, "en")
            extra.append(user)
            cards.append(await cluster.order(user, f"/buy {ORDER_CODE} 1 {resting}"))
            orders += 1
            fill_keys.add(split_key(lock_key(schema, f"fills:{user['id']}")))
            for _ in range(50):  # its session is claimed as the order is placed
                holders = await cluster.lock_holders(db)
                if split_key(lock_key(schema, f"fills:{user['id']}")) in holders:
                    break
                await asyncio.sleep(0.1)
        assert victim_name in {holders.get(key) for key in fill_keys}, "the feed's owner owns no fill feed"
        victim = next(i for i, proc in cluster.procs.items() if victim_name.endswith(f"pid {proc.pid}"))
        victim_keys = {key for key, name in holders.items() if name == victim_name}
        cluster.procs[victim].kill()
        killed_at = time.monotonic()
        await cluster.procs[victim].wait()
        # While nobody owns the feed the price crosses every alert and comes back below them all, and every
        # resting order fills (the dead replica's users' fill notices go nowhere).
        sim.set_price(ALERT_CODE, base + 10 * step)
        sim.set_price(ALERT_CODE, base)
        sim.set_price(ORDER_CODE, resting)

        async def owned_again() -> float:
            while True:
                now = await cluster.lock_holders(db)
                if all(key in now and now[key] != victim_name for key in victim_keys):
                    return time.monotonic() - killed_at
                await asyncio.sleep(0.05)

        handover = await asyncio.wait_for(owned_again(), 120)
        print(f"\nhand-over: the killed replica's {len(victim_keys)} locks (feed, {len(victim_keys & fill_keys)} "
              f"fill feeds, roles) owned again {handover:.2f} s after SIGKILL")
        for user in USERS[:3]:  # the resting orders' fills, the dead replica's users' included
            await wait_for(lambda u=user: cluster.count(u, FILLED) >= 2, what="the fill made in the gap")  # type: ignore[misc]
        for user in extra:
            await wait_for(lambda u=user: cluster.count(u, FILLED) == 1, what="the fill made in the gap")  # type: ignore[misc]

        # The first tick after the take-over: the crossing made during the gap fires every alert, once.
        async def keep_ticking() -> None:
            while True:
                sim.set_price(ORDER_CODE, resting)  # below the stop-loss since the gap
                sim.set_price(ALERT_CODE, base - step)
                await asyncio.sleep(0.2)
                sim.set_price(ALERT_CODE, base)
                await asyncio.sleep(0.2)

        ticker = asyncio.create_task(keep_ticking())
        try:
            for user in USERS[:3]:
                await wait_for(lambda u=user: cluster.count(u, REACHED) >= 1, what="the alert crossed in the gap")  # type: ignore[misc]
            await wait_for(lambda: cluster.count(seller, SOLD) == 1, what="the stop-loss crossed in the gap")
            orders += 1
        finally:
            ticker.cancel()

        # -- the dead replica comes back; more updates spread over all three ---------------------------------------------
        await cluster.start(victim, run=1)
        await cluster.wait_healthy(victim)
        late = USERS[3]
        await cluster.say(late, f"/alert {ALERT_CODE} above {base + 3 * step}", ALERT_SET)
        for user in (late, USERS[1]):
            cards.append(await cluster.order(user, f"/buy {ORDER_CODE} 1"))
            orders += 1
        # One tick crosses it and the next comes back, maybe before the feed's owner has learned of the alert
        # (armed on another replica): it fires all the same, once.
        sim.set_price(ALERT_CODE, base + 4 * step)
        sim.set_price(ALERT_CODE, base)
        await wait_for(lambda: cluster.count(late, REACHED) == 1, what="the alert set after the restart")
        await wait_for(lambda: cluster.count(late, FILLED) == 1 and cluster.count(USERS[1], FILLED) == 3,
                       what="the fills after the restart")
        settled = time.monotonic()

        # /login's steps reach the replicas in turn: each is forwarded to the replica where /login began.
        await cluster.say(late, "/login", "1/4")
        await cluster.say(late, "PS" + "a1B2c3D4e5" * 3 + "f6g7", "2/4")
        await cluster.say(late, "/cancel", "Registration stopped")
        assert cluster.count(late, "I deleted your message") == 0  # no step taken for a stray secret
        await asyncio.sleep(max(0.0, settled + 2.0 - time.monotonic()))  # anything sent twice has come by now

        # -- once each ------------------------------------------------------------------------------------------------
        assert sim.orders_accepted == orders
        assert cluster.count(seller, TRIGGERED) == 1 and cluster.count(seller, SOLD) == 1
        for user, fills in zip(USERS, (2, 3, 3, 1), strict=True):  # the stop-loss's sell filled too
            assert cluster.count(user, REACHED) == 1, user
            assert cluster.count(user, FILLED) == fills, user
            assert cluster.count(user, ALERT_SET) == 1, user
        for user in extra:
            assert cluster.count(user, FILLED) == 1, user
        # the alert and the resting order's fill; the re-sent /buy and Confirm: nothing
        assert len(api.bot_messages(first["id"])) == messages_before + 2
        assert all(count == 1 for count in cluster.answers.values()), cluster.answers
        assert all(cluster.answers[card["_query"]] == 1 for card in cards)
        async with db.session() as session:
            from sqlmodel import select
            alerts = list((await session.exec(select(AlertRow))).all())
            pushes = list((await session.exec(select(OutboxRow))).all())
            stops = list((await session.exec(select(ConditionalOrderRow))).all())
        assert sorted(a.status for a in alerts) == ["fired"] * 4 and all(a.fired_count == 1 for a in alerts)
        assert [(c.status, c.sold_quantity) for c in stops] == [("placed", 1)]
        assert collections.Counter(o.kind for o in pushes if o.status == "sent")["alert"] == 4
        assert len(lb.served) == 3  # every replica served updates
    finally:
        await cluster.stop_all()
        await db.dispose()
        await lb.stop()
        await telegram.stop()
        await sim.stop()


@pytest.mark.timeout(600)
async def test_polling_one_replica_polls_and_another_takes_over(pg_url: str, tmp_path: Path) -> None:
    """Long polling allows one poller: of two replicas one polls, the other stands by until it dies."""
    from chatbot.storage.locks import lock_key

    sim = KisSimulator(SimulatorOptions(tick_interval=0))
    await sim.start()
    telegram = FakeTelegram(TOKEN)
    await telegram.start()
    ports = [free_port() for _ in range(2)]
    lb = RoundRobin(ports, "/unused")
    env = {**os.environ, "KISBOT_TELEGRAM_TOKEN": TOKEN, "KISBOT_TELEGRAM_BASE_URL": telegram.base_url,
           "KISBOT_HTTP_HOST": "127.0.0.1", "KISBOT_DATABASE_URL": pg_url,
           "KISBOT_SECURITY_MASTER_KEY_FILE": f"{tmp_path}/master.key", "KISBOT_LOGGING_LEVEL": "INFO",
           "KISBOT_LOGGING_FILE": "", "KISBOT_KIS_REST_URL": sim.rest_url("real"),
           "KISBOT_KIS_WS_URL": sim.ws_url("real"), "KISBOT_SIMULATOR_TICK_INTERVAL_SECONDS": "3600"}
    env.pop("KISBOT_MASTER_KEY", None)
    env.pop("KISBOT_TELEGRAM_WEBHOOK_URL", None)
    cluster = Cluster(sim, telegram, lb, env, tmp_path, ports)
    db = Database(pg_url)
    user = USERS[0]
    try:
        await cluster.start(0)
        await cluster.wait_healthy(0)
        await cluster.start(1)
        await cluster.wait_healthy(1)
        await cluster.say(user, f"/alert {ALERT_CODE} above 999000", ALERT_SET)
        poller_key = split_key(lock_key(pg_url.rsplit("%3D", 1)[1], "poller"))
        holders = await cluster.lock_holders(db)
        assert poller_key in holders, holders
        poller = next(i for i, proc in cluster.procs.items() if holders[poller_key].endswith(f"pid {proc.pid}"))
        cluster.procs[poller].kill()
        killed_at = time.monotonic()
        await cluster.procs[poller].wait()
        cluster.api.release_pollers()  # the dead poller's long poll
        await cluster.say(user, f"/alert {ALERT_CODE} above 998000", ALERT_SET)
        print(f"\npolling hand-over: the next update answered {time.monotonic() - killed_at:.2f} s after SIGKILL")
        assert cluster.count(user, ALERT_SET) == 2  # each answered once
        survivor = 1 - poller
        assert "bot serving" in cluster.log(survivor)
    finally:
        cluster.api.release_pollers()
        for proc in cluster.procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in cluster.procs.values():
            while proc.returncode is None:
                cluster.api.release_pollers()
                try:
                    await asyncio.wait_for(proc.wait(), 0.2)
                except TimeoutError:
                    pass
        await db.dispose()
        await telegram.stop()
        await sim.stop()
