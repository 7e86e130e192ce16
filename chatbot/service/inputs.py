"""What a user types, read in one place: symbols, quantities, prices (and the words for a market
order), the arguments of /buy and /sell, chart periods, order numbers. Bad input raises
:class:`UserError`, whose message says what was wrong; nothing has changed when it does."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from chatbot.kis import protocol as p
from chatbot.kis.models import OrderSide
from chatbot.markets.money import Currency, Money
from chatbot.markets.ticks import tick_size, us_tick_size
from chatbot.service.errors import UserError
from chatbot.symbols import Symbol, SymbolDirectory

MAX_ARG_LENGTH = 40
MAX_QUANTITY = 1_000_000
MAX_PRICE = 100_000_000  # won: above any KRX share price, and inside every integer column
MAX_SYMBOL_WORDS = 4  # "삼성전자 우" and the like; more words before the quantity is a typo
MAX_ORDER_NO_LENGTH = 16
MARKET_WORDS = frozenset({"market", "mkt", "시장가", "시장"})
_NUMBER = re.compile(r"^[0-9]{1,3}(,[0-9]{3})*$|^[0-9]+$")  # 1234 or 1,234 (ASCII digits)

Period = Literal["D", "W", "M"]
CHART_PERIODS: dict[str, Period] = {"d": "D", "day": "D", "일": "D", "w": "W", "week": "W", "주": "W",
                                    "m": "M", "month": "M", "월": "M"}


def normalise_typed(text: str) -> str:
    """What a user typed with the full-width forms of ASCII (U+FF01–U+FF5E: ``３５５５``, ``５％``, ``１，０００``,
    ``１９０．２５``, ``ＡＡＰＬ``, as Korean and Japanese input methods give them) in their ASCII forms, the
    rest untouched (NFKC on the whole text would also turn the compatibility jamo of a 초성 search, ``ㅅㅅ``,
    into other characters). Every command's words go through it before they are read."""
    if not any("\uff01" <= ch <= "\uff5e" for ch in text):
        return text
    return "".join(unicodedata.normalize("NFKC", ch) if "\uff01" <= ch <= "\uff5e" else ch for ch in text)


def revise_example(price: Money, side: OrderSide) -> Money:
    """A new price to show in a revision's example: one tick from the order's own toward the market (a buy
    up, a sell down), on the tick grid; the order's own price would be refused as no change."""
    if price.currency is Currency.KRW:
        won = int(price.amount)
        if side is OrderSide.BUY:
            return Money.krw(won + tick_size(won))
        below = won - 1
        return Money.krw(max(below - below % tick_size(below), 1)) if below > 0 else price
    tick = us_tick_size(price.amount)
    if side is OrderSide.BUY:
        return Money(price.amount + tick, price.currency)
    lower = price.amount - tick
    if lower <= 0:
        return price
    return Money(lower.quantize(us_tick_size(lower)) if lower >= 1 else lower, price.currency)


@dataclass(frozen=True, slots=True)
class OrderArgs:
    """``<symbol words…> <qty> [<price>|market]``, split but not yet checked."""

    symbol: str
    quantity: str
    price: str | None  # None: no price given (a market order)


def resolve_symbol(symbols: SymbolDirectory, text: str) -> Symbol:
    """The one symbol ``text`` names (code, name, English name, 초성); candidates when it is ambiguous."""
    if len(text) > MAX_ARG_LENGTH:
        raise UserError("input_too_long")
    found = symbols.lookup(text)
    if found.symbol is not None:
        return found.symbol
    if found.candidates:
        raise UserError("ambiguous_symbol", query=text, candidates=found.candidates)
    raise UserError("unknown_symbol", query=text)


def _number_shaped(word: str) -> bool:
    """A word meant as a number (digits and commas): where order arguments split. Its value is
    checked strictly by :func:`parse_quantity` and :func:`parse_price`."""
    return word.removesuffix("주").removesuffix("원").replace(",", "").isdigit()


def split_order_args(args: Sequence[str], usage: str, names_one: Callable[[str], bool] | None = None) -> OrderArgs:
    """``<symbol words…> <qty> [<price>|market]``; ``usage`` names the message for too few words.

    ``names_one`` (does this text name exactly one stock?) lets a name with a number in it keep its
    number, as traders type them: ``KODEX 200 10`` is 10 of KODEX 200 at market, not 200 of "KODEX"
    at 10 won (which named no stock, and was answered with KODEX candidates), and ``KODEX 200 10 8500``
    is 10 at 8,500 (refused as too many words). A split whose own symbol names a stock stays as it was."""
    if len(args) < 2:
        raise UserError(usage)
    price: str | None
    if len(args) >= 3 and _number_shaped(args[-2]):
        symbol_words, qty, price = list(args[:-2]), args[-2], args[-1]
        if names_one is not None and not names_one(" ".join(symbol_words)) and names_one(" ".join(args[:-1])):
            symbol_words, qty, price = list(args[:-1]), args[-1], None
    else:
        symbol_words, qty, price = list(args[:-1]), args[-1], None
    numbered = any(_number_shaped(w) for w in symbol_words[1:])
    if len(symbol_words) > MAX_SYMBOL_WORDS or (
            numbered and (names_one is None or not names_one(" ".join(symbol_words)))):
        raise UserError("too_many_args")
    return OrderArgs(" ".join(symbol_words), qty, price)


def parse_quantity(text: str) -> int:
    """Shares as typed: ``10``, ``1,000``, ``10주`` (the unit /stop and its help take too)."""
    typed = text.strip()
    text = typed.removesuffix("주")
    if len(text) > MAX_ARG_LENGTH:
        raise UserError("input_too_long")
    if not _NUMBER.match(text):
        raise UserError("bad_quantity", value=typed)
    qty = int(text.replace(",", ""))
    if qty <= 0:
        raise UserError("bad_quantity", value=typed)
    if qty > MAX_QUANTITY:
        raise UserError("quantity_too_large", maximum=MAX_QUANTITY)
    return qty


def parse_price(text: str | None) -> int | None:
    """A limit price in won, or None for a market order (no price, ``market`` or ``시장가``)."""
    if text is None or text.strip().lower() in MARKET_WORDS:
        return None
    text = text.strip().removesuffix("원")
    if len(text) > MAX_ARG_LENGTH:
        raise UserError("input_too_long")
    if not _NUMBER.match(text) or int(text.replace(",", "")) <= 0:
        raise UserError("bad_price", value=text)
    if int(text.replace(",", "")) > MAX_PRICE:
        raise UserError("price_too_large", maximum=Money.krw(MAX_PRICE))
    return int(text.replace(",", ""))


def parse_limit_price(text: str) -> int:
    """A price in won where a market order means nothing (a revision's new price, an alert's or a
    conditional order's level): its error does not offer 'market' as the way out."""
    try:
        value = parse_price(text)
    except UserError as err:
        if err.key == "bad_price":
            raise UserError("bad_limit_price", value=text.strip()[:MAX_ARG_LENGTH]) from None
        raise
    if value is None:
        raise UserError("bad_limit_price", value=text.strip()[:MAX_ARG_LENGTH])
    return value


def is_chart_period(word: str) -> bool:
    return word.lower() in CHART_PERIODS


def parse_chart_period(text: str | None) -> Period:
    """``d``/``w``/``m`` (or day, 일, …) → ``D``/``W``/``M``; none given: daily."""
    period = CHART_PERIODS.get((text or "d").strip().lower())
    if period is None:
        raise UserError("usage_chart")
    return period


def parse_order_no(text: str) -> str:
    """A KIS order number as typed (zeros in front or not) → its comparison key
    (:func:`chatbot.kis.protocol.order_no_key`)."""
    key = p.order_no_key(text)
    if not (key.isascii() and key.isdigit()) or len(text.strip()) > MAX_ORDER_NO_LENGTH:
        raise UserError("bad_order_no", value=text[:MAX_ARG_LENGTH])
    return key
