"""KIS real-time WebSocket client: one connection per app key.

* Subscriptions are reference counted: many consumers of one (TR, key) share one registration;
  the last one out unregisters. The per-connection cap is enforced here with
  :class:`SubscriptionLimitError`, never by silently dropping: 40, as KIS's own client and python-kis
  keep it (the server takes 41).
* A subscribe waits for its acknowledgement, judged by ``rt_cd == "0"`` as KIS's own client does
  (not by a list of ``msg_cd`` values); an error ack raises :class:`SubscriptionError`.
  Execution notices are decrypted with the key/iv from their ack.
* PINGPONG is echoed. On a dropped connection the client reconnects with exponential back-off and
  jitter, re-subscribes everything, and tells consumers with a :class:`Reconnected` event, so they
  can treat the first tick after it as following a gap.
* Consumers register plain callbacks (:meth:`add_listener`), called on the event loop for every
  event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Self

import websockets
from websockets.asyncio.client import ClientConnection, connect

from chatbot import tasks
from chatbot.kis import protocol as p
from chatbot.kis.errors import KisError
from chatbot.kis.frames import Decrypt, FrameError, Record, parse_frame

log = logging.getLogger(__name__)


class SubscriptionError(KisError):
    """KIS refused a subscription (``OPSP…`` in the ack)."""


class SubscriptionLimitError(SubscriptionError):
    """The connection already carries the maximum number of registrations."""


@dataclass(frozen=True, slots=True)
class Reconnected:
    """The connection came back after a drop; events may have been missed in between."""

    attempt: int


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection dropped. ``last_heard``: when the server was last heard on it (epoch seconds; its
    opening if nothing came), so a gap judged from then covers a drop noticed late (a silent one is only
    found by the ping timeout, up to 40 s on)."""

    reason: str
    last_heard: float | None = None


Event = Record | Reconnected | Disconnected
Listener = Callable[[Event], None]
SubKey = tuple[str, str]


class RealtimeClient:
    def __init__(self, ws_url: str, approval_key: Callable[[], Awaitable[str]], *,
                 max_subscriptions: int = p.WS_CLIENT_MAX_SUBSCRIPTIONS, ack_timeout: float = 10.0,
                 backoff_initial: float = 0.2, backoff_max: float = 15.0, custtype: str = "P",
                 parser: Callable[[str, Decrypt | None], list[Record]] = parse_frame) -> None:
        self.ws_url = ws_url.rstrip("/") + (p.WS_PATH if not ws_url.rstrip("/").endswith(p.WS_PATH) else "")
        self._approval_key = approval_key
        self.max_subscriptions = max_subscriptions
        self.ack_timeout = ack_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.custtype = custtype
        self._parse = parser  # chatbot.kis.overseas_frames.parse_frame reads US frames as well
        self._refs: dict[SubKey, int] = {}
        self._acks: dict[SubKey, asyncio.Future[None]] = {}
        self._ciphers: dict[str, tuple[str, str]] = {}  # tr_id -> (key, iv)
        self._listeners: list[Listener] = []
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.connected = asyncio.Event()
        self.connections = 0
        self.reconnects = 0
        self.frames = 0
        self.bad_frames = 0
        self.last_heard: float | None = None  # epoch seconds of the last message (or the opening) on the connection
        self._approval: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="kis-realtime")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await tasks.cancel(task)
        for future in self._acks.values():
            if not future.done():
                future.cancel()
        self._acks.clear()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- consumers ---------------------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every event (on the event loop; it must not block). Returns a remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    @property
    def subscriptions(self) -> dict[SubKey, int]:
        return dict(self._refs)

    # -- subscriptions -----------------------------------------------------------------------------------
    async def subscribe(self, tr_id: str, tr_key: str) -> None:
        """Take a reference on (tr_id, tr_key); the first one registers it with KIS."""
        key = (tr_id, tr_key)
        async with self._lock:
            if key in self._refs:
                self._refs[key] += 1
                return
            if len(self._refs) >= self.max_subscriptions:
                raise SubscriptionLimitError(
                    f"this connection already carries {self.max_subscriptions} subscriptions",
                    msg_cd=p.OPSP_MAX_SUBSCRIPTIONS)
            self._refs[key] = 1
            future = self._acks[key] = asyncio.get_running_loop().create_future()
            try:
                if self.connected.is_set():
                    await self._send(p.WS_SUBSCRIBE, key)
            except BaseException:  # (an approval key refused): not subscribed, so not counted either
                self._refs.pop(key, None)
                self._acks.pop(key, None)
                raise
        try:
            # Not wait_for: on 3.11 a cancel (a stop) meeting the ack is swallowed, the caller runs on.
            async with asyncio.timeout(self.ack_timeout):
                await asyncio.shield(future)
        except BaseException:
            async with self._lock:
                self._refs.pop(key, None)
                self._acks.pop(key, None)
            raise

    async def unsubscribe(self, tr_id: str, tr_key: str) -> None:
        """Drop a reference; the last one unregisters (tr_type 2)."""
        key = (tr_id, tr_key)
        async with self._lock:
            refs = self._refs.get(key, 0)
            if refs > 1:
                self._refs[key] = refs - 1
                return
            if refs == 0:
                return
            del self._refs[key]
            self._acks.pop(key, None)
            if self.connected.is_set():
                await self._send(p.WS_UNSUBSCRIBE, key)

    async def _send(self, tr_type: str, key: SubKey) -> None:
        ws = self._ws
        if ws is None:
            return
        # Key order as KIS's own client sends it (python-kis starts with approval_key).
        message = {"header": {"content-type": "utf-8", "approval_key": await self._approval_value(),
                              "tr_type": tr_type, "custtype": self.custtype},
                   "body": {"input": {"tr_id": key[0], "tr_key": key[1]}}}
        try:
            await ws.send(json.dumps(message))
        except websockets.ConnectionClosed:
            pass  # the reconnect re-sends every subscription

    async def _approval_value(self) -> str:
        if self._approval is None:
            self._approval = await self._approval_key()
        return self._approval

    # -- connection --------------------------------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                async with connect(self.ws_url, open_timeout=10, ping_interval=20, ping_timeout=20,
                                   max_size=2**22) as ws:
                    await self._on_open(ws)
                    attempt = 0
                    async for message in ws:
                        await self._on_message(ws, message)
                reason = "closed by server"
            except asyncio.CancelledError:
                await self._on_close("client closed")
                raise
            except (OSError, websockets.WebSocketException, KisError, TimeoutError) as exc:
                reason = type(exc).__name__
            except Exception:  # a bug in a listener must not end the feed
                log.exception("realtime loop failed")
                reason = "internal error"
            await self._on_close(reason)
            attempt += 1
            delay = min(self.backoff_max, self.backoff_initial * 2 ** (attempt - 1)) * (0.5 + random.random())
            log.warning("realtime connection lost; reconnecting",
                        extra={"reason": reason, "attempt": attempt, "delay_s": round(delay, 2)})
            await asyncio.sleep(delay)

    async def _on_open(self, ws: ClientConnection) -> None:
        self._ws = ws
        self.last_heard = time.time()
        self._ciphers.clear()
        # A new session takes a fresh approval key: KIS checks the key when a session opens and a key lives
        # 24 h (KIS_API.md §3.3), so one kept from an earlier connection can be refused (OPSP0011) on a
        # reconnect, and every re-registration with it; nobody waits on those to send them again.
        self._approval = None
        self.connections += 1
        self.connected.set()
        if self.connections > 1:
            self.reconnects += 1
            self._emit(Reconnected(self.reconnects))
        async with self._lock:
            keys = list(self._refs)
        for key in keys:  # re-subscribe everything, including registrations whose ack never came
            await self._send(p.WS_SUBSCRIBE, key)
        log.info("realtime connected", extra={"subscriptions": len(keys), "connection": self.connections})

    async def _on_close(self, reason: str) -> None:
        if self._ws is not None:
            self._ws = None
            self.connected.clear()
            self._emit(Disconnected(reason, self.last_heard))

    async def _on_message(self, ws: ClientConnection, message: str | bytes) -> None:
        self.last_heard = time.time()
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        if message[:1] in ("0", "1"):
            self.frames += 1
            try:
                records = self._parse(message, self._decrypt)
            except (FrameError, ValueError) as exc:
                self.bad_frames += 1
                log.warning("bad realtime frame skipped", extra={"error": str(exc)[:120], "frame": message[:60]})
                return
            for record in records:
                self._emit(record)
            return
        try:
            control = json.loads(message)
            header = control["header"]
            tr_id = header["tr_id"]
        except (ValueError, KeyError, TypeError):
            self.bad_frames += 1
            log.warning("bad realtime control message skipped", extra={"frame": message[:60]})
            return
        if tr_id == p.WS_PINGPONG:
            await ws.send(message)  # echo, as python-kis and KIS's own samples do
            return
        self._on_ack(tr_id, str(header.get("tr_key", "")), control.get("body") or {})

    def _on_ack(self, tr_id: str, tr_key: str, body: dict[str, Any]) -> None:
        rt_cd, msg_cd, msg1 = str(body.get("rt_cd", "")), str(body.get("msg_cd", "")), str(body.get("msg1", ""))
        output = body.get("output") or {}
        if output.get("key") and output.get("iv"):
            self._ciphers[tr_id] = (str(output["key"]), str(output["iv"]))
        future = self._acks.get((tr_id, tr_key))
        # KIS's own client tells an unsubscribe ack by its text (msg1 "UNSUBSCRIBE …"); it settles nothing.
        unsubscribe = msg1.strip().upper().startswith("UNSUB") or msg_cd in (p.OPSP_UNSUBSCRIBED,
                                                                               p.OPSP_NOT_SUBSCRIBED)
        if rt_cd == p.RT_OK or msg_cd == p.OPSP_ALREADY_SUBSCRIBED:  # a duplicate (rt_cd 1): it is registered
            if not unsubscribe and future is not None and not future.done():
                future.set_result(None)
            return
        if unsubscribe:
            return
        error = SubscriptionError(f"KIS refused {tr_id} {tr_key}", msg_cd=msg_cd, msg1=msg1,
                                  rt_cd=str(body.get("rt_cd", "")))
        if "approval" in msg1.lower():
            self._approval = None  # fetch a new approval key next time
        # An error naming no subscription (OPSP8996 comes as tr_id "(null)") concerns the whole
        # connection: every registration still waiting for its ack fails with it.
        waiting = [future] if future is not None else [f for f in self._acks.values() if not f.done()]
        for pending in waiting:
            if not pending.done():
                pending.set_exception(error)
        log.warning("realtime subscription refused", extra={"tr_id": tr_id, "msg_cd": msg_cd, "msg1": msg1})

    def _decrypt(self, tr_id: str, payload: str) -> str:
        cipher = self._ciphers.get(tr_id)
        if cipher is None:
            raise FrameError(f"no key for encrypted {tr_id}")
        try:
            return p.notice_decrypt(payload, *cipher)
        except ValueError as exc:
            raise FrameError(f"cannot decrypt {tr_id}: {exc}") from None

    def _emit(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("realtime listener failed")
