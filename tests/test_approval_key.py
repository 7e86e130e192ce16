"""WebSocket approval keys (/oauth2/Approval, KIS_API.md §3.3): sessions of one app key starting together
(the operator's feed session, a user's notice session, the feed planner's) ask KIS once, whichever client
object each holds; a failure reaches every one of them and the next ask tries again."""

from __future__ import annotations

import asyncio

import pytest

from chatbot.kis import protocol as p
from chatbot.kis.errors import KisError
from chatbot.kis.realtime import RealtimeClient
from chatbot.kis.rest import KisCredentials, KisEndpoint, KisRestClient
from chatbot.kis.token import SingleFlight
from chatbot.sim.server import KisSimulator
from tests.helpers import new_credentials

SESSIONS = 6


def clients_of(sim: KisSimulator, creds: KisCredentials, n: int) -> list[KisRestClient]:
    """``n`` clients of one app key, as the operator's feed, a user's account and the planner each make theirs."""
    return [KisRestClient(KisEndpoint("real", sim.rest_url("real")), creds) for _ in range(n)]


async def close(clients: list[KisRestClient]) -> None:
    for client in clients:
        await client.aclose()


async def test_concurrent_requests_for_one_app_key_issue_one_approval_key(sim: KisSimulator) -> None:
    clients = clients_of(sim, new_credentials(), SESSIONS)
    try:
        keys = await asyncio.gather(*(c.approval_key() for c in clients))
    finally:
        await close(clients)
    assert sim.auth.approvals_issued == 1
    assert len(set(keys)) == 1 and sim.auth.approval_app_key(keys[0], opening=True) is not None


async def test_sessions_of_one_app_key_starting_together_issue_one_approval_key(sim: KisSimulator) -> None:
    """The sessions connect, then all register at once: one /oauth2/Approval. (KIS lets one session per app
    key in, OPSP8996 for the others; what counts here is what they cost the approval endpoint.)"""
    creds = new_credentials()
    rests = clients_of(sim, creds, SESSIONS)
    sessions = [RealtimeClient(sim.ws_url("real"), r.approval_key, ack_timeout=30) for r in rests]
    try:
        for session in sessions:
            await session.start()
        for session in sessions:
            await asyncio.wait_for(session.connected.wait(), 60)
        outcomes = await asyncio.gather(*(s.subscribe(p.WS_TRADE, "005930") for s in sessions),
                                        return_exceptions=True)
        assert any(o is None for o in outcomes)
        assert all(o is None or getattr(o, "msg_cd", "") == p.OPSP_APPKEY_IN_USE for o in outcomes)
        assert sim.auth.approvals_issued == 1
    finally:
        for session in sessions:
            await session.aclose()
        await close(rests)


async def test_a_failed_issuance_reaches_every_waiter_and_the_next_call_asks_again(sim: KisSimulator) -> None:
    clients = clients_of(sim, new_credentials(), SESSIONS)
    sim.faults.paths, sim.faults.error_5xx_next = (p.PATH_APPROVAL,), 1
    try:
        outcomes = await asyncio.gather(*(c.approval_key() for c in clients), return_exceptions=True)
        assert all(isinstance(o, KisError) for o in outcomes)
        assert sim.faults.injected == {"5xx": 1}  # one request failed, and only one was sent
        assert sim.auth.approvals_issued == 0
        key = await clients[0].approval_key()  # not a remembered failure: KIS is asked again
    finally:
        await close(clients)
    assert sim.auth.approvals_issued == 1 and sim.auth.approval_app_key(key, opening=True) is not None


async def test_calls_one_after_another_each_get_a_fresh_key(sim: KisSimulator) -> None:
    """Nothing is kept once a request is answered: a session opening later (a reconnect) gets a new key,
    as RealtimeClient wants (KIS checks the key when a session opens)."""
    (client,) = clients_of(sim, new_credentials(), 1)
    try:
        first, second = await client.approval_key(), await client.approval_key()
    finally:
        await close([client])
    assert first != second and sim.auth.approvals_issued == 2


async def test_different_app_keys_do_not_share(sim: KisSimulator) -> None:
    clients = [*clients_of(sim, new_credentials(), 1), *clients_of(sim, new_credentials(), 1)]
    try:
        a, b = await asyncio.gather(*(c.approval_key() for c in clients))
    finally:
        await close(clients)
    assert a != b and sim.auth.approvals_issued == 2
    assert sim.auth.approval_app_key(a) != sim.auth.approval_app_key(b)


async def test_a_cancelled_waiter_leaves_the_request_to_the_others() -> None:
    flights: SingleFlight[str] = SingleFlight()
    release = asyncio.Event()
    runs = 0

    async def work() -> str:
        nonlocal runs
        runs += 1
        await release.wait()
        return "key"

    first = asyncio.create_task(flights.run("k", work))
    second = asyncio.create_task(flights.run("k", work))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    release.set()
    assert await second == "key"
    assert runs == 1 and flights.started == 1
