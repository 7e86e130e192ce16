"""US views as Telegram HTML: dollars with their sign ($190.25, four decimals under $1), KRW only as
a labelled estimate, the session the market is in. (Self-contained: :mod:`.render` hands US cards here.)"""

from __future__ import annotations

import html
from decimal import Decimal

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from chatbot.service.us_views import (
    Money,
    UsBalanceView,
    UsCardDetail,
    UsOpenOrder,
    UsPendingReservation,
    UsQuoteView,
    UsStatusView,
)
from chatbot.service.views import Mode, OrderCard, OrderSide
from chatbot.telegram import callbacks
from chatbot.telegram.i18n import t

SIGN_MARK = {"1": "⬆️", "2": "🔺", "3": "⏺", "4": "⬇️", "5": "🔻"}
FLAG = "🇺🇸"


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def usd(money: Money) -> str:
    return str(money)


def amount(money: Money) -> str:
    """A dollar amount (a total, a fee, cash, P/L): always cents, unlike a price under $1."""
    sign = "-" if money.amount < 0 else ""
    return f"{sign}${abs(money.amount):,.2f}"


def signed_amount(money: Money) -> str:
    return f"+{amount(money)}" if money.amount > 0 else amount(money)


def signed_usd(money: Money) -> str:
    return f"+{money}" if money.amount > 0 else str(money)


def rate_text(rate: Decimal) -> str:
    return f"{rate:,.2f}"


def session_name(session: str, lang: str) -> str:
    return t(f"us_session_{session}", lang)


def krw_estimate(money: Money | None, rate: Decimal, lang: str) -> str:
    if money is None or rate <= 0:
        return t("us_no_rate", lang)
    return t("us_krw_estimate", lang, krw=str(money), rate=rate_text(rate))


def _krw(money: Money, rate: Decimal) -> Money | None:
    return Money.krw((money.amount * rate).quantize(Decimal(1))) if rate > 0 else None


def quote(view: UsQuoteView, lang: str) -> str:
    s = view.symbol
    rate = f"{view.change_rate:+.2f}%"
    lines = [
        f"<b>{esc(s.display_name(lang))}</b> ({esc(s.code)}) · {esc(view.exchange)} {FLAG}",
        f"<b>{usd(view.price)}</b> {SIGN_MARK.get(view.sign, '')} {signed_usd(view.change)} ({rate})",
    ]
    if view.open is not None and view.high is not None and view.low is not None:
        lines.append(t("us_day_range", lang, open=usd(view.open), high=usd(view.high), low=usd(view.low)))
    lines.append(t("us_volume", lang, volume=f"{view.volume:,}", base=usd(view.previous_close)))
    session = session_name(view.session, lang)
    if view.session == "regular":
        lines.append(t("us_session_now", lang, session=session))
    else:
        lines.append(t("us_session_next", lang, session=session, next_open=view.next_open.strftime("%m-%d %H:%M")))
    lines.append(krw_estimate(view.price_krw, view.krw_per_usd, lang))
    if not view.tradable:
        lines.append(t("us_not_tradable", lang))
    return "\n".join(lines)


# -- cards ------------------------------------------------------------------------------------------------
def _badge(mode: Mode, lang: str) -> str:
    return t(f"mode_{mode.value}", lang)


def _price_words(us: UsCardDetail, lang: str) -> str:
    kind = t(f"us_type_{us.order_type}", lang)
    return f"{kind} {usd(us.price)}" if us.price is not None else kind


def _meets(us: UsCardDetail, lang: str) -> str:
    when = us.next_open.strftime("%m-%d %H:%M") if us.next_open else ""
    if us.meets == "reservation":
        return t("us_meets_reservation", lang, next_open=when)
    if us.meets == "open":
        return t("us_meets_open", lang, next_open=when)
    if us.meets == "close":
        if us.next_close is not None:
            return t("us_meets_close_at", lang, next_close=us.next_close.strftime("%m-%d %H:%M"))
        return t("us_meets_close", lang)
    return t("us_meets_now", lang, session=session_name(us.session, lang))


def card(c: OrderCard, lang: str) -> tuple[str, InlineKeyboardMarkup]:
    assert c.us is not None
    us = c.us
    keyboard = InlineKeyboardMarkup([[
        InlineKeyboardButton(t("confirm", lang), callback_data=callbacks.pack(callbacks.CONFIRM, c.token)),
        InlineKeyboardButton(t("dismiss", lang), callback_data=callbacks.pack(callbacks.DISMISS, c.token)),
    ]])
    side = t("buy" if c.side is OrderSide.BUY else "sell", lang)
    title_key = {"cancel": "card_title_cancel", "revise": "card_title_revise",
                 "reserve": "us_card_title_reserve"}.get(c.action, "card_title_order")
    reservation_cancel = c.action == "cancel" and us.meets == "reservation"
    if reservation_cancel:
        title_key = "us_card_title_cancel_reservation"
    lines = [t(title_key, lang, badge=_badge(c.mode, lang)),
             f"<b>{side}</b> {esc(c.symbol.display_name(lang))} ({esc(c.symbol.code)}) · {esc(us.exchange)} {FLAG}"]
    if c.mode is Mode.REAL:
        lines.insert(1, "‼️ <b>REAL MONEY · 실전 계좌</b>")
    if reservation_cancel:
        lines.append(t("us_card_cancel_reservation", lang, order_no=c.order_no or "", qty=f"{c.quantity:,}",
                       price=_price_words(us, lang),
                       next_open=us.next_open.strftime("%m-%d %H:%M") if us.next_open else ""))
    elif c.action == "cancel":
        lines.append(t("us_card_cancel", lang, order_no=c.order_no or "", qty=f"{c.quantity:,}",
                       price=usd(us.quoted_price) if us.quoted_price.amount else _unpriced(us.order_type, lang)))
    else:
        if c.action == "revise":
            lines.append(t("us_card_revise", lang, order_no=c.order_no or "", old=usd(us.quoted_price),
                           new=usd(us.price or us.quoted_price), qty=f"{c.quantity:,}"))
        else:
            lines.append(t("us_card_qty", lang, qty=f"{c.quantity:,}", price=_price_words(us, lang),
                           now=usd(us.quoted_price)))
        amount_krw = _krw(us.amount, us.krw_per_usd)
        lines.append(t("us_card_amount", lang, amount=amount(us.amount),
                       krw=t("us_card_krw", lang, krw=str(amount_krw)) if amount_krw else ""))
        lines.append(t("us_card_fees", lang, fees=amount(us.fees)))
        cash = us.cash(c.side)
        cash_krw = _krw(cash, us.krw_per_usd)
        lines.append(t("us_card_total_buy" if c.side is OrderSide.BUY else "us_card_total_sell", lang,
                       total=amount(cash), krw=t("us_card_krw", lang, krw=str(cash_krw)) if cash_krw else ""))
        if us.krw_per_usd > 0:
            lines.append(t("us_card_rate", lang, rate=rate_text(us.krw_per_usd)))
        lines.append(_meets(us, lang))
    lines.append(t("card_expiry", lang, seconds=c.ttl_seconds))
    return "\n".join(lines), keyboard


def card_summary(c: OrderCard, lang: str) -> str:
    assert c.us is not None
    us = c.us
    side = t("buy" if c.side is OrderSide.BUY else "sell", lang)
    qty = f"{c.quantity:,}{t('shares', lang)}"
    name = f"{esc(c.symbol.display_name(lang))} ({esc(c.symbol.code)}) {FLAG}"
    line = f"{side} {name} · {qty} · {_price_words(us, lang)}"
    if c.action == "cancel":
        what = ("예약 취소 대상" if lang == "ko" else "Cancelling reservation") if us.meets == "reservation" else \
            ("취소 대상" if lang == "ko" else "Cancelling")
        line = f"{what} <code>{c.order_no}</code>: {side} {name} · {qty}"
    elif c.action == "reserve":
        when = us.next_open.strftime("%m-%d %H:%M") if us.next_open else ""
        line = f"{line}\n{t('us_reserved_summary', lang, next_open=when)}"
    elif c.action == "revise":
        line = (f"{'정정 대상' if lang == 'ko' else 'Revising'} <code>{c.order_no}</code>: {side} {name} · {qty} · "
                f"{usd(us.quoted_price)} → {usd(us.price or us.quoted_price)}")
    return f"{_badge(c.mode, lang)}\n{line}"


# -- open orders, balance -------------------------------------------------------------------------------
def _unpriced(order_type: str, lang: str) -> str:
    """An order without a price: its type when known (MOO, MOC), else both (KIS lists neither's type)."""
    return t(f"us_type_{order_type}", lang) if order_type in ("MOO", "MOC") else t("us_type_MOO_or_MOC", lang)


def order_line(o: UsOpenOrder, lang: str) -> str:
    side = t("buy" if o.side is OrderSide.BUY else "sell", lang)
    when = f"{o.time[:2]}:{o.time[2:4]}:{o.time[4:]}" if len(o.time) == 6 else o.time
    if not o.price.amount:
        price = _unpriced(o.order_type, lang)
    elif o.order_type in ("LOO", "LOC"):
        price = f"{t(f'us_type_{o.order_type}', lang)} {usd(o.price)}"
    else:
        price = usd(o.price)
    filled = f" · {'체결' if lang == 'ko' else 'filled'} {o.filled_quantity:,}" if o.filled_quantity else ""
    return (f"{FLAG} <code>{o.order_no}</code> {when} {esc(o.exchange)}\n  {side} {esc(o.name)} ({esc(o.symbol)}) "
            f"{o.quantity:,}{t('shares', lang)} @ {price}{filled} · {'잔량' if lang == 'ko' else 'open'} {o.remaining:,}")


def order_buttons(orders: list[UsOpenOrder], lang: str) -> list[list[InlineKeyboardButton]]:
    return [[InlineKeyboardButton(f"{t('cancel_button', lang)} {o.order_no} · {o.symbol} {o.remaining:,}",
                                  callback_data=callbacks.pack(callbacks.PICK_CANCEL, o.order_no)),
             InlineKeyboardButton(t("revise_button", lang),
                                  callback_data=callbacks.pack(callbacks.PICK_REVISE, o.order_no))]
            for o in orders[:20]]


def reservation_line(r: UsPendingReservation, lang: str) -> str:
    side = t("buy" if r.side is OrderSide.BUY else "sell", lang)
    price = usd(r.price) if r.price.amount else t("us_type_MOO", lang)
    return f"{FLAG} " + t("us_reservation_line", lang, no=r.reservation_no, exchange=r.exchange, side=side,
                          name=r.name, code=r.symbol, qty=f"{r.quantity:,}", price=price,  # t escapes them
                          sent_at=r.sent_at.strftime("%m-%d %H:%M"))


def reservation_buttons(reservations: list[UsPendingReservation], lang: str) -> list[list[InlineKeyboardButton]]:
    """One Cancel button each (a reservation cannot be revised at KIS: cancel and reserve again)."""
    return [[InlineKeyboardButton(t("us_reservation_button", lang, no=r.reservation_no, code=r.symbol,
                                    qty=f"{r.quantity:,}"),
                                  callback_data=callbacks.pack(callbacks.PICK_CANCEL, r.reservation_no))]
            for r in reservations[:20]]


def balance(view: UsBalanceView, lang: str) -> str:
    lines = [t("us_balance_title", lang)]
    if view.unavailable:
        return "\n".join([*lines, t("us_balance_unavailable", lang)])
    if not view.holdings:
        lines.append(t("us_no_holdings", lang))
    for h in view.holdings:
        mark = "🔺" if h.profit_loss.amount > 0 else "🔻" if h.profit_loss.amount < 0 else "⏺"
        lines.append(t("us_holding", lang, name=h.name, code=h.symbol, exchange=h.exchange, qty=f"{h.quantity:,}",
                       avg=usd(h.average_cost), last=usd(h.last_price), value=amount(h.value), mark=mark,
                       pl=signed_amount(h.profit_loss), rate=f"{h.profit_loss_rate:+.2f}%"))
    total_krw = view.krw(view.total)
    lines += ["", t("us_balance_cash", lang, cash=amount(view.cash)),
              t("us_balance_stocks", lang, value=amount(view.value_total), pl=signed_amount(view.profit_loss_total)),
              t("us_balance_total", lang, total=amount(view.total),
                krw=t("us_card_krw", lang, krw=str(total_krw)) if total_krw else "")]
    if view.krw_per_usd > 0:
        lines.append(t("us_card_rate", lang, rate=rate_text(view.krw_per_usd)))
    if view.combined_krw is not None:
        lines.append(t("us_balance_combined", lang, total=str(view.combined_krw)))
    return "\n".join(lines)


def status(view: UsStatusView, lang: str) -> str:
    extra = f" ({view.holiday})" if view.holiday else ""
    if view.early_close:
        extra += " · " + t("us_early_close", lang, reason=view.early_close)
    return t("us_status", lang, session=session_name(view.session, lang), extra=extra,
             next_open=view.next_open.strftime("%Y-%m-%d %H:%M"))


def alert_condition(direction: str, threshold: Money, percent: str | None, lang: str) -> str:
    if percent:
        return f"{percent}% ({threshold})"
    if lang == "ko":
        return f"{threshold} {'이상' if direction == 'above' else '이하'}"
    return f"{'≥' if direction == 'above' else '≤'} {threshold}"
