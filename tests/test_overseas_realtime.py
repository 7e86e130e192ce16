"""The US realtime feed over loopback: HDFSCNT0 ticks and H0GSCNI0/H0GSCNI9 notices, parsed and typed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from chatbot.kis import overseas_protocol as o
from chatbot.kis import protocol as p
from chatbot.kis.frames import FrameError, Tick
from chatbot.kis.models import OrderSide
from chatbot.kis.overseas import KisOverseasClient, nearest_kst
from chatbot.kis.overseas_frames import (
    UsFillNotice,
    UsOrderBook,
    UsPortalFillNotice,
    UsShortFillNotice,
    UsTick,
    parse_frame,
)
from chatbot.kis.overseas_protocol import UsExchange
from chatbot.kis.realtime import RealtimeClient, SubscriptionError
from chatbot.kis.rest import KisEndpoint, KisRestClient
from chatbot.kis.us_broker import fill_of
from chatbot.markets.us_hours import NEW_YORK, SEOUL
from chatbot.sim.server import KisSimulator, SimulatorOptions
from tests.helpers import new_credentials

HTS_ID = "tester01"


@pytest.fixture
async def sim() -> AsyncIterator[KisSimulator]:
    simulator = KisSimulator(SimulatorOptions(tick_interval=0, pingpong_interval=0.2, us_always_open=True,
                                              requests_per_second={"real": 50, "virtual": 50}))
    await simulator.start()
    yield simulator
    await simulator.stop()


class Feed:
    def __init__(self, sim: KisSimulator, flavour: str = "real", **options: Any) -> None:
        self.rest = KisRestClient(KisEndpoint(flavour, sim.rest_url(flavour)), new_credentials(),  # type: ignore[arg-type]
                                  requests_per_second=40)
        self.us = KisOverseasClient(self.rest)
        self.client = RealtimeClient(sim.ws_url(flavour), self.rest.approval_key, parser=parse_frame,  # type: ignore[arg-type]
                                     **options)
        self.events: list[Any] = []
        self.client.add_listener(self.events.append)

    async def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 10.0) -> Any:
        async def find() -> Any:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                await asyncio.sleep(0.01)
        return await asyncio.wait_for(find(), timeout)

    async def close(self) -> None:
        await self.client.aclose()
        await self.rest.aclose()


@pytest.fixture
async def feeds(sim: KisSimulator) -> AsyncIterator[Callable[..., Any]]:
    made: list[Feed] = []

    async def make(flavour: str = "real", **options: Any) -> Feed:
        feed = Feed(sim, flavour, **options)
        await feed.client.start()
        made.append(feed)
        return feed

    yield make
    for feed in made:
        await feed.close()


async def test_us_ticks_parse_typed_and_match_rest(sim: KisSimulator, feeds: Any) -> None:
    feed = await feeds()
    await feed.client.subscribe(o.WS_US_TRADE, "DNASAAPL")
    await feed.client.subscribe(p.WS_TRADE, "005930")  # one connection, both markets
    for _ in range(5):
        await sim.tick()
    await feed.wait_for(lambda e: isinstance(e, UsTick) and e.volume >= 5)
    await feed.wait_for(lambda e: isinstance(e, Tick) and e.code == "005930")
    last = [e for e in feed.events if isinstance(e, UsTick)][-1]
    quote = await feed.us.quote("AAPL", UsExchange.NASDAQ)
    assert len(last) == 26 and last.realtime_key == "DNASAAPL" and last.symbol == "AAPL"
    assert last.price == quote.price.amount and last.volume == quote.volume and last.exchange is UsExchange.NASDAQ
    assert last.change == quote.change.amount and last.decimals == 4 and last.session_code == o.MTYP_REGULAR
    assert last.timestamp.tzinfo == NEW_YORK and last.kst_timestamp.tzinfo == SEOUL
    assert last.timestamp == last.kst_timestamp
    typed = last.typed()
    assert isinstance(typed[11], Decimal) and isinstance(typed[20], int) and isinstance(typed[21], Decimal)
    assert typed[11] == last.price and typed[0] == "DNASAAPL"
    assert {e.symbol for e in feed.events if isinstance(e, UsTick)} == {"AAPL"}


async def test_us_book_frames(sim: KisSimulator, feeds: Any) -> None:
    feed = await feeds()
    await feed.client.subscribe(o.WS_US_ORDERBOOK, "DNYSKO")
    await sim.tick()
    book = await feed.wait_for(lambda e: isinstance(e, UsOrderBook))
    assert book.symbol == "KO" and book.ask > book.bid > 0 and book.ask - book.bid == Decimal("0.02")


@pytest.mark.parametrize(("flavour", "tr_id"), [("real", "H0GSCNI0"), ("virtual", "H0GSCNI9")])
async def test_fill_notice_after_an_order(sim: KisSimulator, feeds: Any, flavour: str, tr_id: str) -> None:
    feed = await feeds(flavour)
    await feed.client.subscribe(tr_id, HTS_ID)
    state = sim.us_market.get("AAPL")
    assert state is not None
    price = Decimal(state.price).scaleb(-4)
    ack = await feed.us.place(UsExchange.NASDAQ, OrderSide.BUY, "AAPL", 3, price + 1)
    fill = await feed.wait_for(lambda e: isinstance(e, UsFillNotice) and e.is_fill)
    accepted = next(e for e in feed.events if isinstance(e, UsFillNotice) and not e.is_fill)
    assert len(fill) == 25 and fill.order_no == ack.order_no and fill.branch == ack.branch
    assert (fill.symbol, fill.quantity, fill.price, fill.side) == ("AAPL", 3, price, OrderSide.BUY)
    assert fill.exchange is UsExchange.NASDAQ and fill.order_quantity == 3 and not fill.refused
    assert fill.account == feed.rest.account.cano + feed.rest.account.product and fill.customer_id == HTS_ID
    assert fill.order_kind == "2" and fill.debt_class == o.DEBT_CASH  # a limit order, cash
    assert (accepted.accept_code, accepted.quantity, accepted.price) == ("1", 3, price + 1)  # order notice: order's
    assert accepted.order_quantity == 0  # ODER_QTY is left out of order notices (§8.3)


async def test_a_notice_time_reaches_the_port_as_kst(sim: KisSimulator, feeds: Any) -> None:
    """The clock of a US notice's STCK_CNTG_HOUR is an unverified choice made once (o.NOTICE_TIME_ZONE): what
    the simulator writes in it, the client reads in it; the port's fill time is KST (as the fill watcher and
    the journal take it)."""
    feed = await feeds()
    await feed.client.subscribe("H0GSCNI0", HTS_ID)
    state = sim.us_market.get("AAPL")
    assert state is not None
    await feed.us.place(UsExchange.NASDAQ, OrderSide.BUY, "AAPL", 1, Decimal(state.price).scaleb(-4) + 1)
    notice = await feed.wait_for(lambda e: isinstance(e, UsFillNotice) and e.is_fill)
    fill = fill_of(notice)
    assert fill is not None
    filled_at = nearest_kst(fill.time, sim.now())
    assert abs((sim.now() - filled_at).total_seconds()) < 120  # KST of the fill, not the exchange's clock


async def test_cancel_notice(sim: KisSimulator, feeds: Any) -> None:
    feed = await feeds()
    await feed.client.subscribe("H0GSCNI0", HTS_ID)
    state = sim.us_market.get("TSLA")
    assert state is not None
    low = (Decimal(state.price).scaleb(-4) / 2).quantize(Decimal("0.01"))
    ack = await feed.us.place(UsExchange.NASDAQ, OrderSide.BUY, "TSLA", 2, low)
    cancel = await feed.us.cancel(UsExchange.NASDAQ, "TSLA", ack.order_no)
    notice = await feed.wait_for(lambda e: isinstance(e, UsFillNotice) and e.revise_cancel == "2")
    assert (notice.order_no, notice.original_order_no, notice.quantity) == (cancel.order_no, ack.order_no, 2)


@pytest.mark.parametrize(("layout", "cls"), [("24", UsPortalFillNotice), ("21", UsShortFillNotice)])
async def test_notice_layouts(sim: KisSimulator, feeds: Any, layout: str, cls: type) -> None:
    sim.options.us_notice_layout = layout
    feed = await feeds()
    await feed.client.subscribe("H0GSCNI0", HTS_ID)
    state = sim.us_market.get("AAPL")
    assert state is not None
    await feed.us.place(UsExchange.NASDAQ, OrderSide.BUY, "AAPL", 1, Decimal(state.price).scaleb(-4) + 1)
    fill = await feed.wait_for(lambda e: isinstance(e, cls) and e.is_fill)
    assert len(fill) == int(layout) and fill.exchange is UsExchange.NASDAQ and fill.quantity == 1
    assert fill.price12 == ""  # CNTG_UNPR12 is not in these layouts


async def test_us_and_domestic_subscriptions_share_the_session_cap(sim: KisSimulator, feeds: Any) -> None:
    feed = await feeds(max_subscriptions=60)  # let the server be the one to refuse
    domestic = list(sim.market.symbols)[:21]
    us = [o.realtime_key(UsExchange.of_market(s.market), s.code) for s in sim.us_market.directory.symbols("US")[:20]]
    for code in domestic:
        await feed.client.subscribe(p.WS_TRADE, code)
    for key in us:
        await feed.client.subscribe(o.WS_US_TRADE, key)
    with pytest.raises(SubscriptionError) as info:
        await feed.client.subscribe(o.WS_US_TRADE, "DNASAAPL")
    assert info.value.msg_cd == p.OPSP_MAX_SUBSCRIPTIONS


# -- frames, without a network ---------------------------------------------------------------------------
def _tick_fields(symbol: str = "AAPL", price: str = "190.2500") -> list[str]:
    return [f"DNAS{symbol}", symbol, "4", "20261127", "20261127", "093001", "20261127", "233001", "190.1000",
            "191.0000", "189.5000", price, "5", "-1.2500", "-0.65", "190.2400", "190.2600", "300", "200", "15",
            "123456", "23456789", "60000", "63456", "105.76", "2"]


def test_multi_record_and_broken_frames() -> None:
    two = parse_frame("0|HDFSCNT0|002|" + "^".join(_tick_fields() + _tick_fields("TSLA", "250.0000")))
    assert [(t.symbol, t.price, t.change, t.session_code) for t in two] == [  # type: ignore[attr-defined]
        ("AAPL", Decimal("190.2500"), Decimal("-1.2500"), "2"), ("TSLA", Decimal("250.0000"), Decimal("-1.2500"), "2")]
    unsigned = _tick_fields()
    unsigned[13] = "1.2500"  # a DIFF sent without its sign still reads as a fall when SIGN says so
    assert parse_frame("0|HDFSCNT0|001|" + "^".join(unsigned))[0].change == Decimal("-1.2500")  # type: ignore[attr-defined]
    for bad in ("0|HDFSCNT0|001|" + "^".join(_tick_fields()[:25]),  # the 25-field list of KIS's newest sample
                "0|HDFSCNT0|002|" + "^".join(_tick_fields()), "0|HDFSCNT0|x|a", "0|HDFSCNT0",
                "1|H0GSCNI0|001|abcd"):  # encrypted, no key
        with pytest.raises(FrameError):
            parse_frame(bad)
    domestic = parse_frame("0|H0STCNT0|001|" + "^".join(["005930", "093001", "70000"] + ["0"] * 43))
    assert isinstance(domestic[0], Tick) and domestic[0].price == 70000


def test_notice_price_has_four_implied_decimals() -> None:
    fields = ["me", "1234567801", "0030000001", "", "02", "0", "2", "AAPL", "3", "001480100", "093001", "0", "2",
              "2", "06010", "3", "이름", "애플", "6", "10", "", "", "", "", "148.0100"]

    def decrypt(tr_id: str, payload: str) -> str:
        assert tr_id == "H0GSCNI9"
        return payload

    (notice,) = parse_frame("1|H0GSCNI9|001|" + "^".join(fields), decrypt)
    assert isinstance(notice, UsFillNotice) and notice.price == Decimal("148.0100")
    assert notice.exchange is UsExchange.NASDAQ and notice.price12 == "148.0100" and notice.is_fill
    fields[18] = "7"
    (short,) = parse_frame("1|H0GSCNI9|001|" + "^".join(fields[:21]), decrypt)
    assert isinstance(short, UsShortFillNotice) and short.exchange is UsExchange.NYSE
    with pytest.raises(FrameError):
        parse_frame("1|H0GSCNI9|001|" + "^".join(fields[:22]), decrypt)
