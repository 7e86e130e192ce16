"""KIS-style answers for orders the paper exchange refuses, per server flavour.

Verified codes (KIS_API.md §6.2): APBK0952, APBK0656, APBK0918 (real); 40250000, 40030000,
40310000 (paper, third-party). The others are our choice in the KIS style (unverified): the real
server's codes for a tick-size error, an over-sell, a price outside the limits, a bad quantity and
an order on a halted symbol (거래정지) are not documented anywhere we could read.
"""

from __future__ import annotations

from typing import Final

from chatbot.kis.protocol import EXCHANGE_MISMATCH_MSG_CD, Flavour

# reason -> (rt_cd, msg_cd, msg1)
_REAL: Final[dict[str, tuple[str, str, str]]] = {
    "insufficient_cash": ("7", "APBK0952", "주문가능금액을 초과 했습니다"),
    "insufficient_shares": ("7", "APBK0986", "주문가능수량을 초과하였습니다."),
    "off_tick": ("7", "APBK1680", "주식주문호가단위 오류입니다."),
    "out_of_limits": ("7", "APBK1681", "주문가격이 상하한가 범위를 벗어났습니다."),
    "bad_quantity": ("7", "APBK1626", "주문수량을 확인하여 주십시오."),
    "bad_price": ("7", "APBK1627", "주문단가를 확인하여 주십시오."),
    "bad_division": ("7", "APBK0517", "주문구분을 확인하여 주십시오."),
    "bad_side": ("7", "APBK0517", "주문구분을 확인하여 주십시오."),
    "unknown_code": ("7", "APBK0656", "해당종목정보가 없습니다."),
    "halted": ("7", "APBK1682", "매매거래정지 종목입니다."),
    "nothing_to_cancel": ("7", "APBK0918", "정정/취소할 수량이 없습니다."),
    "bad_exchange": ("7", "APBK1700", "거래소 구분을 확인하여 주십시오."),
    # msg1 is the detail: KIS's "취소주문 불가합니다. 원주문 거래소[NXT] 취소주문 거래소[KRX]" (protocol)
    "exchange_mismatch": ("7", EXCHANGE_MISMATCH_MSG_CD, ""),
}
_VIRTUAL: Final[dict[str, tuple[str, str, str]]] = {
    "insufficient_cash": ("1", "40250000", "모의투자 주문가능금액이 부족합니다."),
    "insufficient_shares": ("1", "40240000", "모의투자 주문가능수량을 초과하였습니다."),
    "off_tick": ("1", "40030000", "모의투자 호가단위 오류입니다."),
    "out_of_limits": ("1", "40320000", "모의투자 상하한가 범위를 벗어난 주문입니다."),
    "bad_quantity": ("1", "40310000", "모의투자 주문수량 오류입니다."),
    "bad_price": ("1", "40310000", "모의투자 주문가격 오류입니다."),
    "bad_division": ("1", "40300000", "모의투자 주문구분 오류입니다."),
    "bad_side": ("1", "40300000", "모의투자 주문구분 오류입니다."),
    "unknown_code": ("1", "40200000", "모의투자 종목코드 오류입니다."),
    "halted": ("1", "40210000", "모의투자 매매거래정지 종목입니다."),
    "nothing_to_cancel": ("1", "40330000", "모의투자 정정/취소할 수량이 없습니다."),
    "bad_exchange": ("1", "40340000", "모의투자는 KRX만 주문 가능합니다."),
    "exchange_mismatch": ("1", "40340000", "모의투자는 KRX만 주문 가능합니다."),  # paper orders are all KRX
}
ORDER_OK: Final[dict[Flavour, dict[str, tuple[str, str]]]] = {
    "real": {"buy": ("APBK0013", "주문 전송 완료 되었습니다."), "sell": ("APBK0013", "주문 전송 완료 되었습니다."),
             "revise": ("APBK0013", "주문 전송 완료 되었습니다."), "cancel": ("APBK0013", "주문 전송 완료 되었습니다.")},
    "virtual": {"buy": ("40600000", "모의투자 매수주문이 완료 되었습니다."),
                "sell": ("40610000", "모의투자 매도주문이 완료 되었습니다."),
                "revise": ("40620000", "모의투자 정정주문이 완료 되었습니다."),
                "cancel": ("40630000", "모의투자 취소주문이 완료 되었습니다.")},
}


def rejection(flavour: Flavour, reason: str, detail: str = "") -> tuple[str, str, str]:
    table = _REAL if flavour == "real" else _VIRTUAL
    rt_cd, msg_cd, msg1 = table.get(reason, table["bad_division"])
    return rt_cd, msg_cd, msg1 or detail
