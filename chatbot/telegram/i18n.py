"""The bot's words, Korean first, English for users whose Telegram language is English.

Templates are HTML (``parse_mode=HTML``); :func:`t` escapes every parameter.
"""

from __future__ import annotations

import html
from typing import Any

MESSAGES: dict[str, dict[str, str]] = {
    "welcome": {
        "ko": "<b>KIS 트레이딩 봇</b> {badge}\n한국투자증권 계좌로 시세 조회, 주문, 잔고 확인을 합니다. "
              "주문은 항상 확인 버튼을 눌러야 전송됩니다.\n\n{commands}",
        "en": "<b>KIS trading bot</b> {badge}\nQuotes, orders and balance on your Korea Investment & Securities "
              "account. Every order waits for your Confirm press.\n\n{commands}",
    },
    "commands": {
        "ko": "/price 삼성전자 — 현재가\n/buy 005930 10 71000 — 지정가 매수 (가격 생략 시 시장가)\n"
              "/sell 005930 5 — 시장가 매도\n/orders — 미체결 주문\n/cancel 0000001234 — 주문 취소\n"
              "/modify 0000001234 70500 — 주문 정정 (가격 [수량])\n"
              "/balance — 잔고\n/login — KIS 키 등록 · /logout — 삭제 · /me — 내 계정\n"
              "/alert 삼성전자 이상 75000 — 가격 알림 · /alerts — 알림 목록\n/chart 삼성전자 w — 차트 · /status — 상태\n/reset — 모의계좌 초기화\n/help — 도움말"
              "\n/report on — 장 마감 일일 보고서 · /history 30 — 체결 내역",
        "en": "/price Samsung Electronics — current price\n/buy 005930 10 71000 — limit buy (no price: market)\n"
              "/sell 005930 5 — market sell\n/orders — open orders\n/cancel 0000001234 — cancel an order\n"
              "/modify 0000001234 70500 — revise an order (price [qty])\n"
              "/balance — holdings and cash\n/login — register KIS keys · /logout — remove · /me — your account\n"
              "/alert 005930 above 75000 — price alert · /alerts — your alerts\n/chart 005930 w — chart · /status\n/reset — restart the paper account\n"
              "/help — this help"
              "\n/report on — daily report at the close · /history 30 — executions",
    },
    "mode_PAPER": {"ko": "🧪 PAPER · 모의(시뮬레이터)", "en": "🧪 PAPER · simulator"},
    "mode_VIRTUAL": {"ko": "🧪 VIRTUAL · 모의투자", "en": "🧪 VIRTUAL · KIS paper trading"},
    "mode_REAL": {"ko": "🔴 REAL · 실전투자", "en": "🔴 REAL · real money"},
    "usage_price": {"ko": "사용법: /price &lt;종목코드 또는 종목명&gt;\n예: /price 005930, /price 삼성전자",
                    "en": "Usage: /price &lt;code or name&gt;\nExample: /price 005930, /price Samsung Electronics"},
    "usage_buy": {"ko": "사용법: /buy &lt;종목&gt; &lt;수량&gt; [가격|시장가]\n예: /buy 005930 10 71000",
                  "en": "Usage: /buy &lt;symbol&gt; &lt;qty&gt; [price|market]\nExample: /buy 005930 10 71000"},
    "usage_sell": {"ko": "사용법: /sell &lt;종목&gt; &lt;수량&gt; [가격|시장가]\n예: /sell 005930 5",
                   "en": "Usage: /sell &lt;symbol&gt; &lt;qty&gt; [price|market]\nExample: /sell 005930 5"},
    "usage_cancel": {"ko": "사용법: /cancel [주문번호]", "en": "Usage: /cancel [order number]"},
    "usage_modify": {"ko": "사용법: /modify &lt;주문번호&gt; &lt;새 가격&gt; [새 수량]\n예: /modify 0000001234 70500",
                     "en": "Usage: /modify &lt;order number&gt; &lt;new price&gt; [new qty]\n"
                           "Example: /modify 0000001234 70500"},
    "input_too_long": {"ko": "입력이 너무 깁니다.", "en": "That input is too long."},
    "bad_quantity": {"ko": "수량은 1 이상의 정수여야 합니다 (입력: {value}).",
                     "en": "Quantity must be a whole number of at least 1 (got: {value})."},
    "quantity_too_large": {"ko": "한 번에 주문할 수 있는 수량은 최대 {maximum:,}주입니다.",
                           "en": "At most {maximum:,} shares per order."},
    "bad_price": {"ko": "가격은 1원 이상의 정수이거나 '시장가'여야 합니다 (입력: {value}).",
                  "en": "Price must be a whole number of won, or 'market' (got: {value})."},
    "revise_leaves_rest": {"ko": "⚠️ 나머지 {rest:,}주는 {old}에 그대로 남습니다 (주문 {order_no}). 전부 정정하려면 "
                                 "수량을 빼고 보내세요.",
                           "en": "⚠️ The other {rest:,} sh stay open at {old} (order {order_no}). To revise them all, "
                                 "leave the quantity out."},
    "bad_limit_price": {"ko": "가격은 1원 이상의 정수여야 합니다 (입력: {value}).",
                        "en": "Price must be a whole number of won, 1 or more (got: {value})."},
    "price_too_large": {"ko": "가격이 너무 큽니다. 국내 주식 가격은 {maximum}을(를) 넘지 않습니다.",
                        "en": "That price is too large: no domestic share trades above {maximum}."},
    "unknown_symbol": {"ko": "종목을 찾을 수 없습니다: {query}\n종목코드(005930), 종목명(삼성전자), 미국 티커(AAPL)나 "
                                 "한글 이름(애플)으로 찾아 보세요.",
                       "en": "No such stock: {query}\nTry a code (005930), a name (Samsung Electronics), or a US "
                             "ticker (AAPL) or its Korean name (애플)."},
    "ambiguous_symbol": {"ko": "'{query}'에 해당하는 종목이 여러 개입니다. 골라 주세요:",
                         "en": "Several stocks match '{query}'. Pick one:"},
    "off_tick": {"ko": "{price}은(는) 호가단위({tick})에 맞지 않습니다. {below} 또는 {above}(으)로 주문하세요.",
                 "en": "{price} is off the tick ({tick}). Use {below} or {above}."},
    "out_of_limits": {"ko": "{price}은(는) 오늘 가격제한폭({lower}~{upper}) 밖입니다.",
                      "en": "{price} is outside today's price limits ({lower}–{upper})."},
    "insufficient_holdings": {"ko": "{name} 매도 가능 수량은 {have:,}주입니다 ({want:,}주 요청).",
                              "en": "You can sell {have:,} shares of {name} (asked for {want:,})."},
    "insufficient_cash": {"ko": "주문 가능 금액이 부족합니다. 최대 {max_quantity:,}주까지 가능합니다 (주문가능현금 {cash}).",
                          "en": "Not enough cash: at most {max_quantity:,} shares (orderable cash {cash})."},
    "not_registered": {"ko": "KIS 계정이 등록되지 않았습니다. /login 으로 등록하세요.",
                       "en": "No KIS account registered yet. Use /login to register."},
    "kis_unavailable": {"ko": "KIS 서버가 응답하지 않습니다. 잠시 후 다시 시도하세요. 아무것도 변경되지 않았습니다.",
                        "en": "KIS is not answering right now. Try again shortly; nothing was changed."},
    "kis_nightly_maintenance": {
        "ko": "KIS가 응답하지 않습니다. 지금은 KIS의 야간 점검 시간(보통 00:00–01:00)이라 점검 중일 가능성이 큽니다. "
              "점검이 끝난 뒤 다시 시도하세요. 아무것도 변경되지 않았습니다.",
        "en": "KIS is not answering: this is KIS's nightly maintenance time (usually 00:00–01:00 KST), so it is "
              "probably down for maintenance. Try again after it; nothing was changed."},
    "fills_need_hts_id": {
        "ko": "ℹ️ 체결 알림은 KIS가 HTS ID로 보내므로, HTS ID가 없으면 받을 수 없습니다. /login 으로 HTS ID와 함께 "
              "다시 등록하세요. 체결 내역은 /orders 와 일별 체결 조회로 계속 확인됩니다.",
        "en": "ℹ️ Fill notifications need your HTS ID: KIS sends them by HTS ID. Register again with /login and give "
              "your HTS ID. Fills still show in /orders and the daily executions."},
    "kis_token_wait": {"ko": "KIS 접근토큰은 1분에 한 번만 발급됩니다. 1분 뒤 다시 시도하세요.",
                       "en": "KIS issues one access token a minute. Try again in a minute."},
    "real_disabled": {"ko": "실전 주문이 꺼져 있습니다 (운영자 설정 kis.allow_real_orders).",
                      "en": "Real-money orders are switched off (operator setting kis.allow_real_orders)."},
    "bad_order_no": {"ko": "주문번호는 숫자입니다 (입력: {value}).", "en": "An order number is digits (got: {value})."},
    "no_such_open_order": {"ko": "취소할 수 있는 주문 {order_no}이(가) 없습니다. /orders 로 확인하세요.",
                           "en": "No open order {order_no} to cancel. See /orders."},
    "no_such_open_order_revise": {"ko": "정정할 수 있는 주문 {order_no}이(가) 없습니다. /orders 로 확인하세요.",
                                  "en": "No open order {order_no} to revise. See /orders."},
    "revise_quantity_too_large": {"ko": "정정할 수 있는 수량은 남은 {remaining:,}주까지입니다 ({want:,}주 요청).",
                                  "en": "You can revise at most the {remaining:,} shares left (asked for {want:,})."},
    "revise_nothing_changes": {"ko": "주문 {order_no}은(는) 이미 {price}입니다. 바꿀 것이 없습니다.",
                               "en": "Order {order_no} is already at {price}: nothing to change."},
    "revise_prompt": {"ko": "주문 <code>{order_no}</code> ({name}, 잔량 {remaining:,}주 @ {price}) 정정: 이 메시지에 "
                            "<b>답장</b>으로 새 가격을 보내세요 (수량은 생략하면 남은 전부). 예: <code>{example}</code>\n"
                            "명령으로는: <code>/modify {order_no} {example}</code> [수량]",
                      "en": "Revise order <code>{order_no}</code> ({name}, {remaining:,} left @ {price}): <b>reply</b> "
                            "to this message with the new price (no qty: all that is left). Example: "
                            "<code>{example}</code>\nAs a command: <code>/modify {order_no} {example}</code> [qty]"},
    "too_many_args": {"ko": "인자가 너무 많습니다.", "en": "Too many arguments."},
    "private_only": {"ko": "보안을 위해 이 봇은 개인 대화에서만 사용할 수 있습니다.",
                     "en": "For your security this bot works in private chats only."},
    "not_allowed": {"ko": "죄송합니다. 이 봇은 등록된 사용자만 사용할 수 있습니다.",
                    "en": "Sorry, this bot is limited to its registered users."},
    "busy_retry": {"ko": "지금 요청이 많아 처리하지 못했습니다. 잠시 후 다시 보내 주세요. 아무것도 변경되지 않았습니다.",
                   "en": "Too busy to handle that right now. Please send it again in a moment; nothing was changed."},
    "queued": {"ko": "⏳ 지금 요청이 많습니다. 차례대로 처리 중이니 잠시만 기다려 주세요.",
               "en": "⏳ Many requests right now: yours is queued and will be answered shortly."},
    "internal_error": {"ko": "요청을 처리하지 못했습니다. 아무것도 변경되지 않았습니다.",
                       "en": "Something went wrong. Nothing was changed."},
    "unknown_command": {"ko": "알 수 없는 명령입니다. /help 를 보세요.", "en": "Unknown command. See /help."},
    "no_open_orders": {"ko": "미체결 주문이 없습니다.", "en": "No open orders."},
    "open_orders_title": {"ko": "<b>미체결 주문</b> {badge}", "en": "<b>Open orders</b> {badge}"},
    "pick_cancel": {"ko": "취소할 주문을 고르세요:", "en": "Pick the order to cancel:"},
    "pick_order_action": {"ko": "주문을 골라 취소하거나 정정하세요:", "en": "Pick an order to cancel or revise:"},
    "cancel_button": {"ko": "취소", "en": "Cancel"},
    "revise_button": {"ko": "정정", "en": "Revise"},
    "balance_title": {"ko": "<b>잔고</b> {badge} · 계좌 {account}", "en": "<b>Balance</b> {badge} · account {account}"},
    "no_holdings": {"ko": "보유 종목이 없습니다.", "en": "No holdings."},
    "buy": {"ko": "매수", "en": "BUY"},
    "sell": {"ko": "매도", "en": "SELL"},
    "market": {"ko": "시장가", "en": "market"},
    "shares": {"ko": "주", "en": " sh"},
    "confirm": {"ko": "✅ 확인", "en": "✅ Confirm"},
    "dismiss": {"ko": "✖ 취소", "en": "✖ Cancel"},
    "card_title_order": {"ko": "<b>주문 확인</b> {badge}", "en": "<b>Confirm order</b> {badge}"},
    "card_title_cancel": {"ko": "<b>주문 취소 확인</b> {badge}", "en": "<b>Confirm cancellation</b> {badge}"},
    "card_title_revise": {"ko": "<b>주문 정정 확인</b> {badge}", "en": "<b>Confirm revision</b> {badge}"},
    "card_expiry": {"ko": "⏱ {seconds}초 안에 확인하세요. 그 뒤에는 무효입니다.",
                    "en": "⏱ Confirm within {seconds} seconds; after that this card is void."},
    "outcome_placed": {"ko": "✅ <b>주문 접수</b> · 주문번호 <code>{order_no}</code>",
                       "en": "✅ <b>Order accepted</b> · order no. <code>{order_no}</code>"},
    "outcome_cancelled_order": {"ko": "✅ <b>취소 접수</b> · 주문번호 <code>{order_no}</code>",
                                "en": "✅ <b>Cancellation accepted</b> · order no. <code>{order_no}</code>"},
    "outcome_revised_order": {"ko": "✅ <b>정정 접수</b> · 새 주문번호 <code>{order_no}</code>",
                              "en": "✅ <b>Revision accepted</b> · new order no. <code>{order_no}</code>"},
    "outcome_rejected": {"ko": "❌ <b>KIS가 거부했습니다</b>: {message} ({msg_cd})",
                         "en": "❌ <b>KIS refused it</b>: {message} ({msg_cd})"},
    "outcome_uncertain": {"ko": "⏳ <b>KIS에 확인 중</b>: KIS가 제때 응답하지 않았습니다. 중복 주문을 막기 위해 다시 보내지 "
                                "않았습니다. 결과(접수 또는 미접수)를 확인하는 대로 이 카드에 표시합니다.",
                          "en": "⏳ <b>Checking with KIS</b>: KIS did not answer in time. The order was not sent again, "
                                "to avoid a double order; this card will show the result (placed or not) as soon as "
                                "KIS's list of today's orders says it."},
    "outcome_checking": {"ko": "⏳ <b>KIS에 확인 중</b>: 전송 중에 봇이 중단되었습니다. 주문은 다시 보내지 않았습니다. "
                               "오늘 주문 목록에서 확인하는 대로 이 카드에 결과를 표시합니다.",
                         "en": "⏳ <b>Checking with KIS</b>: the bot was interrupted while sending. The order was not "
                               "sent again; this card will show the result as soon as KIS's list of today's orders "
                               "says it."},
    "outcome_found_late": {"ko": "ℹ️ 중단 후 KIS 주문 목록에서 확인했습니다. 다시 보내지 않았습니다.",
                           "en": "ℹ️ Confirmed from KIS's list of today's orders after an interruption; nothing was "
                                 "sent again."},
    "outcome_not_placed": {"ko": "❌ <b>주문되지 않았습니다</b>: KIS에 이 주문이 없습니다 ({message}). 다시 보내지 "
                                 "않았습니다. 필요하면 새로 주문하세요.",
                           "en": "❌ <b>Not placed</b>: KIS has no such order ({message}). Nothing was sent again; "
                                 "order anew if you still want it."},
    "outcome_unverifiable": {"ko": "⚠️ <b>결과를 확인할 수 없습니다</b> ({message}). 다시 주문하기 전에 KIS에서 "
                                   "주문 내역을 확인하세요.",
                             "en": "⚠️ <b>The outcome cannot be checked</b> ({message}). Check your orders with KIS "
                                   "before ordering again."},
    "outcome_failed": {"ko": "❌ <b>전송되지 않았습니다</b> ({message}). 잠시 후 다시 시도하세요.",
                       "en": "❌ <b>Not sent</b> ({message}). Please try again shortly."},
    # -- chat polish: why a confirmed card was not sent (service.views.FailReason), each with its advice ---
    "outcome_failed_reason": {"ko": "❌ <b>전송되지 않았습니다</b>: {reason}", "en": "❌ <b>Not sent</b>: {reason}"},
    "fail_real_orders_disabled": {"ko": "실전 주문이 꺼져 있습니다 (운영자 설정). 다시 보내도 전송되지 않습니다.",
                                  "en": "real-money orders are switched off (an operator setting); sending it "
                                        "again will not help."},
    "fail_database_unavailable": {"ko": "봇의 데이터베이스가 응답하지 않아 보내지 않았습니다. 잠시 후 다시 "
                                        "시도하세요.",
                                  "en": "the bot's database did not answer, so nothing went to KIS. Please try "
                                        "again shortly."},
    "fail_us_orders_not_offered": {"ko": "이 봇은 미국 주식 주문을 받지 않습니다. 다시 보내도 같습니다.",
                                   "en": "this bot does not take US orders; sending it again will not help."},
    "fail_nothing_left_revise": {"ko": "정정할 주문이 남아 있지 않습니다 (그 사이 체결되었거나 취소됨). "
                                       "/orders 로 확인하세요.",
                                 "en": "nothing is left of the order to revise (it filled or was cancelled "
                                       "meanwhile). See /orders."},
    "fail_nothing_left_cancel": {"ko": "취소할 주문이 남아 있지 않습니다 (그 사이 체결되었거나 취소됨). "
                                       "/orders 로 확인하세요.",
                                 "en": "nothing is left of the order to cancel (it filled or was cancelled "
                                       "meanwhile). See /orders."},
    "fail_reservation_gone": {"ko": "더 이상 대기 중인 예약주문이 아닙니다 (장 시작에 거래소로 보내졌거나 "
                                    "취소됨). /orders 로 확인하세요.",
                              "en": "it is no longer a pending reservation (sent to the exchange at the open, "
                                    "or cancelled meanwhile). See /orders."},
    "fail_reservation_list_unanswered": {"ko": "KIS의 예약주문 목록이 응답하지 않았습니다. 잠시 후 다시 "
                                               "시도하세요.",
                                         "en": "KIS's list of reservations did not answer. Please try again "
                                               "shortly."},
    "fail_not_registered": {"ko": "등록된 KIS 계정이 없습니다. /login 으로 등록한 뒤 새로 주문하세요.",
                            "en": "no KIS account is registered. Register with /login, then order anew."},
    "fail_account_changed": {"ko": "이 카드를 만든 뒤 계좌가 바뀌었습니다. 지금 계좌로 다시 요청하세요.",
                             "en": "the account changed since this card was made. Ask again for the account "
                                   "you use now."},
    "fail_kis_unreachable": {"ko": "KIS가 응답하지 않았습니다. 잠시 후 다시 시도하세요.",
                             "en": "KIS did not answer. Please try again shortly."},
    "fail_kis_busy": {"ko": "KIS의 초당 요청 한도에 걸렸습니다. 잠시 후 다시 시도하세요.",
                      "en": "KIS's request limit was reached. Please try again in a moment."},
    "fail_kis_token_wait": {"ko": "KIS 접근토큰은 1분에 한 번만 발급됩니다. 1분 뒤 다시 시도하세요.",
                            "en": "KIS issues one access token a minute. Try again in a minute."},
    "fail_kis_keys_refused": {"ko": "KIS가 등록된 키를 받지 않았습니다. /login 으로 키를 다시 등록하세요.",
                              "en": "KIS refused the registered keys. Register them again with /login."},
    "fail_internal": {"ko": "봇 내부 오류입니다. 잠시 후 다시 시도하세요.",
                      "en": "an internal error in the bot. Please try again shortly."},
    "revise_reply_hint": {"ko": "↩️ 이 메시지에 답장으로 새 가격만 보내도 됩니다 (예: <code>{example}</code>).",
                          "en": "↩️ Or reply to this message with just the new price (e.g. <code>{example}</code>)."},
    "push_alert_number": {"ko": " · 알림 #{id}", "en": " · alert #{id}"},
    # -- end of chat polish ---------------------------------------------------------------------------------
    "outcome_dismissed": {"ko": "✖ 취소했습니다. 아무것도 전송되지 않았습니다.",
                          "en": "✖ Cancelled. Nothing was sent."},
    "outcome_expired": {"ko": "⌛ 확인 시간이 지났습니다. 아무것도 전송되지 않았습니다. 다시 요청하세요.",
                        "en": "⌛ This card expired. Nothing was sent; ask again for a fresh quote."},
    "outcome_account_changed": {"ko": "⚠️ 이 카드를 만든 뒤 계좌가 바뀌었습니다. 아무것도 전송되지 않았습니다. "
                                      "지금 계좌로 다시 요청하세요.",
                                "en": "⚠️ The account changed since this card was made; nothing was sent. Ask again "
                                      "for the account you have now."},
    "outcome_real_disabled": {"ko": "실전 주문이 꺼져 있어 전송하지 않았습니다.",
                              "en": "Real-money orders are switched off; nothing was sent."},
    # popup_*: the short answer Telegram shows over the chat when a button is pressed
    "popup_not_owner": {"ko": "이 버튼은 요청한 사람만 누를 수 있습니다.",
                        "en": "Only the person who asked can press this."},
    "popup_already": {"ko": "이미 처리된 요청입니다.", "en": "This was already handled."},
    "popup_unknown": {"ko": "알 수 없거나 만료된 버튼입니다.", "en": "Unknown or expired button."},
    "popup_expired": {"ko": "확인 시간이 지났습니다.", "en": "This card expired."},
    "popup_account_changed": {"ko": "계좌가 바뀌어 이 카드는 무효입니다. 아무것도 전송되지 않았습니다.",
                              "en": "The account changed since this card was made; nothing was sent."},
    "popup_sending": {"ko": "전송 중…", "en": "Sending…"},
    "reset_card": {"ko": "<b>모의계좌 초기화</b> {badge}\n보유 종목과 주문이 모두 사라지고 새 계좌(예수금 10,000,000원)로 시작합니다. "
                         "걸어 둔 조건주문(손절·익절 등)도 취소됩니다.",
                   "en": "<b>Reset paper account</b> {badge}\nAll holdings and orders go; you start over with a new "
                         "account (10,000,000 won). Armed conditional orders (stop-loss, take-profit…) are "
                         "cancelled too."},
    "outcome_reset_done": {"ko": "✅ 새 모의계좌로 시작합니다.", "en": "✅ You have a fresh paper account."},
    "reset_paper_only": {"ko": "초기화는 시뮬레이터(PAPER) 모드에서만 됩니다.",
                         "en": "Reset works in simulator (PAPER) mode only."},
    "login_intro": {"ko": "<b>KIS 계정 등록</b> {badge}\n1/4 · 앱키(App Key, 36자)를 보내 주세요.\n"
                          "보낸 메시지는 읽는 즉시 삭제합니다. 텔레그램 봇 대화는 종단간 암호화가 아니므로, 등록 후 "
                          "KIS에서 키를 재발급(교체)할 수 있다는 점을 기억하세요. 중단: /cancel",
                    "en": "<b>Register your KIS account</b> {badge}\n1/4 · Send your App Key (36 characters).\n"
                          "Each message is deleted as soon as it is read. Bot chats are not end-to-end encrypted: "
                          "you can rotate the key at KIS afterwards. Stop: /cancel"},
    "login_secret": {"ko": "2/4 · 앱 시크릿(App Secret, 180자)을 보내 주세요.",
                     "en": "2/4 · Send your App Secret (180 characters)."},
    "login_account": {"ko": "3/4 · 계좌번호를 보내 주세요 (XXXXXXXX-XX).",
                      "en": "3/4 · Send your account number (XXXXXXXX-XX)."},
    "login_hts_id": {"ko": "4/4 · 체결 알림에 쓸 HTS ID를 보내 주세요 (없으면 - ).",
                     "en": "4/4 · Send your HTS ID, used for fill notifications (or - to skip)."},
    "bad_hts_id": {"ko": "HTS ID는 영문·숫자 2~16자입니다. 다시 보내 주세요 (없으면 - ).",
                   "en": "An HTS ID is 2–16 letters or digits. Send it again (or - to skip)."},
    "login_checking": {"ko": "KIS에 확인하는 중…", "en": "Checking with KIS…"},
    "login_done": {"ko": "✅ 등록했습니다. 키 {key} · 계좌 {account}", "en": "✅ Registered. Key {key} · account {account}"},
    "login_cancelled": {"ko": "등록을 중단했습니다. 아무것도 저장하지 않았습니다.",
                        "en": "Registration stopped. Nothing was stored."},
    "login_timeout": {"ko": "시간이 지나 등록을 중단했습니다. 아무것도 저장하지 않았습니다.",
                      "en": "Registration timed out. Nothing was stored."},
    "login_text_only": {"ko": "텍스트로 보내 주세요.", "en": "Please send it as text."},
    "delete_failed": {"ko": "⚠️ 방금 메시지를 지우지 못했습니다. 직접 삭제해 주세요.",
                      "en": "⚠️ I could not delete your message; please delete it yourself."},
    "stray_secret": {"ko": "🔒 {what}(으)로 보이는 메시지를 바로 삭제했습니다. 키는 /login 이 물어볼 때만 보내 "
                           "주세요 (등록 중에 봇이 재시작되거나 5분이 지나면 등록이 중단됩니다). 등록하려면 /login 을 "
                           "입력하세요. 노출이 걱정되면 KIS에서 키를 재발급하세요.",
                     "en": "🔒 I deleted your message at once: it looked like {what}. Send keys only when /login asks "
                           "for them (a registration ends if the bot restarts or after 5 minutes). To register, type "
                           "/login. If you worry it was seen, re-issue the key at KIS."},
    "stray_secret_undeleted": {"ko": "⚠️ 메시지를 지우지 못했습니다. 직접 삭제하고 KIS에서 키를 재발급하세요.",
                               "en": "⚠️ I could not delete it: delete it yourself and re-issue the key at KIS."},
    "secret_app_key": {"ko": "KIS 앱키", "en": "a KIS App Key"},
    "secret_app_secret": {"ko": "KIS 앱 시크릿", "en": "a KIS App Secret"},
    "bad_app_key": {"ko": "앱키 형식이 아닙니다 ({length}자). 다시 보내 주세요.",
                    "en": "That is not an App Key ({length} characters). Send it again."},
    "bad_app_secret": {"ko": "앱 시크릿 형식이 아닙니다 ({length}자). 다시 보내 주세요.",
                       "en": "That is not an App Secret ({length} characters). Send it again."},
    "bad_account": {"ko": "계좌번호는 숫자 8자리-2자리입니다 (예: 12345678-01). 다시 보내 주세요.",
                    "en": "An account number is 8 digits, a dash and 2 digits (12345678-01). Send it again."},
    "login_refused": {"ko": "KIS가 이 키를 거부했습니다 ({code}). 아무것도 저장하지 않았습니다. /login 으로 다시 시도하세요.",
                      "en": "KIS refused these keys ({code}). Nothing was stored. Try /login again."},
    "logout_done": {"ko": "등록된 KIS 키와 토큰을 삭제했습니다.", "en": "Your KIS keys and token were deleted."},
    "logout_token_kept": {"ko": "등록된 KIS 키를 삭제했습니다. 이 봇의 다른 사용자가 같은 앱키를 사용하고 있어 토큰은 "
                                "그대로 두었습니다.",
                          "en": "Your KIS keys were deleted. The token was left in place because another user of "
                                "this bot uses the same app key."},
    "logout_none": {"ko": "등록된 KIS 키가 없습니다.", "en": "No KIS keys are registered."},
    "me_registered": {"ko": "{badge}\nKIS 키 {key} · 계좌 {account}", "en": "{badge}\nKIS key {key} · account {account}"},
    "me_paper": {"ko": "{badge}\n시뮬레이터 모의계좌를 사용 중입니다. /login 으로 본인 키를 등록할 수 있습니다.",
                 "en": "{badge}\nYou trade on a simulator paper account. /login registers your own keys."},
    "me_none": {"ko": "{badge}\n등록된 KIS 키가 없습니다. /login 으로 등록하세요.",
                "en": "{badge}\nNo KIS keys registered. Use /login."},
    "usage_alert": {"ko": "사용법: /alert &lt;종목&gt; 이상|이하 &lt;가격&gt; [repeat]\n"
                          "또는 /alert &lt;종목&gt; +5% · /alert off &lt;번호&gt; · 목록: /alerts",
                    "en": "Usage: /alert &lt;symbol&gt; above|below &lt;price&gt; [repeat]\n"
                          "or /alert &lt;symbol&gt; +5% · /alert off &lt;id&gt; · list: /alerts"},
    "bad_percent": {"ko": "변동률은 0보다 크고 {maximum}% 이하여야 합니다.", "en": "The move must be above 0 and at most {maximum}%."},
    "alert_already_crossed": {"ko": "현재가 {price}이(가) 이미 {threshold}을(를) 넘어섰습니다.",
                              "en": "The price ({price}) is already past {threshold}."},
    "alert_duplicate": {"ko": "같은 알림이 이미 설정되어 있습니다: #{id} {name} {condition}. 바뀐 것은 없습니다.",
                        "en": "This alert is already set: #{id} {name} {condition}. Nothing was changed."},
    "alert_limit": {"ko": "알림은 한 사람당 {maximum}개까지입니다. /alerts 에서 지우고 다시 설정하세요.",
                    "en": "At most {maximum} alerts per user. Delete some in /alerts first."},
    "alert_capacity": {"ko": "모든 사용자가 나눠 쓰는 실시간 시세 구독 한도({maximum}종목)가 찼습니다. 이미 알림이 있는 "
                             "종목에는 알림을 더 걸 수 있습니다. 필요 없는 알림을 /alerts 에서 지우거나, 자리가 나면 "
                             "다시 시도하세요.",
                       "en": "All {maximum} live-price slots, shared by everyone's alerts, are in use. You can still "
                             "add alerts on symbols that already have one; delete alerts you no longer need in "
                             "/alerts, or try again when a slot frees up."},
    "alert_symbol_limit": {"ko": "알림은 한 사람당 {maximum}종목까지입니다 (실시간 시세는 모든 사용자가 나눠 씁니다). "
                                 "지금 알림이 있는 종목({symbols})에는 더 걸 수 있습니다. 다른 종목은 /alerts 에서 "
                                 "한 종목의 알림을 지운 뒤 설정하세요.",
                           "en": "Alerts can watch at most {maximum} symbols per person (the live feed is shared by "
                                 "everyone). You can add more alerts on the symbols you watch ({symbols}); for "
                                 "another symbol, delete one symbol's alerts in /alerts first."},
    "alerts_unavailable": {"ko": "가격 알림을 쓸 수 없습니다 (운영자가 시세 키를 설정하지 않았습니다).",
                           "en": "Price alerts are unavailable (the operator has not configured a market-data key)."},
    "no_such_alert": {"ko": "알림 {alert_id}이(가) 없습니다.", "en": "No alert {alert_id}."},
    "alert_set": {"ko": "🔔 알림 #{id} · {name} {condition} (현재 {price}){repeat}",
                  "en": "🔔 Alert #{id} · {name} {condition} (now {price}){repeat}"},
    "alerts_title": {"ko": "<b>가격 알림</b> ({count}개)", "en": "<b>Price alerts</b> ({count})"},
    "no_alerts": {"ko": "설정된 알림이 없습니다. 예: /alert 삼성전자 이상 75000", "en": "No alerts. Example: /alert 005930 above 75000"},
    "alert_deleted": {"ko": "🗑 알림 #{id}을(를) 지웠습니다.", "en": "🗑 Alert #{id} deleted."},
    "push_alert": {"ko": "🔔 <b>{name}</b> ({code}) {price} — {condition} 도달 ({time})",
                   "en": "🔔 <b>{name}</b> ({code}) {price} — reached {condition} ({time})"},
    "push_fill": {"ko": "✅ <b>체결</b>: {name} {side} {quantity:,}주 @ {price} (주문 {order_no})",
                  "en": "✅ <b>Filled</b>: {name}, {side} {quantity:,} @ {price} (order {order_no})"},
    "push_refused": {"ko": "⛔ <b>주문 거부</b>: {name} {side} {quantity:,}주{price} (주문 {order_no})\n"
                           "접수되었던 주문을 거래소가 거부했습니다. 체결되지 않으며 미체결 목록에서 빠집니다.",
                     "en": "⛔ <b>Order refused</b>: {name}, {side} {quantity:,}{price} (order {order_no})\n"
                           "The exchange refused this order after KIS accepted it. It will not fill and is no "
                           "longer open."},
    "push_change_refused_revise": {
        "ko": "⛔ <b>정정 거부</b>: {name} {side} 주문 {original_no}의 정정(정정 주문 {order_no}, {quantity:,}주{price})을 "
              "거래소가 거부했습니다. 정정되지 않았습니다.",
        "en": "⛔ <b>Revision refused</b>: the exchange refused the revision of order {original_no} ({name}, {side}; "
              "revision {order_no}, {quantity:,}{price}). Nothing was revised."},
    "push_change_refused_cancel": {
        "ko": "⛔ <b>취소 거부</b>: {name} {side} 주문 {original_no}의 취소(취소 주문 {order_no})를 거래소가 거부했습니다. "
              "취소되지 않았습니다.",
        "en": "⛔ <b>Cancellation refused</b>: the exchange refused the cancellation of order {original_no} ({name}, "
              "{side}; cancellation {order_no}). Nothing was cancelled."},
    "change_not_done_revise": {"ko": "정정되지 않았습니다.", "en": "Nothing was revised."},
    "change_not_done_cancel": {"ko": "취소되지 않았습니다.", "en": "Nothing was cancelled."},
    "original_still_open": {"ko": "원래 주문 {order_no}은(는) 그대로 유효합니다: 잔량 {remaining:,}주{price}.",
                            "en": "Order {order_no} is still working as it was: {remaining:,} left{price}."},
    "original_not_open": {"ko": "원래 주문 {order_no}은(는) 더 이상 미체결이 아닙니다(체결 또는 취소). /orders 로 확인하세요.",
                          "en": "Order {order_no} is no longer open (filled or cancelled). See /orders."},
    "original_unknown": {"ko": "원래 주문 {order_no}의 지금 상태를 확인하지 못했습니다. /orders 로 확인하세요.",
                         "en": "Could not check how order {order_no} stands now. See /orders."},
    "push_refused_reason": {"ko": "\n사유: {reason}", "en": "\nReason: {reason}"},
    "kis_maintenance": {"ko": "KIS 시스템 점검 시간입니다. 점검 뒤 다시 시도하세요. 아무것도 변경되지 않았습니다.",
                        "en": "KIS is under maintenance. Please try again afterwards; nothing was changed."},
    "session_pre_open": {"ko": "⏰ 장 시작 전입니다: 09:00 시가 동시호가로 체결됩니다.",
                         "en": "⏰ Before the open: this executes in the 09:00 opening auction."},
    "session_closing_auction": {"ko": "⏰ 종가 동시호가 중입니다: 15:30에 체결됩니다.",
                                "en": "⏰ Closing auction: this executes at 15:30."},
    "session_closed": {"ko": "⏰ 정규장이 아닙니다. KIS가 거부할 수 있으며, 다음 정규장은 {next_open}에 열립니다.",
                       "en": "⏰ Outside the regular session: KIS may refuse it; the next session opens {next_open}."},
    "usage_chart": {"ko": "사용법: /chart &lt;종목&gt; [d|w|m] (일/주/월봉)", "en": "Usage: /chart &lt;symbol&gt; [d|w|m]"},
    "bad_chart_period": {"ko": "기간 '{period}'을(를) 모르겠습니다. d(일봉), w(주봉), m(월봉) 중 하나를 쓰세요. "
                               "예: /chart 005930 w",
                         "en": "Unknown period '{period}': use d (daily), w (weekly) or m (monthly). "
                               "Example: /chart 005930 w"},
    "chart_caption": {"ko": "{name} ({code}) {period} · 최근 {bars}개 · 종가 {close}",
                      "en": "{name} ({code}) {period} · last {bars} bars · close {close}"},
    "status": {"ko": "<b>상태</b> {badge}\n시장: {phase}{holiday} · 다음 정규장 {next_open}\n실시간 시세: {feed}\n버전 {version}",
               "en": "<b>Status</b> {badge}\nMarket: {phase}{holiday} · next session {next_open}\nReal-time feed: {feed}\n"
                     "version {version}"},
    "plain_text_hint": {"ko": "명령은 /help 를 보세요.", "en": "See /help for commands."},
    # -- daily report and history (/report, /history) ---------------------------------------------------
    "usage_report": {"ko": "사용법: /report [on|off] — 장 마감 후 일일 보고서 켜기/끄기 (인자 없이: 지금 보기)",
                     "en": "Usage: /report [on|off] — the daily report after the close (no argument: show it now)"},
    "report_turned_on": {"ko": "📊 일일 보고서를 켰습니다. 거래일마다 장 마감 후 보냅니다 ({schedules}).",
                         "en": "📊 Daily report on: sent after the close of each trading day ({schedules})."},
    "report_turned_off": {"ko": "일일 보고서를 껐습니다.", "en": "Daily report off."},
    "report_schedule_KRX": {"ko": "국내 15:40", "en": "KRX 15:40 KST"},
    "report_schedule_US": {"ko": "미국 주식 보유 시 미국 장 마감 20분 뒤", "en": "US: 20 min after the NYSE close, when you hold US stocks"},
    "report_is_on": {"ko": "📊 일일 보고서: <b>켜짐</b> ({schedules}) · 끄기: /report off",
                     "en": "📊 Daily report: <b>on</b> ({schedules}) · turn off: /report off"},
    "report_is_off": {"ko": "📊 일일 보고서: <b>꺼짐</b> · 켜기: /report on",
                      "en": "📊 Daily report: <b>off</b> · turn on: /report on"},
    "report_title": {"ko": "📊 <b>일일 보고서</b> {day} · {market} {badge}", "en": "📊 <b>Daily report</b> {day} · {market} {badge}"},
    "report_fills": {"ko": "<b>오늘 체결</b> {count}건", "en": "<b>Today's fills</b>: {count}"},
    "report_no_fills": {"ko": "오늘 체결 없음", "en": "No fills today"},
    "report_realised": {"ko": "<b>실현손익</b> {total}", "en": "<b>Realised P/L</b> {total}"},
    "report_realised_derived": {"ko": "(추정: 체결가 − KIS 평균매입가, 수수료·세금 제외)",
                                "en": "(estimate: fill price − KIS average cost, before fees and tax)"},
    "report_realised_kis": {"ko": "(KIS 실현손익)", "en": "(as KIS reports it)"},
    "report_no_realised": {"ko": "<b>실현손익</b> 없음 (오늘 매도 없음)", "en": "<b>Realised P/L</b>: none (no sales today)"},
    "report_avg": {"ko": "평균", "en": "avg"},
    "report_cost_unknown": {"ko": "매입가 알 수 없음, 합계 제외", "en": "cost unknown, not in the total"},
    "report_holdings": {"ko": "<b>보유 종목</b>", "en": "<b>Holdings</b>"},
    "report_no_holdings": {"ko": "보유 종목 없음", "en": "No holdings"},
    "report_total": {"ko": "<b>합계</b> 매입 {purchase} · 평가 {evaluation} · 평가손익 {profit_loss} ({rate})",
                     "en": "<b>Total</b> cost {purchase} · value {evaluation} · P/L {profit_loss} ({rate})"},
    "report_armed": {"ko": "<b>대기 중인 조건주문</b>", "en": "<b>Conditional orders armed</b>"},
    "report_more": {"ko": "… 외 {count}건", "en": "… and {count} more"},
    "usage_history": {"ko": "사용법: /history [일수] — 최근 체결 내역 (기본 7일, 최대 {maximum}일)",
                      "en": "Usage: /history [days] — recent executions (default 7, at most {maximum})"},
    "bad_history_days": {"ko": "일수는 1~{maximum} 사이의 정수여야 합니다 (입력: {value}). 예: /history 30",
                         "en": "Days must be a whole number from 1 to {maximum} (got: {value}). Example: /history 30"},
    "history_title": {"ko": "📜 <b>체결 내역</b> 최근 {days}일 ({start} ~ {end}) · {count}건 {badge}",
                      "en": "📜 <b>Executions</b> last {days} days ({start} – {end}) · {count} {badge}"},
    "history_empty": {"ko": "이 기간에 체결된 주문이 없습니다.", "en": "No executions in this period."},
    "history_day": {"ko": "<b>{day}</b> 매수 {bought} · 매도 {sold}", "en": "<b>{day}</b> bought {bought} · sold {sold}"},
    "history_section_krx": {"ko": "🇰🇷 <b>국내 주식</b>", "en": "🇰🇷 <b>Korean stocks</b>"},
    "history_section_us": {"ko": "🇺🇸 <b>미국 주식</b> · 날짜는 뉴욕 거래일, 시각은 한국시간",
                           "en": "🇺🇸 <b>US stocks</b> · New York trading days, times KST"},
    "history_us_unavailable": {"ko": "🇺🇸 미국 주식 체결 내역을 지금 불러오지 못했습니다 (KIS 응답 없음). 잠시 뒤 다시 "
                                     "시도하세요.",
                               "en": "🇺🇸 US executions could not be loaded now (KIS did not answer); try again "
                                     "shortly."},
    # -- conditional orders (/stop, /tp, /trail, /bracket, /stops) ----------------------------------------
    "usage_stop": {"ko": "사용법: /stop &lt;종목&gt; &lt;수량&gt; &lt;발동가&gt; [지정가]\n예: /stop 삼성전자 10 65,000원",
                   "en": "Usage: /stop &lt;symbol&gt; &lt;qty&gt; &lt;trigger&gt; [limit]\nExample: /stop 005930 10 65000"},
    "usage_tp": {"ko": "사용법: /tp &lt;종목&gt; &lt;수량&gt; &lt;발동가&gt; [지정가]\n예: /tp 삼성전자 10 80,000원",
                 "en": "Usage: /tp &lt;symbol&gt; &lt;qty&gt; &lt;trigger&gt; [limit]\nExample: /tp 005930 10 80000"},
    "usage_trail": {"ko": "사용법: /trail &lt;종목&gt; &lt;수량&gt; &lt;N&gt;%\n예: /trail 삼성전자 10 5%",
                    "en": "Usage: /trail &lt;symbol&gt; &lt;qty&gt; &lt;N&gt;%\nExample: /trail 005930 10 5%"},
    "usage_bracket": {"ko": "사용법: /bracket &lt;종목&gt; &lt;수량&gt; &lt;손절가&gt; &lt;익절가&gt;\n"
                            "예: /bracket 삼성전자 10 65,000 80,000",
                      "en": "Usage: /bracket &lt;symbol&gt; &lt;qty&gt; &lt;stop&gt; &lt;take&gt;\n"
                            "Example: /bracket 005930 10 65000 80000"},
    "cond_trail_too_tight": {"ko": "{percent}%는 너무 좁아 걸자마자 발동됩니다. 조건주문을 걸지 않았습니다. 더 큰 비율을 쓰세요.",
                             "en": "{percent}% is too tight: it would fire now. Use a larger percentage."},
    "cond_implausible": {"ko": "{price}은(는) 현재가에서 너무 멉니다 ({low}~{high} 사이로 정하세요).",
                         "en": "{price} is too far from the price now (keep it within {low}–{high})."},
    "etn_not_watched": {"ko": "{name}은(는) ETN이라 아직 가격 알림과 조건주문을 걸 수 없습니다 (KIS는 ETN 시세를 "
                              "다른 코드로 보냅니다). 아무것도 설정하지 않았습니다. 주문은 /buy, /sell 로 할 수 있습니다.",
                        "en": "{name} is an ETN: price alerts and conditional orders cannot watch ETNs yet (KIS "
                              "streams their prices under another code). Nothing was set. /buy and /sell work."},
    "cond_would_fire_now": {"ko": "현재가 {price}이(가) 이미 발동가 {trigger}에 닿아 있어 걸자마자 발동됩니다. "
                                  "조건주문을 걸지 않았습니다. 지금 팔려면 /sell 을 쓰세요.",
                            "en": "The price now ({price}) is already at or past the trigger {trigger}: it would "
                                  "fire at once, so nothing was set. To sell now, use /sell."},
    "cond_no_holdings": {"ko": "{name}을(를) 보유하고 있지 않아 {want:,}주 매도 조건주문을 걸 수 없습니다 (매도 가능 0주).",
                         "en": "You hold no {name}, so there is nothing for a conditional sell of {want:,} "
                               "(0 sellable)."},
    "cond_exceeds_holdings": {"ko": "{name} 매도 가능 {have:,}주 중 {committed:,}주는 이미 다른 조건주문에 걸려 있어 "
                                    "{want:,}주를 더 걸 수 없습니다.",
                              "en": "You can sell {have:,} of {name} and {committed:,} are already in other conditional "
                                    "orders: {want:,} more is too many."},
    "cond_limit": {"ko": "조건주문은 한 사람당 최대 {maximum}개입니다.", "en": "At most {maximum} conditional orders each."},
    "cond_stop_limit_above": {"ko": "손절 지정가 {limit}이(가) 발동가 {trigger}보다 높습니다. 가격이 발동가 아래로 "
                                    "내려가 발동되면 이 지정가 매도는 대개 체결되지 않아 손절이 되지 않습니다. 지정가를 "
                                    "발동가 이하로 정하거나 빼세요. 아무것도 설정하지 않았습니다.",
                              "en": "The stop's limit {limit} is above its trigger {trigger}: once the price falls "
                                    "through the trigger, a sell at that limit would usually not fill, so the "
                                    "stop-loss would do nothing. Set the limit at or below the trigger, or leave it "
                                    "out. Nothing was set."},
    "cond_bracket_order": {"ko": "손절가({stop})는 익절가({take})보다 낮아야 합니다.",
                           "en": "The stop ({stop}) must be below the take-profit ({take})."},
    "no_such_conditional": {"ko": "조건주문 #{order_id}을(를) 찾을 수 없습니다.",
                            "en": "No conditional order #{order_id} of yours."},
    "cond_already_handled": {"ko": "조건주문 #{order_id}은(는) 이미 처리되었습니다 ({status}).",
                             "en": "Conditional order #{order_id} was already handled ({status})."},
    "cond_card_title": {"ko": "<b>조건주문 확인</b> {badge}", "en": "<b>Confirm conditional order</b> {badge}"},
    "cond_kind_stop": {"ko": "손절 (stop)", "en": "Stop-loss"},
    "cond_kind_tp": {"ko": "익절 (take-profit)", "en": "Take-profit"},
    "cond_kind_trail": {"ko": "트레일링 스탑", "en": "Trailing stop"},
    "cond_kind_bracket": {"ko": "브래킷 (손절+익절)", "en": "Bracket (stop + take-profit)"},
    "cond_at_market": {"ko": "시장가 매도", "en": "sell at market"},
    "cond_at_limit": {"ko": "지정가 {limit} 매도", "en": "sell at limit {limit}"},
    "cond_when_stop": {"ko": "체결가 ≤ {price}", "en": "a trade at or below {price}"},
    "cond_when_take": {"ko": "체결가 ≥ {price}", "en": "a trade at or above {price}"},
    "cond_when_trail": {"ko": "고점 대비 -{percent}% (지금 {price}, 고점이 오르면 따라 오름)",
                        "en": "{percent}% below the high (now {price}; rises with the high)"},
    "cond_card_body": {"ko": "수량 {quantity:,}주 (매도 가능 {held:,}주, 다른 조건주문 {committed:,}주)\n"
                             "발동: {when}\n보낼 주문: {what}\n현재가 {price}\n"
                             "정규장 체결로만 발동 · 취소하거나 {expires} 만료까지 유지",
                       "en": "Qty {quantity:,} (sellable {held:,}, in other conditional orders {committed:,})\n"
                             "Fires on: {when}\nWill send: {what}\nPrice now {price}\n"
                             "Fires only on regular-session trades · armed until cancelled or {expires}"},
    "cond_armed": {"ko": "✅ 조건주문 #{id} 설정됨: {name} {kind} · /stops 로 확인·취소",
                   "en": "✅ Conditional order #{id} armed: {name} {kind} · see /stops to cancel"},
    "cond_dismissed": {"ko": "취소했습니다. 조건주문은 설정되지 않았습니다.", "en": "Dismissed: nothing was armed."},
    "cond_cancelled": {"ko": "조건주문 #{id} 취소됨", "en": "Conditional order #{id} cancelled"},
    "no_conditionals": {"ko": "설정된 조건주문이 없습니다.", "en": "No conditional orders armed."},
    "stops_title": {"ko": "<b>조건주문 {count}개</b>", "en": "<b>{count} conditional order(s)</b>"},
    "stops_line": {"ko": "#{id} {name} ({code}) {kind} {quantity:,}주 · {when}{distance}{status}",
                   "en": "#{id} {name} ({code}) {kind} {quantity:,} · {when}{distance}{status}"},
    "push_cond_triggered": {"ko": "⚡ <b>조건주문 #{id} 발동</b>: {name} ({code}) {price} 체결 ({time}) — 발동가 "
                                  "{trigger}. {quantity:,}주 {what} 전송 중",
                            "en": "⚡ <b>Conditional order #{id} triggered</b>: {name} ({code}) traded {price} ({time}) "
                                  "— trigger {trigger}. Sending: {what}, {quantity:,}"},
    "push_cond_placed": {"ko": "📨 조건주문 #{id} 매도 주문 접수: {name} {quantity:,}주 · 주문번호 {order_no}{reduced}",
                         "en": "📨 Conditional order #{id}: sell order accepted, {name} {quantity:,} · order "
                               "{order_no}{reduced}"},
    "push_cond_reduced": {"ko": " (보유 수량이 적어 {requested:,}주 중 {quantity:,}주만 매도)",
                          "en": " (less was held: {quantity:,} of {requested:,})"},
    "push_cond_failed": {"ko": "❌ 조건주문 #{id} 매도 실패: {name} — {detail}. 이 조건주문은 종료되었고 다시 걸리지 "
                               "않습니다.",
                         "en": "❌ Conditional order #{id}: the sell failed, {name} — {detail}. It is over and will not "
                               "re-arm."},
    "push_cond_uncertain": {"ko": "⏳ 조건주문 #{id}: KIS 응답이 없어 주문 여부를 확인 중입니다. 결과를 알려 드립니다.",
                            "en": "⏳ Conditional order #{id}: no answer from KIS; checking whether the sell was "
                                  "placed. You will be told."},
    "commands_conditional": {"ko": "/stop 삼성전자 10 65,000원 — 손절 · /tp — 익절 · /trail 삼성전자 10 5% — 트레일링 스탑\n"
                                    "/bracket 005930 10 65000 80000 — 손절+익절 · /stops — 조건주문 목록",
                             "en": "/stop 005930 10 65000 — stop-loss · /tp — take-profit · /trail 005930 10 5% — "
                                   "trailing stop\n/bracket 005930 10 65000 80000 — stop + take · /stops — your "
                                   "conditional orders"},
    "push_cond_account": {"ko": "⚠️ 계좌가 바뀌어 조건주문을 취소했습니다. 이전 계좌에 걸어 둔 것이라 아무것도 "
                                "전송되지 않았습니다:\n{orders}\n지금 계좌에 필요하면 다시 거세요.",
                          "en": "⚠️ Your account changed, so these conditional orders were cancelled (they were "
                                "for the previous account; nothing was sent):\n{orders}\nSet them again for the "
                                "account you have now if you still want them."},
    "sell_covered_by_conditional": {"ko": "\n\n⚠️ 이 종목에 조건주문 {orders}이(가) {committed:,}주 걸려 있습니다. 이 매도 "
                                          "뒤에도 취소되지 않고, 발동하면 그때 보유한 주식(나중에 산 주식 포함)을 "
                                          "최대 {committed:,}주까지 매도합니다. 이 주식에 걸어 둔 것이면 /stops 에서 "
                                          "취소하세요.",
                                    "en": "\n\n⚠️ Conditional orders {orders} cover {committed:,} shares of this "
                                          "stock. They stay armed after this sale and, if one fires, sell what you "
                                          "hold then (shares bought later too), up to {committed:,}. Cancel them in "
                                          "/stops if they were for these shares."},
    "push_cond_expired": {"ko": "⌛ 조건주문 #{id} 만료: {name} ({code})", "en": "⌛ Conditional order #{id} expired: {name} ({code})"},
    # -- feed capacity (README "Feed capacity") --
    "alert_polled": {"ko": "\n실시간 시세 구독이 모두 찼습니다: 이 종목은 {seconds}초마다 시세를 조회해 확인합니다 "
                           "(그 사이에 넘었다 돌아온 가격은 놓칠 수 있습니다).",
                     "en": "\nEvery live-price slot is taken: this symbol's price is checked every {seconds} s "
                           "(a crossing that reverts between two checks can be missed)."},
    "feed_capacity": {"ko": "\n시세 슬롯: {used:,}/{total:,} 사용 · 세션 {sessions:,}개 (운영 {operator}, 사용자 {users:,}) · "
                            "REST 조회 {polled:,}종목{every}",
                      "en": "\nFeed slots: {used:,} of {total:,} used · {sessions:,} sessions ({operator} operator, "
                            "{users:,} users') · {polled:,} symbols polled{every}"},
}

MESSAGES.update({  # order sanity: halted stocks, a revision's extra cost
    "order_halted": {"ko": "⛔ {name} ({code})은(는) 지금 거래정지 중이라 KIS가 주문을 받지 않습니다. 주문하지 "
                           "않았습니다. 거래가 재개되면 다시 주문하세요 (/price 로 확인).",
                     "en": "⛔ {name} ({code}) is halted (거래정지): KIS takes no orders on it now. Nothing was "
                           "sent; order again once trading resumes (see /price)."},
    "alert_halted": {"ko": "\n⛔ 이 종목은 지금 거래정지 중입니다. 알림은 설정되었고 거래가 재개되어 가격이 움직이면 "
                           "울립니다.",
                     "en": "\n⛔ This stock is halted now. The alert is set and fires once trading resumes and "
                           "the price gets there."},
    "revise_insufficient_cash": {"ko": "주문 가능 금액이 부족합니다: 정정하면 주문 {order_no}에 약 {extra}이(가) 더 "
                                       "묶이는데 주문가능현금은 {cash}입니다. 이 가격으로는 최대 {max_quantity:,}주까지 "
                                       "정정할 수 있습니다. 아무것도 전송하지 않았습니다.",
                                 "en": "Not enough cash: the revision would tie up about {extra} more for order "
                                       "{order_no}, and the orderable cash is {cash}. At this price at most "
                                       "{max_quantity:,} shares can be revised. Nothing was sent."},
})

COMMAND_MENU = {
    "ko": [("price", "현재가"), ("buy", "매수"), ("sell", "매도"), ("orders", "미체결 주문"), ("cancel", "주문 취소"), ("modify", "주문 정정"),
           ("balance", "잔고"), ("alert", "가격 알림"), ("alerts", "알림 목록"), ("chart", "차트"), ("status", "상태"),
           ("login", "KIS 키 등록"), ("me", "내 계정"), ("help", "도움말"),
           ("report", "일일 보고서"), ("history", "체결 내역"), ("stop", "손절 주문"), ("stops", "조건주문 목록")],
    "en": [("price", "Current price"), ("buy", "Buy"), ("sell", "Sell"), ("orders", "Open orders"),
           ("cancel", "Cancel an order"), ("modify", "Revise an order"), ("balance", "Balance"), ("alert", "Price alert"), ("alerts", "Your alerts"),
           ("chart", "Chart"), ("status", "Status"),
           ("login", "Register KIS keys"), ("me", "Your account"),
           ("help", "Help"),
           ("report", "Daily report"), ("history", "Executions"), ("stop", "Stop-loss"), ("stops", "Conditional orders")],
}


def _escape(value: Any) -> Any:
    if isinstance(value, str):
        return html.escape(value, quote=False)
    return value


def t(key: str, lang: str, /, **params: Any) -> str:
    entry = MESSAGES[key]
    template = entry.get(lang) or entry["ko"]
    return template.format(**{k: _escape(v) for k, v in params.items()})


# US stocks: their words live in their own module (one block here).
from chatbot.telegram.us_i18n import US_MESSAGES

MESSAGES.update(US_MESSAGES)
