"""What a listed instrument is: its code, names, market, kind and the master's flags."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

from chatbot.markets.money import Currency

Venue = Literal["KRX", "US"]
KRX_MARKETS: Final = frozenset({"KOSPI", "KOSDAQ", "KONEX"})
US_MARKETS: Final = frozenset({"NASDAQ", "NYSE", "AMEX"})


class Kind(StrEnum):
    """The instrument type, as the master files tell them apart (KIS_MASTER_FILES.md §7)."""

    STOCK = "S"  # common share (also foreign shares, depositary receipts)
    PREFERRED = "P"  # 우선주
    ETF = "F"
    ETN = "N"
    OTHER = "O"  # REITs, funds, beneficiary certificates, warrants, ELWs


# Lookup order among equally good matches: a common share before its preferred shares, ETFs and ETNs.
KIND_RANK: Final[dict[Kind, int]] = {Kind.STOCK: 0, Kind.PREFERRED: 1, Kind.OTHER: 2, Kind.ETF: 3, Kind.ETN: 4}


def venue_of(market: str) -> Venue:
    return "US" if market in US_MARKETS else "KRX"


@dataclass(frozen=True, slots=True)
class Symbol:
    code: str  # KRX short code (six characters, ETNs without their Q), or the US ticker as KIS writes it
    name_ko: str
    name_en: str  # empty where no English name is known
    market: str  # KOSPI, KOSDAQ, NASDAQ, NYSE, AMEX
    kind: Kind = Kind.STOCK
    halted: bool = False  # 거래정지 in the master
    administrative: bool = False  # 관리종목 in the master
    base_price: int = 0  # 기준가 in the master (KRW, usually the previous close); 0 unknown
    weight: int = 0  # prominence for ranking: previous-day market cap (억 KRW) from the master

    def display_name(self, lang: str = "ko") -> str:
        return (self.name_en or self.name_ko) if lang == "en" else (self.name_ko or self.name_en)

    @property
    def venue(self) -> Venue:
        return venue_of(self.market)

    @property
    def currency(self) -> Currency:
        return Currency.USD if self.venue == "US" else Currency.KRW

    @property
    def is_etn(self) -> bool:
        return self.kind is Kind.ETN

    @property
    def is_fund(self) -> bool:
        """An ETF or ETN: on KRX it ticks by the fund table at every price."""
        return self.kind in (Kind.ETF, Kind.ETN)


@dataclass(frozen=True, slots=True)
class Lookup:
    """Result of a lookup: ``symbol`` when resolved, otherwise ``candidates`` (possibly empty), best first."""

    symbol: Symbol | None
    candidates: tuple[Symbol, ...] = ()
