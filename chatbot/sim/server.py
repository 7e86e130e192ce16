"""The embedded KIS simulator: shared market and accounts behind a real-like and a paper-like server.

Runs in-process (paper mode of the bot, tests) or standalone (``chatbot sim``). Listens on
loopback only. State (accounts, orders, market, issued tokens) is written to a
:class:`~chatbot.sim.store.StateStore` after every call that changed it, so a restart of the bot
loses no paper holding or open order.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from chatbot.kis import protocol as p
from chatbot.kis.protocol import Flavour
from chatbot.sim.auth import AuthRegistry
from chatbot.sim.exchange import Exchange
from chatbot.sim.faults import Faults
from chatbot.sim.market import Market
from chatbot.sim.realtime import RealtimeServer
from chatbot.sim.rest import RestApi
from chatbot.sim.store import MemoryStateStore, StateStore
from chatbot.sim.throttle import SlidingWindowThrottle

log = logging.getLogger(__name__)
KST = dt.timezone(dt.timedelta(hours=9), "KST")
MARKET_SAVE_INTERVAL = 10.0


@dataclass(slots=True)
class SimulatorOptions:
    seed: int = 20240101
    starting_cash: int = 10_000_000
    tick_interval: float = 1.0  # seconds between market steps; 0 = only on demand (tests)
    enforce_token_issue_interval: bool = False  # EGW00133 on a second issuance within a minute
    refuse_inqr_dvsn_02: bool = False  # emulate the 2026-02-10 refusal of INQR_DVSN=02
    requests_per_second: dict[str, int] | None = None  # per flavour; default KIS's 20 / 2
    balance_page_size: int = 0  # 0 = KIS's (real 50, paper 20)
    daily_ccld_page_size: int = 0  # 0 = KIS's (real 100, paper 15)
    pingpong_interval: float = 10.0  # seconds between PINGPONG messages (KIS's interval is unverified)
    notice_layout: str = "auto"  # execution notices: "26", "23" (python-kis 2.1.6), or "auto" per connection


class KisSimulator:
    def __init__(self, options: SimulatorOptions | None = None, store: StateStore | None = None,
                 wall: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.options = options or SimulatorOptions()
        self.store: StateStore = store or MemoryStateStore()
        self.wall = wall
        self.market = Market(self.options.seed, self.today())
        self.exchange = Exchange(self.market, self.options.starting_cash, self.now)
        self.auth = AuthRegistry(wall, self.options.enforce_token_issue_interval)
        self.faults = Faults()
        rates = {**p.REQUESTS_PER_SECOND, **(self.options.requests_per_second or {})}
        self.throttles: dict[str, SlidingWindowThrottle] = {
            flavour: SlidingWindowThrottle(rates[flavour], monotonic) for flavour in ("real", "virtual")}
        self.apis: dict[Flavour, RestApi] = {"real": RestApi(self, "real"), "virtual": RestApi(self, "virtual")}
        self.realtime: dict[Flavour, RealtimeServer] = {
            "real": RealtimeServer(self, "real"), "virtual": RealtimeServer(self, "virtual")}
        self.orders_accepted = 0
        self._runners: list[web.AppRunner] = []
        self._urls: dict[str, str] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._persist_lock = asyncio.Lock()
        self._last_market_save = 0.0

    # -- clock ---------------------------------------------------------------------------------------
    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.wall(), KST)

    def today(self) -> dt.date:
        return self.now().date()

    # -- lifecycle -------------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", real_port: int = 0, virtual_port: int = 0,
                    real_ws_port: int = 0, virtual_ws_port: int = 0) -> None:
        await self._load()
        listeners: list[tuple[str, web.Application, int, str]] = [
            ("real", self.apis["real"].make_app(), real_port, "http"),
            ("virtual", self.apis["virtual"].make_app(), virtual_port, "http"),
            ("ws-real", self.realtime["real"].make_app(), real_ws_port, "ws"),
            ("ws-virtual", self.realtime["virtual"].make_app(), virtual_ws_port, "ws"),
        ]
        for name, app, port, scheme in listeners:
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, host, port, reuse_address=True)
            await site.start()
            self._runners.append(runner)
            sock = site._server.sockets[0]  # type: ignore[union-attr]
            bound_host, bound_port = sock.getsockname()[:2]
            self._urls[name] = f"{scheme}://{bound_host}:{bound_port}"
        if self.options.tick_interval > 0:
            self._ticker = asyncio.create_task(self._tick_loop(), name="kis-sim-ticker")
        log.info("kis simulator listening", extra={"real": self._urls["real"], "virtual": self._urls["virtual"]})

    async def stop(self) -> None:
        if self._ticker:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await self.persist(force_market=True)
        for server in self.realtime.values():
            server.drop_all()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    async def __aenter__(self) -> "KisSimulator":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def rest_url(self, flavour: Flavour = "real") -> str:
        return self._urls[flavour]

    def ws_url(self, flavour: Flavour = "real") -> str:
        """The WebSocket base URL (clients append ``/tryitout`` as with KIS; any path works)."""
        return self._urls[f"ws-{flavour}"]

    # -- market clock -------------------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += self.options.tick_interval  # a fixed rate: the time a step takes does not slow the market
            await asyncio.sleep(max(0.0, due - loop.time()))
            if loop.time() - due > 1.0:
                due = loop.time()  # far behind (suspended?): do not burst to catch up
            try:
                await self.tick()
            except Exception:  # the simulator must keep running whatever one step does
                log.exception("simulator tick failed")

    async def tick(self) -> None:
        """One market step for every symbol (rolling the day first when the date changed)."""
        now = self.now()
        if now.date() > self.market.today:
            self.market.roll_day(now.date())
            self.exchange.roll_day()
        self.market.step_all(now.strftime("%H%M%S"))
        await self.persist()

    def set_price(self, code: str, price: int) -> int:
        """Force a trade at ``price`` (clamped to tick and limits); resting orders match against it."""
        return self.market.set_price(code, price, self.now().strftime("%H%M%S")).price

    # -- persistence ---------------------------------------------------------------------------------------
    async def _load(self) -> None:
        docs = await self.store.load_all()
        if "market" in docs:
            self.market.restore(docs["market"])
        self.auth.restore(docs)
        for key, doc in docs.items():
            if key.startswith("account:"):
                self.exchange.restore_account(doc)
        if docs:
            log.info("kis simulator state restored", extra={"accounts": len(self.exchange.accounts)})

    async def persist(self, force_market: bool = False) -> None:
        async with self._persist_lock:
            docs: dict[str, dict[str, Any]] = {
                f"account:{acct.account_id}": acct.to_dict() for acct in self.exchange.take_dirty()}
            docs.update(self.auth.take_dirty())
            mono = time.monotonic()
            if force_market or mono - self._last_market_save > MARKET_SAVE_INTERVAL:
                docs["market"] = self.market.snapshot()
                self._last_market_save = mono
            if docs:
                await self.store.save_many(docs)

    # -- controls (in-process and over HTTP at /sim/<action>) --------------------------------------------
    async def control(self, action: str, data: dict[str, Any]) -> dict[str, Any]:
        if action == "faults":
            for key, value in data.items():
                if key not in ("latency_seconds", "response_delay_seconds", "error_5xx_next", "error_5xx_after_next",
                               "error_5xx_probability", "rate_limit_next", "rate_limit_probability", "paths"):
                    raise KeyError(f"unknown fault {key!r}")
                setattr(self.faults, key, tuple(value) if key == "paths" else value)
            return {"faults": {k: getattr(self.faults, k) for k in ("latency_seconds", "error_5xx_next",
                                                                    "rate_limit_next", "paths")},
                    "injected": dict(self.faults.injected)}
        if action == "clear-faults":
            self.faults.clear()
            return {"ok": True}
        if action == "expire-tokens":
            self.auth.expire_all()
            await self.persist()
            return {"ok": True}
        if action == "price":
            return {"code": data["code"], "price": self.set_price(str(data["code"]), int(data["price"]))}
        if action == "drop-websockets":
            return {"dropped": sum(server.drop_all() for server in self.realtime.values())}
        if action == "step":
            await self.tick()
            return {"ok": True}
        if action == "stats":
            return {"tokens_issued": self.auth.issued_count, "orders_accepted": self.orders_accepted,
                    "rate_limited": {f: t.refused for f, t in self.throttles.items()},
                    "injected": dict(self.faults.injected)}
        raise KeyError(f"unknown action {action!r}")
