"""``ledwarden demo``: a simulated bus, discovered and inspected as an installer would.

Starts eight simulated cards behind a pseudo-terminal (the same path a USB
adapter would give), one of them running hot and one with dead LEDs, then
runs ``ledwarden bus discover``, ``status`` and ``detect`` against it through
the real command line, so what a newcomer sees is exactly what they would
see on a real bus.
"""

from __future__ import annotations

import argparse

from hw.sim.faults import FaultPlan
from hw.sim.server import Simulator

DEMO_PLAN = (FaultPlan()
             .with_card(3, temp_c=91.5)
             .with_card(5, dead_leds=frozenset({(0, 10, 5, 0), (2, 33, 17, 1), (2, 34, 17, 1)})))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the demo against simulated cards",
                       description="Start simulated cards on a pseudo-terminal and discover, "
                                   "inspect and scan them with 'ledwarden bus'.")
    p.add_argument("--cards", type=int, default=8, help="number of simulated cards (default 8)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from host.cli import main  # the real command line, in-process

    with Simulator(args.cards, pty=True, plan=DEMO_PLAN) as sim:
        port = ["--port", sim.url]
        steps = [
            ("Discovering the cards on the bus", ["bus", "discover", *port, "--range", f"1-{args.cards + 4}"]),
            ("Card status (card 3 runs hot)", ["bus", "status", *port, "-a", f"1-{args.cards}"]),
            ("LED-fault detection on card 5", ["bus", "detect", *port, "-a", "5"]),
        ]
        print(f"ledwarden demo: {args.cards} simulated cards on {sim.url}\n")
        for title, argv in steps:
            print(f"== {title}\n$ ledwarden {' '.join(argv)}")
            status = main(argv)
            print()
            if status:
                return status
    print("Done. Try it yourself:  ledwarden sim --cards 8 --tcp 127.0.0.1:7700 &  then\n"
          "  ledwarden bus discover --port socket://127.0.0.1:7700")
    return 0
