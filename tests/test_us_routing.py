"""Which words name a US stock (and so take the US path), and how US order words are read: no KIS needed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from chatbot.kis.overseas_protocol import UsOrderDivision
from chatbot.markets.directory import SymbolDirectory
from chatbot.markets.us_hours import UsCalendar
from chatbot.service.errors import UserError
from chatbot.service.us_market import UsMarketData
from chatbot.service.us_orders import UsOrders, parse_us_price

MARKET = UsMarketData(None, SymbolDirectory.bundled(), UsCalendar())  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "code"), [
    ("AAPL", "AAPL"), ("aapl", "AAPL"), ("애플", "AAPL"), ("테슬라", "TSLA"), ("엔비디아", "NVDA"), ("QQQ", "QQQ"),
    ("BRK.B", "BRK/B"),
    ("005930", None), ("삼성전자", None), ("삼성", None), ("KT", None),  # KRX names, exact or candidates
    ("KB", None), ("HD", None),  # a bare ticker that also starts KRX names keeps the KRX candidates
    ("zzzz", None), ("x" * 10_000, None), ("", None)])
def test_which_words_name_a_us_stock(text: str, code: str | None) -> None:
    found = MARKET.lookup(text)
    assert (found.code if found else None) == code


class _Orders:
    mode: Any = None
    us: Any = None


@pytest.mark.parametrize(("args", "expected"), [
    (["AAPL", "3", "190.50"], ("AAPL", "3", "190.50", None, False)),
    (["애플", "3", "$190.50"], ("AAPL", "3", "$190.50", None, False)),
    (["TSLA", "1", "moc"], ("TSLA", "1", None, UsOrderDivision.MOC, False)),
    (["TSLA", "1", "LOC", "250"], ("TSLA", "1", "250", UsOrderDivision.LOC, False)),
    (["TSLA", "1", "250", "종가지정가"], ("TSLA", "1", "250", UsOrderDivision.LOC, False)),
    (["AAPL", "1", "시장가"], ("AAPL", "1", None, None, True)),
])
def test_us_order_words(args: list[str], expected: tuple[Any, ...]) -> None:
    request = UsOrders(_Orders(), MARKET).request(args)  # type: ignore[arg-type]
    assert request is not None
    assert (request.symbol.code, request.quantity, request.price, request.division, request.market_word) == expected


@pytest.mark.parametrize("args", [["005930", "10"], ["삼성전자", "1", "70000"], ["AAPL"], []])
def test_domestic_or_too_short_order_words_are_not_us(args: list[str]) -> None:
    assert UsOrders(_Orders(), MARKET).request(args) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "price"), [("190.50", Decimal("190.50")), ("$0.5123", Decimal("0.5123")),
                                             ("1,234.56", Decimal("1234.56")), ("1", Decimal(1))])
def test_us_prices(text: str, price: Decimal) -> None:
    assert parse_us_price(text) == price


@pytest.mark.parametrize(("text", "key"), [("190.555", "us_off_tick"), ("0.51234", "us_off_tick"),
                                           ("0.001", "us_price_too_small"), ("1e3", "us_bad_price"),
                                           ("-5", "us_bad_price"), ("NaN", "us_bad_price"),
                                           ("9" * 12, "us_bad_price")])
def test_bad_us_prices(text: str, key: str) -> None:
    with pytest.raises(UserError) as err:
        parse_us_price(text)
    assert err.value.key == key
