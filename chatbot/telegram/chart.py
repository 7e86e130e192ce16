"""/chart <symbol> [d|w|m]: a candlestick PNG with volume."""

from __future__ import annotations

from telegram import Update

from chatbot.telegram.context import Context, lang, services, user_errors
from chatbot.telegram.i18n import t

PERIOD_NAMES = {"ko": {"D": "일봉", "W": "주봉", "M": "월봉"}, "en": {"D": "daily", "W": "weekly", "M": "monthly"}}


@user_errors
async def chart(update: Update, context: Context) -> None:
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    us = services(context).us
    us_view = await us.market.chart(user.id, context.args or []) if us is not None else None
    view = us_view or await services(context).market.chart(user.id, context.args or [])
    language = lang(update)
    caption = t("us_chart_caption" if us_view else "chart_caption", language,
                name=view.symbol.display_name(language), code=view.symbol.code,
                period=PERIOD_NAMES[language][view.period], bars=view.bars,
                close=str(view.last_close))  # ₩ or $: the view says which
    await context.bot.send_photo(chat.id, photo=view.png, caption=caption)
