"""Issue 14: user-error and conditional-order messages name money with its currency (₩70,000, $190.25),
never a bare number with 원 bolted on, never a Decimal's repr."""

from __future__ import annotations

import re

import pytest

from chatbot.markets.money import Money
from chatbot.service.errors import UserError, off_tick
from chatbot.telegram import render
from chatbot.telegram.i18n import MESSAGES, t

MONEY_KEYS = ["off_tick", "out_of_limits", "alert_already_crossed", "insufficient_cash", "revise_nothing_changes",
              "cond_implausible", "cond_would_fire_now", "cond_bracket_order", "cond_at_limit", "cond_when_stop",
              "cond_when_take", "cond_when_trail", "cond_card_body", "price_too_large"]
MONEY_PARAMS = {"price", "tick", "below", "above", "lower", "upper", "threshold", "cash", "low", "high", "trigger",
                "stop", "take", "limit", "maximum"}


@pytest.mark.parametrize("key", MONEY_KEYS)
def test_money_placeholders_take_formatted_money(key: str) -> None:
    """No money placeholder carries a number format (``{price:,}``) or a won suffix: Money formats itself."""
    for text in MESSAGES[key].values():
        assert "원" not in text.replace("원하", "") and " won" not in text, text
        for name, spec in re.findall(r"{(\w+)(:[^}]*)?}", text):
            if name in MONEY_PARAMS:
                assert not spec, (key, name, spec)


def _rendered(err: UserError) -> list[str]:
    return [render.error(err, lang)[0] for lang in ("ko", "en")]


def test_off_tick_names_won_prices_on_the_tick() -> None:
    err = off_tick(Money.krw(70_050), Money.krw(100))
    assert err.params["below"] == Money.krw(70_000) and err.params["above"] == Money.krw(70_100)
    for text in _rendered(err):
        assert "₩70,050" in text and "₩100" in text and "₩70,000" in text and "₩70,100" in text, text
        assert "원" not in text and "Decimal" not in text


@pytest.mark.parametrize("err, needles", [
    (UserError("out_of_limits", price=Money.krw(200_000), lower=Money.krw(49_000), upper=Money.krw(91_000)),
     ["₩200,000", "₩49,000", "₩91,000"]),
    (UserError("alert_already_crossed", price=Money.krw(70_000), threshold=Money.krw(65_000)), ["₩70,000", "₩65,000"]),
    (UserError("insufficient_cash", max_quantity=3, cash=Money.krw(210_500)), ["₩210,500"]),
    (UserError("revise_nothing_changes", order_no="0000123", price=Money.krw(70_000)), ["₩70,000"]),
    (UserError("cond_implausible", price=Money.krw(9_000), low=Money.krw(35_000), high=Money.krw(105_000)),
     ["₩9,000", "₩35,000", "₩105,000"]),
    (UserError("cond_would_fire_now", price=Money.of_price_units(1_902_500, "USD"),
               trigger=Money.of_price_units(1_950_000, "USD")), ["$190.25", "$195.00"]),
    (UserError("price_too_large", maximum=Money.krw(99_999_999)), ["₩99,999,999"]),
    (UserError("cond_bracket_order", stop=Money.krw(80_000), take=Money.krw(65_000)), ["₩80,000", "₩65,000"]),
])
def test_user_errors_show_money_with_its_sign(err: UserError, needles: list[str]) -> None:
    for text in _rendered(err):
        assert all(n in text for n in needles), text
        assert "원" not in text and " won" not in text and "Decimal" not in text, text


def test_conditional_card_words_name_won() -> None:
    for lang in ("ko", "en"):
        assert "₩64,900" in t("cond_at_limit", lang, limit=Money.krw(64_900))
        assert "₩65,000" in t("cond_when_stop", lang, price=Money.krw(65_000))
        assert "₩80,000" in t("cond_when_take", lang, price=Money.krw(80_000))
        assert "₩66,500" in t("cond_when_trail", lang, percent=5, price=Money.krw(66_500))
