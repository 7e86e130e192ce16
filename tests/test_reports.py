"""/report and /history end to end (real PTB Application ↔ fake Bot API ↔ service ↔ simulator), the
daily report's schedule (an injected clock: no waiting for 15:40), and realised P/L as derived."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlmodel import select

from chatbot.alerts.daily_report import DailyReport, ReportFill
from chatbot.alerts.notices import decode
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis.protocol import KST
from chatbot.service.errors import UserError
from chatbot.service.reports import KRX_REPORT, US_REPORT, ReportService, parse_days, realised_lines
from chatbot.service.views import Mode
from chatbot.storage import Database
from chatbot.storage.tables import DailyReportRow, OutboxRow, ReportSettingRow
from tests.conftest import SQLITE_ONLY
from tests.harness import BotHarness

ALICE = BotApiEmulator.user(1001, "ko")
BOB = BotApiEmulator.user(1002, "en")
CODE = "005930"
TITLE_KO = "일일 보고서 20"  # the title, with its date (not the "turned on" reply)


@pytest.fixture
async def bot(db_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[BotHarness]:
    # The runtime's scheduler runs on the wall clock (at start-up too: a restart would race the test);
    # these tests drive the job with their own clock.
    monkeypatch.setattr(ReportService, "start", lambda self: None)
    harness = BotHarness(db_url)
    await harness.start()
    await _quiet_scheduler(harness)
    yield harness
    assert not harness.api.unanswered_callbacks(), "every callback query must be answered"
    await harness.stop()


async def _quiet_scheduler(bot: BotHarness) -> ReportService:
    """Today counts as a KRX trading day, whatever day the tests run on (the holiday test uses the real
    calendar); the US report has its own test."""
    reports = _reports(bot)
    assert reports._task is None  # the wall-clock scheduler is off (see the fixture)
    every_day = dataclasses.replace(KRX_REPORT, report_at=lambda day: dt.datetime.combine(day, dt.time(15, 40), KST))
    reports.markets = (every_day,)
    return reports


def _reports(bot: BotHarness) -> ReportService:
    assert bot.runtime is not None and bot.runtime.services.reports is not None
    return bot.runtime.services.reports


async def rows(bot: BotHarness, table: type) -> list:
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        return list((await session.exec(select(table))).all())


async def buy(bot: BotHarness, user: dict, text: str) -> None:
    (card,) = await bot.say(user, text)
    assert BotApiEmulator.buttons(card), card["text"]
    await bot.press_button(user, card, 0)
    assert "주문 접수" in bot.current(card)["text"] or "accepted" in bot.current(card)["text"].lower()


def close_of_today() -> dt.datetime:
    return dt.datetime.combine(dt.datetime.now(KST).date(), dt.time(15, 45), KST)


# -- /history -----------------------------------------------------------------------------------------------
async def test_history_shows_the_days_fills(bot: BotHarness) -> None:
    (empty,) = await bot.say(ALICE, "/history")
    assert "최근 7일" in empty["text"] and "체결된 주문이 없습니다" in empty["text"]
    await buy(bot, ALICE, f"/buy {CODE} 10")
    await buy(bot, ALICE, f"/sell {CODE} 4 시장가")
    (msg,) = await bot.say(ALICE, "/history 30")
    text = msg["text"]
    assert "최근 30일" in text and "2건" in text
    assert "매수 삼성전자 10주 @" in text and "매도 삼성전자 4주 @" in text
    assert text.index("매수 삼성전자") < text.index("매도 삼성전자")  # oldest first within the day
    (en,) = await bot.say(BOB, "/history 1")
    assert "last 1 days" in en["text"] and "No executions" in en["text"]  # Bob's account is his own


@SQLITE_ONLY
@pytest.mark.parametrize("text, needle", [
    ("/history 0", "1~90"), ("/history 91", "1~90"), ("/history abc", "1~90"), ("/history -3", "1~90"),
    ("/history 7 7", "사용법"), ("/history ٣", "1~90"), ("/history " + "9" * 40, "너무 깁니다"),
])
async def test_history_bad_input_changes_nothing(bot: BotHarness, text: str, needle: str) -> None:
    (msg,) = await bot.say(ALICE, text)
    assert needle in msg["text"]
    assert bot.sim.orders_accepted == 0 and not await rows(bot, ReportSettingRow)


def test_parse_days() -> None:
    assert parse_days(None) == 7 and parse_days("30") == 30 and parse_days("30일") == 30 and parse_days("90d") == 90
    for bad in ("0", "91", "x", "1.5", "-1", "１０"):
        with pytest.raises(UserError):
            parse_days(bad)


# -- /report ------------------------------------------------------------------------------------------------
async def test_report_on_off_and_now(bot: BotHarness) -> None:
    (msg,) = await bot.say(ALICE, "/report maybe")
    assert "사용법" in msg["text"] and not await rows(bot, ReportSettingRow)
    on, now = await bot.say(ALICE, "/report")
    assert "꺼짐" in on["text"] and TITLE_KO in now["text"] and "오늘 체결 없음" in now["text"]
    (msg,) = await bot.say(ALICE, "/report on")
    assert "켰습니다" in msg["text"] and "15:40" in msg["text"]
    (setting,) = await rows(bot, ReportSettingRow)
    assert setting.enabled and setting.chat_id == ALICE["id"]
    (msg,) = await bot.say(ALICE, "/report off")
    assert "껐습니다" in msg["text"]
    (setting,) = await rows(bot, ReportSettingRow)
    assert not setting.enabled
    assert await _reports(bot).run_due(close_of_today()) == 0  # off: nothing is sent
    assert not await rows(bot, DailyReportRow)


async def test_close_pushes_one_report_even_twice_and_after_a_restart(bot: BotHarness) -> None:
    await bot.say(ALICE, "/report on")
    await bot.say(BOB, "/history")  # Bob never turned it on
    await buy(bot, ALICE, f"/buy {CODE} 10")
    await buy(bot, ALICE, f"/sell {CODE} 4 시장가")
    before = close_of_today() - dt.timedelta(minutes=10)
    assert await _reports(bot).run_due(before) == 0  # 15:35: not yet

    assert await _reports(bot).run_due(close_of_today()) == 1
    push = await bot.wait_for_message(ALICE["id"], TITLE_KO)
    text = push["text"]
    assert "오늘 체결 2건" in text
    assert "매수 삼성전자 10주" in text and "매도 삼성전자 4주" in text
    assert "실현손익" in text and "추정" in text  # says what the figure is
    assert "삼성전자 6주" in text and "합계" in text  # the holding left, and the total

    assert await _reports(bot).run_due(close_of_today()) == 0  # the job again: nothing more
    assert await _reports(bot).run_due(close_of_today() + dt.timedelta(hours=3)) == 0
    await bot.restart()
    await _quiet_scheduler(bot)
    assert await _reports(bot).run_due(close_of_today() + dt.timedelta(minutes=5)) == 0
    assert bot.runtime is not None
    await bot.runtime.sender.drain()
    assert bot.count_messages(ALICE["id"], TITLE_KO) == 1
    assert bot.count_messages(BOB["id"], "Daily report") == 0
    (row,) = await rows(bot, DailyReportRow)
    assert (row.telegram_id, row.market, row.trading_day) == (ALICE["id"], "KRX", close_of_today().date().isoformat())
    assert row.costs is not None and row.costs[CODE][0] == 6
    (outbox,) = [r for r in await rows(bot, OutboxRow) if r.kind == "report"]
    notice = decode(outbox.kind, outbox.payload)
    assert isinstance(notice, DailyReport) and notice.realised and notice.realised[0].quantity == 4


async def test_two_replicas_send_one_report(bot: BotHarness) -> None:
    """A second service on the same database (another replica) finds the report sent."""
    await bot.say(ALICE, "/report on")
    first = _reports(bot)
    assert bot.runtime is not None
    second = ReportService(bot.runtime.db, bot.runtime.accounts, bot.runtime.mode, markets=first.markets)
    sent = await asyncio.gather(first.run_due(close_of_today()), second.run_due(close_of_today()))
    assert sorted(sent) == [0, 1]
    assert await second.run_due(close_of_today()) == 0
    assert len(await rows(bot, DailyReportRow)) == 1
    assert len([r for r in await rows(bot, OutboxRow) if r.kind == "report"]) == 1


async def test_holidays_and_weekends_have_no_report(bot: BotHarness) -> None:
    await bot.say(ALICE, "/report on")
    reports = _reports(bot)
    reports.markets = (KRX_REPORT, US_REPORT)  # the real calendar
    christmas = dt.datetime(2026, 12, 25, 16, 0, tzinfo=KST)  # a holiday in Seoul and New York (and the
    # NYSE's Christmas Eve half day is over: 13:20 ET + 12 h < 02:00 ET)
    saturday = dt.datetime(2026, 12, 5, 20, 0, tzinfo=KST)  # and 06:00 ET: Friday's US report is past its 12 h
    assert await reports.run_due(christmas) == 0 and await reports.run_due(saturday) == 0
    assert not await rows(bot, DailyReportRow)
    trading_day = dt.datetime(2026, 12, 4, 16, 0, tzinfo=KST)  # a Friday
    assert KRX_REPORT.due_days(trading_day) == [trading_day.date()]
    assert KRX_REPORT.due_days(trading_day.replace(hour=15, minute=39)) == []
    assert KRX_REPORT.due_days(dt.datetime(2026, 12, 5, 2, 0, tzinfo=KST)) == [trading_day.date()]  # caught up
    assert KRX_REPORT.due_days(dt.datetime(2026, 12, 5, 9, 0, tzinfo=KST)) == []  # too late: 17 h after
    # US: the NYSE's calendar (Thanksgiving closed, the day after closes early at 13:00 ET)
    assert US_REPORT.due_days(dt.datetime(2026, 11, 26, 17, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))) == []
    early = dt.datetime(2026, 11, 27, 13, 25, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert US_REPORT.due_days(early) == [dt.date(2026, 11, 27)]


# -- realised P/L ----------------------------------------------------------------------------------------------
def _f(side: str, qty: int, price: int, code: str = CODE) -> ReportFill:
    return ReportFill("100000", side, code, "삼성전자", qty, Decimal(price), Decimal(qty * price))


def test_realised_against_kis_average_cost() -> None:
    (line,) = realised_lines([_f("sell", 4, 72_000)], {CODE: (6, Decimal(70000))}, {}, "KRW")
    assert line.cost_price == Decimal(70_000) and line.profit_loss == Decimal(8_000)


def test_realised_of_a_position_opened_and_closed_today() -> None:
    fills = [_f("buy", 10, 70_000), _f("buy", 10, 71_000), _f("sell", 20, 70_000)]
    (line,) = realised_lines(fills, {}, {}, "KRW")
    assert line.cost_price == Decimal(70_500) and line.profit_loss == Decimal(-10_000)


def test_realised_of_a_position_sold_out_uses_the_previous_report() -> None:
    (line,) = realised_lines([_f("sell", 5, 66_000)], {}, {CODE: (5, Decimal(60000))}, "KRW")
    assert line.profit_loss == Decimal(30_000)
    (unknown,) = realised_lines([_f("sell", 5, 66_000)], {}, {CODE: (7, Decimal(60000))}, "KRW")
    assert unknown.profit_loss is None and unknown.cost_price is None  # said, not guessed


def test_realised_of_a_sale_before_a_buy_walks_back_from_the_close() -> None:
    """Held 10 at 60,000; sold 5 at 66,000, then bought 5 at 70,000: KIS's average at the close is
    65,000, but the sale was against 60,000 (a moving average: the later buy moved it, the sale did not)."""
    fills = [_f("sell", 5, 66_000), _f("buy", 5, 70_000)]
    (line,) = realised_lines(fills, {CODE: (10, Decimal(65_000))}, {}, "KRW")
    assert line.cost_price == Decimal(60_000) and line.profit_loss == Decimal(30_000)


def test_realised_of_a_position_sold_out_and_bought_again() -> None:
    """Sold out (cost from the previous report), then bought again: the close's average says nothing
    about the sale; the previous report does."""
    fills = [_f("sell", 5, 66_000), _f("buy", 3, 70_000)]
    (line,) = realised_lines(fills, {CODE: (3, Decimal(70_000))}, {CODE: (5, Decimal(60_000))}, "KRW")
    assert line.profit_loss == Decimal(30_000)
    (unknown,) = realised_lines(fills, {CODE: (3, Decimal(70_000))}, {}, "KRW")
    assert unknown.profit_loss is None


# -- the seams and the faults ---------------------------------------------------------------------------------
class FailingSource:
    def __init__(self) -> None:
        self.calls = 0

    async def build(self, user_id: int, day: dt.date, language: str, previous_costs: object) -> DailyReport | None:
        self.calls += 1
        raise ConnectionError("KIS unreachable")


async def test_a_report_that_cannot_be_built_is_tried_again_later_not_every_pass(bot: BotHarness) -> None:
    await bot.say(ALICE, "/report on")
    reports = _reports(bot)
    krx, failing = reports.sources["KRX"], FailingSource()
    reports.sources["KRX"] = failing
    close = close_of_today()
    assert await reports.run_due(close) == 0 and failing.calls == 1
    assert await reports.run_due(close + dt.timedelta(seconds=5)) == 0 and failing.calls == 1  # waits
    assert await reports.run_due(close + dt.timedelta(minutes=2)) == 0 and failing.calls == 2
    assert not await rows(bot, DailyReportRow)
    reports.sources["KRX"] = krx  # KIS is back
    assert await reports.run_due(close + dt.timedelta(minutes=30)) == 1
    assert len(await rows(bot, DailyReportRow)) == 1


async def test_armed_conditional_orders_seam(bot: BotHarness) -> None:
    await bot.say(BOB, "/report on")
    reports = _reports(bot)
    asked: list[tuple[int, str]] = []

    async def armed(user_id: int, market: str) -> list[str]:
        asked.append((user_id, market))
        return ["STOP 005930 10 @ 65,000 (−3.1%)"]

    reports.armed_orders = armed
    assert await reports.run_due(close_of_today()) == 1
    push = await bot.wait_for_message(BOB["id"], "Daily report 20")
    assert "Conditional orders armed" in push["text"] and "STOP 005930 10 @ 65,000" in push["text"]
    assert "No fills today" in push["text"] and "No holdings" in push["text"]
    assert asked == [(BOB["id"], "KRX")]


# -- the migration ---------------------------------------------------------------------------------------------
async def test_migration_0013_keeps_rows_and_goes_down_and_up(db_url: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import Connection, inspect, text

    from chatbot.storage import Database
    from chatbot.storage.db import MIGRATIONS

    def alembic(connection: Connection, target: str, down: bool = False) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(cfg, target)

    def tables(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    db = Database(db_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(alembic, "0010")
            await conn.execute(text("INSERT INTO users (telegram_id, language, blocked, first_seen, last_seen) "
                                    "VALUES (7, 'ko', false, '2026-11-30 00:00:00', '2026-11-30 00:00:00')"))
            assert not {"report_settings", "daily_reports"} & await conn.run_sync(tables)
        await db.migrate()
        reports = ReportService(db, None, Mode.PAPER)  # type: ignore[arg-type]  # no KIS needed here
        await reports.set_enabled(7, 7, "ko", True)
        assert (await reports.setting(7)).enabled
        async with db.engine.begin() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar() == 1
            await conn.run_sync(alembic, "0010", True)
            assert not {"report_settings", "daily_reports"} & await conn.run_sync(tables)
            assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar() == 1
        await db.migrate()
        assert not (await reports.setting(7)).enabled  # the table came back empty
    finally:
        await db.dispose()


# -- US ----------------------------------------------------------------------------------------------------------
async def test_us_report_for_a_user_holding_us_stocks_only(bot: BotHarness) -> None:
    """After the NYSE close: Alice, who traded AAPL, gets a US report in dollars; Bob, who holds no US
    stock, gets none, and his day is not asked about again."""
    from chatbot.kis.models import OrderSide
    from chatbot.kis.overseas import KisOverseasClient
    from chatbot.kis.overseas_protocol import UsExchange
    from chatbot.markets.us_hours import NEW_YORK

    assert bot.runtime is not None
    await bot.say(ALICE, "/report on")
    await bot.say(BOB, "/report on")
    await bot.sim.control("us-hours", {"always_open": True})
    client = KisOverseasClient((await bot.runtime.accounts.for_user(ALICE["id"])).client)
    price = (await client.quote("AAPL", UsExchange.NASDAQ)).price.amount
    await client.place(UsExchange.NASDAQ, OrderSide.BUY, "AAPL", 3, price + Decimal("0.50"))
    await client.place(UsExchange.NASDAQ, OrderSide.SELL, "AAPL", 1, price - Decimal("0.50"))

    reports = _reports(bot)
    every_day = dataclasses.replace(US_REPORT, report_at=lambda day: dt.datetime.combine(day, dt.time(16, 20), NEW_YORK))
    reports.markets = (every_day,)
    close = dt.datetime.combine(dt.datetime.now(NEW_YORK).date(), dt.time(16, 30), NEW_YORK)
    assert await reports.run_due(close) == 1
    push = await bot.wait_for_message(ALICE["id"], "일일 보고서 20")
    text = push["text"]
    assert "US" in text and "매수 AAPL 3주" not in text  # the name, not the symbol, is shown
    assert "3주 @ " in text and "1주 @ " in text and "$" in text and "원" not in text.split("합계")[1]
    assert "실현손익" in text and "추정" in text
    done = {(r.telegram_id, r.pushed) for r in await rows(bot, DailyReportRow)}
    assert done == {(ALICE["id"], True), (BOB["id"], False)}
    assert await reports.run_due(close + dt.timedelta(minutes=1)) == 0
    assert len(await rows(bot, DailyReportRow)) == 2
    assert bot.count_messages(BOB["id"], "Daily report 20") == 0
    setting, krx, us = await bot.say(ALICE, "/report")  # now: both markets for Alice, the domestic one for Bob
    assert "켜짐" in setting["text"] and "· KRX" in krx["text"] and "· US" in us["text"] and "$" in us["text"]
    assert len(await bot.say(BOB, "/report")) == 2


# -- on a phone ------------------------------------------------------------------------------------------------
def test_long_history_is_split_into_messages_within_telegrams_limit() -> None:
    from chatbot.service.reports import HistoryDay, HistoryView
    from chatbot.telegram.report import history_messages

    days = tuple(HistoryDay(dt.date(2026, 11, 30) - dt.timedelta(days=d),
                            tuple(_f("buy" if i % 2 else "sell", i + 1, 70_000 + i) for i in range(60)),
                            Decimal(1), Decimal(2)) for d in range(20))
    messages = history_messages(HistoryView(Mode.PAPER, 30, dt.date(2026, 11, 1), dt.date(2026, 11, 30), "KRW", days),
                                "ko")
    assert len(messages) > 1 and all(0 < len(m) <= 4096 for m in messages)
    assert sum(m.count("삼성전자") for m in messages) == 20 * 60  # every fill, once
    assert messages[0].startswith("📜")


def test_a_report_with_many_fills_fits_one_message() -> None:
    from chatbot.telegram.report import report_text

    fills = tuple(_f("buy", 1, 70_000 + i) for i in range(200))
    report = DailyReport(language="en", market="KRX", day="2026-11-30", currency="KRW", fills=fills, realised=(),
                         realised_total=Decimal(0), realised_source="derived", holdings=(),
                         purchase_total=Decimal(0), evaluation_total=Decimal(0), profit_loss_total=Decimal(0),
                         mode="PAPER")
    text = report_text(report)
    assert len(text) <= 4096 and "and 170 more" in text and "none (no sales today)" in text
    assert DailyReport.from_payload(report.payload()) == report  # the outbox row reads back the same


async def test_the_runtime_runs_the_scheduler(db_url: str) -> None:
    """Without the tests' hand on it, the runtime starts the scheduler and stops it with itself."""
    harness = BotHarness(db_url)
    await harness.start()
    try:
        reports = _reports(harness)
        assert reports._task is not None and not reports._task.done()
        task = reports._task
    finally:
        await harness.stop()
    assert task.done() and reports._task is None


async def test_the_next_days_report_is_given_the_costs_recorded_at_this_close(bot: BotHarness) -> None:
    """What a sell-out tomorrow is measured against: today's holdings, recorded with today's report."""
    await bot.say(ALICE, "/report on")
    await buy(bot, ALICE, f"/buy {CODE} 10")
    reports = _reports(bot)
    assert await reports.run_due(close_of_today()) == 1
    (row,) = await rows(bot, DailyReportRow)
    average = Decimal(row.costs[CODE][1])  # type: ignore[index]
    given: list[object] = []

    class Recording:
        async def build(self, user_id: int, day: dt.date, language: str, previous_costs: object) -> None:
            given.append(previous_costs)

    reports.sources["KRX"] = Recording()
    assert await reports.run_due(close_of_today() + dt.timedelta(days=1)) == 0  # nothing to push: recorded as done
    assert given == [{CODE: (10, average)}]
    assert await reports.run_due(close_of_today() + dt.timedelta(days=1, minutes=1)) == 0 and len(given) == 1


async def test_a_user_without_an_account_any_more_is_not_asked_about_all_day(bot: BotHarness) -> None:
    await bot.say(ALICE, "/report on")
    reports = _reports(bot)
    calls: list[int] = []

    class LoggedOut:
        async def build(self, user_id: int, day: dt.date, language: str, previous_costs: object) -> None:
            calls.append(user_id)
            raise UserError("not_registered")

    reports.sources["KRX"] = LoggedOut()
    assert await reports.run_due(close_of_today()) == 0
    assert await reports.run_due(close_of_today() + dt.timedelta(hours=1)) == 0
    assert calls == [ALICE["id"]]
    assert [(r.telegram_id, r.pushed) for r in await rows(bot, DailyReportRow)] == [(ALICE["id"], False)]


async def test_the_calendars_loaded_ahead_are_handed_on_once_loaded(db_url: str) -> None:
    """The scheduler loads the holiday calendars ahead of its first pass and then calls ``warmed`` (the
    process moves them out of the cyclic collector's way: ``chatbot.__main__.settle_later``), once."""
    db = Database(db_url)
    try:
        await db.migrate()
        loaded: list[int] = []
        reports = ReportService(db, None, Mode.PAPER, first_pass_delay=0.01,  # type: ignore[arg-type]
                                poll_seconds=3600, warmed=lambda: loaded.append(1))
        reports.start()
        try:
            for _ in range(400):
                if loaded:
                    break
                await asyncio.sleep(0.05)
        finally:
            await reports.stop()
        assert loaded == [1]
    finally:
        await db.dispose()
