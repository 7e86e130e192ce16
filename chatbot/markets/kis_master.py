"""KIS's stock master files (종목정보파일): the fixed-width cp949 ``.mst`` layouts and their parser.

Layouts are restated from ``shared/kis/KIS_MASTER_FILES.md`` §2–§4 (KIS's sample parsers and
``.h`` headers). A record is ``head + tail + "\\n"``: the head is the short code (9 bytes), the
standard code (12) and the Korean name (40 bytes of cp949 in practice, but only the official
parsers' rule is relied on: the tail has a fixed width and is cut from the end, the name is what
lies between). Everything is sliced as bytes, never as decoded text, so a name's multi-byte
characters or a comma in it cannot shift a field (pitfalls 3 and 4 of the fact sheet).

A record whose fixed fields are not what the layout says (a digit field with letters, a Y/N flag
with something else) is rejected; a file with more than 1 % rejected records is not a master file
of this layout (say KIS changed it) and is refused whole, so the last good copy stays in use.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from chatbot.markets.symbols import Kind, Symbol

HEAD_CODE: Final = slice(0, 9)  # mksc_shrn_iscd, left-aligned, space-padded (ETN: Q + 6 characters)
HEAD_ISIN: Final = slice(9, 21)  # stnd_iscd, e.g. KR7005930003
HEAD_NAME_START: Final = 21  # hts_kor_isnm up to the tail
MAX_ARCHIVE_BYTES: Final = 16 << 20  # the real archives are a few hundred kilobytes
MAX_REJECTED_SHARE: Final = 0.01

# (field, width) in file order; the names are the .h field names.
KOSPI_TAIL: Final[tuple[tuple[str, int], ...]] = (
    ("scrt_grp_cls_code", 2), ("avls_scal_cls_code", 1), ("bstp_larg_div_code", 4), ("bstp_medm_div_code", 4),
    ("bstp_smal_div_code", 4), ("mnin_cls_code_yn", 1), ("low_current_yn", 1), ("sprn_strr_nmix_issu_yn", 1),
    ("kospi200_apnt_cls_code", 1), ("kospi100_issu_yn", 1), ("kospi50_issu_yn", 1), ("krx_issu_yn", 1),
    ("etp_prod_cls_code", 1), ("elw_pblc_yn", 1), ("krx100_issu_yn", 1), ("krx_car_yn", 1), ("krx_smcn_yn", 1),
    ("krx_bio_yn", 1), ("krx_bank_yn", 1), ("etpr_undt_objt_co_yn", 1), ("krx_enrg_chms_yn", 1),
    ("krx_stel_yn", 1), ("short_over_cls_code", 1), ("krx_medi_cmnc_yn", 1), ("krx_cnst_yn", 1),
    ("krx_fnnc_svc_yn", 1), ("krx_scrt_yn", 1), ("krx_ship_yn", 1), ("krx_insu_yn", 1), ("krx_trnp_yn", 1),
    ("sri_nmix_yn", 1), ("stck_sdpr", 9), ("frml_mrkt_deal_qty_unit", 5), ("ovtm_mrkt_deal_qty_unit", 5),
    ("trht_yn", 1), ("sltr_yn", 1), ("mang_issu_yn", 1), ("mrkt_alrm_cls_code", 2), ("mrkt_alrm_risk_adnt_yn", 1),
    ("insn_pbnt_yn", 1), ("byps_lstn_yn", 1), ("flng_cls_code", 2), ("fcam_mod_cls_code", 2), ("icic_cls_code", 2),
    ("marg_rate", 3), ("crdt_able", 1), ("crdt_days", 3), ("prdy_vol", 12), ("stck_fcam", 12),
    ("stck_lstn_date", 8), ("lstn_stcn", 15), ("cpfn", 21), ("stac_month", 2), ("po_prc", 7),
    ("prst_cls_code", 1), ("ssts_hot_yn", 1), ("stange_runup_yn", 1), ("krx300_issu_yn", 1), ("kospi_issu_yn", 1),
    ("sale_account", 9), ("bsop_prfi", 9), ("op_prfi", 9), ("thtr_ntin", 5), ("roe", 9), ("base_date", 8),
    ("prdy_avls_scal", 9), ("grp_code", 3), ("co_crdt_limt_over_yn", 1), ("secu_lend_able_yn", 1),
    ("stln_able_yn", 1),
)
KOSDAQ_TAIL: Final[tuple[tuple[str, int], ...]] = (
    ("scrt_grp_cls_code", 2), ("avls_scal_cls_code", 1), ("bstp_larg_div_code", 4), ("bstp_medm_div_code", 4),
    ("bstp_smal_div_code", 4), ("vntr_issu_yn", 1), ("low_current_yn", 1), ("krx_issu_yn", 1),
    ("etp_prod_cls_code", 1), ("krx100_issu_yn", 1), ("krx_car_yn", 1), ("krx_smcn_yn", 1), ("krx_bio_yn", 1),
    ("krx_bank_yn", 1), ("etpr_undt_objt_co_yn", 1), ("krx_enrg_chms_yn", 1), ("krx_stel_yn", 1),
    ("short_over_cls_code", 1), ("krx_medi_cmnc_yn", 1), ("krx_cnst_yn", 1), ("invt_alrm_yn", 1),
    ("krx_scrt_yn", 1), ("krx_ship_yn", 1), ("krx_insu_yn", 1), ("krx_trnp_yn", 1), ("ksq150_nmix_yn", 1),
    ("stck_sdpr", 9), ("frml_mrkt_deal_qty_unit", 5), ("ovtm_mrkt_deal_qty_unit", 5), ("trht_yn", 1),
    ("sltr_yn", 1), ("mang_issu_yn", 1), ("mrkt_alrm_cls_code", 2), ("mrkt_alrm_risk_adnt_yn", 1),
    ("insn_pbnt_yn", 1), ("byps_lstn_yn", 1), ("flng_cls_code", 2), ("fcam_mod_cls_code", 2), ("icic_cls_code", 2),
    ("marg_rate", 3), ("crdt_able", 1), ("crdt_days", 3), ("prdy_vol", 12), ("stck_fcam", 12),
    ("stck_lstn_date", 8), ("lstn_stcn", 15), ("cpfn", 21), ("stac_month", 2), ("po_prc", 7),
    ("prst_cls_code", 1), ("ssts_hot_yn", 1), ("stange_runup_yn", 1), ("krx300_issu_yn", 1),
    ("sale_account", 9), ("bsop_prfi", 9), ("op_prfi", 9), ("thtr_ntin", 5), ("roe", 9), ("base_date", 8),
    ("prdy_avls_scal", 9), ("grp_code", 3), ("co_crdt_limt_over_yn", 1), ("secu_lend_able_yn", 1),
    ("stln_able_yn", 1),
)


@dataclass(frozen=True, slots=True)
class MasterFile:
    market: str  # KOSPI | KOSDAQ
    archive: str  # the zip at KIS's download base URL
    member: str  # the file inside (read as namelist()[0]: KIS's case varies, pitfall 6)
    tail: tuple[tuple[str, int], ...]

    @property
    def tail_width(self) -> int:
        return sum(width for _, width in self.tail)

    def offsets(self) -> dict[str, slice]:
        """Each tail field's slice within the tail."""
        out, at = {}, 0
        for name, width in self.tail:
            out[name] = slice(at, at + width)
            at += width
        return out


KOSPI: Final = MasterFile("KOSPI", "kospi_code.mst.zip", "kospi_code.mst", KOSPI_TAIL)
KOSDAQ: Final = MasterFile("KOSDAQ", "kosdaq_code.mst.zip", "kosdaq_code.mst", KOSDAQ_TAIL)
MASTER_FILES: Final = (KOSPI, KOSDAQ)
assert KOSPI.tail_width == 227 and len(KOSPI_TAIL) == 70, "KOSPI tail: 70 fields, 227 bytes (§3)"
assert KOSDAQ.tail_width == 221 and len(KOSDAQ_TAIL) == 64, "KOSDAQ tail: 64 fields, 221 bytes (§4)"

# Security groups (scrt_grp_cls_code, §3 #1 and §7) → instrument kind.
_GROUP_KIND: Final = {"ST": Kind.STOCK, "FS": Kind.STOCK, "DR": Kind.STOCK, "EF": Kind.ETF, "FE": Kind.ETF,
                      "EN": Kind.ETN}
_YN: Final = ("Y", "N")


@dataclass(frozen=True, slots=True)
class _Fields:
    """Where the fields the directory uses sit in one market's tail."""

    group: slice
    etp: slice
    preferred: slice
    base: slice
    lot: slice
    cap: slice
    halted: slice
    liquidation: slice
    administrative: slice

    @classmethod
    def of(cls, file: MasterFile) -> _Fields:
        o = file.offsets()
        return cls(o["scrt_grp_cls_code"], o["etp_prod_cls_code"], o["prst_cls_code"], o["stck_sdpr"],
                   o["frml_mrkt_deal_qty_unit"], o["prdy_avls_scal"], o["trht_yn"], o["sltr_yn"], o["mang_issu_yn"])


class MasterFileError(ValueError):
    """The bytes are not a master archive of the expected layout; nothing of them is used."""


@dataclass(frozen=True, slots=True)
class ParsedMaster:
    market: str
    symbols: tuple[Symbol, ...]
    rejected: int  # records that did not fit the layout (skipped)


def read_archive(data: bytes, file: MasterFile) -> bytes:
    """The ``.mst`` inside a downloaded zip archive."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise MasterFileError(f"{file.archive}: {len(data)} bytes, more than a master archive can be")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            if not names:
                raise MasterFileError(f"{file.archive}: empty archive")
            info = archive.getinfo(names[0])
            if info.file_size > MAX_ARCHIVE_BYTES * 4:
                raise MasterFileError(f"{file.archive}: {info.file_size} bytes uncompressed")
            return archive.read(info)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, RuntimeError) as exc:
        raise MasterFileError(f"{file.archive}: not a readable zip archive ({exc})") from None


def parse(mst: bytes, file: MasterFile) -> ParsedMaster:
    """Every record of a ``.mst`` file as a :class:`Symbol`; raises :class:`MasterFileError` when the
    file does not have this layout."""
    symbols: list[Symbol] = []
    rejected = 0
    for record in _records(mst):
        symbol = parse_record(record, file)
        if symbol is None:
            rejected += 1
        else:
            symbols.append(symbol)
    total = len(symbols) + rejected
    if not symbols:
        raise MasterFileError(f"{file.member}: no record in the {file.market} layout ({total} lines)")
    if rejected > max(1, int(total * MAX_REJECTED_SHARE)):
        raise MasterFileError(f"{file.member}: {rejected} of {total} records do not fit the {file.market} layout")
    return ParsedMaster(file.market, tuple(symbols), rejected)


def _records(mst: bytes) -> Iterator[bytes]:
    for line in mst.split(b"\n"):
        line = line.removesuffix(b"\r")
        if line.strip():
            yield line


def parse_record(record: bytes, file: MasterFile) -> Symbol | None:
    """One record (without its newline), or None when it does not fit the layout."""
    width = file.tail_width
    if len(record) < HEAD_NAME_START + width:
        return None
    at = _OFFSETS[file.market]
    try:
        tail = record[-width:].decode("ascii")  # the tail is pure ASCII (§2)
        raw_code = record[HEAD_CODE].decode("ascii").strip().upper()
        name = record[HEAD_NAME_START:-width].decode("cp949").strip()
    except UnicodeDecodeError:
        return None
    etn = raw_code.startswith("Q")  # the master's own short code for an ETN is Q + 6 (§7)
    code = raw_code[1:] if etn else raw_code
    if not (len(code) == 6 and code.isalnum() and code[0].isdigit()) or not name:
        return None
    group, base, lot, cap = tail[at.group], tail[at.base], tail[at.lot], tail[at.cap]
    halted, liquidation, administrative = tail[at.halted], tail[at.liquidation], tail[at.administrative]
    if not (len(group) == 2 and group.isalpha() and group.isupper()):
        return None
    if not (base.isdigit() and lot.isdigit() and cap.isdigit()):
        return None
    if halted not in _YN or liquidation not in _YN or administrative not in _YN:
        return None
    return Symbol(code, name, "", file.market, _kind(group, tail[at.etp], tail[at.preferred], etn),
                  halted=halted == "Y", administrative=administrative == "Y", base_price=int(base), weight=int(cap))


def _kind(group: str, etp: str, preferred: str, q_code: bool) -> Kind:
    if q_code or group == "EN" or etp in ("3", "4"):
        return Kind.ETN
    kind = _GROUP_KIND.get(group, Kind.OTHER)
    if kind is Kind.STOCK and preferred in ("1", "2"):
        return Kind.PREFERRED
    return kind


_OFFSETS: Final = {f.market: _Fields.of(f) for f in MASTER_FILES}
