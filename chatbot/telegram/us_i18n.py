"""The bot's words for US stocks (merged into :data:`chatbot.telegram.i18n.MESSAGES`)."""

from __future__ import annotations

US_MESSAGES: dict[str, dict[str, str]] = {
    "us_session_regular": {"ko": "정규장", "en": "regular session"},
    "us_session_pre_market": {"ko": "프리마켓", "en": "pre-market"},
    "us_session_after_market": {"ko": "애프터마켓", "en": "after-market"},
    "us_session_daytime": {"ko": "주간거래", "en": "daytime session (주간거래)"},
    "us_session_closed": {"ko": "장 마감", "en": "closed"},
    "us_session_weekend": {"ko": "주말 휴장", "en": "closed (weekend)"},
    "us_session_holiday": {"ko": "휴장일", "en": "closed (holiday)"},
    "us_session_now": {"ko": "미국 시장: {session}", "en": "US market: {session}"},
    "us_session_next": {"ko": "미국 시장: {session} · 다음 정규장 {next_open} (한국시간)",
                        "en": "US market: {session} · next regular open {next_open} KST"},
    "us_day_range": {"ko": "시가 {open} · 고가 {high} · 저가 {low}", "en": "Open {open} · High {high} · Low {low}"},
    "us_volume": {"ko": "거래량 {volume} · 전일 종가 {base}", "en": "Volume {volume} · prev. close {base}"},
    "us_krw_estimate": {"ko": "원화 환산 약 {krw} (환율 {rate}원, 추정치)",
                        "en": "≈ {krw} at {rate} KRW/USD (estimate)"},
    "us_no_rate": {"ko": "원화 환산: 환율 정보 없음", "en": "KRW estimate: no exchange rate from KIS"},
    "us_not_tradable": {"ko": "⛔ KIS에서 지금 매매할 수 없는 종목입니다.", "en": "⛔ KIS does not trade this stock now."},
}
