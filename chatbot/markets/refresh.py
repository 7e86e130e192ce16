"""Keep the directory current from KIS's master files, without ever blocking on them.

In the background, at start-up: the last good copy stored in the database replaces the bundled
snapshot; when that copy is older than a day (or there is none) the archives are downloaded at once.
Then once a day before the open (07:50 KST). A download that fails, an archive that is not a zip, or
a file that does not have KIS's layout changes nothing: the market keeps its last good copy (stored,
else bundled) and one warning says why. Each market's file stands alone: a broken KOSDAQ archive
does not hold back a good KOSPI one. A failed day is retried after 30 minutes, then 1 h, 2 h … until
the next daily run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Final, Protocol

import httpx

from chatbot.markets import kis_master
from chatbot.markets.bundled import bundled_symbols
from chatbot.markets.directory import Source, SymbolDirectory
from chatbot.markets.kis_master import MASTER_FILES, MasterFile, MasterFileError, ParsedMaster
from chatbot.markets.krx_hours import KST
from chatbot.markets.symbols import Symbol

log = logging.getLogger(__name__)

KIS_MASTER_FILES_URL: Final = "https://new.real.download.dws.co.kr/common/master/"
REFRESH_AT: Final = dt.time(7, 50)  # KST, before the 08:30 pre-open session
STALE_AFTER: Final = dt.timedelta(days=1)
FIRST_RETRY: Final = dt.timedelta(minutes=30)
DOWNLOAD_TIMEOUT: Final = 60.0


class StoredCopy(Protocol):
    @property
    def archive(self) -> bytes: ...

    @property
    def fetched_at(self) -> dt.datetime: ...  # UTC


class MasterCopies(Protocol):
    """Where the last good archives are kept (``chatbot.storage.master_files.MasterFileStore``)."""

    async def load(self) -> Mapping[str, StoredCopy]: ...

    async def save(self, name: str, archive: bytes, records: int, fetched_at: dt.datetime) -> None: ...


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def next_refresh(now: dt.datetime, failures: int = 0) -> dt.datetime:
    """When to refresh next: the coming 07:50 KST, sooner after failed attempts (30 min, doubling)."""
    local = now.astimezone(KST)
    due = dt.datetime.combine(local.date(), REFRESH_AT, KST)
    if due <= local:
        due += dt.timedelta(days=1)
    if failures:
        due = min(due, local + FIRST_RETRY * 2 ** min(failures - 1, 16))
    return due


class MasterRefresher:
    def __init__(self, directory: SymbolDirectory, store: MasterCopies, base_url: str = KIS_MASTER_FILES_URL, *,
                 download: bool = True, timeout: float = DOWNLOAD_TIMEOUT,
                 clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self.directory = directory
        self.store = store
        self.base_url = base_url.rstrip("/") + "/"
        self.download = download and bool(base_url)
        self.timeout = timeout
        self.clock = clock
        self.ready = asyncio.Event()  # the start-up cycle is over (stored copy in use, stale copy refreshed)
        self.failures = 0  # consecutive refreshes with at least one file not updated
        self.refreshes = 0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self.may_download: Callable[[], bool] | None = None  # replicas: only the master-files owner downloads

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="master-files")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _run(self) -> None:
        try:
            fetched = await self.load_stored()
            if self.download and (fetched is None or self.clock() - fetched >= STALE_AFTER):
                await self.refresh()
        except Exception:  # the bundled snapshot serves on; never take the bot down over a directory
            log.exception("symbol directory: start-up refresh failed")
        finally:
            self.ready.set()
        while self.download:
            delay = (next_refresh(self.clock(), self.failures) - self.clock()).total_seconds()
            await asyncio.sleep(max(1.0, delay))
            try:
                await self.refresh()
            except Exception:
                log.exception("symbol directory: refresh failed")

    # -- the last good copy ---------------------------------------------------------------------------
    async def load_stored(self) -> dt.datetime | None:
        """Swap in the stored copies; the oldest one's download time, None unless every file has one."""
        stored = await self.store.load()
        sections: dict[str, tuple[Symbol, ...]] = {}
        sources: dict[str, Source] = {}
        for file in MASTER_FILES:
            copy = stored.get(file.archive)
            if copy is None:
                continue
            try:
                parsed = await asyncio.to_thread(_parse, copy.archive, file)
            except MasterFileError as exc:
                log.warning("symbol directory: the stored master file is unreadable", extra={
                    "file": file.archive, "reason": str(exc)[:200]})
                continue
            sections[file.market] = _with_english_names(parsed.symbols)
            sources[file.market] = Source("master", copy.fetched_at)
        if sections:
            self.directory.replace_markets(sections, sources)
            log.info("symbol directory: stored master files in use", extra={
                "markets": ",".join(sorted(sections)), "symbols": sum(len(s) for s in sections.values())})
        if len(sections) < len(MASTER_FILES):
            return None
        return min(source.as_of for source in sources.values())

    # -- downloading ----------------------------------------------------------------------------------
    async def refresh(self) -> dict[str, str]:
        """Download, parse and swap in every master file; per market: ``"updated"`` or why not."""
        if self.may_download is not None and not self.may_download():  # another replica downloads them
            await self.load_stored()
            return {}
        async with self._lock:
            fetched_at = self.clock()
            results: dict[str, str] = {}
            sections: dict[str, tuple[Symbol, ...]] = {}
            sources: dict[str, Source] = {}
            for file in MASTER_FILES:
                try:
                    data = await self._download(file)
                    parsed = await asyncio.to_thread(_parse, data, file)
                except (httpx.HTTPError, MasterFileError) as exc:
                    reason = str(exc) or type(exc).__name__
                    log.warning("symbol directory: master file not refreshed, keeping the last good copy", extra={
                        "file": file.archive, "reason": reason[:200]})
                    results[file.market] = reason
                    continue
                if parsed.rejected:
                    log.info("symbol directory: records outside the layout skipped", extra={
                        "file": file.archive, "skipped": parsed.rejected})
                try:
                    await self.store.save(file.archive, data, len(parsed.symbols), fetched_at)
                except Exception:  # the fresh copy is used now; only a restart would miss it
                    log.warning("symbol directory: could not store the master file", exc_info=True,
                                extra={"file": file.archive})
                sections[file.market] = _with_english_names(parsed.symbols)
                sources[file.market] = Source("master", fetched_at)
                results[file.market] = "updated"
            if sections:
                self.directory.replace_markets(sections, sources)
                log.info("symbol directory: refreshed from KIS's master files", extra={
                    "markets": ",".join(sorted(sections)), "symbols": sum(len(s) for s in sections.values())})
            self.failures = 0 if len(sections) == len(MASTER_FILES) else self.failures + 1
            self.refreshes += 1
            return results

    async def _download(self, file: MasterFile) -> bytes:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.timeout, follow_redirects=True)
        url = self.base_url + file.archive
        async with self._http.stream("GET", url) as reply:
            if reply.status_code != 200:
                raise MasterFileError(f"{file.archive}: HTTP {reply.status_code}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in reply.aiter_bytes():
                size += len(chunk)
                if size > kis_master.MAX_ARCHIVE_BYTES:
                    raise MasterFileError(f"{file.archive}: larger than {kis_master.MAX_ARCHIVE_BYTES} bytes")
                chunks.append(chunk)
        return b"".join(chunks)


def _parse(archive: bytes, file: MasterFile) -> ParsedMaster:
    return kis_master.parse(kis_master.read_archive(archive, file), file)


def _with_english_names(symbols: tuple[Symbol, ...]) -> tuple[Symbol, ...]:
    """The master has no English names: keep the bundled ones (by code)."""
    english = _bundled_english()
    return tuple(dataclasses.replace(s, name_en=english[s.code]) if not s.name_en and s.code in english else s
                 for s in symbols)


def _bundled_english() -> dict[str, str]:
    return {s.code: s.name_en for s in bundled_symbols("KRX") if s.name_en}
