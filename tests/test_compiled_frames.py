"""The real-time parser compiled by mypyc (setup.py) and interpreted behave alike, and a compiled one
left beside an edited ``frames.py`` (an editable install) is not imported in its place.

These run on whichever parser is installed: compiled by ``pip install -e .`` where a C compiler is,
interpreted with ``KISBOT_PURE_PYTHON=1 pip install -e .`` (the test suite passes on both)."""

from __future__ import annotations

import hashlib
import importlib.util
import random
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType
from typing import Any

import chatbot
from chatbot.kis import compiled_frames_is_stale, frames
from tests.test_typed_frames import exactly, random_record


def interpreted_frames() -> ModuleType:
    """frames.py run by the interpreter, under another name, whatever is installed."""
    spec = importlib.util.spec_from_file_location("chatbot.kis._frames_interpreted",
                                                  Path(chatbot.__file__).parent / "kis" / "frames.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def outcome(parse: Any, text: str) -> list[Any]:
    """What parsing a frame and typing its records gives: types and texts, or the error's type."""
    try:
        return [(type(r).__name__, exactly(r.typed())) for r in parse(text)]
    except (ValueError, ArithmeticError) as error:
        return [type(error).__name__]


def test_compiled_and_interpreted_parsers_type_frames_alike() -> None:
    pure = interpreted_frames()
    assert not pure.COMPILED
    print(f"installed parser: {'compiled' if frames.COMPILED else 'interpreted'} ({frames.__file__})")
    rng = random.Random(7)
    for cls in (frames.Tick, frames.OrderBook):
        for n in range(300):
            count = 1 if n % 3 else 2
            records = [random_record(cls, rng) for _ in range(count)]
            if n % 2:  # every numeric field well formed: each parser's fast path
                for record in records:
                    for i in cls.INT_FIELDS + cls.DECIMAL_FIELDS:
                        record[i] = record[i] or "0"
            if n % 7 == 0:  # a field no property reads: the same error from both
                records[0][cls.INT_FIELDS[n % 3]] = "1.5"
            text = f"0|{cls.TR_ID}|{count:03d}|" + "^".join("^".join(r) for r in records)
            assert outcome(frames.parse_frame, text) == outcome(pure.parse_frame, text)


def fake_package(tmp_path: Path, digest: str | None) -> Path:
    package = tmp_path / "kis"
    package.mkdir(parents=True)
    (package / "frames.py").write_text("X = 1\n")
    (package / f"frames{EXTENSION_SUFFIXES[0]}").write_bytes(b"not a shared library")
    if digest is not None:
        (package / "frames.digest").write_text(digest + "\n")
    return package


def test_a_compiled_parser_is_stale_unless_built_from_the_source_beside_it(tmp_path: Path) -> None:
    built_here = hashlib.sha256(b"X = 1\n").hexdigest()
    assert not compiled_frames_is_stale(fake_package(tmp_path / "a", built_here))
    assert compiled_frames_is_stale(fake_package(tmp_path / "b", hashlib.sha256(b"X = 0\n").hexdigest()))
    assert compiled_frames_is_stale(fake_package(tmp_path / "c", None))
    nothing_compiled = fake_package(tmp_path / "d", None)
    (nothing_compiled / f"frames{EXTENSION_SUFFIXES[0]}").unlink()
    assert not compiled_frames_is_stale(nothing_compiled)


def test_a_stale_compiled_parser_is_not_imported(tmp_path: Path) -> None:
    """A copy of the package with a (broken) shared library beside frames.py, and no digest: the import
    system would pick the library; the package loads frames.py instead, and says so."""
    copy = tmp_path / "chatbot"
    shutil.copytree(Path(chatbot.__file__).parent, copy,
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "frames.digest"))
    (copy / "kis" / f"frames{EXTENSION_SUFFIXES[0]}").write_bytes(b"not a shared library")
    run = subprocess.run(
        [sys.executable, "-c", "import chatbot.kis.frames as f; print(f.__file__, f.COMPILED, f.Tick(['1'] * 46).price)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(copy / "kis" / "frames.py"), "False", "1"]
    assert "differs from the compiled parser" in run.stderr
