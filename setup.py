"""Compiles the real-time frame parser (chatbot/kis/frames.py) with mypyc where it can; everything else,
and the parser itself wherever it cannot, installs as pure Python. Metadata stays in pyproject.toml.

Never fails an install for the parser's sake: no C compiler (the Docker image's slim base), mypyc missing
or refusing, or the compiler failing, each leaves the pure-Python module, with a warning.
``KISBOT_PURE_PYTHON=1`` at install time skips compiling (e.g. to test the pure module:
``KISBOT_PURE_PYTHON=1 python3 -m pip install -e '.[test]'``).

An editable install puts the compiled module beside frames.py (chatbot/kis/frames*.so), where it is
imported instead of the .py: one built from another source than frames.py's is set aside by
chatbot/kis/__init__.py (the build records the source's digest in chatbot/kis/frames.digest).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

COMPILED_MODULES = ["chatbot/kis/frames.py"]
# The build environment has mypy but not our dependencies, so mypyc reads frames.py alone: the modules it
# imports are not followed (their names are Any to it; none is on the hot path) and no config file (the
# strict check of the whole package is CI's `python3 -m mypy`). Following them tripled mypyc's ~4 s.
MYPYC_OPTIONS = ["--config-file=", "--follow-imports=skip", "--ignore-missing-imports"]
# setup.py runs for metadata too (egg_info, dist_info): only a build needs the extension (and mypyc's ~15 s)
BUILD_COMMANDS = {"build", "build_ext", "bdist_wheel", "editable_wheel", "develop", "install"}
DIGEST_FILE = Path("chatbot/kis/frames.digest")  # the sha256 of frames.py the build compiled


def pure(reason: str) -> list[Any]:
    """No extension; and none left from an earlier editable install, which would be imported instead."""
    print(f"kis-chatops setup.py: {reason}; chatbot/kis/frames.py installs as pure Python", flush=True)
    for path in [*DIGEST_FILE.parent.glob("frames.*.so"), *DIGEST_FILE.parent.glob("frames__mypyc.*.so")]:
        path.unlink()
    DIGEST_FILE.unlink(missing_ok=True)
    return []


def compiled_extensions() -> list[Any]:
    if not BUILD_COMMANDS & set(sys.argv[1:]):
        return []
    if os.environ.get("KISBOT_PURE_PYTHON"):
        return pure("KISBOT_PURE_PYTHON is set")
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:  # before mypyc's type check, which takes a while
        return pure(f"no C compiler ({compiler})")
    try:
        from mypyc.build import mypycify

        extensions: list[Any] = mypycify(MYPYC_OPTIONS + COMPILED_MODULES, opt_level="3")
    except (Exception, SystemExit) as error:  # noqa: BLE001 - whatever it is, pure Python (mypyc exits on a type error)
        return pure(f"mypyc cannot compile it ({error!r})")
    DIGEST_FILE.write_text(hashlib.sha256(Path(COMPILED_MODULES[0]).read_bytes()).hexdigest() + "\n")
    return extensions


class OptionalBuildExt(build_ext):
    """build_ext that gives up on the compiled parser instead of failing the install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # noqa: BLE001 - the compiler failing (CompileError, LinkError, OSError, …)
            for path in self.get_outputs():  # no half-built pair (the module and its __mypyc library)
                Path(path).unlink(missing_ok=True)
            pure(f"compiling failed ({error!r})")


setup(ext_modules=compiled_extensions(), cmdclass={"build_ext": OptionalBuildExt})
