"""What the US broker (the service's only way to KIS for US stocks) sends, request by request, pinned
to KIS_OVERSEAS.md: a snapshot of the day's orders (inquire-ccnl, §6.3, paper with its fixed filters)
before every order, revision and cancellation, then the order TR itself (§3, §4); open orders by
inquire-nccs on the real host and inquire-ccnl on paper (§6.2); balance per exchange on paper (§5.1)."""

from __future__ import annotations

import pytest

from chatbot.broker import OpenOrder, OrderSide
from chatbot.kis.overseas_protocol import UsExchange
from chatbot.kis.us_broker import UsBroker
from chatbot.markets.money import Money
from tests.test_overseas_protocol import ACCT, make

PATH = "/uapi/overseas-stock/v1/trading/"


def ccnl(flavour: str) -> dict[str, str]:
    if flavour == "virtual":  # §6.3: the paper server takes only the "everything" filters
        filters = {"PDNO": "", "SLL_BUY_DVSN": "00", "CCLD_NCCS_DVSN": "00", "OVRS_EXCG_CD": ""}
    else:
        filters = {"PDNO": "AAPL", "SLL_BUY_DVSN": "02", "CCLD_NCCS_DVSN": "00", "OVRS_EXCG_CD": "NASD"}
    return {**ACCT, **filters, "SORT_SQN": "AS", "ORD_DT": "", "ORD_GNO_BRNO": "", "ODNO": "",
            "CTX_AREA_FK200": "", "CTX_AREA_NK200": ""}


@pytest.mark.parametrize(("flavour", "ccnl_tr", "buy", "rvsecncl"), [
    ("real", "TTTS3035R", "TTTT1002U", "TTTT1004U"), ("virtual", "VTTS3035R", "VTTT1002U", "VTTT1004U")])
async def test_broker_orders_are_a_snapshot_then_one_order(flavour: str, ccnl_tr: str, buy: str,
                                                           rvsecncl: str) -> None:
    client, rec = make(flavour)
    broker = UsBroker(client, exchange_of=lambda s: UsExchange.NASDAQ if s == "AAPL" else None)
    await broker.place(OrderSide.BUY, "AAPL", 3, Money.usd("190.50"))
    order = OpenOrder(order_no="0030000001", branch="06010", original_order_no="", symbol="AAPL", name="애플",
                      side=OrderSide.BUY, quantity=3, price=Money.usd("190.50"), filled_quantity=0,
                      cancellable_quantity=3, time="233001", exchange="NASD")
    await broker.revise(order, Money.usd(191))
    await broker.cancel(order)
    sent = [(r["method"], r["path"].removeprefix(PATH), r["tr_id"]) for r in rec.requests]
    assert sent == [("GET", "inquire-ccnl", ccnl_tr), ("POST", "order", buy),
                    ("GET", "inquire-ccnl", ccnl_tr), ("POST", "order-rvsecncl", rvsecncl),
                    ("GET", "inquire-ccnl", ccnl_tr), ("POST", "order-rvsecncl", rvsecncl)]
    snapshot = {k: v for k, v in rec.requests[0]["params"].items() if k not in ("ORD_STRT_DT", "ORD_END_DT")}
    assert snapshot == ccnl(flavour)
    start, end = rec.requests[0]["params"]["ORD_STRT_DT"], rec.requests[0]["params"]["ORD_END_DT"]
    assert len(start) == len(end) == 8 and start <= end  # New York's date (and the day before) to KST's
    assert rec.requests[1]["body"]["OVRS_ORD_UNPR"] == "190.50" and rec.requests[1]["body"]["ORD_DVSN"] == "00"
    assert (rec.requests[3]["body"]["RVSE_CNCL_DVSN_CD"], rec.requests[3]["body"]["OVRS_ORD_UNPR"],
            rec.requests[3]["body"]["ORD_QTY"]) == ("01", "191.00", "3")
    assert (rec.requests[5]["body"]["RVSE_CNCL_DVSN_CD"], rec.requests[5]["body"]["ORD_QTY"]) == ("02", "0")


@pytest.mark.parametrize(("flavour", "expected"), [
    ("real", [("inquire-nccs", "TTTS3018R", "NASD"), ("inquire-balance", "TTTS3012R", "NASD"),
              ("inquire-present-balance", "CTRP6504R", None)]),
    ("virtual", [("inquire-ccnl", "VTTS3035R", ""), ("inquire-balance", "VTTS3012R", "NASD"),
                 ("inquire-balance", "VTTS3012R", "NYSE"), ("inquire-balance", "VTTS3012R", "AMEX"),
                 ("inquire-present-balance", "VTRP6504R", None),
                 ("inquire-psamount", "VTTS3007R", "NASD")]),  # the rate of output3's KRW cash (§5.2)
])
async def test_broker_open_orders_and_balance(flavour: str, expected: list[tuple[str, str, str | None]]) -> None:
    client, rec = make(flavour)
    broker = UsBroker(client)
    await broker.open_orders()
    balance = await broker.balance()
    assert balance.currency.value == "USD"
    assert [(r["path"].removeprefix(PATH), r["tr_id"], r["params"].get("OVRS_EXCG_CD")) for r in rec.requests] \
        == expected
    (present,) = [r["params"] for r in rec.requests if r["path"].endswith("inquire-present-balance")]
    assert present == {**ACCT, "WCRC_FRCR_DVSN_CD": "02", "NATN_CD": "840", "TR_MKET_CD": "00", "INQR_DVSN_CD": "00"}
