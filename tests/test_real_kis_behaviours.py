"""Issue 15, "Real-KIS behaviours to fix": each behaviour of the live servers, with the simulator taught
the same behaviour, over real loopback sockets."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatbot.config import KisSettings, load_settings
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import protocol as p
from chatbot.kis.errors import KisError, KisNotFound, KisOrderRejected, KisServerError
from chatbot.kis.models import OrderSide
from chatbot.kis.orders import OrderSubmitter
from chatbot.kis.protocol import KST
from chatbot.kis.realtime import RealtimeClient, SubscriptionError
from chatbot.kis.rest import KisCredentials, KisEndpoint, KisRestClient
from chatbot.kis.token import MemoryTokenStore
from chatbot.markets.symbols import Kind
from chatbot.security.secretbox import SecretBox
from chatbot.service.accounts import AccountProvider
from chatbot.service.errors import kis_unavailable
from chatbot.service.fills import FillWatcher
from chatbot.service.registration import Registration
from chatbot.service.users import Users
from chatbot.service.views import Mode
from chatbot.sim.exchange import _gross_buy_cost
from chatbot.sim.server import KisSimulator
from chatbot.storage import Database
from chatbot.storage.credentials import CredentialStore, PaperAccountStore
from chatbot.storage.tables import OrderJournalRow
from chatbot.telegram.i18n import t
from tests.harness import BotHarness
from tests.helpers import new_credentials

CODE = "005930"
EN_USER = BotApiEmulator.user(9151, "en")


class Wire:
    """Every exchange a client makes: (method, path, query, status, body) — for what was sent and got."""

    def __init__(self) -> None:
        self.exchanges: list[tuple[str, str, dict[str, str], int, dict[str, Any]]] = []
        self.headers: list[tuple[str, httpx.Headers]] = []

    def http(self, base_url: str) -> httpx.AsyncClient:
        async def on_request(request: httpx.Request) -> None:
            self.headers.append((request.url.path, request.headers))

        async def on_response(response: httpx.Response) -> None:
            await response.aread()
            try:
                body = response.json()
            except ValueError:
                body = {}
            request = response.request
            self.exchanges.append((request.method, request.url.path, dict(request.url.params),
                                   response.status_code, body if isinstance(body, dict) else {}))

        return httpx.AsyncClient(base_url=base_url, event_hooks={"request": [on_request],
                                                                 "response": [on_response]})

    def to(self, path: str) -> list[tuple[str, str, dict[str, str], int, dict[str, Any]]]:
        return [e for e in self.exchanges if e[1] == path]


@pytest.fixture
async def wired(sim: KisSimulator) -> AsyncIterator[Any]:
    """A client factory whose HTTP traffic is recorded on a :class:`Wire`."""
    made: list[tuple[KisRestClient, httpx.AsyncClient]] = []

    def make(flavour: p.Flavour = "real", credentials: KisCredentials | None = None,
             **kwargs: Any) -> tuple[KisRestClient, Wire]:
        wire = Wire()
        http = wire.http(sim.rest_url(flavour))
        client = KisRestClient(KisEndpoint(flavour, sim.rest_url(flavour)), credentials or new_credentials(),
                               requests_per_second=50, http=http, **kwargs)
        made.append((client, http))
        return client, wire

    yield make
    for client, http in made:
        await client.aclose()
        await http.aclose()


def _account_id(client: KisRestClient) -> str:
    return f"{client.account.cano}-{client.account.product}"


# -- 1. gateway codes whatever the HTTP status ---------------------------------------------------------------
async def test_rate_limit_and_token_codes_on_http_200_are_gateway_refusals(sim: KisSimulator, wired) -> None:
    client, wire = wired()
    await client.quote(CODE)
    await sim.control("faults", {"gateway_http_status": 200, "rate_limit_next": 2})
    quote = await client.quote(CODE)  # EGW00201 on HTTP 200: backed off and asked again, not "no data"
    assert quote.price > 0 and client.rate_limit_retries == 2
    refused = [e for e in wire.to(p.PATH_INQUIRE_PRICE) if e[4].get("msg_cd") == p.EGW_RATE_LIMIT]
    assert [e[3] for e in refused] == [200, 200]  # the simulator really sent them on 200

    await sim.control("expire-tokens", {})
    assert (await client.quote(CODE)).price > 0  # EGW00123 on HTTP 200: a new token, once
    assert client.tokens.issued == 2
    assert any(e[3] == 200 and e[4].get("msg_cd") == p.EGW_TOKEN_EXPIRED for e in wire.to(p.PATH_INQUIRE_PRICE))


async def test_an_order_refused_by_the_gateway_on_http_200_is_sent_again_once_placed(sim: KisSimulator,
                                                                                     wired) -> None:
    client, _ = wired()
    await client.quote(CODE)
    await sim.control("faults", {"gateway_http_status": 200, "rate_limit_next": 2,
                                 "paths": [p.PATH_ORDER_CASH]})
    placed = await OrderSubmitter(client, lookup_interval=0.05).place(OrderSide.BUY, CODE, 1, None)
    # recognised as "never reached the ledger" (not an unknown outcome to reconcile): sent again, placed once
    assert placed.attempts == 3 and not placed.reconciled and sim.orders_accepted == 1


# -- 2. buying power asked with ORD_DVSN=01 --------------------------------------------------------------------
async def test_buying_power_for_a_limit_order_asks_with_division_01_and_its_price(sim: KisSimulator,
                                                                                  wired) -> None:
    client, wire = wired()
    await client.balance()  # binds the account to the key
    state = sim.market.get(CODE)
    assert state is not None
    price = state.price - 5 * p.tick_size(state.price)  # below the market: the order rests
    acct = sim.exchange.account(_account_id(client))
    acct.cash = 100 * price + _gross_buy_cost(100 * price) - 100 * price - 1  # 100 shares, less one won of fees

    power = await client.buying_power(CODE, price)
    ((_, _, query, _, _),) = wire.to(p.PATH_PSBL_ORDER)
    assert (query["ORD_DVSN"], query["ORD_UNPR"]) == ("01", str(price))
    assert power.max_quantity == 99 and power.calc_price == price
    await client.place_order(OrderSide.BUY, CODE, power.max_quantity, price)  # what 01 approves goes through

    # Asked with 00, KIS leaves the margin rate out (the simulator: the fees) and approves what then fails.
    acct.orders.clear()
    reply = await client._call("GET", p.PATH_PSBL_ORDER, p.TR.PSBL_ORDER, params={
        "CANO": client.account.cano, "ACNT_PRDT_CD": client.account.product, "PDNO": CODE,
        "ORD_UNPR": str(price), "ORD_DVSN": "00", "CMA_EVLU_AMT_ICLD_YN": "N", "OVRS_ICLD_YN": "N"})
    approved = int(reply.body["output"]["nrcvb_buy_qty"])
    assert approved == 100
    with pytest.raises(KisOrderRejected) as refused:
        await client.place_order(OrderSide.BUY, CODE, approved, price)
    assert refused.value.msg_cd == "APBK0952"

    await client.buying_power(CODE, None)  # a market order: 01 too, no price
    assert wire.to(p.PATH_PSBL_ORDER)[-1][2]["ORD_DVSN"] == "01" and wire.to(p.PATH_PSBL_ORDER)[-1][2]["ORD_UNPR"] == "0"


# -- 3. revise and cancel on the order's own exchange -----------------------------------------------------------
def _resting(sim: KisSimulator, client: KisRestClient, exchange: str, quantity: int = 3) -> Any:
    state = sim.market.get(CODE)
    assert state is not None
    low = state.limits[0] + 10 * p.tick_size(state.limits[0])
    return sim.exchange.place(_account_id(client), CODE, p.Side.BUY, "00", quantity, low, exchange)


async def test_listings_carry_each_orders_exchange(sim: KisSimulator, wired) -> None:
    client, wire = wired()
    await client.balance()
    nxt, krx = _resting(sim, client, "NXT"), _resting(sim, client, "KRX")
    listed = {o.order_no: o.exchange for o in await client.open_orders()}
    assert listed == {nxt.order_no: "NXT", krx.order_no: "KRX"}
    today = sim.today()
    executions = {e.order_no: e.exchange for e in await client.executions(today, today)}
    assert executions == {nxt.order_no: "NXT", krx.order_no: "KRX"}  # the real server is asked for ALL
    assert wire.to(p.PATH_DAILY_CCLD)[-1][2]["EXCG_ID_DVSN_CD"] == p.EXCHANGE_ALL


async def test_cancel_and_revise_go_to_the_orders_own_exchange(sim: KisSimulator, wired) -> None:
    client, wire = wired()
    await client.balance()
    order = _resting(sim, client, "NXT")
    # Sent to KRX, KIS refuses it with its own words (the simulator likewise).
    with pytest.raises(KisOrderRejected) as refused:
        await client.cancel_order(order.order_no, order.branch, exchange="KRX")
    assert refused.value.rt_cd == "7"
    assert refused.value.msg1 == "취소주문 불가합니다. 원주문 거래소[NXT] 취소주문 거래소[KRX]"
    with pytest.raises(KisOrderRejected) as refused:
        await client.revise_order(order.order_no, order.branch, order.price + p.tick_size(order.price), exchange="KRX")
    assert refused.value.msg1 == "정정주문 불가합니다. 원주문 거래소[NXT] 정정주문 거래소[KRX]"

    # Without an exchange, the client reads the order's own from the listing (the number may come unpadded).
    new_price = order.price + p.tick_size(order.price)
    revised = await client.revise_order(p.order_no_key(order.order_no), order.branch, new_price)
    assert wire.to(p.PATH_ORDER_RVSECNCL)[-1][4]["rt_cd"] == "0"
    (listed,) = await client.open_orders()
    assert (listed.order_no, listed.exchange, listed.price) == (revised.order_no, "NXT", new_price)
    await client.cancel_order(listed.order_no, listed.branch)
    assert await client.open_orders() == []


async def test_paper_cancel_stays_on_krx_without_a_lookup(sim: KisSimulator, wired) -> None:
    client, wire = wired("virtual")
    state = sim.market.get(CODE)
    assert state is not None
    low = state.limits[0] + 10 * p.tick_size(state.limits[0])
    ack = await client.place_order(OrderSide.BUY, CODE, 2, low)
    before = len(wire.exchanges)
    await client.cancel_order(ack.order_no, ack.branch)
    assert [e[1] for e in wire.exchanges[before:]] == [p.PATH_ORDER_RVSECNCL]  # no listing first


# -- 4. subscribe acknowledgements by rt_cd; 40 per session ---------------------------------------------------
async def test_acks_are_judged_by_rt_cd_not_by_a_list_of_msg_cd(sim: KisSimulator) -> None:
    rest = KisRestClient(KisEndpoint("real", sim.rest_url("real")), new_credentials())
    client = RealtimeClient(sim.ws_url("real"), rest.approval_key, ack_timeout=10)
    await client.start()
    try:
        assert client.max_subscriptions == p.WS_CLIENT_MAX_SUBSCRIPTIONS == 40
        assert sim.options.ws_max_subscriptions == p.WS_MAX_SUBSCRIPTIONS == 41  # the server's own cap
        await sim.control("faults", {"ws_success_msg_cd": "OPSP0099"})  # a success code we have never seen
        await client.subscribe(p.WS_TRADE, CODE)  # rt_cd "0": registered
        assert (p.WS_TRADE, CODE) in client.subscriptions
        with pytest.raises(SubscriptionError) as refused:  # rt_cd "1", whatever its code
            await client.subscribe("H0ZZCNT0", CODE)
        assert refused.value.rt_cd == "1"
        await client.unsubscribe(p.WS_TRADE, CODE)  # its "UNSUBSCRIBE SUCCESS" (rt_cd 0) settles nothing
        await client.subscribe(p.WS_TRADE, "000660")
        assert set(client.subscriptions) == {(p.WS_TRADE, "000660")}
    finally:
        await client.aclose()
        await rest.aclose()


# -- 5. tick from the quote's aspr_unit --------------------------------------------------------------------------
def _over_5000(sim: KisSimulator, kind: Kind) -> str:
    """A symbol of ``kind`` whose share-table tick is at least 10 won (so a price ending in 5 is off it)."""
    for symbol in sim.market.directory.symbols("KRX"):
        if symbol.kind is kind:
            state = sim.market.get(symbol.code)
            if state is not None and 5_000 <= state.price < 200_000:
                return symbol.code
    raise AssertionError(f"no {kind.name} above 5,000 won in the directory")


async def test_etfs_tick_by_their_own_unit_and_the_quote_says_so(sim: KisSimulator, wired) -> None:
    client, _ = wired()
    etf = _over_5000(sim, Kind.ETF)
    quote = await client.quote(etf)
    assert quote.tick == 5 != p.tick_size(quote.price)  # KIS's aspr_unit, not the share table
    between = quote.price // 10 * 10 + 5  # on the ETF's 5-won grid, off the share grid
    assert quote.tick_for(between) == 5 and between % p.tick_size(between)
    ack = await client.place_order(OrderSide.BUY, etf, 1, between)  # the simulator takes it, as KIS does
    assert ack.order_no

    share = _over_5000(sim, Kind.STOCK)
    stock = await client.quote(share)
    assert stock.tick == p.tick_size(stock.price) and stock.tick_for(stock.upper_limit) == p.tick_size(stock.upper_limit)
    with pytest.raises(KisOrderRejected):  # a share at such a price is off its tick
        await client.place_order(OrderSide.BUY, share, 1, stock.price // 10 * 10 + 5)


# -- 6. hashkey is a setting, off by default ---------------------------------------------------------------------
async def test_no_hashkey_by_default_so_a_hashkey_outage_cannot_block_orders(sim: KisSimulator, wired) -> None:
    assert load_settings(environ={}).kis.use_hashkey is False
    assert load_settings(environ={"KISBOT_KIS_USE_HASHKEY": "true"}).kis.use_hashkey is True
    await sim.control("faults", {"error_5xx_next": 50, "paths": [p.PATH_HASHKEY]})  # the hashkey service is down

    client, wire = wired()
    assert client.use_hashkey is False
    ack = await client.place_order(OrderSide.BUY, CODE, 1, None)
    assert ack.order_no and wire.to(p.PATH_HASHKEY) == []
    assert all("hashkey" not in headers for path, headers in wire.headers if path == p.PATH_ORDER_CASH)

    hashing, wire2 = wired(use_hashkey=True)
    with pytest.raises(KisServerError) as failed:  # switched on, the outage blocks the order (never sent)
        await hashing.place_order(OrderSide.BUY, CODE, 1, None)
    assert failed.value.maybe_sent is False and wire2.to(p.PATH_ORDER_CASH) == []
    await sim.control("clear-faults", {})
    await hashing.place_order(OrderSide.BUY, CODE, 1, None)
    assert any("hashkey" in headers for path, headers in wire2.headers if path == p.PATH_ORDER_CASH)


# -- 7 and 8. fill notices keyed by HTS id; order numbers compared without their zeros ------------------------------
@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite:///{tmp_path}/fills.sqlite3")
    await db.migrate()
    yield db
    await db.dispose()


async def test_fill_notices_need_the_hts_id_outside_the_simulator(sim: KisSimulator, sqlite_db: Database,
                                                                   box: SecretBox) -> None:
    credentials, paper = CredentialStore(sqlite_db, box), PaperAccountStore(sqlite_db, box)
    accounts = AccountProvider(credentials, paper, KisEndpoint("virtual", sim.rest_url("virtual")), Mode.VIRTUAL,
                               MemoryTokenStore())
    try:
        await credentials.save(1, "virtual", new_credentials())  # registered without an HTS id
        await credentials.save(2, "virtual", new_credentials(), "myhtsid")
        assert await accounts.notice_key(1) is None  # the account number would work only on the simulator
        assert await accounts.notice_key(2) == "myhtsid"

        watcher = FillWatcher(sqlite_db, accounts, Users(sqlite_db), sim.ws_url("virtual"), p.WS_NOTICE["virtual"],
                              lambda: None)
        await watcher.watch(1, 1)
        assert watcher._clients == {}  # nothing subscribed; fills come from the daily executions
        await watcher.stop()

        registration = Registration(accounts, credentials, paper, Mode.VIRTUAL)
        assert (await registration.me(1)).fill_pushes is False and (await registration.me(2)).fill_pushes is True
        assert "HTS ID" in t("fills_need_hts_id", "en") and "/login" in t("fills_need_hts_id", "ko")

        on_simulator = AccountProvider(credentials, paper, KisEndpoint("virtual", sim.rest_url("virtual")),
                                       Mode.PAPER, MemoryTokenStore())
        assert await on_simulator.notice_key(3) == (await on_simulator.for_user(3)).account.cano
        await on_simulator.aclose()
    finally:
        await accounts.aclose()


async def test_a_fill_notice_finds_its_journal_entry_whatever_the_leading_zeros(sqlite_db: Database) -> None:
    assert p.order_no_key("0000001234") == p.order_no_key("1234") == "1234"
    async with sqlite_db.session() as session:
        session.add(OrderJournalRow(idempotency_key="k1", owner_id=5, environment="real", account="12345678-01",
                                    action="order", side="buy", code=CODE, quantity=3, price=70_000,
                                    kis_order_no="0000001234", status="accepted"))
        await session.commit()
    watcher = FillWatcher(sqlite_db, None, Users(sqlite_db), "ws://127.0.0.1:1", "H0STCNI0",  # type: ignore[arg-type]
                          lambda: None)
    found = await watcher._journal_entry(5, "1234")  # a notice that dropped the zeros
    assert found is not None and found.kis_order_no == "0000001234"


# -- 9. KIS's nightly maintenance ----------------------------------------------------------------------------------
def _kst_epoch(hour: int, minute: int) -> float:
    return dt.datetime.combine(dt.datetime.now(KST).date(), dt.time(hour, minute), KST).timestamp()


async def test_a_failure_in_the_nightly_window_says_maintenance(sim: KisSimulator, wired) -> None:
    night, _ = wired(clock=lambda: _kst_epoch(0, 30))
    noon, _ = wired(clock=lambda: _kst_epoch(12, 0))
    await night.quote(CODE)
    await noon.quote(CODE)
    for client, expected in ((night, "kis_nightly_maintenance"), (noon, "kis_unavailable")):
        await sim.control("faults", {"error_5xx_next": 1})
        with pytest.raises(KisError) as failed:
            await client.quote(CODE)
        assert kis_unavailable(failed.value).key == expected
    with pytest.raises(KisNotFound) as missing:  # a real answer at night is not maintenance
        await night.quote("999999")
    assert missing.value.in_maintenance_window is False


async def test_the_bot_says_maintenance_and_takes_an_etf_price_on_its_own_tick(tmp_path: Path) -> None:
    now = dt.datetime.now(KST)
    window = f"{(now - dt.timedelta(hours=1)):%H:%M}-{(now + dt.timedelta(hours=1)):%H:%M}"
    bot = BotHarness(f"sqlite:///{tmp_path}/bot.sqlite3", kis=KisSettings(nightly_maintenance=window))
    await bot.start()
    try:
        etf = _over_5000(bot.sim, Kind.ETF)
        state = bot.sim.market.get(etf)
        assert state is not None
        (card,) = await bot.say(EN_USER, f"/buy {etf} 1 {state.price // 10 * 10 + 5}")
        assert "tick" not in card["text"].lower() and BotApiEmulator.buttons(card), card["text"]

        await bot.sim.control("faults", {"error_5xx_next": 1})
        (reply,) = await bot.say(EN_USER, f"/price {CODE}")
        assert "nightly maintenance" in reply["text"], reply["text"]
    finally:
        await bot.stop()
