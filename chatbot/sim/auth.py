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
from dataclasses import dataclass
from typing import Any

from chatbot.kis import protocol as p

_KEY_CHARS = frozenset(string.ascii_letters + string.digits + "+/=_-.")
DOC_PREFIX = "auth:"  # the state store's key of one app key's document: auth:<kid>
LEGACY_DOC = "auth"  # the one document every app key's state used to share
APPROVAL_LIFETIME_SECONDS = 86_400.0
MAX_APPROVALS_PER_KEY = 16


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
        self._approvals: dict[str, str] = {}  # approval-key digest -> kid
        self._approvals_of: dict[str, dict[str, float]] = {}  # kid -> {approval digest: issued at}
        self._accounts: dict[str, str] = {}
        self._keys_of_account: dict[str, set[str]] = {}
        self._tokens_of: dict[str, set[str]] = {}  # kid -> digests of its tokens
        self._dirty: set[str] = set()  # kids whose document must be written
        self._legacy_pending = False  # an "auth" document of the old layout is to be emptied
        self.issued_count = 0
        self.approvals_issued = 0  # /oauth2/Approval requests answered with a key

    @property
    def changed(self) -> bool:
        """Some app key's state changed since :meth:`take_dirty`."""
        return bool(self._dirty) or self._legacy_pending

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
            self._dirty.add(kid)
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
        digest = _digest(token)
        self._tokens[digest] = issued
        self._tokens_of.setdefault(kid, set()).add(digest)
        self._latest[kid] = issued
        self.issued_count += 1
        self._dirty.add(kid)
        return issued

    def revoke(self, token: str) -> bool:
        digest = _digest(token)
        issued = self._tokens.pop(digest, None)
        if issued is None:
            return False
        self._tokens_of.get(issued.app_key, set()).discard(digest)
        if self._latest.get(issued.app_key) is issued:
            del self._latest[issued.app_key]
        self._dirty.add(issued.app_key)
        return True

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
            self._dirty.add(issued.app_key)
        self._latest.clear()
        self._last_issue.clear()

    # -- WebSocket approval keys -----------------------------------------------------------------------
    def issue_approval(self, app_key: str | None, secret: str | None) -> str:
        self.check_pair(app_key, secret)
        assert app_key is not None
        key = secrets.token_hex(32) + "-" + secrets.token_hex(8)
        kid, digest, now = _kid(app_key), _digest(key), self.clock()
        mine = self._approvals_of.setdefault(kid, {})
        for old, issued_at in sorted(mine.items(), key=lambda item: item[1]):  # KIS's last 24 h, at most 16
            if now - issued_at < APPROVAL_LIFETIME_SECONDS and len(mine) < MAX_APPROVALS_PER_KEY:
                break
            del mine[old]
            self._approvals.pop(old, None)
        mine[digest] = now
        self._approvals[digest] = kid
        self._dirty.add(kid)
        self.approvals_issued += 1
        return key

    def approval_app_key(self, approval_key: str, *, opening: bool = False) -> str | None:
        """The (digest of the) app key an approval key was issued to. ``opening`` (the first message of a
        session): only a key of the last 24 h opens one; an open session goes on with the key it opened
        with (KIS_API.md §3.3)."""
        digest = _digest(approval_key)
        kid = self._approvals.get(digest)
        if kid is None or not opening:
            return kid
        issued_at = self._approvals_of.get(kid, {}).get(digest)
        return kid if issued_at is not None and self.clock() - issued_at < APPROVAL_LIFETIME_SECONDS else None

    def expire_approvals(self) -> None:
        """Fault switch: every approval key is a day old (a session opened with one is refused)."""
        stale = self.clock() - APPROVAL_LIFETIME_SECONDS - 1
        for kid, mine in self._approvals_of.items():
            for digest in mine:
                mine[digest] = min(mine[digest], stale)
            self._dirty.add(kid)

    # -- accounts ----------------------------------------------------------------------------------------
    def bind_account(self, app_key: str, account_id: str) -> bool:
        """Bind an app key to its account on first use; False when it belongs to another account."""
        kid = _kid(app_key)
        bound = self._accounts.get(kid)
        if bound is None:
            self._accounts[kid] = account_id
            self._keys_of_account.setdefault(account_id, set()).add(kid)
            self._dirty.add(kid)
            return True
        return bound == account_id

    def app_keys_of(self, account_id: str) -> frozenset[str]:
        """The (digests of the) app keys trading ``account_id``."""
        return frozenset(self._keys_of_account.get(account_id, ()))

    # -- persistence ---------------------------------------------------------------------------------------
    # One document per app key ("auth:<kid>"): issuing a token rewrites that key's few hundred bytes,
    # not every key's state (one document for all of them grew to megabytes, rewritten per token).
    def take_dirty(self) -> dict[str, dict[str, Any]]:
        """The documents of the app keys changed since the last call, keyed ``auth:<kid>`` (and an
        empty ``auth`` document once an old-layout one has been rewritten key by key)."""
        dirty, self._dirty = self._dirty, set()
        docs = {DOC_PREFIX + kid: self._document(kid) for kid in dirty}
        if self._legacy_pending:
            self._legacy_pending = False
            docs[LEGACY_DOC] = {}
        return docs

    def _document(self, kid: str) -> dict[str, Any]:
        now = self.clock()
        tokens = {d: {"issued_at": i.issued_at, "expires_at": i.expires_at}
                  for d in self._tokens_of.get(kid, ()) if (i := self._tokens.get(d)) is not None and i.expires_at > now}
        latest = self._latest.get(kid)
        return {
            "secret_digest": self._secret_digests.get(kid),
            "account": self._accounts.get(kid),
            "tokens": tokens,  # digests only: a token is checked by its digest, never stored
            "latest": _digest(latest.token) if latest and latest.token and _digest(latest.token) in tokens else None,
            "approvals": dict(self._approvals_of.get(kid, {})),
        }

    def restore(self, documents: dict[str, dict[str, Any]]) -> None:
        """Load the ``auth:<kid>`` documents (and an ``auth`` document of the one-document layout,
        whose keys are then written in the new layout at the next save)."""
        legacy = documents.get(LEGACY_DOC) or {}
        if legacy:
            self._restore_legacy(legacy)
        for key, doc in documents.items():
            if key.startswith(DOC_PREFIX) and doc:
                self._restore_key(key[len(DOC_PREFIX):], doc)

    def _restore_key(self, kid: str, doc: dict[str, Any]) -> None:
        if doc.get("secret_digest"):
            self._secret_digests[kid] = doc["secret_digest"]
        if doc.get("account"):
            self._accounts[kid] = doc["account"]
            self._keys_of_account.setdefault(doc["account"], set()).add(kid)
        for digest, t in (doc.get("tokens") or {}).items():
            self._tokens[digest] = IssuedToken("", kid, t["issued_at"], t["expires_at"])
            self._tokens_of.setdefault(kid, set()).add(digest)
        if doc.get("latest") in self._tokens:
            self._latest[kid] = self._tokens[doc["latest"]]
        for digest, issued_at in (doc.get("approvals") or {}).items():
            self._approvals[digest] = kid
            self._approvals_of.setdefault(kid, {})[digest] = issued_at

    def _restore_legacy(self, data: dict[str, Any]) -> None:
        now = self.clock()
        kids: set[str] = set(data.get("secret_digests", {}))
        self._secret_digests.update(data.get("secret_digests", {}))
        for digest, i in data.get("tokens", {}).items():
            issued = IssuedToken(**{**i, "token": ""})
            self._tokens[digest] = issued
            self._tokens_of.setdefault(issued.app_key, set()).add(digest)
            kids.add(issued.app_key)
        self._latest.update({k: self._tokens[t] for k, t in data.get("latest", {}).items() if t in self._tokens})
        for kid, account in data.get("accounts", {}).items():
            self._accounts[kid] = account
            self._keys_of_account.setdefault(account, set()).add(kid)
            kids.add(kid)
        for digest, kid in data.get("approvals", {}).items():
            self._approvals[digest] = kid
            self._approvals_of.setdefault(kid, {})[digest] = now
            kids.add(kid)
        self._dirty |= kids
        self._legacy_pending = True


def _new_token() -> str:
    header = base64.urlsafe_b64encode(b'{"typ":"JWT","alg":"HS512"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(secrets.token_bytes(180)).rstrip(b"=").decode()
    return f"{header}.{body}.{secrets.token_urlsafe(64)}"


def kst_expiry_text(expires_at: float) -> str:
    return dt.datetime.fromtimestamp(expires_at, p.KST).strftime(p.TOKEN_TIME_FORMAT)
