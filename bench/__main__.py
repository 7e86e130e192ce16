"""Run every benchmark: ``python -m bench``."""

import asyncio
import logging

from bench import bot_roundtrip, rest_client

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    print("== bench.rest_client ==", flush=True)
    asyncio.run(rest_client.main())
    print("== bench.bot_roundtrip ==", flush=True)
    asyncio.run(bot_roundtrip.main())
