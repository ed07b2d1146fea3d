"""``ledwarden sim``: run simulated receiving cards on a TCP port or a pseudo-terminal."""

from __future__ import annotations

import argparse
import signal
import sys

from controller.cliargs import host_port
from controller.config import load_screen
from controller.errors import ConfigError
from hw.sim.faults import CHANNELS, FaultPlan, parse_dead_led
from hw.sim.server import Simulator


def _address_value(text: str, what: str) -> tuple[int, str | None]:
    card, _, value = text.partition(":")
    try:
        return int(card, 0), (value or None)
    except ValueError:
        raise ConfigError(f"{what} {text!r}: expected CARD[:VALUE], CARD being a position 1..N") from None


def _cards_named(texts: list[str], what: str, count: int) -> list[int]:
    """Positions given to a flag that takes ``CARD`` or nothing (every card)."""
    found: list[int] = []
    for text in texts:
        if text == "all":
            return list(range(1, count + 1))
        found.append(_address_value(text, what)[0])
    return found


def plan_from_args(args: argparse.Namespace, count: int | None = None) -> FaultPlan:
    """The faults given on the command line, as one plan (``count``: cards on the bus)."""
    count = args.cards if count is None else count
    plan = FaultPlan(ber=args.ber, drop_rate=args.drop, insert_rate=args.insert)
    for card in _cards_named(args.no_get_output, "--no-get-output", count):
        plan = plan.with_card(card, no_get_output=True)
    for card in _cards_named(args.no_sensor, "--no-sensor", count):
        plan = plan.with_card(card, no_sensor=True)
    for text in args.stays_black:
        card, value = _address_value(text, "--stays-black")
        try:
            black_after = float(value) if value else 10.0
        except ValueError:
            black_after = -1.0
        if not black_after >= 0:
            raise ConfigError(f"--stays-black {text!r}: expected CARD[:SECONDS], SECONDS >= 0")
        plan = plan.with_card(card, stays_black_after_s=black_after)
    for text in args.mute:
        card, _ = _address_value(text, "--mute")
        plan = plan.with_card(card, mute=True)
    for text in args.hot:
        card, value = _address_value(text, "--hot")
        plan = plan.with_card(card, temp_c=float(value or 92.0))
    for text in args.undervolt:
        card, value = _address_value(text, "--undervolt")
        plan = plan.with_card(card, supply_mv=int(value or 4300))
    for text in args.fan_fail:
        card, _ = _address_value(text, "--fan-fail")
        plan = plan.with_card(card, fan_rpm=0)
    for text in args.link_lost:
        card, value = _address_value(text, "--link-lost")
        lost = plan.for_card(card).link_lost | {int(value or 0)}
        plan = plan.with_card(card, link_lost=lost)
    for text in args.dead_led:
        card, value = _address_value(text, "--dead-led")
        led = parse_dead_led((value or "").split(":"), f"--dead-led {text}")
        plan = plan.with_card(card, dead_leds=plan.for_card(card).dead_leds | {led})
    for text in args.power_cut:
        card, value = _address_value(text, "--power-cut")
        plan = plan.with_card(card, power_cut_after_chunks=int(value or 1))
    for text in args.drop_off:
        card, value = _address_value(text, "--drop-off")
        after, _, seconds = (value or "1").partition(":")
        try:
            plan = plan.with_card(card, drop_off_after_chunks=int(after),
                                  drop_off_for_s=float(seconds) if seconds else None)
        except ValueError:
            raise ConfigError(f"--drop-off {text!r}: expected CARD:N[:SECONDS]") from None
    for text in args.bad_flash:
        card, value = _address_value(text, "--bad-flash")
        plan = plan.with_card(card, bad_flash_byte=int(value or "0", 0))
    return plan


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sim", help="run simulated receiving cards on one bus",
        description="Run N simulated receiving cards on one LWP/1 bus, with the wire time of "
                    "every byte modelled at the baud rate, and inject faults. Cards are numbered "
                    "1..N on the bus; card K answers at address K unless --unaddressed.",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", type=host_port("127.0.0.1"), metavar="HOST:PORT",
                       help="listen for a master on this TCP address (socket://HOST:PORT)")
    where.add_argument("--pty", action="store_true",
                       help="open a pseudo-terminal and print its device path")
    p.add_argument("--cards", type=int, default=8, help="number of cards (default 8)")
    p.add_argument("--baud", type=int, default=921_600, help="line rate modelled (default 921600)")
    p.add_argument("--state", metavar="DIR",
                   help="directory standing for the cards' flash; kept between runs "
                        "(default: a fresh temporary directory)")
    p.add_argument("--unaddressed", type=int, default=0, metavar="K",
                   help="the last K cards are factory-fresh at address 0xF0")
    p.add_argument("--seed", type=int, help="seed of the fault random generator")
    p.add_argument("--video", type=host_port("127.0.0.1"), metavar="HOST:PORT",
                   help="listen for the controller's video (its --sink udp://HOST:PORT)")
    p.add_argument("--current-log", metavar="FILE",
                   help="with --video: write a CSV line per frame a card shows, with the current "
                        "it draws (a probe on every card's supply; docs/simulator.md)")
    p.add_argument("--screen", metavar="FILE",
                   help="a screen file: one card per cabinet, at its address, holding its "
                        "module size, scan and modules (overrides --cards)")
    f = p.add_argument_group("faults (CARD is a position 1..N)")
    f.add_argument("--faults", metavar="FILE",
                   help="TOML fault file, re-read whenever it changes (see docs/simulator.md)")
    f.add_argument("--ber", type=float, default=0.0, help="bit error rate on the line")
    f.add_argument("--drop", type=float, default=0.0, help="probability a byte is lost")
    f.add_argument("--insert", type=float, default=0.0, help="probability a stray byte appears")
    f.add_argument("--mute", action="append", default=[], metavar="CARD",
                   help="the card stops answering")
    f.add_argument("--hot", action="append", default=[], metavar="CARD[:C]",
                   help="over-temperature (default 92 C)")
    f.add_argument("--undervolt", action="append", default=[], metavar="CARD[:MV]",
                   help="under-voltage (default 4300 mV)")
    f.add_argument("--fan-fail", action="append", default=[], metavar="CARD",
                   help="the card's fan stops")
    f.add_argument("--link-lost", action="append", default=[], metavar="CARD:MODULE",
                   help="a module's data link is lost")
    f.add_argument("--dead-led", action="append", default=[], metavar="CARD:MODULE:X:Y[:CH]",
                   help=f"a dead LED, channel one of {'/'.join(CHANNELS)} (default r)")
    f.add_argument("--power-cut", action="append", default=[], metavar="CARD:N",
                   help="cut the card's power once, after it hears N FW_CHUNK frames")
    f.add_argument("--drop-off", action="append", default=[], metavar="CARD:N[:SECONDS]",
                   help="the card leaves the bus (powered, RAM kept) after it hears N FW_CHUNK "
                        "frames, for SECONDS or for good")
    f.add_argument("--bad-flash", action="append", default=[], metavar="CARD:OFFSET",
                   help="a flash cell at OFFSET of the card's banks flips when written, so "
                        "images fail their SHA-256 check at FW_COMMIT")
    f.add_argument("--no-get-output", action="append", default=[], nargs="?", const="all",
                   metavar="CARD", help="the card (every card without CARD) answers GET_OUTPUT "
                                        "with UNKNOWN_COMMAND, as a card built before it")
    f.add_argument("--no-sensor", action="append", default=[], nargs="?", const="all",
                   metavar="CARD", help="the card (every card without CARD) has no current "
                                        "sensor: GET_OUTPUT reports 0xFFFFFFFF")
    f.add_argument("--stays-black", action="append", default=[], metavar="CARD[:SECONDS]",
                   help="the card power-cycles once, SECONDS after start (default 10), and then "
                        "shows no video until the sender restarts its stream")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    screen = load_screen(args.screen) if args.screen else None
    count = len(screen.cabinets) if screen else args.cards
    sim = Simulator(count, baud=args.baud, tcp=args.tcp, pty=args.pty, state_dir=args.state,
                    plan=plan_from_args(args, count), fault_file=args.faults,
                    unaddressed=args.unaddressed, seed=args.seed, video=args.video, screen=screen,
                    current_log=args.current_log)
    # The URL on stdout alone, so a script can read it; the rest is for people.
    print(sim.url, flush=True)
    print(f"ledwarden sim: {count} cards at {args.baud} baud on {sim.url} "
          f"(flash in {sim.state_dir}); Ctrl-C stops", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sim.request_stop())
    try:
        sim.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if sim.video is not None:
            for address, counts in sorted(sim.video.cards.items()):
                print(f"video to card {address}: {counts['frames']} frames, {counts['bytes']} bytes",
                      file=sys.stderr)
            for card in sim.cards:
                v = card.platform.video
                print(f"card {card.card.address}: {v.shown} frames shown, {v.dropped} dropped",
                      file=sys.stderr)
        sim.stop()
    return 0
