"""The simulator's own process (``python -m chatbot.sim.child CHANNEL REAL PAPER WS-REAL WS-PAPER``,
spawned by :class:`chatbot.sim.process.SimulatorProcess`, which describes the protocol): the
descriptors of the frames' socket and of the four listening sockets, inherited."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any

from chatbot.sim.options import SimulatorOptions
from chatbot.sim.process import read_frame, write_frame
from chatbot.sim.server import KisSimulator

log = logging.getLogger("chatbot.sim.child")
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class Channel:
    """Frames to and from the bot's process; the saves waiting for their acknowledgement."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.documents: asyncio.Future[dict[str, dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self.stop = asyncio.Event()  # asked to stop, or the bot's process is gone (``gone``)
        self.gone = False
        self._saves: dict[int, asyncio.Future[None]] = {}
        self._ids = itertools.count(1)

    async def dispatch(self) -> None:
        try:
            await self._dispatch()
        except Exception:  # whatever it is, this process cannot go on: it ends (the bot restarts it)
            log.exception("the simulator's process could not read what the bot's process sent; ending")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.writer.drain(), 1.0)
            os._exit(1)

    async def _dispatch(self) -> None:
        while (frame := await read_frame(self.reader)) is not None:
            kind, payload = frame
            if kind == "docs":
                flat = json.loads(payload)  # key, document, key, document, …
                self.documents.set_result(dict(zip(flat[::2], flat[1::2], strict=True)))
            elif kind == "saved":
                answer = json.loads(payload)
                waiting = self._saves.pop(answer["id"])
                if "error" in answer:
                    waiting.set_exception(RuntimeError(f"the bot's process could not save: {answer['error']}"))
                else:
                    waiting.set_result(None)
            elif kind == "stop":
                self.stop.set()
        self.gone = True
        self.stop.set()

    async def save(self, documents: dict[str, dict[str, Any]]) -> None:
        if self.gone:
            raise RuntimeError("the bot's process is gone")
        request = next(self._ids)
        done = self._saves[request] = asyncio.get_running_loop().create_future()
        write_frame(self.writer, "save", json.dumps({"id": request, "docs": documents}).encode())
        await done


class PipeStateStore:
    """``chatbot.sim.store.StateStore`` over the channel: the bot's process keeps the documents."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    async def load_all(self) -> dict[str, dict[str, Any]]:
        return await self.channel.documents

    async def save_many(self, documents: dict[str, dict[str, Any]]) -> None:
        if documents:
            await self.channel.save(documents)


class ForwardLogs(logging.Handler):
    """Each record, formatted to JSON, to the bot's process, which logs it with its own handlers."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        super().__init__()
        self.writer = writer
        self.loop = asyncio.get_running_loop()
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = {k: v for k, v in vars(record).items() if k not in _STANDARD or k in (
                "name", "levelno", "levelname", "pathname", "filename", "module", "lineno", "funcName",
                "created", "msecs", "relativeCreated", "process", "processName", "threadName")}
            fields["msg"], fields["args"] = record.getMessage(), None
            if record.exc_info:
                fields["exc_text"] = logging.Formatter().formatException(record.exc_info)
            payload = json.dumps(fields, default=str).encode()
            if threading.get_ident() == self.thread:
                write_frame(self.writer, "log", payload)
            else:
                self.loop.call_soon_threadsafe(write_frame, self.writer, "log", payload)
        except Exception:  # noqa: BLE001 - as logging's own handlers do: a record that cannot go is reported
            self.handleError(record)


async def main(channel_fd: int, listeners: list[int]) -> None:
    reader, writer = await asyncio.open_connection(sock=socket.socket(fileno=channel_fd))
    init = await read_frame(reader)
    if init is None:
        return
    setup = json.loads(init[1])
    root = logging.getLogger()
    root.handlers[:] = [ForwardLogs(writer)]
    root.setLevel(setup["level"])
    channel = Channel(reader, writer)
    dispatching = asyncio.create_task(channel.dispatch())
    sim = KisSimulator(SimulatorOptions.from_json(setup["options"]), PipeStateStore(channel))
    starting = asyncio.create_task(sim.start(sockets=[socket.socket(fileno=fd) for fd in listeners]))
    stopping = asyncio.create_task(channel.stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():  # asked to stop before it was up: nothing was restored, nothing to save
        os._exit(0)
    starting.result()  # a failed start ends the process (the bot's start fails)
    write_frame(writer, "ready")
    await stopping
    if channel.gone:  # the bot's process ended: nobody to save to
        os._exit(0)
    await sim.stop()
    await writer.drain()
    dispatching.cancel()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the bot's process stops this one
    fds = [int(fd) for fd in sys.argv[1:]]
    asyncio.run(main(fds[0], fds[1:]))
