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

US_MESSAGES.update({
    "us_type_LIMIT": {"ko": "지정가", "en": "limit"},
    "us_type_LOO": {"ko": "LOO 장개시지정가", "en": "LOO (limit on open)"},
    "us_type_LOC": {"ko": "LOC 장마감지정가", "en": "LOC (limit on close)"},
    "us_type_MOO": {"ko": "MOO 장개시시장가", "en": "MOO (market on open)"},
    "us_type_MOC": {"ko": "MOC 장마감시장가", "en": "MOC (market on close)"},
    "us_type_MOO_or_MOC": {"ko": "시장가 (MOO 또는 MOC)", "en": "at market (MOO or MOC)"},
    "us_card_qty": {"ko": "수량 {qty}주 · {price} (현재가 {now})", "en": "Qty {qty} · {price} (now {now})"},
    "us_card_cancel": {"ko": "취소할 주문 <code>{order_no}</code> · 남은 {qty}주 @ {price}",
                       "en": "Order to cancel <code>{order_no}</code> · {qty} left @ {price}"},
    "us_card_revise": {"ko": "정정할 주문 <code>{order_no}</code>\n가격 {old} → <b>{new}</b> · 수량 {qty}주\n"
                             "체결된 수량은 그대로이고 남은 수량만 정정됩니다. 새 주문번호가 생깁니다.",
                       "en": "Order to revise <code>{order_no}</code>\nPrice {old} → <b>{new}</b> · qty {qty}\n"
                             "What has filled stays filled; only what is left is revised, under a new order number."},
    "us_card_amount": {"ko": "예상 금액 {amount}{krw}", "en": "Estimated amount {amount}{krw}"},
    "us_card_krw": {"ko": " (약 {krw}, 추정)", "en": " (≈ {krw}, estimate)"},
    "us_card_fees": {"ko": "예상 수수료·제비용 {fees}", "en": "Est. commission and fees {fees}"},
    "us_card_total_buy": {"ko": "예상 결제 금액 <b>{total}</b>{krw}", "en": "Estimated cost <b>{total}</b>{krw}"},
    "us_card_total_sell": {"ko": "예상 수령 금액 <b>{total}</b>{krw}", "en": "Estimated proceeds <b>{total}</b>{krw}"},
    "us_card_rate": {"ko": "환율 {rate}원/달러 (KIS 기준, 원화는 추정치)",
                     "en": "Rate {rate} KRW/USD (KIS's; KRW figures are estimates)"},
    "us_meets_now": {"ko": "체결 시점: 지금 ({session})", "en": "Meets the market now ({session})"},
    "us_meets_open": {"ko": "체결 시점: 다음 정규장 시가 ({next_open} 한국시간)",
                      "en": "Meets the next regular open ({next_open} KST)"},
    "us_meets_close": {"ko": "체결 시점: 정규장 종가", "en": "Meets the regular close"},
    "us_meets_close_at": {"ko": "체결 시점: 정규장 종가 ({next_close} 한국시간)",
                          "en": "Meets the regular close ({next_close} KST)"},
    "us_auction_over_open": {"ko": "{type} 주문은 정규장 개장 전까지만 받습니다 (오늘 개장은 지났습니다). "
                                   "다음 정규장 개장은 {next_open} (한국시간)입니다. 아무것도 전송하지 않았습니다.",
                             "en": "{type} orders are taken only before the regular open, and today's has passed. "
                                   "The next regular open is {next_open} KST. Nothing was sent."},
    "us_auction_over_close": {"ko": "{type} 주문은 정규장 마감 전까지만 받습니다 (오늘 마감은 지났습니다). "
                                    "다음 정규장 종가는 {next_close} (한국시간)이며, 그 전 프리마켓부터 주문할 수 "
                                    "있습니다. 아무것도 전송하지 않았습니다.",
                              "en": "{type} orders are taken only before the regular close, and today's has passed. "
                                    "The next regular close is {next_close} KST; order from the pre-market before "
                                    "it. Nothing was sent."},
    "us_bad_price": {"ko": "가격 '{value}'을(를) 이해하지 못했습니다. 예: /buy AAPL 3 190.50",
                     "en": "Could not read the price '{value}'. Example: /buy AAPL 3 190.50"},
    "us_price_too_small": {"ko": "미국 주식 가격은 $0.01 이상이어야 합니다 ('{value}').",
                           "en": "A US price must be at least $0.01 ('{value}')."},
    "us_off_tick": {"ko": "{price}은(는) 호가 단위({tick})에 맞지 않습니다. {below} 또는 {above}로 주문하세요.",
                    "en": "{price} is not on the US tick ({tick}). Use {below} or {above}."},
    "us_out_of_limits": {"ko": "{price}은(는) 오늘 주문 가능 범위({lower}–{upper}) 밖입니다.",
                         "en": "{price} is outside today's order range ({lower}–{upper})."},
    "us_no_market_order": {"ko": "KIS는 미국 주식 시장가 주문을 받지 않습니다. 가격을 적거나(예: /buy {code} 1 190.50) "
                                 "매도는 moo/moc 를 쓰세요.",
                           "en": "KIS takes no market orders for US stocks. Give a limit price "
                                 "(e.g. /buy {code} 1 190.50), or moo/moc for a sell."},
    "us_price_needed": {"ko": "미국 주식은 지정가로만 주문합니다. 가격을 적어 주세요. 예: /buy {code} 1 190.50",
                        "en": "US orders need a limit price. Example: /buy {code} 1 190.50"},
    "us_no_price_for_type": {"ko": "{type} 주문에는 가격을 적지 않습니다.", "en": "A {type} order takes no price."},
    "us_sell_only": {"ko": "{type} 주문은 매도에만 쓸 수 있습니다 (KIS). 매수는 loo/loc 지정가를 쓰세요.",
                     "en": "KIS offers {type} for sells only; for a buy use loo/loc with a price."},
    "us_type_not_offered": {"ko": "{type} 주문은 이 봇에서 받지 않습니다.", "en": "This bot does not take {type} orders."},
    "us_paper_limit_only": {"ko": "모의투자는 미국 주식 지정가 주문만 지원합니다. {type} 주문은 실전 계좌에서만 됩니다 "
                                  "(KIS 모의투자 미지원). 아무것도 전송하지 않았습니다.",
                            "en": "Paper trading takes US limit orders only: {type} orders exist on real accounts "
                                  "alone (KIS's paper server does not offer them). Nothing was sent."},
    "us_market_closed": {"ko": "지금은 미국 주식 주문을 받지 않습니다: 정규 주문은 프리마켓~애프터마켓, 예약 주문은 "
                               "평일 10:00~개장 10분 전(한국시간, 지정가·매도 MOO)에만 접수됩니다. "
                               "다음 정규장 {next_open} (한국시간).",
                         "en": "US orders are not taken now: regular orders from pre-market to after-market, "
                               "reservation orders on Korean weekdays from 10:00 KST until ten minutes before the "
                               "open (limit, or MOO for a sell). Next regular open {next_open} KST."},
    "us_insufficient_cash": {"ko": "주문 가능 금액이 부족합니다. 최대 {max_quantity:,}주 (주문 가능 {cash}).",
                             "en": "Not enough buying power: at most {max_quantity:,} shares (orderable {cash})."},
    "us_revise_unpriced": {"ko": "주문 {order_no}은(는) 가격 없는 {type} 주문이라 가격을 정정할 수 없습니다 (KIS는 주문 "
                                 "종류를 바꾸지 않습니다). /cancel {order_no} 로 취소한 뒤 새로 주문하세요. 아무것도 "
                                 "전송하지 않았습니다.",
                           "en": "Order {order_no} is an unpriced {type} order: it has no price to revise (KIS does not "
                                 "change an order's type). Cancel it with /cancel {order_no} and place a new one. "
                                 "Nothing was sent."},
    "us_revise_nothing_changes": {"ko": "주문 {order_no}은(는) 이미 {price}입니다. 바꿀 것이 없습니다.",
                                  "en": "Order {order_no} is already at {price}; nothing to change."},
    "us_balance_title": {"ko": "\n<b>🇺🇸 미국 주식</b>", "en": "\n<b>🇺🇸 US stocks</b>"},
    "us_no_holdings": {"ko": "보유 미국 주식이 없습니다.", "en": "No US holdings."},
    "us_holding": {"ko": "\n<b>{name}</b> {code} · {exchange}\n  {qty}주 · 평균 {avg} · 현재 {last}\n"
                         "  평가 {value} · 손익 {mark} {pl} ({rate})",
                   "en": "\n<b>{name}</b> {code} · {exchange}\n  {qty} sh · avg {avg} · now {last}\n"
                         "  value {value} · P/L {mark} {pl} ({rate})"},
    "us_balance_cash": {"ko": "달러 예수금 {cash}", "en": "Dollar cash {cash}"},
    "us_balance_stocks": {"ko": "미국 주식 평가 {value} · 손익 {pl}", "en": "US stocks {value} · P/L {pl}"},
    "us_balance_total": {"ko": "미국 계좌 합계 <b>{total}</b>{krw}", "en": "US total <b>{total}</b>{krw}"},
    "us_balance_unavailable": {"ko": "미국 주식 잔고를 지금 불러오지 못했습니다. 잠시 뒤 다시 시도하세요.",
                               "en": "The US balance could not be loaded now; try again shortly."},
    "us_balance_combined": {"ko": "국내+미국 총 평가 약 <b>{total}</b> (원화 환산 추정)",
                            "en": "Korea + US total ≈ <b>{total}</b> (KRW estimate)"},
    "us_revise_prompt": {"ko": "🇺🇸 주문 <code>{order_no}</code> ({name}, 잔량 {remaining:,}주 @ {price}) 정정: 새 가격을 "
                               "넣어 보내세요. 예: /modify {order_no} {example}",
                         "en": "🇺🇸 Order <code>{order_no}</code> ({name}, {remaining:,} left @ {price}): send the new "
                               "price. Example: /modify {order_no} {example}"},
    "us_chart_caption": {"ko": "🇺🇸 {name} ({code}) {period} · 최근 {bars}개 · 종가 {close}",
                         "en": "🇺🇸 {name} ({code}) {period} · last {bars} bars · close {close}"},
    "us_status": {"ko": "미국 시장 🇺🇸: {session}{extra} · 다음 정규장 {next_open} (한국시간)",
                  "en": "US market 🇺🇸: {session}{extra} · next regular open {next_open} KST"},
    "us_early_close": {"ko": "조기 폐장 13:00 ET ({reason})", "en": "early close 13:00 ET ({reason})"},
    "us_alert_set": {"ko": "🔔 알림 #{id} · {name} ({code}) 🇺🇸 {condition} (현재 {price}){repeat}",
                     "en": "🔔 Alert #{id} · {name} ({code}) 🇺🇸 {condition} (now {price}){repeat}"},
    "us_push_alert": {"ko": "🔔 <b>{name}</b> ({code}) 🇺🇸 {price} — {condition} 도달 ({time} 한국시간)",
                      "en": "🔔 <b>{name}</b> ({code}) 🇺🇸 {price} — reached {condition} ({time} KST)"},
    "us_alert_off_tick": {"ko": "{price}은(는) 호가 단위({tick})에 맞지 않아 알림을 설정하지 않았습니다. "
                                "{below} 또는 {above}(으)로 설정하세요.",
                          "en": "{price} is not on the US tick ({tick}): no alert was set. Set it at {below} or {above}."},
    "us_alert_already_crossed": {"ko": "현재가 {price}이(가) 이미 {threshold}을(를) 넘어섰습니다.",
                                 "en": "The price ({price}) is already past {threshold}."},
    "us_push_fill": {"ko": "✅ <b>체결</b> 🇺🇸: {name} ({code}) {side} {quantity:,}주 @ {price} (주문 {order_no})",
                     "en": "✅ <b>Filled</b> 🇺🇸: {name} ({code}), {side} {quantity:,} @ {price} (order {order_no})"},
    "us_commands": {"ko": "🇺🇸 미국 주식: /price AAPL · /price 애플 — 달러 시세\n"
                          "/buy AAPL 3 190.50 — 지정가 매수 · /sell TSLA 1 moc — 장마감 (실전 계좌만)\n"
                          "/alert AAPL 이상 200 · /chart AAPL · /orders · /balance 에 함께 표시",
                    "en": "🇺🇸 US stocks: /price AAPL — quote in dollars\n"
                          "/buy AAPL 3 190.50 — limit buy · /sell TSLA 1 moc — at the close (real accounts)\n"
                          "/alert AAPL above 200 · /chart AAPL · shown in /orders and /balance too"},
    "us_meets_reservation": {"ko": "⏰ 예약 주문: 다음 정규장 개장 {next_open} (한국시간)에 전송됩니다. 미체결분은 그날 장 "
                                   "마감 뒤 취소됩니다. 그때까지 /orders에 보이고 /cancel로 취소할 수 있습니다.",
                             "en": "⏰ Reservation order: sent at the next regular open, {next_open} KST; what is unfilled "
                                   "is cancelled after that day's close. Until then /orders lists it and /cancel "
                                   "takes it back."},
    "us_card_title_reserve": {"ko": "<b>예약 주문 확인</b> {badge}", "en": "<b>Confirm reservation order</b> {badge}"},
    "us_reserved_summary": {"ko": "⏰ 예약 주문 (번호는 예약번호) · {next_open} (한국시간) 개장 때 전송",
                            "en": "⏰ Reservation order (the number is the reservation's) · sent at the {next_open} KST open"},
})

# Conditional orders on US stocks (/stop, /tp, /trail, /bracket, /stops): prices shown in dollars.
US_MESSAGES.update({
    "us_commands_conditional": {"ko": "/stop AAPL 3 180 [179.50] — 손절 (지정가 없으면 시장성 지정가) · /trail TSLA 1 5% · "
                                      "/bracket NVDA 2 120 150",
                                "en": "/stop AAPL 3 180 [179.50] — stop-loss (no limit: a marketable limit) · "
                                      "/trail TSLA 1 5% · /bracket NVDA 2 120 150"},
    "us_cond_implausible": {"ko": "{price}은(는) 현재가에서 너무 멉니다 ({low}~{high} 사이로 정하세요).",
                            "en": "{price} is too far from the price now (keep it within {low}–{high})."},
    "us_cond_would_fire_now": {"ko": "현재가 {price}이(가) 이미 발동가 {trigger}에 닿아 있어 걸자마자 발동됩니다. "
                                     "조건주문을 걸지 않았습니다. 지금 팔려면 /sell 을 쓰세요.",
                               "en": "The price now ({price}) is already at or past the trigger {trigger}: it "
                                     "would fire at once, so nothing was set. To sell now, use /sell."},
    "us_cond_limit_needed": {"ko": "미국 주식은 시장가 주문이 없습니다: {code} 조건주문에는 지정가를 함께 주세요 "
                                   "(예: /stop {code} 1 180 179.50).",
                             "en": "KIS takes no US market order: give {code}'s conditional order a limit price "
                                   "(e.g. /stop {code} 1 180 179.50)."},
    "us_cond_bracket_order": {"ko": "손절가({stop})는 익절가({take})보다 낮아야 합니다.",
                              "en": "The stop ({stop}) must be below the take-profit ({take})."},
    "us_cond_at_limit": {"ko": "지정가 {limit} 매도", "en": "sell at limit {limit}"},
    "us_cond_at_marketable": {"ko": "시장성 지정가 {limit} 매도 (발동가 −{percent}%, 체결가가 더 낮으면 그 가격 "
                                    "−{percent}%)",
                              "en": "sell at a marketable limit {limit} (trigger −{percent}%; the crossing trade "
                                    "−{percent}% if lower)"},
    "us_cond_at_marketable_later": {"ko": "시장성 지정가 매도 (발동가와 체결가 중 낮은 값 −{percent}%, 틱 단위 내림)",
                                    "en": "sell at a marketable limit (the lower of trigger and trade −{percent}%, "
                                          "down to the tick)"},
    "us_cond_at_marketable_short": {"ko": "시장성 지정가 매도", "en": "sell at a marketable limit"},
    "us_cond_when_stop": {"ko": "체결가 ≤ {price}", "en": "a trade at or below {price}"},
    "us_cond_when_take": {"ko": "체결가 ≥ {price}", "en": "a trade at or above {price}"},
    "us_cond_when_trail": {"ko": "고점 대비 -{percent}% (지금 {price}, 고점이 오르면 따라 오름)",
                           "en": "{percent}% below the high (now {price}; rises with the high)"},
    "us_cond_card_body": {"ko": "🇺🇸 수량 {quantity:,}주 (매도 가능 {held:,}주, 다른 조건주문 {committed:,}주)\n"
                                "발동: {when}\n보낼 주문: {what}\n현재가 {price}\n"
                                "미국 정규장(뉴욕 시간) 체결로만 발동 · 취소하거나 {expires} 만료까지 유지",
                          "en": "🇺🇸 Qty {quantity:,} (sellable {held:,}, in other conditional orders {committed:,})\n"
                                "Fires on: {when}\nWill send: {what}\nPrice now {price}\n"
                                "Fires only on US regular-session trades (New York) · armed until cancelled or "
                                "{expires}"},
    "us_push_cond_triggered": {"ko": "⚡ <b>조건주문 #{id} 발동</b>: 🇺🇸 {name} ({code}) {price} 체결 ({time} 한국시간) "
                                     "— 발동가 {trigger}. {quantity:,}주 {what} 전송 중",
                               "en": "⚡ <b>Conditional order #{id} triggered</b>: 🇺🇸 {name} ({code}) traded {price} "
                                     "({time} KST) — trigger {trigger}. Sending: {what}, {quantity:,}"},
})

US_MESSAGES.update({  # pending reservation orders in /orders and /cancel
    "us_reservation_line": {"ko": "⏰ 예약 <code>{no}</code> {exchange}\n  {side} {name} ({code}) {qty}주 @ {price} · "
                                  "{sent_at} (한국시간) 개장 때 전송",
                            "en": "⏰ Reservation <code>{no}</code> {exchange}\n  {side} {name} ({code}) {qty} @ {price} · "
                                  "sent at the {sent_at} KST open"},
    "us_reservation_button": {"ko": "예약취소 {no} · {code} {qty}", "en": "Cancel reservation {no} · {code} {qty}"},
    "us_card_title_cancel_reservation": {"ko": "<b>예약 주문 취소 확인</b> {badge}",
                                         "en": "<b>Confirm reservation cancel</b> {badge}"},
    "us_card_cancel_reservation": {"ko": "취소할 예약 주문 <code>{order_no}</code> · {qty}주 @ {price} · "
                                         "{next_open} (한국시간) 개장 때 전송 예정",
                                   "en": "Reservation to cancel <code>{order_no}</code> · {qty} @ {price} · "
                                         "due to be sent at the {next_open} KST open"},
})

US_MESSAGES.update({  # /orders when KIS's US queries fail: the domestic part still stands
    "us_orders_unavailable": {"ko": "🇺🇸 미국 주문을 지금 불러오지 못했습니다 (KIS 응답 없음). 잠시 뒤 다시 시도하세요.",
                              "en": "🇺🇸 US orders could not be loaded now (KIS did not answer); try again shortly."},
})

US_MESSAGES.update({  # order sanity: limits and alerts far from the price, won amounts, halted stocks
    "us_limit_looks_like_won": {"ko": "⚠️ 지정가 {price}은(는) 현재가 {now}에서 너무 멉니다. 원화 금액을 달러로 "
                                      "입력하셨나요? {won}은(는) 약 {usd}입니다 (환율 {rate}원). 미국 주식 가격은 달러로 "
                                      "적습니다: 이 주문은 {low}~{high} 사이로 정하세요. 주문하지 않았습니다.",
                                "en": "⚠️ The limit {price} is far from the price now ({now}). Did you type a won "
                                      "amount as dollars? {won} is about {usd} (at {rate} KRW/USD). US prices are in "
                                      "dollars: keep this order within {low}–{high}. Nothing was sent."},
    "us_limit_far_buy": {"ko": "⚠️ 매수 지정가 {price}은(는) 현재가 {now}보다 {percent}% 넘게 높습니다: 그 가격까지 "
                               "어떤 매도호가에도 바로 체결되어 가격 보호가 없습니다. 오타가 아닌지 확인하고 {low}~{high} "
                               "사이로 정하세요. 주문하지 않았습니다.",
                         "en": "⚠️ The buy limit {price} is more than {percent}% above the price now ({now}): it "
                               "would fill at once at any ask up to it, with no price protection. Check for a typo "
                               "and keep it within {low}–{high}. Nothing was sent."},
    "us_limit_far_sell": {"ko": "⚠️ 매도 지정가 {price}은(는) 현재가 {now}보다 {percent}% 넘게 낮습니다: 그 가격까지 "
                                "어떤 매수호가에도 바로 체결되어 가격 보호가 없습니다. 오타가 아닌지 확인하고 {low}~{high} "
                                "사이로 정하세요. 주문하지 않았습니다.",
                          "en": "⚠️ The sell limit {price} is more than {percent}% below the price now ({now}): it "
                                "would fill at once at any bid down to it, with no price protection. Check for a "
                                "typo and keep it within {low}–{high}. Nothing was sent."},
    "us_limit_far_resting": {"ko": "⚠️ 지정가 {price}은(는) 현재가 {now}에서 너무 멀어 오늘 체결될 수 없습니다 (미국 "
                                   "주식 주문은 당일 주문입니다). 오타가 아닌지 확인하고 {low}~{high} 사이로 정하세요. "
                                   "주문하지 않았습니다.",
                             "en": "⚠️ The limit {price} is too far from the price now ({now}) to fill today (a US "
                                   "order is a day order). Check for a typo and keep it within {low}–{high}. "
                                   "Nothing was sent."},
    "us_alert_looks_like_won": {"ko": "⚠️ {price}은(는) 현재가 {now}에서 너무 멉니다. 원화 금액을 달러로 입력하셨나요? "
                                      "{won}은(는) 약 {usd}입니다 (환율 {rate}원). 알림은 {low}~{high} 사이로 정하세요. "
                                      "알림을 설정하지 않았습니다.",
                                "en": "⚠️ {price} is far from the price now ({now}). Did you type a won amount as "
                                      "dollars? {won} is about {usd} (at {rate} KRW/USD). Keep the alert within "
                                      "{low}–{high}. No alert was set."},
    "us_alert_implausible": {"ko": "⚠️ {price}은(는) 현재가 {now}에서 너무 멉니다 (반값~두 배 밖). 알림은 {low}~{high} "
                                   "사이로 정하세요. 알림을 설정하지 않았습니다.",
                             "en": "⚠️ {price} is too far from the price now ({now}: beyond half or double). Keep the "
                                   "alert within {low}–{high}. No alert was set."},
    "us_price_in_won": {"ko": "미국 주식 가격은 달러로 적습니다 ('{value}'은(는) 원화입니다). 예: 190.50 또는 $190.50",
                        "en": "US prices are in dollars ('{value}' is in won). Example: 190.50 or $190.50"},
    "us_alert_bad_price": {"ko": "가격 '{value}'을(를) 이해하지 못했습니다. 미국 주식 가격은 달러로 적습니다. "
                                 "예: /alert AAPL 이상 200.50",
                           "en": "Could not read the price '{value}'. US prices are in dollars. "
                                 "Example: /alert AAPL above 200.50"},
    "us_revise_bad_price": {"ko": "새 가격 '{value}'을(를) 이해하지 못했습니다. 미국 주식 가격은 달러로 적습니다. "
                                  "예: /modify {order_no} 190.50",
                            "en": "Could not read the new price '{value}'. US prices are in dollars. "
                                  "Example: /modify {order_no} 190.50"},
    "us_revise_insufficient_cash": {"ko": "주문 가능 금액이 부족합니다: 정정하면 주문 {order_no}에 약 {extra}이(가) 더 "
                                          "묶이는데 주문 가능 금액은 {cash}입니다. 이 가격으로는 최대 {max_quantity:,}주까지 "
                                          "정정할 수 있습니다. 아무것도 전송하지 않았습니다.",
                                    "en": "Not enough buying power: the revision would tie up about {extra} more for "
                                          "order {order_no}, and the orderable amount is {cash}. At this price at most "
                                          "{max_quantity:,} shares can be revised. Nothing was sent."},
    "us_halted": {"ko": "⛔ {name} ({code})은(는) 지금 KIS에서 매매할 수 없는 종목입니다 (거래정지). 주문하지 않았습니다.",
                  "en": "⛔ {name} ({code}) does not trade on KIS now (halted). Nothing was sent."},
})
