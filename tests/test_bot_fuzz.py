"""Property-based: random command text and random button data never crash a handler, always get an
answer, and never reach the order endpoint without a confirmation press."""

from __future__ import annotations

import asyncio
import logging
import tempfile

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from chatbot.console.botapi import BotApiEmulator
from chatbot.service.errors import UserError
from chatbot.service.inputs import parse_price, parse_quantity, split_order_args
from tests.harness import BotHarness

USER = BotApiEmulator.user(4242, "ko")
COMMANDS = ["/buy", "/sell", "/price", "/cancel", "/orders", "/balance", "/start", "/help", "/nope"]
words = st.one_of(
    st.sampled_from(["005930", "삼성전자", "삼성", "samsung", "market", "시장가", "0", "-5", "1.5", "abc", "70,000",
                     "10", "1", "999999999999", "0126Z0", "", "🙂", "\u202e", "'; --", "<b>", "&amp;"]),
    st.text(min_size=1, max_size=12),
    st.integers(min_value=-10**12, max_value=10**12).map(str),
)
command_lines = st.builds(lambda cmd, args: " ".join([cmd, *args]), st.sampled_from(COMMANDS),
                          st.lists(words, max_size=5))
button_data = st.one_of(st.text(max_size=70), st.sampled_from(["oy:", "on:x", "pq:005930", "pc:1", "pq:", "oy:A" * 5]))


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def _run(lines: list[str], presses: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        harness = BotHarness(f"sqlite:///{tmp}/fuzz.sqlite3")
        errors = _Errors()
        logging.getLogger().addHandler(errors)
        await harness.start()
        try:
            for line in lines:
                before = len(harness.api.bot_messages(USER["id"]))
                await harness.say(USER, line)
                after = harness.api.bot_messages(USER["id"])
                assert len(after) > before, f"no answer to {line!r}"
            messages = harness.api.bot_messages(USER["id"])
            for i, data in enumerate(presses):
                if messages:
                    answer = await harness.press(USER, messages[i % len(messages)], data)
                    assert answer is not None
            assert harness.sim.orders_accepted == 0, "an order reached KIS without a confirmation"
            assert not harness.api.unanswered_callbacks()
            assert not errors.records, [r.getMessage() for r in errors.records]
        finally:
            logging.getLogger().removeHandler(errors)
            await harness.stop()


# No shrinking: each run starts a whole bot, and a raw failing example is readable enough.
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@example(lines=["/buy"] * 5, presses=["pc:1"])  # found by this test: a selection answered twice
@example(lines=["/buy 005930 005930 005930", "/buy 005930 999999999999 005930 005930 005930",
                "/buy 005930 005930 005930 🙂 005930", "/buy \u202e", "/cancel 1", "/price 삼성"],
         presses=["", "pq:ZZZZZZ", "pc:1", "oy:", "pq:005930"])
@given(st.lists(command_lines, min_size=5, max_size=25), st.lists(button_data, max_size=8))
def test_random_commands_never_crash_or_order(lines: list[str], presses: list[str]) -> None:
    asyncio.run(_run(lines, presses))


@given(st.lists(st.text(max_size=30), max_size=6))
def test_order_argument_parsing_only_raises_user_errors(args: list[str]) -> None:
    try:
        request = split_order_args(args, "usage_buy")
        parse_quantity(request.quantity)
        parse_price(request.price)
    except UserError:
        pass


@given(st.text(max_size=50))
def test_quantity_is_positive_whenever_accepted(text: str) -> None:
    try:
        qty = parse_quantity(text)
    except UserError:
        return
    assert 0 < qty <= 1_000_000


@pytest.mark.parametrize(("text", "expected"), [("10", 10), ("1,000", 1000), ("007", 7)])
def test_quantity_examples(text: str, expected: int) -> None:
    assert parse_quantity(text) == expected
