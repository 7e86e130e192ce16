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
from decimal import Decimal
from typing import Any, Self

from aiohttp import web

from chatbot.kis import protocol as p
from chatbot.kis.protocol import Flavour
from chatbot.markets.directory import SymbolDirectory
from chatbot.markets.symbols import Kind, Symbol
from chatbot.markets.us_hours import NEW_YORK, UsCalendar
from chatbot.sim.auth import AuthRegistry
from chatbot.sim.exchange import Exchange
from chatbot.sim.faults import Faults
from chatbot.sim.market import Market
from chatbot.sim.master_files import PATH_PREFIX, MasterArchives
from chatbot.sim.realtime import RealtimeServer
from chatbot.sim.rest import RestApi
from chatbot.sim.store import MemoryStateStore, StateStore
from chatbot.sim.throttle import SlidingWindowThrottle
from chatbot.sim.us_market import UsMarket, session_code, units_of
from chatbot.sim.us_trading import UsTrading

log = logging.getLogger(__name__)
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
    ws_max_subscriptions: int = p.WS_MAX_SUBSCRIPTIONS  # per session; the next gets OPSP0008 MAX SUBSCRIBE OVER
    # US stocks (KIS_OVERSEAS.md)
    usd_starting_cash: Decimal = Decimal(10000)  # a paper account's dollars when it first trades US stocks
    krw_per_usd: Decimal = Decimal("1400.00")  # the fixed rate of every KRW valuation and quote
    us_always_open: bool = False  # every moment is a regular US session (tests); else America/New_York hours
    us_notice_layout: str = "auto"  # H0GSCNI0 notices: "25", "24" (portal), "21" (python-kis), or "auto"
    us_paper_nccs: bool = False  # answer VTTS3018R (KIS's portal says paper does not offer it)
    us_closed_msg_cd: str = "APBK1664"  # msg_cd of an order outside US hours (unverified)
    us_balance_page_size: int = 0  # 0 = KIS's (100)


class KisSimulator:
    def __init__(self, options: SimulatorOptions | None = None, store: StateStore | None = None,
                 wall: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 directory: SymbolDirectory | None = None) -> None:
        self.options = options or SimulatorOptions()
        self.store: StateStore = store or MemoryStateStore()
        self.wall = wall
        # The universe: every KRX symbol of the directory (the bot's own in paper mode).
        self.market = Market(self.options.seed, self.today(), directory or SymbolDirectory.bundled())
        self.master_files = MasterArchives(self.market)
        self.exchange = Exchange(self.market, self.options.starting_cash, self.now)
        # US stocks: the directory's US rows (loaded on first US use), New York's calendar, dollar accounts.
        self.us_calendar = UsCalendar(self.options.us_always_open)
        self.us_market = UsMarket(self.options.seed, self.market.directory, self.now().astimezone(NEW_YORK).date())
        self.us_trading = UsTrading(self.us_market, self.us_calendar, units_of(self.options.usd_starting_cash),
                                    self.now)
        self.auth = AuthRegistry(wall, self.options.enforce_token_issue_interval)
        self.faults = Faults()
        overrides = self.options.requests_per_second or {}
        rates: dict[str, int] = {flavour: overrides.get(flavour, default)
                                 for flavour, default in p.REQUESTS_PER_SECOND.items()}
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
        return dt.datetime.fromtimestamp(self.wall(), p.KST)

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

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def rest_url(self, flavour: Flavour = "real") -> str:
        return self._urls[flavour]

    def master_files_url(self) -> str:
        """Where the simulator serves KIS's master archives of its universe (``kis.master_files_url``)."""
        return self.rest_url("real") + PATH_PREFIX

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
        self.step_us(now)
        await self.persist()

    def step_us(self, now: dt.datetime) -> None:
        """Pass US session boundaries, then one trade for every US symbol in play while it trades
        (nothing at all until something US is used: the calendar is not even loaded)."""
        if not self.us_trading.accounts and not self.us_market.in_play_count:
            return
        self.us_trading.advance(now)
        state = self.us_calendar.state(now)
        if state.phase.trading:
            self.us_market.step_all(now, session_code(state.phase))

    def set_us_price(self, symbol: str, price: Decimal) -> Decimal:
        """Force a US trade at ``price`` dollars (snapped to the tick); resting orders match against it."""
        now = self.now()
        self.us_trading.advance(now)
        phase = self.us_calendar.state(now).phase
        trade = self.us_market.set_price(symbol, units_of(price), now, session_code(phase))
        return Decimal(trade.price).scaleb(-4)

    def set_price(self, code: str, price: int) -> int:
        """Force a trade at ``price`` (clamped to tick and limits); resting orders match against it."""
        return self.market.set_price(code, price, self.now().strftime("%H%M%S")).price

    def upsert_listing(self, data: dict[str, Any]) -> Symbol:
        """List a new symbol or change one (name, halt, 관리종목, base price): a KIS master update."""
        code = str(data["code"]).strip().upper()
        old = self.market.listing(code)
        market = str(data.get("market") or (old.market if old else "KOSPI"))
        if market not in ("KOSPI", "KOSDAQ") or len(code) != 6 or not code.isalnum() or not code[0].isdigit():
            raise ValueError(f"bad listing {code} on {market}")
        listing = Symbol(code, str(data.get("name") or (old.name_ko if old else code)),
                         str(data.get("name_en") or (old.name_en if old else "")), market,
                         Kind(data.get("kind") or (old.kind if old else Kind.STOCK)),
                         halted=bool(data.get("halted", old.halted if old else False)),
                         administrative=bool(data.get("administrative", old.administrative if old else False)),
                         base_price=int(data.get("base_price") or (old.base_price if old else 0)),
                         weight=old.weight if old else 0)
        self.market.directory.upsert([listing])
        return listing

    # -- persistence ---------------------------------------------------------------------------------------
    async def _load(self) -> None:
        docs = await self.store.load_all()
        if "market" in docs:
            self.market.restore(docs["market"])
        self.auth.restore(docs)
        if "us-market" in docs:
            self.us_market.restore(docs["us-market"])
            self.us_trading.restore(docs["us-market"].get("trading", {}))
        for key, doc in docs.items():
            if key.startswith("account:"):
                self.exchange.restore_account(doc)
            elif key.startswith("us-account:"):
                self.us_trading.restore_account(doc)
        if docs:
            log.info("kis simulator state restored", extra={"accounts": len(self.exchange.accounts)})

    async def persist(self, force_market: bool = False) -> None:
        async with self._persist_lock:
            docs: dict[str, dict[str, Any]] = {
                f"account:{acct.account_id}": acct.to_dict() for acct in self.exchange.take_dirty()}
            docs.update({f"us-account:{a.account_id}": a.to_dict() for a in self.us_trading.take_dirty()})
            docs.update(self.auth.take_dirty())
            mono = time.monotonic()
            if force_market or mono - self._last_market_save > MARKET_SAVE_INTERVAL:
                docs["market"] = self.market.snapshot()
                docs["us-market"] = {**self.us_market.snapshot(), "trading": self.us_trading.snapshot()}
                self._last_market_save = mono
            if docs:
                await self.store.save_many(docs)

    # -- controls (in-process and over HTTP at /sim/<action>) --------------------------------------------
    async def control(self, action: str, data: dict[str, Any]) -> dict[str, Any]:
        if action == "faults":
            for key, value in data.items():
                if key not in ("latency_seconds", "response_delay_seconds", "error_5xx_next", "error_5xx_after_next",
                               "error_5xx_probability", "rate_limit_next", "rate_limit_probability",
                               "gateway_http_status", "ws_success_msg_cd", "paths"):
                    raise KeyError(f"unknown fault {key!r}")
                setattr(self.faults, key, tuple(value) if key == "paths" else value)
            return {"faults": {k: getattr(self.faults, k) for k in ("latency_seconds", "error_5xx_next",
                                                                    "rate_limit_next", "gateway_http_status",
                                                                    "paths")},
                    "injected": dict(self.faults.injected)}
        if action == "clear-faults":
            self.faults.clear()
            return {"ok": True}
        if action == "expire-tokens":
            self.auth.expire_all()
            await self.persist()
            return {"ok": True}
        if action == "expire-approvals":  # every WebSocket approval key a day old: a new session needs a new one
            self.auth.expire_approvals()
            await self.persist()
            return {"ok": True}
        if action == "price":
            return {"code": data["code"], "price": self.set_price(str(data["code"]), int(data["price"]))}
        if action == "us-price":  # {"symbol": "AAPL", "price": "190.25"}
            return {"symbol": data["symbol"], "price": str(self.set_us_price(str(data["symbol"]),
                                                                              Decimal(str(data["price"]))))}
        if action == "us-hours":  # {"always_open": true}: the US market open whatever the clock says
            self.us_calendar.always_open = bool(data["always_open"])
            return {"always_open": self.us_calendar.always_open,
                    "phase": self.us_calendar.state(self.now()).phase.value}
        if action == "master-files":  # {"kospi_code.mst.zip": "missing" | "truncated" | "garbled" | null}
            self.master_files.set_faults(data)
            return {"faults": dict(self.master_files.faults), "served": self.master_files.served}
        if action == "listing":  # add or change a listing: {"code", "name", "market", "kind", flags, "base_price"}
            return {"listing": self.upsert_listing(data).code}
        if action == "refuse":  # {"order_no": "0000001001", "market": "KRX" | "US", "reason": ""}: the exchange
            # refuses an order KIS accepted (e.g. outside the day's limits after a VI); its notice says RFUS_YN=1
            if str(data.get("market") or "KRX").upper() == "US":
                us_order = self.us_trading.refuse(str(data["order_no"]), self.now(), str(data.get("reason") or ""))
                refused = (us_order.order_no, us_order.refused_qty)
            else:
                order = self.exchange.refuse(str(data["order_no"]))
                refused = (order.order_no, order.refused_qty)
            await self.persist()
            return {"order_no": refused[0], "refused": refused[1]}
        if action == "refuse-change":  # {"order_no": the revision's or cancellation's own number}: the exchange
            # refuses a revise/cancel KIS accepted; the original order works on; its notice says RFUS_YN=1
            if data.get("market") == "US":  # {"order_no": …, "market": "US"}: a US revision or cancellation
                change_us = self.us_trading.refuse_change(str(data["order_no"]), self.now())
                await self.persist()
                return {"order_no": change_us.order_no, "original_order_no": change_us.original_order_no,
                        "kind": change_us.kind}
            change = self.exchange.refuse_change(str(data["order_no"]))
            await self.persist()
            return {"order_no": change.order_no, "original_order_no": change.original_order_no, "kind": change.kind}
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

