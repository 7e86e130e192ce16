"""REST benchmark: queries per second through client + simulator, and the pacer's achieved rate.

    python -m bench.rest_client            # about 35 s
"""

from __future__ import annotations

import asyncio
import statistics
import time

from chatbot.kis.rest import KisEndpoint, KisRestClient
from chatbot.sim.server import KisSimulator, SimulatorOptions
from tests.helpers import new_credentials

CODE = "005930"


async def throughput(sim: KisSimulator, total: int = 3000, concurrency: int = 32) -> dict[str, float]:
    """Unthrottled: how many inquire-price round trips a second the stack itself sustains."""
    sim.throttles["real"].limit = 10**9
    client = KisRestClient(KisEndpoint("real", sim.rest_url("real")), new_credentials(), requests_per_second=10**6)
    await client.quote(CODE)
    latencies: list[float] = []
    queue = iter(range(total))

    async def worker() -> None:
        for _ in queue:
            t0 = time.perf_counter()
            await client.quote(CODE)
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await client.aclose()
    latencies.sort()
    return {"queries": total, "qps": total / elapsed, "p50_ms": statistics.median(latencies) * 1e3,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3}


async def limiter(sim: KisSimulator, flavour: str, limit: int, seconds: float, concurrency: int = 40
                  ) -> dict[str, float]:
    """Saturating load through the pacer at KIS's limit: achieved rate, share of the limit, refusals."""
    sim.throttles[flavour].limit = limit
    sim.throttles[flavour].refused = 0
    client = KisRestClient(KisEndpoint(flavour, sim.rest_url(flavour)), new_credentials(),  # type: ignore[arg-type]
                           requests_per_second=limit)
    await client.quote(CODE)
    await asyncio.sleep(1.1)  # start with a clean window
    finished: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            await client.quote(CODE)
            finished.append(time.perf_counter())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await client.aclose()
    # Steady state: leave out the first two windows (a full bucket of permits goes out at once).
    # Requests go out in bursts of `limit` once a window, so N requests from the first to the last
    # burst span (N - limit) / rate seconds: count one burst less than we saw.
    steady = sorted(t for t in finished if t >= started + 2.0)
    achieved = (len(steady) - limit) / (steady[-1] - steady[0])
    return {"limit": limit, "achieved_per_s": achieved, "share_pct": 100 * achieved / limit,
            "server_refusals": sim.throttles[flavour].refused, "client_retries": client.rate_limit_retries,
            "requests": len(finished)}


async def main() -> None:
    sim = KisSimulator(SimulatorOptions(tick_interval=0))
    await sim.start()
    try:
        for concurrency in (1, 8, 32):
            t = await throughput(sim, concurrency=concurrency)
            print(f"REST throughput (client + simulator in one process, unthrottled, {concurrency} in flight): "
                  f"{t['qps']:.0f} queries/s, p50 {t['p50_ms']:.2f} ms, p99 {t['p99_ms']:.2f} ms")
        for flavour, limit, seconds in (("real", 20, 20.0), ("virtual", 2, 10.0)):
            r = await limiter(sim, flavour, limit, seconds)
            print(f"pacer at the {flavour} limit ({limit}/s, {seconds:.0f} s saturated): "
                  f"{r['requests']} requests, steady {r['achieved_per_s']:.2f}/s = {r['share_pct']:.1f} % of the limit, "
                  f"server refusals {r['server_refusals']}, client retries {r['client_retries']}")
    finally:
        await sim.stop()


if __name__ == "__main__":
    asyncio.run(main())
