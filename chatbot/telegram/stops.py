"""/stop, /tp, /trail, /bracket (a conditional order's confirmation card) and /stops (the armed ones,
each with a cancel button); a conditional order's pushes are rendered here for the notifier."""

from __future__ import annotations

import logging
from decimal import Decimal

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError

from chatbot.service.conditional import KINDS, ConditionalCard, ConditionalOrders, ConditionalView
from chatbot.service.errors import UserError
from chatbot.service.notices import ConditionalNotice
from chatbot.service.us_conditional import dollars
from chatbot.service.views import Mode, Money, Outcome
from chatbot.telegram import callbacks, render
from chatbot.telegram.cards import show_in_place
from chatbot.telegram.context import Context, lang, reply, services, user_errors
from chatbot.telegram.i18n import t

log = logging.getLogger(__name__)


def _money(value: Decimal | int | None) -> Money:
    """A won price of a domestic conditional order, as money (₩…): never a bare number."""
    return Money.krw(value if value is not None else 0)


def _usd(value: Decimal | int | None) -> str:
    return f"${value}" if value is not None else "—"


def _what(limit: Decimal | int | None, language: str, currency: str = "KRW",
          slippage: Decimal | None = None) -> str:
    if currency == "USD":
        if slippage is not None:
            return t("us_cond_at_marketable", language, limit=_usd(limit), percent=slippage) if limit is not None \
                else t("us_cond_at_marketable_later", language, percent=slippage)
        return t("us_cond_at_limit", language, limit=_usd(limit)) if limit is not None \
            else t("us_cond_at_marketable_short", language)
    return t("cond_at_market", language) if limit is None else t("cond_at_limit", language, limit=_money(limit))


def _when(kind: str, stop: Decimal | None, take: Decimal | None, percent: Decimal | None, language: str,
          currency: str = "KRW") -> str:
    us = currency == "USD"
    if kind == "trail":
        return t("us_cond_when_trail", language, percent=percent, price=_usd(stop)) if us \
            else t("cond_when_trail", language, percent=percent, price=_money(stop))
    parts = []
    if stop is not None:
        parts.append(t("us_cond_when_stop", language, price=_usd(stop)) if us
                     else t("cond_when_stop", language, price=_money(stop)))
    if take is not None:
        parts.append(t("us_cond_when_take", language, price=_usd(take)) if us
                     else t("cond_when_take", language, price=_money(take)))
    return " / ".join(parts)


def card(c: ConditionalCard, language: str) -> tuple[str, InlineKeyboardMarkup]:
    keyboard = InlineKeyboardMarkup([[
        InlineKeyboardButton(t("confirm", language), callback_data=callbacks.pack(callbacks.COND_CONFIRM, c.token)),
        InlineKeyboardButton(t("dismiss", language), callback_data=callbacks.pack(callbacks.COND_DISMISS, c.token)),
    ]])
    lines = [t("cond_card_title", language, badge=render.badge(c.mode, language))]
    if c.mode is Mode.REAL:
        lines.append("‼️ <b>REAL MONEY · 실전 계좌</b>")
    lines.append(f"<b>{t('cond_kind_' + c.kind, language)}</b> {render.symbol_name(c.symbol, language)} "
                 f"({c.symbol.code})")
    if c.currency == "USD":
        lines.append(t("us_cond_card_body", language, quantity=c.quantity, held=c.held, committed=c.committed,
                       when=_when(c.kind, c.stop, c.take, c.trail_percent, language, "USD"),
                       what=_what(c.limit, language, "USD", c.slippage_percent), price=_usd(c.price),
                       expires=c.expires_on.isoformat()))
    else:
        lines.append(t("cond_card_body", language, quantity=c.quantity, held=c.held, committed=c.committed,
                       when=_when(c.kind, c.stop, c.take, c.trail_percent, language), what=_what(c.limit, language),
                       price=_money(c.price), expires=c.expires_on.isoformat()))
    lines.append(t("card_expiry", language, seconds=c.ttl_seconds))
    return "\n".join(lines), keyboard


def _service(context: Context) -> ConditionalOrders:
    svc = services(context).conditional
    if svc is None:
        raise UserError("alerts_unavailable")
    return svc


async def _prepare(update: Update, context: Context, kind: str) -> None:
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    language = lang(update)
    svc = _service(context)
    prepared = await svc.prepare(user.id, chat.id, language, kind, context.args or [])
    text, keyboard = card(prepared, language)
    message = await reply(update, context, text, keyboard)
    await svc.attach_card(prepared.token, user.id, message.message_id)


@user_errors
async def pick(update: Update, context: Context) -> None:
    """A candidate stock offered for a /stop, /tp, /trail or /bracket whose stock was ambiguous: that
    order's confirmation card, as if typed with the stock's code (checked again like any typed one; nothing
    is armed before Confirm), in place of the candidates (one card per message)."""
    query = update.callback_query
    user, chat = update.effective_user, update.effective_chat
    assert query is not None and user is not None and chat is not None
    cb = callbacks.unpack(query.data)
    kind = callbacks.PICKED_COMMANDS.get(cb.kind) if cb is not None else None
    args = callbacks.command_args(cb.value) if cb is not None else None
    if kind not in KINDS or args is None:
        await query.answer(t("popup_unknown", lang(update)), show_alert=True)
        return
    language = lang(update)
    svc = _service(context)
    prepared = await svc.prepare(user.id, chat.id, language, kind, args)

    async def attach(message_id: int, in_place: bool, moved_from: int | None) -> bool:
        return await svc.attach_card(prepared.token, user.id, message_id, in_place=in_place, moved_from=moved_from)

    async def shown_as() -> tuple[str, InlineKeyboardMarkup]:
        return card(prepared, language)

    await show_in_place(update, context, attach, shown_as)


@user_errors
async def stop(update: Update, context: Context) -> None:
    """/stop <symbol> <qty> <trigger> [<limit>]: sell when a trade is at or below the trigger."""
    await _prepare(update, context, "stop")


@user_errors
async def take_profit(update: Update, context: Context) -> None:
    """/tp <symbol> <qty> <trigger> [<limit>]: sell when a trade is at or above the trigger."""
    await _prepare(update, context, "tp")


@user_errors
async def trail(update: Update, context: Context) -> None:
    """/trail <symbol> <qty> <N>%: sell when a trade is N% below the highest since arming."""
    await _prepare(update, context, "trail")


@user_errors
async def bracket(update: Update, context: Context) -> None:
    """/bracket <symbol> <qty> <stop> <take>: a stop and a take-profit, one cancelling the other."""
    await _prepare(update, context, "bracket")


@user_errors
async def card_button(update: Update, context: Context) -> None:
    """Confirm or Cancel on a conditional order's card (only the owner's first press counts)."""
    query = update.callback_query
    user, message = update.effective_user, update.callback_query.message if update.callback_query else None
    assert query is not None and user is not None
    language = lang(update)
    cb = callbacks.unpack(query.data)
    if cb is None or message is None:
        await query.answer(t("popup_unknown", language), show_alert=True)
        return
    svc = _service(context)
    if cb.kind == callbacks.COND_DISMISS:
        result = await svc.dismiss(cb.value, user.id, message.message_id, chat_id=message.chat.id)
    else:
        result = await svc.confirm(cb.value, user.id, message.message_id, chat_id=message.chat.id,
                                   language=language)
    if result.refused:
        await query.answer(t(render.POPUP_KEYS.get(result.outcome, "popup_unknown"), language), show_alert=True)
        if result.outcome is Outcome.ACCOUNT_CHANGED:  # the card says so (its buttons go)
            try:
                await query.edit_message_text(t("outcome_account_changed", language))
            except TelegramError as exc:
                log.warning("could not edit the conditional card", extra={"error": type(exc).__name__})
        return
    await query.answer()
    if result.outcome is Outcome.DISMISSED or result.view is None:
        text = t("cond_dismissed", language)
    else:
        view = result.view
        text = t("cond_armed", language, id=view.id, name=view.name, kind=t("cond_kind_" + view.kind, language))
    try:
        await query.edit_message_text(text)
    except TelegramError as exc:
        log.warning("could not edit the conditional card", extra={"error": type(exc).__name__})
        await reply(update, context, text)


def _line(v: ConditionalView, language: str) -> str:
    distance = f" · {'거리' if language == 'ko' else 'distance'} {v.distance_percent}%" \
        if v.distance_percent is not None else ""
    us = v.currency == "USD"
    if v.price is not None:
        distance += f" ({'현재' if language == 'ko' else 'now'} {_usd(v.price) if us else f'{v.price:,}'})"
    status = " · ⚡" if v.status == "firing" else ""
    return t("stops_line", language, id=v.id, name=("🇺🇸 " if us else "") + v.name, code=v.code,
             kind=t("cond_kind_" + v.kind, language), quantity=v.quantity,
             when=_when(v.kind, v.stop, v.take, v.trail_percent, language, v.currency)
             + (f" → {_what(v.limit, language, v.currency)}"), distance=distance, status=status)


@user_errors
async def stops(update: Update, context: Context) -> None:
    """/stops: the armed conditional orders, the distance to each trigger, a cancel button each."""
    assert update.effective_user is not None
    language = lang(update)
    text, keyboard = _stops_list(await _service(context).active(update.effective_user.id, language), language)
    await reply(update, context, text, keyboard)


def _stops_list(views: list[ConditionalView], language: str) -> tuple[str, InlineKeyboardMarkup | None]:
    """The /stops message: each armed order with its distance and a cancel button."""
    if not views:
        return t("no_conditionals", language), None
    text = "\n".join([t("stops_title", language, count=len(views))] + [_line(v, language) for v in views])
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton(
        f"🗑 #{v.id} {v.name}", callback_data=callbacks.pack(callbacks.COND_CANCEL, str(v.id)))]
        for v in views[:30] if v.status == "armed"])
    return text, keyboard


@user_errors
async def cancel_button(update: Update, context: Context) -> None:
    """A cancel button from /stops: the owner's own order, once."""
    query = update.callback_query
    assert query is not None and update.effective_user is not None
    cb = callbacks.unpack(query.data)
    if cb is None:
        await query.answer()
        return
    cancelled = await _service(context).cancel(update.effective_user.id, cb.value)
    language = lang(update)
    await query.answer(t("cond_cancelled", language, id=cancelled.id))
    # the list it was pressed on loses the cancelled order (it went on showing it, with its button)
    text, keyboard = _stops_list(await _service(context).active(update.effective_user.id, language), language)
    try:
        await query.edit_message_text(text, reply_markup=keyboard)
    except TelegramError as exc:
        log.warning("could not refresh the /stops list", extra={"error": type(exc).__name__})


def push_text(notice: ConditionalNotice) -> str:
    """A conditional order's push as its owner reads it."""
    language = notice.language
    if notice.currency == "USD":
        what = _what(dollars(notice.limit), language, "USD")
        if notice.stage == "triggered":
            return t("us_push_cond_triggered", language, id=notice.order_id, name=notice.name, code=notice.code,
                     price=_usd(dollars(notice.price)), time=_hms(notice.time), trigger=_usd(dollars(notice.trigger)),
                     quantity=notice.quantity, what=what)
    else:
        what = _what(notice.limit, language)
    if notice.stage == "triggered":
        return t("push_cond_triggered", language, id=notice.order_id, name=notice.name, code=notice.code,
                 price=str(notice.price_money), time=_hms(notice.time), trigger=str(notice.trigger_money), quantity=notice.quantity,
                 what=what)
    if notice.stage == "placed":
        reduced = t("push_cond_reduced", language, quantity=notice.quantity, requested=notice.requested) \
            if notice.requested > notice.quantity else ""
        return t("push_cond_placed", language, id=notice.order_id, name=notice.name, quantity=notice.quantity,
                 order_no=notice.order_no or "", reduced=reduced)
    if notice.stage == "uncertain":
        return t("push_cond_uncertain", language, id=notice.order_id)
    if notice.stage == "account":
        return t("push_cond_account", language, orders=notice.detail)
    if notice.stage == "expired":
        return t("push_cond_expired", language, id=notice.order_id, name=notice.name, code=notice.code)
    return t("push_cond_failed", language, id=notice.order_id, name=notice.name, detail=notice.detail or "—")


def _hms(text: str) -> str:
    return f"{text[:2]}:{text[2:4]}:{text[4:6]}" if len(text) == 6 else text
