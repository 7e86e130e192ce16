"""The daily report as a notice (:class:`DailyReport`, outbox kind ``report``): one trading day's fills,
realised P/L, every holding's P/L and the total, and the conditional orders still armed, for one
user in one market. Built by :mod:`chatbot.service.reports`, which also shows it on demand (``/report``).

Money is :class:`~decimal.Decimal` in the report's ``currency`` (KRW for KRX, USD for US); the payload
writes it as a string so that no amount ever passes through a float."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

REALISED_DERIVED = "derived"  # fills × (fill price − KIS's average purchase price): an estimate, before costs
REALISED_KIS = "kis"  # KIS's own realised P/L figure (a source that has one sets this)


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def _opt_dec(value: Any) -> Decimal | None:
    return Decimal(str(value)) if value not in (None, "") else None


@dataclass(frozen=True, slots=True)
class ReportFill:
    """One order's executions on the day, summed: ``quantity`` at the average ``price``."""

    time: str  # HHMMSS, the order's time as KIS lists it
    side: str  # buy | sell
    code: str
    name: str
    quantity: int
    price: Decimal  # average fill price
    amount: Decimal  # quantity × price

    def payload(self) -> dict[str, Any]:
        return {"time": self.time, "side": self.side, "code": self.code, "name": self.name,
                "quantity": self.quantity, "price": str(self.price), "amount": str(self.amount)}

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> ReportFill:
        return cls(time=str(p.get("time") or ""), side="buy" if p.get("side") == "buy" else "sell",
                   code=str(p.get("code") or ""), name=str(p.get("name") or ""), quantity=int(p["quantity"]),
                   price=_dec(p.get("price")), amount=_dec(p.get("amount")))


@dataclass(frozen=True, slots=True)
class RealisedLine:
    """What the day's sales of one stock realised: ``None`` when its cost basis cannot be known."""

    code: str
    name: str
    quantity: int  # sold today
    sell_price: Decimal  # average
    cost_price: Decimal | None  # the average purchase price the sale is measured against
    profit_loss: Decimal | None

    def payload(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "quantity": self.quantity, "sell_price": str(self.sell_price),
                "cost_price": None if self.cost_price is None else str(self.cost_price),
                "profit_loss": None if self.profit_loss is None else str(self.profit_loss)}

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> RealisedLine:
        return cls(code=str(p.get("code") or ""), name=str(p.get("name") or ""), quantity=int(p["quantity"]),
                   sell_price=_dec(p.get("sell_price")), cost_price=_opt_dec(p.get("cost_price")),
                   profit_loss=_opt_dec(p.get("profit_loss")))


@dataclass(frozen=True, slots=True)
class HoldingLine:
    """A holding at the close, as KIS's balance values it."""

    code: str
    name: str
    quantity: int
    average_price: Decimal
    current_price: Decimal
    evaluation: Decimal
    profit_loss: Decimal
    profit_loss_rate: Decimal  # percent

    def payload(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "quantity": self.quantity,
                "average_price": str(self.average_price), "current_price": str(self.current_price),
                "evaluation": str(self.evaluation), "profit_loss": str(self.profit_loss),
                "profit_loss_rate": str(self.profit_loss_rate)}

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> HoldingLine:
        return cls(code=str(p.get("code") or ""), name=str(p.get("name") or ""), quantity=int(p["quantity"]),
                   average_price=_dec(p.get("average_price")), current_price=_dec(p.get("current_price")),
                   evaluation=_dec(p.get("evaluation")), profit_loss=_dec(p.get("profit_loss")),
                   profit_loss_rate=_dec(p.get("profit_loss_rate")))


@dataclass(frozen=True, slots=True)
class DailyReport:
    """One user's report of one trading day in one market (``KRX`` or ``US``)."""

    KIND: ClassVar[str] = "report"

    language: str
    market: str
    day: str  # YYYY-MM-DD, the market's trading day
    currency: str  # KRW | USD
    fills: tuple[ReportFill, ...]
    realised: tuple[RealisedLine, ...]
    realised_total: Decimal  # the sum of the lines whose P/L is known
    realised_source: str  # REALISED_DERIVED | REALISED_KIS
    holdings: tuple[HoldingLine, ...]
    purchase_total: Decimal
    evaluation_total: Decimal
    profit_loss_total: Decimal  # unrealised, every holding
    armed: tuple[str, ...] = ()  # the conditional orders still armed, one line each (see service.reports)
    mode: str = ""  # PAPER | VIRTUAL | REAL, for the badge

    @property
    def realised_unknown(self) -> tuple[RealisedLine, ...]:
        return tuple(line for line in self.realised if line.profit_loss is None)

    def payload(self) -> dict[str, Any]:
        return {"lang": self.language, "market": self.market, "day": self.day, "currency": self.currency,
                "fills": [f.payload() for f in self.fills], "realised": [r.payload() for r in self.realised],
                "realised_total": str(self.realised_total), "realised_source": self.realised_source,
                "holdings": [h.payload() for h in self.holdings], "purchase_total": str(self.purchase_total),
                "evaluation_total": str(self.evaluation_total), "profit_loss_total": str(self.profit_loss_total),
                "armed": list(self.armed), "mode": self.mode}

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> DailyReport:
        return cls(language=str(p.get("lang") or "ko"), market=str(p["market"]), day=str(p["day"]),
                   currency=str(p.get("currency") or "KRW"),
                   fills=tuple(ReportFill.from_payload(f) for f in p.get("fills") or ()),
                   realised=tuple(RealisedLine.from_payload(r) for r in p.get("realised") or ()),
                   realised_total=_dec(p.get("realised_total")),
                   realised_source=str(p.get("realised_source") or REALISED_DERIVED),
                   holdings=tuple(HoldingLine.from_payload(h) for h in p.get("holdings") or ()),
                   purchase_total=_dec(p.get("purchase_total")), evaluation_total=_dec(p.get("evaluation_total")),
                   profit_loss_total=_dec(p.get("profit_loss_total")),
                   armed=tuple(str(line) for line in p.get("armed") or ()), mode=str(p.get("mode") or ""))
