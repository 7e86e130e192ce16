"""The chaos soak, short: users, faults, a restart mid-run, and every invariant (bench/soak.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bench.soak import FAULT_KINDS, run_soak, within_limit
from chatbot.config import TelegramSettings
from chatbot.telegram.app import build_application
from tests.harness import TOKEN


async def test_short_chaos_soak_keeps_every_invariant(tmp_path: Path) -> None:
    """20 s of 40 users inside Telegram's limit, with faults packed closer than the bench's default (0.3-0.8 s
    apart instead of 0.8-2 s) so that every kind of fault comes at least once (the run is drawn out if not)."""
    report = await run_soak(users=40, seconds=20.0, seed=3, db_url=f"sqlite:///{tmp_path}/soak.sqlite3",
                            think=within_limit(40), fault_gap=(0.3, 0.8))
    figures = "\n".join(report.lines())
    print(figures)
    checks = {
        "one restart": report.restarts == 1, "enough traffic": report.commands > 120 and report.confirms > 20,
        "every kind of fault injected": set(report.faults) == set(FAULT_KINDS) and sum(report.faults.values()) >= 8,
        "orders and alerts exercised": report.orders_journalled > 10 and report.alerts_set > 5,
        "no order lost, doubled or unconfirmed": report.lost == report.doubled == report.unconfirmed == 0,
        "every crossed alert fired once": report.alerts_missed == report.alerts_doubled
        == report.alerts_fired_uncrossed == 0,
        "every update answered, no errors": report.unanswered == report.errors_logged == 0,
        "no database error (not even a lock retried)": report.database_errors == 0,
        "every confirmed order's outcome shown": report.untold == 0,
        "no rate-limit failure shown": report.rate_limit_failures_shown == 0,
        "memory bounded": report.rss_end_mb < report.rss_start_mb + 300,
    }
    failed = [name for name, ok in checks.items() if not ok]
    assert not failed, f"{failed}\n{figures}"


def test_updates_pulled_while_polling_stops_are_no_crash(caplog: pytest.LogCaptureFixture) -> None:
    """Found by the soak: a user writing just as the bot stops made PTB log CRITICAL ("Updater stopped
    unexpectedly"); the updates are handed over again at the next start, so it is a warning."""
    build_application(TelegramSettings(token=TOKEN), None)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        logging.getLogger("telegram.ext.Updater").critical(
            "Updater stopped unexpectedly. Pulled updates will be ignored and pulled again on restart.")
        logging.getLogger("telegram.ext.Updater").critical("Something else")
    assert [r.levelname for r in caplog.records] == ["WARNING", "CRITICAL"]
