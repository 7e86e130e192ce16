"""Small builders shared by the tests."""

from __future__ import annotations

import os
import secrets
import socket

from chatbot.kis.models import Account
from chatbot.kis.rest import KisCredentials


def new_credentials(account: str | None = None) -> KisCredentials:
    """A fresh, well-formed KIS key pair (36-char app key, 180-char secret) and account."""
    app_key = "PS" + secrets.token_hex(17)
    app_secret = secrets.token_urlsafe(135)
    assert len(app_key) == 36 and len(app_secret) == 180
    acct = account or f"{secrets.randbelow(10**8):08d}-01"
    return KisCredentials(app_key, app_secret, Account.parse(acct))


_PORTS_GIVEN: set[int] = set()


def free_port() -> int:
    """A loopback TCP port for a server that must be named before it binds (a webhook URL, a replica's
    port in its environment). Taken below the kernel's ephemeral range, where no connect() and no bind
    to port 0 (every other server of the tests) lands in the time the server takes to start; in this
    xdist worker's own share of that range (workers never pick the same one), never twice in a process,
    and checked free."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    count = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), index + 1)
    candidates = range(min(20000, ephemeral // 2) + index, ephemeral, count)
    for _ in range(1000):
        port = secrets.choice(candidates)
        if port in _PORTS_GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _PORTS_GIVEN.add(port)
        return port
    raise RuntimeError("no free loopback port below the ephemeral range")
