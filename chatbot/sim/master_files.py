"""KIS's master files of the simulator's own universe, served where KIS serves them.

``GET /common/master/kospi_code.mst.zip`` (and ``kosdaq_code.mst.zip``) on either REST server
answers a zip archive holding a fixed-width cp949 ``.mst`` file in KIS's layout
(``chatbot.markets.kis_master``'s field tables), one record per listing of that market, with the
simulator's base prices (기준가) and the listings' halt and 관리종목 flags. So the bot's download →
parse → swap path runs against it end to end. Archives are rebuilt when the universe or the trading
day changes. Test controls make an archive missing (404), cut short, or not in the layout.
"""

from __future__ import annotations

import io
import zipfile
from typing import TYPE_CHECKING, Final

from aiohttp import web

from chatbot.markets.kis_master import HEAD_NAME_START, MASTER_FILES, MasterFile
from chatbot.markets.symbols import Kind, Symbol
from chatbot.sim.payloads import isin

if TYPE_CHECKING:
    from chatbot.sim.market import Market

PATH_PREFIX: Final = "/common/master/"
FAULTS: Final = frozenset({"missing", "truncated", "garbled"})
NAME_BYTES: Final = 40  # the Korean name field as KIS's files have it (KIS_MASTER_FILES.md §2)
_GROUP: Final = {Kind.STOCK: "ST", Kind.PREFERRED: "ST", Kind.ETF: "EF", Kind.ETN: "EN", Kind.OTHER: "RT"}
_ETP: Final = {Kind.ETF: "2", Kind.ETN: "3"}
# Fixed values of fields the simulator has no figure for (all in the layout's own formats).
_FIXED: Final = {
    "avls_scal_cls_code": "0", "bstp_larg_div_code": "0000", "bstp_medm_div_code": "0000",
    "bstp_smal_div_code": "0000", "kospi200_apnt_cls_code": "0", "short_over_cls_code": "0",
    "frml_mrkt_deal_qty_unit": "00001", "ovtm_mrkt_deal_qty_unit": "00001", "mrkt_alrm_cls_code": "00",
    "flng_cls_code": "00", "fcam_mod_cls_code": "00", "icic_cls_code": "00", "marg_rate": "020", "crdt_able": "Y",
    "crdt_days": "090", "stck_fcam": "000000000100", "stck_lstn_date": "20100104", "stac_month": "12",
    "roe": "000008.00", "base_date": "20260630", "grp_code": "000",
}


class MasterArchives:
    def __init__(self, market: Market) -> None:
        self.market = market
        self.faults: dict[str, str] = {}  # archive name → missing | truncated | garbled
        self.served = 0
        self._cache: dict[str, tuple[tuple[int, object], bytes]] = {}

    def set_faults(self, faults: dict[str, str | None]) -> None:
        known = {f.archive for f in MASTER_FILES}
        for name, fault in faults.items():
            if name not in known or (fault is not None and fault not in FAULTS):
                raise ValueError(f"unknown archive or fault: {name}={fault}")
            if fault is None:
                self.faults.pop(name, None)
            else:
                self.faults[name] = fault

    def archive(self, file: MasterFile) -> bytes:
        key = (self.market.directory.version, self.market.today)
        cached = self._cache.get(file.archive)
        if cached is not None and cached[0] == key:
            return cached[1]
        mst = b"".join(self.record(s, file) + b"\n" for s in self.market.directory.symbols("KRX")
                       if s.market == file.market)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(file.member, mst)
        data = buffer.getvalue()
        self._cache[file.archive] = (key, data)
        return data

    def record(self, s: Symbol, file: MasterFile) -> bytes:
        code = ("Q" + s.code) if s.is_etn else s.code  # the master's own short code for an ETN (§7)
        head = code.encode("ascii").ljust(9) + isin(s.code).encode("ascii") + _name_field(s.name_ko)
        assert len(head) == HEAD_NAME_START + NAME_BYTES
        base = self.market.reference_price(s)
        values = {
            "scrt_grp_cls_code": _GROUP[s.kind], "etp_prod_cls_code": _ETP.get(s.kind, "0"),
            "prst_cls_code": "1" if s.kind is Kind.PREFERRED else "0", "stck_sdpr": f"{base:09d}",
            "trht_yn": "Y" if s.halted else "N", "mang_issu_yn": "Y" if s.administrative else "N",
            "prdy_avls_scal": f"{min(s.weight, 999_999_999):09d}", **_FIXED,
        }
        tail = b"".join(_field(name, width, values) for name, width in file.tail)
        return head + tail

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        file = next((f for f in MASTER_FILES if f.archive == name), None)
        fault = self.faults.get(name)
        if file is None or fault == "missing":
            return web.Response(status=404, text="Not Found", content_type="text/plain")
        data = self.archive(file)
        if fault == "truncated":
            data = data[: len(data) // 2]
        elif fault == "garbled":  # a well-formed zip whose records have one byte too many in the tail
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
                mst = zipfile.ZipFile(io.BytesIO(data)).read(file.member)
                z.writestr(file.member, b"\n".join(line[:-40] + b"X" + line[-40:] for line in mst.split(b"\n")
                                                   if line))
            data = buffer.getvalue()
        self.served += 1
        return web.Response(body=data, content_type="application/zip")


def _name_field(name: str) -> bytes:
    """The name in cp949, cut at a character boundary and space-padded to the field's width."""
    out = b""
    for ch in name:
        try:
            encoded = ch.encode("cp949")
        except UnicodeEncodeError:
            encoded = b"?"
        if len(out) + len(encoded) > NAME_BYTES:
            break
        out += encoded
    return out.ljust(NAME_BYTES)


def _field(name: str, width: int, values: dict[str, str]) -> bytes:
    value = values.get(name)
    if value is None:
        value = "N" if name.endswith("_yn") else "0" * width
    if len(value) != width:
        raise ValueError(f"{name}: {value!r} is not {width} wide")
    return value.encode("ascii")
