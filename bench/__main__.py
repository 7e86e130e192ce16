"""Run every benchmark: ``python -m bench``."""

import asyncio

from bench import rest_client

if __name__ == "__main__":
    print("== bench.rest_client ==")
    asyncio.run(rest_client.main())
