"""``ledwarden calibrate``: the command's options; the work is in :mod:`host.calibraterun`.

Split so that every other ``ledwarden`` command does not pay for importing
OpenCV and the calibration's packages (about 20 ms on this machine, more on
the board), which only this command needs.
"""

from __future__ import annotations

import argparse

from controller.cliout import add_json_flag


def _pixel(text: str) -> tuple[int, int]:
    try:
        x, y = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a pixel of the module as X,Y, "
                                         f"screen coordinates, e.g. 40,20") from None
    return x, y


def cmd_calibrate(args: argparse.Namespace) -> int:
    from host.calibraterun import cmd_calibrate as run
    return run(args)


def register(sub: argparse._SubParsersAction) -> None:
    summary = "compute every LED's uniformity calibration from photos of the wall"
    p = sub.add_parser("calibrate", help=summary, description=summary[0].upper() + summary[1:]
                       + " (docs/photocal.md).")
    add_json_flag(p)
    p.add_argument("photos", nargs="?",
                   help="folder of photos: registration, red, green, blue (.png/.tif), "
                        "or one cabinet-<address>/ folder of them per cabinet")
    p.add_argument("--patterns", metavar="FOLDER",
                   help="instead: write the registration frames to show (whole screen and each "
                        "cabinet alone) as PNG files for the controller's image source")
    p.add_argument("--screen", required=True, help="the wall's screen file (as the controller's)")
    p.add_argument("--camera",
                   help="the camera profile, JSON: 3x3 'colour' (XYZ to camera RGB), 'vignetting'")
    p.add_argument("--out", metavar="FOLDER", help="write cabinet-<address>.npz files here")
    p.add_argument("--import", dest="send", action="store_true",
                   help="import them on the controller as each cabinet's next version (installer)")
    p.add_argument("--activate", action="store_true", help="with --import: show them at once")
    p.add_argument("--verify", action="store_true",
                   help="instead: measure the wall as it shows now, from photos of the full "
                        "fields played through the video (the --patterns frames), to check a "
                        "calibration")
    p.add_argument("--shoot", metavar="INBOX",
                   help="first show each pattern on the wall and wait for its photo in INBOX "
                        "(where the tethered camera saves), filing them into PHOTOS")
    p.add_argument("--by-cabinet", action="store_true",
                   help="with --shoot: one photo set per cabinet, each cabinet alone")
    p.add_argument("--shots", type=int, choices=range(1, 9), default=2, metavar="N",
                   help="with --shoot: photos of each primary (default 2, averaged)")
    p.add_argument("--wait", type=float, default=600.0, metavar="S",
                   help="with --shoot: seconds to wait for each photo (default 600)")
    p.add_argument("--before", metavar="FOLDER",
                   help="with --verify --report: the photos the calibration was computed from")
    p.add_argument("--report", metavar="FOLDER",
                   help="with --verify: write the calibration report (JSON and HTML) here")
    p.add_argument("--lang", choices=("en", "zh"), default="en", help="the report's language")
    p.add_argument("--camera-settings", metavar="FILE",
                   help="with --report: the camera's settings to print, JSON {name: value}")
    p.add_argument("--module", type=_pixel, metavar="X,Y",
                   help="match only the module with screen pixel X,Y (a replaced one) to the "
                        "modules around it, photographed together; the rest stays as it is")
    p.add_argument("--current", metavar="FOLDER",
                   help="with --module: the cabinet-<address>.npz files of the calibration in "
                        "use (what --out wrote); cabinets without one are uncalibrated")
    p.set_defaults(func=cmd_calibrate)
