"""``ledwarden brightness``: the wall's brightness, in percent, through a controller's API.

* ``ledwarden brightness`` — the brightness now, where it comes from (by
  hand, the schedule, the screen file) and the schedule's next entry;
* ``ledwarden brightness 40%`` — set it by hand on every cabinet (``-a`` for
  some cards), each card read back; it holds until the schedule's next entry;
* ``ledwarden brightness schedule show|set "07:00=80" "22:00=30" --fade 60|clear``.

The value is a percentage (``40%`` or ``40``), the one unit every command,
check and report uses; the card's 16-bit level is the bus tool's business
(``ledwarden bus brightness``).  Everything the controller refuses (a
schedule entry at 25:00, a fade longer than the gap to the next entry) comes
back as its one sentence.
"""

from __future__ import annotations

import argparse
import sys

from controller.brightness import LEVEL_MAX
from controller.brightness_schedule import Schedule
from controller.cardaddress import hex_address
from controller.cardresults import from_json
from controller.cliout import emit_json
from controller.errors import ConfigError, LedwardenError
from host.buscli import parse_addresses
from host.client import client_from_args

ACTIONS = ("show", "set", "clear")


def parse_percent(text: str) -> float:
    """``40%`` or ``40`` → 40.0; a level-sized number is refused with where levels belong."""
    raw = text.strip().removesuffix("%").strip()
    try:
        value = float(raw)
    except ValueError:
        raise LedwardenError(f"{text!r} is not a brightness: give a percentage such as 40%") from None
    if not 0 <= value <= 100:
        hint = (f"; {text} looks like a card level (0..{LEVEL_MAX}), which only "
                f"'ledwarden bus brightness set' takes"
                if 100 < value <= LEVEL_MAX and "%" not in text else "")
        raise LedwardenError(f"brightness {text} is not a percentage 0..100{hint}")
    return value


def _source(view: dict) -> str:
    if view["source"] == "hand":
        hand = view["hand"] or {}
        until = f" until {hand['until']}" if hand.get("until") else ""
        return f"set by hand{' by ' + hand['by'] if hand.get('by') else ''}{until}"
    if view["source"] == "schedule":
        return "from the schedule" + (", fading" if view["fading"] else "")
    return "the screen file's default"


def describe(view: dict) -> list[str]:
    """The lines ``brightness`` and ``status`` print: the value, its source, what comes next."""
    lines = [f"brightness {view['percent']:g} % ({_source(view)})"]
    for address, hand in view["cards"].items():
        lines.append(f"  card {address}: {hand['percent']:g} % by hand"
                     + (f" until {hand['until']}" if hand["until"] else ""))
    if view["next"]:
        lines.append(f"next       {view['next']['time']} → {view['next']['percent']:g} % "
                     f"({view['next']['at']})")
    return lines


def _schedule_lines(view: dict) -> list[str]:
    sched = view["schedule"]
    if sched is None:
        return ["no brightness schedule (set one: ledwarden brightness schedule set "
                "\"07:00=80\" \"22:00=30\" --fade 60)"]
    lines = [f"{e['time']}  {e['percent']:g} %" for e in sched["entries"]]
    lines.append(f"fade {sched['fade_s']:g} s" + (f"; set by {sched['by']} at {sched['at']}"
                                                   if sched.get("by") else ""))
    return lines + describe(view)


def cmd_brightness(args) -> int:
    words = list(args.words)
    if words and words[0] == "schedule":
        return cmd_schedule(args, words[1:])
    if len(words) > 1:
        raise LedwardenError(f"'{' '.join(words)}': give one brightness (such as 40%), or "
                             f"'schedule show|set|clear'")
    if args.fade is not None:
        raise LedwardenError("--fade belongs to 'ledwarden brightness schedule set'")
    client = client_from_args(args)
    if not words:
        if args.address:
            raise LedwardenError("-a chooses the cards to set: give a brightness too, such as 40%")
        view = client.get("/api/v1/brightness")
        if args.json:
            emit_json(view)
        else:
            print("\n".join(describe(view)))
        return 0
    body: dict = {"percent": parse_percent(words[0])}
    if args.address:
        body["addresses"] = args.address
    data = client.post("/api/v1/brightness", body)
    if args.json:
        emit_json(data)
        return int(any(card.error is not None for card in from_json(data["cards"], int)))
    failed = 0
    for card in from_json(data["cards"], int):
        if card.error is not None:
            failed += 1
            print(f"ledwarden: error: {card.error}", file=sys.stderr)
        else:
            print(f"{hex_address(card.address)}: brightness "
                  f"{(card.value or 0) * 100 / LEVEL_MAX:.1f} %, read back")
    if data["until"]:
        print(f"holds until the schedule's next entry ({data['until']})")
    return int(bool(failed))


def cmd_schedule(args, words: list[str]) -> int:
    action, entries = (words[0], words[1:]) if words else ("show", [])
    if action not in ACTIONS:
        raise LedwardenError(f"'schedule {action}' is not a schedule command: use schedule show, "
                             f"schedule set \"07:00=80\" \"22:00=30\" --fade 60, or schedule clear")
    if action != "set" and (entries or args.fade is not None):
        raise LedwardenError(f"'schedule {action}' takes no entries and no --fade")
    if args.address:
        raise LedwardenError("a schedule is for the whole wall: leave out -a")
    if action == "set":
        try:     # checked here too, so a typo is said before anything is sent
            schedule = Schedule.parse(entries, args.fade or 0.0)
        except ConfigError as exc:
            raise LedwardenError(str(exc)) from None
    client = client_from_args(args)
    if action == "show":
        view = client.get("/api/v1/brightness")
    elif action == "clear":
        view = client.delete("/api/v1/brightness/schedule")
    else:
        view = client.post("/api/v1/brightness/schedule", schedule.as_dict())
    if args.json:
        emit_json(view)
    else:
        print("\n".join(_schedule_lines(view)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "brightness", help="the wall's brightness in percent: show, set by hand, schedule",
        description="Show the wall's brightness, set it by hand (ledwarden brightness 40%%; it "
                    "holds until the schedule's next entry), or manage the daily schedule: "
                    "ledwarden brightness schedule show | set \"07:00=80\" \"22:00=30\" "
                    "--fade 60 | clear.")
    p.add_argument("words", nargs="*", metavar="PCT%|schedule ...",
                   help="a percentage such as 40%%, or 'schedule show|set ENTRY...|clear'")
    p.add_argument("-a", "--address", type=parse_addresses,
                   help="set only these cards (default: every cabinet)")
    p.add_argument("--fade", type=float, metavar="S",
                   help="with 'schedule set': seconds each entry fades in over (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_brightness)
