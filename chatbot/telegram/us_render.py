"""US views as Telegram HTML: dollars with their sign ($190.25, four decimals under $1), KRW only as
a labelled estimate, the session the market is in."""

from __future__ import annotations

from decimal import Decimal

from chatbot.service.us_views import Money, UsQuoteView
from chatbot.telegram.i18n import t
from chatbot.telegram.render import SIGN_MARK, esc, symbol_name


def usd(money: Money) -> str:
    return str(money)


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


def quote(view: UsQuoteView, lang: str) -> str:
    s = view.symbol
    rate = f"{view.change_rate:+.2f}%"
    lines = [
        f"<b>{symbol_name(s, lang)}</b> ({esc(s.code)}) · {esc(view.exchange)} 🇺🇸",
        f"<b>{usd(view.price)}</b> {SIGN_MARK.get(view.sign, '')} {signed_usd(view.change)} ({rate})",
    ]
    if view.open is not None and view.high is not None and view.low is not None:
        lines.append(t("us_day_range", lang, open=usd(view.open), high=usd(view.high), low=usd(view.low)))
    lines.append(t("us_volume", lang, volume=f"{view.volume:,}", base=usd(view.previous_close)))
    next_open = view.next_open.strftime("%m-%d %H:%M")
    session = session_name(view.session, lang)
    if view.session == "regular":
        lines.append(t("us_session_now", lang, session=session))
    else:
        lines.append(t("us_session_next", lang, session=session, next_open=next_open))
    lines.append(krw_estimate(view.price_krw, view.krw_per_usd, lang))
    if not view.tradable:
        lines.append(t("us_not_tradable", lang))
    return "\n".join(lines)

