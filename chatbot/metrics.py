"""Prometheus metrics: counted as things happen where a hook is needed, otherwise read at scrape
time from counters the bot keeps anyway (so the service layer knows nothing of Prometheus)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # prometheus_client is imported when metrics are first served, not at start-up
    from prometheus_client.core import Metric

KNOWN_COMMANDS = frozenset({"start", "help", "price", "buy", "sell", "orders", "cancel", "modify", "balance", "alert", "alerts",
                            "chart", "status", "login", "logout", "me", "reset"})
KIS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(slots=True)
class _Latency:
    """One endpoint's histogram: a count per bucket (not cumulative; the last is +Inf) and the sum."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(KIS_BUCKETS) + 1))
    total: float = 0.0


class Metrics:
    """Counted in plain dicts as things happen (a command, a KIS round trip); turned into Prometheus
    families only when scraped, so a bot nobody scrapes never imports prometheus_client (~14 ms of
    start-up CPU on the shared machine, 1.1 MB)."""

    def __init__(self) -> None:
        self.commands: dict[str, int] = {}
        self.kis_latency: dict[str, _Latency] = {}
        self._snapshots: list[Callable[[], Iterable[Metric]]] = []

    def command(self, text: str) -> None:
        name = text.split()[0].lstrip("/").split("@")[0].lower() if text.startswith("/") else ""
        if name:
            label = name if name in KNOWN_COMMANDS else "other"
            self.commands[label] = self.commands.get(label, 0) + 1

    def observe_kis(self, path: str, seconds: float) -> None:
        endpoint = path.rsplit("/", 1)[-1] or "/"
        latency = self.kis_latency.get(endpoint)
        if latency is None:
            latency = self.kis_latency[endpoint] = _Latency()
        latency.counts[bisect_left(KIS_BUCKETS, seconds)] += 1  # le: a value on a bound counts in that bucket
        latency.total += seconds

    def add_snapshot(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._snapshots.append(collect)

    def collect(self) -> Iterable[Metric]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        commands = CounterMetricFamily("kisbot_commands", "Commands handled", labels=["command"])
        for name, count in sorted(self.commands.items()):
            commands.add_metric([name], count)
        yield commands
        latency = HistogramMetricFamily("kisbot_kis_request_seconds", "KIS REST round trips", labels=["endpoint"])
        for endpoint, seen in sorted(self.kis_latency.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*(str(float(b)) for b in KIS_BUCKETS), "+Inf"), seen.counts, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            latency.add_metric([endpoint], buckets, seen.total)
        yield latency
        for snapshot in self._snapshots:
            yield from snapshot()

    def render(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        return generate_latest(registry)


class Figures(Protocol):
    """What the families below are read from at each scrape (the service's ``Figures``)."""

    @property
    def orders_by_outcome(self) -> Mapping[str, int]: ...
    @property
    def alerts_fired(self) -> int: ...
    @property
    def feed_reconnects(self) -> int: ...
    @property
    def feed_connected(self) -> bool | None: ...
    @property
    def pushes_sent(self) -> int: ...
    @property
    def kis_rate_limit_wait_seconds(self) -> float: ...
    @property
    def kis_rate_limit_retries(self) -> int: ...


def families(figures: Figures) -> Iterable[Metric]:
    """Orders by outcome, alerts fired, pushes, feed reconnects, KIS rate-limit waits and retries."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    orders = CounterMetricFamily("kisbot_orders", "Confirmed cards by outcome", labels=["outcome"])
    for outcome, count in sorted(figures.orders_by_outcome.items()):
        orders.add_metric([outcome], count)
    yield orders
    yield CounterMetricFamily("kisbot_alerts_fired", "Alerts fired", value=figures.alerts_fired)
    yield CounterMetricFamily("kisbot_feed_reconnects", "Real-time WebSocket reconnects", value=figures.feed_reconnects)
    yield CounterMetricFamily("kisbot_pushes_sent", "Pushes delivered", value=figures.pushes_sent)
    yield CounterMetricFamily("kisbot_kis_rate_limit_wait_seconds", "Time spent waiting for KIS's per-second limit",
                              value=figures.kis_rate_limit_wait_seconds)
    yield CounterMetricFamily("kisbot_kis_rate_limit_retries", "Queries retried after EGW00201",
                              value=figures.kis_rate_limit_retries)
    yield GaugeMetricFamily("kisbot_feed_connected", "1 when the market-data feed is connected",
                            value=1 if figures.feed_connected else 0)
