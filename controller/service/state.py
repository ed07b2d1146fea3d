"""What the running controller holds, wired together: the board, the jobs, the watch.

:class:`Service` is the API's handle on the board.  It builds the
:class:`~controller.boardcontext.BoardContext` (bus owner, layout, settings,
fault log, frame loop, state directory, self-test history) and hands it to
the parts that do the work — the views (:mod:`.views`), the exclusive jobs
(:mod:`.boardjobs`), the quick actions (:mod:`.quickactions`), the card
watch (:mod:`.watch`), the upgrade health check
(:mod:`controller.upgrade.health`) — and keeps only the wiring and the
service's own state (jobs, identified cards, the trial flag).  Its methods
are the names the API, the tests and ``host/demo_upgrade.py`` call, each a
one-line delegation.  Everything that touches the bus goes through its
:class:`BusOwner`; everything that takes seconds is a job; reports are files
under ``STATE/reports`` so they survive restarts.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from controller.boardcontext import BoardContext
from controller.config import Layout
from controller.faultlog import FaultLog
from controller.faultlog.findings import record_selftest_faults
from controller.jsonin import JsonObject
from controller.power import PowerLimiter
from controller.protocol import commands as c
from controller.screenmap import CardSettings
from controller.selftest.history import History
from controller.service import quickactions, views
from controller.service.boardjobs import BoardJobs
from controller.service.busowner import BusOwner
from controller.service.jobs import QUESTION_TIMEOUT_S, Job, JobBody, JobManager
from controller.service.brightness import BrightnessSet, WallBrightness
from controller.service.outputwatch import OutputWatch
from controller.service.quickactions import CardFailure, PatternShown
from controller.service.watch import CardWatch, bus_timeout_recorder
from controller.upgrade.bundles.health import health_check

__all__ = ["BrightnessSet", "CardFailure", "PatternShown", "Service"]


class Service:
    """The running controller: builds the board context and the parts, and delegates to them."""

    def __init__(self, layout: Layout, settings: CardSettings, owner: BusOwner, state_dir: Path, *,
                 screen_file: str, bus_url: str, fingerprint: str = "", frame_loop=None,
                 schedule: str = "builtin", watch_interval_s: float = 0.0,
                 question_timeout_s: float = QUESTION_TIMEOUT_S, picture=None) -> None:
        self.owner = owner
        self.bus_url = bus_url
        self.fingerprint = fingerprint
        #: The current limiter (``controller.power``), when the screen file has ``[power]``:
        #: the watch hands it the cards' current readings (``measured``), status shows it.
        self.power: PowerLimiter | None = None
        self.schedule = schedule          # "builtin": the service runs the quarterly inspection
        self.jobs = JobManager(question_timeout_s)
        #: Set unless this start is a controller upgrade on trial still waiting for its health
        #: verdict (``api_upgrade_controller``); card upgrades wait for it.
        self.trial_judged = asyncio.Event()
        self.trial_judged.set()
        #: Cards a discovery or commissioning identified: address → summary.
        self.cards: dict[int, JsonObject] = {}
        self.started = time.time()
        state_dir = Path(state_dir)
        (state_dir / "reports").mkdir(parents=True, exist_ok=True)
        # A damaged fault log is moved aside, not fatal: a controller that runs the wall and
        # starts a new log beats one that will not start.  The note is the first fault filed.
        faults, note = FaultLog.open_or_recover(state_dir / "faults.db")
        if note:
            faults.record("faultlog.recovered", "warning", "controller", {"text": note})
        #: The wall's current brightness (hand or schedule); the checks compare cards with it.
        self.brightness = WallBrightness(owner, [cab.address for cab in layout.cabinets],
                                         settings.default_level, state_dir, faults)
        self.board = BoardContext(bus=owner, layout=layout, settings=settings, state_dir=state_dir,
                                  history=History(state_dir / "selftest.db"), faults=faults,
                                  frame_loop=frame_loop, picture=picture, brightness=self.brightness,
                                  screen_file=screen_file, controller_info=self.controller_info)
        owner.on_timeout = bus_timeout_recorder(faults)
        self.board_jobs = BoardJobs(self.board, owner, self.jobs, self.cards)
        self.watch = (CardWatch(self.board, watch_interval_s, bus_busy=self.board_jobs.bus_busy)
                      if watch_interval_s else None)
        #: GET_OUTPUT every ~2 s while video flows to the cards: card.no_video, measured current.
        self.output_watch = (OutputWatch(self.board, bus_busy=self.board_jobs.bus_busy,
                                         power=lambda: self.power)
                             if frame_loop is not None and watch_interval_s else None)

    # ---------------------------------------------------------------- the board's parts, read-only

    @property
    def layout(self) -> Layout:
        """The screen's cabinets and their cards, for the API's handlers (card targets, views)."""
        return self.board.layout

    @property
    def settings(self) -> CardSettings:
        """The screen file's ``[cards]`` table, which the brightness and picture routes check against."""
        return self.board.settings

    @property
    def state_dir(self) -> Path:
        """``--state``: where the API's modules keep their files (uploads, plans, keys, journals)."""
        return self.board.state_dir

    @property
    def reports_dir(self) -> Path:
        """Where acceptance and inspection reports are written and served from."""
        return self.board.reports_dir

    @property
    def screen_file(self) -> str:
        """The screen file's name as reports and ``status`` quote it."""
        return self.board.screen_file

    @property
    def frame_loop(self):
        """The running frame loop (:class:`~controller.service.frameloop.FrameLoop`), None under
        ``--no-frames``; read from the board each time, so a board replaced with another loop
        (a restarted sender, a test) is the one the API sees."""
        return self.board.frame_loop

    @property
    def picture(self):
        """The live picture (:mod:`controller.picture.live`), None when not wired (tests)."""
        return self.board.picture

    @property
    def faults(self) -> FaultLog:
        """The fault log, never None here (the service always opens one), for the fault routes
        and the modules that file what they find."""
        assert self.board.faults is not None       # the service always opens one
        return self.board.faults

    @property
    def history(self) -> History:
        """The stored self-test runs as the concrete class, for the self-test routes and scheduler."""
        assert isinstance(self.board.history, History)
        return self.board.history

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start what runs by itself (frame loop, watches, brightness schedule) once the API's
        event loop exists."""
        if self.frame_loop is not None:
            await self.frame_loop.start()
        if self.watch is not None:
            self.watch.start()
        if self.output_watch is not None:
            self.output_watch.start()
        self.brightness.start()

    async def stop(self) -> None:
        """Stop everything :meth:`start` started, cancel the jobs, then close the bus and the
        databases, so a restart finds them whole."""
        await self.brightness.stop()
        if self.watch is not None:
            await self.watch.stop()
        if self.output_watch is not None:
            await self.output_watch.stop()
        await self.jobs.shutdown()
        if self.frame_loop is not None:
            await self.frame_loop.stop()
        await asyncio.get_running_loop().run_in_executor(None, self.owner.close)
        await asyncio.get_running_loop().run_in_executor(None, self.faults.close)
        self.history.close()

    # ---------------------------------------------------------------- views (.views)

    def controller_info(self) -> JsonObject:
        """The controller as reports name it (host, bus, fingerprint, software); the board
        context asks for it when a report is written."""
        return views.controller_info(self.bus_url, self.owner.bus.baud, self.fingerprint)

    def status(self) -> JsonObject:
        """``GET /api/v1/status`` (:func:`.views.status`), with the service's own counters and watches."""
        return views.status(self.board, self.jobs, bus_url=self.bus_url,
                            baud=self.owner.bus.baud, started=self.started, power=self.power,
                            card_output=self.output_watch, brightness=self.brightness)

    def cards_view(self) -> JsonObject:
        """``GET /api/v1/cards``: configured, identified and watched cards (:func:`.views.cards_view`)."""
        return views.cards_view(self.board, self.cards,
                                self.watch.answered if self.watch is not None else {})

    def reports(self) -> list[JsonObject]:
        """``GET /api/v1/reports``: the stored reports, newest first (:func:`.views.reports`)."""
        return views.reports(self.reports_dir)

    def report_path(self, name: str) -> Path:
        """The file of one stored report; a name that could leave the directory is refused, a
        missing one is ``NotFound``."""
        return views.report_path(self.reports_dir, name)

    # ---------------------------------------------------------------- jobs (.boardjobs)

    def start_bus_job(self, kind: str, body: JobBody, params: JsonObject, who: str,
                      role: str = "installer") -> Job:
        """Start a job that holds the bus to itself (the card-firmware upgrade starts one here);
        refused while another such job runs."""
        return self.board_jobs.start_bus_job(kind, body, params, who, role)

    def start_commissioning(self, unattended: bool, who: str, lang: str = "en") -> Job:
        """``POST /api/v1/commission``: the whole commissioning run and its acceptance report, as a job."""
        return self.board_jobs.start_commissioning(unattended, who, lang)

    def start_discovery(self, who: str) -> Job:
        """``POST /api/v1/discover``: find the cards on the bus; they become the known cards."""
        return self.board_jobs.start_discovery(who)

    def start_detection(self, addresses: list[int] | None, who: str) -> Job:
        """``POST /api/v1/detect``: dead-LED detection on the given cards (None: all), as a job."""
        return self.board_jobs.start_detection(addresses, who)

    def start_selftest(self, profile: str, trigger: str, who: str) -> Job:
        """A self-test run of ``profile``, from the API or the quarterly scheduler (``trigger``)."""
        return self.board_jobs.start_selftest(profile, trigger, who)

    def record_selftest_faults(self, report: JsonObject) -> None:
        """File a finished run's warnings and failures in the fault log (and resolve what it
        no longer finds); kept here for the callers that hold only the service."""
        record_selftest_faults(self.faults, report)

    # ---------------------------------------------------------------- health (controller.upgrade.bundles.health)

    async def health_check(self) -> tuple[bool, str]:
        """The upgrade trial's verdict (healthy?, why): what the confirmation and
        ``host/demo_upgrade.py`` ask after a controller upgrade."""
        return await health_check(self.board)

    # ---------------------------------------------------------------- quick actions (.quickactions)

    async def show_pattern(self, request: c.TestPattern,
                           addresses: list[int] | None) -> PatternShown:
        """``POST /api/v1/pattern``: show a test pattern on the given cards (None: all), at once, no job."""
        return await quickactions.show_pattern(self.board, request, addresses)
