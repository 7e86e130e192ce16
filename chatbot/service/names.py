"""Which name a user reads a domestic stock by: an English-language user the directory's English name
(``Samsung Electronics``) where it has one, everyone else (and a stock it has none for) the Korean name
stored with what they set (``삼성전자``: KIS's, on alerts, fills, conditional orders).

Quotes and cards carry the directory's :class:`Symbol` and pick a name by language themselves; pushes
carry the name stored when their alert, order or conditional order was made, so they are given the
reader's name here, on their way to the front end's notifier (:class:`NamedNotifier`). The views named
after KIS's replies or stored orders (/balance, /orders, /stops, the armed reply, the daily report) are
given it by :meth:`SymbolNames.name` in the service that builds them, for the language asked in."""

from __future__ import annotations

import dataclasses

from chatbot.alerts.notices import (
    AlertFired,
    ConditionalNotice,
    Delivery,
    Notice,
    Notifier,
    OrderFilled,
    OrderRefused,
)
from chatbot.markets.money import Currency
from chatbot.symbols import SymbolDirectory


class SymbolNames:
    def __init__(self, directory: SymbolDirectory) -> None:
        self.directory = directory  # refreshed in place from KIS's master files

    def english(self, code: str) -> str | None:
        """The directory's English name of a KRX code, None when it has none."""
        found = self.directory.by_code(code) if code else None
        return (found.name_en or None) if found is not None else None

    def name(self, code: str, name: str, language: str) -> str:
        """``name`` (as stored) in the words of a ``language`` reader."""
        if language != "en":
            return name
        return self.english(code) or name

    def localise(self, notice: Notice) -> Notice:
        """A push with its domestic stock named as its reader reads it (US stocks keep theirs: the directory
        has no English names for their shares)."""
        if isinstance(notice, AlertFired | OrderFilled | OrderRefused | ConditionalNotice) \
                and notice.currency == Currency.KRW.value and notice.language == "en":
            name = self.name(notice.code, notice.name, notice.language)
            if name != notice.name:
                return dataclasses.replace(notice, name=name)
        return notice


class NamedNotifier:
    """The front end's notifier, handed every push with its stock named for its reader."""

    def __init__(self, notifier: Notifier, names: SymbolNames) -> None:
        self.notifier = notifier
        self.names = names

    async def deliver(self, chat_id: int, notice: Notice) -> Delivery:
        return await self.notifier.deliver(chat_id, self.names.localise(notice))
