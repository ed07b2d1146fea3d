"""``GET /metrics``: the controller's state in Prometheus' text format (``docs/metrics.md``).

It is served on the API port behind a ``viewer`` token rather than on a
second, unauthenticated port: the wall's state (which cabinets are down,
which firmware runs) is worth as much to an attacker as to the service
centre, Prometheus sends a bearer token and trusts a self-signed
certificate with two lines of its configuration (``authorization``,
``tls_config``), and one port means one firewall rule, one TLS identity and
one token store, with the connection guard and rate limiter in front of it.

The state is read on the event loop, between the watch's polls: it reads
the watch's dictionaries, which only the loop writes, so a scrape never
sees one half-updated, and it never waits on the bus.  The text is then
formatted in a worker thread, the larger part of a scrape's time
(``benchmarks/metrics_scrape.py``), so frames and API calls do not wait on it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from controller.service.auth import requires
from controller.service.metrics import CONTENT_TYPE, collected, exposition, registry_for

OPENAPI = Path(__file__).with_name("openapi.d") / "metrics.json"
REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("metrics_registry", CollectorRegistry)


@requires("viewer")
async def metrics(request: web.Request) -> web.Response:
    """Every ``ledwarden_*`` metric, read from the live state now."""
    families = collected(request.app[REGISTRY])
    body = await asyncio.to_thread(exposition, families)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


ROUTES = [("GET", "/metrics", metrics)]


def setup(app: web.Application, service) -> None:
    app[REGISTRY] = registry_for(service)
