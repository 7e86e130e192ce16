"""Errors a user can act on. ``key`` names a message in the front end's catalogue; ``params`` fill it."""

from __future__ import annotations

from typing import Any


class UserError(Exception):
    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params

    def __repr__(self) -> str:
        return f"UserError({self.key!r}, {self.params!r})"


def is_transient_lock(exc: BaseException) -> bool:
    """A database lock held elsewhere past the writers' patience: a front end retries, never shows it."""
    from chatbot.storage.db import is_transient_lock as locked  # lazy: this module stays light

    return locked(exc)
