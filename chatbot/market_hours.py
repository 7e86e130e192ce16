"""KRX sessions and holidays now live in :mod:`chatbot.markets.krx_hours` (the KRX market profile's
calendar); these names stay importable from here."""

from chatbot.markets import krx_hours as _krx

KST = _krx.KST
OPEN = _krx.OPEN
SESSIONS = _krx.SESSIONS
MarketCalendar = _krx.MarketCalendar
MarketState = _krx.MarketState
Phase = _krx.Phase
holiday_name = _krx.holiday_name
is_trading_day = _krx.is_trading_day
parse_windows = _krx.parse_windows
