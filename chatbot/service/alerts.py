"""Price alerts as a user sets them: ``<symbol> above|below|>=|<=|이상|이하 <price> [repeat]`` or
``<symbol> ±N% [repeat]``; listing; deleting; pausing for users who blocked the bot.

The live feed behind alerts carries a fixed number of symbols for everyone (one KIS WebSocket
session), so besides a cap on alerts per user there is a cap on the distinct symbols one user's
alerts watch, well under the feed's: one user cannot take every slot."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from chatbot.alerts.engine import AlertEngine
from chatbot.alerts.feeds import FeedPlanner
from chatbot.alerts.repository import AlertRepository
from chatbot.kis import protocol as p
from chatbot.kis.realtime import SubscriptionLimitError
from chatbot.markets.money import Money, price_units
from chatbot.markets.symbols import Symbol
from chatbot.service.accounts import AccountProvider
from chatbot.service.errors import UserError, kis_errors
from chatbot.service.inputs import MARKET_WORDS, MAX_ARG_LENGTH, parse_limit_price
from chatbot.service.market_data import MarketData
from chatbot.service.names import SymbolNames
from chatbot.service.views import CommandDraft
from chatbot.storage.db import Database
from chatbot.storage.tables import AlertRow, UserRow

ABOVE_WORDS = frozenset({"above", ">=", ">", "이상", "위", "over"})
BELOW_WORDS = frozenset({"below", "<=", "<", "이하", "아래", "under"})
REPEAT_WORDS = frozenset({"repeat", "반복", "repeating"})
_PERCENT = re.compile(r"^([+-])([0-9]{1,2}(?:\.[0-9]{1,2})?)%$")
_ALERT_ID = re.compile(r"^[0-9]{1,9}$")
MAX_PERCENT = Decimal(30)  # the daily limit: a larger move cannot happen today


def refuse_unwatchable(symbol: Symbol) -> None:
    """What the feed cannot watch is refused before anything is set. An ETN: KIS streams and quotes it as Q + code
    (KIS_API.md §5.1), and the feed subscribes and polls the directory's code, whose bare six characters lie in
    the ELWs' code space: an alert or stop on one would watch another instrument's price."""
    if symbol.is_etn:
        raise UserError("etn_not_watched", name=symbol.name_ko or symbol.code)


def _plain_words(direction: str, price_text: str | None, percent: re.Match[str] | None, repeat: bool
                 ) -> tuple[str, ...]:
    """An alert's words after the stock, written plainly (``70,000 이상`` → ``above 70000``, ``+5%``): typed
    after a code, they set the same alert. A price that does not read stays as typed (typed again, it is
    refused the same way)."""
    if percent is not None:
        words: tuple[str, ...] = (percent.group(0),)
    else:
        try:
            price = str(parse_limit_price(price_text or ""))
        except UserError:
            price = (price_text or "").strip()
        words = (direction, price)
    return (*words, "repeat") if repeat else words


@dataclass(frozen=True, slots=True)
class AlertView:
    """A price alert as a user sees it."""

    id: int
    code: str
    name: str
    direction: str  # above | below
    threshold: int
    reference_price: int  # the price when it was set
    percent: str | None  # "+5": set as a move from the reference price
    repeat: bool
    status: str  # armed | cooling | paused (active), fired | deleted
    polled_every: int | None = None  # its symbol is checked over REST every N s (no live slot left)
    currency: str = "KRW"  # of both prices, which are in its price units (whole won; 1/10,000 dollar)
    name_en: str = ""  # the directory's English name of a domestic stock, "" when it has none
    halted: bool = False  # set on a stock whose trading is halted now (told when it is set; it fires on resuming)

    def display_name(self, lang: str) -> str:
        """The stock's name as a ``lang`` reader reads it (:mod:`chatbot.service.names`)."""
        return (self.name_en or self.name) if lang == "en" else self.name

    @property
    def threshold_money(self) -> Money:
        return Money.of_price_units(self.threshold, self.currency)

    @property
    def reference_money(self) -> Money:
        return Money.of_price_units(self.reference_price, self.currency)

    @classmethod
    def of(cls, row: AlertRow, name_en: str | None = None) -> AlertView:
        assert row.id is not None
        return cls(row.id, row.code, row.name, row.direction, price_units(row.threshold, row.currency),  # won;
                   price_units(row.reference_price, row.currency), row.percent,  # US: 1/10,000 dollar
                   row.repeat, row.status, currency=row.currency, name_en=name_en or "")


class AlertService:
    def __init__(self, db: Database, engine: AlertEngine | None, accounts: AccountProvider,
                 market: MarketData, *, max_per_user: int = 50, max_symbols_per_user: int = 10,
                 cooldown_seconds: int = 600, feeds: FeedPlanner | None = None) -> None:
        self.db = db
        self.repository = AlertRepository(db)
        self.engine = engine
        self.accounts = accounts
        self.market = market
        self.max_per_user = max_per_user
        self.max_symbols_per_user = max_symbols_per_user
        self.cooldown_seconds = cooldown_seconds
        self.feeds = feeds  # the feed planner: symbols beyond every live slot are polled, not refused
        self.names = SymbolNames(market.symbols)

    def view(self, row: AlertRow) -> AlertView:
        """An alert as its owner sees it: a domestic stock's English name beside the Korean one stored."""
        return AlertView.of(row, self.names.english(row.code) if row.currency == "KRW" else None)

    def _engine(self) -> AlertEngine:
        if self.engine is None:
            raise UserError("alerts_unavailable")
        return self.engine

    async def create(self, user_id: int, chat_id: int, language: str, args: list[str]) -> AlertView:
        engine = self._engine()
        words = [w for w in args if w]
        if any(len(w) > MAX_ARG_LENGTH for w in words):
            raise UserError("input_too_long")
        repeat = bool(words) and words[-1].lower() in REPEAT_WORDS
        if repeat:
            words = words[:-1]
        if len(words) < 2:
            raise UserError("usage_alert")
        percent_match = _PERCENT.match(words[-1])
        if percent_match:
            symbol_words, direction, price_text = words[:-1], "", None
        elif words[-1].lower() in ABOVE_WORDS | BELOW_WORDS and len(words) >= 3:  # "70000 이상"
            symbol_words, op, price_text = words[:-2], words[-1].lower(), words[-2]
            direction = "above" if op in ABOVE_WORDS else "below"
        elif len(words) >= 3 and words[-2].lower() in ABOVE_WORDS | BELOW_WORDS:  # "above 70000"
            symbol_words, op, price_text = words[:-2], words[-2].lower(), words[-1]
            direction = "above" if op in ABOVE_WORDS else "below"
        else:
            raise UserError("usage_alert")
        try:
            symbol = self.market.resolve(" ".join(symbol_words))
        except UserError as err:
            if err.key == "ambiguous_symbol":  # each candidate may set this alert (not quote the stock)
                err.params["order"] = CommandDraft("alert", _plain_words(direction, price_text, percent_match, repeat))
            raise
        refuse_unwatchable(symbol)
        account = await self.accounts.for_user(user_id)
        with kis_errors():
            quote = await account.client.quote(p.quotation_code(symbol.code, symbol.is_etn))
        reference = quote.price
        percent_text = None
        if percent_match:
            sign, number = percent_match.groups()
            pct = Decimal(number)
            if not 0 < pct <= MAX_PERCENT:
                raise UserError("bad_percent", maximum=int(MAX_PERCENT))
            factor = 1 + (pct if sign == "+" else -pct) / 100
            threshold = int((reference * factor).to_integral_value(ROUND_HALF_UP))
            direction = "above" if sign == "+" else "below"
            percent_text = f"{sign}{number}"
        else:
            assert price_text is not None  # set with every direction
            if price_text.strip().lower() in MARKET_WORDS:
                raise UserError("usage_alert")
            threshold = parse_limit_price(price_text)
        if (direction == "above" and reference >= threshold) or (direction == "below" and reference <= threshold):
            raise UserError("alert_already_crossed", price=Money.krw(reference), threshold=Money.krw(threshold))
        await self.refuse_duplicate(user_id, symbol, symbol.code, direction, Money.krw(threshold), language)
        await self._check_room(engine, user_id, symbol.code)
        row = AlertRow(owner_id=user_id, chat_id=chat_id, language=language, code=symbol.code, name=symbol.name_ko,
                       direction=direction, threshold=Decimal(threshold), reference_price=Decimal(reference),
                       currency=symbol.currency.value, percent=percent_text,
                       repeat=repeat, cooldown_seconds=self.cooldown_seconds)
        with kis_errors():  # the feed could not subscribe the symbol (KIS refused or did not answer)
            try:
                if self.feeds is not None:  # placed for this user before the alert exists
                    await self.feeds.expect(user_id, symbol.code)
                view = self.view(await engine.arm(row, self.repository.add))
                if quote.halted:  # set all the same (it fires once trading resumes): the user is told it is halted
                    view = dataclasses.replace(view, halted=True)
                if self.feeds is not None and (every := self.feeds.polled_every(symbol.code)) is not None:
                    view = dataclasses.replace(view, polled_every=every)
                return view
            except SubscriptionLimitError:
                raise UserError("alert_capacity", maximum=engine.feed.max_subscriptions) from None
            except TimeoutError:  # no acknowledgement of the subscription: nothing was stored
                raise UserError("kis_unavailable", detail="") from None

    async def refuse_duplicate(self, user_id: int, symbol: Symbol, key: str, direction: str, threshold: Money,
                               language: str) -> None:
        """The same alert twice (the user's, on the same symbol, the same side of the same price: one set as a
        percentage included) would push the same news twice: refused, naming the one in force. Set one-shot
        or repeating makes no difference (to change that, the one in force is deleted first). A user's
        updates are handled one at a time, so two of the same cannot race past this."""
        for row in await self.repository.active(user_id):
            if row.code == key and row.direction == direction and row.threshold == threshold.amount:
                assert row.id is not None
                raise UserError("alert_duplicate", id=row.id, name=f"{symbol.display_name(language)} ({symbol.code})",
                                condition=f"{'≥' if direction == 'above' else '≤'} {threshold}")

    async def _check_room(self, engine: AlertEngine, user_id: int, code: str) -> None:
        """The user's alert and symbol caps, then the shared feed's capacity."""
        if await self.repository.count_active(user_id) >= self.max_per_user:
            raise UserError("alert_limit", maximum=self.max_per_user)
        watched = await self.watched_symbols(user_id)
        if code not in watched and len(watched) >= self.max_symbols_per_user:
            raise UserError("alert_symbol_limit", maximum=self.max_symbols_per_user,
                            symbols=", ".join(sorted(watched)))
        if self.feeds is None and not engine.has_capacity_for(code):
            raise UserError("alert_capacity", maximum=engine.feed.max_subscriptions)

    async def watched_symbols(self, user_id: int) -> set[str]:
        """The distinct symbols of the user's active alerts (each holds a slot of the shared feed)."""
        return await self.repository.watched_symbols(user_id)

    async def active(self, user_id: int) -> list[AlertView]:
        """The user's alerts in force (armed, cooling, paused), oldest first."""
        self._engine()
        return [self.view(row) for row in await self.repository.active(user_id)]

    async def delete(self, user_id: int, alert_id_text: str) -> AlertView:
        engine = self._engine()
        text = alert_id_text.strip().lstrip("#")
        if not _ALERT_ID.match(text):  # ASCII digits that fit an integer column on every database
            raise UserError("no_such_alert", alert_id=alert_id_text[:MAX_ARG_LENGTH])
        row = await self.repository.delete(user_id, int(text))
        if row is None:
            raise UserError("no_such_alert", alert_id=text)
        assert row.id is not None
        await engine.disarm(row.id, row.code)
        return AlertView.of(row)

    async def user_blocked_bot(self, user_id: int) -> None:
        async with self.db.write() as session:
            user = await session.get(UserRow, user_id)
            if user is not None:
                user.blocked = True
                session.add(user)
        if self.engine is not None:
            rows = await self.repository.pause_owner(user_id)
            self.engine.pause([row.id for row in rows if row.id is not None])

    async def user_returned(self, user_id: int) -> None:
        """A user who had blocked the bot wrote again: their alerts resume."""
        if self.engine is not None:
            rows = await self.repository.resume_owner(user_id)
            await self.engine.resume([(row.id, row.code, row.direction, price_units(row.threshold, row.currency))
                                      for row in rows if row.id is not None])
