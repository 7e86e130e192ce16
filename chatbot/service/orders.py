"""Orders: a /buy, /sell, /cancel or /modify (a revision, 정정) becomes a card (every check done before anything reaches KIS);
the owner's Confirm claims it, the front end shows it is being sent, the order is journalled and
submitted exactly once, and the outcome comes back as a view. Outcomes left unknown are handed to
reconciliation; fills of a placed order are watched from before it is sent. KRX cards talk to the
user's broker (:class:`chatbot.broker.Broker`, ``account.broker``), never to a KIS client."""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from chatbot import broker as b
from chatbot.kis import protocol as p
from chatbot.kis.errors import KisError, KisOrderRejected, KisOrderUncertain
from chatbot.kis.protocol import KST
from chatbot.markets.money import Money, whole_units
from chatbot.markets.profile import KRX, Market
from chatbot.service.accounts import AccountProvider, UserAccount
from chatbot.service.cards import (
    ANY_ACCOUNT,
    AccountCheck,
    CardStatus,
    CardStore,
    ClaimRefused,
    account_ref,
    card_view,
)
from chatbot.service.errors import UserError, kis_errors, off_tick
from chatbot.service.inputs import (
    MAX_ARG_LENGTH,
    parse_limit_price,
    parse_order_no,
    parse_price,
    parse_quantity,
    split_order_args,
)
from chatbot.service.journal import DatabaseUnavailable, OrderJournal, Settling, retry_write
from chatbot.service.market_data import MarketData
from chatbot.service.views import (
    ConfirmResult,
    FailReason,
    Mode,
    OpenOrder,
    OrderCard,
    OrderDraft,
    OrderSide,
    Outcome,
    StandingOrder,
    fail_reason,
)
from chatbot.storage.tables import PendingOrderRow
from chatbot.symbols import Symbol

log = logging.getLogger(__name__)

# The front end's "it is being sent" (the card edited to say so): called once the press has won,
# before anything is sent. Whatever it does, raises included, the order is then sent and settled.
ShowSending = Callable[[OrderCard], Awaitable[None]]

ACCOUNT_CHANGED = FailReason.ACCOUNT_CHANGED  # the card was made for another account; nothing was sent
ORDER_ACTIONS = ("order", "reserve", "cancel", "revise", "reset")  # the cards this service claims (conditional orders have theirs)
# A new price with cents or a dollar sign ("151.005", "$151.01"): a US order's, perhaps one no longer open
_DOLLARS = re.compile(r"^[$＄]?[0-9][0-9,]*\.[0-9]+$|^[$＄][0-9][0-9,]*$")
_REFUSALS = {
    ClaimRefused.UNKNOWN: Outcome.UNKNOWN,
    ClaimRefused.NOT_OWNER: Outcome.NOT_OWNER,
    ClaimRefused.EXPIRED: Outcome.EXPIRED,
    ClaimRefused.ALREADY_HANDLED: Outcome.ALREADY_HANDLED,
    ClaimRefused.ACCOUNT_CHANGED: Outcome.ACCOUNT_CHANGED,
}


class VenueOrders(Protocol):
    """Cards of another market (US): how its rows read as cards and how a claimed one is submitted."""

    def card(self, row: PendingOrderRow) -> OrderCard: ...

    async def submit(self, row: PendingOrderRow, card: OrderCard, account: UserAccount,
                     journal_id: int) -> ConfirmResult: ...


@dataclass(frozen=True, slots=True)
class _Claimed:
    """A card this press won: it is ``submitting`` in the database and must be submitted."""

    row: PendingOrderRow
    card: OrderCard
    journal_id: int | None = None  # None: not an order (a paper-account reset)
    account: UserAccount | None = None  # the account the claim was checked against: the one it is sent on


@dataclass(slots=True)
class _Sending:
    """Whether the request may have left (the journal took the snapshot and the time of sending)."""

    started: bool = False
    known: set[str] = field(default_factory=set)  # the snapshot of the day's orders taken before sending
    callback: Callable[[set[str]], Awaitable[None]] | None = None


class Orders:
    def __init__(self, accounts: AccountProvider, cards: CardStore, journal: OrderJournal, market: MarketData,
                 mode: Mode, settling: Settling, *, allow_real_orders: bool = False, process_id: str,
                 watch_fills: Callable[[int, int], Awaitable[None]] | None = None,
                 on_uncertain: Callable[[], None] | None = None,
                 renew_paper_account: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.accounts = accounts
        self.cards = cards
        self.journal = journal
        self.market = market
        self.mode = mode
        self.settling = settling
        self.allow_real_orders = allow_real_orders
        self.process_id = process_id  # the runtime lease's owner: journal rows say who sent them
        self.watch_fills = watch_fills  # (user, chat): a market order fills at once, listen first
        self.on_uncertain = on_uncertain  # an outcome left unknown: reconciliation looks
        self.renew_paper_account = renew_paper_account  # the simulator: a reset card starts the account over
        self.db_retry_seconds = 5.0  # how long a database write on the order path is retried in line
        self.outcomes: collections.Counter[str] = collections.Counter()  # settled cards by outcome (metrics)
        self.us: VenueOrders | None = None  # US cards (market "US"): built and submitted there

    # -- cards ----------------------------------------------------------------------------------------------
    async def prepare_order(self, user_id: int, chat_id: int, side: OrderSide, args: Sequence[str]) -> OrderCard:
        """``<symbol words…> <qty> [<price>|market]``: validate everything and store a card; nothing is
        sent to KIS's order endpoint."""
        request = split_order_args(args, "usage_buy" if side is OrderSide.BUY else "usage_sell",
                                   lambda text: self.market.symbols.lookup(text).symbol is not None)
        self.check_real_allowed()
        self.market.check_maintenance()
        quantity = parse_quantity(request.quantity)
        price = parse_price(request.price)
        try:
            symbol = self.market.resolve(request.symbol)
        except UserError as err:
            if err.key == "ambiguous_symbol":  # each candidate may bring this order's card (not a quote)
                err.params["order"] = OrderDraft(side, quantity, price)
            raise
        account = await self.accounts.for_user(user_id)
        broker = account.broker
        with kis_errors():
            quote = await broker.quote(symbol.code, kind=symbol.kind)
            if quote.halted:  # KIS refuses it (거래정지): no card to confirm
                raise UserError("order_halted", name=symbol.name_ko, code=symbol.code)
            if price is not None:  # the day's limits first: no tick advice for a price that cannot trade
                _check_price(quote, Money.krw(price), symbol)
            if side is OrderSide.SELL:
                held = next((h for h in await broker.holdings() if h.symbol == symbol.code), None)
                have = held.orderable_quantity if held else 0
                if quantity > have:
                    raise UserError("insufficient_holdings", have=have, want=quantity, name=symbol.name_ko)
            else:
                power = await broker.buying_power(symbol.code, None if price is None else Money.krw(price))
                if quantity > power.max_quantity:
                    raise UserError("insufficient_cash", max_quantity=power.max_quantity,
                                    cash=power.orderable_cash.quantize())
        row = await self.cards.create(owner_id=user_id, chat_id=chat_id, environment=self.mode.setting,
                                      action="order", side=side.value, code=symbol.code, name=symbol.name_ko,
                                      quantity=quantity, price=price, quoted_price=quote.price.amount,
                                      currency=symbol.currency.value, account_ref=self.account_ref_for(user_id, account))
        return self._card(row, symbol)

    async def prepare_cancel(self, user_id: int, chat_id: int, order_no_text: str) -> OrderCard:
        """A card for cancelling one of the user's open orders (what is left of it)."""
        self.check_real_allowed()
        account = await self.accounts.for_user(user_id)  # the card is for the account the order was found on
        order = await self._open_order(user_id, order_no_text, missing="no_such_open_order", account=account)
        symbol = self.market.symbols.by_code(order.symbol) or Symbol(order.symbol, order.name, order.name, "")
        price = order.price.amount if order.price is not None else None
        row = await self.cards.create(owner_id=user_id, chat_id=chat_id, environment=self.mode.setting,
                                      action="cancel", side=order.side.value, code=order.symbol, name=symbol.name_ko,
                                      quantity=order.cancellable_quantity, price=price or None,
                                      quoted_price=price or 0, currency=symbol.currency.value,
                                      order_no=order.order_no, branch=order.branch, exchange=order.exchange,
                                      account_ref=self.account_ref_for(user_id, account))
        return self._card(row, symbol)

    async def open_order(self, user_id: int, order_no_text: str) -> OpenOrder:
        """One of the user's own open orders (their account's list; another user's number is not in it), as
        a view: its price in money."""
        return await self._open_order(user_id, order_no_text)

    async def _open_order(self, user_id: int, order_no_text: str, missing: str = "no_such_open_order_revise",
                          account: UserAccount | None = None) -> b.OpenOrder:
        wanted = parse_order_no(order_no_text)
        account = account or await self.accounts.for_user(user_id)
        with kis_errors():
            orders = await account.broker.open_orders()
        order = next((o for o in orders if p.order_no_key(o.order_no) == wanted), None)
        if order is None:
            raise UserError(missing, order_no=order_no_text.strip()[:MAX_ARG_LENGTH])
        return order

    async def prepare_revise(self, user_id: int, chat_id: int, args: Sequence[str]) -> OrderCard:
        """``<order_no> <new price> [<new qty>]``: a card for revising one of the user's open orders —
        what is left of it, or ``new qty`` of that — to a new limit price, checked on the tick and
        within the day's limits. The order must be in the user's own account's list of open orders."""
        if len(args) not in (2, 3):
            raise UserError("usage_modify")
        self.check_real_allowed()
        self.market.check_maintenance()
        parse_order_no(args[0])
        try:
            price = parse_limit_price(args[1])  # a revision to a market order is not offered: the card shows a price
        except UserError as err:
            if err.key == "bad_limit_price" and _DOLLARS.match(args[1].strip()):  # "151.005": a US order's?
                await self._open_order(user_id, args[0])  # no such open order is the answer (US ones were looked at)
            raise
        wanted_quantity = parse_quantity(args[2]) if len(args) == 3 else None
        account = await self.accounts.for_user(user_id)  # the order looked up and checked on it; the card is for it
        order = await self._open_order(user_id, args[0], account=account)
        with kis_errors():
            symbol = self.market.symbols.by_code(order.symbol) or Symbol(order.symbol, order.name, order.name, "")
            remaining = order.cancellable_quantity
            quantity = remaining if wanted_quantity is None else wanted_quantity
            if quantity > remaining:
                raise UserError("revise_quantity_too_large", want=quantity, remaining=remaining)
            if order.price is not None and price == order.price.amount and quantity == remaining:
                raise UserError("revise_nothing_changes", order_no=order.order_no, price=Money.krw(price))
            quote = await account.broker.quote(symbol.code, kind=symbol.kind)
            if quote.halted:
                raise UserError("order_halted", name=symbol.name_ko, code=symbol.code)
            _check_price(quote, Money.krw(price), symbol)
            if order.side is OrderSide.BUY:
                await _check_revise_cash(account.broker, order, quote, price, quantity)
        row = await self.cards.create(owner_id=user_id, chat_id=chat_id, environment=self.mode.setting,
                                      action="revise", side=order.side.value, code=order.symbol, name=symbol.name_ko,
                                      quantity=quantity, price=price,
                                      quoted_price=order.price.amount if order.price is not None else 0,
                                      currency=symbol.currency.value, order_no=order.order_no, branch=order.branch,
                                      exchange=order.exchange, account_ref=self.account_ref_for(user_id, account))
        return replace(self._card(row, symbol), left_unrevised=remaining - quantity)

    def account_ref_for(self, user_id: int, account: UserAccount) -> str:
        """The account a card is for: the one its checks were made on (read once, at the start of preparing it)."""
        return account_ref(self.mode.setting, user_id, account.account)

    async def attach_card(self, card: OrderCard, owner_id: int, message_id: int, *, in_place: bool = False,
                          moved_from: int | None = None) -> bool:
        """Record which message shows the card: only a press on that message counts, and the owner's
        time to decide starts now. False: refused, the card superseded — a message shows one card (another
        is pending there; ``in_place``, a message turned into the card: one ever was). A front end turning a
        message into a card attaches it first and shows it only if this says yes (:meth:`CardStore.attach_message`)."""
        return await self.cards.attach_message(card.token, owner_id, message_id, in_place=in_place,
                                               moved_from=moved_from) is not None

    # -- the press -----------------------------------------------------------------------------------------
    async def confirm(self, token: str, user_id: int, message_id: int, show_sending: ShowSending, *,
                      chat_id: int | None = None) -> ConfirmResult:
        """Confirm pressed on a card: claim it (only the owner's first press on the card's own message in
        its own chat, before it expires, for the account the user has now, wins; any other press is
        refused, ``result.refused``, and changes nothing), let the front end show it is being sent, journal
        and submit it exactly once — on the account the claim was checked against — and return the
        outcome. Once claimed, the card is submitted and settled whatever ``show_sending`` does."""
        claimed = await self._claim(token, user_id, message_id, chat_id)
        if isinstance(claimed, ConfirmResult):
            return claimed
        try:
            await show_sending(claimed.card)
        except Exception:
            log.warning("could not show that the card is being sent; sending it all the same", exc_info=True)
        except BaseException:  # cancelled before anything left: reconciliation settles it as not placed
            if claimed.journal_id is not None:
                self.settling.in_flight.discard(claimed.journal_id)
            raise
        return await self._submit(claimed)

    async def dismiss(self, token: str, user_id: int, message_id: int, *, chat_id: int | None = None
                      ) -> ConfirmResult:
        """Cancel pressed on a card: the same single use as :meth:`confirm`; nothing is sent."""
        row, refused = await self.cards.claim(token, user_id, message_id, CardStatus.DISMISSED,
                                             actions=ORDER_ACTIONS, chat_id=chat_id)
        if refused is not None or row is None:
            return self._refusal(row, refused)
        return ConfirmResult(Outcome.DISMISSED, self._card(row))

    def _refusal(self, row: PendingOrderRow | None, refused: ClaimRefused | None) -> ConfirmResult:
        card = self._card(row) if row is not None and refused is not ClaimRefused.NOT_OWNER else None
        return ConfirmResult(_REFUSALS[refused or ClaimRefused.UNKNOWN], card)

    async def _claim(self, token: str, user_id: int, message_id: int, chat_id: int | None
                     ) -> _Claimed | ConfirmResult:
        """The atomic single use. An order's journal row is opened in the same transaction: no card is
        ever being submitted without one. The user's account is read first, afresh from the database (not
        this process's cache): a card quoted for another one is refused (voided) and the account read is the
        one a won card is sent on."""
        opened: list[int] = []
        account: UserAccount | None = None
        now: AccountCheck = ANY_ACCOUNT
        try:
            account = await self.accounts.current(user_id)  # read afresh: another replica's /logout counts
            now = account_ref(self.mode.setting, user_id, account.account)
        except UserError:  # no account now (logged out of virtual/real mode): a card quoted for one is void
            now = None
        except Exception as exc:  # noqa: BLE001 -- unreadable now: a won card fails unsent in _submit
            log.warning("no KIS account to check a pressed card against",
                        extra={"card": token, "error": type(exc).__name__})

        async def open_journal(session: AsyncSession, row: PendingOrderRow) -> None:
            if row.action in ("order", "cancel", "revise", "reserve"):  # reserve: a US reservation order
                opened.append(await self.journal.add(session, row, self.process_id))
                # ours to settle from the moment the commit makes the row visible: a reconciliation pass
                # then would take it for one left by a crash before sending, and tell it "not placed"
                self.settling.in_flight.add(opened[-1])

        try:
            row, refused = await self.cards.claim(token, user_id, message_id, CardStatus.SUBMITTING, open_journal,
                                                 actions=ORDER_ACTIONS, chat_id=chat_id,
                                                 account=now)
        except BaseException:
            self.settling.in_flight.difference_update(opened)  # rolled back: no such row
            raise
        if refused is not None or row is None:
            self.settling.in_flight.difference_update(opened)
            return self._refusal(row, refused)
        journal_id = opened[0] if opened else None
        return _Claimed(row, self._card(row), journal_id, account)

    async def _submit(self, claimed: _Claimed) -> ConfirmResult:
        """Send a claimed card to KIS (exactly once) and settle it."""
        row, card = claimed.row, claimed.card
        user_id, token = row.owner_id, row.id
        if claimed.account is None and row.account_ref is not None:  # the claim could not check the account
            try:
                claimed = replace(claimed, account=await self.accounts.current(user_id))
            except Exception as exc:  # noqa: BLE001 -- nothing was sent; any fault settles the card as failed
                log.warning("no KIS account for a claimed card", extra={"card": token, "error": type(exc).__name__})
                return await self._not_sent(claimed, fail_reason(exc))
            assert claimed.account is not None
            if account_ref(self.mode.setting, user_id, claimed.account.account) != row.account_ref:
                log.warning("a pressed card was for another account; nothing sent", extra={"card": token})
                return await self._not_sent(claimed, ACCOUNT_CHANGED)
        if claimed.journal_id is None:  # a paper-account reset: nothing goes to KIS's order endpoint
            if self.mode is Mode.REAL and not self.allow_real_orders:
                await self.cards.finish(token, CardStatus.FAILED, FailReason.REAL_DISABLED)
                return ConfirmResult(Outcome.REAL_DISABLED, card)
            assert self.renew_paper_account is not None
            await self.renew_paper_account(user_id)
            await self.cards.finish(token, CardStatus.PLACED, "paper account renewed")
            return ConfirmResult(Outcome.RESET_DONE, card)
        journal_id = claimed.journal_id
        try:
            if self.mode is Mode.REAL and not self.allow_real_orders:
                return await self._settle(row, journal_id, Outcome.REAL_DISABLED, card,
                                          message=FailReason.REAL_DISABLED)
            try:
                account = claimed.account or await self.accounts.for_user(user_id)
            except Exception as exc:  # noqa: BLE001 -- nothing was sent; any fault settles the card as failed
                log.warning("no KIS account for a claimed card", extra={"card": token, "error": type(exc).__name__})
                return await self._settle(row, journal_id, Outcome.FAILED, card, message=fail_reason(exc))
            if row.market != "KRX":  # a US card: its prices are dollars (ten-thousandths), its path its own
                if self.us is None:
                    return await self._settle(row, journal_id, Outcome.FAILED, card, message=FailReason.US_NOT_OFFERED)
                return await self.us.submit(row, card, account, journal_id)
            if row.action == "cancel":
                return await self._submit_cancel(row, card, account, journal_id)
            if row.action == "revise":
                return await self._submit_revise(row, card, account, journal_id)
            return await self._submit_order(row, card, account, journal_id)
        finally:
            self.settling.in_flight.discard(journal_id)

    async def _not_sent(self, claimed: _Claimed, message: str) -> ConfirmResult:
        """A won card that is not to be sent after all: settled as failed (nothing left), and told."""
        if claimed.journal_id is None:
            await self.cards.finish(claimed.row.id, CardStatus.FAILED, message)
            return ConfirmResult(Outcome.FAILED, claimed.card, message=message)
        try:
            return await self._settle(claimed.row, claimed.journal_id, Outcome.FAILED, claimed.card, message=message)
        finally:
            self.settling.in_flight.discard(claimed.journal_id)

    def _before_sending(self, journal_id: int, account: UserAccount) -> _Sending:
        """What the submitter calls with its snapshot just before sending: the journal row gets the
        account, the snapshot and the time, committed (retried a while); if the database will not
        take it, nothing is sent."""
        sending = _Sending()

        async def on_sending(known: set[str]) -> None:
            await retry_write(lambda: self.journal.mark_sending(journal_id, str(account.account), known),
                              self.db_retry_seconds, "journal before sending")
            sending.known, sending.started = known, True

        sending.callback = on_sending
        return sending

    async def _submit_order(self, row: PendingOrderRow, card: OrderCard, account: UserAccount,
                            journal_id: int) -> ConfirmResult:
        if self.watch_fills is not None:  # a market order fills at once: listen for its notice first
            try:
                await self.watch_fills(row.owner_id, row.chat_id)
            except Exception:  # fill pushes are a convenience; the order goes ahead
                log.exception("could not start fill notifications")
        sending = self._before_sending(journal_id, account)
        try:
            placed = await account.broker.place(card.side, row.code, row.quantity,
                                                None if row.price is None else Money.krw(whole_units(row.price)),
                                                on_sending=sending.callback)
        except DatabaseUnavailable:
            return await self._settle(row, journal_id, Outcome.FAILED, card, message=FailReason.DATABASE_UNAVAILABLE)
        except KisOrderRejected as exc:
            return await self._settle(row, journal_id, Outcome.REJECTED, card, msg_cd=exc.msg_cd, message=exc.msg1)
        except KisOrderUncertain as exc:
            return await self._settle(row, journal_id, Outcome.UNCERTAIN, card, msg_cd=exc.msg_cd, message=str(exc))
        except KisError as exc:  # proven not placed: gateway refusal, unreachable, token wait, no snapshot
            return await self._settle(row, journal_id, Outcome.FAILED, card, msg_cd=exc.msg_cd,
                                      message=exc.msg1 or fail_reason(exc))
        detail = "found by lookup after an unknown outcome" if placed.reconciled else None
        return await self._settle(row, journal_id, Outcome.PLACED, card, order_no=placed.ack.order_no, message=detail)

    async def _submit_cancel(self, row: PendingOrderRow, card: OrderCard, account: UserAccount,
                             journal_id: int) -> ConfirmResult:
        assert row.order_no is not None
        sending = self._before_sending(journal_id, account)
        try:
            ack = await account.broker.cancel(_carded_order(row), on_sending=sending.callback)
        except DatabaseUnavailable:
            return await self._settle(row, journal_id, Outcome.FAILED, card, message=FailReason.DATABASE_UNAVAILABLE)
        except KisOrderRejected as exc:  # not cancelled: the trader learns how the order stands
            return await self._settle(row, journal_id, Outcome.REJECTED, card, msg_cd=exc.msg_cd, message=exc.msg1,
                                      original=await standing_order(account.broker, row.order_no))
        except KisError as exc:
            if sending.started and exc.maybe_sent:  # did the cancel land? the day's list says (its own row)
                found = await _found_change(account.broker, row, sending.known)
                if found is not None:
                    return await self._settle(row, journal_id, Outcome.CANCELLED_ORDER, card,
                                              order_no=found, message="confirmed by lookup")
                return await self._settle(row, journal_id, Outcome.UNCERTAIN, card, msg_cd=exc.msg_cd,
                                          message=str(exc))
            return await self._settle(row, journal_id, Outcome.FAILED, card, msg_cd=exc.msg_cd,
                                      message=exc.msg1 or fail_reason(exc))
        return await self._settle(row, journal_id, Outcome.CANCELLED_ORDER, card, order_no=ack.order_no)

    async def _submit_revise(self, row: PendingOrderRow, card: OrderCard, account: UserAccount,
                             journal_id: int) -> ConfirmResult:
        """The order is looked up again first (its exchange, what is left of it); nothing is sent when
        it is no longer open. Then the revision goes like a cancel: journalled with the snapshot, sent
        once; an unknown outcome is looked up in the day's list (a new row pointing back to the order),
        else left to reconciliation."""
        assert row.order_no is not None and row.price is not None
        price = Money.krw(whole_units(row.price))  # KRX: whole won
        key = p.order_no_key(row.order_no)
        try:
            orders = await account.broker.open_orders()
        except KisError as exc:  # nothing was sent
            return await self._settle(row, journal_id, Outcome.FAILED, card, msg_cd=exc.msg_cd,
                                      message=exc.msg1 or fail_reason(exc))
        order = next((o for o in orders if p.order_no_key(o.order_no) == key), None)
        if order is None:
            return await self._settle(row, journal_id, Outcome.FAILED, card,
                                      message=FailReason.NOTHING_LEFT)  # filled or cancelled meanwhile
        all_remaining = row.quantity >= order.cancellable_quantity  # a fill meanwhile: revise what is left
        side = OrderSide(row.side)
        # the card's order (as it was carded), on the exchange and with what is left as listed now
        carded = replace(order, order_no=row.order_no, branch=row.branch or order.branch, side=side, symbol=row.code)
        sending = self._before_sending(journal_id, account)
        try:
            ack = await account.broker.revise(carded, price, None if all_remaining else row.quantity,
                                              on_sending=sending.callback)
        except DatabaseUnavailable:
            return await self._settle(row, journal_id, Outcome.FAILED, card, message=FailReason.DATABASE_UNAVAILABLE)
        except KisOrderRejected as exc:  # not revised: the trader learns how the order stands
            return await self._settle(row, journal_id, Outcome.REJECTED, card, msg_cd=exc.msg_cd, message=exc.msg1,
                                      original=await standing_order(account.broker, row.order_no))
        except KisError as exc:
            if sending.started and exc.maybe_sent:  # did the revision land? the day's list says
                intent = b.OrderIntent(side, row.code, row.quantity, price, row.order_no, revise=True)
                with contextlib.suppress(KisError):
                    found = await account.broker.find_orders(dt.datetime.now(KST).date(), intent, sending.known)
                    if found:
                        return await self._settle(row, journal_id, Outcome.REVISED_ORDER, card,
                                                  order_no=found[0].order_no, message="confirmed by lookup")
                return await self._settle(row, journal_id, Outcome.UNCERTAIN, card, msg_cd=exc.msg_cd,
                                          message=str(exc))
            return await self._settle(row, journal_id, Outcome.FAILED, card, msg_cd=exc.msg_cd,
                                      message=exc.msg1 or fail_reason(exc))
        return await self._settle(row, journal_id, Outcome.REVISED_ORDER, card, order_no=ack.order_no)

    async def _settle(self, row: PendingOrderRow, journal_id: int, outcome: Outcome, card: OrderCard, *,
                      order_no: str | None = None, msg_cd: str = "", message: str | None = None,
                      original: StandingOrder | None = None) -> ConfirmResult:
        """Write the outcome (journal and card, one transaction), retried with back-off; when the
        database still refuses, the user is told all the same (the result is returned) and the write
        waits in memory until the database takes it (:class:`UnwrittenOutcomes`). An unknown outcome
        is not told as final: reconciliation keeps looking for the order."""
        status = {Outcome.PLACED: CardStatus.PLACED, Outcome.CANCELLED_ORDER: CardStatus.PLACED,
                  Outcome.REVISED_ORDER: CardStatus.PLACED, Outcome.REJECTED: CardStatus.REJECTED, Outcome.UNCERTAIN: CardStatus.UNCERTAIN}.get(
            outcome, CardStatus.FAILED)
        journal_status = {Outcome.PLACED: "accepted", Outcome.CANCELLED_ORDER: "accepted",
                          Outcome.REVISED_ORDER: "accepted"}.get(outcome, status.value)
        final = outcome is not Outcome.UNCERTAIN

        async def write() -> None:
            await self.journal.settle(
                journal_id, journal_status, kis_order_no=order_no, msg_cd=msg_cd or None, message=message,
                told=final, also=lambda session: self.cards.finish_in(session, row.id, status, order_no or message))

        try:
            await retry_write(write, self.db_retry_seconds, "order outcome")
        except DatabaseUnavailable:
            log.error("order outcome told but not written; it is written when the database is back",
                      extra={"card": row.id, "outcome": outcome.value, "order_no": order_no})
            self.settling.unwritten.add(journal_id, order_no, write)
        self.outcomes[outcome.value] += 1
        log.info("order card settled", extra={"card": row.id, "outcome": outcome.value, "order_no": order_no,
                                              "msg_cd": msg_cd})
        if not final and self.on_uncertain is not None:
            self.on_uncertain()
        return ConfirmResult(outcome, card, order_no=order_no, msg_cd=msg_cd, message=message or "",
                             original=original)

    # -- start-up and shutdown -----------------------------------------------------------------------------
    async def recover(self) -> int:
        """At start-up: a card left in ``submitting`` without a journal row was never sent (every
        version opened the journal before sending); it gets one, never sent, which reconciliation
        settles as not placed and tells. A paper reset left half-way is marked uncertain."""
        stale = await self.cards.stale_submitting()
        count = 0
        for row in stale:
            if row.action == "reset":
                await self.cards.finish(row.id, CardStatus.UNCERTAIN, "bot restarted while submitting")
                count += 1
            elif await self.journal.by_key(row.id) is None:
                async with self.journal.db.write() as session:
                    await self.journal.add(session, row, "")
                count += 1
        if count:
            log.warning("cards left in submission by a restart handed to reconciliation", extra={"count": count})
        return count

    async def aclose(self) -> None:
        await self.settling.unwritten.stop()  # outcomes still waiting for the database: one last try

    # -- helpers -----------------------------------------------------------------------------------------------
    def check_real_allowed(self) -> None:
        if self.mode is Mode.REAL and not self.allow_real_orders:
            raise UserError("real_disabled")

    def _card(self, row: PendingOrderRow, symbol: Symbol | None = None) -> OrderCard:
        if row.market != "KRX" and self.us is not None:
            return self.us.card(row)
        symbol = symbol or self.market.symbols.by_code(row.code) or Symbol(row.code, row.name, row.name, "")
        return card_view(row, symbol, self.mode, self.market.calendar, int(self.cards.ttl.total_seconds()))


async def _check_revise_cash(broker: b.Broker, order: b.OpenOrder, quote: b.Quote, price: int, quantity: int) -> None:
    """A buy revised to a higher price (:func:`check_revise_cash`): the order reserves its price, or the upper
    limit for a market order, as KIS reserves one."""
    reserved = order.price.amount if order.price is not None and order.price.amount else \
        (quote.upper_limit.amount if quote.upper_limit is not None else 0)
    await check_revise_cash(broker, order, KRX, Money.krw(price), Money.krw(int(reserved)), quantity,
                            "revise_insufficient_cash")


class BuyingPowerSource(Protocol):
    """What :func:`check_revise_cash` asks of a broker (the domestic port, or the US broker)."""

    async def buying_power(self, symbol: str, price: Money | None = None) -> b.BuyingPower: ...


async def check_revise_cash(broker: BuyingPowerSource, order: b.OpenOrder, market: Market, price: Money,
                            reserved: Money, quantity: int, error: str) -> None:
    """A buy revised to a higher ``price`` than the ``reserved`` one a share: what the revised shares newly tie up
    (their cost at the new price less their cost at the reserved one, each with ``market``'s estimated commission)
    must fit the orderable cash, as a new order's must (:meth:`Orders.prepare_order`); else KIS refuses it
    (APBK0952) after the press. Refused with ``error`` (order_no, extra, cash, max_quantity): the most shares that
    fit. An estimate: KIS's own check stands."""
    if price.amount <= reserved.amount:
        return

    def extra(shares: int) -> Money:  # what revising ``shares`` at the new price ties up beyond the order's own
        new, old = price * shares, reserved * shares
        return (new + market.costs(new, sell=False)[0]) - (old + market.costs(old, sell=False)[0])

    with kis_errors():
        power = await broker.buying_power(order.symbol, price)
    cash = power.orderable_cash
    if extra(quantity).amount <= cash.amount:
        return
    most = min(quantity, int(cash.amount / (price.amount - reserved.amount)))
    while most > 0 and extra(most).amount > cash.amount:
        most -= 1
    raise UserError(error, order_no=order.order_no, extra=extra(quantity), cash=cash, max_quantity=most)


class OpenOrderLister(Protocol):
    """What :func:`standing_order` asks of a broker (the domestic port, or the US broker)."""

    async def open_orders(self) -> Sequence[b.OpenOrder]: ...


async def standing_order(broker: OpenOrderLister, order_no: str) -> StandingOrder:
    """How an order stands now, from the account's open orders (one look): what a trader whose revision or
    cancellation of it was refused needs to know. A failed look says so (``open`` None), never raises."""
    key = p.order_no_key(order_no)
    try:
        orders = await broker.open_orders()
    except KisError as exc:
        log.warning("could not look up an order after its revise/cancel was refused",
                    extra={"order_no": order_no, "error": type(exc).__name__})
        return StandingOrder(order_no, None)
    order = next((o for o in orders if p.order_no_key(o.order_no) == key), None)
    if order is None:
        return StandingOrder(order_no, False)
    return StandingOrder(order_no, True, order.cancellable_quantity, order.price)


def _check_price(quote: b.Quote, price: Money, symbol: Symbol) -> None:
    """A KRX limit price: within the day's limits first (no tick advice for a price that cannot trade),
    then on the instrument's tick (ETFs/ETNs by the fund table, else KIS's aspr_unit or the table)."""
    lower, upper = quote.lower_limit or Money.krw(0), quote.upper_limit or Money.krw(0)
    if not lower <= price <= upper:
        raise UserError("out_of_limits", price=price, lower=lower, upper=upper)
    tick = quote.tick_for(price, fund=symbol.is_fund)
    if price.amount % tick.amount:
        raise off_tick(price, tick)


class ChangeLister(Protocol):
    """What :func:`_found_change` asks of a broker (the domestic port, or the US broker)."""

    async def find_orders(self, day: dt.date, intent: b.OrderIntent, known: Collection[str], *,
                          listed_from: str = "") -> Sequence[b.Execution]: ...


async def _found_change(broker: ChangeLister, row: PendingOrderRow, known: Collection[str]) -> str | None:
    """The number of the cancellation a cancel card sent, when the day's list shows it (a row pointing back to
    the order, marked cancelled, not in the snapshot taken before sending); None when it does not, or when KIS
    cannot be asked. The order's absence from the open orders proves nothing: a fill takes it out too."""
    assert row.order_no is not None
    intent = b.OrderIntent(OrderSide(row.side), row.code, row.quantity, None, row.order_no)
    try:
        found = await broker.find_orders(dt.datetime.now(KST).date(), intent, known)
    except KisError as exc:
        log.warning("could not look a cancellation up after an unknown outcome",
                    extra={"order_no": row.order_no, "error": type(exc).__name__})
        return None
    return found[0].order_no if found else None


def _carded_order(row: PendingOrderRow) -> b.OpenOrder:
    """The open order a cancel card names, as the card stored it (what a cancel sends: its number, branch,
    side, symbol and the exchange the broker listed it on — KRX, NXT or SOR, journalled with it: KIS refuses
    a cancel sent to another exchange). A card stored before cards kept the exchange says KRX, as every
    card did then (the domestic adapter looks the order's exchange up itself)."""
    assert row.order_no is not None
    price = None if row.price is None else Money.krw(row.price)
    return b.OpenOrder(order_no=row.order_no, branch=row.branch or "", original_order_no="", symbol=row.code,
                       name=row.name, side=OrderSide(row.side), quantity=row.quantity, price=price,
                       filled_quantity=0, cancellable_quantity=row.quantity, time="",
                       exchange=row.exchange or p.EXCHANGE_KRX)
