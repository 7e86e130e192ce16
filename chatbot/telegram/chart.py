"""/chart <symbol> [d|w|m]: a candlestick PNG with volume."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from telegram import Update

from chatbot.telegram import callbacks
from chatbot.telegram.context import Context, lang, services, user_errors
from chatbot.telegram.i18n import t

PERIOD_NAMES = {"ko": {"D": "일봉", "W": "주봉", "M": "월봉"}, "en": {"D": "daily", "W": "weekly", "M": "monthly"}}


@user_errors
async def chart(update: Update, context: Context) -> None:
    await _send(update, context, context.args or [])


@user_errors
async def pick(update: Update, context: Context) -> None:
    """A candidate stock offered for a /chart whose stock was ambiguous: that chart, as if typed with the
    stock's code (the candidates stay: another may be picked too)."""
    query = update.callback_query
    assert query is not None
    cb = callbacks.unpack(query.data)
    chart_pick = cb is not None and cb.kind == callbacks.COMMAND_PICKS["chart"]
    args = callbacks.command_args(cb.value) if cb is not None and chart_pick else None
    if args is None:
        await query.answer(t("popup_unknown", lang(update)), show_alert=True)
        return
    await _send(update, context, args, answer=query.answer)


async def _send(update: Update, context: Context, args: list[str],
                answer: Callable[[], Awaitable[object]] | None = None) -> None:
    """The chart ``args`` ask for, as a photo; ``answer``: the press to answer once it is drawn."""
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    us = services(context).us
    us_view = await us.market.chart(user.id, args) if us is not None else None
    view = us_view or await services(context).market.chart(user.id, args)
    if answer is not None:
        await answer()
    language = lang(update)
    caption = t("us_chart_caption" if us_view else "chart_caption", language,
                name=view.symbol.display_name(language), code=view.symbol.code,
                period=PERIOD_NAMES[language][view.period], bars=view.bars,
                close=str(view.last_close))  # ₩ or $: the view says which
    await context.bot.send_photo(chat.id, photo=view.png, caption=caption)
