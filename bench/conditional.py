"""Conditional orders under load: 10,000 armed conditional orders (stops, take-profits, brackets,
trailing stops) beside 100,000 price alerts, both engines on one feed of 2,000 ticks/s over 40
symbols from the simulator's WebSocket (``chatbot sim`` in its own process); SQLite, and PostgreSQL
when it answers.

Figure: tick → conditional order sent, p50/p99: from the trade's frame reaching the bot to the
moment the sell request would leave — the order crossed in the book, moved ``armed`` → ``firing``
with its journal row, card and push in one transaction, the holdings read, the journal's
"sending" snapshot committed. KIS's own answers (the holdings and the order request) are stand-ins
that answer at once: what is measured is the bot, not the simulator's HTTP round trip. Beside it,
same run: the alert engine's tick → fired and push committed, and a bare one-row commit. One order
in 20 is set within 1–6 % of the price and crosses during the run; the rest stay armed. (The firing
path costs three small transactions per sell — claim, the journal's snapshot before sending, the
outcome — so a storm of firings is bounded by the database's writes: ``--near-every 1`` shows it.)

    python -m bench.conditional [--db sqlite|postgres|URL] [--alerts 100000] [--conditional 10000] [--seconds 12]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert

from bench.alerts import _alert, _start_simulator, bare_commits
from bench.common import LoopLag, backends, ms, pct, scratch_database
from chatbot.alerts.engine import AlertEngine
from chatbot.alerts.triggers import trailing_level
from chatbot.kis.models import OrderAck
from chatbot.kis.orders import PlacedOrder
from chatbot.kis.realtime import RealtimeClient
from chatbot.kis.rest import KisEndpoint, KisRestClient
from chatbot.market_hours import MarketCalendar
from chatbot.service.cards import CardStore
from chatbot.service.conditional import ConditionalOrders, start_conditional, stop_conditional
from chatbot.service.journal import OrderJournal, Settling
from chatbot.service.views import Mode
from chatbot.storage import Database
from chatbot.storage.tables import AlertRow, ConditionalOrderRow
from chatbot.storage.types import utcnow
from tests.helpers import new_credentials

SYMBOLS = 40
NEAR_EVERY = 20


class _StandInKis:
    """A user's KIS account as the firing path sees it, answering at once: every share is held, and
    an order request returns a number (its send time is what the bench records)."""

    def __init__(self) -> None:
        self.sent = 0
        holdings = [SimpleNamespace(code=code, orderable_quantity=1_000_000) for code in _CODES]
        self.client = SimpleNamespace(balance=self._balance, account="0000000001")
        self.submitter = SimpleNamespace(place=self._place)
        self._holdings = SimpleNamespace(holdings=holdings)
        # the broker port, as the firing path talks to it
        self._held = tuple(SimpleNamespace(symbol=code, orderable_quantity=1_000_000) for code in _CODES)
        self.broker = SimpleNamespace(holdings=self._port_holdings, place=self._place)
        self.account = "00000000-01"

    async def _balance(self) -> Any:
        return self._holdings

    async def _port_holdings(self) -> Any:
        return self._held

    async def _place(self, side: Any, code: str, quantity: int, price: Any, *, on_sending: Any) -> PlacedOrder:
        await on_sending(set())
        self.sent += 1
        return PlacedOrder(OrderAck(order_no=f"{self.sent:010d}", branch="00000", time="100000"), 1, False)


class _StandInAccounts:
    def __init__(self) -> None:
        self.account = _StandInKis()

    async def for_user(self, _user_id: int) -> Any:
        return self.account

    current = for_user  # the credentials read afresh: the same account here


_CODES: list[str] = []


def _conditional(i: int, code: str, price: int, rng: random.Random) -> dict[str, Any]:
    now = utcnow()
    kind = ("stop", "tp", "bracket", "trail")[i % 4]
    # One in NEAR_EVERY within 1–6 % of the price (these cross in the run), the rest 15–45 % away (they
    # stay armed: the book is 10,000 deep, the firing rate a few a second, as sells set by people are).
    near = i % NEAR_EVERY == 0
    low, high = (0.01, 0.06) if near else (0.15, 0.45)
    below = int(price * (1 - rng.uniform(low, high)))
    above = int(price * (1 + rng.uniform(low, high)))
    percent = Decimal(rng.choice(["2", "3", "5"] if near else ["20", "25", "30"]))
    return {"owner_id": 1 + i % 3000, "chat_id": 1 + i % 3000, "language": "ko", "environment": "simulator",
            "market": "KRX", "currency": "KRW", "kind": kind, "code": code, "name": code, "quantity": 1,
            "stop_price": (trailing_level(price, percent) if kind == "trail" else below if kind != "tp" else None),
            "take_price": above if kind in ("tp", "bracket") else None, "limit_price": None,
            "trail_percent": str(percent) if kind == "trail" else None,
            "high_water": price if kind == "trail" else None, "reference_price": price, "card_token": None,
            "status": "armed", "armed_at": now, "expires_at": now.replace(year=now.year + 1), "created_at": now,
            "updated_at": now}


async def run(backend: str, n_alerts: int = 100_000, n_conditional: int = 10_000, seconds: float = 12.0,
              port: int = 18970) -> dict[str, Any]:
    proc = await _start_simulator(port)
    rest_url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port + 2}"
    try:
        async with scratch_database(backend) as url:
            db = Database(url)
            await db.migrate()
            db.start_checkpoints()
            rest = KisRestClient(KisEndpoint("real", rest_url), new_credentials())
            from chatbot.sim.market import load_instruments

            codes = [inst.code for inst in load_instruments()][:SYMBOLS]
            _CODES[:] = codes
            prices = {code: (await rest.quote(code)).price for code in codes}
            rng = random.Random(1)
            alerts = []
            for i in range(n_alerts):
                code = codes[i % len(codes)]
                price = prices[code]
                direction = "above" if i % 2 else "below"
                offset = rng.uniform(0.002, 0.15) * price
                alerts.append(_alert(i, code, direction, int(price + offset) if direction == "above"
                                     else int(price - offset), price))
            conditional = [_conditional(i, codes[i % len(codes)], prices[codes[i % len(codes)]], rng)
                           for i in range(n_conditional)]
            async with db.engine.begin() as conn:
                for i in range(0, len(alerts), 5000):
                    await conn.execute(insert(AlertRow), alerts[i:i + 5000])
                for i in range(0, len(conditional), 5000):  # (none with --conditional 0)
                    await conn.execute(insert(ConditionalOrderRow), conditional[i:i + 5000])
            del alerts, conditional
            anchor = await bare_commits(db)

            engine = AlertEngine(db, RealtimeClient(ws_url, rest.approval_key), lambda: None)
            engine.record_latencies = True
            await engine.start()
            accounts = _StandInAccounts()
            service = ConditionalOrders(db, accounts, CardStore(db, 60), OrderJournal(db), None,  # type: ignore[arg-type]
                                        Mode.PAPER, Settling(), process_id="bench")
            loaded = time.perf_counter()
            triggers = await start_conditional(service, engine.feed, Mode.PAPER, MarketCalendar())
            load_seconds = time.perf_counter() - loaded
            lag = LoopLag().start()
            # Warm-up: the alerts nearest the price fire on the first ticks (none of the conditional
            # orders is within 2 % of it): measured once that has drained, or after 20 s at most.
            warm_started, quiet_since = time.perf_counter(), None
            while time.perf_counter() - warm_started < 20:
                await asyncio.sleep(0.1)
                if engine.backlog or triggers._pending or service._tasks:
                    quiet_since = None
                elif quiet_since is None:
                    quiet_since = time.perf_counter()
                elif time.perf_counter() - quiet_since >= 1.0:
                    break
            warm_seconds = time.perf_counter() - warm_started
            engine.latencies.clear()
            service.sent_latencies.clear()
            service.record_latencies = True
            lag.reset()
            armed_before, cpu0, wall0 = len(triggers), time.process_time(), time.perf_counter()
            await asyncio.sleep(seconds)
            service.record_latencies = False
            engine.record_latencies = False
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            await lag.stop()
            armed_after = len(triggers)
            sent = list(service.sent_latencies)
            fired_alerts = list(engine.latencies)
            await stop_conditional(service)
            await engine.stop()
            await rest.aclose()
            await db.dispose()
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
    return {"backend": backend, "alerts": n_alerts, "conditional": n_conditional, "load_s": load_seconds,
            "sent": len(sent), "crossed": armed_before - armed_after, "p50": pct(sent, 0.5), "p99": pct(sent, 0.99),
            "max": max(sent, default=float("nan")), "alert_fired": len(fired_alerts),
            "alert_p50": pct(fired_alerts, 0.5), "alert_p99": pct(fired_alerts, 0.99),
            "anchor_p50": pct(anchor, 0.5), "anchor_p99": pct(anchor, 0.99), "lag": lag,
            "cpu_pct": 100 * cpu / wall, "seconds": wall, "warm_s": warm_seconds}


def report(r: dict[str, Any]) -> list[str]:
    lag: LoopLag = r["lag"]
    return [
        (f"conditional [{r['backend']}]: {r['conditional']:,} armed conditional orders beside {r['alerts']:,} alerts, "
         f"{SYMBOLS} symbols, {r['seconds']:.0f} s measured after a {r['warm_s']:.0f} s warm-up; trigger book "
         f"loaded in {r['load_s']:.2f} s"),
        (f"  tick → conditional order sent: p50 {ms(r['p50'])}, p99 {ms(r['p99'])}, max {ms(r['max'])} "
         f"({r['sent']:,} sent, {r['sent'] / r['seconds']:.1f}/s; {r['crossed']:,} crossed in the window)"),
        (f"  beside it, same run: alert tick → fired + push committed p50 {ms(r['alert_p50'])}, p99 "
         f"{ms(r['alert_p99'])} ({r['alert_fired']:,} fired); a bare one-row commit p50 {ms(r['anchor_p50'])}, "
         f"p99 {ms(r['anchor_p99'])} → sent p99 = {r['p99'] / r['anchor_p99']:.1f}× a bare commit's p99"),
        f"  {lag.summary()}; bot process CPU {r['cpu_pct']:.0f} % of one core",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="all", help="sqlite, postgres, a database URL, or all (default)")
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--conditional", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--near-every", type=int, default=NEAR_EVERY,
                        help="one conditional order in N within 1–6 %% of the price (default 20)")
    args = parser.parse_args()
    globals()["NEAR_EVERY"] = max(1, args.near_every)
    chosen = backends() if args.db == "all" else ["postgres" if args.db == "postgres" else args.db]
    for backend in chosen:
        result = asyncio.run(run(backend, args.alerts, args.conditional, args.seconds))
        print("\n".join(report(result)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
