"""``ledwarden calibrate PHOTOS``: uniformity calibration computed from photographs of the wall.

Runs on the laptop the photos are on: it finds the LEDs in the photos, measures each one's
primaries, chooses a target every LED reaches and computes every LED's 3x3 coefficients
(:mod:`controller.picture.photocal`), then writes them as each cabinet's ``.npz`` (``--out``)
and/or sends them to the controller through the calibration import every other calibration
file takes (``--import``, an installer token; ``--activate`` shows them at once).  Everything
is measured and checked before the first import, so a bad photo is one sentence and the wall
keeps the calibration it had.  The folder layout, the camera settings and the camera profile
are in ``docs/photocal.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from controller.cliout import emit
from controller.config import Layout, load_screen
from controller.errors import PayloadError
from controller.jsonin import JsonObject
from controller.picture import calibration
from controller.picture.photocal.folder import (calibrate_folder, current_calibration,
                                                match_folder, measure_wall, module_area,
                                                verify_folder)
from controller.picture.photocal.record import calibration_report
from controller.report.calibration import write_calibration
from controller.report.page import report_stem
from controller.timeutil import utc_text
from controller.version import software_version
from controller.picture.photocal.photos import (PRIMARIES, CameraProfile, full_field,
                                                registration_pattern)
from host.calibrateshoot import shoot
from host.remote import client_for


def cmd_patterns(args: argparse.Namespace, folder: Path) -> int:
    """The frames to show, screen-sized 8-bit PNGs for the controller's image source, for the
    whole screen, each cabinet alone (the rest black) and, with ``--module``, the module's
    region: the registration pattern, and the full fields for the verification round (which
    must go through the video, so that the calibration applies)."""
    layout = load_screen(args.screen)
    folder.mkdir(parents=True, exist_ok=True)
    regions = [("", 0, 0, layout.width, layout.height)] + ([
        ("module-", *module_area(layout, *args.module).region)] if args.module else []) + [
        (f"cabinet-{c.address}-", c.x, c.y, c.width, c.height) for c in layout.cabinets]
    written = []
    for prefix, x, y, w, h in regions:
        for step in ("registration", *PRIMARIES):
            frame = np.zeros((layout.height, layout.width, 3), np.uint8)
            frame[y:y + h, x:x + w] = (registration_pattern(w, h) if step == "registration"
                                       else full_field(w, h, step))
            path = folder / f"{prefix}{step}.png"
            if not cv2.imwrite(str(path), frame[..., ::-1]):
                raise OSError(f"cannot write {path}")
            written.append(str(path))
    return emit(args, {"written": written},
                lambda r: print(f"written       {len(r['written'])} frames in {folder}"))


def cmd_verify(args: argparse.Namespace, layout: Layout, profile: CameraProfile) -> int:
    """``--verify``: measure the wall as it shows now (second round of photos)."""
    if args.report:
        return _report(args, layout, profile)
    found = verify_folder(Path(args.photos), layout, profile)
    report: JsonObject = {"photo_sets": found.sets,
                          "nonuniformity_percent": [round(v, 3) for v in found.spread],
                          "worst_module": list(found.worst_module),
                          "worst_module_white_delta_uv": round(found.worst_delta_uv, 5)}

    def show(r: JsonObject) -> None:
        spread = ", ".join(f"{k} {v:.2f} %" for k, v in zip("RGB", r["nonuniformity_percent"]))
        x, y = r["worst_module"]
        print(f"measured      {len(r['photo_sets'])} photo set(s); luminance spread {spread}")
        print(f"worst module  at (x={x}, y={y}): white Δu'v' "
              f"{r['worst_module_white_delta_uv']:.4f} from the wall's")

    return emit(args, report, show)


def _report(args: argparse.Namespace, layout: Layout, profile: CameraProfile) -> int:
    """``--verify --before PHOTOS --report FOLDER``: the signed report's JSON and HTML."""
    if not args.before:
        raise PayloadError("--report needs --before FOLDER: the photos the calibration was "
                           "computed from, for the 'before' half of the report")
    settings: JsonObject = {}
    if args.camera_settings:
        try:
            loaded = json.loads(Path(args.camera_settings).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PayloadError(f"{args.camera_settings}: not readable as JSON ({exc}); give the "
                               f"camera's settings as {{\"name\": \"value\", …}}") from None
        if not isinstance(loaded, dict):
            raise PayloadError(f"{args.camera_settings}: give the camera's settings as a JSON "
                               f"object of names and values")
        settings = loaded
    start = time.monotonic()
    started = utc_text()
    before, shown, sets_before = measure_wall(Path(args.before), layout, profile)
    after, _, sets_after = measure_wall(Path(args.photos), layout, profile)
    record = calibration_report(
        layout, str(args.screen), before, after, shown, photos_before=sets_before,
        photos_after=sets_after, profile=str(args.camera), settings=settings,
        software=software_version(), started=started, finished=utc_text(),
        duration_s=time.monotonic() - start, lang=args.lang)
    stem = report_stem("calibration", layout.name, started)
    json_path, html_path = write_calibration(record, Path(args.report), stem)
    out: JsonObject = {"result": record["result"], "figures": record["figures"],
                       "json": str(json_path), "html": str(html_path)}

    def show(r: JsonObject) -> None:
        spread = r["figures"]["spread_percent"]
        print(f"luminance spread R G B: before {', '.join(f'{v:.2f} %' for v in spread['before'])}; "
              f"after {', '.join(f'{v:.2f} %' for v in spread['after'])} — {r['result'].upper()}")
        print(f"report        {r['html']}\n              {r['json']}")

    return emit(args, out, show)


def cmd_calibrate(args: argparse.Namespace) -> int:
    if args.patterns:
        return cmd_patterns(args, Path(args.patterns))
    if not args.photos:
        raise PayloadError("give the folder of photos (or --patterns FOLDER to write the "
                           "registration frames to show first)")
    if not args.camera:
        raise PayloadError("give the camera's profile: --camera PROFILE.json (docs/photocal.md)")
    if not args.out and not args.send and not args.verify:
        raise PayloadError("say where the calibration goes: --out FOLDER for .npz files, "
                           "--import to send it to the controller, or both")
    if args.activate and not args.send:
        raise PayloadError("--activate needs --import: only an imported calibration is shown")
    layout = load_screen(args.screen)
    profile = CameraProfile.read(args.camera)
    if args.shoot:
        if args.verify or args.module:
            raise PayloadError("--shoot takes the photos of a whole-wall calibration; for "
                               "--verify and --module show the patterns and take them by hand")
        shoot(client_for(args), layout, Path(args.shoot), Path(args.photos),
              by_cabinet=args.by_cabinet, shots=args.shots, wait_s=args.wait,
              say=lambda text: print(f"ledwarden: {text}", file=sys.stderr, flush=True))
    if args.verify:
        return cmd_verify(args, layout, profile)
    if args.module:
        return _module(args, layout, profile)
    done = calibrate_folder(Path(args.photos), layout, profile)
    res = done.result
    report: JsonObject = {
        "photo_sets": done.sets,
        "measured_nonuniformity_percent": [round(v, 2) for v in done.before],
        "level": round(res.level, 4), "desaturation": round(res.desaturation, 4),
        "dead_leds": [list(d) for d in res.dead], "written": [], "imported": []}
    _deliver(args, done.cabinets, report)
    return emit(args, report, _show)


def _deliver(args: argparse.Namespace, cabinets: dict[int, np.ndarray], report: JsonObject) -> None:
    """Write the cabinets' files (``--out``) and import them (``--import``)."""
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for address, calib in cabinets.items():
            path = out / f"cabinet-{address}.npz"
            path.write_bytes(calibration.to_npz(calib))
            report["written"].append(str(path))
    if args.send:
        client = client_for(args)
        for address, calib in cabinets.items():
            index = client.post_bytes("/api/v1/calibration/import", calibration.to_npz(calib),
                                      cabinet=address, format="npz", activate=args.activate,
                                      name=f"photocal-cabinet-{address}.npz")
            report["imported"].append({"cabinet": address,
                                       "version": index["versions"][-1]["version"],
                                       "active": index["active"]})


def _module(args: argparse.Namespace, layout: Layout, profile: CameraProfile) -> int:
    """``--module X,Y``: match the module with that pixel to its neighbours; only its
    cabinet's calibration changes, and in it only the module's LEDs."""
    area = module_area(layout, *args.module)
    current = current_calibration(Path(args.current) if args.current else None, layout)
    done = match_folder(Path(args.photos), layout, profile, area, current)
    report: JsonObject = {
        "module": list(area.module), "cabinet": done.address, "region": list(area.region),
        "white_delta_uv_before": round(done.before, 5), "white_delta_uv_after": round(done.after, 5),
        "desaturation": round(done.result.desaturation, 4),
        "dead_leds": [list(d) for d in done.result.dead], "written": [], "imported": []}
    _deliver(args, {done.address: done.array}, report)

    def show(r: JsonObject) -> None:
        x, y, w, h = r["module"]
        print(f"module        {w}x{h} at (x={x}, y={y}) in cabinet {r['cabinet']}: white "
              f"Δu'v' to its neighbours {r['white_delta_uv_before']:.4f} measured, "
              f"{r['white_delta_uv_after']:.4f} with the new coefficients")
        _show_delivered(r)

    return emit(args, report, show)


def _show(r: JsonObject) -> None:
    before = ", ".join(f"{k} {v:.2f} %" for k, v in zip("RGB", r["measured_nonuniformity_percent"]))
    print(f"measured      {len(r['photo_sets'])} photo set(s); luminance spread {before}")
    print(f"target        {100 * r['level']:.1f} % of the average LED's light, desaturation "
          f"{100 * r['desaturation']:.1f} %")
    dead = r["dead_leds"]
    if dead:
        print(f"dead LEDs     {len(dead)}, left as they are (replace them): "
              + ", ".join(f"(x={x}, y={y})" for x, y in dead[:10]) + (" …" if len(dead) > 10 else ""))
    _show_delivered(r)


def _show_delivered(r: JsonObject) -> None:
    for path in r["written"]:
        print(f"written       {path}")
    for item in r["imported"]:
        state = "shown now" if item["active"] == item["version"] else \
            f"not shown yet: ledwarden calibration activate --cabinet {item['cabinet']} " \
            f"--version {item['version']}"
        print(f"imported      cabinet {item['cabinet']} as v{item['version']} ({state})")
