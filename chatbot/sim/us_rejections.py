"""KIS-style answers for US orders the simulator refuses, per server flavour: (rt_cd, msg_cd, msg1).

From KIS_OVERSEAS.md §10: ``APBK0656`` (no such symbol, python-kis reads it on both hosts),
``APBK1507`` with its text (price under a cent), the text "주문구분 입력오류입니다." (an ``ORD_DVSN`` the
server does not offer) and ``APBK1664`` for an order outside US hours (python-kis's reading; the
code is disputed and configurable: ``SimulatorOptions.us_closed_msg_cd``). ``APBK0952`` is the
domestic real server's verified insufficient-funds code. Everything else is our choice in KIS's
style (as in :mod:`chatbot.sim.rejections`); in particular a revise/cancel of an order with nothing
left answers ``APBK0917``, not ``APBK0918`` (which python-kis takes as "retry as a daytime order").
"""

from __future__ import annotations

from typing import Final

from chatbot.kis import overseas_protocol as o
from chatbot.kis.protocol import Flavour

_REAL: Final[dict[str, tuple[str, str, str]]] = {
    "market_closed": ("7", o.APBK_MARKET_CLOSED, "해외주식 주문가능시간이 아닙니다."),
    "session_over": ("7", o.APBK_MARKET_CLOSED, "해당 주문구분의 주문가능시간이 아닙니다."),
    "reservation_closed": ("7", o.APBK_MARKET_CLOSED, "예약주문 접수시간이 아닙니다."),
    "unknown_symbol": ("7", o.APBK_NO_SUCH_SYMBOL, "해당종목정보가 없습니다."),
    "bad_exchange": ("7", "APBK1700", "해외거래소코드를 확인하여 주십시오."),
    "bad_division": ("7", "APBK0517", o.MSG_BAD_DIVISION),
    "bad_quantity": ("7", "APBK1626", "주문수량을 확인하여 주십시오."),
    "bad_price": ("7", "APBK1627", "주문단가를 확인하여 주십시오."),
    "below_cent": ("7", o.APBK_PRICE_BELOW_CENT, o.MSG_PRICE_BELOW_CENT),
    "off_tick": ("7", "APBK1680", "주식주문호가단위 오류입니다."),
    "insufficient_cash": ("7", "APBK0952", "주문가능금액을 초과 했습니다"),
    "insufficient_shares": ("7", "APBK0986", "주문가능수량을 초과하였습니다."),
    "nothing_to_cancel": ("7", "APBK0917", "정정/취소 가능한 주문이 없습니다."),
    "unknown_reservation": ("7", "APBK0917", "취소 가능한 예약주문이 없습니다."),
}
_VIRTUAL: Final[dict[str, tuple[str, str, str]]] = {
    "market_closed": ("1", o.APBK_MARKET_CLOSED, "모의투자 해외주식 주문가능시간이 아닙니다."),
    "session_over": ("1", o.APBK_MARKET_CLOSED, "모의투자 해당 주문구분의 주문가능시간이 아닙니다."),
    "reservation_closed": ("1", o.APBK_MARKET_CLOSED, "모의투자 예약주문 접수시간이 아닙니다."),
    "unknown_symbol": ("1", o.APBK_NO_SUCH_SYMBOL, "해당종목정보가 없습니다."),
    "bad_exchange": ("1", "40340000", "모의투자 해외거래소코드 오류입니다."),
    "bad_division": ("1", "40300000", o.MSG_BAD_DIVISION),
    "bad_quantity": ("1", "40310000", "모의투자 주문수량 오류입니다."),
    "bad_price": ("1", "40310000", "모의투자 주문가격 오류입니다."),
    "below_cent": ("1", o.APBK_PRICE_BELOW_CENT, o.MSG_PRICE_BELOW_CENT),
    "off_tick": ("1", "40030000", "모의투자 호가단위 오류입니다."),
    "insufficient_cash": ("1", "40250000", "모의투자 주문가능금액이 부족합니다."),
    "insufficient_shares": ("1", "40240000", "모의투자 주문가능수량을 초과하였습니다."),
    "nothing_to_cancel": ("1", "40330000", "모의투자 정정/취소할 수량이 없습니다."),
    "unknown_reservation": ("1", "40330000", "모의투자 취소할 예약주문이 없습니다."),
}
ORDER_OK: Final[dict[Flavour, dict[str, tuple[str, str]]]] = {
    "real": {kind: ("APBK0013", "주문 전송 완료 되었습니다.") for kind in ("buy", "sell", "revise", "cancel",
                                                                         "reserve", "reserve_cancel")},
    "virtual": {"buy": ("40600000", "모의투자 매수주문이 완료 되었습니다."),
                "sell": ("40610000", "모의투자 매도주문이 완료 되었습니다."),
                "revise": ("40620000", "모의투자 정정주문이 완료 되었습니다."),
                "cancel": ("40630000", "모의투자 취소주문이 완료 되었습니다."),
                "reserve": ("40640000", "모의투자 예약주문이 접수 되었습니다."),
                "reserve_cancel": ("40650000", "모의투자 예약주문이 취소 되었습니다.")},
}
# Why a reservation was not sent at the open (nprc_rson_text).
UNSENT_REASONS: Final[dict[str, str]] = {
    "insufficient_cash": "매수증거금 부족",
    "insufficient_shares": "매도가능수량 부족",
}


def us_rejection(flavour: Flavour, reason: str, closed_msg_cd: str = o.APBK_MARKET_CLOSED) -> tuple[str, str, str]:
    table = _REAL if flavour == "real" else _VIRTUAL
    rt_cd, msg_cd, msg1 = table.get(reason, table["bad_division"])
    if msg_cd == o.APBK_MARKET_CLOSED:
        msg_cd = closed_msg_cd
    return rt_cd, msg_cd, msg1
