"""AES-GCM encryption of one field of one owner's row.

The associated data is ``"<owner id>:<field>"``: a ciphertext copied to another user's row, or to
another field, fails to decrypt. Stored form: ``"<version>$<base64(nonce || ciphertext+tag)>"``.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chatbot.security.keyring import KeyringError, MasterKeyring

NONCE_BYTES = 12


class DecryptionError(KeyringError):
    """A ciphertext does not open with the key and owner it is read with (wrong key, moved, or altered)."""


class SecretBox:
    def __init__(self, keyring: MasterKeyring) -> None:
        self.keyring = keyring

    def encrypt(self, plaintext: str, owner: int | str, field: str, version: int | None = None) -> str:
        version = self.keyring.current if version is None else version
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keyring.key(version)).encrypt(nonce, plaintext.encode("utf-8"), _aad(owner, field))
        return f"{version}${base64.b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, stored: str, owner: int | str, field: str) -> str:
        version_text, sep, body = stored.partition("$")
        if not sep or not version_text.isdigit():
            raise DecryptionError(f"{field} of {owner}: not an encrypted value")
        raw = base64.b64decode(body)
        try:
            plain = AESGCM(self.keyring.key(int(version_text))).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                                                         _aad(owner, field))
        except InvalidTag:
            raise DecryptionError(f"{field} of {owner} does not decrypt with master key version {version_text} "
                                  f"(wrong master key, or the value was moved or altered)") from None
        return plain.decode("utf-8")

    @staticmethod
    def version_of(stored: str) -> int | None:
        version_text, sep, _ = stored.partition("$")
        return int(version_text) if sep and version_text.isdigit() else None


def _aad(owner: int | str, field: str) -> bytes:
    return f"{owner}:{field}".encode()
