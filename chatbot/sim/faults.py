"""Fault switches for tests and soak runs: latency, 5xx, forced rate limits, token expiry, WS drops."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Faults:
    """Switches read by the simulator on every REST call. ``paths`` limits them to path prefixes."""

    latency_seconds: float = 0.0  # before the call is processed
    response_delay_seconds: float = 0.0  # after processing, before answering (the call took effect)
    error_5xx_next: int = 0  # the next N calls answer HTTP 500 without a KIS envelope, unprocessed
    error_5xx_after_next: int = 0  # the next N calls are processed, then answer HTTP 500
    error_5xx_probability: float = 0.0
    rate_limit_next: int = 0  # the next N calls answer EGW00201
    rate_limit_probability: float = 0.0
    # HTTP status of gateway refusals (EGW00201 rate limit, EGW00121/EGW00123 token): 0 = KIS's usual
    # (500); 200 = the EGW envelope on HTTP 200, which KIS's own backtester has met and retries.
    gateway_http_status: int = 0
    # WebSocket: the msg_cd of successful subscribe acks ("" = OPSP0000); KIS's rt_cd "0" is what counts.
    ws_success_msg_cd: str = ""
    paths: tuple[str, ...] = ()
    rng: random.Random = field(default_factory=lambda: random.Random(7), repr=False)
    injected: dict[str, int] = field(default_factory=dict)

    def applies(self, path: str) -> bool:
        return not self.paths or path.startswith(self.paths)

    def take_5xx_before(self) -> bool:
        if self.error_5xx_next > 0:
            self.error_5xx_next -= 1
            return self._count("5xx")
        if self.error_5xx_probability and self.rng.random() < self.error_5xx_probability:
            return self._count("5xx")
        return False

    def take_5xx_after(self) -> bool:
        if self.error_5xx_after_next > 0:
            self.error_5xx_after_next -= 1
            return self._count("5xx_after")
        return False

    def take_rate_limit(self) -> bool:
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            return self._count("rate_limit")
        if self.rate_limit_probability and self.rng.random() < self.rate_limit_probability:
            return self._count("rate_limit")
        return False

    def _count(self, kind: str) -> bool:
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return True

    def clear(self) -> None:
        self.latency_seconds = self.response_delay_seconds = 0.0
        self.error_5xx_next = self.error_5xx_after_next = self.rate_limit_next = 0
        self.error_5xx_probability = self.rate_limit_probability = 0.0
        self.gateway_http_status = 0
        self.ws_success_msg_cd = ""
        self.paths = ()

    def gateway_status(self, usual: int) -> int:
        return self.gateway_http_status or usual
