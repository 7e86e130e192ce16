"""KIS Open API client.

Importing this package first checks the compiled real-time parser (setup.py compiles frames.py with
mypyc where it can): an editable install leaves ``frames*.so`` beside ``frames.py``, and Python imports
that even after ``frames.py`` is edited. When the source's digest is not the one the build recorded
(``frames.digest``), ``frames.py`` itself is loaded instead, with a warning to reinstall.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path


def compiled_frames_is_stale(package: Path) -> bool:
    """Whether ``package`` holds a compiled ``frames`` module built from another ``frames.py`` than the one
    beside it (or one that recorded no digest, so not known to be this source's)."""
    source = package / "frames.py"
    if not source.exists() or not any((package / f"frames{suffix}").exists() for suffix in EXTENSION_SUFFIXES):
        return False
    try:
        built = (package / "frames.digest").read_text().strip()
        return built != hashlib.sha256(source.read_bytes()).hexdigest()
    except OSError:
        return True


def _load_frames_source() -> None:
    source = Path(__file__).with_name("frames.py")
    logging.getLogger(__name__).warning(
        "chatbot/kis/frames.py differs from the compiled parser beside it: running the .py; reinstall "
        "(python3 -m pip install -e .) to compile it again", extra={"source": str(source)})
    spec = importlib.util.spec_from_file_location(f"{__name__}.frames", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)


if compiled_frames_is_stale(Path(__file__).parent):
    _load_frames_source()
