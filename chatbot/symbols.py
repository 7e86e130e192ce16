"""The symbol directory now lives in :mod:`chatbot.markets`; these names stay importable from here."""

from chatbot.markets.directory import CODE_RE, SymbolDirectory, looks_like_code
from chatbot.markets.search import MAX_CANDIDATES, normalise
from chatbot.markets.symbols import Kind, Lookup, Symbol

__all__ = ["CODE_RE", "MAX_CANDIDATES", "Kind", "Lookup", "Symbol", "SymbolDirectory", "looks_like_code", "normalise"]
