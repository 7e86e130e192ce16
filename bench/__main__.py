"""Run every benchmark: ``python -m bench``."""

import asyncio
import logging

from bench import alerts, bot_roundtrip, lookup, realtime, realtime_overseas, rest_client

if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    for name, module in (("rest_client", rest_client), ("bot_roundtrip", bot_roundtrip), ("realtime", realtime),
                         ("realtime_overseas", realtime_overseas), ("alerts", alerts), ("lookup", lookup)):
        print(f"== bench.{name} ==", flush=True)
        asyncio.run(module.main())
