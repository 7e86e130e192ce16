"""Start-up's bulk reads: the alert book loaded whole per (symbol, side) from grouped rows, and the
feed planner's demand read as one owners string per symbol. What they build must be what the row by
row paths built."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from chatbot import runtime as runtime_module
from chatbot.alerts.book import AlertBook
from chatbot.alerts.engine import THRESHOLD_UNITS
from chatbot.alerts.feeds import ANYONE, FeedPlanner, read_demand
from chatbot.alerts.repository import armed_sides
from chatbot.config import DatabaseSettings, SecuritySettings, Settings, SimulatorSettings
from chatbot.sim.server import KisSimulator
from chatbot.storage import Database
from chatbot.storage.tables import AlertRow
from chatbot.storage.types import utcnow


def _crossed(live: dict[int, tuple[str, str, int]], code: str, price: int) -> set[int]:
    return {i for i, (c, d, th) in live.items()
            if c == code and ((d == "above" and price >= th) or (d == "below" and price <= th))}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B"]), st.sampled_from(["above", "below"]), st.integers(1, 60)),
                max_size=150),
       st.lists(st.tuples(st.sampled_from(["A", "B"]), st.integers(1, 60)), max_size=30), st.randoms(use_true_random=False))
def test_book_loaded_by_sides_fires_what_a_brute_force_scan_would(
        alerts: list[tuple[str, str, int]], prices: list[tuple[str, int]], rng: random.Random) -> None:
    """Sides given in any order (a side split in two, as a merge), ties included: every tick fires what
    a scan over the alerts fires, and the book's bookkeeping (where, len, remove) agrees."""
    live = {i: alert for i, alert in enumerate(alerts)}
    groups: dict[tuple[str, str], list[tuple[int, int]]] = {}
    order = list(live)
    rng.shuffle(order)
    for i in order:
        code, direction, threshold = live[i]
        groups.setdefault((code, direction), []).append((i, threshold))
    sides = []
    for (code, direction), entries in groups.items():
        cut = rng.randrange(len(entries) + 1)
        for part in (entries[:cut], entries[cut:]):
            if part:
                sides.append((code, direction, [i for i, _ in part], [t for _, t in part]))
    book = AlertBook()
    assert book.load_sides(sides) == len(live) == len(book)
    for alert_id, alert in live.items():
        assert book.where(alert_id) == alert
    removed = [i for i in live if rng.random() < 0.2]
    for alert_id in removed:
        assert book.remove(alert_id)
        del live[alert_id]
    for code, price in prices:
        expected = _crossed(live, code, price)
        assert set(book.on_price(code, price)) == expected
        for alert_id in expected:
            del live[alert_id]
    assert len(book) == len(live)


def test_loading_sides_into_a_book_holding_alerts_merges() -> None:
    book = AlertBook()
    book.add(1, "A", "above", 10)
    assert book.load_sides([("A", "above", [2, 3], [5, 10]), ("A", "below", [4], [7])]) == 4
    assert sorted(book.on_price("A", 10)) == [1, 2, 3]
    assert book.on_price("A", 7) == [4]


async def _alert(db: Database, alert_id: int, owner: int, code: str, direction: str, threshold: Decimal,
                 status: str = "armed", currency: str = "KRW") -> None:
    now = utcnow()
    async with db.engine.begin() as conn:
        await conn.execute(insert(AlertRow).values(
            id=alert_id, owner_id=owner, chat_id=owner, language="ko", code=code, name=code, direction=direction,
            threshold=threshold, reference_price=threshold, currency=currency, percent=None, repeat=False,
            cooldown_seconds=600, status=status, fired_count=0, created_at=now, updated_at=now))


async def test_armed_sides_groups_the_armed_alerts_in_price_units(database: Database) -> None:
    """Armed alerts grouped per (symbol, side) with their thresholds in price units (a dollar threshold in
    ten-thousandths, rounded); the symbols of the cooling ones too; fired, paused and deleted ones left out."""
    await _alert(database, 1, 100, "005930", "above", Decimal(70_000))
    await _alert(database, 2, 101, "005930", "above", Decimal(71_000))
    await _alert(database, 3, 100, "005930", "below", Decimal(60_000))
    await _alert(database, 4, 102, "DNASAAPL", "above", Decimal("190.13"), currency="USD")
    await _alert(database, 5, 102, "000660", "above", Decimal(1), status="cooling")
    await _alert(database, 6, 102, "035720", "above", Decimal(1), status="fired")
    await _alert(database, 7, 103, "035420", "below", Decimal(1), status="paused")
    sides, codes = await armed_sides(database, THRESHOLD_UNITS)
    got = {(code, direction): dict(zip(ids, thresholds, strict=True)) for code, direction, ids, thresholds in sides}
    assert got == {("005930", "above"): {1: 70_000, 2: 71_000}, ("005930", "below"): {3: 60_000},
                   ("DNASAAPL", "above"): {4: 1_901_300}}
    assert codes == {"005930", "DNASAAPL", "000660"}
    book = AlertBook()
    book.load_sides(sides)
    assert book.on_price("005930", 70_500) == [1]
    assert book.on_price("DNASAAPL", 1_901_300) == [4]


async def test_the_planners_demand_reads_every_watcher_of_each_symbol(database: Database) -> None:
    """Who watches what (armed, cooling and paused alerts; one owner once per symbol however many alerts),
    for every symbol or for the symbols asked about."""
    await _alert(database, 1, 100, "005930", "above", Decimal(70_000))
    await _alert(database, 2, 100, "005930", "below", Decimal(60_000))
    await _alert(database, 3, 101, "005930", "above", Decimal(71_000), status="cooling")
    await _alert(database, 4, 102, "000660", "above", Decimal(1), status="paused")
    await _alert(database, 5, 103, "000660", "above", Decimal(1), status="fired")
    await _alert(database, 6, 9_000_000_000, "035720", "above", Decimal(1))  # a BIGINT id
    planner = FeedPlanner.__new__(FeedPlanner)  # only what _load_demand uses
    planner.db, planner._demand, planner.early_demand = database, {}, None
    await planner._load_demand()
    assert planner._demand == {"005930": {100, 101}, "000660": {102}, "035720": {9_000_000_000}}
    planner._demand = {"005930": {ANYONE}, "000270": {104}}
    await planner._load_demand(["005930", "000270"])
    assert planner._demand == {"005930": {100, 101}, "000270": {104}}  # no alert left: kept until let go


# What `chatbot run` imports on its way to ready (the entry point first, as the installed script does),
# and what must not be among it: prometheus_client (only with an HTTP endpoint serving /metrics) and
# SQLAlchemy's PostgreSQL dialect (on SQLite: the outbox's partial indexes are declared for the
# migrations only, tables.declare_partial_indexes). PTB's JobQueue stays: /login's timeout runs on it.
START_PATH = """
import sys
import chatbot.__main__ as entry
entry.skip_unused_optional_imports()
import chatbot.runtime, chatbot.telegram.runner, chatbot.telegram.app, chatbot.telegram.access
loaded = sorted(m for m in ("prometheus_client", "sqlalchemy.dialects.postgresql")
                if sys.modules.get(m) is not None)
assert not loaded, loaded
from telegram.ext import ApplicationBuilder
assert ApplicationBuilder().token("0:test").build().job_queue is not None
"""


def test_the_start_up_path_leaves_unused_libraries_unimported() -> None:
    subprocess.run([sys.executable, "-c", START_PATH], cwd=Path(__file__).resolve().parent.parent,
                   check=True, timeout=120)


async def test_on_sqlite_the_book_and_demand_are_read_while_the_simulator_restores(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite: the alert book's and the feed planner's reads begin before the simulator's state is restored
    (their queries run on the driver's threads meanwhile), each once, and what they read is what the engine
    and the planner hold at ready: every armed alert in the book, every watcher known, and a trade after
    ready fires."""
    url = f"sqlite:///{tmp_path}/bot.sqlite3"
    db = Database(url)
    await db.migrate()
    await _alert(db, 1, 100, "005930", "above", Decimal(1))  # the first trade crosses it
    await _alert(db, 2, 101, "005930", "below", Decimal(1))  # no trade does
    await _alert(db, 3, 102, "000660", "above", Decimal(1), status="cooling")
    await db.dispose()
    events: list[str] = []
    real_sides, real_demand, real_load = armed_sides, read_demand, KisSimulator._load

    async def sides(*args: Any) -> Any:
        events.append("book read")
        return await real_sides(*args)

    async def demand(*args: Any) -> Any:
        events.append("demand read")
        return await real_demand(*args)

    async def load(sim: KisSimulator) -> None:
        events.append("simulator restored")
        await real_load(sim)

    monkeypatch.setattr(runtime_module, "armed_sides", sides, raising=False)
    monkeypatch.setattr(runtime_module, "read_demand", demand, raising=False)
    monkeypatch.setattr(KisSimulator, "_load", load)
    monkeypatch.setattr("chatbot.alerts.engine.armed_sides", sides)  # a read at the engine's start: counted too
    monkeypatch.setattr("chatbot.alerts.feeds.read_demand", demand)
    config = Settings(database=DatabaseSettings(url=url), security=SecuritySettings(str(tmp_path / "master.key")),
                        simulator=SimulatorSettings(tick_interval_seconds=0))
    runtime = await runtime_module.Runtime.start(config)
    try:
        assert sorted(events[:2]) == ["book read", "demand read"] and events[2] == "simulator restored"
        assert sorted(events) == ["book read", "demand read", "simulator restored"]  # each once
        assert runtime.engine is not None and runtime.feeds is not None and runtime.sim is not None
        assert len(runtime.engine.book) == 2
        assert runtime.feeds._demand == {"005930": {100, 101}, "000660": {102}}
        assert runtime.engine.early_book is None and runtime.feeds.early_demand is None
        fired = runtime.engine.fired
        state = runtime.sim.market.get("005930")
        assert state is not None
        runtime.sim.set_price("005930", state.price)
        for _ in range(200):
            if runtime.engine.fired > fired:
                break
            await asyncio.sleep(0.05)
        assert runtime.engine.fired == fired + 1
    finally:
        await runtime.aclose()
