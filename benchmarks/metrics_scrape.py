"""``/metrics`` for a 64-cabinet wall: how long one scrape takes and how many bytes it is.

    python benchmarks/metrics_scrape.py [--cabinets 64] [--scrapes 200]

Not a test: it prints the figures for the closing note of issue 17.  The
wall is simulated cards on a pseudo-terminal with a ``[power]`` table (so
the limiter's per-cabinet series are there) and a fault on every eighth
card; the card watch polls every card ``--rounds`` times first, so every
link carries a window of round-trip samples, as on a wall that has run for
a while.  Timed is what the route does: the collector over the live state
(on the event loop) and the text exposition (``generate_latest``, in a
worker thread), each reported;
the size is the body as sent (uncompressed; Prometheus asks for gzip, which
aiohttp does not apply to it).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.config import loads_screen  # noqa: E402
from controller.power import PowerLimiter, parse_power  # noqa: E402
from controller.protocol.bus import Bus  # noqa: E402
from controller.screenmap import CardSettings  # noqa: E402
from controller.service.busowner import BusOwner  # noqa: E402
from controller.service.metrics import collected, exposition, registry_for  # noqa: E402
from controller.service.state import Service  # noqa: E402
from hw.sim.faults import FaultPlan  # noqa: E402
from hw.sim.server import Simulator  # noqa: E402


def screen(cabinets: int) -> str:
    """A wall of ``cabinets`` cabinets of 2 x 2 modules, eight to a row, with a power budget."""
    per_row = 8
    rows = -(-cabinets // per_row)
    text = [f'[screen]\nname = "bench"\nwidth = {per_row * 128}\nheight = {rows * 64}\n',
            "[modules.p25]\nwidth = 64\nheight = 32\nscan = 16\n",
            "[power]\ncabinet_budget_a = 18.0\n",
            "[power.modules.p25]\ncurrent_ma = [900, 700, 800]\nquiescent_ma = 120\n"
            "supply_v = 4.5\n"]
    for i in range(cabinets):
        text.append(f"[[cabinets]]\naddress = {i + 1}\nx = {(i % per_row) * 128}\n"
                    f"y = {(i // per_row) * 64}\nmodule = \"p25\"\nmodules_x = 2\nmodules_y = 2\n"
                    f"chain = \"rows\"\nrotation = 0\n")
    return "\n".join(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cabinets", type=int, default=64)
    ap.add_argument("--scrapes", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5, help="watch rounds before measuring")
    args = ap.parse_args(argv)
    text = screen(args.cabinets)
    layout = loads_screen(text)
    plan = FaultPlan()
    for address in range(8, args.cabinets + 1, 8):
        plan = plan.with_card(address, fan_rpm=0)
    with tempfile.TemporaryDirectory() as tmp, \
            Simulator(args.cabinets, pty=True, plan=plan) as sim:
        service = Service(layout, CardSettings(), BusOwner(Bus(sim.url)), Path(tmp) / "state",
                          screen_file="bench.toml", bus_url=sim.url, schedule="off",
                          watch_interval_s=30)
        model = parse_power(tomllib.loads(text), layout)
        assert model is not None
        service.power = PowerLimiter(model, layout, faults=service.faults)
        loop = asyncio.new_event_loop()
        try:
            assert service.watch is not None
            for _ in range(args.rounds):
                loop.run_until_complete(service.watch.poll_once())
            registry = registry_for(service)
            body = exposition(registry)
            times, on_loop = [], []
            for _ in range(args.scrapes):
                t0 = time.perf_counter()
                families = collected(registry)
                t1 = time.perf_counter()
                body = exposition(families)
                times.append(time.perf_counter() - t0)
                on_loop.append(t1 - t0)
        finally:
            loop.run_until_complete(service.stop())
            loop.close()
    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    times.sort()
    on_loop.sort()
    print(f"{args.cabinets} cabinets, {args.scrapes} scrapes: "
          f"median {statistics.median(times) * 1000:.2f} ms, "
          f"p99 {times[int(0.99 * (len(times) - 1))] * 1000:.2f} ms "
          f"(reading the state on the event loop: median "
          f"{statistics.median(on_loop) * 1000:.2f} ms, "
          f"p99 {on_loop[int(0.99 * (len(on_loop) - 1))] * 1000:.2f} ms), "
          f"body {len(body)} bytes ({len(body) / 1024:.1f} KiB), {series} samples")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
