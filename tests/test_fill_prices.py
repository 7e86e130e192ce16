"""Fills told from KIS's list of the day's orders (the catch-up, a notice resolved from the list, reconciliation):
KIS lists an order's cumulative quantity and average price, and the order's time (ORD_TMD). The push of the
shares a reading adds says their own price, derived from the average and what the journal counted before (or
says "average" when it cannot be derived), and claims no time; the fill events record prices in one unit (the
currency's own), and events written before in other units still read right."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import col, select

from chatbot.alerts.notices import OrderFilled, decode
from chatbot.broker import OrderSide
from chatbot.config import KisSettings
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import protocol as p
from chatbot.markets.money import Money
from chatbot.service.cards import CardStatus
from chatbot.service.fill_prices import (
    FILLS_AVERAGE,
    ORDER_AVERAGE,
    OWN_PRICE,
    fill_detail,
    listed_fill_price,
    read_fill_detail,
)
from chatbot.sim import payloads as sim_payloads
from chatbot.storage.tables import OrderEventRow, OrderJournalRow
from chatbot.telegram.notifier import text
from tests.harness import BotHarness, confirm
from tests.test_fill_dedupe import (
    USER,
    Notices,
    catch_up,
    fill_pushes,
    handled,
    journal_rows,
    notices_handled,
)
from tests.test_order_review import resting_price
from tests.test_us_bot import _open_journal, us_card

CODE = "005930"


@pytest.fixture
async def bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url, kis=KisSettings(order_settle_seconds=0.5, order_reconcile_interval_seconds=0.2),
                         us_always_open=True)
    await harness.start()
    assert harness.runtime is not None
    harness.runtime.fills.list_lag = dt.timedelta(0)  # the simulator's list never lags
    yield harness
    assert not harness.api.unanswered_callbacks(), "every callback query must be answered"
    await harness.stop()


async def details(bot: BotHarness, order_no: str) -> list[str]:
    """The order's fill events' details, oldest first."""
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        row = (await session.exec(select(OrderJournalRow).where(OrderJournalRow.kis_order_no == order_no))).one()
        events = (await session.exec(select(OrderEventRow).where(
            OrderEventRow.journal_id == row.id, col(OrderEventRow.status).in_(("filled", "partially_filled")))
            .order_by(col(OrderEventRow.id)))).all()
    return [e.detail or "" for e in events]


def domestic_fill(bot: BotHarness, order_no: str, quantity: int, price: int) -> None:
    exchange = bot.sim.exchange
    account = next(a for a in exchange.accounts.values() if a.find(order_no) is not None)
    order = account.find(order_no)
    assert order is not None and order.remaining >= quantity
    exchange._fill(account, order, quantity, price, exchange._stamp()[1])


def us_fill(bot: BotHarness, order_no: str, quantity: int, dollars: str) -> None:
    trading = bot.sim.us_trading
    account = next(a for a in trading.accounts.values() if a.find(order_no) is not None)
    order = account.find(order_no)
    assert order is not None and order.remaining >= quantity
    trading._fill(account, order, quantity, int(Decimal(dollars) * 10_000), trading.clock())


async def _resting_buy(bot: BotHarness, quantity: int, ticks_down: int) -> tuple[int, int, str, Notices]:
    """A buy of ``quantity`` resting at a limit L ten ticks under the market: L, L − ``ticks_down`` ticks, the
    order's number and the notices to hold back."""
    limit = resting_price(bot, ticks=10)
    assert "Order accepted" in (await confirm(bot, USER, f"/buy {CODE} {quantity} {limit}"))["text"]
    order_no = (await journal_rows(bot))[-1].kis_order_no
    assert order_no
    return limit, limit - ticks_down * p.tick_size(limit), order_no, Notices(bot)


async def _caught_up(bot: BotHarness, notices: Notices, order_no: str, quantity: int, price: int) -> None:
    """``quantity`` of the order fill at ``price`` while its notice is held back; one catch-up counts them."""
    with notices.holding():
        domestic_fill(bot, order_no, quantity, price)
    assert await catch_up(bot) == 1


async def test_a_caught_up_fill_is_told_at_its_own_price_and_no_order_time(bot: BotHarness) -> None:
    """5 at L: 3 fill at L, then 2 at L − 5 ticks, both while no notice came; a catch-up after each. KIS lists
    5 at an average of L − 2 ticks (and the order's time): the second push said 2 at that average, at the order's
    time. It says 2 at L − 5 ticks, with no time (said to be their average: from KIS's list, 2 shares at L − 5
    ticks may be two executions either side of it); the journal records each fill's own price."""
    limit, lower, order_no, notices = await _resting_buy(bot, 5, ticks_down=5)
    await _caught_up(bot, notices, order_no, 3, limit)
    await _caught_up(bot, notices, order_no, 2, lower)
    first, second = await fill_pushes(bot)
    assert (first["quantity"], first["price"], second["quantity"], second["price"]) == (3, limit, 2, lower), second
    assert first["time"] == second["time"] == "" and "price_basis" not in first, first
    assert second["price_basis"] == FILLS_AVERAGE, second
    assert await details(bot, order_no) == [f"3@{limit}", f"2@{lower}"]


async def test_a_us_fill_caught_up_is_told_at_its_own_price_in_dollars(bot: BotHarness) -> None:
    """The same for a US order: 3 at $180.00, then 2 at $179.00 (KIS lists 5 at $179.60); the fill events record
    dollars, as every other path does (the catch-up wrote 1/10,000 dollar, reconciliation dollars)."""
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    assert "accepted" in (await confirm(bot, USER, "/buy AAPL 5 180.00"))["text"]
    order_no = (await journal_rows(bot))[-1].kis_order_no
    assert order_no
    notices = Notices(bot)
    with notices.holding():
        us_fill(bot, order_no, 3, "180.00")
    assert await catch_up(bot) == 1
    assert await details(bot, order_no) == ["3@180 USD"]
    with notices.holding():
        us_fill(bot, order_no, 2, "179.00")
    assert await catch_up(bot) == 1
    pushes = await fill_pushes(bot)
    assert [(x["quantity"], x["price"], x["time"]) for x in pushes] == [(3, 1_800_000, ""), (2, 1_790_000, "")]
    assert await details(bot, order_no) == ["3@180 USD", "2@179 USD"]


async def test_a_us_fill_event_written_in_ten_thousandths_before_still_prices_the_next(bot: BotHarness) -> None:
    """A fill event the catch-up wrote before in 1/10,000 dollar (3@1800000) is read as $180.00: the next
    catch-up's 2 shares are priced from it right."""
    assert bot.runtime is not None
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    assert "accepted" in (await confirm(bot, USER, "/buy AAPL 5 180.00"))["text"]
    order_no = (await journal_rows(bot))[-1].kis_order_no
    assert order_no
    notices = Notices(bot)
    with notices.holding():
        us_fill(bot, order_no, 3, "180.00")
    assert await catch_up(bot) == 1
    async with bot.runtime.db.write() as session:
        event = (await session.exec(select(OrderEventRow).where(OrderEventRow.detail == "3@180 USD"))).one()
        event.detail = "3@1800000"  # as written before
        session.add(event)
    with notices.holding():
        us_fill(bot, order_no, 2, "179.00")
    assert await catch_up(bot) == 1
    assert [x["price"] for x in await fill_pushes(bot)] == [1_800_000, 1_790_000]


async def test_a_us_fill_event_in_dollars_without_a_point_does_not_corrupt_the_next_price(bot: BotHarness) -> None:
    """Reconciliation wrote US details in dollars before, without a point for a whole dollar (3@180), which reads
    as 1/10,000 dollar ($0.018): the next catch-up's 2 shares were derived from a cost of $0.054 for the 3 and
    told at $448.97 a share. A counted cost that far from KIS's average is not used: they are told at the
    order's average."""
    assert bot.runtime is not None
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    assert "accepted" in (await confirm(bot, USER, "/buy AAPL 5 180.00"))["text"]
    order_no = (await journal_rows(bot))[-1].kis_order_no
    assert order_no
    notices = Notices(bot)
    with notices.holding():
        us_fill(bot, order_no, 3, "180.00")
    assert await catch_up(bot) == 1
    async with bot.runtime.db.write() as session:
        event = (await session.exec(select(OrderEventRow).where(OrderEventRow.detail == "3@180 USD"))).one()
        event.detail = "3@180"  # as reconciliation wrote it before
        session.add(event)
    with notices.holding():
        us_fill(bot, order_no, 2, "179.00")
    assert await catch_up(bot) == 1
    _first, second = await fill_pushes(bot)
    assert (second["quantity"], second["price"], second["price_basis"]) == (2, 1_796_000, ORDER_AVERAGE), second
    assert await details(bot, order_no) == ["3@180", "2@179.6 USD"]


async def test_fills_a_late_notice_finds_in_kis_list_are_told_at_their_own_price(bot: BotHarness) -> None:
    """3 at L: the catch-up counts the first (1 at L); 2 more fill at L − 3 ticks; the first fill's notice, late,
    finds KIS's figure 3 (average L − 2 ticks) and counts the 2 it lacks: told at L − 3 ticks, not at the
    average; the second fill's notice is then counted already."""
    limit, lower, order_no, notices = await _resting_buy(bot, 3, ticks_down=3)
    await _caught_up(bot, notices, order_no, 1, limit)
    with notices.holding():
        domestic_fill(bot, order_no, 2, lower)
    before = handled(bot)
    notices.release(1)
    await notices_handled(bot, before, 1)
    pushes = await fill_pushes(bot)
    assert [(x["quantity"], x["price"]) for x in pushes] == [(1, limit), (2, lower)], pushes
    notices.release()
    await notices_handled(bot, before, 2)
    assert len(await fill_pushes(bot)) == 2
    assert pushes[1]["time"] == "" and await details(bot, order_no) == [f"1@{limit}", f"2@{lower}"]


async def test_a_filled_us_order_found_by_reconciliation_records_dollars(bot: BotHarness) -> None:
    """Reconciliation finds a US order that filled (2 at the market, $190.25): its fill event records dollars
    as the catch-up's and the notices' do, and its push claims no time (KIS's list gives the order's)."""
    assert bot.runtime is not None
    runtime = bot.runtime
    user = BotApiEmulator.user(9811, "ko")
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    card = await us_card(bot, user, "/buy AAPL 2 191.00")
    row = await runtime.orders.cards.get(BotApiEmulator.buttons(card)[0][1].split(":", 1)[1])
    assert row is not None
    claimed, refused = await runtime.orders.cards.claim(row.id, user["id"], card["message_id"], CardStatus.SUBMITTING,
                                                        _open_journal(runtime))
    assert refused is None and claimed is not None
    journal = (await journal_rows(bot))[-1]
    account = await runtime.accounts.for_user(user["id"])
    await runtime.orders.journal.mark_sending(journal.id, str(account.account), set())  # type: ignore[arg-type]
    broker = runtime.services.us.market.broker(account.client)  # type: ignore[union-attr]
    placed = await broker.place(OrderSide.BUY, "AAPL", 2, Money.usd(191))  # marketable: fills at once
    assert await runtime.reconciler.run_once() == 0
    assert await details(bot, placed.ack.order_no) == ["2@190.25 USD"]
    (push,) = await fill_pushes(bot)
    assert (push["quantity"], push["price"], push["time"]) == (2, 1_902_500, ""), push


def test_fill_details_of_every_unit_read_as_money() -> None:
    """One unit is written (the currency's own); what was written before reads too: the catch-up's 1/10,000
    dollar, reconciliation's dollars, a notice's ``str(Money)``."""
    assert fill_detail(3, Money.krw(70_000)) == "3@70000"
    assert fill_detail(2, Money.usd("179.5000")) == "2@179.5 USD"
    assert fill_detail(1, Money.usd("0.5123")) == "1@0.5123 USD"
    usd = Money.usd("179.5")
    for written in ("2@179.5 USD", "2@1795000", "2@179.5000", "2@$179.50"):
        assert read_fill_detail(written, "USD") == (2, usd), written
    assert read_fill_detail("1@$1,234.50", "USD") == (1, Money.usd("1234.50"))
    assert read_fill_detail("3@70000", "KRW") == (3, Money.krw(70_000))
    assert read_fill_detail("3@", "KRW") == (3, None)
    assert read_fill_detail(fill_detail(4, Money.usd("0.0123")), "USD") == (4, Money.usd("0.0123"))


def test_the_price_of_listed_fills_is_derived_or_said_to_be_an_average() -> None:
    # 3 counted at ₩70,000; KIS: 5 at ₩69,960 -> the 2 new at ₩69,900, their own price (on the tick grid)
    own = listed_fill_price(Money.krw(69_960), 5, 3, Money.krw(210_000))
    assert (own.price, own.basis) == (Money.krw(69_900), OWN_PRICE)
    # 3 new at ₩69,905: KIS's average ₩69,952.5 listed truncated (₩69,952), derived ₩69,904: the grid's ₩69,905
    truncated = listed_fill_price(Money.krw(69_952), 6, 3, Money.krw(210_000))
    assert (truncated.price, truncated.basis) == (Money.krw(69_905), OWN_PRICE)
    # 1 counted at $180; 2 new at $179.50 and $179.55 (KIS: 3 at $179.6833): off the cent, said to be an average
    mixed = listed_fill_price(Money.usd("179.6833"), 3, 1, Money.usd(180))
    assert (mixed.price, mixed.basis, mixed.units) == (Money.usd("179.525"), FILLS_AVERAGE, 1_795_250)
    # what the counted shares cost is not known: the order's average, said to be one
    unknown = listed_fill_price(Money.usd("179.6"), 5, 3, None)
    assert (unknown.price, unknown.basis, unknown.units) == (Money.usd("179.6"), ORDER_AVERAGE, 1_796_000)
    # US: KIS's average to 4 places, the new shares' price on the cent
    us = listed_fill_price(Money.usd("179.6667"), 3, 1, Money.usd("180"))
    assert (us.price, us.basis) == (Money.usd("179.50"), OWN_PRICE)
    # whether the shares may have filled at a notice's price: within what KIS's rounding allows
    assert us.may_be(Money.usd("179.50")) and not us.may_be(Money.usd("179.51")) and not us.may_be(Money.usd(180))
    assert truncated.may_be(Money.krw(69_905)) and not truncated.may_be(Money.krw(69_910))
    assert unknown.may_be(Money.usd(1))  # not derived: anything may be


def test_an_averaged_fill_push_says_average() -> None:
    base: dict[str, Any] = {"lang": "en", "order_no": "1", "code": CODE, "name": "Samsung", "side": "buy",
                            "quantity": 2, "price": 69_925, "time": ""}
    plain = decode("fill", base)
    averaged = decode("fill", {**base, "price_basis": FILLS_AVERAGE})
    assert isinstance(plain, OrderFilled) and isinstance(averaged, OrderFilled)
    assert "avg" not in text(plain) and "@ avg ₩69,925" in text(averaged), text(averaged)
    assert decode("fill", {**base, "price_basis": "anything else"}).price_basis == ORDER_AVERAGE  # type: ignore[union-attr]
    assert averaged.payload()["price_basis"] == FILLS_AVERAGE and "price_basis" not in plain.payload()


async def test_a_caught_up_fills_late_notice_does_not_lend_its_price_to_the_next_fill_of_the_same_quantity(
        bot: BotHarness) -> None:
    """3 at L: the catch-up counts A (1 at L, its notice late); B fills (1 at L − 1 tick). A's notice, handled
    next, finds KIS's figure 2 and the journal 1: the 1 missing is B's, not A's (told already), though of A's
    quantity. It was pushed with A's price (and time) and B's were never told; it is pushed at B's price, derived
    from KIS's figure (B's own notice then finds it counted)."""
    limit, lower, order_no, notices = await _resting_buy(bot, 3, ticks_down=1)
    await _caught_up(bot, notices, order_no, 1, limit)
    with notices.holding():
        domestic_fill(bot, order_no, 1, lower)
    before = handled(bot)
    notices.release(1)  # A's
    await notices_handled(bot, before, 1)
    notices.release()  # B's
    await notices_handled(bot, before, 2)
    pushes = await fill_pushes(bot)
    assert [(x["quantity"], x["price"]) for x in pushes] == [(1, limit), (1, lower)], pushes
    assert await details(bot, order_no) == [f"1@{limit}", f"1@{lower}"]


def test_kis_filled_amount_gives_the_new_shares_exact_price() -> None:
    """KIS's filled amount (tot_ccld_amt, ft_ccld_amt3) makes the price of the shares a reading adds exact, where
    the rounded average only bounds it: told as their own price when they provably are one (one share, or an
    average at the order's limit), else as their exact average."""
    # a sell at ₩1,500: 3 counted at ₩1,503, 7 more at ₩1,500; KIS: 10 at ₩1,500 (₩1,500.9 truncated), ₩15,009.
    # From the average: ₩1,498.71 ± ₩1.86, coarser than the ₩1 grid, said to be an average of ₩1,499
    listed = Money.krw(15_009), Money.krw(1_500)
    sold = listed_fill_price(Money.krw(1_500), 10, 3, Money.krw(4_509), amount=listed[0], limit=listed[1])
    assert (sold.price, sold.basis) == (Money.krw(1_500), OWN_PRICE)
    assert sold.may_be(Money.krw(1_500)) and not sold.may_be(Money.krw(1_501))
    # one more share at ₩1,501 (KIS: 4 at ₩1,502, ₩6,010): from the average ₩1,499 ± ₩7
    one = listed_fill_price(Money.krw(1_502), 4, 3, Money.krw(4_509), amount=Money.krw(6_010), limit=listed[1])
    assert (one.price, one.basis) == (Money.krw(1_501), OWN_PRICE)
    # US: 150 counted at $10.00, 1 more at $10.07 (KIS: 151 at $10.0005, $1,510.07): from the average $10.0755
    cents = listed_fill_price(Money.usd("10.0005"), 151, 150, Money.usd(1_500), amount=Money.usd("1510.07"),
                              limit=Money.usd("10.10"))
    assert (cents.price, cents.basis, cents.units) == (Money.usd("10.07"), OWN_PRICE, 100_700)
    # a sub-dollar share's price to the 1/10,000 dollar (KIS's amount is not rounded to the cent)
    penny = listed_fill_price(Money.usd("0.1235"), 3, 2, Money.usd("0.2470"), amount=Money.usd("0.3702"))
    assert (penny.price, penny.basis) == (Money.usd("0.1232"), OWN_PRICE)


def test_shares_not_provably_one_price_are_told_at_their_exact_average() -> None:
    # 1 counted at $180; 2 new at $179.50 and $179.55 (KIS: 3 at $179.6833, $539.05): off the cent, their average
    mixed = listed_fill_price(Money.usd("179.6833"), 3, 1, Money.usd(180), amount=Money.usd("539.05"),
                              limit=Money.usd(180))
    assert (mixed.price, mixed.basis, mixed.units) == (Money.usd("179.525"), FILLS_AVERAGE, 1_795_250)
    # 2 new at $179.50 on a limit of $180: on the cent, yet $179.49 and $179.51 would list alike
    below = listed_fill_price(Money.usd("179.6667"), 3, 1, Money.usd(180), amount=Money.usd("539.00"),
                              limit=Money.usd(180))
    assert (below.price, below.basis) == (Money.usd("179.50"), FILLS_AVERAGE)
    assert below.may_be(Money.usd("179.5")) and not below.may_be(Money.usd("179.51"))
    # ... at the limit of $179.50 (a buy fills at or below it, a sell at or above): every share at the limit
    at_limit = listed_fill_price(Money.usd("179.6667"), 3, 1, Money.usd(180), amount=Money.usd("539.00"),
                                 limit=Money.usd("179.50"))
    assert (at_limit.price, at_limit.basis) == (Money.usd("179.50"), OWN_PRICE)
    # a market order's: no limit to go by
    market = listed_fill_price(Money.krw(70_000), 5, 0, Money.krw(0), amount=Money.krw(350_000))
    assert (market.price, market.basis) == (Money.krw(70_000), FILLS_AVERAGE)


def test_without_kis_filled_amount_the_price_is_derived_from_the_average() -> None:
    """A blank or "0" amount, or one that disagrees with KIS's average beyond its rounding (another unit), is
    not used: the price is derived from the average, as before."""
    by_average = listed_fill_price(Money.krw(69_960), 5, 3, Money.krw(210_000))
    assert (by_average.price, by_average.basis) == (Money.krw(69_900), OWN_PRICE)
    for amount in (None, Money.krw(0), Money.krw(349_800 * 10), Money.usd("349800")):
        assert listed_fill_price(Money.krw(69_960), 5, 3, Money.krw(210_000), amount=amount) == by_average, amount
    assert listed_fill_price(Money.krw(69_960), 5, 3, None, amount=Money.krw(349_800)).basis == ORDER_AVERAGE


async def _ten_below_then_one_at_the_limit(bot: BotHarness) -> tuple[int, int, str, list[dict[str, Any]]]:
    """A buy of 11 at L: 10 fill at L − 1 tick, caught up; then 1 at L, caught up (notices lost both times). The
    limit, the price a tick below, the order's number and the two fill pushes."""
    limit, lower, order_no, notices = await _resting_buy(bot, 11, ticks_down=1)
    await _caught_up(bot, notices, order_no, 10, lower)
    await _caught_up(bot, notices, order_no, 1, limit)
    return limit, lower, order_no, await fill_pushes(bot)


async def test_a_fill_after_many_counted_is_told_at_its_exact_price_from_kis_amount(bot: BotHarness) -> None:
    """11 at L: 10 fill at L − 1 tick, caught up; then 1 at L. KIS lists 11 at the average truncated to the
    won: from it the last share was within 21 won of L, pushed as an average (a tick below L). From KIS's filled
    amount it is L exactly: one share, at its own price. (The 10, one execution below the limit, are said to be
    an average: KIS's list cannot tell them from several.)"""
    limit, lower, order_no, (first, second) = await _ten_below_then_one_at_the_limit(bot)
    assert (second["quantity"], second["price"]) == (1, limit) and "price_basis" not in second, second
    assert (first["quantity"], first["price"], first["price_basis"]) == (10, lower, FILLS_AVERAGE), first
    assert await details(bot, order_no) == [f"10@{lower}", f"1@{limit}"]


async def test_a_blank_filled_amount_falls_back_to_kis_average(bot: BotHarness,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that leaves tot_ccld_amt blank: the client carries None, and the last share of 11 is priced from
    KIS's average as before (within 21 won of L: said to be an average)."""
    row = sim_payloads.execution_row
    monkeypatch.setattr(sim_payloads, "execution_row", lambda market, order: {**row(market, order), "tot_ccld_amt": ""})
    limit, lower, _order_no, (first, second) = await _ten_below_then_one_at_the_limit(bot)
    assert "price_basis" not in first and first["price"] == lower, first  # snapped to the grid from the average
    assert (second["quantity"], second["price_basis"]) == (1, FILLS_AVERAGE) and second["price"] != limit, second


async def test_a_us_fill_after_many_counted_is_told_at_its_exact_cents(bot: BotHarness) -> None:
    """150 of 151 at $10.00 fill at $9.99, caught up; the last at $10.00. KIS lists 151 at $9.9900 ($9.990066
    to the 1/10,000): from that average the last was $9.99 ± $0.03, pushed as an average. From KIS's filled
    amount ($1,508.5000) it is $10.00, at the order's limit."""
    bot.sim.set_us_price("AAPL", Decimal("12.25"))
    assert "accepted" in (await confirm(bot, USER, "/buy AAPL 151 10.00"))["text"]
    order_no = (await journal_rows(bot))[-1].kis_order_no
    assert order_no
    notices = Notices(bot)
    with notices.holding():
        us_fill(bot, order_no, 150, "9.99")
    assert await catch_up(bot) == 1
    with notices.holding():
        us_fill(bot, order_no, 1, "10.00")
    assert await catch_up(bot) == 1
    first, second = await fill_pushes(bot)
    assert (second["quantity"], second["price"]) == (1, 100_000) and "price_basis" not in second, second
    assert (first["quantity"], first["price"], first["price_basis"]) == (150, 99_900, FILLS_AVERAGE), first
    assert await details(bot, order_no) == ["150@9.99 USD", "1@10 USD"]


def test_a_derived_price_kis_figures_rule_out_is_the_orders_average() -> None:
    """The price derived for the new shares stays where KIS's figures allow it: a buy's never above its limit, a
    sell's never below (the limit when only the derivation's uncertainty crosses it), and neither it nor what the
    counted shares cost a share far from KIS's average; else the order's average."""
    # a legacy detail read in another unit: 3 counted at $0.018 (were $180), KIS: 5 at $179.60, $898
    legacy = listed_fill_price(Money.usd("179.6"), 5, 3, Money.usd("0.054"), amount=Money.usd(898),
                               limit=Money.usd(180), side="buy")
    assert (legacy.price, legacy.basis) == (Money.usd("179.6"), ORDER_AVERAGE)
    # ... with many new shares the derived price ($179.62) looks sane: what the counted cost a share does not
    many = listed_fill_price(Money.usd("179.6"), 100, 3, Money.usd("0.054"), amount=Money.usd(17_960))
    assert (many.price, many.basis) == (Money.usd("179.6"), ORDER_AVERAGE)
    # a buy limited at ₩70,000: 3 counted at ₩69,000 and KIS's ₩349,000 for 5 leave ₩71,000 a share (a miscount) ...
    above = listed_fill_price(Money.krw(69_800), 5, 3, Money.krw(207_000), amount=Money.krw(349_000),
                              limit=Money.krw(70_000), side="buy")
    assert (above.price, above.basis) == (Money.krw(69_800), ORDER_AVERAGE)  # derived ₩71,000 > the limit
    # ... the same figures for a sell limited at ₩69,000 are fine
    sold = listed_fill_price(Money.krw(69_800), 5, 3, Money.krw(207_000), amount=Money.krw(349_000),
                             limit=Money.krw(69_000), side="sell")
    assert (sold.price, sold.basis) == (Money.krw(71_000), FILLS_AVERAGE)
    # a sell below its limit only within the uncertainty of a rounded average: at the limit
    near = listed_fill_price(Money.krw(1_500), 10, 3, Money.krw(4_509), limit=Money.krw(1_500), side="sell")
    assert near.price == Money.krw(1_500) and near.span is not None and near.span[0] < 1_500
    unbounded = listed_fill_price(Money.krw(1_500), 10, 3, Money.krw(4_509), limit=Money.krw(1_500))
    assert unbounded.price == Money.krw(1_499)  # (no side: as before)
