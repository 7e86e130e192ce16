"""The embedded simulator in a process of its own (``chatbot run`` and ``chatbot console``:
chatbot.sim.process): its state goes through the bot's database and survives a restart of the bot;
a simulator process that dies is started again with what it had saved; one that cannot start fails
the bot's start, leaving nothing behind."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from chatbot.broker import OrderSide
from chatbot.config import DatabaseSettings, SecuritySettings, Settings, SimulatorSettings
from chatbot.runtime import Runtime
from chatbot.sim.options import SimulatorOptions
from chatbot.sim.process import SimulatorProcess

CODE = "005930"
USER = 7


def _settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database=DatabaseSettings(url=db_url), security=SecuritySettings(str(tmp_path / "master.key")),
                    simulator=SimulatorSettings(tick_interval_seconds=0))


def _holdings(balance: Any) -> list[tuple[str, int]]:
    return [(h.code, h.quantity) for h in balance.holdings]


async def test_the_simulators_process_keeps_its_state_in_the_bots_database(db_url: str, tmp_path: Path) -> None:
    settings = _settings(db_url, tmp_path)
    runtime = await Runtime.start(settings)
    process = runtime.sim_process
    try:
        assert runtime.sim is None and process is not None and process.pid is not None
        account = await runtime.accounts.for_user(USER)
        await account.client.place_order(OrderSide.BUY, CODE, 3, None)
        before = await account.client.balance()
        assert _holdings(before) == [(CODE, 3)]
    finally:
        await runtime.aclose()
    assert process.pid is None  # stopped with the bot

    runtime = await Runtime.start(settings)
    try:
        account = await runtime.accounts.for_user(USER)
        after = await account.client.balance()
        assert _holdings(after) == [(CODE, 3)] and after.cash == before.cash
        assert account.client.tokens.issued == 0  # the token it issued, restored by the new process, is still good
    finally:
        await runtime.aclose()


async def test_a_simulator_process_that_dies_is_started_again_with_what_it_saved(db_url: str,
                                                                                 tmp_path: Path) -> None:
    runtime = await Runtime.start(_settings(db_url, tmp_path))
    process = runtime.sim_process
    assert process is not None
    try:
        account = await runtime.accounts.for_user(USER)
        await account.client.place_order(OrderSide.BUY, CODE, 2, None)
        dead = process.pid
        assert dead is not None
        os.kill(dead, signal.SIGKILL)
        for _ in range(600):  # a restart waits a second, then the new process imports and restores
            if process.restarts == 1 and process.pid not in (None, dead):
                break
            await asyncio.sleep(0.05)
        await process.wait_ready()
        assert process.restarts == 1
        balance = await account.client.balance()  # the same sockets: the bot's URLs did not change
        assert _holdings(balance) == [(CODE, 2)]
    finally:
        await runtime.aclose()
    assert process.pid is None


async def test_a_simulator_process_that_cannot_start_fails_the_bots_start(db_url: str, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(db_url, tmp_path)
    monkeypatch.setattr(SimulatorOptions, "to_json", lambda self: {"no_such_option": 1})  # the child's start fails
    with pytest.raises(RuntimeError, match="simulator's process did not start"):
        await Runtime.start(settings)
    monkeypatch.undo()
    runtime = await Runtime.start(settings)  # the failed start released the database
    await runtime.aclose()


async def test_a_process_started_ahead_is_the_one_the_runtime_uses(db_url: str, tmp_path: Path) -> None:
    settings = _settings(db_url, tmp_path)
    process = await SimulatorProcess.for_settings(settings)
    assert process is not None
    runtime = await Runtime.start(settings, sim_process=process)
    try:
        assert runtime.sim_process is process
        account = await runtime.accounts.for_user(USER)
        assert (await account.client.balance()).cash > 0
    finally:
        await runtime.aclose()
    assert process.pid is None


def test_options_cross_to_the_simulators_process_unchanged() -> None:
    options = SimulatorOptions(seed=5, requests_per_second={"real": 7, "virtual": 1}, tick_interval=0.5,
                               krw_per_usd=SimulatorOptions().krw_per_usd + 1, us_always_open=True)
    assert SimulatorOptions.from_json(options.to_json()) == options
