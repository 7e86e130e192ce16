"""Markets: what can be traded where.

Today the KRX symbol directory (``directory``, ``search``, ``symbols``), the bundled snapshot it
starts from (``bundled``), KIS's master files (``kis_master``) and their daily refresh
(``refresh``). The US rows ship in the snapshot already, kept out of KRX lookups by the venue filter.
Each market's profile (tick rule, calendar, currency, fees, directory) belongs here as well.
"""
