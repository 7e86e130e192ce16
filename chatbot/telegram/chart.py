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
    view = await services(context).market.chart(user.id, context.args or [])
    language = lang(update)
    caption = t("chart_caption", language, name=view.symbol.display_name(language), code=view.symbol.code,
                period=PERIOD_NAMES[language][view.period], bars=view.bars, close=view.last_close)
    await context.bot.send_photo(chat.id, photo=view.png, caption=caption)
