"""The simulator's gateway: app-key pairs, access tokens, WebSocket approval keys, account binding.

Rules (KIS_API.md §3): any well-formed key pair is accepted and bound on first sight (the same
app key with another secret is refused); a token re-requested within 6 hours comes back unchanged;
optionally, a second issuance within a minute is refused with ``EGW00133`` (off by default, as
third-party test suites build several clients a minute). An app key is bound to the first account
it trades, as a real KIS app key belongs to one account.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import string
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from chatbot.kis import protocol as p

KST = dt.timezone(dt.timedelta(hours=9))
_KEY_CHARS = frozenset(string.ascii_letters + string.digits + "+/=_-.")


class AuthFailure(Exception):
    """A gateway refusal: ``http_status`` and the KIS code to answer with."""

    def __init__(self, http_status: int, msg_cd: str, msg1: str) -> None:
        super().__init__(msg_cd)
        self.http_status = http_status
        self.msg_cd = msg_cd
        self.msg1 = msg1


@dataclass(slots=True)
class IssuedToken:
    token: str
    app_key: str
    issued_at: float
    expires_at: float


def well_formed_key(app_key: str) -> bool:
    return len(app_key) == p.APP_KEY_LENGTH and set(app_key) <= _KEY_CHARS


def well_formed_secret(secret: str) -> bool:
    return len(secret) == p.APP_SECRET_LENGTH and set(secret) <= _KEY_CHARS


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _kid(app_key: str) -> str:
    """How the registry refers to an app key: its digest, so no state it persists holds a usable key."""
    return _digest("appkey:" + app_key)


class AuthRegistry:
    """Tokens, approvals and key pairs, all keyed by digests (app keys, tokens, approval keys)."""

    def __init__(self, clock: Callable[[], float], enforce_issue_interval: bool = False) -> None:
        self.clock = clock
        self.enforce_issue_interval = enforce_issue_interval
        self._secret_digests: dict[str, str] = {}
        self._tokens: dict[str, IssuedToken] = {}
        self._latest: dict[str, IssuedToken] = {}
        self._last_issue: dict[str, float] = {}
        self._approvals: dict[str, str] = {}
        self._accounts: dict[str, str] = {}
        self.issued_count = 0
        self.changed = False

    # -- key pairs -------------------------------------------------------------------------------
    def check_pair(self, app_key: str | None, secret: str | None) -> None:
        if not app_key or not well_formed_key(app_key):
            raise AuthFailure(500, p.EGW_APPKEY_INVALID, "유효하지 않은 AppKey입니다.")
        if not secret or not well_formed_secret(secret):
            raise AuthFailure(500, p.EGW_APPSECRET_INVALID, "유효하지 않은 AppSecret입니다.")
        kid = _kid(app_key)
        known = self._secret_digests.get(kid)
        digest = _digest(secret)
        if known is None:
            self._secret_digests[kid] = digest
            self.changed = True
        elif not secrets.compare_digest(known, digest):
            raise AuthFailure(500, p.EGW_APPSECRET_INVALID, "유효하지 않은 AppSecret입니다.")

    # -- access tokens ---------------------------------------------------------------------------------
    def issue_token(self, app_key: str | None, secret: str | None) -> IssuedToken:
        self.check_pair(app_key, secret)
        assert app_key is not None
        kid = _kid(app_key)
        now = self.clock()
        last = self._last_issue.get(kid)
        if self.enforce_issue_interval and last is not None and now - last < p.TOKEN_ISSUE_MIN_INTERVAL_SECONDS:
            raise AuthFailure(403, p.EGW_TOKEN_TOO_OFTEN, "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)")
        self._last_issue[kid] = now
        latest = self._latest.get(kid)
        # The same token within 6 hours; after a restart only its digest survives, so a new one is issued.
        if latest and latest.token and now - latest.issued_at < p.TOKEN_SAME_WITHIN_SECONDS and latest.expires_at > now:
            return latest
        token = _new_token()
        issued = IssuedToken(token, kid, now, now + p.TOKEN_LIFETIME_SECONDS)
        self._tokens[_digest(token)] = issued
        self._latest[kid] = issued
        self.issued_count += 1
        self.changed = True
        return issued

    def revoke(self, token: str) -> bool:
        issued = self._tokens.pop(_digest(token), None)
        if issued and self._latest.get(issued.app_key) is issued:
            del self._latest[issued.app_key]
        self.changed = True
        return issued is not None

    def authenticate(self, authorization: str | None, app_key: str | None, secret: str | None) -> str:
        """Check a REST call's headers; return the app key."""
        self.check_pair(app_key, secret)
        assert app_key is not None
        scheme, _, token = (authorization or "").strip().partition(" ")
        issued = self._tokens.get(_digest(token.strip())) if scheme.lower() == "bearer" else None
        if issued is None or issued.app_key != _kid(app_key):
            raise AuthFailure(500, p.EGW_TOKEN_INVALID, "유효하지 않은 token 입니다.")
        if issued.expires_at <= self.clock():
            raise AuthFailure(500, p.EGW_TOKEN_EXPIRED, "기간이 만료된 token 입니다.")
        return app_key

    def expire_all(self) -> None:
        """Fault switch: every token is expired (as if a day passed); issuance is allowed again."""
        now = self.clock()
        for issued in self._tokens.values():
            issued.expires_at = min(issued.expires_at, now - 1)
        self._latest.clear()
        self._last_issue.clear()
        self.changed = True

    # -- WebSocket approval keys -----------------------------------------------------------------------
    def issue_approval(self, app_key: str | None, secret: str | None) -> str:
        self.check_pair(app_key, secret)
        assert app_key is not None
        key = secrets.token_hex(32) + "-" + secrets.token_hex(8)
        self._approvals[_digest(key)] = _kid(app_key)
        return key

    def approval_app_key(self, approval_key: str) -> str | None:
        """The (digest of the) app key an approval key was issued to."""
        return self._approvals.get(_digest(approval_key))

    # -- accounts ----------------------------------------------------------------------------------------
    def bind_account(self, app_key: str, account_id: str) -> bool:
        """Bind an app key to its account on first use; False when it belongs to another account."""
        kid = _kid(app_key)
        bound = self._accounts.get(kid)
        if bound is None:
            self._accounts[kid] = account_id
            self.changed = True
            return True
        return bound == account_id

    def app_keys_of(self, account_id: str) -> frozenset[str]:
        """The (digests of the) app keys trading ``account_id``."""
        return frozenset(kid for kid, account in self._accounts.items() if account == account_id)

    # -- persistence -------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        now = self.clock()
        live = {d: {**asdict(i), "token": ""} for d, i in self._tokens.items() if i.expires_at > now}
        return {
            "secret_digests": dict(self._secret_digests),
            "tokens": live,  # digests only: a token is checked by its digest, never stored
            "latest": {kid: _digest(i.token) for kid, i in self._latest.items() if i.token
                       and _digest(i.token) in live},
            "accounts": dict(self._accounts),
            "approvals": dict(self._approvals),
        }

    def restore(self, data: dict[str, Any]) -> None:
        self._secret_digests = dict(data.get("secret_digests", {}))
        self._tokens = {t: IssuedToken(**i) for t, i in data.get("tokens", {}).items()}
        self._latest = {k: self._tokens[t] for k, t in data.get("latest", {}).items() if t in self._tokens}
        self._accounts = dict(data.get("accounts", {}))
        self._approvals = dict(data.get("approvals", {}))


def _new_token() -> str:
    header = base64.urlsafe_b64encode(b'{"typ":"JWT","alg":"HS512"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(secrets.token_bytes(180)).rstrip(b"=").decode()
    return f"{header}.{body}.{secrets.token_urlsafe(64)}"


def kst_expiry_text(expires_at: float) -> str:
    return dt.datetime.fromtimestamp(expires_at, KST).strftime(p.TOKEN_TIME_FORMAT)
