"""Connections the API will hold: a header deadline, an idle timeout, a cap per source.

An unauthenticated client on the LAN must not be able to starve the API of
file descriptors by opening connections and saying nothing, or half a
request header, forever.  Three limits, each where it can be enforced:

* **Before TLS.**  The listening socket is a :class:`GuardedSocket`: every
  accepted connection is counted per peer address as it is accepted, before
  any handshake, raw TCP and TLS alike.  When a source holds more than
  ``per_source`` connections (or everyone together more than ``total``), its
  *oldest* connection is shut down to make room: a flood only ever hurts the
  address it comes from, and a real request from that address -- the
  board's own self-test timer on 127.0.0.1 among them -- still gets through,
  because its fresh connection displaces an idle one, not the other way round.
* **The first request header**, TLS handshake included, must be complete
  within ``header_timeout_s`` of the accept: a timer armed at accept time
  shuts the connection down unless :meth:`ConnectionGuard.middleware` has
  seen a request on it by then (asyncio's own ``ssl_handshake_timeout``,
  60 s by default, is lowered to the same value).
* **Idleness between requests, and a later request's header,** use
  aiohttp's ``keepalive_timeout`` (``controller run`` sets it to the same
  value; aiohttp's default is an hour).

The counts are in ``GET /api/v1/status`` (``connections``).  The systemd
unit raises ``LimitNOFILE`` well above ``total`` so the limits here are
reached first.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections import OrderedDict, defaultdict

from aiohttp import web
from yarl import URL

from controller.jsonin import JsonObject

log = logging.getLogger("ledwarden.connections")

HEADER_TIMEOUT_S = 10.0
PER_SOURCE = 32
TOTAL = 512


class ConnectionGuard:
    """Open connections by source, oldest first, and the limits they are held to."""

    def __init__(self, per_source: int = PER_SOURCE, total: int = TOTAL,
                 header_timeout_s: float = HEADER_TIMEOUT_S) -> None:
        self.per_source = per_source
        self.total = total
        self.header_timeout_s = header_timeout_s
        self._open: OrderedDict[CountedSocket, str] = OrderedDict()   # oldest first
        self._by_source: dict[str, int] = defaultdict(int)
        self._deadlines: dict[int, tuple[CountedSocket, asyncio.TimerHandle]] = {}   # by fd
        self.accepted = 0
        self.displaced = 0
        self.timed_out = 0

    def admit(self, conn: CountedSocket, source: str) -> None:
        """Count a new connection, arm its header deadline, and shut down the oldest
        connections over a limit.  (Called by the event loop's accept, in its thread.)"""
        self.accepted += 1
        self._open[conn] = source
        self._by_source[source] += 1
        timer = asyncio.get_running_loop().call_later(self.header_timeout_s, self._expire, conn)
        self._deadlines[conn.fileno()] = (conn, timer)
        if self._by_source[source] > self.per_source:
            self._displace(next(c for c, s in self._open.items() if s == source and c is not conn))
        if len(self._open) > self.total:
            self._displace(next(iter(self._open)))

    def _displace(self, conn: CountedSocket) -> None:
        source = self.forget(conn)
        self.displaced += 1
        log.info("closing the oldest connection from %s: over the limit of %d per source or "
                 "%d in all", source, self.per_source, self.total)
        _shut(conn)

    def _expire(self, conn: CountedSocket) -> None:
        source = self.forget(conn)
        if source is not None:
            self.timed_out += 1
            log.info("closing a connection from %s: no whole request within %g s", source,
                     self.header_timeout_s)
            _shut(conn)

    def request_seen(self, fd: int) -> None:
        """A whole request header arrived on this connection: its header deadline is met."""
        entry = self._deadlines.pop(fd, None)
        if entry is not None:
            entry[1].cancel()

    def middleware(self):
        """The aiohttp middleware (first in the chain) that tells the guard a request arrived."""
        @web.middleware
        async def seen(request: web.Request, handler):
            sock = request.transport.get_extra_info("socket") if request.transport else None
            if sock is not None:
                self.request_seen(sock.fileno())
            return await handler(request)
        return seen

    def forget(self, conn: CountedSocket) -> str | None:
        entry = self._deadlines.get(conn.fileno())
        if entry is not None and entry[0] is conn:
            del self._deadlines[conn.fileno()]
            entry[1].cancel()
        source = self._open.pop(conn, None)
        if source is not None:
            self._by_source[source] -= 1
            if not self._by_source[source]:
                del self._by_source[source]
        return source

    def stats(self) -> JsonObject:
        return {"open": len(self._open), "sources": len(self._by_source),
                "busiest_source": max(self._by_source.values(), default=0),
                "per_source_limit": self.per_source, "total_limit": self.total,
                "header_timeout_s": self.header_timeout_s, "accepted": self.accepted,
                "displaced": self.displaced, "timed_out": self.timed_out}


def _shut(conn: socket.socket) -> None:
    """End a connection under its transport's feet: the transport sees the end and closes."""
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class CountedSocket(socket.socket):
    """An accepted connection that leaves the guard's count when it is closed."""

    guard: ConnectionGuard | None = None

    def close(self) -> None:
        if self.guard is not None:
            self.guard.forget(self)
            self.guard = None
        super().close()


class GuardedSocket(socket.socket):
    """A listening socket whose ``accept`` counts each connection in a :class:`ConnectionGuard`."""

    guard: ConnectionGuard

    def accept(self) -> tuple[CountedSocket, object]:
        fd, addr = self._accept()  # type: ignore[attr-defined]
        conn = CountedSocket(self.family, self.type, self.proto, fileno=fd)
        if socket.getdefaulttimeout() is None and self.gettimeout():
            conn.setblocking(True)
        conn.guard = self.guard
        self.guard.admit(conn, addr[0] if isinstance(addr, tuple) else str(addr))
        return conn, addr


def listening_socket(host: str, port: int, guard: ConnectionGuard) -> GuardedSocket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = GuardedSocket(family, socket.SOCK_STREAM)
    sock.guard = guard
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock


class GuardedSite(web.BaseSite):
    """aiohttp's TCP site over a :class:`GuardedSocket`, with the handshake deadline."""

    __slots__ = ("_host", "_port", "_guard")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, ssl_context: ssl.SSLContext,
                 guard: ConnectionGuard) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host, self._port, self._guard = host, port, guard

    @property
    def name(self) -> str:
        return str(URL.build(scheme="https", host=self._host, port=self._port))

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            server, sock=listening_socket(self._host, self._port, self._guard),
            ssl=self._ssl_context, ssl_handshake_timeout=self._guard.header_timeout_s)
