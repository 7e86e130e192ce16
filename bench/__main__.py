"""Run every benchmark, one after the other in one process: ``python -m bench``.

Each prints its figures beside an anchor measured in the same run (a bare bot, the previous code
path, an empty database, the first thousand users, a bare commit, python-kis, the KIS limit, the
warm-up's own memory growth), so the ratios hold on a loaded machine even when the absolute figures
do not. About 12 minutes, and a few more for bench.memory.

    python -m bench                 # everything
    python -m bench alerts startup  # some
"""

import asyncio
import logging
import sys
import time

from bench import (
    alerts,
    bot_roundtrip,
    lookup,
    memory,
    realtime,
    realtime_overseas,
    replicas,
    reports,
    rest_client,
    scale,
    startup,
    us_roundtrip,
)

BENCHES = {"rest_client": rest_client, "bot_roundtrip": bot_roundtrip, "realtime": realtime,
           "realtime_overseas": realtime_overseas, "lookup": lookup,
           "startup": startup, "alerts": alerts, "scale": scale, "replicas": replicas, "reports": reports,
           "us_roundtrip": us_roundtrip, "memory": memory}

if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    chosen = sys.argv[1:] or list(BENCHES)
    for name in chosen:
        started = time.perf_counter()
        print(f"== bench.{name} ==", flush=True)
        asyncio.run(BENCHES[name].main())
        print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)
