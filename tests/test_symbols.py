from __future__ import annotations

import pytest

from chatbot.symbols import SymbolDirectory, looks_like_code


@pytest.fixture(scope="module")
def directory() -> SymbolDirectory:
    return SymbolDirectory.bundled()


def test_bundled_list(directory: SymbolDirectory) -> None:
    assert len(directory) >= 100
    assert directory.by_code("005930").name_en == "Samsung Electronics"  # type: ignore[union-attr]


@pytest.mark.parametrize(("query", "code"), [
    ("005930", "005930"), ("삼성전자", "005930"), ("samsung electronics", "005930"), ("SamsungElectronics", "005930"),
    (" 삼성 전자 ", "005930"), ("SK hynix", "000660"), ("sk하이닉스", "000660"), ("0126z0", "0126Z0"),
    ("하이닉스", "000660"), ("SK", "034730"),  # "SK" is itself a listed holding company
])
def test_resolves(directory: SymbolDirectory, query: str, code: str) -> None:
    result = directory.lookup(query)
    assert result.symbol is not None and result.symbol.code == code


@pytest.mark.parametrize("query", ["삼성", "samsung", "현대", "Hyundai"])
def test_ambiguous_names_give_candidates(directory: SymbolDirectory, query: str) -> None:
    result = directory.lookup(query)
    assert result.symbol is None and len(result.candidates) > 1


@pytest.mark.parametrize("query", ["", "   ", "999999", "zzzz", "x" * 10_000, "🙂🙂", "'; drop table"])
def test_unknown(directory: SymbolDirectory, query: str) -> None:
    result = directory.lookup(query)
    assert result.symbol is None and not result.candidates


def test_code_shape() -> None:
    assert looks_like_code("005930") and looks_like_code("0126Z0") and not looks_like_code("5930")
