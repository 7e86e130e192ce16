"""The offline directory shipped in the wheel: KIS's master files as of a dated snapshot.

``chatbot/data/symbols_krx.tsv.gz`` (KOSPI, KOSDAQ) and ``symbols_us.tsv.gz`` (NASDAQ, NYSE, AMEX)
are built by ``tools/build_symbol_directory.py``. Each venue is read once per process, on first use,
and shared: the rows are immutable.
"""

from __future__ import annotations

import datetime as dt
import gzip
from functools import cache
from importlib import resources
from typing import Final

from chatbot.markets.symbols import Kind, Symbol, Venue

SNAPSHOT_DATE: Final = dt.date(2026, 8, 1)
FILES: Final[dict[Venue, str]] = {"KRX": "symbols_krx.tsv.gz", "US": "symbols_us.tsv.gz"}
COLUMNS: Final = ("code", "market", "kind", "weight", "name_ko", "name_en")


@cache
def bundled_symbols(venue: Venue) -> tuple[Symbol, ...]:
    data = resources.files("chatbot.data").joinpath(FILES[venue]).read_bytes()
    lines = gzip.decompress(data).decode("utf-8").splitlines()
    if len(lines) < 2 or tuple(lines[1].split("\t")) != COLUMNS:
        raise ValueError(f"{FILES[venue]}: unexpected header")
    kinds = {k.value: k for k in Kind}
    names: dict[str, str] = {}  # one string object per repeated market name
    symbols = []
    for line in lines[2:]:
        code, market, kind, weight, name_ko, name_en = line.split("\t")
        symbols.append(Symbol(code, name_ko, name_en, names.setdefault(market, market), kinds[kind],
                              weight=int(weight)))
    return tuple(symbols)
