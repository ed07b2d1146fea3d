"""``ledwarden faults list|show|clear|export``: the controller's fault log from a laptop.

Everything goes through the controller's API (the board's file has one
writer, the service).  Reading needs a viewer token, clearing an installer
or service token; the controller records the token's name as who cleared.
``--since`` also takes a relative age (``30m``, ``24h``, ``7d``, ``2w``),
turned into a UTC time here, because "what happened this week" is the
usual question at an inspection.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from controller.cliout import add_json_flag, emit, table
from controller.errors import PayloadError
from controller.faultlog.model import SEVERITIES, parse_time
from controller.jsonin import JsonObject
from controller.timeutil import utc_clock, utc_text
from host.remote import client_for

_AGE = re.compile(r"(\d+)\s*([mhdw])")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: dt.datetime | None = None) -> str:
    """A relative age (``24h``) or a date/time, as the UTC timestamp the API takes."""
    match = _AGE.fullmatch(text.strip().lower())
    if match:
        then = (now or utc_clock()) - dt.timedelta(seconds=int(match[1]) * _UNIT_S[match[2]])
        return utc_text(then)
    return parse_time(text)


def _since_arg(text: str) -> str:
    """``--since`` checked at parse time, so a typo is caught before anything is sent."""
    try:
        return parse_since(text)
    except PayloadError as exc:
        raise argparse.ArgumentTypeError(f"{exc}, or an age such as 24h or 7d") from None


def _query(args: argparse.Namespace, **extra: Any) -> JsonObject:
    """The filters as query parameters; the controller checks them and says what is wrong."""
    query = {"state": args.state, "severity": args.severity, "source": args.source,
             "since": args.since, **extra}
    return {k: v for k, v in query.items() if v is not None}


# ------------------------------------------------------------------ commands

def cmd_list(args, client) -> int:
    """A table, then the active counts: the line an engineer reads first on arrival."""
    def show(data: JsonObject) -> None:
        faults = data["faults"]
        if faults:
            rows = [(f["id"], f["severity"], f["code"], f["source"], f["count"], f["first_seen"],
                     f["last_seen"], f["state"]) for f in faults]
            print(table(rows, ["id", "severity", "code", "source", "count", "first seen",
                               "last seen", "state"]))
        else:
            print(f"no {'' if args.state == 'all' else args.state + ' '}faults match")
        counts = data["counts"]
        worst = ", ".join(f"{n} {s}" for s, n in reversed(counts["by_severity"].items()) if n)
        print(f"{counts['active']} active on the controller" + (f" ({worst})" if worst else ""))

    return emit(args, client.get("/api/v1/faults", **_query(args, limit=args.limit)), show)


def cmd_show(args, client) -> int:
    """One fault with every field and its details, one per line."""
    return emit(args, client.get(f"/api/v1/faults/{args.id}"), _show_fault)


def _show_fault(fault: JsonObject) -> None:
    print(f"fault {fault['id']}: {fault['code']} ({fault['severity']}, {fault['state']})")
    print(f"  source      {fault['source']}")
    print(f"  first seen  {fault['first_seen']}")
    print(f"  last seen   {fault['last_seen']}")
    print(f"  count       {fault['count']}")
    if fault["state"] == "cleared":
        print(f"  cleared     {fault['cleared_at']} by {fault['cleared_by'] or '?'}")
    if fault["details"]:
        print("  details")
        for key, value in fault["details"].items():
            print(f"    {key}: {value}")


def cmd_clear(args, client) -> int:
    """Clear by id, or by code and/or source; never everything by accident.

    An id together with a code or source is refused rather than guessed
    at: clearing is the one write here, and it should do exactly what was
    typed.
    """
    if args.id is not None:
        if args.code or args.source:
            raise PayloadError("clear either one fault by id, or by --code / --all-of-source")
        def show_one(data: JsonObject) -> None:
            if data["cleared"]:
                f = data["fault"]
                print(f"cleared fault {f['id']} ({f['code']} on {f['source']})")
            else:
                print(f"fault {args.id} was already cleared")

        return emit(args, client.post(f"/api/v1/faults/{args.id}/clear"), show_one)
    if not (args.code or args.source):
        raise PayloadError("say what to clear: a fault id, --code CODE or --all-of-source SOURCE")
    body = {k: v for k, v in (("code", args.code), ("source", args.source)) if v}
    return emit(args, client.post("/api/v1/faults/clear", body),
                lambda data: print(f"cleared {data['cleared']} fault{'' if data['cleared'] == 1 else 's'}"))


def cmd_export(args, client) -> int:
    """Save the export as the controller made it; the notice goes to stderr, off the data."""
    text = client.get_text("/api/v1/faults/export?" + urlencode(_query(args, format=args.format)))
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    # newline="": the CSV already has its RFC 4180 line ends; do not translate them.
    Path(args.output).write_text(text, encoding="utf-8", newline="")
    print(f"fault log exported as {args.format.upper()} to {Path(args.output).resolve()}",
          file=sys.stderr)
    return 0


# ------------------------------------------------------------------ parser

def _filters(p: argparse.ArgumentParser, state: str) -> None:
    """The filters list and export share; only the default state differs."""
    p.add_argument("--state", choices=("active", "cleared", "all"), default=state,
                   help=f"which faults (default {state})")
    p.add_argument("--severity", choices=SEVERITIES, help="this severity or worse")
    p.add_argument("--source", metavar="SRC",
                   help="controller, card:0x03 (with its modules) or card:0x03/module:2")
    p.add_argument("--since", type=_since_arg, metavar="WHEN",
                   help="seen since a date, an ISO time, or an age such as 24h or 7d")


def register(sub: argparse._SubParsersAction) -> None:
    summary = "the controller's fault log: list, show, clear, export"
    faults = sub.add_parser("faults", help=summary, description=summary[0].upper() + summary[1:] + ".")
    actions = faults.add_subparsers(dest="faults_action", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    add_json_flag(common)

    def add(name, fn, help, json_output=True):
        p = actions.add_parser(name, help=help, description=help,
                               parents=[common] if json_output else [])
        p.set_defaults(func=lambda args: fn(args, client_for(args)))
        return p

    p = add("list", cmd_list, "list faults, the most recently seen first")
    _filters(p, "active")
    p.add_argument("--limit", type=int, default=1000, help="at most this many (default 1000)")
    p = add("show", cmd_show, "show one fault with its details")
    p.add_argument("id", type=int)
    p = add("clear", cmd_clear, "clear faults that have been dealt with (installer role)")
    p.add_argument("id", nargs="?", type=int, help="the fault to clear")
    p.add_argument("--code", help="every active fault with this code")
    p.add_argument("--all-of-source", dest="source", metavar="SRC",
                   help="every active fault of this source (a card includes its modules)")
    p = add("export", cmd_export, "save the fault log as CSV or JSON", json_output=False)
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("-o", "--output", default="-", metavar="FILE",
                   help="where to save it (default: standard output)")
    _filters(p, "all")
