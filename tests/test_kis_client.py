"""The KIS REST client against the simulator over real loopback sockets."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from chatbot.kis import protocol as p
from chatbot.kis.errors import (
    KisAuthError,
    KisNotFound,
    KisOrderRejected,
    KisOrderUncertain,
    KisRateLimited,
    KisTransportError,
)
from chatbot.kis.models import OrderSide
from chatbot.kis.orders import OrderSubmitter
from chatbot.kis.rest import KisCredentials, KisEndpoint, KisRestClient, mask
from chatbot.kis.token import MemoryTokenStore
from chatbot.sim.auth import _kid
from chatbot.sim.server import KisSimulator, SimulatorOptions
from chatbot.storage.tokens import DbTokenStore
from tests.helpers import new_credentials

CODE = "005930"


async def test_quote_is_typed_and_matches_the_simulator(sim: KisSimulator, make_client) -> None:
    client = make_client()
    quote = await client.quote(CODE)
    state = sim.market.get(CODE)
    assert state is not None
    assert quote.price == state.price and isinstance(quote.price, int)
    assert isinstance(quote.change_rate, Decimal)
    assert quote.lower_limit < quote.price < quote.upper_limit
    assert quote.tick == p.tick_size(quote.price)


async def test_unknown_code_is_not_found(make_client) -> None:
    client = make_client()
    with pytest.raises(KisNotFound):
        await client.quote("999999")
    with pytest.raises(KisNotFound):
        await client.stock_info("999999")


async def test_stock_info_names(make_client) -> None:
    info = await make_client().stock_info(CODE)
    assert (info.name, info.name_en, info.isin) == ("삼성전자", "Samsung Electronics", "KR7005930003")


async def test_token_reused_across_client_restart(sim: KisSimulator, make_client, database, box) -> None:
    sim.auth.enforce_issue_interval = True  # a second issuance within a minute would be refused
    creds = new_credentials()
    store = DbTokenStore(database, box)
    first = make_client(credentials=creds, token_store=store)
    await first.quote(CODE)
    await first.aclose()
    issued = sim.auth.issued_count
    second = make_client(credentials=creds, token_store=DbTokenStore(database, box))  # a "restarted" process
    await second.quote(CODE)
    await second.balance()
    assert sim.auth.issued_count == issued == 1
    assert second.tokens.issued == 0


async def test_concurrent_first_calls_issue_one_token(sim: KisSimulator, make_client) -> None:
    sim.auth.enforce_issue_interval = True
    client = make_client()
    quotes = await asyncio.gather(*(client.quote(CODE) for _ in range(15)))
    assert len(quotes) == 15
    assert client.tokens.issued == 1 and sim.auth.issued_count == 1


async def test_expired_token_is_reissued_once(sim: KisSimulator, make_client) -> None:
    client = make_client()
    await client.quote(CODE)
    await sim.control("expire-tokens", {})
    await client.quote(CODE)
    assert client.tokens.issued == 2


async def test_wrong_secret_is_an_auth_error(sim: KisSimulator, make_client) -> None:
    creds = new_credentials()
    await make_client(credentials=creds).quote(CODE)
    impostor = KisCredentials(creds.app_key, new_credentials().app_secret, creds.account)
    with pytest.raises(KisAuthError) as info:
        await make_client(credentials=impostor).quote(CODE)
    assert info.value.msg_cd == p.EGW_APPSECRET_INVALID
    assert creds.app_secret not in repr(impostor) and mask(creds.app_key) in repr(creds)


async def test_token_issue_throttle_is_reported(sim: KisSimulator, make_client) -> None:
    sim.auth.enforce_issue_interval = True
    creds = new_credentials()
    await make_client(credentials=creds).quote(CODE)
    await sim.control("expire-tokens", {})
    sim.auth._last_issue[_kid(creds.app_key)] = sim.wall()  # as if a token had just been issued elsewhere
    second = make_client(credentials=creds)
    second.tokens.issued_elsewhere_patience = 0.0  # its own store: no other process can save a token there
    with pytest.raises(Exception) as info:
        await second.quote(CODE)
    assert info.value.msg_cd == p.EGW_TOKEN_TOO_OFTEN  # type: ignore[attr-defined]


@pytest.mark.parametrize("flavour", ["real", "virtual"])
async def test_buy_sell_cancel_lifecycle(sim: KisSimulator, make_client, flavour) -> None:
    sim.throttles["virtual"].limit = 20  # keep the test fast; pacing itself is tested below
    client = make_client(flavour, requests_per_second=20)
    start_cash = (await client.balance()).cash
    price = sim.market.get(CODE).price  # type: ignore[union-attr]
    ack = await client.place_order(OrderSide.BUY, CODE, 10, None)  # market: fills at once
    assert len(ack.order_no) == 10 and ack.order_no.isdigit() and len(ack.time) == 6
    bal = await client.balance()
    (holding,) = bal.holdings
    assert (holding.code, holding.quantity) == (CODE, 10)
    assert bal.cash < start_cash - 10 * price + 1

    sell = await client.place_order(OrderSide.SELL, CODE, 4, None)
    assert sell.order_no != ack.order_no
    assert (await client.balance()).holdings[0].quantity == 6

    low = p.round_down_to_tick(sim.market.get(CODE).limits[0] + 10 * p.tick_size(price))  # type: ignore[union-attr]
    resting = await client.place_order(OrderSide.BUY, CODE, 3, low)
    (open_order,) = await client.open_orders()
    assert (open_order.order_no, open_order.cancellable_quantity, open_order.price) == (resting.order_no, 3, low)
    cancel = await client.cancel_order(resting.order_no, resting.branch)
    assert cancel.order_no not in (resting.order_no,)
    assert await client.open_orders() == []
    executions = await client.executions(sim.today(), sim.today())
    assert {e.order_no for e in executions} >= {ack.order_no, sell.order_no, resting.order_no, cancel.order_no}
    filled = next(e for e in executions if e.order_no == ack.order_no)
    assert filled.filled_quantity == 10 and filled.remaining_quantity == 0


async def test_resting_limit_order_fills_when_the_price_crosses(sim: KisSimulator, make_client) -> None:
    client = make_client()
    state = sim.market.get(CODE)
    assert state is not None
    limit = p.round_down_to_tick(state.price - 5 * p.tick_size(state.price))
    ack = await client.place_order(OrderSide.BUY, CODE, 2, limit)
    assert (await client.balance()).holdings == ()
    sim.set_price(CODE, limit - p.tick_size(limit))
    (holding,) = (await client.balance()).holdings
    assert holding.quantity == 2 and holding.average_price == limit
    assert await client.open_orders() == []
    assert ack.order_no


async def test_revise_moves_the_price(sim: KisSimulator, make_client) -> None:
    client = make_client()
    state = sim.market.get(CODE)
    assert state is not None
    low = p.round_down_to_tick(state.limits[0] + 5 * p.tick_size(state.price))
    ack = await client.place_order(OrderSide.BUY, CODE, 5, low)
    new_price = p.round_down_to_tick(low + 3 * p.tick_size(low))
    revised = await client.revise_order(ack.order_no, ack.branch, new_price)
    (order,) = await client.open_orders()
    assert (order.order_no, order.price, order.cancellable_quantity) == (revised.order_no, new_price, 5)


@pytest.mark.parametrize(("side", "qty", "price", "msg_cd"), [
    (OrderSide.BUY, 10**7, None, "APBK0952"),  # insufficient cash
    (OrderSide.SELL, 1, None, "APBK0986"),  # no shares
    (OrderSide.BUY, 1, "off_tick", "APBK1680"),
    (OrderSide.BUY, 1, "above_limit", "APBK1681"),
])
async def test_bad_orders_are_rejected_with_kis_codes(sim: KisSimulator, make_client, side, qty, price, msg_cd):
    client = make_client()
    state = sim.market.get(CODE)
    assert state is not None
    if price == "off_tick":
        price = state.price + 1 if p.tick_size(state.price) > 1 else None
    elif price == "above_limit":
        price = p.round_down_to_tick(state.limits[1] * 2)
    with pytest.raises(KisOrderRejected) as info:
        await client.place_order(side, CODE, qty, price)
    assert info.value.msg_cd == msg_cd and info.value.msg1
    assert sim.orders_accepted == 0


async def test_unknown_code_order_and_zero_quantity(sim: KisSimulator, make_client) -> None:
    client = make_client()
    with pytest.raises(KisNotFound):
        await client.place_order(OrderSide.BUY, "999999", 1, None)
    with pytest.raises(ValueError):
        await client.place_order(OrderSide.BUY, CODE, 0, None)
    body_zero = {"CANO": client.account.cano, "ACNT_PRDT_CD": "01", "PDNO": CODE, "ORD_DVSN": "01", "ORD_QTY": "0",
                 "ORD_UNPR": "0"}
    with pytest.raises(KisOrderRejected) as info:
        await client._call("POST", p.PATH_ORDER_CASH, p.TR.BUY, body=body_zero, order=True)
    assert info.value.msg_cd == "APBK1626"


async def test_paper_rejections_use_paper_codes(sim: KisSimulator, make_client) -> None:
    client = make_client("virtual")
    with pytest.raises(KisOrderRejected) as info:
        await client.place_order(OrderSide.SELL, CODE, 1, None)
    assert info.value.msg_cd == "40240000"


async def test_balance_with_several_pages(sim: KisSimulator, make_client) -> None:
    client = make_client("virtual", requests_per_second=50)
    sim.throttles["virtual"].limit = 50
    codes = [c for c, s in sim.market.symbols.items() if s.price < 50_000][:45]
    for code in codes:
        await client.place_order(OrderSide.BUY, code, 1, None)
    calls_before = sim.apis["virtual"].requests
    bal = await client.balance()
    assert sorted(h.code for h in bal.holdings) == sorted(codes)
    assert sim.apis["virtual"].requests - calls_before == 3  # 45 holdings, 20 a page on paper
    assert bal.securities_evaluation == sum(h.evaluation for h in bal.holdings)


async def test_daily_executions_page_through(sim: KisSimulator, make_client) -> None:
    sim.options.daily_ccld_page_size = 4
    client = make_client(requests_per_second=20)
    acks = [await client.place_order(OrderSide.BUY, CODE, 1, None) for _ in range(9)]
    rows = await client.executions(sim.today(), sim.today())
    assert [r.order_no for r in rows] == [a.order_no for a in reversed(acks)]


async def test_rate_limiter_at_the_limit_no_rate_errors(make_client) -> None:
    """Three windows' worth of queries at once against the gateway's per-second limit: none refused
    (or, on a loaded machine, a rare one sent again), none failed, and no faster than the limit allows.
    Run at a simulated limit of 50/s (KIS's real one is 20/s, the client's default for it, below) so that
    three windows take 3 s, not 10: the pacer's arithmetic does not depend on the rate."""
    assert make_client("real").pacer.rate == p.REQUESTS_PER_SECOND["real"] == 20
    rate, queries = 50, 150
    sim = KisSimulator(SimulatorOptions(tick_interval=0, requests_per_second={"real": rate}))
    await sim.start()
    client = KisRestClient(KisEndpoint("real", sim.rest_url("real")), new_credentials(), requests_per_second=rate)
    try:
        started = time.perf_counter()
        quotes = await asyncio.gather(*(client.quote(CODE) for _ in range(queries)))
        elapsed = time.perf_counter() - started
    finally:
        await client.aclose()
        await sim.stop()
    assert len(quotes) == queries and all(q.price > 0 for q in quotes)  # none failed
    # The simulator counts a request when its handler runs, in this same event loop: on a loaded
    # machine a stalled loop can run two handlers a second apart closer together than they were
    # sent. The pacer then widens its margin and the client sends the refused query again; it must
    # stay rare (the benchmark measures 0 refusals with a simulator in its own process).
    refused = sim.throttles["real"].refused
    assert refused <= 2 and client.rate_limit_retries == refused
    # It really kept to the rate: the last query cannot start before the first (queries - rate) have had
    # a window each (a lower bound, safe on a slow machine).
    assert elapsed >= (queries - rate) / rate


async def test_query_retries_after_forced_rate_limit(sim: KisSimulator, make_client) -> None:
    client = make_client()
    await client.quote(CODE)
    sim.faults.rate_limit_next = 2
    await client.quote(CODE)
    assert client.rate_limit_retries == 2


async def test_order_is_not_retried_by_the_client_on_rate_limit(sim: KisSimulator, make_client) -> None:
    client = make_client(use_hashkey=False)
    await client.quote(CODE)
    sim.faults.rate_limit_next = 1
    with pytest.raises(KisRateLimited):
        await client.place_order(OrderSide.BUY, CODE, 1, None)
    assert sim.orders_accepted == 0


async def test_submitter_resends_only_what_the_gateway_refused(sim: KisSimulator, make_client) -> None:
    client = make_client(use_hashkey=False)
    submitter = OrderSubmitter(client, lookup_interval=0.05)
    await client.quote(CODE)
    sim.faults.rate_limit_next = 2
    sim.faults.paths = (p.PATH_ORDER_CASH,)
    placed = await submitter.place(OrderSide.BUY, CODE, 1, None)
    assert placed.attempts == 3 and not placed.reconciled
    assert sim.orders_accepted == 1


async def test_no_order_retried_on_timeout(sim: KisSimulator, make_client) -> None:
    """The order reaches KIS but the reply is late: found by lookup, never sent twice."""
    client = make_client(order_timeout=0.3)
    submitter = OrderSubmitter(client, lookup_interval=0.05)
    await client.quote(CODE)
    sim.faults.response_delay_seconds = 1.0
    sim.faults.paths = (p.PATH_ORDER_CASH,)
    placed = await submitter.place(OrderSide.BUY, CODE, 7, None)
    sim.faults.clear()
    assert placed.reconciled and placed.attempts == 1
    assert sim.orders_accepted == 1
    executions = await client.executions(sim.today(), sim.today())
    assert [e.order_no for e in executions] == [placed.ack.order_no]
    assert executions[0].quantity == 7


async def test_order_lost_before_reaching_kis_is_reported_uncertain(sim: KisSimulator, make_client) -> None:
    """A 5xx without envelope and no order in the listing: report, never re-send."""
    client = make_client()
    submitter = OrderSubmitter(client, lookups=2, lookup_interval=0.05)
    await client.quote(CODE)
    sim.faults.error_5xx_next = 1
    sim.faults.paths = (p.PATH_ORDER_CASH,)
    with pytest.raises(KisOrderUncertain):
        await submitter.place(OrderSide.BUY, CODE, 1, None)
    assert sim.orders_accepted == 0
    assert sim.apis["real"].requests  # and nothing more was sent to order-cash


async def test_order_processed_then_5xx_is_reconciled(sim: KisSimulator, make_client) -> None:
    client = make_client()
    submitter = OrderSubmitter(client, lookup_interval=0.05)
    sim.faults.error_5xx_after_next = 1
    sim.faults.paths = (p.PATH_ORDER_CASH,)
    placed = await submitter.place(OrderSide.BUY, CODE, 2, None)
    assert placed.reconciled and sim.orders_accepted == 1


async def test_unreachable_server_is_a_transport_error(make_client) -> None:
    client = KisRestClient(KisEndpoint("real", "http://127.0.0.1:9"), new_credentials(), MemoryTokenStore(),
                           timeout=0.5)
    with pytest.raises(KisTransportError):
        await client.quote(CODE)
    await client.aclose()


async def test_simulator_refuses_over_limit_bursts_from_an_unpaced_client(sim: KisSimulator) -> None:
    """The server side of the limit: an unpaced burst meets EGW00201, as on KIS."""
    creds = new_credentials()
    fast = KisRestClient(KisEndpoint("virtual", sim.rest_url("virtual")), creds, requests_per_second=1000)
    headers = {"authorization": f"Bearer {await fast.tokens.get()}", "appkey": creds.app_key,
               "appsecret": creds.app_secret, "tr_id": "FHKST01010100"}
    with pytest.raises(KisRateLimited):
        await asyncio.gather(*(fast._send("GET", p.PATH_INQUIRE_PRICE, "FHKST01010100", headers,
                                          {"FID_INPUT_ISCD": CODE}, None, False) for _ in range(10)))
    await fast.aclose()


async def test_buying_power_and_bars(sim: KisSimulator, make_client) -> None:
    client = make_client()
    power = await client.buying_power(CODE, None)
    state = sim.market.get(CODE)
    assert state is not None
    assert power.calc_price == state.limits[1] and power.max_quantity > 0
    bars = await client.bars(CODE, "D")
    assert 50 < len(bars) <= 100 and bars[0].date > bars[-1].date
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in bars)
    weekly = await client.bars(CODE, "W")
    monthly = await client.bars(CODE, "M")
    assert weekly and monthly and monthly[0].date >= monthly[-1].date


async def test_simulator_state_survives_a_restart(database) -> None:
    from chatbot.storage.sim_state import DbSimStateStore

    creds = new_credentials()
    store = MemoryTokenStore()
    sim1 = KisSimulator(SimulatorOptions(tick_interval=0), DbSimStateStore(database))
    await sim1.start()
    client = KisRestClient(KisEndpoint("real", sim1.rest_url(), "simulator"), creds, store)
    await client.place_order(OrderSide.BUY, CODE, 3, None)
    state = sim1.market.get(CODE)
    assert state is not None
    low = p.round_down_to_tick(state.limits[0] + 2 * p.tick_size(state.price))
    resting = await client.place_order(OrderSide.BUY, CODE, 1, low)
    await client.aclose()
    await sim1.stop()

    sim2 = KisSimulator(SimulatorOptions(tick_interval=0), DbSimStateStore(database))
    await sim2.start()
    # a new port, the same environment: the cached token is still valid there
    client2 = KisRestClient(KisEndpoint("real", sim2.rest_url(), "simulator"), creds, store)
    bal = await client2.balance()
    assert [(h.code, h.quantity) for h in bal.holdings] == [(CODE, 3)]
    assert [o.order_no for o in await client2.open_orders()] == [resting.order_no]
    assert client2.tokens.issued == 0
    again = await client2.place_order(OrderSide.BUY, CODE, 1, None)
    assert int(again.order_no) > int(resting.order_no)  # order numbers continue
    await client2.aclose()
    await sim2.stop()
