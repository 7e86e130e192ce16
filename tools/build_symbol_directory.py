"""Build the bundled offline symbol directory (``chatbot/data/symbols_*.tsv.gz``).

Inputs: ``symbols_master.csv`` (KIS's master files, snapshot 2026-08-01; see its SOURCES note) and
``krx_symbols.csv`` (164 verified rows, market-cap order, with English names). Output: one gzip TSV
per venue, rows sorted by market then code, written reproducibly (gzip mtime 0):

    symbols_krx.tsv.gz   code, market, kind, weight, name_ko, name_en   (KOSPI, KOSDAQ)
    symbols_us.tsv.gz    code, market, kind, weight, name_ko, name_en   (NASDAQ, NYSE, AMEX)

``kind``: S stock, P preferred share, F ETF, N ETN, O other (fund, REIT …). The snapshot has no
preferred flag: a KRX share whose code does not end in 0 is a preferred share (005935 삼성전자우,
005387 현대차2우B); every preferred name in the snapshot agrees and no common share breaks it.
``weight`` ranks lookups: the verified rows are the largest caps, 164 for the largest down to 1.

    python3 tools/build_symbol_directory.py /work/shared/kis/symbols_master.csv tools/krx_symbols.csv
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from pathlib import Path

SNAPSHOT = "2026-08-01"
KRX = ("KOSPI", "KOSDAQ")
US = ("NASDAQ", "NYSE", "AMEX")
COLUMNS = ("code", "market", "kind", "weight", "name_ko", "name_en")


def _clean(text: str) -> str:
    return " ".join(text.replace("\t", " ").split())


def _kind(row: dict[str, str]) -> str:
    if row["asset_type"] == "ETF":
        return "N" if "ETN" in row["name_ko"].upper() else "F"
    if row["market"] in KRX and not row["code"].endswith("0"):
        return "P"
    return "S"


def build(master_csv: Path, verified_csv: Path, out_dir: Path) -> dict[str, int]:
    verified = list(csv.DictReader(verified_csv.read_text(encoding="utf-8").splitlines()))
    weight = {r["code"]: len(verified) - i for i, r in enumerate(verified)}
    english = {r["code"]: r["name_en"] for r in verified}
    rows: dict[str, list[tuple[str, ...]]] = {"krx": [], "us": []}
    seen: set[tuple[str, str]] = set()
    for r in csv.DictReader(master_csv.read_text(encoding="utf-8").splitlines()):
        venue = "krx" if r["market"] in KRX else "us" if r["market"] in US else ""
        if not venue:
            continue
        code = r["code"].strip().upper()
        seen.add((venue, code))
        rows[venue].append((code, r["market"], _kind(r), str(weight.get(code, 0)), _clean(r["name_ko"]),
                            _clean(english.get(code) or r["name_en"])))
    for r in verified:  # verified rows the snapshot's source skipped (950160, a foreign issuer)
        if ("krx", r["code"]) not in seen:
            kind = "F" if "ETF" in r["name_en"] else "S"
            rows["krx"].append((r["code"], r["market"], kind, str(weight[r["code"]]), r["name_ko"], r["name_en"]))
    counts = {}
    for venue, venue_rows in rows.items():
        venue_rows.sort(key=lambda t: (t[1], t[0]))
        text = io.StringIO()
        text.write(f"# KIS stock master snapshot {SNAPSHOT}; built by tools/build_symbol_directory.py\n")
        text.write("\t".join(COLUMNS) + "\n")
        for t in venue_rows:
            text.write("\t".join(t) + "\n")
        data = gzip.compress(text.getvalue().encode("utf-8"), compresslevel=9, mtime=0)
        (out_dir / f"symbols_{venue}.tsv.gz").write_bytes(data)
        counts[venue] = len(venue_rows)
    return counts


if __name__ == "__main__":
    master, verified = (Path(a) for a in sys.argv[1:3])
    out = Path(__file__).resolve().parents[1] / "chatbot" / "data"
    print(build(master, verified, out))
