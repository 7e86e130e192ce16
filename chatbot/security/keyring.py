"""The master keyring: from ``KISBOT_MASTER_KEY`` or a key file (created 0600 on first start).

The file holds JSON ``{"current": N, "keys": {"N": "<base64 32 bytes>", ...}}`` so a rotation can
add a key, re-encrypt everything, and only then retire the old one: a crash in between loses
nothing. ``KISBOT_MASTER_KEY`` may hold the same JSON or a bare base64 key (version 1).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

ENV_VAR = "KISBOT_MASTER_KEY"
KEY_BYTES = 32


class KeyringError(RuntimeError):
    """The master key is missing, unreadable, unsafe or wrong; the message says which and what to do."""


class KeyFileMissing(KeyringError):
    """The key file does not exist (and was not to be created here: see ``chatbot.storage.vault``)."""


@dataclass(slots=True)
class MasterKeyring:
    current: int
    keys: dict[int, bytes] = field(repr=False)
    path: Path | None = None  # None: from the environment (cannot be rotated in place)

    def __repr__(self) -> str:
        return f"MasterKeyring(current={self.current}, versions={sorted(self.keys)}, path={self.path})"

    def key(self, version: int) -> bytes:
        try:
            return self.keys[version]
        except KeyError:
            raise KeyringError(f"master key version {version} is not in the keyring; data written with it "
                               f"cannot be read (was the key file replaced?)") from None

    @classmethod
    def load(cls, key_file: str | Path, environ: dict[str, str] | None = None, *, create: bool = True
             ) -> MasterKeyring:
        env = os.environ if environ is None else environ
        if env.get(ENV_VAR):
            return cls._parse(env[ENV_VAR], None, ENV_VAR)
        path = Path(key_file)
        if path.is_dir():
            raise KeyringError(f"master key path {path} is a directory, not a key file; point "
                               f"security.master_key_file at a file (e.g. {path / 'master.key'})")
        if not path.exists():
            if not create:
                raise KeyFileMissing(f"master key file {path} does not exist")
            return cls.create(path)
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & stat.S_IROTH or mode & stat.S_IWOTH:
                raise KeyringError(f"master key file {path} is readable by other users (mode {mode:o}); "
                                   f"run: chmod 600 {path}")
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise KeyringError(f"master key file {path} cannot be read: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise KeyringError(f"{path} does not hold a master key (expected base64 of 32 bytes or a keyring)") \
                from None
        return cls._parse(text, path, str(path))

    @classmethod
    def create(cls, path: Path) -> MasterKeyring:
        ring = cls(1, {1: secrets.token_bytes(KEY_BYTES)}, path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KeyringError(f"master key file {path} cannot be written: {exc.strerror or exc}") from None
        ring.save()
        return ring

    @classmethod
    def _parse(cls, text: str, path: Path | None, where: str) -> MasterKeyring:
        text = text.strip()
        try:
            if text.startswith("{"):
                doc = json.loads(text)
                keys = {int(v): base64.b64decode(k, validate=True) for v, k in doc["keys"].items()}
                current = int(doc["current"])
            else:
                keys, current = {1: base64.b64decode(text, validate=True)}, 1
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise KeyringError(f"{where} does not hold a master key (expected base64 of 32 bytes or a keyring)") \
                from None
        if current not in keys or any(len(k) != KEY_BYTES for k in keys.values()):
            raise KeyringError(f"{where}: every master key must be 32 bytes and the current version present")
        return cls(current, keys, path)

    def save(self) -> None:
        """Write the keyring atomically with mode 0600."""
        if self.path is None:
            raise KeyringError(f"the master key comes from {ENV_VAR}; rotate it there (see README)")
        doc = json.dumps({"current": self.current,
                          "keys": {str(v): base64.b64encode(k).decode() for v, k in sorted(self.keys.items())}})
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(doc)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise KeyringError(f"master key file {self.path} cannot be written: {exc.strerror or exc}") from None

    def add_key(self) -> int:
        version = max(self.keys) + 1
        self.keys[version] = secrets.token_bytes(KEY_BYTES)
        self.current = version
        return version

    def retire_all_but_current(self) -> list[int]:
        old = [v for v in self.keys if v != self.current]
        for version in old:
            del self.keys[version]
        return old
