"""The chaos soak's conditional orders (:mod:`bench.soak`): users arm stops, take-profits, brackets and
trailing stops on what they hold, and the run's trades judge them afterwards.

Reported: armed, crossed, fired (placed / failed), and the invariants — missed 0 (crossed by a trade
after arming, still armed once the market stopped), doubled 0 (more than one sell for one conditional
order in the simulator's ledger), fired-uncrossed 0 (fired with no trade at or past the fired leg's
trigger since it was armed), oversold 0 (a firing refused for selling more than held, or a position
below zero). Trailing stops count in armed and fired; their level moves with the trades, so missed
and fired-uncrossed are judged on stops, take-profits and brackets only.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlmodel import select

from chatbot.console.botapi import BotApiEmulator
from chatbot.kis import protocol as p
from chatbot.storage.tables import ConditionalOrderRow, OrderJournalRow, OutboxRow

if TYPE_CHECKING:
    from bench.soak import Soak

ARM_MARGIN = 0.5  # seconds after arming before a trade counts as one the engine must have seen
FIRE_SLACK = 2.0  # a trade this long before the arming time may be the one seen while arming
FIRED = ("firing", "placed", "failed")
REFUSED_SHARES = ("APBK0986", "40240000")  # KIS: more than the orderable quantity


@dataclass(slots=True)
class ConditionalFigures:
    armed: int = 0
    crossed: int = 0
    fired: int = 0
    placed: int = 0
    failed: int = 0
    still_firing: int = 0
    missed: int = 0
    doubled: int = 0
    fired_uncrossed: int = 0
    oversold: int = 0
    trailing_armed: int = 0
    trailing_fired: int = 0
    details: list[str] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not (self.missed or self.doubled or self.fired_uncrossed or self.oversold or self.still_firing)

    def line(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in self.failures.most_common(4))
        return (f"conditional orders: {self.armed} armed ({self.trailing_armed} trailing), {self.crossed} crossed, "
                f"{self.fired} fired ({self.placed} placed, {self.failed} failed{': ' + reasons if reasons else ''}; "
                f"trailing {self.trailing_fired}), still firing {self.still_firing}; missed {self.missed}, doubled "
                f"{self.doubled}, fired uncrossed {self.fired_uncrossed}, oversold {self.oversold}")


async def act(soak: Soak, user: dict[str, Any], rng: random.Random, code: str) -> None:
    """Arm one conditional order a few ticks from the price (refused when nothing is held: fine)."""
    state = soak.bot.sim.market.get(code)
    if state is None:
        return
    replies = await soak.say(user, f"/buy {code} 1")  # a share to protect first, as a user would
    cards = [m for m in replies if any(d.startswith("oy:") for _, d in BotApiEmulator.buttons(m))]
    if not cards:
        return
    soak.report.confirms += 1
    await soak.press(user, cards[0], BotApiEmulator.buttons(cards[0])[0][1])
    tick = p.tick_size(state.price)
    below, above = state.price - rng.randint(1, 4) * tick, state.price + rng.randint(1, 4) * tick
    kind = rng.choice(["stop", "stop", "tp", "bracket", "trail"])
    text = {"stop": f"/stop {code} 1 {below:,}원", "tp": f"/tp {code} 1 {above}",
            "bracket": f"/bracket {code} 1 {below} {above}",
            "trail": f"/trail {code} 1 {rng.choice(['0.5', '1', '2'])}%"}[kind]
    replies = await soak.say(user, text)
    cards = [m for m in replies if any(d.startswith("ky:") for _, d in BotApiEmulator.buttons(m))]
    if cards and rng.random() < 0.9:
        await soak.press(user, cards[0], BotApiEmulator.buttons(cards[0])[0][1])


async def check(soak: Soak) -> ConditionalFigures:
    rt = soak.bot.runtime
    assert rt is not None
    async with rt.db.session() as session:
        rows = list((await session.exec(select(ConditionalOrderRow).where(
            ConditionalOrderRow.armed_at.is_not(None)))).all())  # type: ignore[union-attr]
        journal = {j.idempotency_key: j for j in (await session.exec(select(OrderJournalRow))).all()}
        pushes = list((await session.exec(select(OutboxRow.dedupe_key).where(OutboxRow.kind == "cond"))).all())
    f = ConditionalFigures()
    triggered = Counter(key.split(":")[1] for key in pushes if key.endswith(":triggered"))
    sim_sells = Counter((o.account_id, o.order_no) for acct in soak.bot.sim.exchange.accounts.values()
                        for o in acct.orders if o.kind == "new" and not o.is_buy)
    for row in rows:
        assert row.armed_at is not None
        trailing = row.kind == "trail"
        f.armed += 1
        f.trailing_armed += trailing
        fired = row.status in FIRED
        f.fired += fired
        f.trailing_fired += fired and trailing
        f.placed += row.status == "placed"
        f.failed += row.status == "failed"
        f.still_firing += row.status == "firing"
        entry = journal.get(row.fire_key or "")
        if row.status == "failed":
            f.failures[(entry.message or entry.status)[:40] if entry else (row.result or "?")[:40]] += 1
        if entry is not None and entry.msg_cd in REFUSED_SHARES:
            f.oversold += 1
        if triggered[str(row.id)] > 1 or (entry is not None and entry.kis_order_no
                                          and sim_sells[(entry.account, entry.kis_order_no)] > 1):
            f.doubled += 1
        if trailing:
            continue
        armed_at = row.armed_at.timestamp()
        crossed_at = _crossed(soak, row, armed_at + ARM_MARGIN)
        f.crossed += crossed_at is not None and row.status != "cancelled"
        if crossed_at is not None and row.status == "armed":
            f.missed += 1
            f.details.append(f"missed: conditional #{row.id} {row.kind} {row.code} stop {row.stop_price} take "
                             f"{row.take_price}, armed {armed_at - soak.started_wall:.2f} s, crossed "
                             f"{crossed_at - soak.started_wall:.2f} s")
        if fired and _crossed(soak, row, armed_at - FIRE_SLACK, leg=row.fired_leg) is None:
            f.fired_uncrossed += 1
            f.details.append(f"fired uncrossed: conditional #{row.id} {row.kind} {row.code} leg {row.fired_leg} at "
                             f"{row.fired_price}")
    for acct in soak.bot.sim.exchange.accounts.values():
        f.oversold += sum(1 for pos in acct.positions.values() if pos.quantity < 0)
    return f


async def unsettled(soak: Soak) -> bool:
    """A conditional order still firing, or crossed and still armed: the settle waits for it."""
    rt = soak.bot.runtime
    assert rt is not None
    async with rt.db.session() as session:
        rows = list((await session.exec(select(ConditionalOrderRow).where(
            ConditionalOrderRow.status.in_(("armed", "firing"))))).all())  # type: ignore[attr-defined]
    return any(row.status == "firing" or (row.kind != "trail" and row.armed_at is not None
                                          and _crossed(soak, row, row.armed_at.timestamp() + ARM_MARGIN))
               for row in rows)


def _crossed(soak: Soak, row: ConditionalOrderRow, since: float, leg: str | None = None) -> float | None:
    """When a trade of the run first reached one of the order's triggers (``leg``: that one only)."""
    stop = row.stop_price if leg in (None, "stop") else None
    take = row.take_price if leg in (None, "take") else None
    for at, price in soak.trades.get(row.code, ()):
        if at < since:
            continue
        if (stop is not None and price <= stop) or (take is not None and price >= take):
            return at
    return None
