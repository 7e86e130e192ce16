"""The real-time feed over real loopback sockets: KIS WebSocket client against the simulator."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import websockets

from chatbot.kis import protocol as p
from chatbot.kis.frames import FillNotice, FrameError, LegacyFillNotice, OrderBook, Tick, parse_frame
from chatbot.kis.models import OrderSide
from chatbot.kis.realtime import (
    Disconnected,
    RealtimeClient,
    Reconnected,
    SubscriptionError,
    SubscriptionLimitError,
)
from chatbot.kis.rest import KisEndpoint, KisRestClient
from chatbot.sim.server import KisSimulator, SimulatorOptions
from tests.helpers import new_credentials

CODE = "005930"


@pytest.fixture
async def sim() -> AsyncIterator[KisSimulator]:
    simulator = KisSimulator(SimulatorOptions(tick_interval=0, pingpong_interval=0.2))
    await simulator.start()
    yield simulator
    await simulator.stop()


class Feed:
    def __init__(self, sim: KisSimulator, flavour: str = "real") -> None:
        self.rest = KisRestClient(KisEndpoint(flavour, sim.rest_url(flavour)), new_credentials())  # type: ignore[arg-type]
        self.client = RealtimeClient(sim.ws_url(flavour), self.rest.approval_key, backoff_initial=0.05,  # type: ignore[arg-type]
                                     backoff_max=0.5)
        self.events: list[Any] = []
        self.client.add_listener(self.events.append)

    async def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 60.0) -> Any:
        async def find() -> Any:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                await asyncio.sleep(0.01)
        return await asyncio.wait_for(find(), timeout)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
async def feed(sim: KisSimulator) -> AsyncIterator[Feed]:
    f = Feed(sim)
    await f.client.start()
    yield f
    await f.client.aclose()
    await f.rest.aclose()


async def until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


def server_subs(sim: KisSimulator, flavour: str = "real") -> set[tuple[str, str]]:
    return {k for s in sim.realtime[flavour].sessions for k in s.subscriptions}  # type: ignore[index]


async def test_ticks_match_rest_prices(sim: KisSimulator, feed: Feed) -> None:
    await feed.client.subscribe(p.WS_TRADE, CODE)
    for _ in range(5):
        await sim.tick()
    quote = await feed.rest.quote(CODE)  # the market after the 5 ticks (it moves only when told to)
    # the 5th tick's frame, whenever it comes (the cumulative volume grows with every tick)
    await feed.wait_for(lambda e: isinstance(e, Tick) and e.volume == quote.volume)
    ticks = feed.of(Tick)
    last = ticks[-1]
    assert last.price == quote.price and last.code == CODE and len(last) == 46
    assert last.volume == quote.volume and last.high == quote.high and last.low == quote.low
    assert isinstance(last.change_rate, type(quote.change_rate)) and last.timestamp.tzinfo is not None
    assert {e.code for e in ticks} == {CODE}  # nothing for symbols nobody subscribed


async def test_every_tick_field_is_typed(sim: KisSimulator, feed: Feed) -> None:
    await feed.client.subscribe(p.WS_TRADE, CODE)
    await sim.tick()
    tick: Tick = await feed.wait_for(lambda e: isinstance(e, Tick))
    names = [n for n, v in vars(Tick).items() if isinstance(v, property)]
    assert len(names) >= 47  # 46 fields + timestamp
    for name in names:
        getattr(tick, name)  # each converts without error
    assert tick.as_dict()["STCK_PRPR"] == str(tick.price)


async def test_orderbook(sim: KisSimulator, feed: Feed) -> None:
    await feed.client.subscribe(p.WS_ORDERBOOK, CODE)
    await sim.tick()
    book: OrderBook = await feed.wait_for(lambda e: isinstance(e, OrderBook))
    assert len(book) == 59 and book.asks[0] > book.bids[0] and len(book.bid_sizes) == 10


async def test_shared_subscriptions_are_reference_counted(sim: KisSimulator, feed: Feed) -> None:
    await feed.client.subscribe(p.WS_TRADE, CODE)
    await feed.client.subscribe(p.WS_TRADE, CODE)
    await feed.client.subscribe(p.WS_TRADE, "000660")
    assert feed.client.subscriptions[(p.WS_TRADE, CODE)] == 2
    assert server_subs(sim) == {(p.WS_TRADE, CODE), (p.WS_TRADE, "000660")}
    await feed.client.unsubscribe(p.WS_TRADE, CODE)
    await asyncio.sleep(0.1)
    assert (p.WS_TRADE, CODE) in server_subs(sim)  # one consumer still holds it
    await feed.client.unsubscribe(p.WS_TRADE, CODE)
    await until(lambda: server_subs(sim) == {(p.WS_TRADE, "000660")})  # the last one unregisters it


async def test_subscription_cap_gives_a_clear_error(sim: KisSimulator, feed: Feed) -> None:
    cap = p.WS_CLIENT_MAX_SUBSCRIPTIONS  # 40, as KIS's own client keeps it (the server takes 41)
    codes = list(sim.market.symbols)[:cap + 1]
    for code in codes[:cap]:
        await feed.client.subscribe(p.WS_TRADE, code)
    with pytest.raises(SubscriptionLimitError):
        await feed.client.subscribe(p.WS_TRADE, codes[cap])
    assert len(server_subs(sim)) == cap


async def test_server_cap_refusal_is_raised(sim: KisSimulator) -> None:
    f = Feed(sim)
    f.client.max_subscriptions = 100  # a client that does not know the cap still gets an error, not silence
    await f.client.start()
    try:
        codes = list(sim.market.symbols)[:42]
        for code in codes[:41]:
            await f.client.subscribe(p.WS_TRADE, code)
        with pytest.raises(SubscriptionError) as info:
            await f.client.subscribe(p.WS_TRADE, codes[41])
        assert info.value.msg_cd == p.OPSP_MAX_SUBSCRIPTIONS
        assert (p.WS_TRADE, codes[41]) not in f.client.subscriptions
    finally:
        await f.client.aclose()
        await f.rest.aclose()


@pytest.mark.parametrize("flavour", ["real", "virtual"])
async def test_fill_notice_is_decrypted(sim: KisSimulator, flavour: str) -> None:
    sim.throttles["virtual"].limit = 50
    f = Feed(sim, flavour)
    await f.client.start()
    try:
        await f.rest.balance()  # binds the app key to its account
        await f.client.subscribe(p.WS_NOTICE[flavour], "myhtsid")  # type: ignore[index]
        ack = await f.rest.place_order(OrderSide.BUY, CODE, 3, None)
        fill: FillNotice = await f.wait_for(lambda e: isinstance(e, FillNotice) and e.is_fill)
        accepted = [e for e in f.of(FillNotice) if not e.is_fill]
        assert accepted and accepted[0].order_no == ack.order_no and accepted[0].accept_code == "1"
        assert (fill.order_no, fill.code, fill.quantity, fill.side) == (ack.order_no, CODE, 3, OrderSide.BUY)
        assert fill.price == sim.market.get(CODE).price and fill.name == "삼성전자"  # type: ignore[union-attr]
        assert fill.account == str(f.rest.account).replace("-", "") and fill.branch == ack.branch
        assert len(fill) == 26 and fill.customer_id == "myhtsid"
    finally:
        await f.client.aclose()
        await f.rest.aclose()


async def test_resting_limit_fill_notice(sim: KisSimulator, feed: Feed) -> None:
    await feed.rest.balance()
    await feed.client.subscribe("H0STCNI0", "me")
    state = sim.market.get(CODE)
    assert state is not None
    limit = p.round_down_to_tick(state.price - 3 * p.tick_size(state.price))
    ack = await feed.rest.place_order(OrderSide.BUY, CODE, 2, limit)
    await asyncio.sleep(0.05)
    assert not [e for e in feed.of(FillNotice) if e.is_fill]
    sim.set_price(CODE, limit)
    fill = await feed.wait_for(lambda e: isinstance(e, FillNotice) and e.is_fill)
    assert (fill.order_no, fill.price, fill.quantity) == (ack.order_no, limit, 2)


async def test_other_accounts_notices_are_not_delivered(sim: KisSimulator, feed: Feed) -> None:
    await feed.rest.balance()
    await feed.client.subscribe("H0STCNI0", "me")
    other = KisRestClient(KisEndpoint("real", sim.rest_url("real")), new_credentials())
    await other.place_order(OrderSide.BUY, CODE, 1, None)
    await other.aclose()
    await asyncio.sleep(0.2)
    assert feed.of(FillNotice) == []


async def test_survives_a_forced_drop(sim: KisSimulator, feed: Feed) -> None:
    await feed.client.subscribe(p.WS_TRADE, CODE)
    await feed.client.subscribe(p.WS_TRADE, "000660")
    heard_before = feed.client.last_heard
    dropped = await sim.control("drop-websockets", {})
    assert dropped["dropped"] == 1
    started = asyncio.get_running_loop().time()
    await feed.wait_for(lambda e: isinstance(e, Reconnected), timeout=5)
    (drop,) = feed.of(Disconnected)
    # when the server was last heard on the dropped connection: the subscriptions' acks at least, not later
    # than the drop (the gap the alert engines judge starts there)
    assert drop.last_heard is not None and heard_before is not None and heard_before <= drop.last_heard <= time.time()
    for _ in range(50):
        if server_subs(sim) == {(p.WS_TRADE, CODE), (p.WS_TRADE, "000660")}:
            break
        await asyncio.sleep(0.02)
    assert server_subs(sim) == {(p.WS_TRADE, CODE), (p.WS_TRADE, "000660")}
    assert asyncio.get_running_loop().time() - started < 5
    count = len(feed.of(Tick))
    await sim.tick()
    await feed.wait_for(lambda e: isinstance(e, Tick) and len(feed.of(Tick)) > count)


async def test_a_reconnect_opens_its_session_with_a_fresh_approval_key(sim: KisSimulator, feed: Feed) -> None:
    """KIS checks the approval key when a session opens and a key lives 24 h (KIS_API.md §3.3): a reconnect a
    day after the first connection must not re-register with the old key (refused, OPSP0011, and nobody waits
    on a re-registration to send it again: the feed would stay silent)."""
    await feed.client.subscribe(p.WS_TRADE, CODE)
    await sim.control("expire-approvals", {})
    await sim.control("drop-websockets", {})
    await feed.wait_for(lambda e: isinstance(e, Reconnected), timeout=5)
    for _ in range(100):
        if server_subs(sim) == {(p.WS_TRADE, CODE)}:
            break
        await asyncio.sleep(0.02)
    assert server_subs(sim) == {(p.WS_TRADE, CODE)}


async def test_pingpong_is_answered(sim: KisSimulator, feed: Feed) -> None:
    await feed.client.subscribe(p.WS_TRADE, CODE)
    (session,) = sim.realtime["real"].sessions
    await until(lambda: session.pongs >= 2)  # two of the simulator's pings answered (however long they take)


async def test_second_session_for_an_app_key_is_refused(sim: KisSimulator, feed: Feed) -> None:
    await feed.client.subscribe(p.WS_TRADE, CODE)
    twin = RealtimeClient(sim.ws_url("real"), feed.rest.approval_key, ack_timeout=2)
    await twin.start()
    try:
        with pytest.raises(SubscriptionError) as info:
            await twin.subscribe(p.WS_TRADE, "000660")
        assert info.value.msg_cd == p.OPSP_APPKEY_IN_USE
    finally:
        await twin.aclose()


async def test_bad_frames_are_logged_and_skipped(sim: KisSimulator, caplog: pytest.LogCaptureFixture) -> None:
    """A server that sends garbage between good frames: the client logs, skips, and goes on."""
    f = Feed(sim)
    await f.client.start()
    await f.client.subscribe(p.WS_TRADE, CODE)
    (session,) = sim.realtime["real"].sessions
    good = "0|H0STCNT0|001|" + "^".join(["005930", "090000", "70000"] + ["1"] * 30 + ["20260101"] + ["1"] * 12)
    bad = ["0|H0STCNT0|001|005930^090000", "0|H0XXXXX0|001|a^b", "0|H0STCNT0|002|" + "^".join(["1"] * 46),
           "0|H0STCNT0", "1|H0STCNI0|001|not-base64!!", "{not json", "7|?|?|?"]
    with caplog.at_level(logging.WARNING):
        for text in bad:
            session.send(text)
        session.send(good)
        tick = await f.wait_for(lambda e: isinstance(e, Tick) and e.price == 70000)
    assert tick.code == CODE and f.client.bad_frames == len(bad)
    assert f.client.connected.is_set() and f.client.reconnects == 0
    assert "bad realtime" in caplog.text
    await f.client.aclose()
    await f.rest.aclose()


def test_parse_frame_multi_record_and_errors() -> None:
    record = ["005930", "090001", "70100"] + ["0"] * 30 + ["20260102"] + ["0"] * 12
    frame = "0|H0STCNT0|003|" + "^".join(record * 3)
    ticks = parse_frame(frame)
    assert len(ticks) == 3 and all(t.price == 70100 for t in ticks)
    for bad in ("0|H0STCNT0|002|" + "^".join(record), "0|H0STCNT0|x|1", "2|H0STCNT0|001|a", "0|H0ZZZZ0|001|a"):
        with pytest.raises(FrameError):
            parse_frame(bad)


def test_notice_layouts() -> None:
    key, iv = "k" * 32, "i" * 16
    fields26 = ["id", "1234567801", "0000001001", "", "02", "0", "01", "0", CODE, "3", "70000", "090000", "0", "2",
                "2", "06010", "3", "name", "0", "1", "N", "   ", "10", "", "삼성전자", "0"]
    payload = p.notice_encrypt("^".join(fields26), key, iv)
    (notice,) = parse_frame(f"1|H0STCNI0|001|{payload}", lambda tr, data: p.notice_decrypt(data, key, iv))
    assert isinstance(notice, FillNotice) and notice.is_fill and notice.price == 70000 and notice.exchange == "1"
    fields23 = fields26[:18] + ["삼성전자", "10", "", "삼성전자", "0"]
    (legacy,) = parse_frame("1|H0STCNI9|001|" + p.notice_encrypt("^".join(fields23), key, iv),
                            lambda tr, data: p.notice_decrypt(data, key, iv))
    assert isinstance(legacy, LegacyFillNotice) and legacy.name == "삼성전자" and legacy.exchange == ""


async def test_python_kis_style_sessions_get_23_field_notices(sim: KisSimulator) -> None:
    """websocket-client sends an Origin header and no User-Agent; python-kis parses only 23 fields."""
    rest = KisRestClient(KisEndpoint("real", sim.rest_url("real")), new_credentials())
    await rest.balance()
    approval = await rest.approval_key()
    async with websockets.connect(sim.ws_url("real") + "/tryitout", origin="http://127.0.0.1",  # type: ignore[arg-type]
                                  user_agent_header=None) as ws:
        await ws.send(json.dumps({"header": {"approval_key": approval, "custtype": "P", "tr_type": "1",
                                             "content-type": "utf-8"},
                                  "body": {"input": {"tr_id": "H0STCNI0", "tr_key": "hts"}}}))
        ack = json.loads(await ws.recv())
        assert ack["header"]["encrypt"] == "Y" and len(ack["body"]["output"]["key"]) == 32
        await rest.place_order(OrderSide.BUY, CODE, 1, None)
        frames = []
        while len(frames) < 2:
            text = await asyncio.wait_for(ws.recv(), 5)
            if text.startswith("1|"):
                frames.append(text)
    key, iv = ack["body"]["output"]["key"], ack["body"]["output"]["iv"]
    decoded = [p.notice_decrypt(f.split("|", 3)[3], key, iv).split("^") for f in frames]
    assert all(len(d) == 23 for d in decoded)
    await rest.aclose()


def test_typed_compiled_path_and_its_fallback_agree_on_types_and_errors() -> None:
    full = ["005930", "090001", "70100", "2", "-100", "-0.14", "70050.50"] + ["7"] * 26 + ["20260102", "20", "N"] \
        + ["3"] * 4 + ["1.50", "12", "2.50", "0", "N", "70000"]
    tick = parse_frame("0|H0STCNT0|001|" + "^".join(full))[0]
    typed = tick.typed()  # no empty field: the compiled straight-line path
    by_property = {int(v.__doc__.split()[1]): getattr(tick, n) for n, v in vars(Tick).items()
                   if isinstance(v, property) and (v.__doc__ or "").startswith("field")}
    assert [(type(typed[i]), typed[i]) for i in sorted(by_property)] == \
        [(type(by_property[i]), by_property[i]) for i in sorted(by_property)]
    assert typed[4] == -100 and str(typed[6]) == "70050.50" and typed[35] is False
    garbage = parse_frame("0|H0STCNT0|001|" + "^".join(full[:13] + ["x"] + full[14:]))[0]
    with pytest.raises(ValueError):
        garbage.typed()  # the same error the property gives
    book = parse_frame("0|H0STASP0|001|" + "^".join(["005930", "090000", "0"] + ["100"] * 40 + ["5"] * 16))[0]
    assert book.typed()[43] == 5 and book.typed()[0] == "005930"  # total_ask_size, code


def test_typed_converts_every_field_like_the_properties() -> None:
    record = ["005930", "090001", "70100", "2", "100", "0.14", "70050.5"] + ["7"] * 26 + ["20260102", "20", "Y"] \
        + ["3"] * 4 + ["1.5", "", "2.5", "0", "N", "70000"]
    tick = parse_frame("0|H0STCNT0|001|" + "^".join(record))[0]
    typed = tick.typed()
    assert len(typed) == 46 and typed[2] == 70100 and typed[41] == 0 and typed[35] is True
    names = [n for n, v in vars(type(tick)).items() if isinstance(v, property) and (v.__doc__ or "").startswith("field")]
    for name in names:
        index = int(vars(type(tick))[name].__doc__.split()[1])
        assert typed[index] == getattr(tick, name), name


async def test_a_subscribe_cancelled_as_its_ack_comes_is_cancelled() -> None:
    """A stop that cancels a subscribe in the very step its ack arrives must stop it: on Python 3.11,
    asyncio.wait_for returned the ack instead (the cancel swallowed), and a loop around it ran on."""

    async def no_key() -> str:
        raise AssertionError("not connected: nothing is sent")

    client = RealtimeClient("ws://127.0.0.1:9", no_key)  # never started: the ack is ours to give
    task = asyncio.create_task(client.subscribe(p.WS_TRADE, CODE))
    while (p.WS_TRADE, CODE) not in client._acks:
        await asyncio.sleep(0)
    await asyncio.sleep(0)  # the subscribe now waits for its ack
    client._acks[(p.WS_TRADE, CODE)].set_result(None)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
