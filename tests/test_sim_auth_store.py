"""The simulator's auth state is stored one document per app key: a token issued for one key
rewrites that key's document only, and everything survives a restart (old one-document layout too)."""

from __future__ import annotations

import hashlib
from typing import Any

from chatbot.kis.rest import KisEndpoint, KisRestClient
from chatbot.sim.auth import DOC_PREFIX, LEGACY_DOC, AuthRegistry, _kid
from chatbot.sim.server import KisSimulator, SimulatorOptions
from chatbot.sim.store import MemoryStateStore
from tests.helpers import new_credentials


class RecordingStore(MemoryStateStore):
    """A memory store that also keeps the keys of every document saved, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[str] = []

    async def save_many(self, documents: dict[str, dict[str, Any]]) -> None:
        self.written.extend(documents)
        await super().save_many(documents)


async def test_a_token_rewrites_only_its_own_key_and_survives_a_restart() -> None:
    store = RecordingStore()
    sim = KisSimulator(SimulatorOptions(tick_interval=0), store)
    await sim.start()
    url = sim.rest_url("real")
    clients = [KisRestClient(KisEndpoint("real", url), new_credentials()) for _ in range(30)]
    for client in clients:
        await client.balance()  # token, account binding, paper account
    before = len(store.written)
    late = KisRestClient(KisEndpoint("real", url), new_credentials())
    token = await late.tokens.get()
    auth_docs = [key for key in store.written[before:] if key.startswith(("auth", DOC_PREFIX))]
    assert auth_docs == [DOC_PREFIX + _kid(late.credentials.app_key)]
    assert len(str(store.documents[auth_docs[0]])) < 1_000
    await sim.stop()

    again = KisSimulator(SimulatorOptions(tick_interval=0), store)  # restart on the same store
    await again.start()
    assert again.auth.authenticate(f"Bearer {token}", late.credentials.app_key, late.credentials.app_secret)
    for client in clients:
        kid = _kid(client.credentials.app_key)
        assert again.auth.app_keys_of(str(client.account)) == {kid}  # real-like server: "CANO-PRDT"
    await late.aclose()
    for client in clients:
        await client.aclose()
    await again.stop()


def test_the_one_document_layout_is_read_and_rewritten_key_by_key() -> None:
    now = 1_000_000.0
    kid, account = _kid("PS" + "a" * 34), "12345678-01"
    token_digest = hashlib.sha256(b"tok").hexdigest()
    legacy = {"secret_digests": {kid: "s" * 64},
              "tokens": {token_digest: {"token": "", "app_key": kid, "issued_at": now, "expires_at": now + 3600}},
              "latest": {kid: token_digest}, "accounts": {kid: account}, "approvals": {"ap": kid}}
    auth = AuthRegistry(lambda: now)
    auth.restore({LEGACY_DOC: legacy})
    assert auth.app_keys_of(account) == {kid} and auth.approval_app_key("x") is None
    docs = auth.take_dirty()
    assert docs[LEGACY_DOC] == {} and set(docs) == {LEGACY_DOC, DOC_PREFIX + kid}
    assert docs[DOC_PREFIX + kid]["tokens"] == {token_digest: {"issued_at": now, "expires_at": now + 3600}}
    fresh = AuthRegistry(lambda: now)
    fresh.restore({LEGACY_DOC: {}, **{k: v for k, v in docs.items() if k != LEGACY_DOC}})
    assert fresh.app_keys_of(account) == {kid} and not fresh.changed
    assert fresh._document(kid) == docs[DOC_PREFIX + kid]
