"""Service views as Telegram HTML and inline keyboards, laid out to read on a phone."""

from __future__ import annotations

import html
from decimal import Decimal

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from chatbot.service.errors import UserError
from chatbot.service.views import (
    BalanceView,
    CommandDraft,
    ConfirmResult,
    Currency,
    FailReason,
    Mode,
    Money,
    OpenOrder,
    OpenOrdersView,
    OrderCard,
    OrderDraft,
    OrderNotice,
    OrderSide,
    Outcome,
    QuoteView,
    StandingOrder,
    StatusView,
    Symbol,
    mask_account,
)
from chatbot.telegram import callbacks, us_render
from chatbot.telegram.i18n import t

SIGN_MARK = {"1": "⬆️", "2": "🔺", "3": "⏺", "4": "⬇️", "5": "🔻"}


def badge(mode: Mode, lang: str) -> str:
    return t(f"mode_{mode.value}", lang)


def won(n: int) -> str:
    """A count (shares, volume) with thousands separators; money goes through :func:`amount`."""
    return f"{n:,}"


def amount(m: Money) -> str:
    """Money's figures. Won as whole won with separators (``3,555``: the unit 원/KRW follows where the
    line names it, :func:`unit`); any other currency with its sign in front (``$190.25``, ``$0.5000``)."""
    if m.currency is Currency.KRW:
        return f"{m.amount:,.0f}"
    return str(m)


def typed(m: Money) -> str:
    """A price as a user types it in a command: ``3000``, ``190.25``."""
    return f"{m.amount:f}"


def money(m: Money, lang: str) -> str:
    """An amount with its currency, as every message names it: ``₩3,555``, ``$190.25``; English lines that
    name won after the figure keep doing so (``3,555 KRW``)."""
    if m.currency is Currency.KRW and lang != "ko":
        return f"{amount(m)} KRW"
    return str(m)


def signed_money(m: Money, lang: str) -> str:
    """A change with its currency: ``+₩1,200``, ``-₩300`` (English: ``+1,200 KRW``)."""
    if m.currency is Currency.KRW and lang != "ko":
        return f"{signed(m)} KRW"
    return ("+" if m.amount >= 0 else "") + str(m)


def unit(m: Money, lang: str) -> str:
    """What follows a won amount (원, or KRW in English); nothing after a dollar amount, whose sign leads."""
    if m.currency is Currency.KRW:
        return "원" if lang == "ko" else " KRW"
    return ""


def signed(m: Money) -> str:
    """A change or a profit: ``+1,200`` won, ``-$3.50``."""
    if m.currency is Currency.KRW:
        return f"{m.amount:+,.0f}"
    return ("-" if m.amount < 0 else "+") + str(abs(m))


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def symbol_name(symbol: Symbol, lang: str) -> str:
    return esc(symbol.display_name(lang))


def error(err: UserError, lang: str) -> tuple[str, InlineKeyboardMarkup | None]:
    """A refusal's message; when the stock was ambiguous, a button per candidate: the order or command typed,
    of that stock, if the error carries one (:class:`OrderDraft`, :class:`CommandDraft`), else that stock's quote."""
    text = t(err.key, lang, **{k: v for k, v in err.params.items() if k not in ("candidates", "order")})
    candidates = err.params.get("candidates")
    if not candidates:
        return text, None
    order = err.params.get("order")
    rows = [[InlineKeyboardButton(f"{s.display_name(lang)} ({s.code})", callback_data=_pick(s, order))]
            for s in candidates]
    return text, InlineKeyboardMarkup(rows)


def _pick(symbol: Symbol, order: object) -> str:
    if isinstance(order, OrderDraft):
        kind = callbacks.PICK_BUY if order.side is OrderSide.BUY else callbacks.PICK_SELL
        return callbacks.order_pick(kind, symbol.code, order.quantity, order.price)
    if isinstance(order, CommandDraft):  # the command typed, of that stock (its words fit a button: nearly always)
        picked = callbacks.command_pick(order.command, symbol.code, order.words)
        if picked is not None:
            return picked
    return callbacks.pack(callbacks.PICK_QUOTE, symbol.code)


def quote(view: QuoteView, lang: str) -> str:
    q, s = view.quote, view.symbol
    rate = f"{q.change_rate:+.2f}%"
    lines = [
        f"<b>{symbol_name(s, lang)}</b> ({s.code}) · {esc(s.market or q.market_name)}",
        (f"<b>{money(q.price, lang)}</b> {SIGN_MARK.get(q.sign, '')} "
         f"{signed(q.change)} ({rate})"),
        (f"거래량 {won(q.volume)}" if lang == "ko" else f"Volume {won(q.volume)}"),
        (f"시가 {amount(q.open)} · 고가 {amount(q.high)} · 저가 {amount(q.low)}" if lang == "ko"
         else f"Open {amount(q.open)} · High {amount(q.high)} · Low {amount(q.low)}"),
    ]
    if q.upper_limit is not None and q.lower_limit is not None:  # US markets have no daily limits
        lines.append(f"상한 {amount(q.upper_limit)} · 하한 {amount(q.lower_limit)}" if lang == "ko"
                     else f"Limits {amount(q.lower_limit)}–{amount(q.upper_limit)}")
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
    price = t("market", lang) if c.price is None else amount(c.price)
    # the quote beside a market price: a new order's only (a cancel card's order has no price to quote)
    quoted = c.price is None and c.action == "order"
    title = t("card_title_cancel" if c.action == "cancel" else "card_title_order", lang, badge=badge(c.mode, lang))
    if lang == "ko":
        lines = [title, f"<b>{side}</b> {symbol_name(c.symbol, lang)} ({c.symbol.code})",
                 f"수량 {won(c.quantity)}주 · 가격 {price}" + (f" (현재가 {amount(c.quoted_price)})" if quoted else "")]
        if c.action == "cancel":
            lines.append(f"취소할 주문 <code>{c.order_no}</code>")
        else:
            lines += [f"예상 금액 {money(c.amount, lang)}",
                      f"예상 수수료 {money(c.commission, lang)} · 세금 {money(c.tax, lang)}",
                      f"예상 {'결제' if c.side is OrderSide.BUY else '수령'} 금액 <b>{money(c.total, lang)}</b>"]
    else:
        lines = [title, f"<b>{side}</b> {symbol_name(c.symbol, lang)} ({c.symbol.code})",
                 f"Qty {won(c.quantity)} · price {price}" + (f" (now {amount(c.quoted_price)})" if quoted else "")]
        if c.action == "cancel":
            lines.append(f"Order to cancel <code>{c.order_no}</code>")
        else:
            u = unit(c.amount, lang)
            lines += [f"Estimated amount {amount(c.amount)}{u}",
                      f"Est. commission {amount(c.commission)} · tax {amount(c.tax)}",
                      f"Estimated {'cost' if c.side is OrderSide.BUY else 'proceeds'} <b>{amount(c.total)}{u}</b>"]
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
    old = amount(c.old_price) if c.old_price else t("market", lang)
    new_price = c.price if c.price is not None else c.old_price * 0
    new = amount(new_price)
    difference = c.amount - c.old_amount if c.old_price else c.amount * 0
    u = unit(c.amount, lang)
    lines = [t("card_title_revise", lang, badge=badge(c.mode, lang)),
             f"<b>{side}</b> {symbol_name(c.symbol, lang)} ({c.symbol.code})"]
    if lang == "ko":
        lines += [f"정정할 주문 <code>{c.order_no}</code>",
                  (f"가격 {money(c.old_price, lang) if c.old_price else old} → <b>{money(new_price, lang)}</b> · "
                  f"수량 {won(c.quantity)}주"),
                  f"예상 금액 {money(c.old_amount, lang)} → {money(c.amount, lang)} ({signed_money(difference, lang)})",
                  f"예상 수수료 {money(c.commission, lang)} · 세금 {money(c.tax, lang)}",
                  f"예상 {'결제' if c.side is OrderSide.BUY else '수령'} 금액 <b>{money(c.total, lang)}</b>",
                  "체결된 수량은 그대로이고 남은 수량만 정정됩니다. 새 주문번호가 생깁니다."]
    else:
        lines += [f"Order to revise <code>{c.order_no}</code>",
                  f"Price {old} → <b>{new}</b>{u} · qty {won(c.quantity)}",
                  f"Estimated amount {amount(c.old_amount)} → {amount(c.amount)}{u} ({signed(difference)})",
                  f"Est. commission {amount(c.commission)} · tax {amount(c.tax)}",
                  f"Estimated {'cost' if c.side is OrderSide.BUY else 'proceeds'} <b>{amount(c.total)}{u}</b>",
                  "What has filled stays filled; only what is left is revised, under a new order number."]
    if c.left_unrevised > 0:  # a partial revision: the rest stays open at the old price, a second order
        shown = (money(c.old_price, lang) if lang == "ko" else f"{old}{u}") if c.old_price else old
        lines.append(t("revise_leaves_rest", lang, rest=c.left_unrevised, old=shown,
                       order_no=c.order_no or ""))
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
    price = t("market", lang) if c.price is None else amount(c.price)
    qty = f"{won(c.quantity)}{t('shares', lang)}"
    line = f"{side} {symbol_name(c.symbol, lang)} ({c.symbol.code}) · {qty} · {price}"
    if c.action == "cancel":
        line = f"{'취소 대상' if lang == 'ko' else 'Cancelling'} <code>{c.order_no}</code>: {line}"
    elif c.action == "revise":
        old = amount(c.old_price) if c.old_price else t("market", lang)
        line = (f"{'정정 대상' if lang == 'ko' else 'Revising'} <code>{c.order_no}</code>: {side} "
                f"{symbol_name(c.symbol, lang)} ({c.symbol.code}) · {qty} · {old} → {price}")
    return f"{badge(c.mode, lang)}\n{line}"


def outcome(result: ConfirmResult, lang: str) -> str:
    head = _outcome_head(result, lang)
    if result.original is not None and result.card is not None and result.card.action in ("revise", "cancel"):
        # a refused revise/cancel: it did not take, and how the order it named stands
        head += "\n" + t(f"change_not_done_{result.card.action}", lang) + " " + standing_order(result.original, lang)
    return f"{head}\n\n{card_summary(result.card, lang)}" if result.card else head


def standing_order(order: StandingOrder, lang: str) -> str:
    """How an order whose revision or cancellation did not take stands: still working (what is left, at
    what price), no longer open, or not known."""
    if order.open is None:
        return t("original_unknown", lang, order_no=order.order_no)
    if not order.open:
        return t("original_not_open", lang, order_no=order.order_no)
    price = f" @ {order.price}" if order.price is not None else f" @ {t('market', lang)}"
    return t("original_still_open", lang, order_no=order.order_no, remaining=order.remaining, price=price)


def late_outcome(notice: OrderNotice, lang: str) -> str:
    """An outcome learned by checking with KIS after an interruption (a restart, a lost reply)."""
    result = notice.result
    if result.outcome is Outcome.UNCERTAIN:
        head = t("outcome_checking", lang)
    else:
        head = _outcome_head(result, lang)
        if result.outcome in (Outcome.PLACED, Outcome.CANCELLED_ORDER, Outcome.REVISED_ORDER):
            head += "\n" + t("outcome_found_late", lang)
    return f"{head}\n\n{card_summary(result.card, lang)}" if result.card else head


def _outcome_head(result: ConfirmResult, lang: str) -> str:
    """What became of a card, in the reader's words: a failure of ours by its reason, each with its own
    advice (:class:`FailReason`); one KIS explained, in KIS's words."""
    reason = result.reason
    if reason is not None:
        key = f"fail_{reason.value}"
        if reason is FailReason.NOTHING_LEFT:
            key += "_cancel" if result.card is not None and result.card.action == "cancel" else "_revise"
        return t("outcome_failed_reason", lang, reason=t(key, lang))
    return t(f"outcome_{result.outcome.value}", lang, order_no=result.order_no or "", message=result.message or "-",
             msg_cd=result.msg_cd or "-")


# The pop-up answering a press that was refused (a price alert is something else: telegram.alerts).
POPUP_KEYS = {Outcome.NOT_OWNER: "popup_not_owner", Outcome.ALREADY_HANDLED: "popup_already",
              Outcome.UNKNOWN: "popup_unknown", Outcome.EXPIRED: "popup_expired",
              Outcome.ACCOUNT_CHANGED: "popup_account_changed"}


def open_orders(view: OpenOrdersView, lang: str, *, for_cancel: bool = False
                ) -> tuple[str, InlineKeyboardMarkup | None]:
    """The open orders, each with a Cancel (취소) and a Revise (정정) button."""
    if not view.orders:
        return t("no_open_orders", lang), None
    return order_list(view.mode, [_order_line(o, lang) for o in view.orders], lang, for_cancel=for_cancel), \
        InlineKeyboardMarkup(open_order_buttons(view, lang))


def open_order_buttons(view: OpenOrdersView, lang: str) -> list[list[InlineKeyboardButton]]:
    return [[InlineKeyboardButton(f"{t('cancel_button', lang)} {o.order_no} · {o.name} {won(o.cancellable_quantity)}",
                                  callback_data=callbacks.pack(callbacks.PICK_CANCEL, o.order_no)),
             InlineKeyboardButton(t("revise_button", lang),
                                  callback_data=callbacks.pack(callbacks.PICK_REVISE, o.order_no))]
            for o in view.orders[:20]]


def order_lines(view: OpenOrdersView, lang: str) -> list[str]:
    return [_order_line(o, lang) for o in view.orders]


def order_list(mode: Mode, lines: list[str], lang: str, *, for_cancel: bool) -> str:
    """The open-orders message: as many order lines as fit in one Telegram message (4096 characters),
    then how many more there are; an active trader's list must never fail to send."""
    head = t("open_orders_title", lang, badge=badge(mode, lang))
    tail = t("pick_cancel" if for_cancel else "pick_order_action", lang)
    return "\n".join([head, *fit_lines(lines, MESSAGE_BUDGET - len(head) - len(tail) - 2, lang), tail])


MESSAGE_BUDGET = 3900  # Telegram's limit is 4096 characters of text; room for the HTML tags


def split_message(text: str, budget: int = MESSAGE_BUDGET) -> list[str]:
    """``text`` in as many messages as Telegram's length limit needs, cut between lines (no markup spans a
    line here), between blocks (a blank line) where one is near; a single overlong line is cut hard."""
    if len(text) <= budget:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    size = 0
    lines: list[str] = []
    for line in text.split("\n"):
        while len(line) > budget:  # never in practice: a line is one holding or one order
            lines.append(line[:budget])
            line = line[budget:]
        lines.append(line)
    for line in lines:
        if current and size + len(line) + 1 > budget:
            cut = len(current)
            blank = max((i for i, x in enumerate(current) if not x.strip()), default=0)
            if blank > len(current) // 2:  # end the message at the last block boundary
                cut = blank
            parts.append("\n".join(current[:cut]).strip("\n"))
            current = current[cut:]
            size = sum(len(x) + 1 for x in current)
        current.append(line)
        size += len(line) + 1
    if current:
        parts.append("\n".join(current).strip("\n"))
    return [part for part in parts if part.strip()]


def fit_lines(lines: list[str], budget: int, lang: str) -> list[str]:
    """The first ``lines`` that fit in ``budget`` characters, and "… and N more" when some do not."""
    if sum(len(line) + 1 for line in lines) <= budget:
        return list(lines)
    kept: list[str] = []
    used = 0
    for line in lines:
        more = t("report_more", lang, count=len(lines) - len(kept))
        if used + len(line) + 1 + len(more) + 1 > budget:
            return [*kept, more]
        kept.append(line)
        used += len(line) + 1
    return kept


def _order_line(o: OpenOrder, lang: str) -> str:
    side = t("buy" if o.side is OrderSide.BUY else "sell", lang)
    price = amount(o.price) if o.price else t("market", lang)
    when = f"{o.time[:2]}:{o.time[2:4]}:{o.time[4:]}" if len(o.time) == 6 else o.time
    filled = f" · {'체결' if lang == 'ko' else 'filled'} {won(o.filled_quantity)}" if o.filled_quantity else ""
    return (f"<code>{o.order_no}</code> {when}\n  {side} {esc(o.name)} {won(o.quantity)}"
            f"{t('shares', lang)} @ {price}{filled} · {'잔량' if lang == 'ko' else 'open'} {won(o.cancellable_quantity)}")


def balance(view: BalanceView, account: str, lang: str) -> str:
    b = view.balance
    lines = [t("balance_title", lang, badge=badge(view.mode, lang), account=mask_account(account))]
    if not b.holdings:
        lines.append(t("no_holdings", lang))
    for h in b.holdings:
        mark = "🔺" if h.profit_loss.amount > 0 else "🔻" if h.profit_loss.amount < 0 else "⏺"
        avg = amount(h.average_price)
        if lang == "ko":
            lines.append(f"\n<b>{esc(h.name)}</b> {h.symbol}\n  {won(h.quantity)}주 · 평균 {avg} · 현재 {amount(h.price)}"
                         f"\n  평가 {amount(h.value)} · 손익 {mark} {signed(h.profit_loss)} ({h.profit_loss_rate:+.2f}%)")
        else:
            lines.append(f"\n<b>{esc(h.name)}</b> {h.symbol}\n  {won(h.quantity)} sh · avg {avg} · now {amount(h.price)}"
                         f"\n  value {amount(h.value)} · P/L {mark} {signed(h.profit_loss)} ({h.profit_loss_rate:+.2f}%)")
    cost = b.cost_total.amount
    total_rate = b.profit_loss_total.amount / cost * 100 if cost else Decimal(0)
    u = unit(b.cash, lang)
    if lang == "ko":
        lines += ["", f"예수금 {money(b.cash, lang)}", f"주식 평가 {money(b.holdings_value, lang)}",
                  f"총 평가 <b>{money(b.total_value, lang)}</b>",
                  f"평가손익 {signed_money(b.profit_loss_total, lang)} ({total_rate:+.2f}%)"]
    else:
        lines += ["", f"Cash {amount(b.cash)}{u}", f"Stocks {amount(b.holdings_value)}{u}",
                  f"Total <b>{amount(b.total_value)}{u}</b>",
                  f"P/L {signed(b.profit_loss_total)}{u} ({total_rate:+.2f}%)"]
    return "\n".join(lines)


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
