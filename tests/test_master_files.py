"""KIS master files: the .mst parser against bytes laid out by hand from KIS_MASTER_FILES.md, the
simulator's archives, and the refresh (download → parse → store → swap; broken archives change nothing)."""

from __future__ import annotations

import datetime as dt
import io
import logging
import zipfile

import pytest

from chatbot.kis import protocol as p
from chatbot.kis.protocol import KST
from chatbot.markets import kis_master
from chatbot.markets.directory import SymbolDirectory
from chatbot.markets.kis_master import KOSDAQ, KOSPI, MasterFileError, parse, parse_record, read_archive
from chatbot.markets.refresh import MasterRefresher, next_refresh
from chatbot.markets.symbols import Kind
from chatbot.sim.market import Market
from chatbot.sim.master_files import MasterArchives
from chatbot.sim.server import KisSimulator
from chatbot.storage import Database
from chatbot.storage.master_files import MasterFileStore

# Offsets inside the tail, straight from the fact sheet's tables (§3 KOSPI, §4 KOSDAQ).
KOSPI_AT = {"group": (0, 2), "etp": (22, 1), "base": (41, 9), "lot": (50, 5), "halted": (60, 1), "sltr": (61, 1),
            "admin": (62, 1), "warn": (63, 2), "roe": (195, 9), "preferred": (158, 1), "cap": (212, 9)}
KOSDAQ_AT = {"group": (0, 2), "etp": (18, 1), "base": (36, 9), "lot": (45, 5), "halted": (55, 1), "sltr": (56, 1),
             "admin": (57, 1), "warn": (58, 2), "roe": (189, 9), "preferred": (153, 1), "cap": (206, 9)}
WIDTH = {"KOSPI": 227, "KOSDAQ": 221}


def record(market: str, code: str, name: str, **fields: str) -> bytes:
    """One record as KIS writes it: code (9, padded), ISIN (12), name (40 bytes cp949, padded), tail."""
    at = KOSPI_AT if market == "KOSPI" else KOSDAQ_AT
    tail = bytearray(b"0" * WIDTH[market])
    values = {"group": "ST", "etp": "0", "base": "000010000", "lot": "00001", "halted": "N", "sltr": "N",
              "admin": "N", "warn": "00", "roe": "000008.95", "preferred": "0", "cap": "000000100", **fields}
    for key, value in values.items():
        start, width = at[key]
        assert len(value) == width, key
        tail[start:start + width] = value.encode("ascii")
    name_bytes = name.encode("cp949")
    assert len(name_bytes) <= 40
    head = code.encode("ascii").ljust(9) + b"KR7" + code[-6:].encode("ascii") + b"000" + name_bytes.ljust(40)
    assert len(head) == 61
    return head + bytes(tail)


def zipped(member: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(member, content)
    return buffer.getvalue()


def test_kospi_record_fields() -> None:
    # the decoded Samsung fixture of §7: base price 64,700, not halted, market cap 3,862,449 억
    raw = record("KOSPI", "005930", "삼성전자", base="000064700", cap="003862449")
    assert len(raw) == 288
    s = parse_record(raw, KOSPI)
    assert s is not None and (s.code, s.name_ko, s.market, s.kind) == ("005930", "삼성전자", "KOSPI", Kind.STOCK)
    assert s.base_price == 64_700 and s.weight == 3_862_449 and not s.halted and not s.administrative


def test_kosdaq_offsets_differ_from_kospi() -> None:
    raw = record("KOSDAQ", "247540", "에코프로비엠", base="000123400", halted="Y", admin="Y")
    assert len(raw) == 282
    s = parse_record(raw, KOSDAQ)
    assert s is not None and s.market == "KOSDAQ" and s.halted and s.administrative and s.base_price == 123_400
    # the same flags written at KOSPI's offsets are not KOSDAQ's: the record does not fit and is refused
    assert parse_record(record("KOSPI", "247540", "에코프로비엠", halted="Y"), KOSDAQ) is None


@pytest.mark.parametrize(("fields", "kind"), [
    ({"group": "ST", "preferred": "1"}, Kind.PREFERRED), ({"group": "ST", "preferred": "2"}, Kind.PREFERRED),
    ({"group": "EF", "etp": "2"}, Kind.ETF), ({"group": "FE"}, Kind.ETF), ({"group": "EN", "etp": "3"}, Kind.ETN),
    ({"group": "EF", "etp": "4"}, Kind.ETN), ({"group": "RT"}, Kind.OTHER), ({"group": "FS"}, Kind.STOCK),
])
def test_instrument_kinds(fields: dict[str, str], kind: Kind) -> None:
    s = parse_record(record("KOSPI", "123450", "종목", **fields), KOSPI)
    assert s is not None and s.kind is kind


def test_tricky_records() -> None:
    # an ETN: the master's short code is Q + 6; the directory keeps the six and knows it is an ETN
    etn = parse_record(record("KOSPI", "Q500001", "신한 WTI원유 선물 ETN", group="EN", etp="3"), KOSPI)
    assert etn is not None and etn.code == "500001" and etn.kind is Kind.ETN
    # letters in new codes
    assert parse_record(record("KOSPI", "0126Z0", "삼성에피스홀딩스"), KOSPI).code == "0126Z0"  # type: ignore[union-attr]
    # a name of exactly 40 bytes (20 Hangul syllables, no padding left), and a comma in a name
    long_name = "가나다라마바사아자차카타파하거너더러머버"
    assert parse_record(record("KOSPI", "111110", long_name), KOSPI).name_ko == long_name  # type: ignore[union-attr]
    assert parse_record(record("KOSDAQ", "222220", "에이,비"), KOSDAQ).name_ko == "에이,비"  # type: ignore[union-attr]
    # a halted administrative issue; ROE carries a decimal point and does not disturb its neighbours
    s = parse_record(record("KOSPI", "333330", "정지종목", halted="Y", admin="Y", roe="-00012.50"), KOSPI)
    assert s is not None and s.halted and s.administrative
    # not the layout: letters in the base price, a flag that is not Y/N, a short record, bad cp949
    assert parse_record(record("KOSPI", "444440", "가", base="00000A000"), KOSPI) is None
    assert parse_record(record("KOSPI", "444440", "가", halted="1"), KOSPI) is None
    assert parse_record(record("KOSPI", "444440", "가")[:200], KOSPI) is None
    assert parse_record(record("KOSPI", "444440", "가").replace("가".encode("cp949"), b"\xff\xff"), KOSPI) is None


def test_file_framing() -> None:
    lines = [record("KOSPI", f"{i:05d}0", f"종목{i}") for i in range(1, 201)]
    # CRLF line ends, blank lines and no newline after the last record are all fine
    mst = b"\r\n".join(lines[:100]) + b"\r\n\n" + b"\n".join(lines[100:])
    parsed = parse(mst, KOSPI)
    assert len(parsed.symbols) == 200 and parsed.rejected == 0
    assert [s.name_ko for s in parsed.symbols[:2]] == ["종목1", "종목2"]
    # one record out of 201 not in the layout: skipped; a file mostly out of it: refused whole
    assert parse(mst + b"\n" + b"garbage" * 40, KOSPI).rejected == 1
    shifted = b"\n".join(line[:-40] + b"X" + line[-40:] for line in lines)
    with pytest.raises(MasterFileError):
        parse(shifted, KOSPI)
    with pytest.raises(MasterFileError):
        parse(b"", KOSPI)


def test_archives() -> None:
    mst = record("KOSPI", "005930", "삼성전자") + b"\n"
    assert read_archive(zipped("KOSPI_CODE.MST", mst), KOSPI) == mst  # the member's case varies (pitfall 6)
    for bad in (b"<html>503 Service Unavailable</html>", zipped("kospi_code.mst", mst)[:40], b""):
        with pytest.raises(MasterFileError):
            read_archive(bad, KOSPI)
    with pytest.raises(MasterFileError):
        read_archive(b"PK" + b"\0" * (kis_master.MAX_ARCHIVE_BYTES + 1), KOSPI)


def test_simulator_archives_carry_its_universe_and_prices() -> None:
    market = Market(7, dt.date(2026, 11, 30))
    close = p.round_down_to_tick(market.get("005930").base * 11 // 10)  # type: ignore[union-attr]
    market.set_price("005930", close, "090000")
    market.roll_day(dt.date(2026, 12, 1))  # today's base price: yesterday's close
    archives = MasterArchives(market)
    for file in (KOSPI, KOSDAQ):
        parsed = parse(read_archive(archives.archive(file), file), file)
        listed = [s for s in market.directory.symbols() if s.market == file.market]
        assert [s.code for s in parsed.symbols] == [s.code for s in listed] and parsed.rejected == 0
        assert [s.name_ko for s in parsed.symbols] == [s.name_ko for s in listed]
        assert [s.kind for s in parsed.symbols] == [s.kind for s in listed]
        assert all(s.base_price == market.reference_price(market.listing(s.code)) for s in parsed.symbols)  # type: ignore[arg-type]
    kospi = {s.code: s for s in parse(read_archive(archives.archive(KOSPI), KOSPI), KOSPI).symbols}
    assert kospi["005930"].base_price == close
    assert kospi["005935"].kind is Kind.PREFERRED and kospi["069500"].kind is Kind.ETF


def test_next_refresh_is_before_the_open_and_retries_sooner() -> None:
    at = dt.datetime(2026, 11, 30, 6, 0, tzinfo=KST)
    assert next_refresh(at) == dt.datetime(2026, 11, 30, 7, 50, tzinfo=KST)
    assert next_refresh(at.replace(hour=9)) == dt.datetime(2026, 12, 1, 7, 50, tzinfo=KST)
    assert next_refresh(at.replace(hour=9), failures=1) == at.replace(hour=9, minute=30)
    assert next_refresh(at.replace(hour=9), failures=3) == at.replace(hour=11)
    assert next_refresh(at.replace(hour=9), failures=40) == dt.datetime(2026, 12, 1, 7, 50, tzinfo=KST)


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "chatbot.markets.refresh" and r.levelno >= logging.WARNING]


async def test_download_parse_store_swap(sim: KisSimulator, database: Database,
                                         caplog: pytest.LogCaptureFixture) -> None:
    sim.upsert_listing({"code": "0999Z0", "name": "테스트신규바이오", "market": "KOSDAQ", "base_price": 12_340})
    sim.upsert_listing({"code": "005930", "halted": True})
    sim.upsert_listing({"code": "000660", "administrative": True})
    directory = SymbolDirectory.bundled()
    assert directory.lookup("테스트신규바이오").symbol is None
    refresher = MasterRefresher(directory, MasterFileStore(database), sim.master_files_url())
    try:
        assert await refresher.refresh() == {"KOSPI": "updated", "KOSDAQ": "updated"}
        fresh = directory.lookup("테스트신규바이오").symbol
        assert fresh is not None and fresh.code == "0999Z0" and fresh.base_price == 12_340
        assert directory.by_code("005930").halted and directory.by_code("000660").administrative  # type: ignore[union-attr]
        assert directory.by_code("005930").name_en == "Samsung Electronics"  # type: ignore[union-attr]
        assert {s.origin for s in directory.sources().values()} >= {"master"}
        assert not warnings(caplog)
        stored = await MasterFileStore(database).load()
        assert set(stored) == {"kospi_code.mst.zip", "kosdaq_code.mst.zip"}

        # broken archives: each keeps its market's last good copy and says so once
        for fault in ("truncated", "missing", "garbled"):
            caplog.clear()
            await sim.control("master-files", {"kosdaq_code.mst.zip": fault})
            sim.upsert_listing({"code": "0998Z0", "name": "다음신규상장", "market": "KOSDAQ"})
            sim.upsert_listing({"code": "0997Z0", "name": "코스피신규상장", "market": "KOSPI"})
            result = await refresher.refresh()
            assert result["KOSPI"] == "updated" and result["KOSDAQ"] != "updated"
            assert directory.lookup("테스트신규바이오").symbol is not None  # the last good KOSDAQ file
            assert directory.lookup("다음신규상장").symbol is None
            assert directory.lookup("코스피신규상장").symbol is not None  # KOSPI went ahead
            (warning,) = warnings(caplog)
            assert "kosdaq_code.mst.zip" in str(warning.__dict__.get("file"))
            assert (await MasterFileStore(database).load())["kosdaq_code.mst.zip"].archive == \
                stored["kosdaq_code.mst.zip"].archive  # the stored copy is still the good one
        assert refresher.failures == 3
    finally:
        await refresher.stop()

    # a restart with the download failing: the stored copy, not the bundled snapshot
    await sim.control("master-files", {"kospi_code.mst.zip": "missing"})
    restarted = SymbolDirectory.bundled()
    again = MasterRefresher(restarted, MasterFileStore(database), sim.master_files_url(),
                            clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=2))
    again.start()
    try:
        await again.ready.wait()
        assert again.refreshes == 1  # the copy was two days old: a download was tried at start-up
        assert restarted.lookup("테스트신규바이오").symbol is not None
        assert restarted.lookup("코스피신규상장").symbol is not None
        assert restarted.by_code("005930").halted  # type: ignore[union-attr]
    finally:
        await again.stop()


async def test_fresh_copy_is_not_downloaded_again_and_no_copy_means_bundled(
        sim: KisSimulator, database: Database) -> None:
    directory = SymbolDirectory.bundled()
    first = MasterRefresher(directory, MasterFileStore(database), sim.master_files_url())
    first.start()
    await first.ready.wait()
    await first.stop()
    assert first.refreshes == 1 and sim.master_files.served == 2  # nothing stored yet: downloaded at once
    second = MasterRefresher(SymbolDirectory.bundled(), MasterFileStore(database), sim.master_files_url())
    second.start()
    await second.ready.wait()
    await second.stop()
    assert second.refreshes == 0 and sim.master_files.served == 2  # a copy from today: used as it is

    # nothing stored and nothing downloadable: the bundled snapshot serves
    empty = Database(database.url.replace("test.sqlite3", "empty.sqlite3")) if database.is_sqlite else None
    if empty is not None:
        await empty.migrate()
        try:
            await sim.control("master-files", {"kospi_code.mst.zip": "missing", "kosdaq_code.mst.zip": "missing"})
            bundled = SymbolDirectory.bundled()
            third = MasterRefresher(bundled, MasterFileStore(empty), sim.master_files_url())
            third.start()
            await third.ready.wait()
            await third.stop()
            assert third.refreshes == 1 and {s.origin for s in bundled.sources().values()} == {"bundled"}
            assert len(bundled) == 3_875
        finally:
            await empty.dispose()
