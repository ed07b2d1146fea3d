"""The upgrade journal: one JSON line per install event, forwarded into the fault log.

Three processes produce upgrade events — the installer (inside the service
or ``controller install``), the service confirming its own health, and the
boot guard reverting a bad version — but only the service holds the fault
log (``service.faults``, SQLite with an in-memory cache of active faults, so
a second writer process would corrupt its view).  Every producer therefore
appends to ``STATE/upgrade-events.jsonl`` (one ``write`` per line, fsync'd),
and the service forwards new lines to ``service.faults.record`` when it
starts and after each install; ``upgrade-events.forwarded`` holds how many
lines were forwarded.  A crash between forwarding and writing that count
forwards a line twice, which the fault log folds into one fault with a
count of two: at least once, never lost.

Codes (source ``controller``; details carry ``transaction`` and versions):
``upgrade.controller.installed`` (info: switched, on trial),
``upgrade.controller.confirmed`` (info), ``upgrade.controller.rolled-back``
(error), ``upgrade.controller.rejected`` (warning: a bundle refused, with
``reason``), ``upgrade.controller.failed`` (error: an install that passed the
checks but could not be completed; nothing was switched).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from controller.upgrade.steps import Steps

log = logging.getLogger("ledwarden.upgrade")

JOURNAL, CURSOR = "upgrade-events.jsonl", "upgrade-events.forwarded"
SOURCE = "controller"
SEVERITY = {"installed": "info", "confirmed": "info", "rolled-back": "error",
            "rejected": "warning", "failed": "error"}


def record(state_dir: Path, event: str, details: dict, steps: Steps | None = None) -> dict:
    """Append ``upgrade.controller.<event>`` to the journal; return the line written."""
    line = {"time": time.time(), "code": f"upgrade.controller.{event}",
            "severity": SEVERITY[event], "source": SOURCE, "details": details}
    path = Path(state_dir) / JOURNAL
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(line, sort_keys=True).encode() + b"\n"
    if _torn(path):
        data = b"\n" + data    # end a line a power cut tore, so this one stays readable
    (steps or Steps()).append(path, data)
    log.log(logging.ERROR if line["severity"] == "error" else logging.INFO, "%s %s",
            line["code"], json.dumps(details, sort_keys=True))
    return line


def _torn(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(-1, 2)
            return f.read(1) != b"\n"
    except OSError:          # missing or empty
        return False


def read(state_dir: Path) -> list[dict]:
    """Every complete line; a torn last line (power cut mid-append) is skipped."""
    try:
        raw = (Path(state_dir) / JOURNAL).read_bytes()
    except FileNotFoundError:
        return []
    out = []
    for text in raw.splitlines():
        try:
            item = json.loads(text)
        except ValueError:
            continue
        if isinstance(item, dict) and "code" in item:
            out.append(item)
    return out


def forward(state_dir: Path, faults) -> int:
    """Record journal lines not yet forwarded into ``faults`` (a FaultLog); return how many.

    A confirmation resolves an earlier rolled-back fault: the board runs a
    version that passed its health check again.
    """
    cursor_path = Path(state_dir) / CURSOR
    try:
        done = int(cursor_path.read_text().strip() or 0)
    except (OSError, ValueError):
        done = 0
    lines = read(state_dir)
    fresh = lines[done:]
    for line in fresh:
        faults.record(line["code"], line["severity"], line["source"], line["details"],
                      at=line.get("time"))
        if line["code"] == "upgrade.controller.confirmed":
            for fault in faults.active():
                if fault.code == "upgrade.controller.rolled-back":
                    faults.resolve(fault.code, fault.source,
                                   by=f"transaction {line['details'].get('transaction')} confirmed")
    if fresh:
        Steps().replace(cursor_path, f"{len(lines)}\n".encode())
    return len(fresh)
