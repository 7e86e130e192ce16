"""A real-time client that may stand by: KIS allows one WebSocket session per app key, so among
replicas only the one that owns a key's session connects. The others keep its subscriptions (counted
as :class:`~chatbot.kis.realtime.RealtimeClient` counts them) without a connection, and connect,
registering all of them, when they take the session over."""

from __future__ import annotations

import asyncio

from chatbot.kis import protocol as p
from chatbot.kis.realtime import RealtimeClient, SubscriptionLimitError


class StandbyRealtimeClient(RealtimeClient):
    """:meth:`start` connects; until then (and after :meth:`stand_by`) a subscribe only takes its reference."""

    @property
    def standing_by(self) -> bool:
        return self._task is None

    async def subscribe(self, tr_id: str, tr_key: str) -> None:
        if not self.standing_by:
            await super().subscribe(tr_id, tr_key)
            return
        key = (tr_id, tr_key)
        async with self._lock:
            if key in self._refs:
                self._refs[key] += 1
                return
            if len(self._refs) >= self.max_subscriptions:
                raise SubscriptionLimitError(f"this connection already carries {self.max_subscriptions} subscriptions",
                                             msg_cd=p.OPSP_MAX_SUBSCRIPTIONS)
            self._refs[key] = 1
            # Settled by its acknowledgement once connected; nobody waits for it meanwhile.
            future = self._acks[key] = asyncio.get_running_loop().create_future()
            future.add_done_callback(_settled)

    async def stand_by(self) -> None:
        """Close the connection (another replica owns the session now), keeping every subscription."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass


def _settled(future: asyncio.Future[None]) -> None:
    """Nobody awaits a registration made while standing by: its refusal is logged by the client, not raised."""
    if not future.cancelled():
        future.exception()
