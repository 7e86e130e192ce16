"""Manual compatibility check: python-kis 2.1.6, unchanged, against the simulator.

    python3 -m venv /tmp/pykis && /tmp/pykis/bin/pip install python-kis==2.1.6 typing_extensions
    chatbot sim --port 18700 &
    /tmp/pykis/bin/python tools/pykis_compat.py 18700

python-kis has no base-URL option: its module-level domains are patched (KIS_API.md §7).
It is not a test dependency, so this runs by hand; every call below must succeed. The US part
(KIS_OVERSEAS.md) first opens the simulator's US market with its ``/sim/us-hours`` control, so it
runs at any hour; against KIS it would need US hours.
"""

import datetime
import json
import secrets
import sys
import urllib.request
from decimal import Decimal

import pykis.kis
from pykis import PyKis

port = int(sys.argv[1])
pykis.kis.REAL_DOMAIN = f"http://127.0.0.1:{port}"
pykis.kis.VIRTUAL_DOMAIN = f"http://127.0.0.1:{port + 1}"


def key_pair() -> tuple[str, str]:
    return "PS" + secrets.token_hex(17), secrets.token_urlsafe(135)


appkey, secret = key_pair()
vappkey, vsecret = key_pair()
account = f"{secrets.randbelow(10**8):08d}-01"
kst_today = (datetime.datetime.utcnow() + datetime.timedelta(hours=9)).date()

kis = PyKis(id="tester", account=account, appkey=appkey, secretkey=secret, keep_token=False)
stock = kis.stock("005930")
quote = stock.quote()
print("stock", stock.name, stock.market, "quote", quote.price, quote.change)
acc = kis.account()
print("deposit", acc.balance(country="KR").deposits["KRW"].amount)
print("market buy", stock.buy(qty=3).number)
print("holdings", [(s.symbol, s.qty) for s in acc.balance(country="KR").stocks])
print("sell", stock.sell(qty=1).number)
print("chart bars (whole history, paged by python-kis)", len(stock.chart(period="day").bars))
price = int(quote.price)
low = price * 9 // 10 // 5 * 5 if price < 5000 else price * 9 // 10 // 100 * 100
step = 5 if price < 5000 else 100
limit = stock.buy(price=low, qty=2)
print("limit", limit.number, "pending", [(o.number, o.pending_qty) for o in acc.pending_orders(country="KR").orders])
limit.modify(price=low + step)
pending = acc.pending_orders(country="KR").orders
print("modified", [(o.number, o.price) for o in pending])
pending[0].cancel()
print("pending after cancel", len(acc.pending_orders(country="KR").orders))
print("daily", [(o.number, o.qty, o.executed_qty) for o in acc.daily_orders(start=kst_today, end=kst_today,
                                                                              country="KR").orders])

virtual = PyKis(id="tester", account=account, appkey=appkey, secretkey=secret, virtual_id="tester",
                virtual_appkey=vappkey, virtual_secretkey=vsecret, keep_token=False)
vstock = virtual.stock("000660")
print("virtual buy", vstock.buy(qty=1).number)
vprice = vstock.quote().price
resting = vstock.buy(price=int(vprice * Decimal("0.9")) // 1000 * 1000, qty=1)
resting.cancel()
print("virtual holdings", [(s.symbol, s.qty) for s in virtual.account().balance(country="KR").stocks])

# -- US stocks: quotes on the real host (as python-kis always does), orders where the account is --------------
request = urllib.request.Request(f"http://127.0.0.1:{port}/sim/us-hours", data=json.dumps({"always_open": True})
                                 .encode(), headers={"Content-Type": "application/json"}, method="POST")
print("simulator US market", json.loads(urllib.request.urlopen(request).read())["phase"])
us = kis.stock("AAPL", market="NASDAQ")  # quotable-market probe (HHDFS00000300) + search-info PRDT_TYPE_CD 512
uq = us.quote()  # price-detail (HHDFS76200200)
print("US stock", us.name, us.market, "quote", uq.price, uq.change, "tick", uq.tick, "KRW rate", uq.exchange_rate)
print("US chart bars (paged by python-kis)", len(us.chart(period="day").bars))
usd = acc.balance(country="US").deposits["USD"]
print("US deposit", usd.amount, "rate", usd.exchange_rate)
print("US limit buy (marketable)", us.buy(price=uq.price + 1, qty=2).number)
print("US holdings", [(s.symbol, s.market, s.qty, s.price) for s in acc.balance(country="US").stocks])
low = max(Decimal("0.01"), (uq.price * Decimal("0.8")).quantize(Decimal("0.01")))
urest = us.buy(price=low, qty=1)
print("US resting limit", urest.number, "pending", [(o.number, o.qty) for o in acc.pending_orders(country="US").orders])
urest.cancel()
print("US pending after cancel", len(acc.pending_orders(country="US").orders))
vus = virtual.stock("TSLA", market="NASDAQ")
vq = vus.quote()
print("virtual US buy", vus.buy(price=vq.price + 1, qty=1).number)
vrest = vus.buy(price=max(Decimal("0.01"), (vq.price * Decimal("0.8")).quantize(Decimal("0.01"))), qty=1)
vrest.cancel()
vbal = virtual.account().balance(country="US")
print("virtual US holdings", [(s.symbol, s.qty) for s in vbal.stocks], "deposit", vbal.deposits["USD"].amount)
print("OK")
