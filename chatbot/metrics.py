"""Prometheus metrics: counted as things happen where a hook is needed, otherwise read at scrape
time from counters the bot keeps anyway (so the service layer knows nothing of Prometheus)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

KNOWN_COMMANDS = frozenset({"start", "help", "price", "buy", "sell", "orders", "cancel", "modify", "balance", "alert", "alerts",
                            "chart", "status", "login", "logout", "me", "reset"})


class _Snapshot:
    """A collector that asks a function for its metric families at every scrape."""

    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return self._collect()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.commands = Counter("kisbot_commands_total", "Commands handled", ["command"], registry=self.registry)
        self.kis_latency = Histogram("kisbot_kis_request_seconds", "KIS REST round trips", ["endpoint"],
                                     buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                     registry=self.registry)

    def command(self, text: str) -> None:
        name = text.split()[0].lstrip("/").split("@")[0].lower() if text.startswith("/") else ""
        if name:
            self.commands.labels(name if name in KNOWN_COMMANDS else "other").inc()

    def observe_kis(self, path: str, seconds: float) -> None:
        self.kis_latency.labels(path.rsplit("/", 1)[-1] or "/").observe(seconds)

    def add_snapshot(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self.registry.register(_Snapshot(collect))  # type: ignore[arg-type]

    def render(self) -> bytes:
        return generate_latest(self.registry)


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
