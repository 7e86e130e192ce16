"""Cards: an order, a cancellation or a paper-account reset shown to its owner with Confirm and
Cancel buttons, created with the exact quote, claimed at most once, by their owner.

The claim is one conditional UPDATE (``status = 'pending'`` and unexpired, owner, chat and message
matching — message ids are per chat): whatever arrives twice — a double tap, two devices, an update
redelivered after a crash — only one press can win, and it wins in the database, not in memory. (The
table keeps its first name, ``pending_orders``.)

A message shows one card: a card is attached to a message only where no other card of that chat is
pending (:meth:`CardStore.attach_message`; a message a card was brought into, in place of what it showed,
only where no card ever was). The newer card is refused (``superseded``): a double tap on a candidate
stock, or a late one after its card was pressed, never gives the message a second card to confirm.

A card records the account it was quoted for (:func:`account_ref`: which account, not a secret); a press
when the user's account is another one — after /login, /logout or a paper /reset — is refused
(:attr:`ClaimRefused.ACCOUNT_CHANGED`, the card voided) and sends nothing. Those three also void the
user's pending cards outright (:meth:`CardStore.void_pending`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Collection
from enum import StrEnum

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chatbot.market_hours import MarketCalendar, Phase
from chatbot.markets.profile import market_of
from chatbot.service.accounts import AccountProvider
from chatbot.service.errors import UserError
from chatbot.service.views import Mode, OrderCard, OrderSide
from chatbot.storage.db import Database
from chatbot.storage.tables import PendingOrderRow
from chatbot.storage.types import utcnow
from chatbot.symbols import Symbol

log = logging.getLogger(__name__)


class CardStatus(StrEnum):
    PENDING = "pending"
    SUBMITTING = "submitting"
    PLACED = "placed"
    REJECTED = "rejected"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    DISMISSED = "dismissed"
    EXPIRED = "expired"
    VOIDED = "voided"  # the user's account changed (/login, /logout, /reset) before it was pressed
    SUPERSEDED = "superseded"  # never shown: its message already shows (or showed) another card


class ClaimRefused(StrEnum):
    UNKNOWN = "unknown"
    NOT_OWNER = "not_owner"
    EXPIRED = "expired"
    ALREADY_HANDLED = "already_handled"
    ACCOUNT_CHANGED = "account_changed"  # quoted for another account than the user's now: nothing sent


OnClaimed = Callable[[AsyncSession, PendingOrderRow], Awaitable[None]]
# The account a user trades on now, as :func:`account_ref` (None: none, e.g. logged out in virtual/real mode).
AccountRefOf = Callable[[int], Awaitable[str | None]]


class _AnyAccount:
    """:meth:`CardStore.claim` without an account check (the user's account could not be read: the caller
    checks the account it sends on itself)."""


ANY_ACCOUNT = _AnyAccount()
AccountCheck = str | None | _AnyAccount  # what a claim checks a card's account against


def new_token() -> str:
    return secrets.token_urlsafe(12)  # 16 URL-safe characters, 96 random bits


def account_ref(environment: str, owner_id: int, account: object) -> str:
    """What a card or conditional order stores of the account it is for: an identity, not a secrecy measure.
    It is an unkeyed digest of the environment, the user and the account number (``12345678-01``): it tells
    two accounts apart, and that is all it is for. It hides nothing — the number is stored in plain text
    beside it (``credentials.account``, ``paper_accounts.account``, ``order_journal.account``), and an
    8-digit number behind an unkeyed digest is found by trying them all. Stable across restarts, master-key
    rotations and new app keys for the same account."""
    digest = hashlib.sha256(f"kis-account-ref\n{environment}\n{owner_id}\n{account}".encode()).hexdigest()
    return digest[:32]


def _message_key(chat_id: int, message_id: int) -> int:
    """The advisory lock serialising the cards attached to one message (a signed 64-bit key)."""
    digest = hashlib.sha256(f"kis-chatops:card-message:{chat_id}:{message_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def current_account_ref(accounts: AccountProvider, mode: Mode, user_id: int) -> str | None:
    """The account the user trades on now, as :func:`account_ref`, from their credentials read afresh
    (:meth:`AccountProvider.current`); None: none (logged out of virtual or real mode). In simulator mode a
    user without credentials of their own has a paper account."""
    try:
        account = await accounts.current(user_id)
    except UserError:
        return None
    return account_ref(mode.setting, user_id, account.account)


class CardStore:
    def __init__(self, db: Database, ttl_seconds: int, clock: Callable[[], dt.datetime] = utcnow,
                 account_ref_of: AccountRefOf | None = None) -> None:
        self.db = db
        self.ttl = dt.timedelta(seconds=ttl_seconds)
        self.clock = clock
        # The user's account now (wired by the runtime): every card created records it, unless given.
        self.account_ref_of = account_ref_of

    async def create(self, **fields: object) -> PendingOrderRow:
        # The account the card's checks were made on, given by its maker (read once, at the start: a /login
        # finishing meanwhile must not bind the card to the new account). Read here only where not given.
        if fields.get("account_ref") is None and self.account_ref_of is not None:
            owner_id = fields["owner_id"]
            assert isinstance(owner_id, int)
            fields["account_ref"] = await self.account_ref_of(owner_id)
        now = self.clock()
        row = PendingOrderRow(id=new_token(), created_at=now, updated_at=now, expires_at=now + self.ttl,
                              **fields)  # type: ignore[arg-type]
        async with self.db.write() as session:
            session.add(row)
        return row

    async def attach_message(self, token: str, owner_id: int, message_id: int, *, in_place: bool = False,
                             moved_from: int | None = None) -> dt.datetime | None:
        """Bind the card to the message showing it; the owner's time to decide starts now, when it
        reached them (under Telegram's flood limits a card can take seconds to go out). Returns when it
        expires; None: refused, the card ``superseded`` (never to be pressed) — a message shows one card:
        another card of the chat is pending on that message, or, ``in_place`` (the message showed something
        else first, a candidate list, and is to become this card), any card ever was on it. ``moved_from``:
        the card was attached to that message, which could not show it after all; it moves to this one.

        Serialised per message (SQLite: the write lock; PostgreSQL: an advisory lock for the transaction,
        two replicas attaching two cards to one message included)."""
        expires_at = self.clock() + self.ttl
        async with self.db.write() as session:
            row = await session.get(PendingOrderRow, token)
            if row is None or row.owner_id != owner_id:
                return None
            if not self.db.is_sqlite:
                await session.exec(select(func.pg_advisory_xact_lock(_message_key(row.chat_id, message_id))))
            shown = [col(PendingOrderRow.chat_id) == row.chat_id, col(PendingOrderRow.message_id) == message_id,
                     col(PendingOrderRow.id) != token]
            if not in_place:
                shown.append(col(PendingOrderRow.status) == CardStatus.PENDING)
            taken = (await session.exec(select(PendingOrderRow.id).where(*shown).limit(1))).first()
            unattached = (col(PendingOrderRow.message_id).is_(None) if moved_from is None
                          else col(PendingOrderRow.message_id) == moved_from)
            where = [col(PendingOrderRow.id) == token, col(PendingOrderRow.owner_id) == owner_id, unattached,
                     col(PendingOrderRow.status) == CardStatus.PENDING]
            if taken is not None:
                await session.exec(update(PendingOrderRow).where(*where).values(
                    status=CardStatus.SUPERSEDED, result="its message shows another card", updated_at=self.clock()))
                log.info("card not attached: its message shows another one",
                         extra={"card": token, "message_id": message_id, "other": taken})
                return None
            result = await session.exec(update(PendingOrderRow).where(*where)
                                        .values(message_id=message_id, expires_at=expires_at))
        return expires_at if result.rowcount == 1 else None

    async def claim(self, token: str, user_id: int, message_id: int, to: CardStatus,
                    on_claimed: OnClaimed | None = None, actions: Collection[str] | None = None, *,
                    chat_id: int | None = None, account: AccountCheck = ANY_ACCOUNT
                    ) -> tuple[PendingOrderRow | None, ClaimRefused | None]:
        """Move a card from pending to ``to`` atomically; say why when that is refused. ``on_claimed``
        runs in the same transaction when the claim wins (the order journal's row is opened there).
        ``actions``: only a card of one of these actions can be claimed (a card of another service's
        action pressed through a forged button is refused as handled). ``chat_id``: the chat the press came
        from (a front end always gives it: message ids are per chat, so the message alone names a message in
        every chat). ``account``: the user's account now (:func:`account_ref`; None: none); a card quoted
        for another one is voided and refused (a card made before cards recorded it is not checked)."""
        now = self.clock()
        async with self.db.write() as session:
            conditions = [col(PendingOrderRow.id) == token, col(PendingOrderRow.owner_id) == user_id,
                          col(PendingOrderRow.message_id) == message_id,
                          col(PendingOrderRow.status) == CardStatus.PENDING, col(PendingOrderRow.expires_at) > now]
            if chat_id is not None:
                conditions.append(col(PendingOrderRow.chat_id) == chat_id)
            if not isinstance(account, _AnyAccount):
                conditions.append(or_(col(PendingOrderRow.account_ref).is_(None),
                                      col(PendingOrderRow.account_ref) == account))
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
        if row.owner_id != user_id or row.message_id != message_id or (chat_id is not None and row.chat_id != chat_id):
            return row, ClaimRefused.NOT_OWNER
        if row.status == CardStatus.VOIDED:
            return row, ClaimRefused.ACCOUNT_CHANGED
        if row.status == CardStatus.PENDING and row.expires_at <= now:
            await self.finish(token, CardStatus.EXPIRED, None, only_from=CardStatus.PENDING)
            return row, ClaimRefused.EXPIRED
        if row.status == CardStatus.EXPIRED:
            return row, ClaimRefused.EXPIRED
        if (row.status == CardStatus.PENDING and not isinstance(account, _AnyAccount)
                and row.account_ref is not None and row.account_ref != account):
            await self.finish(token, CardStatus.VOIDED, "account changed", only_from=CardStatus.PENDING)
            return row, ClaimRefused.ACCOUNT_CHANGED
        return row, ClaimRefused.ALREADY_HANDLED

    async def void_pending(self, owner_id: int, reason: str = "account changed") -> list[str]:
        """The user's account changed (/login, /logout, a paper /reset): every card of theirs still pending is
        voided (a press on one says so and sends nothing). Returns their tokens."""
        async with self.db.write() as session:
            tokens = list((await session.exec(select(PendingOrderRow.id).where(
                col(PendingOrderRow.owner_id) == owner_id, col(PendingOrderRow.status) == CardStatus.PENDING))).all())
            if tokens:
                await session.exec(update(PendingOrderRow).where(
                    col(PendingOrderRow.id).in_(tokens), col(PendingOrderRow.status) == CardStatus.PENDING)
                    .values(status=CardStatus.VOIDED, result=reason, updated_at=self.clock()))
        if tokens:
            log.info("pending cards voided: the account changed", extra={"user_id": owner_id, "count": len(tokens)})
        return tokens

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
