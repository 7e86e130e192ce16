"""``python -m chatbot run`` processes forked from one Python that has imported the bot once.

A process start-up is mostly imports (PTB, SQLAlchemy, Alembic, aiohttp, httpx, the bot: ~2.3 s of CPU,
several times that on a loaded machine). Tests that run the bot as a real process so that it can be
killed (``kill -9``) and started again, or run as replicas, fork it from a *zygote*: a Python started
once per test process that has imported those modules and read nothing else (no configuration, no
environment, no connection, no thread). Each child then does what ``python -m chatbot ARGS`` does with
the given environment, working directory and log file: ``runpy.run_module("chatbot")`` with
``sys.argv`` set. It is a separate process (its own pid, database connections, sockets and signal
handling); SIGTERM and SIGKILL reach it directly. Only the imports are shared.

:func:`spawn` returns a :class:`ForkedProcess`, which answers what the tests ask of an
``asyncio.subprocess.Process``: ``pid``, ``returncode`` (negative signal number when killed),
``send_signal``, ``kill``, ``terminate`` and ``wait``. The entry points themselves (``python -m
chatbot`` run by an operator) are tested as fresh processes in test_cli.py.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ZYGOTE = r'''
import json, os, runpy, selectors, sys, threading

# What ``python -m chatbot run`` imports, but not chatbot.__main__ itself: run as ``__main__`` by each child, as
# ``python -m`` does, it must not be in sys.modules under its own name too.
for name in ("argparse", "chatbot.config", "chatbot.logs", "chatbot.security.keyring", "chatbot.runtime",
             "chatbot.telegram.runner", "chatbot.telegram.app", "chatbot.http_server", "chatbot.metrics", "chatbot.sim.server", "chatbot.storage.leases",
             "alembic.command", "alembic.config", "alembic.util.exc", "alembic.runtime.migration",
             "sqlalchemy.dialects.sqlite.aiosqlite", "sqlalchemy.dialects.postgresql.psycopg", "psycopg", "aiosqlite"):
    try:
        __import__(name)
    except ImportError:
        pass
if threading.active_count() != 1:
    sys.stderr.write(f"forkserver: {threading.active_count()} threads after the imports\n")


def child(spec):
    log = os.open(spec["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(spec["stdin"] or os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    os.chdir(spec["cwd"])
    os.environ.clear()
    os.environ.update(spec["env"])
    sys.argv = ["chatbot", *spec["args"]]
    runpy.run_module("chatbot", run_name="__main__", alter_sys=True)
    sys.exit(0)


selector = selectors.DefaultSelector()
selector.register(0, selectors.EVENT_READ)
children = {}  # pid -> request id
buffer = b""
print("ready", flush=True)
while True:
    if selector.select(timeout=0.02):
        data = os.read(0, 1 << 16)
        if not data:  # the test process is gone: so are its bots
            for pid in children:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            break
        buffer += data
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            spec = json.loads(line)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                selector.close()
                child(spec)
            children[pid] = spec["id"]
            print(f"pid {spec['id']} {pid}", flush=True)
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        print(f"exit {children.pop(pid)} {os.waitstatus_to_exitcode(status)}", flush=True)
'''


class ForkServer:
    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._next_id = 0
        self.pids: dict[int, int] = {}  # request id -> pid
        self.exits: dict[int, int] = {}  # request id -> exit code (negative: killed by that signal)
        self.ready = threading.Event()

    def start(self) -> None:
        """Start the zygote (its imports run meanwhile); does nothing when it runs already."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return
            self.ready.clear()
            self._proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], cwd=ROOT, stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE)
            threading.Thread(target=self._read, args=(self._proc,), name="forkserver", daemon=True).start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            words = raw.decode().split()
            if words == ["ready"]:
                self.ready.set()
            elif len(words) == 3 and words[0] == "pid":
                self.pids[int(words[1])] = int(words[2])
            elif len(words) == 3 and words[0] == "exit":
                self.exits[int(words[1])] = int(words[2])

    async def spawn(self, args: list[str], env: dict[str, str], log: Path, stdin: Path | None = None,
                    timeout: float = 120.0) -> ForkedProcess:
        self.start()
        with self._lock:
            self._next_id += 1
            request = self._next_id
            proc = self._proc
            assert proc is not None and proc.stdin is not None
            line = json.dumps({"id": request, "args": args, "env": env, "log": str(log), "cwd": str(ROOT),
                               "stdin": str(stdin) if stdin is not None else None})
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()
        deadline = asyncio.get_running_loop().time() + timeout
        while request not in self.pids:
            if proc.poll() is not None:
                raise RuntimeError(f"the fork server exited ({proc.returncode})")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("the fork server did not fork")
            await asyncio.sleep(0.01)
        return ForkedProcess(self, request, self.pids.pop(request))

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.close()  # the zygote kills what is left of its children and exits
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


class ForkedProcess:
    """A bot forked by the zygote, as much of ``asyncio.subprocess.Process`` as the tests use."""

    def __init__(self, server: ForkServer, request: int, pid: int) -> None:
        self._server = server
        self._request = request
        self.pid = pid

    @property
    def returncode(self) -> int | None:
        return self._server.exits.get(self._request)

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:  # not reaped yet, so the pid is still this process's
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    async def wait(self) -> int:
        while (code := self.returncode) is None:
            await asyncio.sleep(0.02)
        return code


SERVER = ForkServer()
atexit.register(SERVER.close)


async def spawn(args: list[str], env: dict[str, str], log: Path, stdin: Path | None = None) -> ForkedProcess:
    """``python -m chatbot *args`` with ``env`` (the whole environment), stdout and stderr appended to ``log``,
    standard input read from the file ``stdin`` (default: none, /dev/null)."""
    return await SERVER.spawn(args, env, log, stdin)
