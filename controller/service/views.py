"""What the API shows of the running controller: its description, status, cards and reports.

Read-only views over the board (:class:`~controller.boardcontext.BoardContext`)
and the service's own bookkeeping (its jobs, the cards it has identified),
kept apart from :class:`~controller.service.state.Service`, which only wires
the parts together.  Bus counters come from a snapshot taken under the bus's
statistics lock (:meth:`~controller.protocol.bus.Bus.snapshot`), never from
the bus thread's live objects.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.boardcontext import BoardContext
from controller.errors import LedwardenError, NotFound
from controller.power import PowerLimiter
from controller.service.jobs import UNFINISHED, JobManager
from controller.version import software_version

if TYPE_CHECKING:       # annotations only: both are built by the service around the views
    from controller.service.brightness import WallBrightness
    from controller.service.outputwatch import OutputWatch

REPORT_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.(json|html)$")


def controller_info(bus_url: str, baud: int, fingerprint: str) -> dict[str, Any]:
    """The controller as reports and ``GET /status`` name it."""
    return {"host": socket.gethostname(), "bus": bus_url, "baud": baud,
            "fingerprint": fingerprint, "software": software_version()}


def status(board: BoardContext, jobs: JobManager, *, bus_url: str, baud: int,
           started: float, power: PowerLimiter | None = None,
           card_output: OutputWatch | None = None,
           brightness: WallBrightness | None = None) -> dict[str, Any]:
    """``GET /status``: the screen, the bus's counters, the frame loop, the current limiter,
    what the cards report showing (GET_OUTPUT), unfinished jobs, the wall's brightness, the
    fault counts and the last self-test."""
    active = [j.as_dict(full=False) for j in jobs.jobs.values() if j.state in UNFINISHED]
    stats = board.bus.statistics()
    layout = board.layout
    return {
        "screen": {"name": layout.name, "width": layout.width, "height": layout.height,
                   "cabinets": len(layout.cabinets), "file": board.screen_file},
        "bus": {"port": bus_url, "baud": baud, "operations": stats.operations,
                "dropped_frames": stats.dropped},
        "frame_loop": board.frame_loop.stats() if board.frame_loop is not None else None,
        "power": power.status() if power is not None else None,
        "card_output": card_output.status() if card_output is not None else None,
        "jobs": active,
        "brightness": brightness.view() if brightness is not None else None,
        "faults": board.faults.counts() if board.faults is not None else None,
        "last_selftest": next(iter(board.history.runs(1)), None),
        "uptime_s": round(time.time() - started, 1),
    }


def cards_view(board: BoardContext, known: Mapping[int, dict[str, Any]],
               answered: Mapping[int, float]) -> dict[str, Any]:
    """Each cabinet's card: ``found`` if a discovery or commissioning identified it
    (``known``) or the watch's latest poll got an answer (``answered``: ``last_answer``, UTC)."""
    out = []
    links = board.bus.statistics().links
    for cab in board.layout.cabinets:
        card = known.get(cab.address)
        stats = links.get(cab.address)
        heard = answered.get(cab.address)
        out.append({"address": cab.address, "x": cab.x, "y": cab.y,
                    "found": card is not None or heard is not None, "card": card,
                    "last_answer": None if heard is None else time.strftime(
                        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(heard)),
                    "link": stats.as_dict() if stats else None})
    configured = set(board.addresses())
    extra = [{"address": a, "card": k} for a, k in known.items() if a not in configured]
    return {"cabinets": out, "unexpected": extra}


def reports(reports_dir: Path) -> list[dict[str, Any]]:
    """The acceptance reports kept under ``STATE/reports``, newest first."""
    files = sorted(reports_dir.glob("*.json"), reverse=True)
    return [{"name": p.stem, "json": p.name, "html": p.with_suffix(".html").name,
             "size": p.stat().st_size} for p in files]


def report_path(reports_dir: Path, name: str) -> Path:
    """One report file by name; a name that could leave the directory is refused."""
    if not REPORT_NAME.match(name):
        raise LedwardenError(f"{name!r} is not a report name")
    path = reports_dir / name
    if not path.is_file():
        raise NotFound(f"no report {name!r}")
    return path
