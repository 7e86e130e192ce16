"""REST benchmark: queries per second through client + simulator, and the pacer's achieved rate.

1. Throughput (unthrottled) at 1, 8 and 32 queries in flight against one simulator, interleaved in
   one run: today's client with ``sniffio`` importable (pyproject.toml now declares it), against the
   anchor, the previous request path without it, as a fresh install of the previous pyproject had
   it (httpcore then tries ``import sniffio`` on every connection-pool operation: the import
   system's full search, each time); and the previous path with sniffio, to show its share.
2. The pacer at KIS's limits, saturated, at 0, 30 and 100 ms of simulated server latency (half
   before the simulator counts the request, half before it answers): achieved rate as a share of
   the limit (the anchor), server refusals, client retries.

    python -m bench.rest_client            # about 90 s
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.abc
import importlib.machinery
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx

from chatbot.kis.rest import KisEndpoint, KisRestClient
from chatbot.sim.server import KisSimulator, SimulatorOptions
from tests.helpers import new_credentials

CODE = "005930"
ROUNDS = 5


class _Missing(importlib.abc.MetaPathFinder):
    """Makes a module missing: the path search still runs (what a missing module costs), then fails."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname == self.name or fullname.startswith(self.name + "."):
            importlib.machinery.PathFinder.find_spec(fullname, path)
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)


@contextlib.contextmanager
def without(module: str) -> Iterator[None]:
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k == module or k.startswith(module + ".")}
    finder = _Missing(module)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        sys.modules.update(saved)


class PreviousClient(KisRestClient):
    """The anchor: the request path as it was before this change (httpx builds each request from a
    relative path and a params dict), run without sniffio as a fresh install of the previous
    pyproject.toml had it. Everything else is today's client."""

    async def _request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                       headers: dict[str, str] | None = None, content: bytes | None = None,
                       timeout: float | None = None, tr_id: str = "") -> httpx.Response:
        if content is not None:
            headers = {**(headers or {}), "Content-Type": "application/json"}
        async with self.pacer.slot():
            self.calls += 1
            return await self._http.request(method, path, params=params, headers=headers, content=content,
                                            timeout=timeout if timeout is not None else self.timeout)


async def throughput(sim: KisSimulator, total: int = 1000, concurrency: int = 32,
                     client_class: type[KisRestClient] = KisRestClient) -> dict[str, float]:
    """Unthrottled: how many inquire-price round trips a second the stack itself sustains."""
    sim.throttles["real"].limit = 10**9
    client = client_class(KisEndpoint("real", sim.rest_url("real")), new_credentials(), requests_per_second=10**6)
    await client.quote(CODE)
    latencies: list[float] = []
    queue = iter(range(total))

    async def worker() -> None:
        for _ in queue:
            t0 = time.perf_counter()
            await client.quote(CODE)
            latencies.append(time.perf_counter() - t0)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await client.aclose()
    latencies.sort()
    return {"queries": total, "qps": total / elapsed, "per_cpu_s": total / cpu,
            "p50_ms": statistics.median(latencies) * 1e3, "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3}


async def limiter(sim: KisSimulator, flavour: str, limit: int, seconds: float, latency: float = 0.0,
                  concurrency: int = 40) -> dict[str, float]:
    """Saturating load through the pacer at KIS's limit: achieved rate, share of the limit, refusals."""
    sim.throttles[flavour].limit = limit
    sim.throttles[flavour].refused = 0
    client = KisRestClient(KisEndpoint(flavour, sim.rest_url(flavour)), new_credentials(),  # type: ignore[arg-type]
                           requests_per_second=limit)
    await client.quote(CODE)
    sim.faults.latency_seconds = sim.faults.response_delay_seconds = latency / 2
    await asyncio.sleep(1.1 + latency)  # start with a clean window
    finished: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            await client.quote(CODE)
            finished.append(time.perf_counter())

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        sim.faults.clear()
        await client.aclose()
    # Steady state: leave out the first two seconds (an idle pacer lets a full window out at once);
    # the rate is the slope of completions against time (least squares: right for an even spacing
    # and for bursts once a window alike).
    steady = sorted(t for t in finished if t >= started + 2.0 + latency)
    achieved = statistics.linear_regression(steady, list(range(len(steady)))).slope
    return {"limit": limit, "achieved_per_s": achieved, "share_pct": 100 * achieved / limit,
            "server_refusals": sim.throttles[flavour].refused, "client_retries": client.rate_limit_retries,
            "requests": len(finished)}


async def main() -> None:
    sim = KisSimulator(SimulatorOptions(tick_interval=0))
    await sim.start()
    try:
        for concurrency in (1, 8, 32):
            runs: dict[str, list[dict[str, float]]] = {"before": [], "sniffio": [], "now": []}
            for _ in range(ROUNDS):  # interleaved, the same number of times each; medians
                with without("sniffio"):
                    runs["before"].append(await throughput(sim, concurrency=concurrency, client_class=PreviousClient))
                runs["sniffio"].append(await throughput(sim, concurrency=concurrency, client_class=PreviousClient))
                runs["now"].append(await throughput(sim, concurrency=concurrency))
            med = {k: {m: statistics.median(r[m] for r in v) for m in ("qps", "per_cpu_s", "p50_ms", "p99_ms")}
                   for k, v in runs.items()}
            before, sniffio, now = med["before"], med["sniffio"], med["now"]
            print(f"REST throughput (client + simulator in one process, unthrottled, {concurrency} in flight, "
                  f"medians of {ROUNDS}): {now['qps']:.0f} queries/s (p50 {now['p50_ms']:.2f} ms, p99 "
                  f"{now['p99_ms']:.2f} ms) vs {before['qps']:.0f} for the previous request path without sniffio "
                  f"(p50 {before['p50_ms']:.2f} ms) → {now['qps'] / before['qps']:.2f}× (sniffio alone "
                  f"{sniffio['qps'] / before['qps']:.2f}×); per CPU second {now['per_cpu_s']:.0f} vs "
                  f"{before['per_cpu_s']:.0f} → {now['per_cpu_s'] / before['per_cpu_s']:.2f}× (sniffio alone "
                  f"{sniffio['per_cpu_s'] / before['per_cpu_s']:.2f}×)", flush=True)
        for flavour, limit, seconds, latency in (("real", 20, 12.0, 0.0), ("real", 20, 12.0, 0.03),
                                                 ("real", 20, 12.0, 0.1), ("virtual", 2, 10.0, 0.0),
                                                 ("virtual", 2, 10.0, 0.1)):
            r = await limiter(sim, flavour, limit, seconds, latency)
            print(f"pacer at the {flavour} limit ({limit}/s, {seconds:.0f} s saturated, {latency * 1e3:.0f} ms "
                  f"server latency): {r['requests']} requests, steady {r['achieved_per_s']:.2f}/s = "
                  f"{r['share_pct']:.1f} % of the limit, server refusals {r['server_refusals']}, "
                  f"client retries {r['client_retries']}", flush=True)
    finally:
        await sim.stop()


if __name__ == "__main__":
    asyncio.run(main())
