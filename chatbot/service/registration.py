"""A user's own KIS credentials: register (verified by issuing a token first), show, remove;
and, in simulator mode, a fresh paper account."""

from __future__ import annotations

import asyncio
import logging
import re
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chatbot.kis import protocol as p
from chatbot.kis.errors import KisApiError, KisAuthError, KisError, KisTokenIssueThrottled
from chatbot.kis.models import Account
from chatbot.kis.rest import KisCredentials, mask
from chatbot.kis.token import token_cache_key
from chatbot.service.accounts import AccountProvider
from chatbot.service.errors import UserError, kis_unavailable
from chatbot.service.views import Mode
from chatbot.storage.credentials import CredentialStore, PaperAccountStore

log = logging.getLogger(__name__)
_KEY_CHARS = frozenset(string.ascii_letters + string.digits + "+/=_-.")
_ACCOUNT = re.compile(r"^\s*(\d{8})-?(\d{2})\s*$")
_HTS_ID = re.compile(r"^[A-Za-z0-9_]{2,16}$")
SKIP_WORDS = frozenset({"-", "skip", "건너뛰기", "없음"})
# What a KIS key or secret looks like inside any text: a run of key characters (also one glued to a
# label, as in "appsecret=…"). A secret is 180 characters; any run of 120 or more is treated as one.
_KEY_RUN = re.compile(r"[A-Za-z0-9+/=_.\-]+")
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
SECRET_MIN_RUN = 120
REVOKE_TIMEOUT = 5.0  # seconds /logout waits for KIS to revoke the user's token


@dataclass(frozen=True, slots=True)
class MeView:
    mode: Mode
    key_hint: str | None  # None: no credentials of their own
    account: str | None
    paper_account: bool
    fill_pushes: bool = True  # False: KIS keys fill notices by HTS id and none was given (the user is told)


@dataclass(frozen=True, slots=True)
class LogoutView:
    """What /logout did: the keys are always deleted; the token only when nobody else is on the app key."""
    token_kept: bool  # True: the app key is in use by others too (never said who), so its token was left at KIS


def check_app_key(text: str) -> str:
    key = text.strip()
    if len(key) != p.APP_KEY_LENGTH or not set(key) <= _KEY_CHARS:
        raise UserError("bad_app_key", length=p.APP_KEY_LENGTH)
    return key


def check_app_secret(text: str) -> str:
    secret = text.strip()
    if len(secret) != p.APP_SECRET_LENGTH or not set(secret) <= _KEY_CHARS:
        raise UserError("bad_app_secret", length=p.APP_SECRET_LENGTH)
    return secret


def secret_kind(text: str) -> str | None:
    """``"app_secret"`` or ``"app_key"`` when ``text`` carries something shaped like a KIS app secret or
    app key (36 characters; letters and digits both present in either; a key is not a UUID), else None."""
    kind: str | None = None
    for run in _KEY_RUN.findall(text):
        if len(run) >= SECRET_MIN_RUN and _mixed(run):
            return "app_secret"
        if len(run) == p.APP_KEY_LENGTH and _looks_like_key(run):
            kind = "app_key"
    if kind is None:
        for run in _ALNUM_RUN.findall(text):
            if len(run) == p.APP_KEY_LENGTH and _looks_like_key(run):
                kind = "app_key"
    return kind


def _mixed(run: str) -> bool:
    return any(c.isdigit() for c in run) and any(c.isalpha() for c in run)


def _looks_like_key(run: str) -> bool:
    return not _UUID.match(run) and _mixed(run) and set(run) <= _KEY_CHARS


def parse_account(text: str) -> Account:
    match = _ACCOUNT.match(text)
    if match is None:
        raise UserError("bad_account")
    return Account(match.group(1), match.group(2))


def parse_hts_id(text: str) -> str | None:
    """The HTS id for execution notices; ``-`` (or skip) for none."""
    value = text.strip()
    if value.lower() in SKIP_WORDS:
        return None
    if not _HTS_ID.match(value):
        raise UserError("bad_hts_id")
    return value


class Registration:
    def __init__(self, accounts: AccountProvider, credentials: CredentialStore, paper: PaperAccountStore,
                 mode: Mode) -> None:
        self.accounts = accounts
        self.credentials = credentials
        self.paper = paper
        self.mode = mode
        # Told when a user's own key comes or goes (the feed planner moves their symbols).
        self.keys_changed: Callable[[int], None] = lambda user_id: None
        # The app keys of the operator's own clients (the market-data feed's): a user may have registered one.
        self.operator_app_keys: frozenset[str] = frozenset()
        # Told, in order, when a user's account changes (/login, /logout, a paper reset): their pending cards are
        # voided, their conditional orders for the old account cancelled (wired by the runtime).
        self.account_changed: list[Callable[[int], Awaitable[object]]] = []

    async def register(self, user_id: int, app_key: str, app_secret: str, account: Account,
                       hts_id: str | None = None) -> MeView:
        """Issue a token with the credentials; only if KIS accepts them are they stored."""
        creds = KisCredentials(check_app_key(app_key), check_app_secret(app_secret), account)
        client = self.accounts.client_for(creds)
        try:
            await client.verify_credentials()
        except KisTokenIssueThrottled:
            raise UserError("kis_token_wait") from None
        except (KisAuthError, KisApiError) as exc:
            log.info("registration refused by KIS", extra={"user_id": user_id, "msg_cd": exc.msg_cd})
            raise UserError("login_refused", code=exc.msg_cd or "-") from None
        except KisError as exc:
            raise kis_unavailable(exc) from None
        await self.credentials.save(user_id, self.accounts.endpoint.cache_scope, creds, hts_id)
        self.accounts.forget(user_id)
        self.keys_changed(user_id)
        await self._account_changed(user_id)
        log.info("credentials registered", extra={"user_id": user_id, "key": mask(creds.app_key)})
        return MeView(self.mode, mask(creds.app_key), str(account), False,
                      fill_pushes=hts_id is not None or self.mode is Mode.PAPER)

    async def logout(self, user_id: int) -> LogoutView | None:
        """None: no keys were registered."""
        creds = await self.credentials.load(user_id)
        if creds is None:
            return None
        # KIS keeps a token valid a day and hands the same one out again within 6 h: forgetting our copy alone
        # leaves a working token at KIS. Revoked first (best effort, bounded: removing the keys never waits on KIS).
        # But KIS has one token per app key: on a key someone else uses too (the operator's feed, another user
        # who registered it) revoking would cut them off, so the token and its cached copy are left alone.
        shared_with = await self._shared_with(user_id, creds.app_key)
        if shared_with:
            log.info("token kept at logout: the app key is in use by others",
                     extra={"user_id": user_id, "shared_with": shared_with})
        else:
            try:
                await asyncio.wait_for(self.accounts.client_for(creds).revoke_token(), REVOKE_TIMEOUT)
            except (TimeoutError, KisError) as exc:
                log.warning("token not revoked at logout", extra={"user_id": user_id, "error": type(exc).__name__})
            await self.accounts.token_store.delete(
                token_cache_key(self.accounts.endpoint.cache_scope, creds.app_key, creds.app_secret))
        await self.credentials.delete(user_id)
        self.accounts.forget(user_id)
        self.keys_changed(user_id)
        await self._account_changed(user_id)
        log.info("credentials removed", extra={"user_id": user_id})
        return LogoutView(token_kept=bool(shared_with))

    async def _shared_with(self, user_id: int, app_key: str) -> str:
        """Who else is on ``app_key`` ("operator", "users", both or ""), so that its token must stay."""
        who = ["operator"] if app_key in self.operator_app_keys else []
        if await self.credentials.others_with_key(user_id, app_key):
            who.append("users")
        return ",".join(who)

    async def me(self, user_id: int) -> MeView:
        row = await self.credentials.info(user_id)
        if row is not None:
            return MeView(self.mode, row.key_hint, row.account, False,
                          fill_pushes=bool(row.hts_id) or self.mode is Mode.PAPER)
        return MeView(self.mode, None, None, self.mode is Mode.PAPER)

    async def reset_paper(self, user_id: int) -> None:
        """Simulator mode: a fresh paper account with the starting cash (the old one is abandoned)."""
        if self.mode is not Mode.PAPER:
            raise UserError("reset_paper_only")
        await self.paper.renew(user_id)
        self.accounts.forget(user_id)
        await self._account_changed(user_id)

    async def _account_changed(self, user_id: int) -> None:
        """Each listener in turn; one failing is logged and the next still runs (what it left undone is caught
        where it would matter: a card or a conditional order for another account never sends)."""
        for listener in self.account_changed:
            try:
                await listener(user_id)
            except Exception:
                log.exception("an account change was not fully applied", extra={"user_id": user_id})
