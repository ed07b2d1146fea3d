"""``ledwarden bus …``: work directly on a card bus, as an installer with a USB-RS485 adapter does.

Every subcommand takes ``--port URL --baud N``, prints a readable table or,
with ``--json``, one JSON document, and exits non-zero with a sentence when
a card does not answer or refuses.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import asdict

from controller.brightness import LEVEL_MAX, is_level, level_of_fraction, percent_of_level
from controller.cardaddress import ADDR_FIRST_CARD, ADDR_LAST_CARD, hex_address
from controller.cliargs import add_rs485_arguments, rs485_from_args
from controller.cliout import Progress, emit_json, table
from controller.errors import BusTimeout, LedwardenError
from controller.protocol import cards as ops
from controller.protocol import commands as c
from controller.protocol.bus import (
    DEFAULT_BAUD,
    DEFAULT_RETRIES,
    Bus,
    log_trace,
)


# ------------------------------------------------------------------ argument helpers

def parse_addresses(text: str) -> list[int]:
    """``"1-8,12,0x20"`` → addresses; every one must be a card address (1..240, :mod:`controller.cardaddress`)."""
    out: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        low, sep, high = part.partition("-")
        try:
            first = int(low, 0)
            last = int(high, 0) if sep else first
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not an address or range like 1-8") from None
        if not ADDR_FIRST_CARD <= first <= last <= ADDR_LAST_CARD:
            raise argparse.ArgumentTypeError(f"{part!r}: card addresses run from {ADDR_FIRST_CARD} "
                                             f"to {ADDR_LAST_CARD} ({hex_address(ADDR_LAST_CARD)})")
        out.extend(range(first, last + 1))
    if not out:
        raise argparse.ArgumentTypeError("no address given")
    return out


def parse_level(text: str) -> int:
    """A brightness or pattern level: 0..65535, or a percentage like ``50%``."""
    try:
        if text.endswith("%"):
            value = level_of_fraction(float(text[:-1]) / 100)
        else:
            value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a level (0..{LEVEL_MAX} or NN%)") from None
    if not is_level(value):
        raise argparse.ArgumentTypeError(f"level {text} is outside 0..{LEVEL_MAX} (0%..100%)")
    return value


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)[xX](\d+)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT")
    return int(m[1]), int(m[2])


def open_bus(args: argparse.Namespace) -> Bus:
    rs485 = rs485_from_args(args)
    latency = args.latency / 1000 if args.latency is not None else None
    return Bus(args.port, args.baud, retries=args.retries, latency=latency, rs485=rs485,
               trace=log_trace if args.verbose >= 2 else None)


def targets(args: argparse.Namespace, bus: Bus) -> list[int]:
    """The addresses given with ``-a``, or every card discovery finds."""
    if args.address:
        return args.address
    found = ops.discover(bus, progress=Progress("discovering", not args.json)).cards
    if not found:
        raise LedwardenError("no card answered on the bus: check the port, the baud rate and "
                             "the cable (A/B swapped?)")
    return [card.address for card in found]


def _each(args, bus, fn):
    """Run ``fn(address)`` on every target; collect answers and errors per card."""
    results, failed = {}, False
    for address in targets(args, bus):
        try:
            results[address] = fn(address)
        except LedwardenError as exc:
            results[address] = exc
            failed = True
    return results, failed


def _report(args, results: dict, headers: list[str], row) -> None:
    """Print per-card results as a table (errors as sentences) or as JSON."""
    if args.json:
        emit_json({hex_address(a): ({"error": str(v)} if isinstance(v, Exception) else v)
                   for a, v in results.items()})
        return
    rows = [row(a, v) for a, v in results.items() if not isinstance(v, Exception)]
    if rows:
        print(table(rows, headers))
    for v in results.values():
        if isinstance(v, Exception):
            print(f"ledwarden: error: {v}", file=sys.stderr)


# ------------------------------------------------------------------ subcommands

def cmd_discover(args, bus: Bus) -> int:
    result = ops.discover(bus, args.range or ops.ALL_ADDRESSES, retries=args.retries_scan,
                          progress=Progress("discovering", not args.json))
    if args.json:
        emit_json({"cards": [card.as_dict() for card in result.cards],
                   "garbled": [hex_address(a) for a in result.garbled]})
    else:
        rows = [(hex_address(k.address), f"0x{k.hw_model:04X}", k.version, f"{k.serial:016X}", k.bank,
                 k.uptime_s) for k in result.cards]
        print(table(rows, ["address", "model", "firmware", "serial", "bank", "uptime_s"]))
        print(f"{len(result.cards)} card(s) found")
    for a in result.garbled:
        print(f"ledwarden: warning: garbled answers at {hex_address(a)}: several cards may share this "
              f"address; give each its own with 'ledwarden bus set-address --serial S --to A'",
              file=sys.stderr)
    return 0 if result.cards else 1


def cmd_ping(args, bus: Bus) -> int:
    results, failed = _each(args, bus, lambda a: ops.CardInfo.from_ping(
        a, bus.call(a, c.Cmd.PING)).as_dict())
    _report(args, results, ["address", "model", "firmware", "serial", "bank", "uptime_s"],
            lambda a, v: (hex_address(a), f"0x{v['hw_model']:04X}", v["version"], f"{v['serial']:016X}",
                          v["bank"], v["uptime_s"]))
    return int(failed)


def cmd_status(args, bus: Bus) -> int:
    def status(a):
        s = bus.call(a, c.Cmd.GET_STATUS)
        return {**asdict(s), "temperature_c": s.temperature_c, "flag_names": s.flag_names,
                "link": bus.stats_for(a).as_dict()}
    results, failed = _each(args, bus, status)
    _report(args, results, ["address", "temp_C", "supply_mV", "fan_rpm", "rx_ok", "rx_bad", "flags"],
            lambda a, v: (hex_address(a), v["temperature_c"], v["supply_mv"], v["fan_rpm"], v["rx_ok"],
                          v["rx_bad"], ",".join(v["flag_names"]) or "ok"))
    return int(failed)


def _holder_of(bus: Bus, address: int, serial: int) -> tuple[str | None, c.PingReply | None]:
    """Whether ``address`` is free for the card ``serial``: (why not, or None; the PING answer).

    A PING with the usual retries: a card that answers with another serial, or garbled
    frames (two cards already sharing it), means the address is taken.
    """
    bad_before = bus.deframer.dropped_total
    try:
        ping = bus.call(address, c.Cmd.PING)
    except BusTimeout:
        if bus.deframer.dropped_total > bad_before:
            return (f"address {hex_address(address)} answers with garbled frames (several cards "
                    f"share it already)"), None
        return None, None
    if ping.serial == serial:
        return None, ping
    return f"address {hex_address(address)} is taken by card serial {ping.serial:016X}", ping


def cmd_set_address(args, bus: Bus) -> int:
    taken, ping = _holder_of(bus, args.to, args.serial)
    if taken:
        raise LedwardenError(f"{taken}: pick a free address ('ledwarden bus discover' lists the "
                             f"ones in use)")
    if ping is not None:              # the card is there already: nothing to move
        return _moved(args, ping)
    request = c.SetAddress(args.serial, args.to)
    if args.via is not None:
        bus.call(args.via, c.Cmd.SET_ADDRESS, request)
    else:
        bus.broadcast(c.Cmd.SET_ADDRESS, request)
        bus.wait_idle()
    try:
        ping = bus.call(args.to, c.Cmd.PING)
    except BusTimeout:
        raise LedwardenError(f"no card with serial {args.serial:016X} answered: check the serial "
                             f"on the card's label or in 'ledwarden bus discover'") from None
    if ping.serial != args.serial:
        raise LedwardenError(f"address {hex_address(args.to)} is answered by serial "
                             f"{ping.serial:016X}, not {args.serial:016X}: another card already "
                             f"had that address; pick a free one")
    return _moved(args, ping)


def _moved(args, ping: c.PingReply) -> int:
    info = ops.CardInfo.from_ping(args.to, ping).as_dict()
    if args.json:
        emit_json(info)
    else:
        print(f"card {args.serial:016X} now answers at {hex_address(args.to)}")
    return 0


CONFIG_HEADERS = ["address", "module", "scan", "modules", "chain", "rotation", "refresh_hz"]


def _config_row(a, v):
    return (hex_address(a), f"{v['module_w']}x{v['module_h']}", f"1/{v['scan']}",
            f"{v['modules_x']}x{v['modules_y']}", ("rows", "serpentine")[v["chain"]],
            v["rotation"] * 90, v["refresh_hz"])


def cmd_config_get(args, bus: Bus) -> int:
    results, failed = _each(args, bus, lambda a: asdict(bus.call(a, c.Cmd.GET_CONFIG)))
    _report(args, results, CONFIG_HEADERS, _config_row)
    return int(failed)


def cmd_config_set(args, bus: Bus) -> int:
    def change(a):
        fields = asdict(bus.call(a, c.Cmd.GET_CONFIG))
        if args.module:
            fields["module_w"], fields["module_h"] = args.module
        if args.modules:
            fields["modules_x"], fields["modules_y"] = args.modules
        for name in ("scan", "refresh_hz"):
            if getattr(args, name) is not None:
                fields[name] = getattr(args, name)
        if args.chain:
            fields["chain"] = ("rows", "serpentine").index(args.chain)
        if args.rotation is not None:
            fields["rotation"] = args.rotation // 90
        return asdict(ops.write_config(bus, a, c.CardConfig(**fields)))
    results, failed = _each(args, bus, change)
    _report(args, results, CONFIG_HEADERS, _config_row)
    return int(failed)


def cmd_brightness_get(args, bus: Bus) -> int:
    results, failed = _each(args, bus, lambda a: bus.call(a, c.Cmd.GET_BRIGHTNESS).level)
    _report(args, results, ["address", "level", "percent"],
            lambda a, v: (hex_address(a), v, percent_of_level(v)))
    return int(failed)


def cmd_brightness_set(args, bus: Bus) -> int:
    results, failed = _each(args, bus, lambda a: ops.write_brightness(bus, a, args.level))
    _report(args, results, ["address", "level", "percent"],
            lambda a, v: (hex_address(a), v, percent_of_level(v)))
    return int(failed)


def cmd_pattern(args, bus: Bus) -> int:
    request = c.TestPattern(c.Pattern[args.pattern.upper().replace("-", "_")], args.level)
    if not args.address:
        bus.broadcast(c.Cmd.TEST_PATTERN, request)
        bus.wait_idle()
        if args.json:
            emit_json({"broadcast": True, "pattern": args.pattern, "level": args.level})
        else:
            print(f"pattern {args.pattern} sent to every card (broadcast)")
        return 0
    results, failed = _each(args, bus, lambda a: bus.call(a, c.Cmd.TEST_PATTERN, request) or "ok")
    _report(args, results, ["address", "pattern"], lambda a, v: (hex_address(a), args.pattern))
    return int(failed)


def _dead_led_report(args, results) -> None:
    if args.json:
        emit_json({hex_address(a): ({"error": str(v)} if isinstance(v, Exception)
                                else [asdict(d) for d in v]) for a, v in results.items()})
        return
    rows = [(hex_address(a), d.module, d.x, d.y, d.channel) for a, v in results.items()
            if not isinstance(v, Exception) for d in v]
    if rows:
        print(table(rows, ["address", "module", "x", "y", "channel"]))
    for a, v in results.items():
        if isinstance(v, Exception):
            print(f"ledwarden: error: {v}", file=sys.stderr)
        elif not v:
            print(f"{hex_address(a)}: no dead LEDs")
        else:
            print(f"{hex_address(a)}: {len(v)} dead LED(s)")


def cmd_detect(args, bus: Bus) -> int:
    results, failed = _each(args, bus, lambda a: ops.detect(
        bus, a, progress=Progress(f"scanning {hex_address(a)}", not args.json)))
    _dead_led_report(args, results)
    return int(failed)


def cmd_pixel_scan(args, bus: Bus) -> int:
    results, failed = _each(args, bus, lambda a: ops.pixel_scan(
        bus, a, progress=Progress(f"scanning {hex_address(a)}", not args.json)))
    _dead_led_report(args, results)
    return int(failed)


def cmd_events(args, bus: Bus) -> int:
    results, failed = _each(args, bus, lambda a: [asdict(e) | {"name": e.name}
                                                  for e in ops.read_events(bus, a, args.since)])
    if args.json:
        emit_json({hex_address(a): ({"error": str(v)} if isinstance(v, Exception) else v)
                   for a, v in results.items()})
    else:
        rows = [(hex_address(a), e["index"], e["uptime_s"], e["name"], e["argument"])
                for a, v in results.items() if not isinstance(v, Exception) for e in v]
        print(table(rows, ["address", "index", "uptime_s", "event", "argument"]))
        for v in results.values():
            if isinstance(v, Exception):
                print(f"ledwarden: error: {v}", file=sys.stderr)
    return int(failed)


def cmd_output(args, bus: Bus) -> int:
    """``GET_OUTPUT`` of each card; a card without the command is said to lack it, not failed."""
    def output(a):
        reply = ops.read_output(bus, a)
        if reply is None:
            return {"supported": False, "current_ma": None, "frames_shown": None,
                    "frames_dropped": None}
        return {"supported": True, "current_ma": reply.milliamps,
                "frames_shown": reply.frames_shown, "frames_dropped": reply.frames_dropped}
    results, failed = _each(args, bus, output)

    def row(a, v):
        if not v["supported"]:
            return (hex_address(a), "not supported (firmware without GET_OUTPUT)", "", "")
        current = "no sensor" if v["current_ma"] is None else v["current_ma"]
        return (hex_address(a), current, v["frames_shown"], v["frames_dropped"])
    _report(args, results, ["address", "current_mA", "frames_shown", "frames_dropped"], row)
    return int(failed)


def cmd_soak(args, bus: Bus) -> int:
    address = args.address[0] if args.address else 1
    result = ops.soak(bus, address, args.count, seed=args.seed,
                      progress=Progress(f"soak {hex_address(address)}", not args.json))
    data = result.as_dict() | {"address": hex_address(address), "link": bus.stats_for(address).as_dict()}
    if args.json:
        emit_json(data)
    else:
        rtt = data["link"]["rtt_ms"] or {}
        print(table([(hex_address(address), result.transactions, result.completed, result.failed,
                      result.retries, result.timeouts, result.bad_frames, result.wrong_answers,
                      f"{result.goodput:.1%}", rtt.get("p99"))],
                    ["address", "transactions", "completed", "failed", "retries", "timeouts",
                     "bad_frames", "wrong", "goodput", "rtt_p99_ms"]))
        print(f"{result.seconds:.1f} s at {result.baud} baud")
    return 0 if result.wrong_answers == 0 and result.failed == 0 else 1


# ------------------------------------------------------------------ parser

def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("bus")
    g.add_argument("--port", required=True, metavar="URL",
                   help="serial device or pyserial URL: /dev/ttyUSB0, socket://HOST:PORT, "
                        "spy:///dev/ttyUSB0 …")
    g.add_argument("--baud", type=int, default=DEFAULT_BAUD, help=f"line rate (default {DEFAULT_BAUD})")
    g.add_argument("--retries", type=int, default=DEFAULT_RETRIES,
                   help=f"retries after a timeout (default {DEFAULT_RETRIES})")
    g.add_argument("--latency", type=float, metavar="MS",
                   help="allowance for the adapter's own delay, in ms (default: 20 for USB "
                        "adapters, 5 otherwise)")
    add_rs485_arguments(g)
    g.add_argument("--json", action="store_true", help="print JSON instead of a table")
    targeted = argparse.ArgumentParser(add_help=False)
    targeted.add_argument("-a", "--address", type=parse_addresses, metavar="ADDRS",
                          help="card addresses, e.g. 3 or 1-8,12 (default: every card found)")

    bus_p = sub.add_parser("bus", help="work directly on a card bus (LWP/1)",
                           description="Talk to receiving cards directly over a serial port.")
    bus_sub = bus_p.add_subparsers(dest="bus_command", metavar="ACTION", required=True)

    def add(name, fn, help, parents=(common, targeted), **kw):
        p = bus_sub.add_parser(name, help=help, description=help, parents=list(parents), **kw)
        p.set_defaults(func=lambda args: _run(fn, args))
        return p

    p = add("discover", cmd_discover, "scan addresses; model, firmware, serial and bank of each card",
            parents=(common,))
    p.add_argument("--range", type=parse_addresses, metavar="ADDRS",
                   help=f"addresses to scan (default {ADDR_FIRST_CARD}-{ADDR_LAST_CARD}, {ADDR_LAST_CARD} = "
                        f"{hex_address(ADDR_LAST_CARD)} being the factory address)")
    p.add_argument("--retries-scan", type=int, default=1,
                   help="retries per address while scanning (default 1)")
    add("ping", cmd_ping, "PING cards")
    add("status", cmd_status, "temperature, supply, fan, frame counters, status flags, link quality")
    p = add("set-address", cmd_set_address, "give the card with a serial number a new address",
            parents=(common,))
    p.add_argument("--serial", type=lambda s: int(s, 16), required=True,
                   help="the card's serial number (hex, as on its label and in discover)")
    p.add_argument("--to", type=lambda s: int(s, 0), required=True, help=f"new address, {ADDR_FIRST_CARD}..{ADDR_LAST_CARD}")
    p.add_argument("--via", type=lambda s: int(s, 0),
                   help="send to this current address instead of broadcasting")

    cfg = bus_sub.add_parser("config", help="read or write card configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="get|set", required=True)
    p = cfg_sub.add_parser("get", parents=[common, targeted], help="read the config block")
    p.set_defaults(func=lambda args: _run(cmd_config_get, args))
    p = cfg_sub.add_parser("set", parents=[common, targeted],
                           help="change fields of the config block, then read it back")
    p.add_argument("--module", type=_size, metavar="WxH", help="module size in pixels")
    p.add_argument("--modules", type=_size, metavar="XxY", help="modules across and down")
    p.add_argument("--scan", type=int, help="rows driven per data line: 1, 2, 4, 8, 16, 32")
    p.add_argument("--chain", choices=("rows", "serpentine"))
    p.add_argument("--rotation", type=int, choices=(0, 180))
    p.add_argument("--refresh-hz", dest="refresh_hz", type=int)
    p.set_defaults(func=lambda args: _run(cmd_config_set, args))

    br = bus_sub.add_parser("brightness", help="read or set brightness")
    br_sub = br.add_subparsers(dest="brightness_command", metavar="get|set", required=True)
    p = br_sub.add_parser("get", parents=[common, targeted], help="read brightness")
    p.set_defaults(func=lambda args: _run(cmd_brightness_get, args))
    p = br_sub.add_parser("set", parents=[common, targeted], help="set brightness and read it back")
    p.add_argument("level", type=parse_level, help="0..65535 or a percentage such as 50%%")
    p.set_defaults(func=lambda args: _run(cmd_brightness_set, args))

    p = add("pattern", cmd_pattern, "show a test pattern (broadcast unless -a)")
    p.add_argument("pattern", choices=[p.name.lower().replace("_", "-") for p in c.Pattern])
    p.add_argument("--level", type=parse_level, default=LEVEL_MAX, help="pattern level (default 100%%)")
    add("detect", cmd_detect, "run open/short LED detection and list dead LEDs per module")
    add("pixel-scan", cmd_pixel_scan, "list dead LEDs found by the last detection")
    add("output", cmd_output, "LED current measured by each card and the video frames it has "
                              "shown and dropped since boot (GET_OUTPUT)")
    p = add("events", cmd_events, "read the cards' event logs")
    p.add_argument("--since", type=int, default=0, help="first event index wanted")
    p = add("soak", cmd_soak, "measure link quality with N verified transactions against one card")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--seed", type=int)


def _run(fn, args: argparse.Namespace) -> int:
    with open_bus(args) as bus:
        return fn(args, bus)
