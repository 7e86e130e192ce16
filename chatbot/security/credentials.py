"""What a user's broker access is made of: the account number, the app key and secret, and the access
token issued for them. Value types only; encrypting them at rest is :mod:`chatbot.security.secretbox`'s
job, using them is the KIS client's (``chatbot.kis``), storing them is ``chatbot.storage``'s. Here so that
storage and the client share the types without either importing the other.

``repr`` never shows a secret: a key shows as :func:`mask` gives it, a token not at all."""

from __future__ import annotations

from dataclasses import dataclass

REFRESH_MARGIN_SECONDS = 600.0  # re-issue when less than 10 minutes are left, as python-kis does


@dataclass(frozen=True, slots=True)
class Account:
    """A KIS account number ``XXXXXXXX-XX``: 8-digit CANO + 2-digit product code."""

    cano: str
    product: str = "01"

    @classmethod
    def parse(cls, text: str) -> Account:
        digits = text.strip().replace("-", "")
        if len(digits) != 10 or not digits.isdigit():
            raise ValueError("account number must be 8 digits, a dash and 2 digits (XXXXXXXX-XX)")
        return cls(digits[:8], digits[8:])

    def __str__(self) -> str:
        return f"{self.cano}-{self.product}"


@dataclass(frozen=True, slots=True)
class KisCredentials:
    app_key: str
    app_secret: str
    account: Account

    def __repr__(self) -> str:
        return f"KisCredentials(app_key={mask(self.app_key)}, account={self.account})"


def mask(secret: str) -> str:
    """``PSab…9x``: enough to recognise a key, never enough to use it."""
    if len(secret) < 8:
        return "…"
    return f"{secret[:4]}…{secret[-2:]}"


def mask_account(account: str) -> str:
    """``12******-01``: an account number as every message shows it (the first two digits and the product
    code, enough to tell one's accounts apart); anything not shaped like one, in full (nothing to hide)."""
    text = account.strip()
    return f"{text[:2]}******{text[-3:]}" if len(text) >= 8 else text


@dataclass(frozen=True, slots=True)
class CachedToken:
    access_token: str
    expires_at: float  # epoch seconds
    issued_at: float

    def __repr__(self) -> str:
        return f"CachedToken(expires_at={self.expires_at!r}, issued_at={self.issued_at!r})"

    def usable(self, now: float, margin: float = REFRESH_MARGIN_SECONDS) -> bool:
        return self.expires_at - margin > now
