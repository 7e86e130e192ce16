"""What a trader met driving ``chatbot console`` through whole journeys (and a hostile user through odd
input): each test is one defect found that way, checked through the real Application."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from chatbot.console.botapi import BotApiEmulator
from chatbot.markets.directory import SymbolDirectory
from chatbot.markets.symbols import Kind, Symbol
from chatbot.service.names import SymbolNames
from chatbot.service.notices import OrderFilled
from tests.harness import BotHarness
from tests.test_conditional import price, ticks

ALICE = BotApiEmulator.user(9101, "ko")
BOB = BotApiEmulator.user(9102, "en")
CODE = "005930"


@pytest.fixture
async def bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url)
    await harness.start()
    yield harness
    assert not harness.api.unanswered_callbacks(), "every callback query must be answered"
    await harness.stop()


async def buy(bot: BotHarness, user: dict, quantity: int) -> None:
    (card,) = await bot.say(user, f"/buy {CODE} {quantity}")
    await bot.press_button(user, card, 0)
    assert "reply_markup" not in bot.current(card)


# -- symbols: an English word is not a company's name --------------------------------------------------------
def test_a_word_found_only_inside_one_funds_name_is_offered_not_chosen() -> None:
    """The US directory has no English names for shares (KIS's snapshot lists Apple as 애플 only), so
    "apple" matched one name: T-REX APPLE DAILY 2X, a leveraged ETF, taken as the answer."""
    directory = SymbolDirectory.bundled()
    for word, fund in (("apple", "AAPX"), ("Apple", "AAPX"), ("nvidia", "NVPS")):
        found = directory.lookup(word, "US")
        assert found.symbol is None and [s.code for s in found.candidates] == [fund], (word, found)
    assert directory.lookup("애플", "US").symbol is not None  # the share by its name still resolves
    assert directory.lookup("T-REX APPLE", "US").symbol is not None  # the fund by the start of its name too
    own = SymbolDirectory([Symbol("133690", "TIGER 미국나스닥100", "TIGER NASDAQ100", "KOSPI", Kind.ETF)])
    assert own.lookup("나스닥").symbol is not None  # KRX names are Korean names: a part of one is meant


async def test_buy_apple_is_no_card_for_a_leveraged_etf(us_open_bot: BotHarness) -> None:
    bot = us_open_bot
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    (reply,) = await bot.say(BOB, "/buy Apple 1 190")
    assert not BotApiEmulator.buttons(reply) and "AAPX" not in reply["text"], reply["text"]
    assert "AAPL" in reply["text"]  # how to find it: its ticker
    (quote,) = await bot.say(ALICE, "/price apple")
    assert "AAPX" not in quote["text"] and "2X" not in quote["text"], quote["text"]
    assert bot.sim.orders_accepted == 0


# -- conditional orders: what a refusal says --------------------------------------------------------------
async def test_a_stop_already_crossed_says_nothing_was_set_not_that_it_fires(bot: BotHarness) -> None:
    """ko said 현재가 … 이미 발동가 …을(를) 넘었습니다 — 지금 바로 발동합니다: "it fires right now" (nothing
    did), and "passed above" of a stop the price is below."""
    now = price(bot)
    (reply,) = await bot.say(ALICE, f"/stop {CODE} 1 {ticks(2, now)}")
    text = reply["text"]
    assert "지금 바로 발동합니다" not in text and "넘었습니다" not in text, text
    assert "걸지 않았습니다" in text and "/sell" in text
    (reply,) = await bot.say(BOB, f"/tp {CODE} 1 {ticks(-2, now)}")
    assert "nothing was set" in reply["text"], reply["text"]


async def test_a_conditional_sell_of_nothing_held_says_none_is_held(bot: BotHarness) -> None:
    """It said 매도 가능 0주 중 0주는 이미 다른 조건주문에 걸려 있어 1주를 더 걸 수 없습니다."""
    now = price(bot)
    (reply,) = await bot.say(ALICE, f"/stop {CODE} 1 {ticks(-3, now)}")
    assert "보유하고 있지 않아" in reply["text"] and "0주 중 0주" not in reply["text"], reply["text"]
    (reply,) = await bot.say(BOB, f"/stop {CODE} 1 {ticks(-3, now)}")
    assert "You hold no" in reply["text"] and "0 are already" not in reply["text"], reply["text"]
    await buy(bot, ALICE, 2)
    (reply,) = await bot.say(ALICE, f"/stop {CODE} 5 {ticks(-3, now)}")
    assert "매도 가능 2주" in reply["text"], reply["text"]  # some held: the counts, as before


# -- prices where 'market' means nothing ---------------------------------------------------------------------
@pytest.mark.parametrize("text", ["/modify 1001 시장가", "/modify 1001 0", "/alert 005930 이상 0",
                                  "/alert 005930 above -5", "/tp 005930 1 0"])
async def test_a_bad_price_where_market_means_nothing_does_not_offer_market(bot: BotHarness, text: str) -> None:
    """/modify 1004 시장가 answered: 가격은 1원 이상의 정수이거나 '시장가'여야 합니다 (입력: 시장가)."""
    (reply,) = await bot.say(ALICE, text)
    assert "'시장가'여야" not in reply["text"], reply["text"]
    assert "1원 이상의 정수" in reply["text"] or "사용법" in reply["text"], reply["text"]
    assert bot.sim.orders_accepted == 0


# -- lists with delete buttons ---------------------------------------------------------------------------
async def test_deleting_from_the_alerts_list_takes_it_off_the_list(bot: BotHarness) -> None:
    now = price(bot)
    await bot.say(ALICE, f"/alert {CODE} 이상 {ticks(50, now)}")
    await bot.say(ALICE, f"/alert {CODE} 이하 {ticks(-50, now)}")
    (listing,) = await bot.say(ALICE, "/alerts")
    assert len(BotApiEmulator.buttons(listing)) == 2
    answer = await bot.press_button(ALICE, listing, 0)
    assert "#1" in answer["text"]
    shown = bot.current(listing)
    assert "#1 " not in shown["text"] and "#2 " in shown["text"], shown["text"]
    assert [label for label, _ in BotApiEmulator.buttons(shown)] == ["🗑 #2 삼성전자"]
    await bot.press_button(ALICE, shown, 0)
    assert "reply_markup" not in bot.current(listing) and "#2" not in bot.current(listing)["text"]


async def test_cancelling_from_the_stops_list_takes_it_off_the_list(bot: BotHarness) -> None:
    now = price(bot)
    await buy(bot, ALICE, 2)
    for text in (f"/stop {CODE} 1 {ticks(-5, now)}", f"/tp {CODE} 1 {ticks(5, now)}"):
        (card,) = await bot.say(ALICE, text)
        await bot.press_button(ALICE, card, 0)
    (listing,) = await bot.say(ALICE, "/stops")
    assert len(BotApiEmulator.buttons(listing)) == 2, listing["text"]
    answer = await bot.press_button(ALICE, listing, 0)
    assert "#1" in answer["text"]
    shown = bot.current(listing)
    assert "#1 " not in shown["text"] and "#2 " in shown["text"], shown["text"]
    assert len(BotApiEmulator.buttons(shown)) == 1


# -- a name with a number in it ------------------------------------------------------------------------------
async def test_a_name_with_a_number_keeps_its_number(bot: BotHarness) -> None:
    """/buy KODEX 200 10 read "KODEX" as the stock, 200 as the quantity and 10 won as the price (and
    answered with KODEX candidates); /buy KODEX 200 10 8500 was refused as too many words."""
    state = bot.sim.market.get("069500")
    assert state is not None
    (card,) = await bot.say(ALICE, "/buy KODEX 200 10")
    assert "KODEX 200 (069500)" in card["text"] and "수량 10주" in card["text"] and "시장가" in card["text"], card["text"]
    (card,) = await bot.say(ALICE, f"/buy KODEX 200 10 {state.price:,}")
    assert "수량 10주" in card["text"] and f"가격 {state.price:,}" in card["text"], card["text"]
    (card,) = await bot.say(ALICE, f"/buy {CODE} 10 {price(bot)}")  # a code and two numbers: as before
    assert "삼성전자 (005930)" in card["text"] and "수량 10주" in card["text"], card["text"]
    (reply,) = await bot.say(ALICE, "/buy KODEX 10")  # a brand alone still names no one stock
    assert "여러 개" in reply["text"]
    assert bot.sim.orders_accepted == 0


# -- /cancel <order_no> in the middle of /login ------------------------------------------------------------
async def test_cancel_with_an_order_number_during_login_also_brings_that_orders_cancel_card(bot: BotHarness) -> None:
    """The flow took /cancel 0000001001 as 'stop registering' only: the reply said the registration
    stopped, and nothing about the order the trader meant to cancel, which stayed open."""
    (card,) = await bot.say(ALICE, f"/buy {CODE} 1 {ticks(-10, price(bot))}")
    await bot.press_button(ALICE, card, 0)
    order_no = bot.current(card)["text"].split("주문번호 ")[1].split()[0]
    await bot.say(ALICE, "/login")
    replies = await bot.say(ALICE, f"/cancel {order_no}")
    assert "등록을 중단했습니다" in replies[0]["text"]
    assert len(replies) == 2 and f"취소할 주문 {order_no}" in replies[1]["text"], [r["text"] for r in replies]
    await bot.press_button(ALICE, replies[1], 0)
    assert "취소 접수" in bot.current(replies[1])["text"]
    (stopped,) = await bot.say(ALICE, "/login") and await bot.say(ALICE, "/cancel")  # plain: the flow only
    assert "등록을 중단했습니다" in stopped["text"]


# -- units as Korean traders type them ---------------------------------------------------------------------
async def test_buy_takes_shares_typed_with_their_unit(bot: BotHarness) -> None:
    """/stop took 10주 (its help shows it), /buy refused it; and /buy 005930 10주 3500원 blamed the price:
    '수량은 1 이상의 정수여야 합니다 (입력: 3500원)'."""
    (card,) = await bot.say(ALICE, f"/buy {CODE} 10주 3,500원")
    assert "수량 10주" in card["text"] and "가격 3,500" in card["text"], card["text"]
    (card,) = await bot.say(ALICE, f"/buy {CODE} 7주")
    assert "수량 7주" in card["text"] and "시장가" in card["text"], card["text"]
    (reply,) = await bot.say(ALICE, f"/buy {CODE} 10원")  # won is no unit of shares
    assert "수량은" in reply["text"] and "10원" in reply["text"] and not BotApiEmulator.buttons(reply)
    (reply,) = await bot.say(ALICE, f"/buy {CODE} 주")
    assert "(입력: 주)" in reply["text"], reply["text"]
    assert bot.sim.orders_accepted == 0


# -- the daily report's armed orders -------------------------------------------------------------------------
async def test_the_reports_armed_orders_are_in_the_readers_words(bot: BotHarness) -> None:
    """The Korean report listed '#1 stop 삼성전자 ×5 stop 3,400': the kind and the trigger in raw English."""
    now = price(bot)
    await buy(bot, ALICE, 5)
    (card,) = await bot.say(ALICE, f"/stop {CODE} 5 {ticks(-5, now)}")
    await bot.press_button(ALICE, card, 0)
    replies = await bot.say(ALICE, "/report")
    report = next(r["text"] for r in replies if "대기 중인 조건주문" in r["text"])
    line = report.split("대기 중인 조건주문")[1]
    assert "손절" in line and "5주" in line and f"≤ {ticks(-5, now):,}" in line, line
    assert "stop" not in line and "×" not in line, line


# -- a partial revision ------------------------------------------------------------------------------------
async def test_a_partial_revision_card_says_the_rest_stays_at_the_old_price(bot: BotHarness) -> None:
    """/modify N <price> 3 on an order with 5 open revised 3 and left 2 open at the old price — a second
    order the card never mentioned (a trader who meant "3 in all" ends up buying 5)."""
    old = ticks(-10, price(bot))
    (card,) = await bot.say(ALICE, f"/buy {CODE} 5 {old}")
    await bot.press_button(ALICE, card, 0)
    order_no = bot.current(card)["text"].split("주문번호 ")[1].split()[0]
    (partial,) = await bot.say(ALICE, f"/modify {order_no} {ticks(1, old)} 3")
    assert f"나머지 2주는 ₩{old:,}에 그대로 남습니다" in partial["text"], partial["text"]
    (whole,) = await bot.say(ALICE, f"/modify {order_no} {ticks(1, old)}")
    assert "나머지" not in whole["text"], whole["text"]
    (en,) = await bot.say(BOB, f"/modify {order_no} {ticks(1, old)} 3")  # another user's order: not theirs
    assert "The other" not in en["text"]


# -- a candidate stock for an order typed ------------------------------------------------------------------
async def test_picking_a_candidate_for_a_buy_brings_the_buy_card(bot: BotHarness) -> None:
    """/buy samsung 10 → candidates; pressing 삼성전자 (005930) showed its quote, and the order was gone."""
    (reply,) = await bot.say(ALICE, "/buy samsung 10")
    assert BotApiEmulator.buttons(reply) and "여러 개" in reply["text"]
    await bot.press_button(ALICE, reply, 0)
    shown = bot.current(reply)
    newest = bot.api.bot_messages(ALICE["id"])[-1]
    assert any("주문 확인" in m["text"] and "수량 10주" in m["text"] for m in (shown, newest)), shown["text"]


async def test_a_candidate_for_a_priced_sell_brings_a_single_use_card_and_sends_nothing_itself(bot: BotHarness) -> None:
    """The card a candidate brings is the order typed (side, quantity, price), the usual card: nothing sent
    before Confirm, one Confirm sends it once; the button is the command typed with the stock's code."""
    await buy(bot, ALICE, 3)
    placed = bot.sim.orders_accepted
    limit = ticks(5, price(bot))
    (reply,) = await bot.say(ALICE, f"/sell samsung 2 {limit}")
    buttons = BotApiEmulator.buttons(reply)
    assert buttons[0] == ("삼성전자 (005930)", f"qs:005930_2_{limit}"), buttons
    await bot.press_button(ALICE, reply, 0)
    card = bot.current(reply)  # the candidates became the card
    assert "매도" in card["text"] and "수량 2주" in card["text"] and f"가격 {limit:,}" in card["text"], card["text"]
    assert [label for label, _ in BotApiEmulator.buttons(card)] == ["✅ 확인", "✖ 취소"]
    assert bot.sim.orders_accepted == placed  # a candidate's press sends nothing
    confirm = BotApiEmulator.buttons(card)[0][1]
    await bot.press(ALICE, card, confirm)
    assert "주문 접수" in bot.current(card)["text"] and bot.sim.orders_accepted == placed + 1
    answer = await bot.press(ALICE, card, confirm)  # the card is spent
    assert answer.get("show_alert") and bot.sim.orders_accepted == placed + 1
    forged = await bot.press(ALICE, reply, "qb:005930_0")  # no more than typing /buy 005930 0
    assert not forged.get("show_alert")
    assert "수량은" in bot.api.bot_messages(ALICE["id"])[-1]["text"] and bot.sim.orders_accepted == placed + 1
    (big,) = await bot.say(ALICE, "/buy samsung 1,000,000 100,000,000")  # the largest order typed fits a button
    assert all(len(data.encode()) <= 64 for _, data in BotApiEmulator.buttons(big)), BotApiEmulator.buttons(big)
    assert BotApiEmulator.buttons(big)[0][1] == "qb:005930_1000000_100000000"


# -- the same alert twice -----------------------------------------------------------------------------------
async def test_the_same_alert_twice_is_refused_and_changes_nothing(bot: BotHarness) -> None:
    """/alert 005930 이상 X twice set #1 and #2, the same alert: two pushes of the same news."""
    now = price(bot)
    target = ticks(2, now)
    await bot.say(ALICE, f"/alert {CODE} 이상 {target}")
    for again in (f"/alert {CODE} above {target}", f"/alert 삼성전자 {target:,} 이상 repeat"):
        (reply,) = await bot.say(ALICE, again)
        assert "이미 설정되어" in reply["text"] and "#1" in reply["text"] and "바뀐 것은 없습니다" in reply["text"], \
            reply["text"]
    (reply,) = await bot.say(BOB, f"/alert {CODE} +0.5%")  # another user's: theirs
    assert "Alert #2" in reply["text"], reply["text"]
    level = reply["text"].split("(₩")[1].split(")")[0]
    (reply,) = await bot.say(BOB, f"/alert {CODE} above {level}")  # the price the percentage came to
    assert "already set: #2" in reply["text"] and "Nothing was changed" in reply["text"], reply["text"]
    (reply,) = await bot.say(ALICE, f"/alert {CODE} 이하 {ticks(-2, now)}")  # the other side: another alert
    assert "알림 #3" in reply["text"], reply["text"]
    (listing,) = await bot.say(ALICE, "/alerts")
    assert [label for label, _ in BotApiEmulator.buttons(listing)] == ["🗑 #1 삼성전자", "🗑 #3 삼성전자"]
    await bot.say(ALICE, "/alert off 1")  # deleted: it may be set again
    (reply,) = await bot.say(ALICE, f"/alert {CODE} 이상 {target}")
    assert "알림 #4" in reply["text"], reply["text"]


async def test_the_same_us_alert_twice_is_refused(us_open_bot: BotHarness) -> None:
    bot = us_open_bot
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    (reply,) = await bot.say(BOB, "/alert AAPL above 200")
    assert "#1" in reply["text"], reply["text"]
    (reply,) = await bot.say(BOB, "/alert AAPL above 200.00")
    assert "already set: #1" in reply["text"] and "AAPL" in reply["text"], reply["text"]
    (reply,) = await bot.say(ALICE, "/alert 애플 200 이상")
    assert "#2" in reply["text"], reply["text"]
    (reply,) = await bot.say(ALICE, "/alert AAPL 이상 200")
    assert "이미 설정되어" in reply["text"], reply["text"]


# -- a US alert's price off the tick -------------------------------------------------------------------------
async def test_a_us_alert_off_the_tick_speaks_of_an_alert_not_an_order(us_open_bot: BotHarness) -> None:
    """It said 200.005은(는) 호가 단위($0.01)에 맞지 않습니다. $200.00 또는 $200.01로 주문하세요."""
    bot = us_open_bot
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    (reply,) = await bot.say(ALICE, "/alert AAPL 이상 200.005")
    assert "주문" not in reply["text"] and "알림" in reply["text"] and "$200.01" in reply["text"], reply["text"]
    (reply,) = await bot.say(BOB, "/alert AAPL above 200.005")
    assert "order" not in reply["text"].lower() and "no alert was set" in reply["text"], reply["text"]
    assert "$200.00" in reply["text"] and "$200.01" in reply["text"], reply["text"]
    (reply,) = await bot.say(ALICE, "/buy AAPL 1 190.005")  # an order's is an order's
    assert "주문하세요" in reply["text"], reply["text"]


# -- an English reader, a domestic stock ----------------------------------------------------------------------
async def test_an_english_reader_reads_a_domestic_stock_by_its_english_name(bot: BotHarness) -> None:
    """Quotes and cards said Samsung Electronics, and the alert set, /alerts, the alert's push and the fill's
    push said 삼성전자 (the Korean name stored with the alert or order)."""
    now = price(bot)
    (reply,) = await bot.say(BOB, f"/alert {CODE} above {ticks(2, now)}")
    assert "Samsung Electronics" in reply["text"] and "삼성전자" not in reply["text"], reply["text"]
    await bot.say(ALICE, f"/alert {CODE} 이상 {ticks(2, now)}")
    (listing,) = await bot.say(BOB, "/alerts")
    assert "Samsung Electronics (005930)" in listing["text"] and "삼성전자" not in listing["text"], listing["text"]
    assert [label for label, _ in BotApiEmulator.buttons(listing)] == ["🗑 #1 Samsung Electronics"]
    for user in (BOB, ALICE):
        await buy(bot, user, 1)
    assert "Samsung Electronics" in (await bot.wait_for_message(BOB["id"], "Filled", timeout=60))["text"]
    assert "삼성전자" in (await bot.wait_for_message(ALICE["id"], "✅ 체결", timeout=60))["text"]
    bot.sim.set_price(CODE, ticks(2, now))
    push = await bot.wait_for_message(BOB["id"], "🔔 Samsung Electronics (005930)", timeout=60)
    assert "삼성전자" not in push["text"], push["text"]
    assert "삼성전자" in (await bot.wait_for_message(ALICE["id"], "도달", timeout=60))["text"]  # a Korean reader: as before


def test_a_push_keeps_the_name_it_has_where_the_directory_has_no_english_one() -> None:
    names = SymbolNames(SymbolDirectory.bundled())
    fill = OrderFilled(language="en", order_no="1", code="0001A0", name="덕양에너젠", side="buy", quantity=1,
                       price=1000, time="090000")  # no English name in KIS's master
    assert names.localise(fill) == fill
    assert names.localise(dataclasses.replace(fill, code=CODE, name="삼성전자")).name == "Samsung Electronics"
    assert names.localise(dataclasses.replace(fill, code=CODE, name="삼성전자", language="ko")).name == "삼성전자"
    us = OrderFilled(language="en", order_no="1", code="AAPL", name="애플", side="buy", quantity=1, price=1,
                     time="", currency="USD")
    assert names.localise(us) == us


# -- a trailing percentage out of range ----------------------------------------------------------------------
async def test_a_trailing_percentage_over_the_maximum_says_the_range(bot: BotHarness) -> None:
    """/trail 005930 5 150% answered with the usage text, as if the command were misspelt."""
    await buy(bot, ALICE, 5)
    (reply,) = await bot.say(ALICE, f"/trail {CODE} 5 150%")
    assert "30%" in reply["text"] and "사용법" not in reply["text"], reply["text"]
