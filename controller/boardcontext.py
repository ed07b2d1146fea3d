"""What the parts of the board need of it, handed in: the board context.

The self-tests, the card watch and the service's jobs all work on the same
board: the bus, the screen's layout, the card settings, the fault log, the
frame loop, the state directory, the self-test history.  They used to be
handed the whole service object and to pick out what they needed by
attribute, with a default for a piece that might be missing, so none of them could run
without a service, a test had to build one to run a self-test, and nothing
said which part needed which piece.

:class:`BoardContext` is that set of pieces, frozen: the service builds one
at start and hands it down; a test, a bench script or a future second
service builds one from the real parts without any service.  What each piece
must do is a small :class:`~typing.Protocol` (:class:`BusAccess`,
:class:`FrameStats`, :class:`SelftestHistory`, :class:`JobProgress`), so this
module names no class from the layers above it: the bus owner and the job
live in the service, the history in the self-test package, and all of them
fit here by their shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from controller.config import Layout
from controller.faultlog import FaultLog
from controller.protocol.bus import BusStatistics
from controller.screenmap import CardSettings

T = TypeVar("T")


class BusAccess(Protocol):
    """The bus as the parts use it: one operation at a time, queued with everyone else's.

    The service's :class:`~controller.service.busowner.BusOwner` is one: it
    runs each operation in its bus thread, so an inspection's pings and the
    API's status requests take turns instead of interleaving on the wire.
    """

    async def run(self, operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``operation(bus, *args, **kwargs)`` in the bus thread when it is this caller's turn."""
        ...

    async def call(self, address: int, cmd: int, request: Any = None, *,
                   file_timeout: bool = True, **kwargs: Any) -> Any:
        """One unicast transaction; ``file_timeout=False`` when the caller files its own fault."""
        ...

    async def broadcast(self, cmd: int, request: Any = None) -> None:
        """One broadcast, returning once it has left the wire."""
        ...

    def statistics(self) -> BusStatistics:
        """The bus's counters copied at one instant (safe from any thread)."""
        ...


class FrameStats(Protocol):
    """The frame loop as the watch and the ``frameloop.budget`` check read it: its counters
    (``running``, ``frames``, ``overruns``, ``p99_ms``, ``budget_ms``, ``fps`` …)."""

    def stats(self) -> dict[str, Any]:
        """The loop's counters now."""
        ...

    def video_cards(self) -> list[dict[str, Any]]:
        """The video receiving cards its sink discovered (Colorlight: model, firmware, uptime),
        which the cards view and the ``video.output`` check show beside the bus's cards."""
        ...


class SelftestHistory(Protocol):
    """The stored self-test runs (``STATE/selftest.db``) as a run reads and extends them.

    :class:`controller.selftest.history.History` is the one implementation;
    it sits above this module, hence the shape instead of the class.
    """

    def previous(self, before_id: int | None = None, *, profiles: tuple[str, ...] = (),
                 where_detected: bool = False) -> dict[str, Any] | None:
        """The newest run (of ``profiles``, before ``before_id``, that detected LEDs), or None."""
        ...

    def runs(self, limit: int = 50, profile: str | None = None) -> list[dict[str, Any]]:
        """Summaries of the newest runs, newest first."""
        ...

    def report(self, run_id: int) -> dict[str, Any]:
        """One run's whole stored report."""
        ...

    def last_started(self) -> str | None:
        """When the newest run started (UTC text), or None before the first."""
        ...

    def event_cursor(self, serial: str) -> int:
        """Where the next read of a card's event log starts."""
        ...

    def save(self, report: dict[str, Any], cursors: dict[str, int],
             finish: Callable[[dict[str, Any]], Any] | None = None) -> int:
        """Store a finished run with the event cursors it advanced, in one transaction."""
        ...


class JobProgress(Protocol):
    """What a long piece of work tells the person following it: the service's
    :class:`~controller.service.jobs.Job` is one, and a run without a job passes None."""

    def step(self, name: str, done: int = 0, total: int = 0) -> None:
        """A new step has begun (and is logged)."""
        ...

    def advance(self, done: int, total: int) -> None:
        """Progress within the current step."""
        ...

    def note(self, line: str) -> None:
        """One line for the job's log."""
        ...


class LivePicture(Protocol):
    """The picture the wall shows (:class:`controller.picture.live.Picture`): the inputs its
    pipeline was built from (curve, white balance, calibration) and that pipeline, which the
    ``fastpath.golden`` check rebuilds and compares with the NumPy reference.  Named by its
    shape: the picture package sits above this module (it stores through the upgrades' steps)."""

    inputs: Any
    pipeline: Any


class WallLevels(Protocol):
    """The wall's current brightness (:class:`controller.service.brightness.WallBrightness`):
    the dimming level each card should hold now, set by hand or by the schedule.  The
    ``cards.config`` check compares cards with it, not with the screen file's default."""

    def level(self, address: int) -> int:
        """The level the card at ``address`` should hold now."""
        ...

    def accepts(self, address: int, level: int) -> bool:
        """Whether ``level`` is right for the card, allowing a fade step sent meanwhile."""
        ...


def _no_controller_info() -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class BoardContext:
    """The board's parts, as the self-tests, the watch and the jobs are handed them.

    Frozen: a part may use what it is given but not swap a piece for everyone
    else (a test that needs another frame loop makes its own context with
    :func:`dataclasses.replace`).  The pieces themselves (the fault log, the
    history) are of course live.
    """

    #: The bus, queued: every card operation goes through it.
    bus: BusAccess
    #: The screen: its cabinets, their cards' addresses and positions.
    layout: Layout
    #: The screen file's ``[cards]`` table: what every card should be.
    settings: CardSettings
    #: The controller's state directory (``--state``): reports, databases, probes.
    state_dir: Path
    #: The stored self-test runs.
    history: SelftestHistory
    #: Where feeds file what they find; None only where no fault log exists (a bare bench run).
    faults: FaultLog | None = None
    #: The running frame loop, or None when the controller runs without one (``--no-frames``).
    frame_loop: FrameStats | None = None
    #: The live picture, or None when the service runs without one (tests).
    picture: LivePicture | None = None
    #: The wall's current brightness, or None where there is none (the screen file's default
    #: then holds: a bench run, a test).
    brightness: WallLevels | None = None
    #: The screen file the layout came from, as the reports name it.
    screen_file: str = ""
    #: The controller's description for reports (host, bus, fingerprint, software), asked for
    #: when a report is written because it is the service that knows them.
    controller_info: Callable[[], dict[str, Any]] = field(default=_no_controller_info)

    @property
    def reports_dir(self) -> Path:
        """Where acceptance reports are written (and where an inspection finds its baseline)."""
        return self.state_dir / "reports"

    def addresses(self) -> list[int]:
        """Every configured card's address, in the screen file's order."""
        return [cab.address for cab in self.layout.cabinets]

    def targets(self, addresses: Iterable[int] | None) -> list[int]:
        """``addresses`` if any are given, else every configured card: the default target of
        a per-card action (detection, brightness)."""
        return list(addresses or []) or self.addresses()


__all__ = ["BoardContext", "BusAccess", "FrameStats", "JobProgress", "LivePicture",
           "SelftestHistory", "WallLevels"]
