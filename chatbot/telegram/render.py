"""Service views as Telegram HTML and inline keyboards, laid out to read on a phone."""

from __future__ import annotations

import html

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from chatbot.service.errors import UserError
from chatbot.service.views import (
    BalanceView,
    ConfirmResult,
    Mode,
    OpenOrder,
    OpenOrdersView,
    OrderCard,
    OrderNotice,
    OrderSide,
    Outcome,
    QuoteView,
    StatusView,
    Symbol,
)
from chatbot.telegram import callbacks, us_render
from chatbot.telegram.i18n import t

SIGN_MARK = {"1": "⬆️", "2": "🔺", "3": "⏺", "4": "⬇️", "5": "🔻"}


def badge(mode: Mode, lang: str) -> str:
    return t(f"mode_{mode.value}", lang)


def won(n: int) -> str:
    return f"{n:,}"


def signed(n: float) -> str:
    return f"{n:+,}"


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def symbol_name(symbol: Symbol, lang: str) -> str:
    return esc(symbol.display_name(lang))


def error(err: UserError, lang: str) -> tuple[str, InlineKeyboardMarkup | None]:
    text = t(err.key, lang, **{k: v for k, v in err.params.items() if k != "candidates"})
    candidates = err.params.get("candidates")
    if not candidates:
        return text, None
    rows = [[InlineKeyboardButton(f"{s.display_name(lang)} ({s.code})", callback_data=callbacks.pack(
        callbacks.PICK_QUOTE, s.code))] for s in candidates]
    return text, InlineKeyboardMarkup(rows)


def quote(view: QuoteView, lang: str) -> str:
    q, s = view.quote, view.symbol
    rate = f"{q.change_rate:+.2f}%"
    lines = [
        f"<b>{symbol_name(s, lang)}</b> ({s.code}) · {esc(s.market or q.market_name)}",
        (f"<b>{won(q.price)}{'원' if lang == 'ko' else ' KRW'}</b> {SIGN_MARK.get(q.change_sign, '')} "
         f"{signed(q.change)} ({rate})"),
        (f"거래량 {won(q.volume)}" if lang == "ko" else f"Volume {won(q.volume)}"),
        (f"시가 {won(q.open)} · 고가 {won(q.high)} · 저가 {won(q.low)}" if lang == "ko"
         else f"Open {won(q.open)} · High {won(q.high)} · Low {won(q.low)}"),
        (f"상한 {won(q.upper_limit)} · 하한 {won(q.lower_limit)}" if lang == "ko"
         else f"Limits {won(q.lower_limit)}–{won(q.upper_limit)}"),
    ]
    lines += listing_flags(s, lang, halted=q.halted)
    return "\n".join(lines)


def listing_flags(s: Symbol, lang: str, halted: bool = False) -> list[str]:
    """The master's warnings on a symbol: trading halt (거래정지), administrative issue (관리종목)."""
    flags = []
    if halted or s.halted:
        flags.append("⛔ 거래정지" if lang == "ko" else "⛔ Trading halted (거래정지)")
    if s.administrative:
        flags.append("⚠️ 관리종목" if lang == "ko" else "⚠️ Administrative issue (관리종목)")
    return flags


def card(c: OrderCard, lang: str) -> tuple[str, InlineKeyboardMarkup]:
    if c.us is not None:  # a US order: dollars (telegram.us_render)
        return us_render.card(c, lang)
    keyboard = InlineKeyboardMarkup([[
        InlineKeyboardButton(t("confirm", lang), callback_data=callbacks.pack(callbacks.CONFIRM, c.token)),
        InlineKeyboardButton(t("dismiss", lang), callback_data=callbacks.pack(callbacks.DISMISS, c.token)),
    ]])
    seconds = c.ttl_seconds  # counted from when the card reaches the user (see PendingOrders.attach_message)
    if c.action == "reset":
        return f"{t('reset_card', lang, badge=badge(c.mode, lang))}\n{t('card_expiry', lang, seconds=seconds)}", keyboard
    if c.action == "revise":
        return _revise_card(c, lang), keyboard
    side = t("buy" if c.side is OrderSide.BUY else "sell", lang)
    price = t("market", lang) if c.price is None else won(c.price)
    title = t("card_title_cancel" if c.action == "cancel" else "card_title_order", lang, badge=badge(c.mode, lang))
    if lang == "ko":
        lines = [title, f"<b>{side}</b> {symbol_name(c.symbol, lang)} ({c.symbol.code})",
                 f"수량 {won(c.quantity)}주 · 가격 {price}" + (f" (현재가 {won(c.quoted_price)})" if c.price is None else "")]
        if c.action == "cancel":
            lines.append(f"취소할 주문 <code>{c.order_no}</code>")
        else:
            lines += [f"예상 금액 {won(c.amount)}원", f"예상 수수료 {won(c.commission)}원 · 세금 {won(c.tax)}원",
                      f"예상 {'결제' if c.side is OrderSide.BUY else '수령'} 금액 <b>{won(c.total)}원</b>"]
    else:
        lines = [title, f"<b>{side}</b> {symbol_name(c.symbol, lang)} ({c.symbol.code})",
                 f"Qty {won(c.quantity)} · price {price}" + (f" (now {won(c.quoted_price)})" if c.price is None else "")]
        if c.action == "cancel":
            lines.append(f"Order to cancel <code>{c.order_no}</code>")
        else:
            lines += [f"Estimated amount {won(c.amount)} KRW",
                      f"Est. commission {won(c.commission)} · tax {won(c.tax)}",
                      f"Estimated {'cost' if c.side is OrderSide.BUY else 'proceeds'} <b>{won(c.total)} KRW</b>"]
    if c.action == "order":
        lines[2:2] = listing_flags(c.symbol, lang)
    if c.mode is Mode.REAL:
        lines.insert(1, "‼️ <b>REAL MONEY · 실전 계좌</b>")
    if c.session != "regular" and c.action == "order":
        key = {"pre_open": "session_pre_open", "closing_auction": "session_closing_auction"}.get(
            c.session, "session_closed")
        when = c.next_open.strftime("%m-%d %H:%M") if c.next_open else ""  # KST, as every view's time
        lines.append(t(key, lang, next_open=when))
    lines.append(t("card_expiry", lang, seconds=seconds))
    return "\n".join(lines), keyboard


def _revise_card(c: OrderCard, lang: str) -> str:
    """Old → new price on the revised quantity, and what it comes to (the difference, costs included)."""
    side = t("buy" if c.side is OrderSide.BUY else "sell", lang)
    old = won(c.old_price) if c.old_price else t("market", lang)
    new = won(c.price or 0)
    difference = c.amount - c.old_amount if c.old_price else 0
    lines = [t("card_title_revise", lang, badge=badge(c.mode, lang)),
             f"<b>{side}</b> {symbol_name(c.symbol, lang)} ({c.symbol.code})"]
    if lang == "ko":
        lines += [f"정정할 주문 <code>{c.order_no}</code>",
                  f"가격 {old} → <b>{new}</b>원 · 수량 {won(c.quantity)}주",
                  f"예상 금액 {won(c.old_amount)} → {won(c.amount)}원 ({signed(difference)}원)",
                  f"예상 수수료 {won(c.commission)}원 · 세금 {won(c.tax)}원",
                  f"예상 {'결제' if c.side is OrderSide.BUY else '수령'} 금액 <b>{won(c.total)}원</b>",
                  "체결된 수량은 그대로이고 남은 수량만 정정됩니다. 새 주문번호가 생깁니다."]
    else:
        lines += [f"Order to revise <code>{c.order_no}</code>",
                  f"Price {old} → <b>{new}</b> KRW · qty {won(c.quantity)}",
                  f"Estimated amount {won(c.old_amount)} → {won(c.amount)} KRW ({signed(difference)})",
                  f"Est. commission {won(c.commission)} · tax {won(c.tax)}",
                  f"Estimated {'cost' if c.side is OrderSide.BUY else 'proceeds'} <b>{won(c.total)} KRW</b>",
                  "What has filled stays filled; only what is left is revised, under a new order number."]
    if c.mode is Mode.REAL:
        lines.insert(1, "‼️ <b>REAL MONEY · 실전 계좌</b>")
    lines.append(t("card_expiry", lang, seconds=c.ttl_seconds))
    return "\n".join(lines)


def card_summary(c: OrderCard, lang: str) -> str:
    if c.us is not None:
        return us_render.card_summary(c, lang)
    if c.action == "reset":
        return badge(c.mode, lang)
    side = t("buy" if c.side is OrderSide.BUY else "sell", lang)
    price = t("market", lang) if c.price is None else won(c.price)
    qty = f"{won(c.quantity)}{t('shares', lang)}"
    line = f"{side} {symbol_name(c.symbol, lang)} ({c.symbol.code}) · {qty} · {price}"
    if c.action == "cancel":
        line = f"{'취소 대상' if lang == 'ko' else 'Cancelling'} <code>{c.order_no}</code>: {line}"
    elif c.action == "revise":
        old = won(c.old_price) if c.old_price else t("market", lang)
        line = (f"{'정정 대상' if lang == 'ko' else 'Revising'} <code>{c.order_no}</code>: {side} "
                f"{symbol_name(c.symbol, lang)} ({c.symbol.code}) · {qty} · {old} → {price}")
    return f"{badge(c.mode, lang)}\n{line}"


def outcome(result: ConfirmResult, lang: str) -> str:
    key = f"outcome_{result.outcome.value}"
    head = t(key, lang, order_no=result.order_no or "", message=result.message or "-", msg_cd=result.msg_cd or "-")
    return f"{head}\n\n{card_summary(result.card, lang)}" if result.card else head


def late_outcome(notice: OrderNotice, lang: str) -> str:
    """An outcome learned by checking with KIS after an interruption (a restart, a lost reply)."""
    result = notice.result
    if result.outcome is Outcome.UNCERTAIN:
        head = t("outcome_checking", lang)
    else:
        head = t(f"outcome_{result.outcome.value}", lang, order_no=result.order_no or "",
                 message=result.message or "-", msg_cd=result.msg_cd or "-")
        if result.outcome in (Outcome.PLACED, Outcome.CANCELLED_ORDER, Outcome.REVISED_ORDER):
            head += "\n" + t("outcome_found_late", lang)
    return f"{head}\n\n{card_summary(result.card, lang)}" if result.card else head


# The pop-up answering a press that was refused (a price alert is something else: telegram.alerts).
POPUP_KEYS = {Outcome.NOT_OWNER: "popup_not_owner", Outcome.ALREADY_HANDLED: "popup_already",
              Outcome.UNKNOWN: "popup_unknown", Outcome.EXPIRED: "popup_expired"}


def open_orders(view: OpenOrdersView, lang: str, *, for_cancel: bool = False
                ) -> tuple[str, InlineKeyboardMarkup | None]:
    """The open orders, each with a Cancel (취소) and a Revise (정정) button."""
    if not view.orders:
        return t("no_open_orders", lang), None
    lines = [t("open_orders_title", lang, badge=badge(view.mode, lang))]
    for o in view.orders:
        lines.append(_order_line(o, lang))
    lines.append(t("pick_cancel" if for_cancel else "pick_order_action", lang))
    rows = [[InlineKeyboardButton(f"{t('cancel_button', lang)} {o.order_no} · {o.name} {won(o.cancellable_quantity)}",
                                  callback_data=callbacks.pack(callbacks.PICK_CANCEL, o.order_no)),
             InlineKeyboardButton(t("revise_button", lang),
                                  callback_data=callbacks.pack(callbacks.PICK_REVISE, o.order_no))]
            for o in view.orders[:20]]
    return "\n".join(lines), InlineKeyboardMarkup(rows)


def _order_line(o: OpenOrder, lang: str) -> str:
    side = t("buy" if o.side is OrderSide.BUY else "sell", lang)
    price = won(o.price) if o.price else t("market", lang)
    when = f"{o.time[:2]}:{o.time[2:4]}:{o.time[4:]}" if len(o.time) == 6 else o.time
    filled = f" · {'체결' if lang == 'ko' else 'filled'} {won(o.filled_quantity)}" if o.filled_quantity else ""
    return (f"<code>{o.order_no}</code> {when}\n  {side} {esc(o.name)} {won(o.quantity)}"
            f"{t('shares', lang)} @ {price}{filled} · {'잔량' if lang == 'ko' else 'open'} {won(o.cancellable_quantity)}")


def balance(view: BalanceView, account: str, lang: str) -> str:
    b = view.balance
    lines = [t("balance_title", lang, badge=badge(view.mode, lang), account=_mask_account(account))]
    if not b.holdings:
        lines.append(t("no_holdings", lang))
    for h in b.holdings:
        mark = "🔺" if h.profit_loss > 0 else "🔻" if h.profit_loss < 0 else "⏺"
        avg = f"{h.average_price:,.0f}"
        if lang == "ko":
            lines.append(f"\n<b>{esc(h.name)}</b> {h.code}\n  {won(h.quantity)}주 · 평균 {avg} · 현재 {won(h.current_price)}"
                         f"\n  평가 {won(h.evaluation)} · 손익 {mark} {signed(h.profit_loss)} ({h.profit_loss_rate:+.2f}%)")
        else:
            lines.append(f"\n<b>{esc(h.name)}</b> {h.code}\n  {won(h.quantity)} sh · avg {avg} · now {won(h.current_price)}"
                         f"\n  value {won(h.evaluation)} · P/L {mark} {signed(h.profit_loss)} ({h.profit_loss_rate:+.2f}%)")
    total_rate = (b.profit_loss_total / b.purchase_total * 100) if b.purchase_total else 0.0
    if lang == "ko":
        lines += ["", f"예수금 {won(b.cash)}원", f"주식 평가 {won(b.securities_evaluation)}원",
                  f"총 평가 <b>{won(b.total_evaluation)}원</b>",
                  f"평가손익 {signed(b.profit_loss_total)}원 ({total_rate:+.2f}%)"]
    else:
        lines += ["", f"Cash {won(b.cash)} KRW", f"Stocks {won(b.securities_evaluation)} KRW",
                  f"Total <b>{won(b.total_evaluation)} KRW</b>",
                  f"P/L {signed(b.profit_loss_total)} KRW ({total_rate:+.2f}%)"]
    return "\n".join(lines)


def _mask_account(account: str) -> str:
    return f"{account[:2]}******{account[-3:]}" if len(account) >= 8 else account


def status(view: StatusView, lang: str) -> str:
    phases = {"ko": {"regular": "정규장", "pre_open": "장 시작 전 동시호가", "closing_auction": "종가 동시호가",
                     "after_close": "시간외", "closed": "장 마감", "weekend": "주말 휴장", "holiday": "휴장일",
                     "maintenance": "KIS 점검"}}
    phase = phases.get(lang, {}).get(view.phase, view.phase.replace("_", " "))
    feed = {None: "-", True: "연결됨" if lang == "ko" else "connected",
            False: "끊김" if lang == "ko" else "disconnected"}[view.feed_connected]
    return t("status", lang, badge=badge(view.mode, lang), phase=phase,
             holiday=f" ({view.holiday})" if view.holiday else "",
             next_open=view.next_open.strftime("%Y-%m-%d %H:%M"), feed=feed, version=view.version)
