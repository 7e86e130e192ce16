"""Review of the US, conditional-order, report and notice code (2026-11-30): each test reproduces a defect
found in review against the real PTB Application, the fake Bot API and the simulator, then pins the fix."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import overseas_protocol as o
from chatbot.kis.overseas_protocol import UsExchange, UsOrderDivision
from chatbot.service.errors import UserError
from chatbot.service.us_orders import parse_us_price
from tests.conftest import SQLITE_ONLY
from tests.harness import BotHarness, confirm

ALICE = BotApiEmulator.user(9101, "ko")
BOB = BotApiEmulator.user(9102, "en")


@pytest.fixture
def bot(us_open_bot: BotHarness) -> BotHarness:
    return us_open_bot


# -- a US price with a comma that is not a thousands separator ---------------------------------------------
@pytest.mark.parametrize("text", ["190,50", "1,9.0", "0,50", "1,95", "12,3456.00"])
def test_a_us_price_with_a_misplaced_comma_is_refused_not_misread(text: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_us_price(text)
    assert caught.value.key == "us_bad_price"


@pytest.mark.parametrize(("text", "expected"), [("1,234.50", "1234.50"), ("$190.50", "190.50"), ("12,345", "12345")])
def test_a_us_price_with_thousands_separators_still_reads(text: str, expected: str) -> None:
    assert parse_us_price(text) == Decimal(expected)


@SQLITE_ONLY
@pytest.mark.parametrize("text", ["/buy AAPL 1 190,50", "/stop AAPL 1 180,5", "/alert AAPL above 1,95"])
async def test_a_decimal_comma_makes_no_card_and_no_alert(bot: BotHarness, text: str) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    (msg,) = await bot.say(BOB, text)
    assert "reply_markup" not in msg and "Could not read the price" in msg["text"], msg["text"]
    assert "$19,050" not in msg["text"] and "$1805" not in msg["text"] and "Alert #" not in msg["text"]


# -- /orders of an active trader: more than Telegram's 4096 characters -----------------------------------
async def test_orders_with_many_open_us_orders_fit_telegram_and_still_offer_cancel(bot: BotHarness) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    final = await confirm(bot, ALICE, "/buy AAPL 1 100.00")  # rests far below the market
    assert "주문 접수" in final["text"], final["text"]
    (account_id,) = bot.sim.us_trading.accounts
    now = dt.datetime.now(dt.UTC)
    for i in range(60):  # placed in KIS's app meanwhile: /orders lists them all
        bot.sim.us_trading.place(account_id, "AAPL", UsExchange.NASDAQ, o.SIDE_BUY, UsOrderDivision.LIMIT, 1,
                                 (100_00 + i) * 100, now)
    (orders,) = await bot.say(ALICE, "/orders")
    assert "요청을 처리하지 못했습니다" not in orders["text"], "the list must not fail as an internal error"
    assert "🇺🇸" in orders["text"] and BotApiEmulator.buttons(orders)
    (cancel,) = await bot.say(ALICE, "/cancel")
    assert BotApiEmulator.buttons(cancel) and "요청을 처리하지 못했습니다" not in cancel["text"]


# -- the daily report: a long day keeps its totals; a US penny stock keeps its decimals -----------------------
def _report(**kwargs: Any) -> Any:
    from chatbot.alerts.daily_report import DailyReport

    base: dict[str, Any] = {"language": "en", "market": "US", "day": "2026-11-30", "currency": "USD", "fills": (),
                            "realised": (), "realised_total": Decimal(0), "realised_source": "derived",
                            "holdings": (), "purchase_total": Decimal(0), "evaluation_total": Decimal(0),
                            "profit_loss_total": Decimal(0), "mode": "PAPER"}
    base.update(kwargs)
    return DailyReport(**base)


def test_a_report_with_many_sales_still_shows_its_holdings_and_total() -> None:
    from chatbot.alerts.daily_report import HoldingLine, RealisedLine
    from chatbot.telegram.report import report_text

    realised = tuple(RealisedLine(f"T{i:03d}", f"SOME RATHER LONG US COMPANY NAME HOLDINGS {i}", 1, Decimal("12.34"),
                                  Decimal("10.00"), Decimal("2.34")) for i in range(120))
    holding = HoldingLine("AAPL", "애플", 3, Decimal("190.00"), Decimal("191.00"), Decimal("573.00"), Decimal("3.00"),
                          Decimal("0.53"))
    text = report_text(_report(realised=realised, realised_total=Decimal("280.80"), holdings=(holding,),
                               purchase_total=Decimal("570.00"), evaluation_total=Decimal("573.00"),
                               profit_loss_total=Decimal("3.00")))
    assert len(text) <= 4096
    assert "애플" in text and "$573.00" in text and "+$3.00" in text, "the holdings and the total must survive"


def test_a_us_report_shows_sub_dollar_prices_to_the_tick_in_dollars() -> None:
    from chatbot.alerts.daily_report import HoldingLine, RealisedLine, ReportFill
    from chatbot.telegram.report import report_text

    fill = ReportFill("100000", "sell", "PENY", "PENNY CO", 1000, Decimal("0.5123"), Decimal("512.30"))
    realised = RealisedLine("PENY", "PENNY CO", 1000, Decimal("0.5123"), Decimal("0.4987"), Decimal("13.60"))
    holding = HoldingLine("PENY", "PENNY CO", 1000, Decimal("0.4987"), Decimal("0.5123"), Decimal("512.30"),
                          Decimal("13.60"), Decimal("2.73"))
    text = report_text(_report(fills=(fill,), realised=(realised,), realised_total=Decimal("13.60"),
                               holdings=(holding,)))
    assert "$0.5123" in text and "$0.4987" in text, text
    assert "@ 0.51 " not in text


def test_realised_of_a_us_penny_stock_keeps_four_decimals() -> None:
    from chatbot.alerts.daily_report import ReportFill
    from chatbot.service.reports import realised_lines

    sell = ReportFill("100000", "sell", "PENY", "PENNY CO", 1000, Decimal("0.5123"), Decimal("512.30"))
    (line,) = realised_lines([sell], {"PENY": (1000, Decimal("0.4987"))}, {}, "USD")
    assert line.sell_price == Decimal("0.5123") and line.cost_price == Decimal("0.4987"), line
    assert line.profit_loss == Decimal("13.60")


# -- a US fill is journalled on the US order, never on a domestic order with the same number ------------------
async def test_a_us_fill_never_marks_a_domestic_order_with_the_same_number_filled(bot: BotHarness) -> None:
    import asyncio

    from sqlmodel import select

    from chatbot.storage.tables import OrderJournalRow

    assert bot.runtime is not None
    final = await confirm(bot, ALICE, "/buy 005930 1 2500")  # rests below the market: stays open
    assert "주문 접수" in final["text"], final["text"]
    domestic_no = int(bot.sim.exchange.next_order_no)
    bot.sim.us_trading.next_no = domestic_no - 1  # KIS's two books numbered alike: the US order gets the same number
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    final = await confirm(bot, ALICE, "/buy AAPL 2 180.00")
    assert "주문 접수" in final["text"], final["text"]
    bot.sim.set_us_price("AAPL", Decimal("179.50"))  # fills the US order at $180.00
    await bot.wait_for_message(ALICE["id"], "체결 🇺🇸")

    async def journal() -> dict[str, OrderJournalRow]:
        async with bot.runtime.db.session() as session:  # type: ignore[union-attr]
            return {r.market: r for r in (await session.exec(select(OrderJournalRow))).all()}

    for _ in range(200):
        rows = await journal()
        if rows["US"].status == "filled":
            break
        await asyncio.sleep(0.05)
    rows = await journal()
    assert rows["US"].kis_order_no == rows["KRX"].kis_order_no, "the repro needs the same number on both"
    assert rows["US"].status == "filled", rows["US"].status
    assert rows["KRX"].status == "accepted", "a US fill must not touch the domestic order's journal row"


# -- a US order's bad quantity or price is refused as such (not "no such stock", not in won) -------------------
@SQLITE_ONLY
@pytest.mark.parametrize(("text", "expected"), [
    ("/buy AAPL 1.5 190", "whole number"), ("/buy AAPL -1 190", "whole number"),
    ("/buy AAPL 1 1e2", "Could not read the price")])
async def test_a_us_order_with_a_bad_number_is_refused_for_that_number(bot: BotHarness, text: str,
                                                                      expected: str) -> None:
    (msg,) = await bot.say(BOB, text)
    assert expected in msg["text"] and "reply_markup" not in msg, msg["text"]
    assert "No such stock" not in msg["text"] and "won" not in msg["text"]


def test_a_reservation_line_shows_a_name_with_an_ampersand_once_escaped() -> None:
    from chatbot.console.botapi import html_to_text
    from chatbot.kis.models import OrderSide
    from chatbot.markets.money import Money
    from chatbot.service.us_views import UsPendingReservation
    from chatbot.telegram.us_render import reservation_line

    r = UsPendingReservation("0000000042", dt.date(2026, 11, 30), "T", "AT&T INC", "NYSE", OrderSide.BUY, 3,
                             Money.usd(Decimal("25.10")), "LIMIT", dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC))
    shown = html_to_text(reservation_line(r, "en"))
    assert "AT&T INC" in shown and "&amp;" not in shown, shown


async def test_the_revise_prompt_of_a_sub_dollar_us_order_names_its_price_to_the_tick(bot: BotHarness) -> None:
    bot.sim.set_us_price("AAPL", Decimal("0.5123"))
    final = await confirm(bot, BOB, "/buy AAPL 100 0.4012")  # rests below the market
    assert "accepted" in final["text"].lower(), final["text"]
    (orders,) = await bot.say(BOB, "/orders")
    order_no = next(data.split(":", 1)[1] for _, data in BotApiEmulator.buttons(orders) if data.startswith("pc:"))
    revise = next(i for i, (_, data) in enumerate(BotApiEmulator.buttons(orders)) if data.startswith("pr:"))
    await bot.press_button(BOB, orders, revise)
    prompt = await bot.wait_for_message(BOB["id"], f"/modify {order_no}")
    assert f"/modify {order_no} 0.4013" in prompt["text"], prompt["text"]  # not 0.40: to the tick, a new price


@pytest.mark.parametrize("price", ["190.50달러", "190.5불", "＄190.50", "１９０.５０"])
def test_a_us_price_as_a_korean_user_types_it_reads_in_dollars(price: str) -> None:
    assert parse_us_price(price) == Decimal("190.50")


async def test_a_us_price_with_a_korean_unit_makes_a_dollar_card_not_a_won_refusal(bot: BotHarness) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    (card,) = await bot.say(ALICE, "/buy 애플 3 190.50달러")
    assert BotApiEmulator.buttons(card) and "$190.50" in card["text"], card["text"]
    (msg,) = await bot.say(ALICE, "/buy 애플 3 19O.50")  # a letter O for a zero: refused in dollars
    assert "가격 '19O.50'" in msg["text"] and "원" not in msg["text"].split("예:")[0], msg["text"]


# -- /alerts and /stops of a busy user: within Telegram's 4096 characters ------------------------------------
LONG_NAMED = "ACYS"  # FT VEST LADDERED AUTOCALLABLE BARRIER & RESILIENT INCOME


async def test_fifty_us_alerts_on_long_named_etfs_are_listed_not_an_internal_error(bot: BotHarness) -> None:
    bot.sim.set_us_price(LONG_NAMED, Decimal("25.00"))
    for i in range(50):
        (msg,) = await bot.say(BOB, f"/alert {LONG_NAMED} above {26 + i * 0.25:.2f} repeat")  # within double
        assert "Alert #" in msg["text"], msg["text"]
    (listing,) = await bot.say(BOB, "/alerts")
    assert "Something went wrong" not in listing["text"], "the list of alerts must not fail"
    assert "LADDERED" in listing["text"] and BotApiEmulator.buttons(listing)



# -- /balance of a diversified investor: within Telegram's 4096 characters ------------------------------------
def _codes(market: str, count: int) -> list[str]:
    import gzip
    from importlib import resources

    with resources.files("chatbot.data").joinpath(f"symbols_{market}.tsv.gz").open("rb") as raw:
        rows = [r.split("\t") for r in gzip.decompress(raw.read()).decode().splitlines()[2:]]
    wanted = ("KOSPI",) if market == "krx" else ("NASDAQ", "NYSE")
    return [r[0] for r in rows if r[1] in wanted and r[2] in ("S", "ST")][:count]


@SQLITE_ONLY
async def test_balance_of_forty_domestic_and_twenty_us_holdings_is_shown_not_an_internal_error(
        bot: BotHarness) -> None:
    from chatbot.sim.exchange import Position
    from chatbot.sim.us_trading import UsPosition

    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    assert "accepted" in (await confirm(bot, BOB, "/buy 005930 1")).get("text", "").lower()
    assert "accepted" in (await confirm(bot, BOB, "/buy AAPL 1 190.50"))["text"].lower()
    (domestic,) = [a for a in bot.sim.exchange.accounts.values() if a.positions]
    (us,) = bot.sim.us_trading.accounts.values()
    for code in _codes("krx", 40):  # bought over the years in KIS's app
        domestic.positions.setdefault(code, Position(quantity=10, cost=10 * 10_000))
    for ticker in _codes("us", 20):
        us.positions.setdefault(ticker, UsPosition(quantity=5, cost=5 * 100 * 10_000))
    parts = await bot.say(BOB, "/balance")
    text = "\n".join(m["text"] for m in parts)
    assert "Something went wrong" not in text, "a long balance must not fail"
    assert len(parts) > 1 and all(len(m["text"]) <= 4096 for m in parts)
    assert "US stocks" in text and "Total" in text and "US total" in text, text[-500:]
    assert text.count("\n  value") + text.count("\n  평가") >= 40 + 20  # every holding


def test_split_message_keeps_every_line_once_within_the_limit() -> None:
    from chatbot.telegram.render import split_message

    text = "\n".join(f"<b>holding {i}</b>\n  line {'x' * (i % 90)}" + ("\n" if i % 7 == 0 else "") for i in range(400))
    parts = split_message(text + "\n" + "y" * 9000)
    assert all(0 < len(p) <= 3900 for p in parts)
    joined = "\n".join(parts)
    assert all(f"<b>holding {i}</b>" in joined for i in range(400)) and joined.count("y") == 9000


# -- a reservation cancel whose lookup KIS does not answer: told at once, not left "sending…" ----------------
async def test_a_reservation_cancel_whose_lookup_fails_is_told_as_not_sent(bot: BotHarness) -> None:
    from sqlmodel import select

    from chatbot.storage.tables import OrderJournalRow
    from tests.test_us_bot import _KstNoon

    assert bot.runtime is not None and bot.runtime.services.us is not None
    bot.runtime.services.us.market.calendar = _KstNoon()  # reservations open; the real-like server lists them
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    final = await confirm(bot, ALICE, "/buy AAPL 2 190.50")
    assert "주문 접수" in final["text"], final["text"]
    (number,) = [r.reservation_no for a in bot.sim.us_trading.accounts.values() for r in a.reservations]
    (card,) = await bot.say(ALICE, f"/cancel {number}")
    assert BotApiEmulator.buttons(card), card["text"]
    await bot.sim.control("faults", {"error_5xx_probability": 1.0,
                                     "paths": ["/uapi/overseas-stock/v1/trading/order-resv-list"]})
    await bot.press_button(ALICE, card, 0)
    await bot.sim.control("clear-faults", {})
    shown = bot.current(card)
    assert "⏳" not in shown["text"] and "reply_markup" not in shown, shown["text"]
    async with bot.runtime.db.session() as session:
        rows = (await session.exec(select(OrderJournalRow).where(OrderJournalRow.action == "cancel"))).all()
    assert [(r.status, r.sent_at) for r in rows] == [("failed", None)], rows
    assert rows[0].told_at is not None
    assert {r.status for a in bot.sim.us_trading.accounts.values() for r in a.reservations} == {"received"}


async def test_a_us_stop_with_a_korean_dollar_unit_is_a_dollar_card(bot: BotHarness) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    assert "주문 접수" in (await confirm(bot, ALICE, "/buy 애플 3 190.50달러"))["text"]
    (card,) = await bot.say(ALICE, "/stop 애플 3 180달러")
    assert BotApiEmulator.buttons(card) and "$180.00" in card["text"], card["text"]


# -- a US fill missed by the notice feed is caught up from KIS's US orders (service/fill_catchup.py) -------------
async def test_a_us_fill_missed_by_the_notice_feed_is_caught_up(bot: BotHarness) -> None:
    from sqlmodel import select

    from chatbot.service.fill_catchup import catch_up_fills
    from chatbot.storage.tables import OrderJournalRow

    runtime = bot.runtime
    assert runtime is not None
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    assert "주문 접수" in (await confirm(bot, ALICE, "/buy AAPL 2 180.00"))["text"]  # rests below the market
    trading = bot.sim.us_trading
    listeners, trading._listeners = trading._listeners, []  # the fill notice is lost (no session listened)
    try:
        bot.sim.set_us_price("AAPL", Decimal("179.50"))
    finally:
        trading._listeners = listeners
    pushed = await catch_up_fills(runtime.db, runtime.accounts, runtime.users, ALICE["id"], lambda: None)
    async with runtime.db.session() as session:
        (row,) = (await session.exec(select(OrderJournalRow).where(OrderJournalRow.market == "US"))).all()
    assert pushed == 1 and row.status == "filled", (pushed, row.status)
    from chatbot.storage.tables import OutboxRow

    async with runtime.db.session() as session:
        (push,) = (await session.exec(select(OutboxRow).where(OutboxRow.kind == "fill"))).all()
    assert push.payload["currency"] == "USD" and push.payload["price"] == 1_800_000, push.payload  # $180.00
    assert await catch_up_fills(runtime.db, runtime.accounts, runtime.users, ALICE["id"], lambda: None) == 0


# -- the US daily report tells its fills' times in KST, like every time the bot shows ----------------------------
async def test_the_us_report_gives_fill_times_in_kst(bot: BotHarness) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    assert "accepted" in (await confirm(bot, BOB, "/buy AAPL 1 190.50"))["text"].lower()
    (order,) = [x for a in bot.sim.us_trading.accounts.values() for x in a.orders]
    kst, new_york = f"{order.kst_time[:2]}:{order.kst_time[2:4]}", f"{order.local_time[:2]}:{order.local_time[2:4]}"
    assert kst != new_york
    messages = await bot.say(BOB, "/report")
    (us,) = [m["text"] for m in messages if "· US" in m["text"]]
    line = next(x for x in us.split("\n") if "BUY" in x)
    assert line.startswith(f" {kst} "), (line, kst, new_york)


# -- two executions alike (same second, quantity and price) are two fills told -----------------------------------
async def test_two_identical_partial_fills_of_one_order_are_both_told(bot: BotHarness) -> None:
    from sqlmodel import select

    from chatbot.broker import Fill, OrderSide
    from chatbot.markets.money import Money
    from chatbot.storage.tables import OrderJournalRow, OutboxRow

    runtime = bot.runtime
    assert runtime is not None
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    assert "주문 접수" in (await confirm(bot, ALICE, "/buy AAPL 20 180.00"))["text"]  # rests below the market
    async with runtime.db.session() as session:
        (row,) = (await session.exec(select(OrderJournalRow).where(OrderJournalRow.market == "US"))).all()
    assert row.kis_order_no
    fill = Fill(row.kis_order_no, "", "AAPL", OrderSide.BUY, 10, Money.usd(Decimal("180.00")), 20, "233001")
    for _ in range(2):  # KIS reports 10 + 10 in the same second at the same price
        await runtime.fills._record(ALICE["id"], ALICE["id"], "ko", fill)
    async with runtime.db.session() as session:
        pushes = (await session.exec(select(OutboxRow).where(OutboxRow.kind == "fill"))).all()
        entry = await session.get(OrderJournalRow, row.id)
    assert entry is not None and entry.status == "filled"
    assert len(pushes) == 2, "the second 10 shares filled and were never told"


# -- KIS's US side down: /orders still lists (and cancels) the domestic orders ------------------------------------
async def test_orders_lists_domestic_orders_when_kis_us_queries_fail(bot: BotHarness) -> None:
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    assert "주문 접수" in (await confirm(bot, ALICE, "/buy AAPL 1 100.00"))["text"]  # a US trader
    assert "주문 접수" in (await confirm(bot, ALICE, "/buy 005930 1 2500"))["text"]  # rests below the market
    await bot.sim.control("faults", {"error_5xx_probability": 1.0, "paths": ["/uapi/overseas-stock/"]})
    try:
        (orders,) = await bot.say(ALICE, "/orders")
        (cancel,) = await bot.say(ALICE, "/cancel")
        order_no = next(data.split(":", 1)[1] for _, data in BotApiEmulator.buttons(orders) if data.startswith("pr:"))
        (revise,) = await bot.say(ALICE, f"/modify {order_no} 2600")  # a domestic order is still revised
        assert BotApiEmulator.buttons(revise) and "정정" in revise["text"], revise["text"]
        await bot.press(ALICE, orders, f"pr:{order_no}")  # and its revise button still prompts
        await bot.wait_for_message(ALICE["id"], f"/modify {order_no} 2505")
    finally:
        await bot.sim.control("clear-faults", {})
    for listing in (orders, cancel):
        assert "삼성전자" in listing["text"], listing["text"]
        assert any(data.startswith("pc:") for _, data in BotApiEmulator.buttons(listing))
        assert "미국" in listing["text"]  # and it says the US part could not be loaded


@SQLITE_ONLY
async def test_the_chart_of_a_sub_dollar_us_stock_labels_its_prices_to_the_tick(
        bot: BotHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    from chatbot.service import us_market

    seen: list[int] = []
    real = us_market.render_candles

    def recording(*args: Any, price_decimals: int = 0, **kwargs: Any) -> bytes:
        seen.append(price_decimals)
        return real(*args, price_decimals=price_decimals, **kwargs)

    monkeypatch.setattr(us_market, "render_candles", recording)
    bot.sim.set_us_price("AAPL", Decimal("0.5123"))
    await bot.say(BOB, "/chart AAPL")
    assert seen == [4], "a $0.51 axis cannot tell $0.5123 from $0.5087"


# -- a fill handled after its trading day ended is matched to that day's order ------------------------------------
async def test_a_us_fill_of_the_last_after_market_second_handled_after_0700_kst_is_journalled(bot: BotHarness) -> None:
    """A US trading day ends at 07:00 KST. A fill at 06:59:58 whose notice is handled a little later (waiting for
    its order's number, a database retry) was matched against the rows of the day begun at 07:00: its own order,
    sent the day before, was not among them, so the fill was pushed as an order placed elsewhere and the journal
    left 'accepted' (a later catch-up then told it a second time)."""
    from sqlalchemy import update
    from sqlmodel import select

    from chatbot.broker import Fill, OrderSide
    from chatbot.kis.models import KST
    from chatbot.markets.money import Money
    from chatbot.storage.tables import OrderJournalRow

    runtime = bot.runtime
    assert runtime is not None
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    assert "주문 접수" in (await confirm(bot, ALICE, "/buy AAPL 5 180.00"))["text"]  # rests below the market
    async with runtime.db.session() as session:
        (row,) = (await session.exec(select(OrderJournalRow).where(OrderJournalRow.market == "US"))).all()
    assert row.kis_order_no and row.id is not None
    now = dt.datetime.now(KST)
    boundary = dt.datetime.combine(now.date(), dt.time(7), KST)
    boundary = boundary if boundary <= now else boundary - dt.timedelta(days=1)  # the last 07:00 KST
    sent = (boundary - dt.timedelta(minutes=5)).astimezone(dt.UTC)  # in the after-market before it
    async with runtime.db.write() as session:
        await session.exec(update(OrderJournalRow).where(OrderJournalRow.id == row.id)  # type: ignore[arg-type]
                           .values(created_at=sent, sent_at=sent))
    runtime.fills.clock = lambda: boundary + dt.timedelta(seconds=30)  # handled 32 s after the fill
    fill = Fill(row.kis_order_no, "", "AAPL", OrderSide.BUY, 5, Money.usd(Decimal("180.00")), 5, "065958")
    await runtime.fills._record(ALICE["id"], ALICE["id"], "ko", fill)
    async with runtime.db.session() as session:
        entry = await session.get(OrderJournalRow, row.id)
    assert entry is not None and entry.status == "filled", entry
