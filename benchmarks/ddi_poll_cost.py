"""DDI poll cost: requests and bytes on the wire per hour at the default interval (docs/fleet.md).

Polls tests/support/ddi_server.py (an idle target: nothing to do, attributes already sent)
through a byte-counting TCP proxy, one new connection per poll as after five idle minutes.
Plain HTTP: add a TLS handshake per poll for https.  Run: .venv/bin/python benchmarks/ddi_poll_cost.py
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from controller.fleet import settings as ddi_settings  # noqa: E402
from controller.fleet.ddi import DdiClient  # noqa: E402
from support.ddi_server import TARGET, TENANT, TOKEN, DdiServer  # noqa: E402


async def main() -> None:
    server = DdiServer(sleep="00:05:00", ask_config=False)
    runner = web.AppRunner(server.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    counted = {"up": 0, "down": 0}

    async def pump(src, dst, key):
        try:
            while data := await src.read(65536):
                counted[key] += len(data)
                dst.write(data)
                await dst.drain()
        finally:
            dst.close()

    async def handle(reader, writer):
        up_r, up_w = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(pump(reader, up_w, "up"), pump(up_r, writer, "down"),
                             return_exceptions=True)

    proxy = await asyncio.start_server(handle, "127.0.0.1", 0)
    settings = ddi_settings.check(f"http://127.0.0.1:{proxy.sockets[0].getsockname()[1]}",
                                  TENANT, TARGET)
    polls = 3600 // ddi_settings.DEFAULT_POLL_S
    for _ in range(polls):
        async with aiohttp.ClientSession() as session:
            await DdiClient(settings, TOKEN, session).poll()
    await asyncio.sleep(0.2)
    total = counted["up"] + counted["down"]
    print(f"{polls} requests/hour, {total} bytes/hour on the wire (up {counted['up']}, down "
          f"{counted['down']}), {total // polls} bytes a poll, plain HTTP")
    proxy.close()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
