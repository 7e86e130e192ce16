"""The simulator's US realtime feed (KIS_OVERSEAS.md §8, checklist §11.8), on the domestic sessions.

US subscriptions live in the same per-session set as domestic ones, so they share its cap. Trades of
a US symbol go out as ``HDFSCNT0`` (26 fields, one record per frame, key ``DNASAAPL``) and a level-1
``HDFSASP0`` book; an account's US order events go out encrypted on ``H0GSCNI0`` (paper
``H0GSCNI9``) to the sessions whose app key trades the account: 25 fields by default, 21 for
clients that look like python-kis (it drops any other length), or as ``SimulatorOptions`` says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatbot.kis import overseas_protocol as o
from chatbot.kis import protocol as p
from chatbot.markets.us_hours import NEW_YORK, SEOUL
from chatbot.sim.us_market import UsSymbolState, UsTrade, dollars, tick_units
from chatbot.sim.us_payloads import pct, price4, sign_of
from chatbot.sim.us_trading import UsOrderEvent

if TYPE_CHECKING:
    from chatbot.sim.realtime import RealtimeServer, Session


def trade_fields(s: UsSymbolState, trade: UsTrade, business_day: str) -> list[str]:
    """The 26 HDFSCNT0 fields of a simulated US trade (DIFF signed, as python-kis reads it)."""
    ny, kst = trade.at.astimezone(NEW_YORK), trade.at.astimezone(SEOUL)
    diff = trade.price - s.base
    tick = tick_units(trade.price)
    strength = s.buy_volume * 100 / s.sell_volume if s.sell_volume else 100.0
    return [
        s.realtime_key, s.symbol, str(o.PRICE_DECIMALS), business_day, ny.strftime("%Y%m%d"), ny.strftime("%H%M%S"),
        kst.strftime("%Y%m%d"), kst.strftime("%H%M%S"), price4(s.open), price4(s.high), price4(s.low),
        price4(trade.price), sign_of(diff), price4(diff), pct(diff, s.base), price4(max(1, trade.price - tick)),
        price4(trade.price + tick), str(100 + trade.volume % 900), str(100 + trade.volume % 700),
        str(trade.volume), str(s.volume), str(s.traded_dollars), str(s.sell_volume), str(s.buy_volume),
        f"{strength:.2f}", trade.session,
    ]


def orderbook_fields(s: UsSymbolState, trade: UsTrade) -> list[str]:
    """The 17 HDFSASP0 fields: the best bid and ask around the last trade."""
    ny, kst = trade.at.astimezone(NEW_YORK), trade.at.astimezone(SEOUL)
    tick = tick_units(trade.price)
    bid_size, ask_size = 100 + trade.volume % 900, 100 + trade.volume % 700
    return [s.realtime_key, s.symbol, str(o.PRICE_DECIMALS), ny.strftime("%Y%m%d"), ny.strftime("%H%M%S"),
            kst.strftime("%Y%m%d"), kst.strftime("%H%M%S"), str(bid_size * 7), str(ask_size * 7), "0", "0",
            price4(max(1, trade.price - tick)), price4(trade.price + tick), str(bid_size), str(ask_size), "0", "0"]


def notice_fields(e: UsOrderEvent, hts_id: str, name: str, fields: int) -> list[str]:
    """An H0GSCNI0 record of ``fields`` fields (25, 24 or 21) for an order event."""
    order = e.order
    filled = e.kind == "filled"
    revise_cancel = {"cancelled": "2", "revised": "1"}.get(e.kind, "0")
    if e.kind == "change_refused":  # a refused revision or cancellation: RCTF_CLS says which
        revise_cancel = {"revise": "1", "cancel": "2"}[order.kind]
    accept = {"accepted": "1", "cancelled": "2", "revised": "2"}.get(e.kind, "2")
    kind = o.NOTICE_ORDER_KIND.get(order.division, "2")
    price = o.notice_price_text(dollars(e.price))
    row = [
        hts_id, order.account_id.lstrip("V").replace("-", ""), order.order_no, order.original_order_no, order.side,
        revise_cancel, kind, order.symbol, str(e.quantity), price, e.at.astimezone(o.NOTICE_TIME_ZONE).strftime("%H%M%S"),
        "1" if e.kind in ("refused", "change_refused") else "0", "2" if filled else "1", accept, order.branch, str(order.quantity) if filled else "", "모의계좌",
        name, order.us_exchange.codes.notice, o.DEBT_CASH, "", "", "", "", price4(e.price),
    ]
    return row[:fields]


class UsFeed:
    """Publishes US trades and order events to a :class:`RealtimeServer`'s sessions."""

    def __init__(self, server: RealtimeServer) -> None:
        self.server = server
        sim = server.sim
        sim.us_market.add_listener(self.on_trade)
        sim.us_trading.add_listener(self.on_order_event)

    def subscribed(self, tr_id: str, tr_key: str) -> None:
        """A session took a US market TR: its symbol is in play from now on (its trades feed it)."""
        if tr_id in o.WS_US_MARKET_TRS:
            self.server.sim.us_market.by_realtime_key(tr_key)

    def on_trade(self, trade: UsTrade) -> None:
        sessions = self.server.sessions
        if not sessions:
            return
        s = self.server.sim.us_market.get(trade.symbol)
        if s is None:
            return
        key = s.realtime_key
        tick_frame = book_frame = None
        for session in sessions:
            subs = session.subscriptions
            if (o.WS_US_TRADE, key) in subs:
                if tick_frame is None:
                    fields = trade_fields(s, trade, self.server.sim.us_market.today.strftime("%Y%m%d"))
                    tick_frame = f"0|{o.WS_US_TRADE}|001|" + "^".join(fields)
                session.send(tick_frame)
            if (o.WS_US_ORDERBOOK, key) in subs:
                if book_frame is None:
                    book_frame = f"0|{o.WS_US_ORDERBOOK}|001|" + "^".join(orderbook_fields(s, trade))
                session.send(book_frame)

    def layout(self, session: Session) -> int:
        chosen = self.server.sim.options.us_notice_layout
        if chosen in ("25", "24", "21"):
            return int(chosen)
        return 21 if session.legacy_notices else 25

    def on_order_event(self, event: UsOrderEvent) -> None:
        server = self.server
        paper = event.account_id.startswith("V")
        if paper != (server.flavour == "virtual"):
            return  # this flavour's ledger only
        owners = server.sim.auth.app_keys_of(event.account_id)
        state = server.sim.us_market.get(event.order.symbol)
        name = state.listing.name_ko if state is not None else ""
        for session in server.sessions:
            if session.app_key not in owners:
                continue
            for tr_id, tr_key in session.subscriptions:
                if tr_id in o.WS_US_NOTICE_TRS:
                    text = "^".join(notice_fields(event, tr_key, name, self.layout(session)))
                    session.send(f"1|{tr_id}|001|" + p.notice_encrypt(text, session.aes_key, session.aes_iv))
