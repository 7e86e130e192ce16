"""Typed KIS errors. Every error carries the KIS ``msg_cd``/``msg1`` when the server gave them."""

from __future__ import annotations


class KisError(Exception):
    """Base of every error raised by the KIS client."""

    def __init__(self, message: str, *, msg_cd: str = "", msg1: str = "", rt_cd: str = "",
                 http_status: int | None = None, tr_id: str = "") -> None:
        super().__init__(message)
        self.msg_cd = msg_cd
        self.msg1 = msg1.strip()
        self.rt_cd = rt_cd
        self.http_status = http_status
        self.tr_id = tr_id
        # For transport and server errors: could the request have reached KIS? (None: not applicable)
        self.maybe_sent: bool | None = None
        # The call failed inside KIS's usual nightly maintenance window (set by the REST client), so the
        # likely cause is maintenance rather than an outage.
        self.in_maintenance_window = False

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} [{self.msg_cd}] {self.msg1}".rstrip() if self.msg_cd else base


class KisApiError(KisError):
    """A business error: HTTP 200 with ``rt_cd != "0"`` (order rejected, bad input, no data)."""


class KisNotFound(KisApiError):
    """No such stock / product."""


class KisOrderRejected(KisApiError):
    """The broker refused the order (insufficient cash or shares, off-tick price, market closed...)."""


class KisGatewayError(KisError):
    """A gateway error (``EGW…``, whatever the HTTP status): the request never reached the broker's ledger."""


class KisRateLimited(KisGatewayError):
    """``EGW00201``: too many requests per second for this app key."""


class KisAuthError(KisGatewayError):
    """App key, secret or token refused (``EGW00103/105/121/122/123``)."""


class KisTokenExpired(KisAuthError):
    """``EGW00121``/``EGW00123``: the access token expired or is no longer valid."""


class KisTokenIssueThrottled(KisGatewayError):
    """``EGW00133``: a token was issued less than a minute ago for this app key."""


class KisServerError(KisError):
    """A 5xx or malformed reply without a KIS envelope: the outcome of the call is unknown."""


class KisTransportError(KisError):
    """The connection failed or timed out: the outcome of the call is unknown."""


class KisOrderUncertain(KisError):
    """An order call failed in a way that leaves its outcome unknown, and reconciliation could not
    tell whether the broker accepted it. The order must not be re-sent; the user must check."""


class KisPagingError(KisError):
    """A paged query did not terminate (more pages than the safety cap)."""
