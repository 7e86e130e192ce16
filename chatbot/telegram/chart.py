"""/chart <symbol> [d|w|m]: a candlestick PNG with volume; /status: market, mode, feed, version."""

from __future__ import annotations

from telegram import Update

from chatbot.service.errors import UserError
from chatbot.service.trading import MAX_ARG_LENGTH, TradingService
from chatbot.telegram import render
from chatbot.telegram.context import Context, lang, reply, services, user_errors
from chatbot.telegram.i18n import t

PERIOD_NAMES = {"ko": {"D": "일봉", "W": "주봉", "M": "월봉"}, "en": {"D": "daily", "W": "weekly", "M": "monthly"}}
PERIOD_WORDS = frozenset({"d", "w", "m", "day", "week", "month", "일", "주", "월"})


def _check_period_word(trading: TradingService, args: list[str]) -> None:
    """``/chart 005930 x``: when the words name no stock but all but the last do, the last word was
    meant as the period — say that, not "no such stock"."""
    try:
        trading.resolve(" ".join(args))
        return
    except UserError as err:
        if err.key != "unknown_symbol":
            return
    try:
        trading.resolve(" ".join(args[:-1]))
    except UserError:
        return
    raise UserError("bad_chart_period", period=args[-1][:MAX_ARG_LENGTH])


@user_errors
async def chart(update: Update, context: Context) -> None:
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    args = context.args or []
    if not args:
        raise UserError("usage_chart")
    trading = services(context).trading
    period = args[-1] if len(args) > 1 and args[-1].lower() in PERIOD_WORDS else None
    symbol_words = args[:-1] if period else args
    if period is None and len(args) > 1:
        _check_period_word(trading, args)
    view = await trading.chart(user.id, " ".join(symbol_words), period)
    language = lang(update)
    caption = t("chart_caption", language, name=view.symbol.display_name(language), code=view.symbol.code,
                period=PERIOD_NAMES[language][view.period], bars=view.bars, close=view.last_close)
    await context.bot.send_photo(chat.id, photo=view.png, caption=caption)


async def status(update: Update, context: Context) -> None:
    await reply(update, context, render.status(services(context).trading.status(), lang(update)))
