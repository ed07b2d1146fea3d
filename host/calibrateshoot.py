"""``ledwarden calibrate --shoot INBOX``: the command drives the patterns and collects the photos.

For each photo set (the whole screen, or each cabinet alone with ``--by-cabinet``) it shows
the registration pattern through the video (``pattern:registration:X,Y,W,H``, the rest
black), then each primary with the cards' own test patterns (which the calibration does not
touch), and waits for each photo to arrive in ``INBOX`` — the folder a tethered camera or its
vendor's software saves into (gphoto2 ``--capture-tethered``, Lightroom's tethered capture,
an SD card with Wi-Fi upload).  A photo counts when its file has stopped growing; it is moved
into the photo folder under the step's name, which is the layout ``calibrate`` reads.  The
wall goes back to what it showed at the end, and on any error or Ctrl-C too.

The camera must deliver linear 16-bit files (or the RAW converter must run as files arrive);
the photos are only read, after the last one, by the same code as photos given by hand.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from controller.config import Layout
from controller.picture.photocal.folder import SUFFIXES
from controller.picture.photocal.photos import PRIMARIES, PhotoError
from host.client import ControllerClient

#: Seconds a photo's file must keep its size before it counts as written.
SETTLE_S = 0.5


def _images(inbox: Path) -> list[Path]:
    return sorted((p for p in inbox.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES),
                  key=lambda p: (p.stat().st_mtime, p.name))


def _take(inbox: Path, dest: Path, what: str, wait_s: float, say: Callable[[str], None]) -> None:
    """Wait for the next photo in ``inbox`` and move it to ``dest`` (its suffix kept)."""
    say(f"photograph {what}")
    deadline = time.monotonic() + wait_s
    seen: dict[Path, tuple[int, float]] = {}
    while time.monotonic() < deadline:
        for path in _images(inbox):
            size = path.stat().st_size
            first = seen.setdefault(path, (size, time.monotonic()))
            if first[0] != size:
                seen[path] = (size, time.monotonic())
            elif size and time.monotonic() - first[1] >= SETTLE_S:
                shutil.move(str(path), dest.with_suffix(path.suffix.lower()))
                return
            break                                    # oldest first: one photo per step
        time.sleep(0.1)
    raise PhotoError(f"no photo of {what} arrived in {inbox} within {wait_s:g} s; check the "
                     f"camera's connection and where it saves, then run the command again")


def shoot(client: ControllerClient, layout: Layout, inbox: Path, photos: Path, *,
          by_cabinet: bool, shots: int, wait_s: float, say: Callable[[str], None]) -> None:
    """Show every step's pattern and collect its photos from ``inbox`` into ``photos``."""
    if not inbox.is_dir():
        raise PhotoError(f"{inbox}: not a folder; give the folder the camera saves into")
    if _images(inbox):
        raise PhotoError(f"{inbox} holds {len(_images(inbox))} photo(s) already; move them away "
                         f"so that only this run's photos are taken")
    if photos.exists() and any(photos.iterdir()):
        raise PhotoError(f"{photos}: not empty; give a new folder for this run's photos")
    sets = ([(photos, None, (0, 0, layout.width, layout.height))] if not by_cabinet else
            [(photos / f"cabinet-{c.address}", c.address, (c.x, c.y, c.width, c.height))
             for c in layout.cabinets])
    before = client.get("/api/v1/source")["spec"]
    try:
        for folder, address, (x, y, w, h) in sets:
            folder.mkdir(parents=True, exist_ok=True)
            what = "the screen" if address is None else f"cabinet {address}"
            client.post("/api/v1/source", {"spec": f"pattern:registration:{x},{y},{w},{h}"})
            _take(inbox, folder / "registration", f"the registration pattern on {what}",
                  wait_s, say)
            client.post("/api/v1/source", {"spec": "pattern:black"})   # the rest stays dark
            for primary in PRIMARIES:
                body = {"pattern": primary}
                client.post("/api/v1/pattern", body if address is None
                            else {**body, "addresses": [address]})
                for i in range(shots):
                    _take(inbox, folder / f"{primary}-{i + 1}",
                          f"full {primary} on {what} ({i + 1} of {shots})", wait_s, say)
            client.post("/api/v1/pattern", {"pattern": "normal"})
    finally:
        client.post("/api/v1/pattern", {"pattern": "normal"})
        client.post("/api/v1/source", {"spec": before})
