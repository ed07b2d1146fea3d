"""A real aiohttp HTTPS server for tests, on 127.0.0.1 in a thread with its own event loop."""

from __future__ import annotations

import asyncio
import ssl
import threading

from aiohttp import web


class ServerThread:
    """A real aiohttp HTTPS server on 127.0.0.1 in a thread with its own event loop."""

    def __init__(self, app: web.Application, ssl_context: ssl.SSLContext, port: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = web.AppRunner(app)

        async def start() -> int:
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", port, ssl_context=ssl_context)
            await site.start()
            return self.runner.addresses[0][1]
        self.port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
