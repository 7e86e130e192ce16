"""Feed capacity (README "Feed capacity"): 1,000 users with their own keys and alerts on 3,000
distinct symbols, against the simulator (``chatbot sim`` in its own process, which enforces 41
subscriptions per session and one session per app key, as KIS does), on one replica.

Each user watches 3 symbols of their own and 2 of 50 popular ones (3,000 distinct in all). Two
scenarios, side by side:

* ``keyed``: every user has their own key: their symbols ride their own sessions, the popular ones the
  operator's shared session;
* ``keyless``: the same alerts, but a tenth of the users have no key: their symbols need the operator's
  session (40 slots), and what does not fit there is polled over REST.

Figures: subscriptions placed (sessions, slots used of how many), symbols on REST polling and the
poll interval, how long placing everything took, ticks received per second under the simulator's
background trading, and for probe alerts armed on the running engine and crossed by a forced trade:
tick → push committed (fired + outbox row) p50/p99, and price set → push committed (for a polled
symbol that includes the wait for its next poll).

    python -m bench.feed_capacity [--users 1000] [--symbols 3000] [--db sqlite|postgres|URL] [--probes 200]
                                  [--replicas 3]

``--replicas N`` (PostgreSQL): N replicas' feed stacks (each its own connection pool, planner, engine and
roles, :class:`~chatbot.service.replicas.Replicas`) in this one process, sharing the operator's key and
the users' keys as separate processes would. The feed's owner places and carries everything (users'
sessions follow the feed); the figures add what the others opened (nothing, they stand by) and, at the
end, the owner killed as by SIGKILL: how long until another replica took the feed and had every
subscription placed and acknowledged again.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import httpx
from sqlalchemy import insert

from bench.common import free_port, ms, pct, scratch_database
from chatbot.alerts.engine import AlertEngine
from chatbot.alerts.feeds import FeedPlanner, OperatorKey, UserSessions
from chatbot.alerts.repository import AlertRepository
from chatbot.kis import protocol as p
from chatbot.kis.frames import Tick
from chatbot.kis.realtime import Event, RealtimeClient
from chatbot.kis.rest import KisEndpoint, KisRestClient
from chatbot.kis.standby import StandbyRealtimeClient
from chatbot.service.replicas import FEED, Replicas
from chatbot.storage import Database
from chatbot.storage.tables import AlertRow
from chatbot.storage.types import utcnow
from tests.helpers import new_credentials

POPULAR = 50
OWN_PER_USER = 3
POPULAR_PER_USER = 2


class Keys:
    """The planner's key directory: users with their own key, a REST client (one shared pool) each."""

    def __init__(self, rest_url: str, own: set[int], http: httpx.AsyncClient) -> None:
        self.rest_url, self.own, self.http = rest_url, own, http
        self.clients: dict[int, KisRestClient] = {}

    async def own_keys(self, user_ids: Collection[int]) -> set[int]:
        return {u for u in user_ids if u in self.own}

    async def approval_key(self, user_id: int) -> Callable[[], Awaitable[str]]:
        if user_id not in self.clients:
            self.clients[user_id] = KisRestClient(KisEndpoint("real", self.rest_url), new_credentials(), http=self.http)
        return self.clients[user_id].approval_key

    async def registered(self) -> int:
        return len(self.own)


async def _start_simulator(port: int, tick_interval: float) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatbot", "sim", "--port", str(port), "--seed", "7", "--tick-interval",
        str(tick_interval), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    for _ in range(3):
        if not await asyncio.wait_for(proc.stdout.readline(), 60):
            await proc.wait()
            raise OSError("the simulator did not start")
    return proc


def _alert(owner: int, code: str, price: int, threshold: int, direction: str = "above") -> dict[str, Any]:
    now = utcnow()
    return {"owner_id": owner, "chat_id": owner, "language": "ko", "code": code, "name": code,
            "direction": direction, "threshold": threshold, "reference_price": price, "percent": None,
            "repeat": False, "cooldown_seconds": 600, "status": "armed", "fired_count": 0, "created_at": now,
            "updated_at": now}


class Stack:
    """One replica's feed: the planner over the operator's key and users' keys, the engine, its roles."""

    def __init__(self, db: Database, name: str, ws_url: str, operator_rest: KisRestClient, keys: Keys,
                 replicas: bool, fired_at: dict[int, tuple[float, float]]) -> None:
        self.db = db
        self.sessions = UserSessions(ws_url)
        session = (StandbyRealtimeClient if replicas else RealtimeClient)(ws_url, operator_rest.approval_key)
        self.planner = FeedPlanner(db, [OperatorKey(session, operator_rest)], self.sessions, keys,
                                   poll_rate=p.REQUESTS_PER_SECOND["real"] / 2)
        self.engine = AlertEngine(db, self.planner, lambda: None)
        self.engine.demand_changed = self.planner.review
        original = self.engine._fire

        async def fire(chunk: Any) -> None:
            await original(chunk)
            now = time.perf_counter()
            fired_at.update({alert_id: (crossing.seen_at, now) for alert_id, crossing in chunk})

        self.engine._fire = fire  # type: ignore[method-assign]
        self.replicas: Replicas | None = None
        if replicas:
            self.replicas = Replicas(db, name)
            self.replicas.feed_role(self.engine)

    async def start(self) -> None:
        if self.replicas is not None:
            await self.replicas.start()
        else:
            await self.engine.start()

    async def kill(self) -> None:
        """As a SIGKILL: no role given up; the server drops the locks with the connection, KIS the sockets."""
        assert self.replicas is not None
        for task in [self.replicas._task, self.planner._task, *self.engine._tasks]:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self.replicas._task = self.planner._task = None
        self.engine._tasks.clear()
        await self.replicas.locks._drop_connection()
        self.replicas.active.clear()
        await self.sessions.aclose()
        for op in self.planner.operators:
            await op.session.aclose()
        for poller in self.planner._pollers:
            await poller.aclose()

    async def stop(self) -> None:
        if self.replicas is not None:
            await self.replicas.stop()
        else:
            await self.engine.stop()
        await self.sessions.aclose()


async def run(scenario: str, backend: str, users: int, symbols: int, probes: int, seconds: float,
              tick_interval: float, replicas: int = 1) -> dict[str, Any]:
    for attempt in range(3):  # the simulator takes three ports in a row; one may be taken meanwhile
        port = free_port()
        try:
            proc = await _start_simulator(port, tick_interval)
            break
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            if attempt == 2:
                raise
    rest_url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port + 2}"
    control = httpx.AsyncClient(base_url=rest_url, timeout=30)
    http = httpx.AsyncClient(base_url=rest_url, timeout=30, limits=httpx.Limits(max_connections=16))
    result: dict[str, Any] = {"scenario": scenario, "backend": backend, "replicas": replicas}
    try:
        async with scratch_database(backend) as url:
            db = Database(url)
            await db.migrate()
            from chatbot.sim.market import load_instruments

            codes = [inst.code for inst in load_instruments() if inst.kind.value in ("S", "F")][:symbols]
            assert len(codes) == symbols, f"the simulator lists {len(codes)} symbols"
            operator_rest = KisRestClient(KisEndpoint("real", rest_url), new_credentials(), http=http)
            # Alerts 25 % away from the price: background trading does not cross them (the daily limit is 30 %).
            prices: dict[str, int] = {}
            quoters = [KisRestClient(KisEndpoint("real", rest_url), new_credentials(), http=http) for _ in range(16)]

            async def price_of(quoter: KisRestClient, mine: list[str]) -> None:  # 16 keys: 16× KIS's limit
                for code in mine:
                    prices[code] = (await quoter.quote(code)).price
            await asyncio.gather(*(price_of(q, codes[i::len(quoters)]) for i, q in enumerate(quoters)))
            for quoter in quoters:
                await quoter.aclose()
            popular, own_codes = codes[:POPULAR], codes[POPULAR:]
            rows = []
            watch: dict[int, list[str]] = {}
            for i, code in enumerate(own_codes):
                watch.setdefault(1 + i % users, []).append(code)
            rng = random.Random(3)
            for user in range(1, users + 1):
                watch.setdefault(user, []).extend(rng.sample(popular, POPULAR_PER_USER))
                for code in watch[user]:
                    rows.append(_alert(user, code, prices[code], int(prices[code] * 1.25)))
            async with db.engine.begin() as conn:
                for start in range(0, len(rows), 2000):
                    await conn.execute(insert(AlertRow), rows[start:start + 2000])
            keyless = set(range(1, users + 1, 10)) if scenario == "keyless" else set()
            keys = Keys(rest_url, set(range(1, users + 1)) - keyless, http)
            fired_at: dict[int, tuple[float, float]] = {}  # alert id -> (tick seen, committed)
            stacks = [Stack(db if n == 0 else Database(url), f"bench-replica-{n}", ws_url, operator_rest, keys,
                            replicas > 1, fired_at) for n in range(replicas)]
            owner = stacks[0]  # started first: it takes the feed
            planner, engine, sessions = owner.planner, owner.engine, owner.sessions
            ticks = 0

            def count(event: Event) -> None:
                nonlocal ticks
                if type(event) is Tick:
                    ticks += 1

            planner.add_listener(count)
            cpu0, t0 = time.process_time(), time.perf_counter()
            await owner.start()
            result["place_s"] = time.perf_counter() - t0
            result["place_cpu_s"] = time.process_time() - cpu0
            for stack in stacks[1:]:
                await stack.start()
            assert owner.replicas is None or owner.replicas.owns(FEED)
            capacity = planner.capacity()
            result["capacity"] = capacity
            result["acked"] = (sum(len(op.session.subscriptions) for op in planner.operators)
                               + sum(len([k for k in c.subscriptions if k[0] == p.WS_TRADE])
                                     for u in keys.own if (c := sessions.get(u)) is not None))
            result["connected_sessions"] = sum(1 for u in keys.own if (c := sessions.get(u)) and c.connected.is_set())

            # -- background ticks --
            ticks, t1, cpu1 = 0, time.perf_counter(), time.process_time()
            await asyncio.sleep(seconds)
            result["ticks_per_s"] = ticks / (time.perf_counter() - t1)
            result["cpu_share"] = (time.process_time() - cpu1) / (time.perf_counter() - t1)

            # -- probes: armed on the running engine, crossed by a forced trade --
            repository = AlertRepository(db)
            streamed = [c for c in codes if (pl := planner.placement(c)) is not None and pl.kind != "poll"]
            polled = [c for c in codes if (pl := planner.placement(c)) is not None and pl.kind == "poll"]
            owner_of = {code: user for user, mine in watch.items() for code in mine}
            probe_ids: dict[int, tuple[str, bool]] = {}
            set_at: dict[int, float] = {}

            async def arm(code: str) -> tuple[int, int]:
                price = (await operator_rest.quote(code)).price
                row = AlertRow(**{k: v for k, v in _alert(owner_of[code], code, price,
                                                          price + 3 * p.tick_size(price)).items()
                                  if k not in ("created_at", "updated_at")})
                await planner.expect(owner_of[code], code)
                armed = await engine.arm(row, repository.add)
                assert armed.id is not None
                probe_ids[armed.id] = (code, code in polled)
                return armed.id, price

            async def cross(alert_id: int, code: str, price: int, ticks: int = 6) -> None:
                set_at[alert_id] = time.perf_counter()
                await control.post("/sim/price", json={"code": code, "price": price + ticks * p.tick_size(price)})

            async def fired(ids: list[int], timeout: float) -> None:
                deadline = time.perf_counter() + timeout
                while time.perf_counter() < deadline and not all(a in fired_at for a in ids):
                    await asyncio.sleep(0.01)

            for code in rng.sample(streamed, min(probes, len(streamed))):  # one at a time: armed, crossed, fired
                alert_id, price = await arm(code)
                await cross(alert_id, code, price)
                await fired([alert_id], 10)
            polled_probes = [await arm(code) for code in polled[:20]]  # together: each waits for its next poll
            for alert_id, price in polled_probes:  # well past the threshold: the background trading until the
                await cross(alert_id, probe_ids[alert_id][0], price, 30)  # next poll does not take it back
            await fired([a for a, _ in polled_probes], 3 * planner.capacity().poll_every + 10)
            for kind, is_polled in (("streamed", False), ("polled", True)):
                ids = [a for a, (_c, pp) in probe_ids.items() if pp == is_polled and a in fired_at]
                result[f"{kind}_probes"] = (len(ids), sum(1 for _a, (_c, pp) in probe_ids.items() if pp == is_polled))
                result[f"{kind}_tick_push"] = [fired_at[a][1] - fired_at[a][0] for a in ids]
                # crossed by background trading before the forced trade: no set → push figure
                result[f"{kind}_set_push"] = [fired_at[a][1] - set_at[a] for a in ids if fired_at[a][0] >= set_at[a]]
            missed = [(c, planner.placement(c)) for a, (c, _pp) in probe_ids.items() if a not in fired_at]
            if missed:
                print(f"  not fired: {missed[:5]}", file=sys.stderr)
            result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            standbys = stacks[1:]
            result["standby_sessions"] = sum(len(stack.sessions) for stack in standbys)
            result["standby_polls"] = sum(poller.polls for stack in standbys for poller in stack.planner._pollers)
            if standbys:  # the owner killed: the feed and every user's session taken over
                placed = planner.capacity().slots_used
                t_kill = time.perf_counter()
                await owner.kill()
                taken: list[float] = []

                async def replaced() -> Stack | None:
                    for stack in standbys:
                        if stack.replicas is not None and stack.replicas.owns(FEED):
                            if not taken:
                                taken.append(time.perf_counter() - t_kill)
                            capacity = stack.planner.capacity()
                            if capacity.slots_used >= placed and all(
                                    c.connected.is_set() for u in keys.own if (c := stack.sessions.get(u)) is not None):
                                return stack
                    return None

                new_owner = None
                deadline = time.perf_counter() + 300
                while new_owner is None and time.perf_counter() < deadline:
                    new_owner = await replaced()
                    await asyncio.sleep(0.05)
                result["handover_feed_s"] = taken[0] if taken else None
                result["handover_placed_s"] = time.perf_counter() - t_kill if new_owner is not None else None
                if new_owner is not None:
                    result["after_handover"] = new_owner.planner.capacity()
                stacks.remove(owner)
            for stack in stacks:
                await stack.stop()
            for client in [operator_rest, *keys.clients.values()]:
                await client.aclose()
            for stack in stacks:
                await stack.db.dispose()
            await db.dispose()
    finally:
        await control.aclose()
        await http.aclose()
        proc.terminate()
        await proc.wait()
    return result


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _p(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{ms(pct(values, 0.5))} / {ms(pct(values, 0.99))}"


def report(results: list[dict[str, Any]], users: int, symbols: int) -> None:
    print(f"feed capacity: {users:,} users, alerts on {symbols:,} distinct symbols, simulator in its own process")
    names = [f"{r['scenario']} ({r['backend']}, {r['replicas']} replica{'s' if r['replicas'] > 1 else ''})"
             for r in results]
    rows: list[tuple[str, list[str]]] = []
    rows.append(("users with their own key", [f"{r['capacity'].registered_users:,}" for r in results]))
    rows.append(("sessions carrying symbols: operator + users'",
                 [f"{r['capacity'].operator_sessions} + {r['capacity'].user_sessions:,}" for r in results]))
    rows.append(("subscriptions placed (slots used / total)",
                 [f"{r['capacity'].slots_used:,} / {r['capacity'].slots_total:,}" for r in results]))
    rows.append(("subscriptions acknowledged by the simulator", [f"{r['acked']:,}" for r in results]))
    rows.append(("symbols on REST polling (every N s)",
                 [f"{r['capacity'].polled:,} (every {r['capacity'].poll_every} s)" for r in results]))
    rows.append(("placing everything at start-up: wall / CPU",
                 [f"{r['place_s']:.1f} s / {r['place_cpu_s']:.1f} s" for r in results]))
    rows.append(("ticks received / s (background trading); CPU share",
                 [f"{r['ticks_per_s']:,.0f}; {100 * r['cpu_share']:.0f} %" for r in results]))
    for kind in ("streamed", "polled"):
        rows.append((f"{kind} probes fired / armed", [f"{r[f'{kind}_probes'][0]} / {r[f'{kind}_probes'][1]}"
                                                       for r in results]))
        rows.append((f"  {kind}: tick → push committed p50 / p99", [_p(r[f"{kind}_tick_push"]) for r in results]))
        rows.append((f"  {kind}: price set → push committed p50 / p99", [_p(r[f"{kind}_set_push"]) for r in results]))
    rows.append(("peak RSS", [f"{r['rss_mb']:.0f} MB" for r in results]))
    if any(r["replicas"] > 1 for r in results):
        rows.append(("users' sessions opened / polls made by standing-by replicas",
                     [f"{r['standby_sessions']} / {r['standby_polls']}" for r in results]))
        rows.append(("owner killed: feed taken over after", [_s(r.get("handover_feed_s")) for r in results]))
        rows.append(("  ... every subscription placed and every user's session up after",
                     [_s(r.get("handover_placed_s")) for r in results]))
        rows.append(("  ... slots used / polled on the new owner",
                     [f"{c.slots_used:,} / {c.polled:,}" if (c := r.get("after_handover")) else "-" for r in results]))
    width = max(len(label) for label, _ in rows) + 2
    cols = [max(len(n), *(len(v[i]) for _, v in rows)) + 2 for i, n in enumerate(names)]
    print(" " * width + "".join(n.ljust(c) for n, c in zip(names, cols, strict=True)))
    for label, values in rows:
        print(label.ljust(width) + "".join(v.ljust(c) for v, c in zip(values, cols, strict=True)))


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.feed_capacity")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--symbols", type=int, default=3000)
    parser.add_argument("--db", default="sqlite", help="sqlite, postgres or a URL")
    parser.add_argument("--probes", type=int, default=200, help="streamed symbols crossed for the latency figures")
    parser.add_argument("--seconds", type=float, default=10.0, help="background trading measured for ticks/s")
    parser.add_argument("--tick-interval", type=float, default=2.0, help="the simulator's seconds between steps")
    parser.add_argument("--scenario", action="append", choices=["keyed", "keyless"])
    parser.add_argument("--replicas", type=int, action="append",
                        help="replicas' feed stacks in this process (more than 1 needs PostgreSQL); repeatable")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    results = []
    for replicas in args.replicas or [1]:
        for scenario in args.scenario or ["keyed", "keyless"]:
            results.append(await run(scenario, args.db, args.users, args.symbols, args.probes, args.seconds,
                                     args.tick_interval, replicas))
            print(f"  ({scenario}, {replicas} replicas done)", file=sys.stderr, flush=True)
    report(results, args.users, args.symbols)


if __name__ == "__main__":
    asyncio.run(main())
