"""A candidate stock offered when the stock typed was ambiguous (``삼성`` names several) re-runs the command
typed with that stock's code: /alert sets the alert, /chart draws the chart, /stop, /tp, /trail and /bracket
bring their confirmation card (nothing armed before Confirm). They quoted the stock and dropped the command."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from chatbot.console.botapi import BotApiEmulator
from chatbot.service.conditional import ConditionalOrders
from chatbot.telegram import callbacks
from tests.conftest import SQLITE_ONLY
from tests.harness import BotHarness
from tests.test_conditional import price, ticks

ALICE = BotApiEmulator.user(9301, "ko")
CODE = "005930"


@pytest.fixture
async def bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url)
    await harness.start()
    yield harness
    assert not harness.api.unanswered_callbacks(), "every callback query must be answered"
    await harness.stop()


def conditional(bot: BotHarness) -> ConditionalOrders:
    assert bot.runtime is not None and bot.runtime.services.conditional is not None
    return bot.runtime.services.conditional


async def buy(bot: BotHarness, quantity: int) -> None:
    (card,) = await bot.say(ALICE, f"/buy {CODE} {quantity}")
    await bot.press_button(ALICE, card, 0)
    assert "reply_markup" not in bot.current(card)


async def candidates(bot: BotHarness, text: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    (reply,) = await bot.say(ALICE, text)
    buttons = BotApiEmulator.buttons(reply)
    assert "여러 개" in reply["text"] and buttons, reply
    assert all(len(data.encode()) <= callbacks.MAX_BYTES for _, data in buttons), buttons
    return reply, buttons


def samsung(buttons: list[tuple[str, str]]) -> str:
    (data,) = [data for label, data in buttons if label == f"삼성전자 ({CODE})"]
    return data


async def test_a_candidate_for_an_alert_sets_that_alert(bot: BotHarness) -> None:
    """/alert 삼성 70,000 이상 repeat → candidates; 삼성전자 sets that alert (not its quote)."""
    assert bot.runtime is not None
    target = ticks(3, price(bot))
    reply, buttons = await candidates(bot, f"/alert 삼성 {target:,} 이상 repeat")
    assert samsung(buttons) == f"xa:{CODE}_above_{target}_repeat"
    await bot.press(ALICE, reply, samsung(buttons))
    (alert,) = await bot.runtime.services.alerts.active(ALICE["id"])
    assert (alert.code, alert.direction, alert.threshold, alert.repeat) == (CODE, "above", target, True)
    shown = bot.current(reply)
    assert "알림 #" in shown["text"] and "reply_markup" not in shown, shown
    answer = await bot.press(ALICE, reply, samsung(buttons))  # a second tap: the same alert twice, refused
    assert not answer.get("show_alert")
    assert "이미 설정되어" in bot.api.bot_messages(ALICE["id"])[-1]["text"]
    assert len(await bot.runtime.services.alerts.active(ALICE["id"])) == 1


@SQLITE_ONLY
async def test_a_candidate_for_a_percent_alert_sets_it(bot: BotHarness) -> None:
    assert bot.runtime is not None
    reply, buttons = await candidates(bot, "/alert 삼성 -2.5%")
    assert samsung(buttons) == f"xa:{CODE}_-2.5%"
    await bot.press(ALICE, reply, samsung(buttons))
    (alert,) = await bot.runtime.services.alerts.active(ALICE["id"])
    assert (alert.code, alert.direction, alert.percent) == (CODE, "below", "-2.5")


@SQLITE_ONLY
async def test_a_candidate_for_a_chart_draws_that_chart(bot: BotHarness) -> None:
    reply, buttons = await candidates(bot, "/chart 삼성 w")
    assert samsung(buttons) == f"xc:{CODE}_W"
    await bot.press(ALICE, reply, samsung(buttons))
    newest = bot.api.bot_messages(ALICE["id"])[-1]
    assert newest.get("photo") and CODE in newest.get("caption", "") and "주봉" in newest["caption"], newest


@pytest.mark.parametrize(("typed", "kind", "words", "shown"), [
    ("/stop 삼성 3 {below}", "xs", "3_{below}", "손절"),
    ("/stop 삼성 3주 {below:,}원 {lower:,}", "xs", "3_{below}_{lower}", "손절"),
    ("/tp 삼성 2 {above}", "xt", "2_{above}", "익절"),
    ("/trail 삼성 3 2.5%", "xr", "3_2.5%", "트레일링"),
    ("/bracket 삼성 3 {below} {above}", "xk", "3_{below}_{above}", "브래킷"),
])
async def test_a_candidate_for_a_conditional_order_brings_its_card_and_arms_nothing(
        bot: BotHarness, typed: str, kind: str, words: str, shown: str) -> None:
    await buy(bot, 5)
    now = price(bot)
    levels = {"below": ticks(-5, now), "lower": ticks(-8, now), "above": ticks(5, now)}
    reply, buttons = await candidates(bot, typed.format(**levels))
    assert samsung(buttons) == f"{kind}:{CODE}_{words.format(**levels)}"
    await bot.press(ALICE, reply, samsung(buttons))
    card = bot.current(reply)  # the candidates became the card
    assert "조건주문 확인" in card["text"] and shown in card["text"] and f"({CODE})" in card["text"], card["text"]
    assert [label for label, _ in BotApiEmulator.buttons(card)] == ["✅ 확인", "✖ 취소"]
    assert await conditional(bot).active(ALICE["id"]) == []  # nothing armed on the press alone
    again = await bot.press(ALICE, reply, samsung(buttons))  # a second tap: no second card on the message
    assert not again.get("show_alert") and bot.current(reply)["text"] == card["text"]
    await bot.press(ALICE, card, BotApiEmulator.buttons(card)[0][1])
    assert "설정됨" in bot.current(card)["text"], bot.current(card)["text"]
    (armed,) = await conditional(bot).active(ALICE["id"])
    assert (armed.code, armed.kind) == (CODE, typed.split()[0][1:])


@SQLITE_ONLY
async def test_a_forged_candidate_does_no_more_than_typing(bot: BotHarness) -> None:
    """A forged button is the command typed with its words: every check made again."""
    await buy(bot, 2)
    reply, _ = await candidates(bot, f"/stop 삼성 1 {ticks(-5, price(bot))}")
    answer = await bot.press(ALICE, reply, f"xs:{CODE}_50_{ticks(-5, price(bot))}")  # more than held
    assert not answer.get("show_alert")
    assert "조건주문 확인" not in bot.current(reply)["text"]
    assert await conditional(bot).active(ALICE["id"]) == []
    unknown = await bot.press(ALICE, reply, "xs:a_b_c_d_e_f_g")  # out of shape
    assert unknown.get("show_alert")


def test_words_that_cannot_ride_a_button_fall_back_to_the_quote() -> None:
    assert callbacks.command_pick("alert", CODE, ("above", "70000")) == f"xa:{CODE}_above_70000"
    assert callbacks.command_pick("alert", CODE, ("above", "칠만")) is None  # not ASCII
    assert callbacks.command_pick("stop", CODE, ("1" * 30, "2" * 30)) is None  # over 64 bytes
    assert callbacks.command_args("005930_3_65000") == ["005930", "3", "65000"]
    assert callbacks.command_args("005930__3") is None
