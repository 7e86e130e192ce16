"""Price alerts as a user sets them: ``<symbol> above|below|>=|<=|이상|이하 <price> [repeat]`` or
``<symbol> ±N% [repeat]``; listing; deleting; pausing for users who blocked the bot."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from chatbot.alerts.engine import AlertEngine
from chatbot.kis import protocol as p
from chatbot.kis.realtime import SubscriptionLimitError
from chatbot.service.accounts import AccountProvider
from chatbot.service.errors import UserError
from chatbot.service.trading import MAX_ARG_LENGTH, TradingService, kis_errors, parse_price
from chatbot.storage.db import Database
from chatbot.storage.tables import AlertRow, UserRow

ABOVE_WORDS = frozenset({"above", ">=", ">", "이상", "위", "over"})
BELOW_WORDS = frozenset({"below", "<=", "<", "이하", "아래", "under"})
REPEAT_WORDS = frozenset({"repeat", "반복", "repeating"})
_PERCENT = re.compile(r"^([+-])(\d{1,2}(?:\.\d{1,2})?)%$")
MAX_PERCENT = Decimal(30)  # the daily limit: a larger move cannot happen today


class AlertService:
    def __init__(self, db: Database, engine: AlertEngine | None, accounts: AccountProvider,
                 trading: TradingService, *, max_per_user: int = 50, cooldown_seconds: int = 600) -> None:
        self.db = db
        self.engine = engine
        self.accounts = accounts
        self.trading = trading
        self.max_per_user = max_per_user
        self.cooldown_seconds = cooldown_seconds

    def _engine(self) -> AlertEngine:
        if self.engine is None:
            raise UserError("alerts_unavailable")
        return self.engine

    async def create(self, user_id: int, chat_id: int, language: str, args: list[str]) -> AlertRow:
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
        symbol = self.trading.resolve(" ".join(symbol_words))
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
            parsed = parse_price(price_text)
            if parsed is None:
                raise UserError("usage_alert")
            threshold = parsed
        if (direction == "above" and reference >= threshold) or (direction == "below" and reference <= threshold):
            raise UserError("alert_already_crossed", price=reference, threshold=threshold)
        if await engine.count_active(user_id) >= self.max_per_user:
            raise UserError("alert_limit", maximum=self.max_per_user)
        if not engine.has_capacity_for(symbol.code):
            raise UserError("alert_capacity")
        row = AlertRow(owner_id=user_id, chat_id=chat_id, language=language, code=symbol.code, name=symbol.name_ko,
                       direction=direction, threshold=threshold, reference_price=reference, percent=percent_text,
                       repeat=repeat, cooldown_seconds=self.cooldown_seconds)
        try:
            return await engine.arm(row)
        except SubscriptionLimitError:
            raise UserError("alert_capacity") from None

    async def list(self, user_id: int) -> list[AlertRow]:
        return await self._engine().list(user_id)

    async def delete(self, user_id: int, alert_id_text: str) -> AlertRow:
        text = alert_id_text.strip().lstrip("#")
        if not text.isdigit() or len(text) > 12:
            raise UserError("no_such_alert", alert_id=alert_id_text[:MAX_ARG_LENGTH])
        row = await self._engine().delete(user_id, int(text))
        if row is None:
            raise UserError("no_such_alert", alert_id=text)
        return row

    async def user_blocked_bot(self, user_id: int) -> None:
        async with self.db.session() as session:
            user = await session.get(UserRow, user_id)
            if user is not None:
                user.blocked = True
                session.add(user)
                await session.commit()
        if self.engine is not None:
            await self.engine.pause_owner(user_id)

    async def user_returned(self, user_id: int) -> None:
        """A user who had blocked the bot wrote again: their alerts resume."""
        if self.engine is not None:
            await self.engine.resume_owner(user_id)
