"""The whole domestic market through the bot: any code or name of the directory quotes, trades and takes
an alert on the simulator; an ETN is quoted with KIS's Q prefix; in virtual/real mode the directory is
refreshed from the simulator's master archives, and their halt / 관리종목 flags reach the quote and the card."""

from __future__ import annotations

import html
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatbot.config import KisSettings
from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import protocol as p
from chatbot.kis.errors import KisNotFound
from chatbot.kis.rest import KisEndpoint, KisRestClient
from chatbot.markets.symbols import Kind, Symbol
from chatbot.sim.server import KisSimulator, SimulatorOptions
from tests.harness import BotHarness
from tests.helpers import new_credentials

ALICE = BotApiEmulator.user(3001, "ko")


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    harness = BotHarness(f"sqlite:///{tmp_path}/coverage.sqlite3")
    await harness.start()
    yield harness
    assert not harness.api.unanswered_callbacks()
    await harness.stop()


def drawn(bot: BotHarness, seed: int) -> list[Symbol]:
    """Symbols picked at random from the directory: some of every kind it holds, and more shares."""
    assert bot.runtime is not None
    listed = bot.runtime.market.symbols.symbols("KRX")
    rng = random.Random(seed)
    picks = [rng.choice([s for s in listed if s.kind is kind]) for kind in (Kind.PREFERRED, Kind.ETF)]
    picks += rng.sample([s for s in listed if s.kind is Kind.STOCK and s.market == "KOSDAQ"], 2)
    picks += rng.sample([s for s in listed if s.kind is Kind.STOCK and s.market == "KOSPI"], 2)
    return picks


async def test_random_symbols_quote_trade_and_take_alerts(bot: BotHarness) -> None:
    for symbol in drawn(bot, 20261130):
        name = html.escape(symbol.name_ko, quote=False)
        (quote,) = await bot.say(ALICE, f"/price {symbol.code}")
        assert name in quote["text"] and symbol.code in quote["text"] and "₩" in quote["text"], quote["text"]
        state = bot.sim.market.get(symbol.code)
        assert state is not None and f"{state.price:,}" in quote["text"]

        (by_name,) = await bot.say(ALICE, f"/price {symbol.name_ko}")
        buttons = [label for label, _ in BotApiEmulator.buttons(by_name)]
        assert symbol.code in by_name["text"] or f"{symbol.name_ko} ({symbol.code})" in buttons, by_name["text"]

        (card,) = await bot.say(ALICE, f"/buy {symbol.code} 1")
        assert name in card["text"] and "매수" in card["text"], card["text"]
        await bot.press_button(ALICE, card, 0)
        assert "주문 접수" in bot.current(card)["text"], bot.current(card)["text"]

        target = p.round_up_to_tick(state.price * 115 // 100)
        (alert,) = await bot.say(ALICE, f"/alert {symbol.code} above {target}")
        assert "알림 #" in alert["text"], alert["text"]
    (balance,) = await bot.say(ALICE, "/balance")
    for symbol in drawn(bot, 20261130):
        assert symbol.code in balance["text"]


async def test_an_etn_is_quoted_with_its_q_prefix(bot: BotHarness) -> None:
    # KIS lists ETNs under Q + code; the simulator, like KIS, knows an ETN's bare code nowhere in quotations
    bot.sim.upsert_listing({"code": "580011", "name": "테스트 레버리지 원유 선물 ETN", "market": "KOSPI", "kind": "N",
                            "base_price": 9_870})
    client = KisRestClient(KisEndpoint("real", bot.sim.rest_url("real")), new_credentials())
    try:
        with pytest.raises(KisNotFound):
            await client.quote("580011")
        assert (await client.quote("Q580011")).price == 9_870
    finally:
        await client.aclose()
    for query in ("원유 선물 ETN", "580011", "Q580011"):
        (quote,) = await bot.say(ALICE, f"/price {query}")
        assert "테스트 레버리지 원유 선물 ETN" in quote["text"] and "₩9,870" in quote["text"], quote["text"]
    (card,) = await bot.say(ALICE, "/buy 580011 2")
    await bot.press_button(ALICE, card, 0)
    assert "주문 접수" in bot.current(card)["text"]
    # an alert would watch the bare code, which KIS streams as another instrument's (an ETN's is Q + code): refused
    (alert,) = await bot.say(ALICE, "/alert 580011 above 10500")
    assert "ETN" in alert["text"] and "알림 #" not in alert["text"], alert["text"]


async def test_refresh_from_master_archives_end_to_end(tmp_path: Path) -> None:
    sim = KisSimulator(SimulatorOptions(tick_interval=0, pingpong_interval=0))
    await sim.start()
    sim.upsert_listing({"code": "0999Z0", "name": "테스트신규바이오", "market": "KOSDAQ", "base_price": 12_340})
    sim.upsert_listing({"code": "005930", "halted": True})
    sim.upsert_listing({"code": "000660", "administrative": True})
    kis = KisSettings(environment="real", rest_url=sim.rest_url("real"), ws_url=sim.ws_url("real"),
                      allow_real_orders=True, master_files_url=sim.master_files_url())
    bot = BotHarness(f"sqlite:///{tmp_path}/refresh.sqlite3", kis=kis)
    creds = new_credentials("55667788-01")
    await bot.start()
    try:
        assert bot.runtime is not None and bot.runtime.directory_refresh is not None
        await bot.runtime.directory_refresh.ready.wait()
        for text in ("/login", creds.app_key, creds.app_secret, "55667788-01", "hts55"):
            await bot.say(ALICE, text)
        (quote,) = await bot.say(ALICE, "/price 테스트신규바이오")
        assert "0999Z0" in quote["text"] and "₩12,340" in quote["text"], quote["text"]
        (halted,) = await bot.say(ALICE, "/price 삼성전자")
        assert "거래정지" in halted["text"] and "관리종목" not in halted["text"]
        (card,) = await bot.say(ALICE, "/buy SK하이닉스 1")
        assert "관리종목" in card["text"] and "REAL MONEY" in card["text"], card["text"]
        await bot.press_button(ALICE, card, 1)  # dismissed: nothing is sent

        # a broken archive changes nothing; after a restart the stored copy serves (downloads failing)
        await sim.control("master-files", {"kosdaq_code.mst.zip": "truncated", "kospi_code.mst.zip": "missing"})
        assert set((await bot.runtime.directory_refresh.refresh()).values()) != {"updated"}
        await bot.restart()
        await bot.runtime.directory_refresh.ready.wait()
        (again,) = await bot.say(ALICE, "/price 0999Z0")
        assert "테스트신규바이오" in again["text"]
    finally:
        await bot.stop()
        await sim.stop()
    assert sim.orders_accepted == 0

    # simulator mode on the same database: no download, but the stored master is the paper market,
    # at the master's base prices
    paper = BotHarness(f"sqlite:///{tmp_path}/refresh.sqlite3")
    paper.keyring = bot.keyring
    await paper.start()
    try:
        assert paper.runtime is not None and paper.runtime.directory_refresh is not None
        await paper.runtime.directory_refresh.ready.wait()
        assert paper.runtime.directory_refresh.refreshes == 0
        (quote,) = await paper.say(ALICE, "/price 테스트신규바이오")
        assert "0999Z0" in quote["text"] and "₩12,340" in quote["text"], quote["text"]
        (card,) = await paper.say(ALICE, "/buy 0999Z0 3")
        await paper.press_button(ALICE, card, 0)
        assert "주문 접수" in paper.current(card)["text"]
    finally:
        await paper.stop()
