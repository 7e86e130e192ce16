"""/chart <symbol> [d|w|m]: a candlestick PNG with volume; /status: market, mode, feed, version."""

from __future__ import annotations

from telegram import Update

from chatbot.service.errors import UserError
from chatbot.telegram import render
from chatbot.telegram.context import Context, lang, reply, services, user_errors
from chatbot.telegram.i18n import t

PERIOD_NAMES = {"ko": {"D": "일봉", "W": "주봉", "M": "월봉"}, "en": {"D": "daily", "W": "weekly", "M": "monthly"}}


@user_errors
async def chart(update: Update, context: Context) -> None:
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    args = context.args or []
    if not args:
        raise UserError("usage_chart")
    period = args[-1] if len(args) > 1 and args[-1].lower() in ("d", "w", "m", "day", "week", "month",
                                                                 "일", "주", "월") else None
    symbol_words = args[:-1] if period else args
    view = await services(context).trading.chart(user.id, " ".join(symbol_words), period)
    language = lang(update)
    caption = t("chart_caption", language, name=view.symbol.display_name(language), code=view.symbol.code,
                period=PERIOD_NAMES[language][view.period], bars=view.bars, close=view.last_close)
    await context.bot.send_photo(chat.id, photo=view.png, caption=caption)


async def status(update: Update, context: Context) -> None:
    await reply(update, context, render.status(services(context).trading.status(), lang(update)))
