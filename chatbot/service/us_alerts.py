"""Price alerts on US stocks: ``/alert AAPL 이상 200``, ``/alert 애플 below 180.50``, ``/alert TSLA +5%``.

A US alert is an alert row like a domestic one, on the same engine and the same shared feed (its 40
slots counted once for both markets): its ``code`` is the realtime key KIS streams it under on
``HDFSCNT0`` (``DNASAAPL``: ``D`` + quote exchange code + ticker, never a KRX code's shape), its
threshold and reference price dollars (currency ``USD``; views and notices count them in price units,
1/10,000 dollar)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

from chatbot.kis import overseas_protocol as o
from chatbot.kis.overseas_protocol import MIN_ORDER_PRICE
from chatbot.kis.realtime import SubscriptionLimitError
from chatbot.markets.money import Currency, Money
from chatbot.markets.profile import US
from chatbot.markets.symbols import Symbol
from chatbot.service.alerts import (
    ABOVE_WORDS,
    BELOW_WORDS,
    MAX_PERCENT,
    REPEAT_WORDS,
    AlertService,
    AlertView,
)
from chatbot.service.errors import UserError, kis_errors
from chatbot.service.inputs import MAX_ARG_LENGTH
from chatbot.service.us_cards import SCALE
from chatbot.service.us_market import UsMarketData
from chatbot.service.us_orders import RESTING, parse_us_price, won_typed
from chatbot.storage.tables import AlertRow

_PERCENT = re.compile(r"^([+-])([0-9]{1,2}(?:\.[0-9]{1,2})?)%$")


def us_alert_ticker(code: str) -> str | None:
    """The ticker of a US alert's key (``DNASAAPL`` → ``AAPL``), None for a domestic alert."""
    parsed = o.parse_realtime_key(code) if code[:1] == "D" and not code[1:4].isdigit() else None
    return parsed[1] if parsed is not None else None


def alert_money(units: int) -> Money:
    """A US alert's price as views and notices carry it (price units: 1/10,000 dollar) in dollars."""
    return Money.usd(Decimal(units) / SCALE)


def alert_price(text: str) -> Decimal:
    """A US alert's price as typed: an order's price rules (on the tick), refused in an alert's words (the
    order's said "order at $x or $y")."""
    try:
        return parse_us_price(text)
    except UserError as err:
        if err.key == "us_off_tick":
            raise UserError("us_alert_off_tick", **err.params) from None
        if err.key == "us_bad_price":  # with /alert's example, not /buy's
            raise UserError("us_alert_bad_price", **err.params) from None
        raise


def check_threshold(threshold: Decimal, last: Decimal, krw_per_usd: Decimal) -> None:
    """Refuse an alert beyond halving or doubling the last price (the band the stops use): a typo, a won amount
    typed as dollars most often (said so when it reads as one at KIS's rate), not a move to wait for."""
    if last <= 0:
        return
    low = US.round_to_tick(Money.usd(max(last * RESTING[0], MIN_ORDER_PRICE)), up=True).amount
    high = US.round_to_tick(Money.usd(last * RESTING[1])).amount
    if low <= threshold <= high:
        return
    params = {"price": str(Money.usd(threshold)), "now": str(Money.usd(last)), "low": str(Money.usd(low)),
              "high": str(Money.usd(high))}
    dollars = won_typed(threshold, last, krw_per_usd)
    if dollars is not None:
        raise UserError("us_alert_looks_like_won", won=f"₩{threshold:,.0f}", usd=str(Money.usd(dollars)),
                        rate=f"{krw_per_usd:,.2f}", **params)
    raise UserError("us_alert_implausible", **params)


class UsAlerts:
    def __init__(self, alerts: AlertService, market: UsMarketData) -> None:
        self.alerts = alerts
        self.market = market

    def request(self, args: Sequence[str]) -> tuple[Symbol, list[str]] | None:
        """The US stock an /alert names and the words after it, or None (a domestic alert)."""
        words = [w for w in args if w]
        if words and words[-1].lower() in REPEAT_WORDS:
            words = words[:-1]
        cut = 1 if words and _PERCENT.match(words[-1]) else 2  # "<symbol…> ±N%", else "<symbol…> <op> <price>"
        if len(words) <= cut:
            return None
        symbol = self.market.lookup(" ".join(words[:-cut]))
        return (symbol, list(args)) if symbol is not None else None

    async def create(self, user_id: int, chat_id: int, language: str, symbol: Symbol, args: Sequence[str]
                     ) -> AlertView:
        engine = self.alerts._engine()
        words = [w for w in args if w]
        if any(len(w) > MAX_ARG_LENGTH for w in words):
            raise UserError("input_too_long")
        repeat = bool(words) and words[-1].lower() in REPEAT_WORDS
        if repeat:
            words = words[:-1]
        percent_match = _PERCENT.match(words[-1]) if words else None
        direction, price_text = "", None
        if percent_match is None:
            if len(words) >= 3 and words[-1].lower() in ABOVE_WORDS | BELOW_WORDS:
                op, price_text = words[-1].lower(), words[-2]
            elif len(words) >= 3 and words[-2].lower() in ABOVE_WORDS | BELOW_WORDS:
                op, price_text = words[-2].lower(), words[-1]
            else:
                raise UserError("usage_alert")
            direction = "above" if op in ABOVE_WORDS else "below"
        broker = await self.market.broker_for(user_id)
        with kis_errors():
            quote = await broker.quote(symbol.code)
        reference = quote.price.amount
        percent_text = None
        if percent_match is not None:
            sign, number = percent_match.groups()
            pct = Decimal(number)
            if not 0 < pct <= MAX_PERCENT:
                raise UserError("bad_percent", maximum=int(MAX_PERCENT))
            factor = 1 + (pct if sign == "+" else -pct) / 100
            tick = Decimal("0.01") if reference >= 1 else Decimal("0.0001")
            threshold = (reference * factor).quantize(tick, ROUND_HALF_UP)
            direction = "above" if sign == "+" else "below"
            percent_text = f"{sign}{number}"
        else:
            assert price_text is not None
            threshold = alert_price(price_text)
            check_threshold(threshold, reference, self.market.rate(broker))
        if (direction == "above" and reference >= threshold) or (direction == "below" and reference <= threshold):
            raise UserError("us_alert_already_crossed", price=str(Money.usd(reference)),
                            threshold=str(Money.usd(threshold)))
        exchange = await broker.exchange(symbol.code)
        key = o.realtime_key(exchange, symbol.code)
        await self.alerts.refuse_duplicate(user_id, symbol, key, direction, Money.usd(threshold), language)
        await self.alerts._check_room(engine, user_id, key)
        row = AlertRow(owner_id=user_id, chat_id=chat_id, language=language, code=key, name=symbol.name_ko[:80],
                       direction=direction, threshold=threshold, reference_price=reference,
                       currency=Currency.USD.value, percent=percent_text, repeat=repeat, cooldown_seconds=self.alerts.cooldown_seconds)
        feeds = self.alerts.feeds
        with kis_errors():
            try:
                if feeds is not None:  # placed for this user before the alert exists, as a domestic one
                    await feeds.expect(user_id, key)  # (their own session where they have one; HDFSCNT0)
                view = AlertView.of(await engine.arm(row, self.alerts.repository.add))
                if quote.halted:  # set all the same: it fires once trading resumes; the user is told
                    view = dataclasses.replace(view, halted=True)
                # past every live slot it is polled: the user is told how often
                if feeds is not None and (every := feeds.polled_every(key)) is not None:
                    view = dataclasses.replace(view, polled_every=every)
                return view
            except SubscriptionLimitError:
                raise UserError("alert_capacity", maximum=engine.feed.max_subscriptions) from None
            except TimeoutError:
                raise UserError("kis_unavailable", detail="") from None
