"""Which source the frame loop plays, chosen live and kept across restarts (issue 16).

An installer switches the source through the API (``POST /api/v1/source``,
``ledwarden source set file:clip.mp4``).  The new source is opened on a
worker thread — probing a video or binding the DDP port takes time the event
loop must not spend — and only once it is open does the loop take it, between
two frames; the old one is then closed.  A source that cannot be opened
changes nothing: the wall keeps the picture it had and the caller gets the
reason in one sentence.

The choice is written to ``STATE/source.json`` (atomically: a power cut
leaves the old file or the new one) and wins over ``--source`` at the next
start, because the installer's last word is newer than the unit file's.  A
source that cannot be opened at start (a clip deleted, the DDP port taken) is
filed as fault ``source.unavailable``: the controller still starts, plays
``--source`` or, failing that, the bars pattern, and a later successful
switch clears the fault.  Every switch is filed as ``source.changed`` (info)
with who made it, so the fault log's history says why the wall changed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from controller.errors import ConfigError, PayloadError
from controller.faultlog import FaultLog
from controller.report.page import write_atomic
from controller.service.frameloop import FrameLoop, FrameSource, frame_source
from controller.timeutil import utc_now

log = logging.getLogger("ledwarden.frames")

STATE_FILE = "source.json"
#: What plays when neither the saved choice nor ``--source`` can be opened.
FALLBACK = "pattern:bars"
#: Source codes in the fault log (source ``controller``).
CHANGED, UNAVAILABLE = "source.changed", "source.unavailable"
MAX_SPEC = 1000


def saved_choice(state_dir: Path) -> dict | None:
    """The source last chosen through the API (``spec``, ``by``, ``at``), or None.

    A damaged file is logged and ignored rather than fatal: ``--source`` is a
    good enough answer, and the next switch writes a sound file again.
    """
    path = Path(state_dir) / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable (%s); playing --source instead", path, exc)
        return None
    if not isinstance(data, dict) or not isinstance(data.get("spec"), str) or not data["spec"]:
        log.warning("%s: holds no source spec; playing --source instead", path)
        return None
    return data


def save_choice(state_dir: Path, spec: str, by: str) -> dict:
    """Write the choice atomically; returns what was written."""
    choice = {"spec": spec, "by": by, "at": utc_now()}
    write_atomic(Path(state_dir) / STATE_FILE, json.dumps(choice, indent=1) + "\n")
    return choice


def open_source(spec: str, width: int, height: int) -> FrameSource:
    """:func:`frame_source`, with what the operating system says about a path (a name too long,
    a folder that may not be read) as a :class:`ConfigError` too: a spec typed into the API
    is bad input, never a server error."""
    try:
        return frame_source(spec, width, height)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"--source {spec[:80]}{'…' if len(spec) > 80 else ''}: {reason}; "
                          f"give pattern:NAME, file:PATH, ddp: or a path on the controller"
                          ) from None


@dataclass
class Startup:
    """What the loop plays at start, and why it is not what was wanted (``problem``)."""

    spec: str
    source: FrameSource
    wanted: str
    problem: str | None = None


def open_startup(state_dir: Path, cli_spec: str, width: int, height: int) -> Startup:
    """Open the saved choice, else ``--source``; if that fails, the next candidate plays and
    ``problem`` says why (the service files it with :func:`note_startup`)."""
    saved = saved_choice(state_dir)
    wanted = saved["spec"] if saved else cli_spec
    candidates = [wanted] + [s for s in (cli_spec, FALLBACK) if s != wanted]
    problem = None
    for spec in candidates:
        try:
            source = open_source(spec, width, height)
        except ConfigError as exc:
            problem = problem or str(exc)
            log.warning("source %s cannot be opened: %s", spec, exc)
            continue
        return Startup(spec, source, wanted, problem)
    raise ConfigError(f"no source can be opened, not even {FALLBACK}: {problem}")


def note_startup(faults: FaultLog, startup: Startup) -> None:
    """File ``source.unavailable`` when the wanted source could not be opened at start."""
    if startup.problem is not None:
        faults.record(UNAVAILABLE, "error", "controller",
                      {"wanted": startup.wanted, "playing": startup.spec,
                       "reason": startup.problem})


class SourceSwitch:
    """The API's handle on the loop's source: show it, switch it, one switch at a time."""

    def __init__(self, frame_loop: FrameLoop, faults: FaultLog, state_dir: Path) -> None:
        self.loop, self.faults, self.state_dir = frame_loop, faults, Path(state_dir)
        self.lock = asyncio.Lock()

    def show(self) -> dict:
        return {"spec": self.loop.source_name, "chosen": saved_choice(self.state_dir),
                "stats": self.loop.source_stats()}

    async def set(self, spec: object, who: str) -> dict:
        """Open ``spec`` off the event loop and play it; on failure keep the old source and raise
        one sentence (a :class:`ConfigError`, a 400) saying why and what still plays."""
        if not isinstance(spec, str) or not spec.strip() or len(spec) > MAX_SPEC:
            raise PayloadError('say which source, as {"spec": "file:clip.mp4"}, {"spec": "ddp:"} '
                               'or {"spec": "pattern:bars"}')
        spec = spec.strip()
        async with self.lock:
            old = self.loop.source_name
            if spec == old:   # reopening would fight the running source for its file or port
                return self.show() | {"changed": False}
            layout = self.loop.layout
            try:
                source = await asyncio.to_thread(open_source, spec, layout.width, layout.height)
            except ConfigError as exc:
                raise ConfigError(f"{exc}; still playing {old}") from None
            await self.loop.set_source(source, spec)
            note = None
            try:
                await asyncio.to_thread(save_choice, self.state_dir, spec, who)
            except OSError as exc:
                note = (f"playing {spec}, but the choice could not be saved in "
                        f"{self.state_dir / STATE_FILE} ({exc.strerror or exc}); "
                        f"a restart plays the old choice")
                log.warning("%s", note)
            await asyncio.to_thread(self._journal, old, spec, who)
            log.info("%s switched the source from %s to %s", who, old, spec)
            return self.show() | {"changed": True, "note": note}

    def _journal(self, old: str, new: str, who: str) -> None:
        self.faults.record(CHANGED, "info", "controller", {"who": who, "from": old, "to": new})
        self.faults.resolve(UNAVAILABLE, "controller", by=who)
