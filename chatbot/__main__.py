"""Entry point: ``chatbot run | console | sim``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from chatbot import __version__
from chatbot.config import CONSOLE_LOG_FILE, ConfigError, Settings, load_settings
from chatbot.logs import setup_logging
from chatbot.security.keyring import KeyringError

if TYPE_CHECKING:
    from chatbot.runtime import Runtime


class StartupError(Exception):
    """The bot cannot start (database unwritable or unreachable, held by maintenance): one line, exit 2."""


def _parser() -> argparse.ArgumentParser:
    # --config is accepted before the command and after it (`chatbot --config F run`, `chatbot run --config F`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS,
                        help="path to a TOML config file (see config.example.toml)")
    parser = argparse.ArgumentParser(prog="chatbot", description="KIS trading bot for Telegram", parents=[common])
    parser.add_argument("--version", action="version", version=f"kis-chatops {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", parents=[common], help="run the Telegram bot (long polling or webhook)")
    console = sub.add_parser("console", parents=[common],
                             help="chat with the bot in this terminal (no Telegram needed)")
    console.add_argument("--user-id", type=int, default=1, help="the Telegram user id you play (default 1)")
    console.add_argument("--lang", choices=("ko", "en"), default="ko")
    console.add_argument("--verbose", action="store_true",
                         help="show the bot's logs here, between chat lines (default: they go to a file)")
    console.add_argument("--charts-dir", default="./data/charts",
                         help="where /chart images are saved (default ./data/charts)")
    sub.add_parser("rotate-key", parents=[common], help="re-encrypt every stored secret with a new master key "
                                                        "(stop the bot first)")
    sim = sub.add_parser("sim", parents=[common], help="run the KIS simulator standalone")
    sim.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=None, help="real-like REST port (default: any free port)")
    sim.add_argument("--virtual-port", type=int, default=None, help="paper-like REST port (default: port+1)")
    sim.add_argument("--seed", type=int, default=None)
    sim.add_argument("--tick-interval", type=float, default=None, help="seconds between market steps")
    sim.add_argument("--strict-token-rate", action="store_true",
                     help="refuse a second token issuance within a minute (EGW00133), as KIS does")
    return parser


async def _run_sim(settings: Settings, args: argparse.Namespace) -> None:
    from chatbot.sim.server import KisSimulator, SimulatorOptions

    s = settings.simulator
    options = SimulatorOptions(
        seed=args.seed if args.seed is not None else s.seed, starting_cash=s.starting_cash,
        tick_interval=args.tick_interval if args.tick_interval is not None else s.tick_interval_seconds,
        enforce_token_issue_interval=args.strict_token_rate)
    port = args.port if args.port is not None else s.port
    virtual_port = args.virtual_port if args.virtual_port is not None else (port + 1 if port else 0)
    sim = KisSimulator(options)
    # WebSocket ports follow KIS's layout: REST port + 2 (real) and + 3 (paper) when a port is given.
    await sim.start(args.host or s.host, port, virtual_port, port + 2 if port else 0, port + 3 if port else 0)
    print(f"KIS simulator (seed {options.seed}), Ctrl-C to stop", flush=True)
    print(f"  real-like  REST {sim.rest_url('real')}   WebSocket {sim.ws_url('real')}/tryitout", flush=True)
    print(f"  paper-like REST {sim.rest_url('virtual')}   WebSocket {sim.ws_url('virtual')}/tryitout", flush=True)
    try:
        await _stop_event().wait()
    finally:
        await sim.stop()


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def _start_runtime(settings: Settings, observe_kis: Callable[[str, float], None] | None = None) -> Runtime:
    """Runtime.start, with what an operator must fix turned into one line (:class:`StartupError`)."""
    from chatbot.runtime import Runtime

    try:
        return await Runtime.start(settings, observe_kis=observe_kis)
    except _operator_errors() as exc:
        raise _startup_error(exc, settings.database.url) from None


def _operator_errors() -> tuple[type[BaseException], ...]:
    """Start-up failures an operator must fix: database unreachable, full, read-only or from a newer
    version; the database held by maintenance."""
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import DBAPIError

    from chatbot.storage.leases import LeaseHeld

    return LeaseHeld, DBAPIError, CommandError, OSError


def _startup_error(exc: BaseException, url: str) -> StartupError:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from chatbot.storage.leases import LeaseHeld

    where = make_url(url).render_as_string(hide_password=True)
    if isinstance(exc, LeaseHeld):
        return StartupError(f"cannot start: {exc}")
    if isinstance(exc, DBAPIError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
        return StartupError(f"database error at start-up ({where}): {reason}")
    if isinstance(exc, OSError):
        return StartupError(f"database error at start-up ({where}): {exc.strerror or exc}"
                            f"{f' ({exc.filename})' if exc.filename else ''}")
    return StartupError(f"database schema error at start-up ({where}): {exc}")


def settle_heap() -> None:
    """Once the bot is up: move what start-up built (the modules, the symbol directory, the alert
    book, the simulator's market) out of the cyclic garbage collector's way. Each of its full
    collections walked all of it (0.2–0.5 s with an empty database on a busy machine, more with
    100k alerts), stalling the event loop; those objects live as long as the process and start-up
    leaves almost no cyclic garbage (~2,000 objects with an empty database), so little is lost by
    never examining them again. Reference counting still frees them if they are dropped. Then
    collection resumes if :func:`pause_collection` held it."""
    gc.freeze()
    gc.enable()


def settle_later(runtime: Runtime) -> None:
    """What the bot loads after it is up and keeps for good (the daily reports' holiday calendars, ~7,000
    objects, loaded 10 s on) is settled too once loaded: every full collection walked it again."""
    reports = runtime.services.reports
    if reports is not None:
        reports.warmed = settle_heap


def pause_collection() -> None:
    """Start-up: no cyclic garbage collection until :func:`settle_heap` (the bot is up). Importing and
    building what the bot runs on made ~250 collections, two of them full, ~15 % of the CPU start-up
    took, and found almost nothing to free (see settle_heap). The callers re-enable it on every way out."""
    gc.disable()


async def _run_bot(settings: Settings) -> None:
    from chatbot.telegram.runner import serve

    metrics = None
    if settings.http.port or settings.telegram.webhook_url:  # /metrics is served: KIS requests are timed
        from chatbot.metrics import Metrics

        metrics = Metrics()
    runtime = await _start_runtime(settings, metrics.observe_kis if metrics is not None else None)
    ready = asyncio.Event()
    try:
        task = asyncio.create_task(serve(runtime.services, settings, _stop_event(), metrics=metrics, ready=ready))
        await asyncio.wait({task, asyncio.create_task(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if ready.is_set():
            settle_heap()
            settle_later(runtime)
            print(f"kis-chatops running · mode {runtime.mode.value} · Ctrl-C to stop", flush=True)
        else:
            gc.enable()
        await task
    finally:
        await runtime.aclose()


async def _rotate_key(settings: Settings) -> None:
    from chatbot.security.keyring import MasterKeyring
    from chatbot.storage import Database, vault

    keyring = MasterKeyring.load(settings.security.master_key_file, create=False)
    try:
        db = Database(settings.database.url)
        try:
            await db.migrate()
            count = await vault.rotate(db, keyring)
        finally:
            await db.dispose()
    except vault.RotationRefused as exc:  # a bot holds the database: its own message, as it is
        raise StartupError(str(exc)) from None
    except _operator_errors() as exc:
        raise _startup_error(exc, settings.database.url) from None
    print(f"master key rotated to version {keyring.current}; {count} secrets re-encrypted; "
          f"key file {keyring.path}", flush=True)


async def _run_console(settings: Settings, args: argparse.Namespace, log_note: str) -> None:
    from chatbot.console.terminal import BANNER, run_console

    print(BANNER, flush=True)  # at once: lines typed while the bot loads are answered when it is up

    runtime = await _start_runtime(settings)
    settle_heap()
    settle_later(runtime)
    try:
        await run_console(runtime.services, settings.telegram, user_id=args.user_id, language=args.lang,
                          charts_dir=Path(args.charts_dir), note=log_note, announced=True)
    finally:
        await runtime.aclose()


def skip_unused_optional_imports() -> None:
    """Keep two optional imports of our dependencies out of a fresh process: httpx imports its
    command-line client (click, pygments, rich) whenever they are installed, and httpcore imports trio
    whenever it is installed, to tell which event loop it runs under; the bot runs asyncio and never
    uses either. ~70 ms of start-up CPU and 5 MB resident. Only when nothing has imported httpx yet
    (we are the process's entry point): a host program's modules are its own business. (APScheduler,
    which PTB imports too, stays: the /login conversation's timeout runs on PTB's JobQueue.)"""
    if "httpx" in sys.modules or "httpcore" in sys.modules:
        return
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    sys.modules.setdefault("trio", None)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    skip_unused_optional_imports()
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(getattr(args, "config", None))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        return _dispatch(args, settings)
    except KeyringError as exc:
        print(f"master key error: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(str(exc), file=sys.stderr)
        return 2


def _setup_logging(settings: Settings, args: argparse.Namespace) -> str:
    """Logging for the command; returns, for the console, a note saying where the logs go.

    The console keeps its terminal for the chat: its logs go to ``logging.file`` (or
    ``CONSOLE_LOG_FILE``) unless ``--verbose``."""
    level, json_lines = settings.logging.level, settings.logging.json
    console = args.command == "console"
    file = "" if console and args.verbose else settings.logging.file or (CONSOLE_LOG_FILE if console else "")
    if not file:
        setup_logging(level, json_lines)
        return ""
    try:
        setup_logging(level, json_lines, file=file)
    except OSError as exc:
        raise StartupError(f"cannot write the log file {file}: {exc.strerror or exc}") from None
    return f"logs → {file} (--verbose shows them here)" if console else ""


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    note = _setup_logging(settings, args)
    if args.command == "sim":
        asyncio.run(_run_sim(settings, args))
    elif args.command == "console":
        _until_ready_without_collection(lambda: asyncio.run(_run_console(settings, args, note)))
    elif args.command == "rotate-key":
        asyncio.run(_rotate_key(settings))
    elif not settings.telegram.token:
        print("configuration error: telegram.token is not set (KISBOT_TELEGRAM_TOKEN); "
              "`chatbot console` chats locally without Telegram", file=sys.stderr)
        return 2
    else:
        _until_ready_without_collection(lambda: asyncio.run(_run_bot(settings)))
    return 0


def _until_ready_without_collection(run: Callable[[], None]) -> None:
    """``run()`` with collection paused until the bot is up (settle_heap resumes it), and resumed
    whatever way it ends."""
    enabled = gc.isenabled()
    pause_collection()
    try:
        run()
    finally:
        if enabled:
            gc.enable()


if __name__ == "__main__":
    sys.exit(main())
