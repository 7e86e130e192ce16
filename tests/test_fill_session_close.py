"""A user's session closed (UserSessions.close) takes the fill watcher's listener off it and forgets the
user's watch: the next order watches again, on a fresh session. Before, the listener stayed on the closed
session and the user stayed counted as watched, so every later watch returned at once and their fill
notices went unheard until a restart."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

from chatbot.alerts.feeds import UserSessions
from chatbot.service.fills import FillWatcher


class StandInSession:
    """What the fill watcher uses of a user's RealtimeClient; counts its listeners and subscriptions."""

    reconnects = 0

    def __init__(self) -> None:
        self.listeners: list[Callable[[Any], None]] = []
        self.subscribed: set[tuple[str, str]] = set()
        self.closed = False

    def add_listener(self, listener: Callable[[Any], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener) if listener in self.listeners else None

    async def subscribe(self, tr_id: str, key: str) -> None:
        self.subscribed.add((tr_id, key))

    async def unsubscribe(self, tr_id: str, key: str) -> None:
        self.subscribed.discard((tr_id, key))

    async def aclose(self) -> None:
        self.closed = True


class StandInSessions(UserSessions):
    """UserSessions opening stand-in sessions (its closing and on_close are the real ones)."""

    def __init__(self) -> None:
        super().__init__("ws://127.0.0.1:1")
        self.opened: list[StandInSession] = []

    async def session(self, user_id: int, approval_key: Callable[[], Awaitable[str]]) -> Any:
        client = self._clients.get(user_id)
        if client is None:
            opened = StandInSession()
            self.opened.append(opened)
            self._clients[user_id] = client = opened  # type: ignore[assignment]
        return client


class StandInAccounts:
    async def notice_key(self, user_id: int) -> str:
        return f"hts{user_id}"

    async def for_user(self, user_id: int) -> Any:
        async def approval_key() -> str:
            return "approval"
        return SimpleNamespace(client=SimpleNamespace(approval_key=approval_key))


class StandInUsers:
    async def language(self, user_id: int) -> str:
        return "ko"


async def test_a_closed_session_loses_the_watchers_listener_and_the_next_watch_opens_a_fresh_one() -> None:
    sessions = StandInSessions()
    # (no database: watching a user reads none)
    watcher = FillWatcher(None, StandInAccounts(), StandInUsers(), "ws://127.0.0.1:1",  # type: ignore[arg-type]
                          "H0STCNI0", lambda: None, sessions=sessions)
    rounds = 5
    for n in range(rounds):
        await watcher.watch(7, 7)
        assert watcher.watched() == {7} and len(sessions.opened) == n + 1
        current = sessions.opened[-1]
        assert len(current.listeners) == 1 and current.subscribed == {("H0STCNI0", "hts7")}
        await sessions.close(7)  # the session goes (a replica gives it up, the planner lets it go)
        assert current.closed
        assert len(current.listeners) == 0 and watcher.watched() == set()
    assert sum(len(s.listeners) for s in sessions.opened) == 0  # nothing left on any closed session
    # A session of another user closing leaves this user's watch alone.
    await watcher.watch(7, 7)
    await watcher.watch(8, 8)
    await sessions.close(8)
    assert watcher.watched() == {7} and len(sessions.opened[-2].listeners) == 1
    await watcher.stop()  # closes the rest; each close forgets its user
    assert watcher.watched() == set() and sum(len(s.listeners) for s in sessions.opened) == 0
    assert not sessions._closed  # the watcher's close callback went with it
