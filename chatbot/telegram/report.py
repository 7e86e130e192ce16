"""/report [on|off] (the daily report at the close) and /history [days] (recent executions), and the
daily report push as the user reads it. Everything is decided by :mod:`chatbot.service.reports`;
this module parses nothing but the on/off word and lays the views out for a phone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from telegram import Update

from chatbot.service.errors import UserError
from chatbot.service.reports import (
    MAX_DAYS,
    DailyReport,
    HistoryDay,
    HistoryView,
    ReportFill,
    ReportService,
    ReportSetting,
)
from chatbot.telegram import render
from chatbot.telegram.context import Context, lang, reply, services, user_errors
from chatbot.telegram.i18n import MESSAGES, t

MESSAGE_LIMIT = 3900  # Telegram's is 4096 characters; room for the HTML tags
MAX_REPORT_LINES = 30  # fills or holdings shown in one push before "… and N more"
ON_WORDS = frozenset({"on", "켜기", "켬", "온"})
OFF_WORDS = frozenset({"off", "끄기", "끔", "오프"})
WEEKDAYS = {"ko": "월화수목금토일", "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")}


def _reports(context: Context) -> ReportService:
    reports = services(context).reports
    if reports is None:
        raise UserError("internal_error")
    return reports


@user_errors
async def report(update: Update, context: Context) -> None:
    """``/report on|off`` sets the daily report; ``/report`` says the setting and shows today's report."""
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    language, args = lang(update), context.args or []
    reports = _reports(context)
    if len(args) > 1 or (args and args[0].lower() not in ON_WORDS | OFF_WORDS):
        await reply(update, context, t("usage_report", language))
        return
    if args:
        setting = await reports.set_enabled(user.id, chat.id, language, args[0].lower() in ON_WORDS)
        await reply(update, context, t("report_turned_on", language, schedules=_schedules(setting, language))
                    if setting.enabled else t("report_turned_off", language))
        return
    setting = await reports.setting(user.id)
    await reply(update, context, t("report_is_on", language, schedules=_schedules(setting, language))
                if setting.enabled else t("report_is_off", language))
    for today in await reports.today(user.id, language):
        await reply(update, context, report_text(today))


@user_errors
async def history(update: Update, context: Context) -> None:
    """``/history [days]``: executions over the last days, by day, newest first."""
    user = update.effective_user
    assert user is not None
    language, args = lang(update), context.args or []
    if len(args) > 1:
        await reply(update, context, t("usage_history", language, maximum=MAX_DAYS))
        return
    view = await _reports(context).history(user.id, args[0] if args else None)
    for part in history_messages(view, language):
        await reply(update, context, part)


def _schedules(setting: ReportSetting, language: str) -> str:
    return ", ".join(t(f"report_schedule_{market}", language) for market in setting.markets
                     if f"report_schedule_{market}" in MESSAGES)


# -- rendering --------------------------------------------------------------------------------------------------
def money(amount: Decimal, currency: str, language: str, *, sign: bool = False) -> str:
    if currency == "KRW":
        number = f"{amount:+,.0f}" if sign else f"{amount:,.0f}"
        if language == "ko":  # won as every Korean message names it: ₩3,555, +₩1,200
            return f"{number[0]}₩{number[1:]}" if number.startswith(("+", "-")) else f"₩{number}"
        return f"{number} KRW"
    number = f"{amount:+,.2f}" if sign else f"{amount:,.2f}"
    return f"${number}" if not number.startswith(("+", "-")) else f"{number[0]}${number[1:]}"


def price(amount: Decimal, currency: str) -> str:
    """A price: whole won; dollars with their sign, to the US tick ($190.25, $0.5123 under a dollar)."""
    if currency == "KRW":
        return f"{amount:,.0f}"
    return f"${amount:,.2f}" if abs(amount) >= 1 else f"${amount:,.4f}"


def _hm(time: str) -> str:
    return f"{time[:2]}:{time[2:4]}" if len(time) >= 4 else time


def fill_line(f: ReportFill, currency: str, language: str) -> str:
    side = t("buy" if f.side == "buy" else "sell", language)
    return (f" {_hm(f.time)} {side} {render.esc(f.name)} {f.quantity:,}{t('shares', language)} @ "
            f"{price(f.price, currency)} · {money(f.amount, currency, language)}")


def _capped(lines: Sequence[str], language: str) -> list[str]:
    if len(lines) <= MAX_REPORT_LINES:
        return list(lines)
    return [*lines[:MAX_REPORT_LINES], " " + t("report_more", language, count=len(lines) - MAX_REPORT_LINES)]


def _mark(amount: Decimal) -> str:
    return "🔺" if amount > 0 else "🔻" if amount < 0 else "⏺"


def report_text(r: DailyReport) -> str:
    """The daily report: today's fills, realised P/L (and what it is), holdings, total, armed orders."""
    language, currency = r.language, r.currency
    badge = t(f"mode_{r.mode}", language) if r.mode else ""
    lines = [t("report_title", language, day=r.day, market=r.market, badge=badge), ""]
    if r.fills:
        lines.append(t("report_fills", language, count=len(r.fills)))
        lines += _capped([fill_line(f, currency, language) for f in r.fills], language)
    else:
        lines.append(t("report_no_fills", language))
    if r.realised:
        source = "report_realised_kis" if r.realised_source == "kis" else "report_realised_derived"
        lines += ["", t("report_realised", language, total=money(r.realised_total, currency, language, sign=True))
                  + " " + t(source, language)]
        realised_lines: list[str] = []
        for line in r.realised:
            head = f" {render.esc(line.name)} {line.quantity:,}{t('shares', language)}"
            if line.profit_loss is None or line.cost_price is None:
                realised_lines.append(f"{head} @ {price(line.sell_price, currency)}: "
                                      f"{t('report_cost_unknown', language)}")
            else:
                realised_lines.append(f"{head} {price(line.sell_price, currency)} − {price(line.cost_price, currency)} = "
                                      f"{_mark(line.profit_loss)} {money(line.profit_loss, currency, language, sign=True)}")
        lines += _capped(realised_lines, language)  # uncapped, a long day cut the holdings and the total off
    else:
        lines += ["", t("report_no_realised", language)]
    lines += ["", t("report_holdings", language)]
    if r.holdings:
        lines += _capped([
            f" {render.esc(h.name)} {h.quantity:,}{t('shares', language)} · {t('report_avg', language)} "
            f"{price(h.average_price, currency)} → "
            f"{price(h.current_price, currency)} · {_mark(h.profit_loss)} "
            f"{money(h.profit_loss, currency, language, sign=True)} ({h.profit_loss_rate:+.2f}%)"
            for h in r.holdings], language)
    else:
        lines.append(" " + t("report_no_holdings", language))
    rate = (r.profit_loss_total / r.purchase_total * 100) if r.purchase_total else Decimal(0)
    lines.append(t("report_total", language, purchase=money(r.purchase_total, currency, language),
                   evaluation=money(r.evaluation_total, currency, language),
                   profit_loss=money(r.profit_loss_total, currency, language, sign=True), rate=f"{rate:+.2f}%"))
    if r.armed:
        lines += ["", t("report_armed", language), *_capped([f" {render.esc(a)}" for a in r.armed], language)]
    return _fit("\n".join(lines))


def _fit(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT].rsplit("\n", 1)[0] + "\n…"


def _day_label(view_day: dt.date, language: str) -> str:
    return f"{view_day:%m-%d} ({WEEKDAYS['ko' if language == 'ko' else 'en'][view_day.weekday()]})"


def _day_blocks(days: Sequence[HistoryDay], currency: str, language: str) -> list[str]:
    return ["\n".join([
        t("history_day", language, day=_day_label(day.day, language),
          bought=money(day.bought, currency, language), sold=money(day.sold, currency, language)),
        *(fill_line(f, currency, language) for f in day.fills)]) for day in days]


def history_messages(view: HistoryView, language: str) -> list[str]:
    """The executions by day, newest day first, in as many messages as Telegram's length limit needs: one
    section per market when the user has US executions (or they could not be loaded), the domestic one in
    won by KST date, the US one in dollars by New York trading day with KST times (as the US report)."""
    title = t("history_title", language, days=view.days, start=f"{view.start:%m-%d}", end=f"{view.end:%m-%d}",
              count=view.fill_count, badge=render.badge(view.mode, language))
    us_note = [t("history_us_unavailable", language)] if view.us_unavailable else []
    if not view.by_day and not view.us_by_day:
        return ["\n\n".join([title, t("history_empty", language), *us_note])]
    blocks = [title]
    if view.us_by_day or view.us_unavailable:  # two markets: each its own section
        blocks.append(t("history_section_krx", language) + ("" if view.by_day else "\n" + t("history_empty", language)))
    blocks += _day_blocks(view.by_day, view.currency, language)
    if view.us_by_day:
        blocks.append(t("history_section_us", language))
        blocks += _day_blocks(view.us_by_day, "USD", language)
    blocks += us_note
    messages: list[str] = []
    current = ""
    for block in blocks:
        for piece in _split(block):
            candidate = f"{current}\n\n{piece}" if current else piece
            if len(candidate) > MESSAGE_LIMIT:
                messages.append(current)
                candidate = piece
            current = candidate
    messages.append(current)
    return messages


def _split(block: str) -> list[str]:
    """A day's block cut at line ends when it alone is longer than a message."""
    if len(block) <= MESSAGE_LIMIT:
        return [block]
    pieces, current = [], ""
    for line in block.split("\n"):
        if current and len(current) + 1 + len(line) > MESSAGE_LIMIT:
            pieces.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    pieces.append(current)
    return pieces
