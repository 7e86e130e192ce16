"""Errors a user can act on. ``key`` names a message in the front end's catalogue; ``params`` fill it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from chatbot.kis.errors import KisError, KisNotFound, KisTokenIssueThrottled
from chatbot.markets.money import Money

log = logging.getLogger(__name__)


class UserError(Exception):
    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params

    def __repr__(self) -> str:
        return f"UserError({self.key!r}, {self.params!r})"


def off_tick(price: Money, tick: Money) -> UserError:
    """``price`` is not on the ``tick``: the message names the two prices on it either side, all as money."""
    below = Money(price.amount - price.amount % tick.amount, price.currency)
    return UserError("off_tick", price=price, tick=tick, below=below, above=below + tick)


def kis_unavailable(exc: KisError) -> UserError:
    """A KIS call that failed for a reason the user cannot fix: "KIS is not responding", or — when it
    failed inside KIS's usual nightly maintenance window (``exc.in_maintenance_window``, set by the REST
    client on its injectable clock) — "KIS is probably in its nightly maintenance"."""
    if exc.in_maintenance_window:
        return UserError("kis_nightly_maintenance", detail=exc.msg1)
    return UserError("kis_unavailable", detail=exc.msg1)


@contextlib.contextmanager
def kis_errors() -> Iterator[None]:
    """KIS failures on queries, as messages a user can act on."""
    try:
        yield
    except KisNotFound:
        raise UserError("unknown_symbol", query="") from None
    except KisTokenIssueThrottled:
        raise UserError("kis_token_wait") from None
    except KisError as exc:
        log.warning("kis query failed", extra={"error": type(exc).__name__, "msg_cd": exc.msg_cd})
        raise kis_unavailable(exc) from None


def is_transient_lock(exc: BaseException) -> bool:
    """The database busy, not broken: a lock held elsewhere past the writers' patience, or every pooled
    connection in use past the pool's timeout (SQLAlchemy's ``TimeoutError``: PostgreSQL's bounded pool
    under a burst). Nothing was done by the statement that met it: a front end handles the update again,
    and if it stays busy asks the user to send it again ("nothing changed"), never "it failed"."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout  # lazy: this module stays light

    from chatbot.storage.db import is_transient_lock as locked

    return locked(exc) or isinstance(exc, PoolTimeout)
