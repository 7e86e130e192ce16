"""Small builders shared by the tests."""

from __future__ import annotations

import secrets

from chatbot.kis.models import Account
from chatbot.kis.rest import KisCredentials


def new_credentials(account: str | None = None) -> KisCredentials:
    """A fresh, well-formed KIS key pair (36-char app key, 180-char secret) and account."""
    app_key = "PS" + secrets.token_hex(17)
    app_secret = secrets.token_urlsafe(135)
    assert len(app_key) == 36 and len(app_secret) == 180
    acct = account or f"{secrets.randbelow(10**8):08d}-01"
    return KisCredentials(app_key, app_secret, Account.parse(acct))
