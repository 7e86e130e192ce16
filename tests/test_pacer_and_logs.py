from __future__ import annotations

import asyncio
import io
import logging
import time

from chatbot.kis.ratelimit import RequestPacer
from chatbot.logs import SECRETS, setup_logging


async def test_pacer_never_lets_more_than_rate_start_in_a_window() -> None:
    pacer = RequestPacer(5, window=0.2)
    starts: list[float] = []

    async def request() -> None:
        async with pacer.slot():
            starts.append(time.monotonic())
            await asyncio.sleep(0.01)

    await asyncio.gather(*(request() for _ in range(23)))
    starts.sort()
    for i in range(len(starts) - 5):
        assert starts[i + 5] - starts[i] >= 0.2


async def test_pacer_paces_sends_not_replies() -> None:
    """A slow reply does not hold the permit: requests go out at the rate whatever the latency."""
    pacer = RequestPacer(5, window=0.2, margin=0.01)
    sends: list[float] = []
    sent_before_a_reply: list[int] = []

    async def request() -> None:
        async with pacer.slot() as permit:
            await permit.trace("http11.send_request_headers.started", {})
            sends.append(time.monotonic())
            await asyncio.sleep(0.5)  # the reply takes longer than two windows
            sent_before_a_reply.append(len(sends))

    await asyncio.gather(*(request() for _ in range(25)))
    sends.sort()
    for i in range(len(sends) - 5):
        assert sends[i + 5] - sends[i] >= 0.21 - 1e-3
    # The sixth send is due 0.21 s in, the first reply 0.5 s in (12 sends come before it, unloaded);
    # permits held until their replies would let exactly 5 out first. Counted, not timed: however
    # long the event loop stalls, it wakes the pacer (due first) before the replies.
    assert sent_before_a_reply[0] > 5, sent_before_a_reply


async def test_pacer_frees_a_permit_that_was_never_sent_and_widens_after_a_refusal() -> None:
    pacer = RequestPacer(1, window=0.5, margin=0.01)
    async with pacer.slot() as permit:
        await permit.trace("connection.connect_tcp.started", {})  # then the connection fails
    waited = pacer.waited_seconds
    async with pacer.slot():
        # no send reported by this transport: the permit counts from its end
        pacer.refused()  # KIS refused it for the rate all the same: the spacing widens
    assert pacer.waited_seconds - waited < 0.1  # the pacer's own wait (a window had it not been freed)
    assert pacer.margin > 0.05 and pacer.refusals == 1
    started = time.monotonic()
    async with pacer.slot():
        pass
    assert time.monotonic() - started >= 0.5 + 0.05


def test_logs_redact_registered_secrets_and_token_shapes() -> None:
    stream = io.StringIO()
    setup_logging("DEBUG", stream=stream)
    SECRETS.add("PSsuperSecretAppKey0123456789abcdefgh")
    log = logging.getLogger("t")
    log.info("calling with key PSsuperSecretAppKey0123456789abcdefgh", extra={"appsecret": "x" * 40})
    log.info("url https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0/getMe")
    log.info("auth", extra={"header": "Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9.abc"})
    out = stream.getvalue()
    assert "PSsuperSecret" not in out and "AAHdqTcv" not in out and "eyJ0eXAi" not in out
    assert out.count("[REDACTED]") >= 3
    setup_logging("INFO", json_lines=True, stream=stream)
    log.info("json %s", "PSsuperSecretAppKey0123456789abcdefgh")
    assert "PSsuperSecret" not in stream.getvalue()
