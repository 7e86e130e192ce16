"""Where the simulator keeps its state between runs: a key → JSON document store.

Documents are small and many (one per paper account, one per app key, the market): a save writes
only the documents that changed."""

from __future__ import annotations

import copy
from typing import Any, Protocol


class StateStore(Protocol):
    async def load_all(self) -> dict[str, dict[str, Any]]: ...

    async def save_many(self, documents: dict[str, dict[str, Any]]) -> None: ...


class MemoryStateStore:
    """Keeps state for the life of the process (standalone simulator, tests)."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.saves = 0

    async def load_all(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self.documents)

    async def save_many(self, documents: dict[str, dict[str, Any]]) -> None:
        self.saves += 1
        self.documents.update(copy.deepcopy(documents))
