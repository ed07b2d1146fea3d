"""``ledwarden demo``: commission a simulated wall end to end, as an installer would.

What runs, all on this machine:

1. eight simulated receiving cards behind a pseudo-terminal (``ledwarden sim``
   in a background thread), with a few dead LEDs injected and one card
   running hot;
2. the controller service (``ledwarden controller run``) as its own process,
   on loopback HTTPS with a fresh certificate and a fresh state directory,
   driving the cards over that pseudo-terminal and running its frame loop;
3. an ``installer`` token created on the "board" (``controller token create``);
4. ``ledwarden commission --yes`` through the real host tool, which pins the
   controller's certificate, follows the job, and saves the acceptance report;
5. the first quarterly inspection (``ledwarden selftest run --profile
   quarterly``), then — after the wall ages: a fan stops on card 6 and an LED
   dies on card 5 — the second, which shows what changed since the first.

It prints where the reports are.  Nothing outside ``--out`` and a temporary
directory is touched: the host tool's pins go to the temporary directory too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from controller.errors import LedwardenError
from hw.sim.faults import FaultPlan
from hw.sim.server import Simulator

SCREEN = Path(__file__).with_name("demo_wall.toml")
CARDS = 8
DEMO_PLAN = (FaultPlan()
             .with_card(3, temp_c=91.5)
             .with_card(2, dead_leds=frozenset({(0, 10, 5, 0), (9, 33, 17, 1), (9, 34, 17, 1)}))
             .with_card(7, dead_leds=frozenset({(15, 2, 30, 2)})))
#: Between the two inspections: a fan stops, an LED dies.
AGED_PLAN = (DEMO_PLAN
             .with_card(6, fan_rpm=0)
             .with_card(5, dead_leds=frozenset({(4, 20, 12, 0)})))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="commission a simulated wall end to end",
                       description="Start simulated cards and a controller on loopback, then "
                                   "commission the wall through the host tool and write the "
                                   "acceptance report.")
    p.add_argument("--out", default="demo-output", help="where to save the report (default ./demo-output)")
    p.add_argument("--fps", type=float, default=30.0, help="the controller's frame rate (default 30)")
    p.add_argument("--upgrades", action="store_true",
                   help="instead: upgrade the controller N -> N+1, then watch a broken N+2 roll "
                        "back (host/demo_upgrade.py)")
    p.set_defaults(func=run)


def _ledwarden(*argv: str) -> list[str]:
    return [sys.executable, "-m", "host.cli", *argv]


def run(args: argparse.Namespace) -> int:
    from host.cli import main  # the real host tool, in-process

    if args.upgrades:
        from host.demo_upgrade import run as run_upgrades
        return run_upgrades(args)

    with tempfile.TemporaryDirectory(prefix="ledwarden-demo-") as tmp, \
            Simulator(CARDS, pty=True, plan=DEMO_PLAN) as sim:
        state = Path(tmp) / "controller-state"
        print(f"ledwarden demo: {CARDS} simulated cards on {sim.url} (card 3 runs hot; "
              f"dead LEDs on cards 2 and 7)")
        controller = subprocess.Popen(
            _ledwarden("controller", "run", "--screen", str(SCREEN), "--bus", sim.url,
                       "--listen", "127.0.0.1:0", "--state", str(state), "--fps", str(args.fps)),
            stdout=subprocess.PIPE, text=True)
        try:
            assert controller.stdout is not None  # stdout=PIPE
            ready = controller.stdout.readline().split()
            if len(ready) != 2:
                raise LedwardenError("the controller did not start; see the messages above")
            url, fingerprint = ready
            print(f"controller on {url}, certificate {fingerprint}")
            token = json.loads(subprocess.run(
                _ledwarden("controller", "token", "create", "--role", "installer", "--name",
                           "demo-installer", "--state", str(state), "--json"),
                check=True, capture_output=True, text=True).stdout)["secret"]
            os.environ["LEDWARDEN_TOKEN"] = token
            os.environ["LEDWARDEN_CONFIG_DIR"] = str(Path(tmp) / "host-config")
            print(f"\n$ ledwarden --controller {url} commission --yes --out {args.out}")
            status = main(["--controller", url, "commission", "--yes", "--out", args.out])
            for visit in (1, 2):
                if visit == 2:
                    sim.set_plan(AGED_PLAN)
                    print("\n(three months later: the fan of card 6 has stopped and an LED on "
                          "card 5 has died)")
                print(f"\n$ ledwarden --controller {url} selftest run --profile quarterly "
                      f"--out {args.out}")
                main(["--controller", url, "selftest", "run", "--profile", "quarterly",
                      "--out", args.out])
            print(f"\n$ ledwarden --controller {url} status")
            main(["--controller", url, "status"])
        finally:
            controller.terminate()
            controller.wait(timeout=15)
    print("\nThe acceptance report above shows the injected faults (the report fails because "
          "card 3 runs hot); the inspection reports name each fault with its check, and the "
          "second compares with the first. Open the HTML files in a browser to see the wall "
          "(add --lang zh to 'commission' or 'selftest run' for the Chinese pages).")
    return 0 if status in (0, 1) else status
