"""The entry point keeps aiohttp's client TLS contexts from loading the CA store at import
(chatbot.__main__.ClientTlsWithoutCaStoreAtImport): the verifying one still verifies, with the CA
store loaded on its first connection. In a fresh process: this one has imported aiohttp long ago."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import ssl, sys
from chatbot.__main__ import CaStoreOnFirstUse, ClientTlsWithoutCaStoreAtImport, skip_unused_optional_imports

skip_unused_optional_imports()
import aiohttp.connector as connector

assert not any(isinstance(f, ClientTlsWithoutCaStoreAtImport) for f in sys.meta_path)  # stepped aside
assert "set_default_verify_paths" not in ssl.SSLContext.__dict__  # ssl as it was
assert ssl.create_default_context().cert_store_stats()["x509_ca"] == system_cas

verified, unverified = connector._SSL_CONTEXT_VERIFIED, connector._SSL_CONTEXT_UNVERIFIED
assert isinstance(verified, CaStoreOnFirstUse)
assert verified.verify_mode == ssl.CERT_REQUIRED and verified.check_hostname
assert verified.cert_store_stats()["x509_ca"] == 0
assert unverified.verify_mode == ssl.CERT_NONE and not unverified.check_hostname
assert unverified.cert_store_stats()["x509_ca"] == 0
verified.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.com")
assert verified.cert_store_stats()["x509_ca"] == system_cas  # loaded on first use
print("ok")
"""


def test_aiohttp_client_contexts_load_no_ca_store_at_import_and_verify_on_use() -> None:
    system_cas = "import ssl; system_cas = ssl.create_default_context().cert_store_stats()['x509_ca']\n"
    done = subprocess.run([sys.executable, "-c", system_cas + CHECK], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_stand_in_for_create_default_context_leaves_other_uses_to_the_real_one(tmp_path: Path) -> None:
    import functools
    import ssl

    from chatbot.__main__ import CaStoreOnFirstUse, _verifying_context

    stand_in = functools.partial(_verifying_context, ssl.create_default_context)
    client = stand_in()
    assert isinstance(client, CaStoreOnFirstUse)
    assert client.verify_mode == ssl.CERT_REQUIRED and client.check_hostname
    server = stand_in(ssl.Purpose.CLIENT_AUTH)  # a server's context: the real function's, as it is
    assert type(server) is ssl.SSLContext and server.verify_mode == ssl.CERT_NONE
    given = stand_in(capath=str(tmp_path))  # CAs given: the real function's
    assert type(given) is ssl.SSLContext and given.verify_mode == ssl.CERT_REQUIRED
