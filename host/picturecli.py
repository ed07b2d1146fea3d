"""``ledwarden correction show|set|reset``, ``ledwarden calibration list|import|activate|rollback``.

The live picture from a laptop, through the controller's API: reading needs a viewer
token, changing an installer token; the controller checks everything (it holds the
screen), shows a change from the next frame on, keeps it across restarts and files it
in the fault log with the token's name.  A refused change leaves the picture as it was,
and the controller's sentence says why.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from controller.cardaddress import ADDR_FIRST_CARD, ADDR_LAST_CARD
from controller.cliout import emit_json, table
from controller.errors import PayloadError
from host.remote import client_for


def _white(text: str) -> list[float]:
    """``--white 1,0.92,0.85``: three factors, each above 0 and at most 1."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3 or not all(math.isfinite(v) and 0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give three factors R,G,B, each above 0 and "
                                         f"at most 1, e.g. 1,0.92,0.85")
    return values


def _cabinet(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        value = -1
    if not ADDR_FIRST_CARD <= value <= ADDR_LAST_CARD:
        raise argparse.ArgumentTypeError(f"{text!r}: a cabinet is its card's address, "
                                         f"{ADDR_FIRST_CARD}..{ADDR_LAST_CARD}")
    return value


# ------------------------------------------------------------------ correction

def _print_correction(data: dict) -> None:
    curve = data["curve"] + (f", gamma {data['gamma']:g}" if data["gamma"] is not None else "")
    print(f"curve        {curve}")
    print(f"white        {', '.join(f'{w:g}' for w in data['white'])}")
    if data["brightness"] is not None:
        print(f"brightness   {data['brightness']:g} % (the screen file's default for the cards' "
              f"dimming; the wall's brightness now: 'ledwarden brightness')")
    if data["overrides"]:
        print(f"changed      {', '.join(sorted(data['overrides']))} by {data['set_by'] or '?'} "
              f"at {data['set_at']} (over the screen file's; `ledwarden correction reset` "
              f"returns to it)")
    else:
        print("changed      nothing: the screen file's settings")
    cabs = data["calibrated_cabinets"]
    print(f"calibrated   {len(cabs)} cabinet{'' if len(cabs) == 1 else 's'}"
          + (f" ({', '.join(map(str, cabs))})" if cabs else ""))


def cmd_correction_show(args, client) -> int:
    data = client.get("/api/v1/correction")
    emit_json(data) if args.json else _print_correction(data)
    return 0


def cmd_correction_set(args, client) -> int:
    body: dict = {}
    if args.curve is not None:
        body["curve"] = args.curve
    if args.gamma is not None:
        body["gamma"] = args.gamma
    if args.white is not None:
        body["white"] = args.white
    if not body:
        raise PayloadError("say what to change: --gamma G, --curve power|cie1931 or --white R,G,B")
    data = client.post("/api/v1/correction", body)
    if args.json:
        emit_json(data)
    else:
        print("changed; the wall shows it from the next frame on")
        _print_correction(data)
    return 0


def cmd_correction_reset(args, client) -> int:
    data = client.post("/api/v1/correction", {"reset": True})
    if args.json:
        emit_json(data)
    else:
        print("back to the screen file's settings")
        _print_correction(data)
    return 0


# ------------------------------------------------------------------ calibration

def _in_use(cab: dict) -> str:
    use = cab["in_use"]
    if use is None:
        return "none"
    return f"v{use['version']}" if use["from"] == "stored" else f"screen file {use['file']}"


def cmd_calibration_list(args, client) -> int:
    data = client.get("/api/v1/calibration")
    if args.json:
        emit_json(data)
        return 0
    rows = [(c["cabinet"], f"{c['width']}x{c['height']}", _in_use(c), c["form"] or "",
             ", ".join(f"v{v['version']} ({v['imported_by'] or '?'}, {v['imported_at']})"
                       for v in c["versions"]) or "-") for c in data["cabinets"]]
    print(table(rows, ["cabinet", "size", "in use", "form", "stored versions"]))
    return 0


def _print_index(data: dict, what: str) -> None:
    active = f"v{data['active']}" if data["active"] is not None else "the screen file's (or none)"
    print(f"cabinet {data['cabinet']}: {what}; in use: {active}; kept: "
          f"{', '.join('v' + str(v['version']) for v in data['versions']) or 'none'}")


def cmd_calibration_import(args, client) -> int:
    path = Path(args.file)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("csv", "npz"):
        raise PayloadError(f"{path}: a calibration file is .csv or .npz")
    data = client.post_bytes("/api/v1/calibration/import", path.read_bytes(),
                             cabinet=args.cabinet, format=fmt, activate=args.activate,
                             name=path.name)
    if args.json:
        emit_json(data)
    else:
        newest = data["versions"][-1]["version"]
        _print_index(data, f"imported {path.name} as v{newest}"
                     + ("" if args.activate else
                        f" (not shown yet: `ledwarden calibration activate --cabinet "
                        f"{args.cabinet} --version {newest}`)"))
    return 0


def cmd_calibration_activate(args, client) -> int:
    data = client.post("/api/v1/calibration/activate",
                       {"cabinet": args.cabinet, "version": args.version})
    emit_json(data) if args.json else _print_index(data, f"v{args.version} activated")
    return 0


def cmd_calibration_rollback(args, client) -> int:
    data = client.post("/api/v1/calibration/rollback", {"cabinet": args.cabinet})
    emit_json(data) if args.json else _print_index(data, "rolled back")
    return 0


# ------------------------------------------------------------------ parser

def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON")

    def group(name: str, summary: str):
        p = sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
        return p.add_subparsers(dest=f"{name}_action", metavar="ACTION", required=True)

    def add(actions, name, fn, help):
        p = actions.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(func=lambda args: fn(args, client_for(args)))
        return p

    actions = group("correction", "the wall's correction settings: transfer curve and white balance")
    add(actions, "show", cmd_correction_show, "show the settings in use and where they come from")
    p = add(actions, "set", cmd_correction_set,
            "change settings live, from the next frame on, kept across restarts (installer)")
    p.add_argument("--curve", choices=("power", "cie1931"), help="the transfer curve")
    p.add_argument("--gamma", type=float, metavar="G",
                   help="the power curve's exponent, 0 < G <= 5 (implies --curve power)")
    p.add_argument("--white", type=_white, metavar="R,G,B", help="white balance, each 0 < w <= 1")
    add(actions, "reset", cmd_correction_reset,
        "drop the changes made at run time: back to the screen file's settings (installer)")

    actions = group("calibration", "per-cabinet calibration: list, import, activate, roll back")
    add(actions, "list", cmd_calibration_list, "each cabinet's calibration in use and stored versions")
    p = add(actions, "import", cmd_calibration_import,
            "send a cabinet's calibration file (.csv or .npz) as its next version (installer)")
    p.add_argument("file", help="CSV (x,y,rr,rg,rb,gr,gg,gb,br,bg,bb per pixel) or .npz")
    p.add_argument("--cabinet", type=_cabinet, required=True, help="the cabinet's card address")
    p.add_argument("--activate", action="store_true", help="show it at once")
    p = add(actions, "activate", cmd_calibration_activate,
            "show a stored version of a cabinet's calibration (installer)")
    p.add_argument("--cabinet", type=_cabinet, required=True, help="the cabinet's card address")
    p.add_argument("--version", type=int, required=True, help="the version, from `calibration list`")
    p = add(actions, "rollback", cmd_calibration_rollback,
            "go back to the calibration shown before the active one (installer)")
    p.add_argument("--cabinet", type=_cabinet, required=True, help="the cabinet's card address")
