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
