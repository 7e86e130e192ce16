"""The embedded simulator's options, importable without the simulator (its server is aiohttp): the
bot's process builds them and hands them to the simulator's own process (:mod:`chatbot.sim.process`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from chatbot.kis import protocol as p


@dataclass(slots=True)
class SimulatorOptions:
    seed: int = 20240101
    starting_cash: int = 10_000_000
    tick_interval: float = 1.0  # seconds between market steps; 0 = only on demand (tests)
    enforce_token_issue_interval: bool = False  # EGW00133 on a second issuance within a minute
    refuse_inqr_dvsn_02: bool = False  # emulate the 2026-02-10 refusal of INQR_DVSN=02
    requests_per_second: dict[str, int] | None = None  # per flavour; default KIS's 20 / 2
    balance_page_size: int = 0  # 0 = KIS's (real 50, paper 20)
    daily_ccld_page_size: int = 0  # 0 = KIS's (real 100, paper 15)
    pingpong_interval: float = 10.0  # seconds between PINGPONG messages (KIS's interval is unverified)
    notice_layout: str = "auto"  # execution notices: "26", "23" (python-kis 2.1.6), or "auto" per connection
    ws_max_subscriptions: int = p.WS_MAX_SUBSCRIPTIONS  # per session; the next gets OPSP0008 MAX SUBSCRIBE OVER
    # US stocks (KIS_OVERSEAS.md)
    usd_starting_cash: Decimal = Decimal(10000)  # a paper account's dollars when it first trades US stocks
    krw_per_usd: Decimal = Decimal("1400.00")  # the fixed rate of every KRW valuation and quote
    us_always_open: bool = False  # every moment is a regular US session (tests); else America/New_York hours
    us_notice_layout: str = "auto"  # H0GSCNI0 notices: "25", "24" (portal), "21" (python-kis), or "auto"
    us_paper_nccs: bool = False  # answer VTTS3018R (KIS's portal says paper does not offer it)
    us_closed_msg_cd: str = "APBK1664"  # msg_cd of an order outside US hours (unverified)
    us_balance_page_size: int = 0  # 0 = KIS's (100)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values (the Decimals as text): what :meth:`from_json` takes back."""
        return {f.name: str(v) if isinstance(v := getattr(self, f.name), Decimal) else v
                for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SimulatorOptions:
        decimals = {f.name for f in dataclasses.fields(cls) if f.type == "Decimal"}
        values: dict[str, Any] = {k: Decimal(v) if k in decimals else v for k, v in data.items()}
        return cls(**values)
