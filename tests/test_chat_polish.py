"""Chat front end defects QA found through the real Application (tests/harness.BotHarness): each test is one
defect, and fails on the code before its fix."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from chatbot.console.botapi import BotApiEmulator
from chatbot.service.inputs import normalise_typed
from chatbot.service.views import ConfirmResult, FailReason, Outcome, mask_account
from chatbot.telegram import render
from tests.harness import BotHarness
from tests.helpers import new_credentials
from tests.test_conditional import price, ticks

ALICE = BotApiEmulator.user(9201, "ko")
BOB = BotApiEmulator.user(9202, "en")
CODE = "005930"


@pytest.fixture
async def bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url)
    await harness.start()
    yield harness
    assert not harness.api.unanswered_callbacks(), "every callback query must be answered"
    await harness.stop()


async def open_order(bot: BotHarness, user: dict, quantity: int, limit: int) -> str:
    """A limit buy below the market, confirmed: its order number."""
    (card,) = await bot.say(user, f"/buy {CODE} {quantity} {limit}")
    await bot.press_button(user, card, 0)
    text = bot.current(card)["text"]
    found = re.search(r"(?:주문번호|order no\.) (\d+)", text)
    assert found is not None, text
    return found.group(1)


# -- 1. a failed card says why in the reader's words, with the advice that fits ---------------------------
@pytest.mark.parametrize("user", [ALICE, BOB], ids=["ko", "en"])
async def test_a_second_revision_of_the_same_order_says_nothing_is_left_in_the_readers_words(
        bot: BotHarness, user: dict) -> None:
    """Two /modify cards for one order, both confirmed: the second said "❌ 전송되지 않았습니다 (nothing left to
    revise (filled or cancelled meanwhile)). 잠시 후 다시 시도하세요." — English inside Korean, and advice
    to retry that cannot help."""
    old = ticks(-10, price(bot))
    order_no = await open_order(bot, user, 2, old)
    (first,) = await bot.say(user, f"/modify {order_no} {ticks(1, old)}")
    (second,) = await bot.say(user, f"/modify {order_no} {ticks(2, old)}")
    await bot.press_button(user, first, 0)
    await bot.press_button(user, second, 0)
    text = bot.current(second)["text"].split("\n\n")[0]
    assert "nothing left to revise" not in text and "/orders" in text, text
    if user is ALICE:
        assert "정정할 주문이 남아 있지 않습니다" in text and "다시 시도" not in text, text
        assert not re.search(r"[A-Za-z]{4,}", text.replace("/orders", "")), text  # no English words
    else:
        assert "Nothing is left of the order to revise" in text.replace("nothing", "Nothing"), text
        assert "try again" not in text, text


@pytest.mark.parametrize("reason", list(FailReason))
@pytest.mark.parametrize("language", ["ko", "en"])
def test_every_failure_reason_is_worded_in_each_language(reason: FailReason, language: str) -> None:
    result = ConfirmResult(Outcome.FAILED, None, message=reason.value)  # as the journal gives it back too
    assert result.reason is reason
    text = render.outcome(result, language)
    assert "_" not in text and "{" not in text, text  # worded, not the key
    if language == "ko":
        words = re.sub(r"/\w+|KIS", "", text)
        assert not re.search(r"[A-Za-z]{3,}", words), text
    retry = {"ko": "다시 시도", "en": "try again"}[language]
    hopeless = {FailReason.REAL_DISABLED, FailReason.US_NOT_OFFERED, FailReason.NOTHING_LEFT,
                FailReason.RESERVATION_GONE, FailReason.NOT_REGISTERED, FailReason.KIS_KEYS_REFUSED,
                FailReason.ACCOUNT_CHANGED}
    assert (retry.lower() in text.lower()) is (reason not in hopeless), text


def test_a_failure_kis_explained_keeps_kiss_words() -> None:
    result = ConfirmResult(Outcome.FAILED, None, message="초당 거래건수를 초과하였습니다.")
    assert result.reason is None
    assert "초당 거래건수를 초과하였습니다." in render.outcome(result, "ko")


# -- 2. the account number, masked wherever it is shown --------------------------------------------------
async def test_the_account_number_is_masked_on_me_and_on_login(bot: BotHarness) -> None:
    """/me and /login's success said 12345678-01 in full while /balance said 12******-01."""
    creds = new_credentials("12345678-01")
    replies = await bot.say(ALICE, "/login")
    for text in (creds.app_key, creds.app_secret, "12345678-01", "myhts01"):
        replies += await bot.say(ALICE, text)
    done = replies[-1]["text"]
    assert "등록했습니다" in done and "12******-01" in done and "12345678" not in done, done
    (me,) = await bot.say(ALICE, "/me")
    assert "12******-01" in me["text"] and "12345678" not in me["text"], me["text"]
    (balance,) = await bot.say(ALICE, "/balance")
    assert "12******-01" in balance["text"]
    assert mask_account("12345678-01") == "12******-01"


# -- 3. the revise button's prompt: a reply to it is the new price ---------------------------------------
async def test_a_reply_to_the_revise_prompt_brings_the_revision_card(bot: BotHarness) -> None:
    """The 정정 prompt said "새 가격을 넣어 보내세요", but replying 3100 got "명령은 /help 를 보세요."; and its
    example was the order's own price, which /modify refuses ("바꿀 것이 없습니다")."""
    old = ticks(-10, price(bot))
    order_no = await open_order(bot, ALICE, 3, old)
    (listing,) = await bot.say(ALICE, "/orders")
    revise = next(data for label, data in BotApiEmulator.buttons(listing) if label == "정정")
    await bot.press(ALICE, listing, revise)
    prompt = bot.api.bot_messages(ALICE["id"])[-1]
    assert order_no in prompt["text"] and "답장" in prompt["text"], prompt["text"]
    sent = [params for method, params in bot.api.calls if method == "sendMessage"][-1]
    assert "force_reply" in str(sent.get("reply_markup")), sent
    example = re.search(rf"/modify {order_no} ([\d,]+)", prompt["text"])
    assert example is not None and int(example.group(1).replace(",", "")) != old, prompt["text"]
    (card,) = await bot.say(ALICE, example.group(1), reply_to=prompt)  # the example as given: a card
    assert "정정 확인" in card["text"] and BotApiEmulator.buttons(card), card["text"]
    new = ticks(2, old)
    (card,) = await bot.say(ALICE, f"{new} 2", reply_to=prompt)  # a price and a quantity
    assert "정정 확인" in card["text"] and f"{new:,}" in card["text"] and "수량 2주" in card["text"], card["text"]
    await bot.press_button(ALICE, card, 0)
    assert "정정 접수" in bot.current(card)["text"], bot.current(card)["text"]
    (hint,) = await bot.say(ALICE, "3100", reply_to=listing)  # a reply to anything else: the hint, as before
    assert "/help" in hint["text"]
    (hint,) = await bot.say(ALICE, "3100")
    assert "/help" in hint["text"]


async def test_a_reply_to_the_help_is_not_a_revision(bot: BotHarness) -> None:
    (help_text,) = await bot.say(ALICE, "/help")
    (hint,) = await bot.say(ALICE, "3100", reply_to=help_text)
    assert "/help" in hint["text"] and not BotApiEmulator.buttons(hint), hint["text"]


# -- 4. full-width digits, as Korean input methods type them ---------------------------------------------
def test_full_width_forms_read_as_ascii_and_nothing_else_changes() -> None:
    assert normalise_typed("３５５５") == "3555"
    assert normalise_typed("５％") == "5%"
    assert normalise_typed("１，０００") == "1,000"
    assert normalise_typed("１９０．２５") == "190.25"
    assert normalise_typed("ＡＡＰＬ") == "AAPL"
    assert normalise_typed("ㅅㅅㅈㅈ 삼성전자") == "ㅅㅅㅈㅈ 삼성전자"  # 초성 and Hangul untouched


async def test_full_width_numbers_are_taken_by_every_command(bot: BotHarness) -> None:
    """/buy 005930 ５ ３５５５ was refused: '수량은 1 이상의 정수여야 합니다 (입력: ５)'."""
    now = price(bot)
    limit = ticks(-5, now)
    wide = str(limit).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    (card,) = await bot.say(ALICE, f"/buy {CODE} ５ {wide}")
    assert "수량 5주" in card["text"] and f"가격 {limit:,}" in card["text"], card["text"]
    (card,) = await bot.say(ALICE, f"/buy {CODE} ５주")
    await bot.press_button(ALICE, card, 0)
    assert "주문 접수" in bot.current(card)["text"]
    (reply,) = await bot.say(ALICE, f"/alert {CODE} ＋０．５％")
    assert "알림 #1" in reply["text"], reply["text"]
    (reply,) = await bot.say(ALICE, f"/trail {CODE} ５ ５％")
    assert "조건주문 확인" in reply["text"], reply["text"]
    (reply,) = await bot.say(ALICE, "/history ３０")
    assert "30일" in reply["text"], reply["text"]


# -- 5. money as every message names it; which alert fired; US prices to the tick -----------------------
async def test_korean_text_names_won_one_way(bot: BotHarness) -> None:
    """Quotes, cards and /balance said 3,555원 where errors, pushes and conditional orders said ₩3,555."""
    now = price(bot)
    (quote,) = await bot.say(ALICE, f"/price {CODE}")
    (card,) = await bot.say(ALICE, f"/buy {CODE} 2 {now}")
    (balance,) = await bot.say(ALICE, "/balance")
    for text in (quote["text"], card["text"], balance["text"]):
        assert not re.search(r"\d원", text), text
    assert f"₩{now:,}" in quote["text"] and "예상 금액 ₩" in card["text"] and "예수금 ₩" in balance["text"]


async def test_an_alerts_push_names_the_alert(bot: BotHarness) -> None:
    """The push said which stock and price, not which of the trader's alerts (the number /alerts lists)."""
    now = price(bot)
    (reply,) = await bot.say(ALICE, f"/alert {CODE} 이상 {ticks(2, now)}")
    assert "알림 #1" in reply["text"], reply["text"]
    await bot.say(BOB, f"/alert {CODE} above {ticks(2, now)}")
    bot.sim.set_price(CODE, ticks(2, now))
    assert "알림 #1" in (await bot.wait_for_message(ALICE["id"], "도달", timeout=60))["text"]
    assert "alert #2" in (await bot.wait_for_message(BOB["id"], "reached", timeout=60))["text"]


async def test_a_us_stops_range_is_in_prices_on_the_tick(us_open_bot: BotHarness) -> None:
    """/stop AAPL 1 10 at $190.25 answered 'keep it within $95.1250–$380.50'."""
    bot = us_open_bot
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    (reply,) = await bot.say(BOB, "/stop AAPL 1 10")
    assert "$95.13" in reply["text"] and "$380.50" in reply["text"], reply["text"]
    assert "$95.1250" not in reply["text"]
