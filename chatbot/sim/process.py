"""The embedded simulator in a process of its own: ``chatbot run`` and ``chatbot console`` in simulator mode.

Why: before the bot answers, the simulator imports aiohttp (~0.25 CPU s) and restores every paper
account and app key (20,000 documents at 10,000 users, ~0.2 CPU s); in the bot's process that was
on the start's one core, after the bot's own imports. In a child spawned as the runtime starts,
it runs beside the bot's start on the machine's other core, and the bot's process never loads aiohttp.

- The bot's process makes the four listening sockets (real and paper REST, real and paper WebSocket)
  and hands them to the child: the URLs are known at once, and a connection made before the
  simulator listens (or while it restarts) waits in the socket's backlog instead of being refused.
- The child has no database: the bot's process reads the documents (as text, after its
  migrations) and sends them; every save the simulator makes is sent back, written by the bot's
  process (SQLite keeps one writing process) and acknowledged before the simulator answers the
  request that made it, as when it ran in-process. Its log records are logged by the bot's process.
- :meth:`SimulatorProcess.wait_ready`: the child listens with its state restored (the runtime
  waits for it before the feed starts: a bot that says it is running answers /price).
- Stop: the simulator's own stop (its last saves), then the child exits. The bot's process gone
  (its pipe closed): the child exits at once, having nothing left to save to. The child runs in a
  session of its own, so a terminal's Ctrl-C reaches the bot only, which stops it.
- A child that dies after it was ready is logged and started again on the same sockets, restoring
  what its saves wrote (every change is saved before it is answered); meanwhile requests wait in
  the backlog, within the bot's own timeouts. One that dies before it was ever ready fails the start.

Frames both ways on a socket pair: a header line ``<kind> <length>\\n``, then ``length`` bytes of
payload (JSON).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from chatbot.sim.options import SimulatorOptions

if TYPE_CHECKING:
    from chatbot.config import Settings

log = logging.getLogger(__name__)
LISTENERS = ("real", "virtual", "ws-real", "ws-virtual")  # the sockets' order, as the child takes them
STOP_SECONDS = 30.0  # the child's last saves; then it is killed
FIRST_RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0
STEADY_SECONDS = 60.0  # a child that ran this long restarts after the first delay again
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent.parent)  # where this `chatbot` package is


class TextStateStore(Protocol):
    """Where the simulator's documents are (``chatbot.storage.sim_state.DbSimStateStore``)."""

    async def load_text(self) -> str: ...  # [key, document, key, document, …]

    async def save_many(self, documents: dict[str, dict[str, Any]]) -> None: ...


def write_frame(writer: asyncio.StreamWriter, kind: str, payload: bytes = b"") -> None:
    writer.write(b"%s %d\n" % (kind.encode(), len(payload)) + payload)


async def read_frame(reader: asyncio.StreamReader) -> tuple[str, bytes] | None:
    """The next frame, or None at the end of the stream (the other side gone, whatever way)."""
    try:
        header = await reader.readline()
        if not header.endswith(b"\n"):
            return None
        kind, length = header.split()
        payload = await reader.readexactly(int(length)) if int(length) else b""
    except (asyncio.IncompleteReadError, ConnectionError):  # a reset: it ended with frames unread
        return None
    return kind.decode(), payload


_Child = tuple[asyncio.subprocess.Process, asyncio.StreamReader, asyncio.StreamWriter]


class SimulatorProcess:
    """The parent's side: sockets, the child, its documents and saves, its restarts."""

    def __init__(self, options: SimulatorOptions, host: str = "127.0.0.1") -> None:
        self.options = options
        self.host = host
        self.store: TextStateStore | None = None  # given by load_state
        self.restarts = 0  # children started again after one died
        self._sockets: list[socket.socket] = []
        self._urls: dict[str, str] = {}
        self._may_load = asyncio.Event()  # the database is migrated: the documents can be read
        self._ready = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._channel: asyncio.StreamWriter | None = None  # to the running child
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._failure: str | None = None  # why the first child never became ready

    # -- the bot's side of the lifecycle --------------------------------------------------------------
    @classmethod
    async def for_settings(cls, settings: Settings) -> SimulatorProcess | None:
        """In simulator mode, the simulator's process, started (the sooner the better: it imports and
        waits for its documents while the bot's own process imports and starts); else None."""
        if settings.kis.environment != "simulator":
            return None
        s = settings.simulator
        process = cls(SimulatorOptions(seed=s.seed, starting_cash=s.starting_cash, tick_interval=s.tick_interval_seconds,
                                       enforce_token_issue_interval=True), s.host)
        await process.start()
        return process

    async def start(self) -> None:
        """Listen and spawn the child (now: its imports begin); it restores once :meth:`load_state` is called."""
        for name in LISTENERS:
            sock = socket.create_server((self.host, 0), backlog=128)
            self._sockets.append(sock)
            host, port = sock.getsockname()[:2]
            self._urls[name] = f"{'ws' if name.startswith('ws-') else 'http'}://{host}:{port}"
        first = await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(first), name="kis-sim-process")

    def load_state(self, store: TextStateStore) -> None:
        """The database is at its head: the child's documents may be read from ``store`` and sent, and
        its saves written there."""
        self.store = store
        self._may_load.set()

    async def wait_ready(self) -> None:
        """Until the child listens with its state restored; :class:`RuntimeError` if it never will."""
        assert self._supervisor is not None
        ready = asyncio.create_task(self._ready.wait())
        try:
            await asyncio.wait({ready, self._supervisor}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if not self._ready.is_set():
            raise RuntimeError(f"the KIS simulator's process did not start: {self._failure or 'it ended'}")

    async def stop(self) -> None:
        self._stopping = True
        supervisor, proc, channel = self._supervisor, self._proc, self._channel
        if supervisor is not None:
            if proc is not None and proc.returncode is None and channel is not None:
                with contextlib.suppress(ConnectionError):
                    write_frame(channel, "stop")
            else:  # between two children, or before the first
                supervisor.cancel()
            try:
                await asyncio.wait_for(asyncio.shield(supervisor), STOP_SECONDS)
            except TimeoutError:
                log.error("the KIS simulator's process did not stop in time: killed")
                self._kill()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()

    def rest_url(self, flavour: str = "real") -> str:
        return self._urls[flavour]

    def ws_url(self, flavour: str = "real") -> str:
        return self._urls[f"ws-{flavour}"]

    @property
    def pid(self) -> int | None:
        """The running child's process id (tests)."""
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    # -- the child --------------------------------------------------------------------------------------
    async def _supervise(self, child: _Child) -> None:
        delay = FIRST_RESTART_DELAY
        while True:
            started = time.monotonic()
            code = await self._run_child(child)
            if self._stopping:
                return
            if not self._ready.is_set() and not self.restarts:
                self._failure = f"exit status {code}"
                return
            log.error("the KIS simulator's process ended; starting it again",
                      extra={"exit_status": code, "delay_seconds": delay})
            self._ready.clear()
            delay = FIRST_RESTART_DELAY if time.monotonic() - started > STEADY_SECONDS else delay
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RESTART_DELAY)
            if self._stopping:
                return
            self.restarts += 1
            child = await self._spawn()

    async def _spawn(self) -> _Child:
        ours, theirs = socket.socketpair()  # the frames' channel
        fds = [theirs.fileno(), *(sock.fileno() for sock in self._sockets)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [_PACKAGE_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])])}
        try:
            proc = self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "chatbot.sim.child", *map(str, fds), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, pass_fds=fds, start_new_session=True, env=env)
        finally:
            theirs.close()
        from_child, to_child = await asyncio.open_connection(sock=ours)
        self._channel = to_child
        write_frame(to_child, "init", json.dumps({"options": self.options.to_json(),
                                                  "level": logging.getLogger().getEffectiveLevel()}).encode())
        return proc, from_child, to_child

    async def _run_child(self, child: _Child) -> int:
        proc, from_child, to_child = child
        feeding = asyncio.create_task(self._send_state(to_child), name="kis-sim-state")
        try:
            await self._serve(from_child, to_child)
        finally:
            feeding.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await feeding
            if self._stopping and proc.returncode is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), STOP_SECONDS)
            if proc.returncode is None:
                proc.kill()
            to_child.close()
        return await proc.wait()

    async def _send_state(self, to_child: asyncio.StreamWriter) -> None:
        await self._may_load.wait()
        assert self.store is not None
        write_frame(to_child, "docs", (await self.store.load_text()).encode())
        await to_child.drain()

    async def _serve(self, from_child: asyncio.StreamReader, to_child: asyncio.StreamWriter) -> None:
        while (frame := await read_frame(from_child)) is not None:
            kind, payload = frame
            if kind == "save":
                request = json.loads(payload)
                try:
                    assert self.store is not None  # the child saves only what it restored
                    await self.store.save_many(request["docs"])
                except Exception as exc:  # the simulator's request fails, as it did in-process
                    log.exception("the KIS simulator's state could not be saved")
                    answer = {"id": request["id"], "error": type(exc).__name__}
                else:
                    answer = {"id": request["id"]}
                with contextlib.suppress(ConnectionError):
                    write_frame(to_child, "saved", json.dumps(answer).encode())
            elif kind == "log":
                record = logging.makeLogRecord(json.loads(payload))
                logger = logging.getLogger(record.name)
                if logger.isEnabledFor(record.levelno):
                    logger.handle(record)
            elif kind == "ready":
                if self.restarts:
                    log.warning("the KIS simulator's process is up again", extra={"restarts": self.restarts})
                self._ready.set()

    def _kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
