"""Idle and half-sent connections cannot starve the API (issue 15 item 15).

A real ``ledwarden controller run`` with a 2 s header timeout and 8
connections per source: loopback opens more raw TCP and TLS connections
than that, each holding half a request header, and an authenticated request
from the same address still gets its answer; every idle connection is
closed within the timeout.  Bounded: 2 × 20 connections, about 10 s.
"""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from host.client import ControllerClient
from hw.sim.server import Simulator
from support import controller_process

HEADER_TIMEOUT_S = 2.0
PER_SOURCE = 8
FLOOD = 20                       # of each kind, raw TCP and TLS: 40 > 8
HALF_HEADER = b"GET /api/v1/status HTTP/1.1\r\nHost: controller\r\nX-Slow: "


@pytest.fixture(scope="module")
def controller(tmp_path_factory):
    with Simulator(2, pty=True) as sim, controller_process.running(
            tmp_path_factory.mktemp("conns"), sim.url, "viewer", "--no-frames",
            "--watch-interval", "0", "--header-timeout", str(HEADER_TIMEOUT_S),
            "--max-connections-per-source", str(PER_SOURCE)) as ctl:
        yield ctl.url, ctl.token


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("https://").rsplit(":", 1)
    return host, int(port)


def raw(url: str) -> socket.socket:
    return socket.create_connection(address(url), timeout=5)


def half_sent_tls(url: str) -> ssl.SSLSocket:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    sock = ctx.wrap_socket(raw(url))
    sock.sendall(HALF_HEADER)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.05)
    try:
        return sock.recv(1) == b""
    except (TimeoutError, ssl.SSLWantReadError):
        return False
    except (OSError, ssl.SSLError):
        return True


def test_a_flood_of_idle_and_half_sent_connections_is_closed_and_a_real_request_gets_through(
        controller):
    url, token = controller
    early = [raw(url), half_sent_tls(url)]                       # within the cap
    time.sleep(HEADER_TIMEOUT_S / 2)
    assert not any(closed_by_server(s) for s in early)           # not closed before their time
    flood = [raw(url) for _ in range(FLOOD)] + [half_sent_tls(url) for _ in range(FLOOD)]

    status = ControllerClient(url, token).get("/api/v1/status")   # from the same address
    conns = status["connections"]
    assert conns["busiest_source"] <= PER_SOURCE and conns["displaced"] >= 2 * FLOOD - PER_SOURCE

    sockets = early + flood
    deadline = time.monotonic() + HEADER_TIMEOUT_S + 3
    while time.monotonic() < deadline and not all(closed_by_server(s) for s in sockets):
        time.sleep(0.1)
    still_open = sum(not closed_by_server(s) for s in sockets)
    for s in sockets:
        s.close()
    assert still_open == 0
    assert ControllerClient(url, token).get("/api/v1/status")["connections"]["open"] <= 1
