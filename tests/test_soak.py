"""The chaos soak, short: users, faults, a restart mid-run, and every invariant (bench/soak.py)."""

from __future__ import annotations

from bench.soak import run_soak


async def test_short_chaos_soak_keeps_every_invariant(tmp_path) -> None:  # type: ignore[no-untyped-def]
    report = await run_soak(users=40, seconds=30.0, seed=3, db_url=f"sqlite:///{tmp_path}/soak.sqlite3")
    print("\n".join(report.lines()))
    assert report.restarts == 1 and report.commands > 200 and report.confirms > 20
    assert sum(report.faults.values()) >= 10
    assert report.orders_journalled > 10 and report.alerts_set > 5
    assert report.lost == 0 and report.doubled == 0 and report.unconfirmed == 0
    assert report.alerts_missed == 0 and report.alerts_doubled == 0 and report.alerts_fired_uncrossed == 0
    assert report.unanswered == 0 and report.errors_logged == 0 and report.rate_limit_failures_shown == 0
    assert report.rss_end_mb < report.rss_start_mb + 300
