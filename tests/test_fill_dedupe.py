"""A fill is counted and pushed once when a cumulative reading of KIS's list of the day's orders (fill catch-up,
reconciliation) and the fill's own live execution notice both report it, in whichever order they are handled.

The reading counts what the journal lacks of KIS's figure; a notice handled after it (it came late, or it waited
for its order's number while reconciliation found the order) may be of a fill inside that figure: the watcher
asks KIS for the order's figure then, and counts only what the journal still lacks of it. Each scenario holds
the simulator's notices back (as a slow or dropped connection does) and lets them go at the chosen moment."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from chatbot.config import KisSettings
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import protocol as p
from chatbot.kis.frames import FillNotice
from chatbot.service.fill_catchup import catch_up_fills
from chatbot.service.fill_prices import counted_fills
from chatbot.service.fills import _stock, order_filled
from chatbot.service.journal import LISTED, NOTICE
from chatbot.storage.db import Database
from chatbot.storage.tables import OrderEventRow, OrderJournalRow, OutboxRow
from chatbot.storage.types import utcnow
from tests.harness import BotHarness, confirm
from tests.test_money_storage import _to
from tests.test_order_review import resting_price, wait_for

USER = BotApiEmulator.user(9801, "en")
CODE = "005930"


@pytest.fixture
async def bot(db_url: str) -> AsyncIterator[BotHarness]:
    harness = BotHarness(db_url, kis=KisSettings(order_settle_seconds=0.5, order_reconcile_interval_seconds=0.2),
                         us_always_open=True)
    await harness.start()
    assert harness.runtime is not None
    harness.runtime.fills.list_lag = dt.timedelta(0)  # the simulator's list never lags (one test makes it)
    yield harness
    assert not harness.api.unanswered_callbacks(), "every callback query must be answered"
    await harness.stop()


class Notices:
    """The simulator's order events (what execution notices are made of), held back until :meth:`release`."""

    def __init__(self, bot: BotHarness) -> None:
        self.exchange, self.trading = bot.sim.exchange, bot.sim.us_trading
        self.domestic: list[Callable[[Any], None]] = []
        self.us: list[Callable[[Any], None]] = []
        self.held: list[tuple[str, Any]] = []

    @contextmanager
    def holding(self) -> Iterator[None]:
        self.domestic, self.exchange._order_listeners = self.exchange._order_listeners, [
            lambda event: self.held.append(("KRX", event))]
        self.us, self.trading._listeners = self.trading._listeners, [lambda event: self.held.append(("US", event))]
        try:
            yield
        finally:
            self.exchange._order_listeners, self.trading._listeners = self.domestic, self.us

    def release(self, count: int | None = None) -> None:
        """The first ``count`` held events (all by default), in the order they happened, to the listeners they
        were kept from (the notice feed)."""
        count = len(self.held) if count is None else count
        held, self.held = self.held[:count], self.held[count:]
        for market, event in held:
            for listener in self.domestic if market == "KRX" else self.us:
                listener(event)


def handled(bot: BotHarness) -> int:
    """Fill notices the watcher finished with: pushed, or found counted already."""
    assert bot.runtime is not None
    return bot.runtime.fills.recorded + bot.runtime.fills.counted_already


async def notices_handled(bot: BotHarness, before: int, count: int) -> None:
    await wait_for(lambda: handled(bot) >= before + count, 60)  # a deadline, not a measure


async def fill_pushes(bot: BotHarness) -> list[dict[str, Any]]:
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        rows = (await session.exec(select(OutboxRow).where(OutboxRow.kind == "fill")
                                   .order_by(col(OutboxRow.id)))).all()
    return [row.payload for row in rows]


async def journalled(bot: BotHarness, order_no: str) -> tuple[OrderJournalRow, int]:
    """The order's journal row and the quantity the journal counts as filled."""
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        row = (await session.exec(select(OrderJournalRow).where(OrderJournalRow.kis_order_no == order_no))).one()
        assert row.id is not None
        return row, (await counted_fills(session, row.id, row.currency))[0]


async def catch_up(bot: BotHarness) -> int:
    runtime = bot.runtime
    assert runtime is not None
    return await catch_up_fills(runtime.db, runtime.accounts, runtime.users, USER["id"], lambda: None)


async def resting_buy(bot: BotHarness, quantity: int = 3) -> str:
    """A domestic limit buy resting below the market; its number."""
    assert "Order accepted" in (await confirm(bot, USER, f"/buy {CODE} {quantity} {resting_price(bot)}"))["text"]
    row = (await journal_rows(bot))[-1]
    assert row.kis_order_no and bot.runtime is not None and USER["id"] in bot.runtime.fills.watched()
    return row.kis_order_no


async def journal_rows(bot: BotHarness) -> list[OrderJournalRow]:
    assert bot.runtime is not None
    async with bot.runtime.db.session() as session:
        return list((await session.exec(select(OrderJournalRow).order_by(col(OrderJournalRow.id)))).all())


def fill_domestic(bot: BotHarness, order_no: str, quantity: int) -> None:
    """``quantity`` of the resting order fills at its limit (its notice goes to whoever listens)."""
    exchange = bot.sim.exchange
    account = next(a for a in exchange.accounts.values() if a.find(order_no) is not None)
    order = account.find(order_no)
    assert order is not None and order.remaining >= quantity
    exchange._fill(account, order, quantity, order.price, exchange._stamp()[1])


def quantities(pushes: Sequence[dict[str, Any]]) -> list[int]:
    return sorted(int(push["quantity"]) for push in pushes)


async def caught_up_before_its_notice(bot: BotHarness) -> tuple[str, int]:
    """A resting buy of 3, 1 filled: the catch-up counts that fill from KIS's list, then its late notice is
    handled. The order's number, and the notices handled before that one."""
    order_no = await resting_buy(bot)
    notices = Notices(bot)
    with notices.holding():
        fill_domestic(bot, order_no, 1)
    assert await catch_up(bot) == 1
    before = handled(bot)
    notices.release()
    await notices_handled(bot, before, 1)
    return order_no, before


async def test_a_fill_caught_up_is_not_pushed_again_when_its_notice_comes_late(bot: BotHarness) -> None:
    """1 of 3 fills; its notice is late (the connection was slow): the catch-up after a reconnect counts it from
    KIS's list and pushes it. The notice, handled after, is of that same fill: not pushed nor counted again."""
    order_no, _ = await caught_up_before_its_notice(bot)
    row, filled = await journalled(bot, order_no)
    assert quantities(await fill_pushes(bot)) == [1] and filled == 1 and row.status == "partially_filled"
    assert bot.runtime is not None and bot.runtime.fills.lookups == 1


async def test_a_us_fill_caught_up_is_not_pushed_again_when_its_notice_comes_late(bot: BotHarness) -> None:
    """The same for a US order (H0GSCNI0's fill notices, KIS's list of US orders)."""
    bot.sim.set_us_price("AAPL", Decimal("190.25"))
    assert "accepted" in (await confirm(bot, USER, "/buy AAPL 3 180.00"))["text"]
    order_no = (await journal_rows(bot))[-1].kis_order_no
    assert order_no
    trading = bot.sim.us_trading
    account = next(a for a in trading.accounts.values() if a.find(order_no) is not None)
    order = account.find(order_no)
    assert order is not None
    notices = Notices(bot)
    with notices.holding():
        trading._fill(account, order, 1, order.price, trading.clock())
    assert await catch_up(bot) == 1
    before = handled(bot)
    notices.release()
    await notices_handled(bot, before, 1)
    row, filled = await journalled(bot, order_no)
    pushes = await fill_pushes(bot)
    assert quantities(pushes) == [1] and filled == 1 and row.status == "partially_filled"
    assert pushes[0]["currency"] == "USD" and pushes[0]["price"] == 1_800_000, pushes


async def test_a_fill_the_list_did_not_show_yet_is_pushed_once_from_its_notice(bot: BotHarness) -> None:
    """KIS's list lags: the catch-up read it before the second fill was booked, and counted the first only (its
    notice was lost with the connection). The second fill's notice, handled after, may be of a fill inside that
    reading: KIS is asked, and its list still lags (the figure lacks the fill: not believed so soon after the
    notice); asked again, it shows the fill, which is pushed, once, as its notice says."""
    assert bot.runtime is not None
    bot.runtime.fills.list_lag = dt.timedelta(hours=1)
    order_no = await resting_buy(bot)
    notices = Notices(bot)
    with notices.holding():
        fill_domestic(bot, order_no, 1)
    notices.held.clear()  # lost
    account = await bot.runtime.accounts.for_user(USER["id"])
    listing, looks, stale = account.broker.executions, 0, []

    async def lagging(day: Any) -> Any:
        nonlocal looks, stale
        looks += 1
        if looks == 1:
            stale = await listing(day)
            with notices.holding():
                fill_domestic(bot, order_no, 1)  # booked after the list was read, before its figure is counted
        return stale if looks <= 2 else await listing(day)  # the catch-up's and the notice's first look: stale

    account.broker.executions = lagging  # type: ignore[method-assign]
    try:
        assert await catch_up(bot) == 1
        before = handled(bot)
        notices.release()
        await notices_handled(bot, before, 1)
    finally:
        account.broker.executions = listing  # type: ignore[method-assign]
    row, filled = await journalled(bot, order_no)
    pushes = await fill_pushes(bot)
    assert quantities(pushes) == [1, 1] and filled == 2 and row.status == "partially_filled"
    assert pushes[-1]["price"] == resting_price(bot) and pushes[-1]["time"], pushes  # the notice's own
    assert looks == 3 and bot.runtime.fills.lookups == 2


async def test_of_two_fills_only_the_first_in_the_reading_each_is_pushed_once(bot: BotHarness) -> None:
    """The catch-up counted the first fill (1); the second (2) was booked after. Both notices come late, after
    the second was booked, the first's first: KIS's figure (3) has room for the first's quantity again, but that
    room is the second's. Pushed: 1 and 2, nothing twice; the journal counts 3 of 3."""
    order_no = await resting_buy(bot)
    notices = Notices(bot)
    with notices.holding():
        fill_domestic(bot, order_no, 1)
    assert await catch_up(bot) == 1
    with notices.holding():
        fill_domestic(bot, order_no, 2)
    before = handled(bot)
    notices.release(1)
    await notices_handled(bot, before, 1)
    notices.release()
    await notices_handled(bot, before, 2)
    row, filled = await journalled(bot, order_no)
    assert quantities(await fill_pushes(bot)) == [1, 2] and filled == 3 and row.status == "filled"


async def test_a_fill_after_the_reading_is_pushed_after_an_included_ones_late_notice(bot: BotHarness) -> None:
    """The first fill's late notice (its fill counted by the catch-up) comes before the second fill: not pushed;
    the second fill's notice is (it was dropped as "already counted" when the first had been counted twice)."""
    order_no, before = await caught_up_before_its_notice(bot)
    fill_domestic(bot, order_no, 2)
    await notices_handled(bot, before, 2)
    row, filled = await journalled(bot, order_no)
    assert quantities(await fill_pushes(bot)) == [1, 2] and filled == 3 and row.status == "filled"


async def test_a_notice_waiting_for_its_orders_number_is_not_pushed_again_after_reconciliation_counted_it(
        bot: BotHarness) -> None:
    """The order's reply was lost; 1 of 3 fills and its notice waits for the order's number (the order is still
    being looked for). Reconciliation finds the order in KIS's list, numbers the row and counts and pushes what
    filled. The notice then finds its row: the fill is inside what was counted; not pushed again."""
    runtime = bot.runtime
    assert runtime is not None
    account = await runtime.accounts.for_user(USER["id"])
    account.submitter.lookups = 0  # no look of its own: the outcome is left to reconciliation
    reconciler = runtime.reconciler
    reconcile, gate = reconciler._reconcile, asyncio.Event()

    async def after_the_gate(row: OrderJournalRow) -> bool:
        await gate.wait()
        return await reconcile(row)

    reconciler._reconcile = after_the_gate  # type: ignore[method-assign]
    (card,) = await bot.say(USER, f"/buy {CODE} 3 {resting_price(bot)}")
    bot.sim.faults.error_5xx_after_next, bot.sim.faults.paths = 1, (p.PATH_ORDER_CASH,)
    await bot.press_button(USER, card, 0)
    bot.sim.faults.clear()
    assert bot.sim.orders_accepted == 1 and USER["id"] in runtime.fills.watched()
    (row,) = await journal_rows(bot)
    assert row.kis_order_no is None
    order_no = next(o.order_no for a in bot.sim.exchange.accounts.values() for o in a.orders)
    retries, before = runtime.fills.retries, handled(bot)
    fill_domestic(bot, order_no, 1)
    await wait_for(lambda: runtime.fills.retries > retries, 60)  # the notice waits for the order's number
    gate.set()
    await notices_handled(bot, before, 1)
    row, filled = await journalled(bot, order_no)
    assert quantities(await fill_pushes(bot)) == [1] and filled == 1 and row.status == "partially_filled"


async def test_0018_reads_old_fill_events_as_notices_and_goes_down_and_up(db_url: str) -> None:
    """Revision 0018: events written before it have no source (read as live notices); the downgrade drops the
    column and keeps the events."""
    db = Database(db_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_to("0017"))
        async with db.engine.begin() as conn:
            await conn.execute(sa.text(
                "INSERT INTO order_journal (idempotency_key, owner_id, environment, account, action, side, code, "
                "quantity, status, submitted_by, absent_looks, created_at, updated_at, currency, market) VALUES "
                "('k', 1, 'simulator', '', 'order', 'buy', '005930', 3, 'partially_filled', '', 0, :now, :now, "
                "'KRW', 'KRX')"), {"now": utcnow()})
            await conn.execute(sa.text("INSERT INTO order_events (journal_id, status, detail, at) SELECT id, "
                                       "'partially_filled', '1@70000', :now FROM order_journal"), {"now": utcnow()})
        await db.migrate()
        async with db.write() as session:
            old = (await session.exec(select(OrderEventRow))).one()
            assert old.source is None and old.detail == "1@70000"
            session.add(OrderEventRow(journal_id=old.journal_id, status="filled", detail="2@70000", source=LISTED))
        async with db.session() as session:
            assert (await counted_fills(session, old.journal_id, "KRW"))[0] == 3
            sources = {r.source for r in (await session.exec(select(OrderEventRow))).all()}
        assert sources == {None, LISTED} and NOTICE not in sources
        async with db.engine.begin() as conn:
            await conn.run_sync(_to("0017", down=True))
        async with db.engine.connect() as conn:
            columns = {c["name"] for c in await conn.run_sync(
                lambda sync: sa.inspect(sync).get_columns("order_events"))}
            assert "source" not in columns
            assert (await conn.execute(sa.text("SELECT count(*) FROM order_events"))).scalar() == 2
        await db.migrate()
    finally:
        await db.dispose()


async def test_a_notice_counted_while_the_catch_up_reads_leaves_the_lost_fill_told(bot: BotHarness) -> None:
    """A fill's notice is lost with the connection (E, 1 of 3); the catch-up after the reconnect reads KIS's list
    (E) and, before it writes, the next fill's notice comes (F, 1). F counted in between would leave the journal
    at the list's figure, so the catch-up, adding what the list has beyond the journal, found nothing to add: E
    was never told. The catch-up holds its orders' notices from its read to its writes: F is counted after,
    against KIS's figure, and both fills are told once each."""
    assert bot.runtime is not None
    fills = bot.runtime.fills
    order_no = await resting_buy(bot)
    row, _ = await journalled(bot, order_no)
    notices = Notices(bot)
    with notices.holding():
        fill_domestic(bot, order_no, 1)
    notices.held.clear()  # E's notice: lost
    account = await bot.runtime.accounts.for_user(USER["id"])
    listing, read, go_on = account.broker.executions, asyncio.Event(), asyncio.Event()

    async def read_then_wait(day: Any) -> Any:
        listed = await listing(day)
        if not read.is_set():  # the catch-up's read: F fills and its notice comes before the catch-up writes
            read.set()
            await go_on.wait()
        return listed

    account.broker.executions = read_then_wait  # type: ignore[method-assign]
    catching_up = asyncio.create_task(fills.catch_up(USER["id"]))
    await asyncio.wait_for(read.wait(), 60)
    before = handled(bot)
    fill_domestic(bot, order_no, 1)  # F: its notice goes to the watcher now
    journal_id = row.id or 0
    # counted (the old way), or waiting its turn behind the catch-up (two holders of the order's turn)
    await wait_for(lambda: handled(bot) > before or fills._order_locks.get(journal_id, (None, 0))[1] >= 2, 60)
    go_on.set()
    await asyncio.wait_for(catching_up, 60)
    await notices_handled(bot, before, 1)
    row, filled = await journalled(bot, order_no)
    assert quantities(await fill_pushes(bot)) == [1, 1] and filled == 2 and row.status == "partially_filled"


def test_an_etn_notice_names_its_order_as_the_journal_does() -> None:
    """KIS names an ETN's orders Q + code (its notices too); the journal writes the directory's six characters.
    A notice's stock is matched against orders still waiting for their number: with the Q, an ETN market order's
    fill found none, was told as an order placed elsewhere (journalled nowhere) and again from KIS's list."""
    fields = list(p.NOTICE_FIELDS)
    values = [""] * len(fields)
    values[fields.index("STCK_SHRN_ISCD")], values[fields.index("SELN_BYOV_CLS")] = "Q520001", "02"
    notice = FillNotice(values)
    assert _stock(notice) == ("520001", "buy")
    assert order_filled(notice, "en").code == "520001"
