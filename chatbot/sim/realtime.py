"""The simulator's WebSocket side (KIS_API.md §5, §9 item 7).

Any path on the WebSocket port is accepted (bare, ``/tryitout``, ``/tryitout/<TR>``). A session
subscribes with an approval key; acks carry a per-session AES key/iv and ``encrypt: "Y"`` for the
notice TRs. Trade ticks (``H0STCNT0``) and order books (``H0STASP0``) follow the simulator's own
market, so the REST price and the ticks agree. An account's order events arrive, encrypted, on
the notice TRs of the sessions whose app key trades that account — 26 fields by default, 23 for
clients that look like python-kis (``websocket-client``'s handshake), or as the options say.
One record per frame. PINGPONG on an interval; any reply (text echo, pong frame, none) is fine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from chatbot.kis import overseas_protocol as o
from chatbot.kis import protocol as p
from chatbot.kis.protocol import Flavour
from chatbot.sim.exchange import OrderEvent
from chatbot.sim.market import SymbolState, Trade
from chatbot.sim.us_realtime import UsFeed

if TYPE_CHECKING:
    from chatbot.sim.server import KisSimulator

log = logging.getLogger(__name__)
QUEUE_LIMIT = 10_000
ENCRYPTED_TRS = p.WS_NOTICE_TRS | p.WS_OVERSEAS_NOTICE_TRS
KNOWN_TRS = frozenset({p.WS_TRADE, p.WS_ORDERBOOK}) | ENCRYPTED_TRS | o.WS_US_MARKET_TRS | frozenset(
    {"H0STANC0", "H0STMKO0", "H0STPGM0", "H0NXCNT0", "H0UNCNT0", "H0NXASP0", "H0UNASP0"})
_ALNUM = string.ascii_letters + string.digits


def _random_text(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


@dataclass(eq=False)
class Session:
    ws: web.WebSocketResponse
    legacy_notices: bool
    app_key: str | None = None
    subscriptions: set[tuple[str, str]] = field(default_factory=set)
    aes_key: str = field(default_factory=lambda: _random_text(32))
    aes_iv: str = field(default_factory=lambda: _random_text(16))
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    dropped: int = 0
    pongs: int = 0

    def send(self, text: str) -> None:
        if self.queue.full():
            self.dropped += 1
            return
        self.queue.put_nowait(text)


def _sign(diff: int) -> str:
    return "2" if diff > 0 else "5" if diff < 0 else "3"


def trade_fields(s: SymbolState, trade: Trade, business_date: str) -> list[str]:
    """The 46 H0STCNT0 fields of a simulated trade."""
    lower, upper = s.limits
    change = trade.price - s.base
    tick = s.tick_for(trade.price)
    vwap = s.value / s.volume if s.volume else trade.price
    strength = (s.buy_volume * 100 / s.sell_volume) if s.sell_volume else 100.0
    buy_ratio = (s.buy_volume * 100 / (s.buy_volume + s.sell_volume)) if (s.buy_volume + s.sell_volume) else 50.0
    return [
        s.instrument.code, trade.time, str(trade.price), p.change_sign(trade.price, s.base, lower, upper), str(change),
        f"{change * 100 / s.base:.2f}" if s.base else "0.00", f"{vwap:.2f}", str(s.open), str(s.high), str(s.low),
        str(trade.price + tick if trade.price + tick <= upper else trade.price), str(trade.price),
        str(trade.volume), str(s.volume), str(s.value), str(s.sell_count), str(s.buy_count),
        str(s.buy_count - s.sell_count), f"{strength:.2f}", str(s.sell_volume), str(s.buy_volume),
        "1" if trade.buyer_initiated else "5", f"{buy_ratio:.2f}",
        f"{s.volume * 100 / s.prev_volume:.2f}" if s.prev_volume else "0.00",
        s.open_time, _sign(trade.price - s.open), str(trade.price - s.open),
        s.high_time, _sign(trade.price - s.high), str(trade.price - s.high),
        s.low_time, _sign(trade.price - s.low), str(trade.price - s.low),
        business_date, "20", "N", str(100 + trade.volume), str(120 + trade.volume), str(50_000 + s.sell_volume),
        str(52_000 + s.buy_volume), f"{s.volume * 100 / s.listed_shares:.2f}" if s.listed_shares else "0.00",
        str(s.prev_volume // 2), f"{s.volume * 100 / max(1, s.prev_volume // 2):.2f}", "0", "N", str(s.base),
    ]


def orderbook_fields(s: SymbolState, trade: Trade) -> list[str]:
    """The 59 H0STASP0 fields: ten levels either side of the last trade."""
    lower, upper = s.limits
    asks, bids = [], []
    price = trade.price
    for _ in range(10):
        price += s.tick_for(price)
        asks.append(str(price if price <= upper else 0))
    price = trade.price
    for _ in range(10):
        bids.append(str(price if price >= lower else 0))
        price -= s.tick_for(max(1, price - 1))
    sizes = [str(100 * (i + 1) + trade.volume % 97) for i in range(10)]
    return ([s.instrument.code, trade.time, "0"] + asks + bids + sizes + sizes[::-1]
            + [str(sum(int(x) for x in sizes))] * 2 + ["0", "0", "0", "0", "0", "0", "3", "0.00", str(s.volume),
                                                       "0", "0", "0", "0", ""])


class RealtimeServer:
    def __init__(self, sim: KisSimulator, flavour: Flavour) -> None:
        self.sim = sim
        self.flavour = flavour
        self.sessions: set[Session] = set()
        self.frames_sent = 0
        sim.market.add_listener(self.on_trade)
        sim.exchange.add_order_listener(self.on_order_event)
        self.us = UsFeed(self)  # US trades and notices, on the same sessions (and the same cap)

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self.handle)
        return app

    # -- connections --------------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="WebSocket only")
        await ws.prepare(request)
        layout = self.sim.options.notice_layout
        legacy = layout == "23" or (layout == "auto" and "User-Agent" not in request.headers
                                    and "Origin" in request.headers)
        session = Session(ws, legacy)
        self.sessions.add(session)
        writer = asyncio.create_task(self._writer(session))
        pinger = asyncio.create_task(self._pinger(session))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(session, msg.data)
                elif msg.type == WSMsgType.PONG:
                    session.pongs += 1
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.sessions.discard(session)
            writer.cancel()
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await writer
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
        return ws

    async def _writer(self, session: Session) -> None:
        while True:
            text = await session.queue.get()
            try:
                await session.ws.send_str(text)
                self.frames_sent += 1
            except (ConnectionError, RuntimeError):
                return

    async def _pinger(self, session: Session) -> None:
        interval = self.sim.options.pingpong_interval
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            stamp = self.sim.now().strftime("%Y%m%d%H%M%S")
            session.send(json.dumps({"header": {"tr_id": p.WS_PINGPONG, "datetime": stamp}}))

    def drop_all(self) -> int:
        """Fault switch: cut every connection abruptly, as a network failure would."""
        count = 0
        for session in list(self.sessions):
            transport = session.ws._req.transport if session.ws._req is not None else None
            if transport is not None:
                transport.abort()
                count += 1
        return count

    # -- control messages ----------------------------------------------------------------------------------
    def _on_text(self, session: Session, text: str) -> None:
        try:
            message = json.loads(text)
            header, body = message["header"], message.get("body") or {}
        except (ValueError, KeyError, TypeError):
            session.send(self._ack("", "", "1", "OPSP0005", "JSON PARSING ERROR"))
            return
        tr_id = str(header.get("tr_id", ""))
        if tr_id == p.WS_PINGPONG:
            session.pongs += 1
            return
        if self.sim.options.notice_layout == "auto" and next(iter(header), "") == "approval_key":
            session.legacy_notices = True  # python-kis orders its header keys this way (§5.8)
        inputs = (body.get("input") or {}) if isinstance(body, dict) else {}
        tr_id, tr_key = str(inputs.get("tr_id", "")), str(inputs.get("tr_key", ""))
        app_key = self.sim.auth.approval_app_key(str(header.get("approval_key", "")), opening=session.app_key is None)
        if app_key is None:
            session.send(self._ack(tr_id, tr_key, "1", "OPSP0011", "invalid approval : NOT FOUND"))
            return
        if session.app_key is None:
            if any(s.app_key == app_key for s in self.sessions if s is not session):
                session.send(self._ack("(null)", "", "9", p.OPSP_APPKEY_IN_USE, "ALREADY IN USE appkey"))
                return
            session.app_key = app_key
        tr_type = str(header.get("tr_type", ""))
        if tr_id not in KNOWN_TRS or not tr_key:
            session.send(self._ack(tr_id, tr_key, "1", "OPSP0009", "SUBSCRIBE ERROR : invalid tr_id or tr_key"))
            return
        key = (tr_id, tr_key)
        if tr_type == p.WS_SUBSCRIBE:
            if key in session.subscriptions:
                session.send(self._ack(tr_id, tr_key, "1", p.OPSP_ALREADY_SUBSCRIBED, "ALREADY IN SUBSCRIBE"))
            elif len(session.subscriptions) >= self.sim.options.ws_max_subscriptions:
                session.send(self._ack(tr_id, tr_key, "1", p.OPSP_MAX_SUBSCRIPTIONS, "MAX SUBSCRIBE OVER"))
            else:
                session.subscriptions.add(key)
                if tr_id in (p.WS_TRADE, p.WS_ORDERBOOK):
                    self.sim.market.get(tr_key)  # in play from now on: its trades feed the subscription
                self.us.subscribed(tr_id, tr_key)
                session.send(self._ack(tr_id, tr_key, "0", self.sim.faults.ws_success_msg_cd or p.OPSP_SUBSCRIBED,
                                       "SUBSCRIBE SUCCESS", session, encrypt=tr_id in ENCRYPTED_TRS))
        elif tr_type == p.WS_UNSUBSCRIBE:
            if key in session.subscriptions:
                session.subscriptions.discard(key)
                session.send(self._ack(tr_id, tr_key, "0", p.OPSP_UNSUBSCRIBED, "UNSUBSCRIBE SUCCESS"))
            else:
                session.send(self._ack(tr_id, tr_key, "1", p.OPSP_NOT_SUBSCRIBED, "UNSUBSCRIBE ERROR(not found!)"))
        else:
            session.send(self._ack(tr_id, tr_key, "1", "OPSP0010", "invalid tr_type"))

    @staticmethod
    def _ack(tr_id: str, tr_key: str, rt_cd: str, msg_cd: str, msg1: str, session: Session | None = None,
             encrypt: bool = False) -> str:
        body: dict[str, Any] = {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1}
        if session is not None:
            body["output"] = {"iv": session.aes_iv, "key": session.aes_key}
        return json.dumps({"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "Y" if encrypt else "N"},
                           "body": body})

    # -- data ------------------------------------------------------------------------------------------------
    def on_trade(self, trade: Trade) -> None:
        if not self.sessions:
            return
        s = self.sim.market.get(trade.code)
        if s is None:
            return
        tick_key, book_key = (p.WS_TRADE, trade.code), (p.WS_ORDERBOOK, trade.code)
        tick_frame = book_frame = None
        for session in self.sessions:
            if tick_key in session.subscriptions:
                if tick_frame is None:
                    fields = trade_fields(s, trade, self.sim.market.today.strftime("%Y%m%d"))
                    tick_frame = f"0|{p.WS_TRADE}|001|" + "^".join(fields)
                session.send(tick_frame)
            if book_key in session.subscriptions:
                if book_frame is None:
                    book_frame = f"0|{p.WS_ORDERBOOK}|001|" + "^".join(orderbook_fields(s, trade))
                session.send(book_frame)

    def on_order_event(self, event: OrderEvent) -> None:
        expected = ("V" if self.flavour == "virtual" else "")
        if not event.account_id.startswith(expected) or (expected == "" and event.account_id.startswith("V")):
            return  # this flavour's ledger only
        owners = self.sim.auth.app_keys_of(event.account_id)
        for session in self.sessions:
            if session.app_key not in owners:
                continue
            for tr_id, tr_key in session.subscriptions:
                if tr_id in p.WS_NOTICE_TRS:
                    fields = self._notice_fields(event, tr_key, session.legacy_notices)
                    payload = p.notice_encrypt("^".join(fields), session.aes_key, session.aes_iv)
                    session.send(f"1|{tr_id}|001|{payload}")

    def _notice_fields(self, e: OrderEvent, hts_id: str, legacy: bool) -> list[str]:
        o = e.order
        s = self.sim.market.get(o.code)
        name = s.instrument.name_ko if s else ""
        filled = e.kind == "filled"
        revise_cancel = {"cancelled": "2", "revised": "1"}.get(e.kind, "0")
        if e.kind == "change_refused":  # a refused revision or cancellation: RCTF_CLS says which
            revise_cancel = {"revise": "1", "cancel": "2"}[o.kind]
        accept = {"accepted": "1"}.get(e.kind, "2")
        common = [hts_id, e.account_id.lstrip("V").replace("-", ""), o.order_no, o.original_order_no, o.side,
                  revise_cancel, o.division, "0", o.code, str(e.quantity), str(e.price), e.time,
                  "1" if e.kind in ("refused", "change_refused") else "0", "2" if filled else "1", accept, o.branch, str(o.quantity),
                  "모의계좌"]
        if legacy:
            return common + [name, "10", "", name, str(o.price)]
        return common + ["0", "1", "N", "   ", "10", "", name, str(o.price)]
