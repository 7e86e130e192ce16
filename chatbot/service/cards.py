"""Cards: an order, a cancellation or a paper-account reset shown to its owner with Confirm and
Cancel buttons, created with the exact quote, claimed at most once, by their owner.

The claim is one conditional UPDATE (``status = 'pending'`` and unexpired, owner and message
matching): whatever arrives twice — a double tap, two devices, an update redelivered after a
crash — only one press can win, and it wins in the database, not in memory. (The table keeps its
first name, ``pending_orders``.)
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Awaitable, Callable, Collection
from enum import StrEnum

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chatbot.market_hours import MarketCalendar, Phase
from chatbot.markets.profile import market_of
from chatbot.service.views import Mode, OrderCard, OrderSide
from chatbot.storage.db import Database
from chatbot.storage.tables import PendingOrderRow
from chatbot.storage.types import utcnow
from chatbot.symbols import Symbol


class CardStatus(StrEnum):
    PENDING = "pending"
    SUBMITTING = "submitting"
    PLACED = "placed"
    REJECTED = "rejected"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    DISMISSED = "dismissed"
    EXPIRED = "expired"


class ClaimRefused(StrEnum):
    UNKNOWN = "unknown"
    NOT_OWNER = "not_owner"
    EXPIRED = "expired"
    ALREADY_HANDLED = "already_handled"


OnClaimed = Callable[[AsyncSession, PendingOrderRow], Awaitable[None]]


def new_token() -> str:
    return secrets.token_urlsafe(12)  # 16 URL-safe characters, 96 random bits


class CardStore:
    def __init__(self, db: Database, ttl_seconds: int, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.db = db
        self.ttl = dt.timedelta(seconds=ttl_seconds)
        self.clock = clock

    async def create(self, **fields: object) -> PendingOrderRow:
        now = self.clock()
        row = PendingOrderRow(id=new_token(), created_at=now, updated_at=now, expires_at=now + self.ttl,
                              **fields)  # type: ignore[arg-type]
        async with self.db.write() as session:
            session.add(row)
        return row

    async def attach_message(self, token: str, owner_id: int, message_id: int) -> dt.datetime:
        """Bind the card to the message showing it; the owner's time to decide starts now, when it
        reached them (under Telegram's flood limits a card can take seconds to go out)."""
        expires_at = self.clock() + self.ttl
        async with self.db.write() as session:
            await session.exec(update(PendingOrderRow)
                               .where(col(PendingOrderRow.id) == token, col(PendingOrderRow.owner_id) == owner_id,
                                      col(PendingOrderRow.message_id).is_(None),
                                      col(PendingOrderRow.status) == CardStatus.PENDING)
                               .values(message_id=message_id, expires_at=expires_at))
        return expires_at

    async def claim(self, token: str, user_id: int, message_id: int, to: CardStatus,
                    on_claimed: OnClaimed | None = None, actions: Collection[str] | None = None
                    ) -> tuple[PendingOrderRow | None, ClaimRefused | None]:
        """Move a card from pending to ``to`` atomically; say why when that is refused. ``on_claimed``
        runs in the same transaction when the claim wins (the order journal's row is opened there).
        ``actions``: only a card of one of these actions can be claimed (a card of another service's
        action pressed through a forged button is refused as handled)."""
        now = self.clock()
        async with self.db.write() as session:
            conditions = [col(PendingOrderRow.id) == token, col(PendingOrderRow.owner_id) == user_id,
                          col(PendingOrderRow.message_id) == message_id,
                          col(PendingOrderRow.status) == CardStatus.PENDING, col(PendingOrderRow.expires_at) > now]
            if actions is not None:
                conditions.append(col(PendingOrderRow.action).in_(list(actions)))
            result = await session.exec(update(PendingOrderRow).where(*conditions).values(status=to, updated_at=now))
            row = await session.get(PendingOrderRow, token)
            won = result.rowcount == 1 and row is not None
            if won and on_claimed is not None:
                assert row is not None
                await on_claimed(session, row)
        if won:
            return row, None
        if row is None:
            return None, ClaimRefused.UNKNOWN
        if row.owner_id != user_id or row.message_id != message_id:
            return row, ClaimRefused.NOT_OWNER
        if row.status == CardStatus.PENDING and row.expires_at <= now:
            await self.finish(token, CardStatus.EXPIRED, None, only_from=CardStatus.PENDING)
            return row, ClaimRefused.EXPIRED
        if row.status == CardStatus.EXPIRED:
            return row, ClaimRefused.EXPIRED
        return row, ClaimRefused.ALREADY_HANDLED

    async def finish(self, token: str, status: CardStatus, result: str | None,
                     only_from: CardStatus = CardStatus.SUBMITTING) -> None:
        async with self.db.write() as session:
            await self.finish_in(session, token, status, result, only_from)

    async def finish_in(self, session: AsyncSession, token: str, status: CardStatus, result: str | None,
                        only_from: CardStatus | tuple[CardStatus, ...] = CardStatus.SUBMITTING) -> None:
        """:meth:`finish` inside the caller's transaction."""
        sources = (only_from,) if isinstance(only_from, CardStatus) else only_from
        await session.exec(update(PendingOrderRow)
                           .where(col(PendingOrderRow.id) == token, col(PendingOrderRow.status).in_(sources))
                           .values(status=status, result=result, updated_at=self.clock()))

    async def get(self, token: str) -> PendingOrderRow | None:
        async with self.db.session() as session:
            return await session.get(PendingOrderRow, token)

    async def stale_submitting(self) -> list[PendingOrderRow]:
        """Cards left in ``submitting`` by a crash: their outcome is unknown."""
        async with self.db.session() as session:
            rows = await session.exec(select(PendingOrderRow).where(
                col(PendingOrderRow.status) == CardStatus.SUBMITTING))
            return list(rows.all())


def card_view(row: PendingOrderRow, symbol: Symbol, mode: Mode, calendar: MarketCalendar,
              ttl_seconds: int) -> OrderCard:
    """The card a row stands for, with its estimated amount, costs and the market's session now."""
    side = OrderSide(row.side)
    market = market_of(symbol)
    price = None if row.price is None else market.money(row.price)
    quoted = market.money(row.quoted_price)
    amount = (price if price is not None else quoted) * row.quantity
    commission, tax = market.costs(amount, sell=side is OrderSide.SELL)
    state = calendar.state()
    session = Phase.REGULAR if mode is Mode.PAPER else state.phase  # the simulator never closes
    return OrderCard(token=row.id, mode=mode, action=row.action, side=side, symbol=symbol,
                     quantity=row.quantity, price=price, quoted_price=quoted, amount=amount,
                     commission=commission, tax=tax, expires_at=row.expires_at, order_no=row.order_no,
                     ttl_seconds=ttl_seconds, session=session.value, next_open=state.next_open)
