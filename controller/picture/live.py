"""The live picture: the pipeline built from the screen file and the stored state, changed
at run time between two frames.

Every change (settings, a calibration imported, activated or rolled back) goes the
same way, one at a time:

1. the new state is checked and the new pipeline built, off the event loop (a
   matrix calibration takes a moment to re-lay); a refusal here changes nothing;
2. the new state is written (:mod:`.store`); if that fails nothing changes either;
3. the frame loop is handed the new pipeline (``FrameLoop.use_pipeline``), which it
   takes before its next frame: a frame is computed by one pipeline from start to
   end, so none mixes old and new settings;
4. the change is filed in the fault log's journal with who made it (an ``info``
   fault of code ``picture.*``, closed at once with ``cleared_by`` = the token's
   name, so each change is its own row in ``ledwarden faults list --state all``).

At start-up a stored state that cannot be read (a damaged ``correction.json`` or
calibration version) is not fatal: that part falls back to the screen file, and a
``picture.stored_state`` warning says so.  A bad screen file is refused, as the
rest of the screen file is.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from controller import fastpath
from controller.config import Layout
from controller.errors import ConfigError, LedwardenError, NotFound
from controller.jsonin import JsonObject
from controller.picture import calibration
from controller.picture.settings import Correction, ScreenCorrection
from controller.picture.store import CabinetIndex, PictureStore

log = logging.getLogger("ledwarden.picture")


class Journal(Protocol):
    """The part of :class:`controller.faultlog.FaultLog` the picture files its changes in."""

    def record(self, code: str, severity: str, source: str, details: JsonObject | None = None): ...

    def resolve(self, code: str, source: str, *, by: str = "auto"): ...


class PipelineUser(Protocol):
    """The frame loop, as far as the picture is concerned."""

    def use_pipeline(self, pipeline: Any) -> None: ...


@dataclass(frozen=True)
class Inputs:
    """Everything one pipeline is built from, kept so the self-test can rebuild it."""

    settings: Correction
    #: Card address → that cabinet's calibration array (cabinet orientation).
    arrays: dict[int, np.ndarray]
    #: Card address → where its calibration came from, for the views.
    origin: dict[int, dict[str, Any]]
    overrides: dict[str, Any] = field(default_factory=dict)

    def lut(self) -> np.ndarray:
        return self.settings.lut()

    def gains(self) -> np.ndarray:
        return self.settings.gains()

    def calib(self, layout: Layout) -> np.ndarray | None:
        return calibration.screen_array(layout, self.arrays)


class Picture:
    """The picture the wall shows and the one way to change it (see the module docstring)."""

    def __init__(self, layout: Layout, screen: ScreenCorrection, store: PictureStore, *,
                 threads: int | None = None, journal: Journal | None = None) -> None:
        self.layout = layout
        self.screen = screen
        self.store = store
        self.threads = threads
        self.journal = journal
        self.frame_loop: PipelineUser | None = None
        self.notes: list[str] = []          # stored state that could not be used at start
        self.inputs = self._load()
        self.pipeline: Any = None
        self._lock = asyncio.Lock()

    # ---------------------------------------------------------------- start-up

    def _screen_array(self, address: int) -> np.ndarray | None:
        path = self.screen.calibration.get(address)
        return None if path is None else calibration.read_file(path, self.layout.cabinet(address))

    def _load(self) -> Inputs:
        """The screen file's state with the stored one over it; bad stored parts noted."""
        settings = self.screen.settings
        overrides: dict[str, Any] = {}
        try:
            stored = self.store.correction()
            overrides = {k: stored[k] for k in ("curve", "gamma", "white") if k in stored}
            settings = settings.changed(overrides, "stored correction.json")
        except ConfigError as exc:
            overrides = {}
            self.notes.append(f"stored correction settings not used: {exc}")
        arrays: dict[int, np.ndarray] = {}
        origin: dict[int, dict[str, Any]] = {}
        for cab in self.layout.cabinets:
            array = self._screen_array(cab.address)   # a bad screen file is fatal, as elsewhere
            if array is not None:
                arrays[cab.address] = array
                origin[cab.address] = {"from": "screen file",
                                       "file": str(self.screen.calibration[cab.address])}
            try:
                index = self.store.index(cab.address)
                if index.active is not None:
                    stored_array = self.store.load(cab.address, index.active)
                    arrays[cab.address] = calibration.check(
                        stored_array, cab, f"stored version {index.active}")
                    origin[cab.address] = {"from": "stored", "version": index.active}
            except (ConfigError, LedwardenError) as exc:
                self.notes.append(f"cabinet {cab.address}: stored calibration not used: {exc}")
        return Inputs(settings, arrays, origin, overrides)

    def build(self, inputs: Inputs | None = None) -> Any:
        """A pipeline for ``inputs`` (default: the current ones); blocking, checks everything."""
        inputs = inputs or self.inputs
        return fastpath.Pipeline(self.layout, inputs.lut(), inputs.gains(),
                                 inputs.calib(self.layout), threads=self.threads)

    def start(self) -> Any:
        """The first pipeline, for the frame loop."""
        self.pipeline = self.build()
        return self.pipeline

    def file_notes(self) -> None:
        """File stored state that could not be used at start as one warning (once the fault
        log is there): one condition, "the stored picture is not what is shown", one fault."""
        for note in self.notes:
            log.warning("%s", note)
        if self.notes and self.journal is not None:
            self.journal.record("picture.stored_state", "warning", "controller",
                                {"text": "; ".join(self.notes)[:2000]})

    # ---------------------------------------------------------------- views

    def correction_view(self) -> dict[str, Any]:
        stored = {}
        try:
            stored = self.store.correction()
        except ConfigError:
            pass
        return {**self.inputs.settings.as_dict(),
                "screen_file": self.screen.settings.as_dict(),
                "overrides": self.inputs.overrides,
                "set_by": stored.get("set_by") if self.inputs.overrides else None,
                "set_at": stored.get("set_at") if self.inputs.overrides else None,
                "calibrated_cabinets": sorted(self.inputs.arrays)}

    def calibration_view(self) -> dict[str, Any]:
        out = []
        for cab in self.layout.cabinets:
            try:
                index = self.store.index(cab.address).as_dict()
            except ConfigError as exc:
                index = {"error": str(exc), "versions": [], "history": [], "active": None}
            array = self.inputs.arrays.get(cab.address)
            out.append({"cabinet": cab.address, "width": cab.width, "height": cab.height,
                        "in_use": self.inputs.origin.get(cab.address),
                        "form": None if array is None else ("matrix" if array.ndim == 4 else "gain"),
                        "screen_file": (str(self.screen.calibration[cab.address])
                                        if cab.address in self.screen.calibration else None),
                        "active": index["active"], "history": index["history"],
                        "versions": index["versions"]})
        return {"cabinets": out}

    # ---------------------------------------------------------------- changes

    def _cabinet(self, address: int):
        try:
            return self.layout.cabinet(address)
        except KeyError:
            known = ", ".join(str(c.address) for c in self.layout.cabinets)
            raise NotFound(f"the screen has no cabinet {address} (cabinets: {known})") from None

    async def _change(self, inputs: Inputs, persist, code: str, who: str,
                      details: dict[str, Any]) -> None:
        """Steps 1–4 of the module docstring; the caller holds the lock."""
        pipeline = await asyncio.to_thread(self.build, inputs)
        await asyncio.to_thread(_stored, persist)
        self.inputs, self.pipeline = inputs, pipeline
        if self.frame_loop is not None:
            self.frame_loop.use_pipeline(pipeline)
        log.info("%s by %s: %s", code, who or "?", details)
        if self.journal is not None:
            journal = self.journal

            def file() -> None:
                journal.record(code, "info", "controller", {**details, "by": who})
                journal.resolve(code, "controller", by=who or "?")
            await asyncio.to_thread(file)

    async def set_correction(self, changes: dict[str, Any], who: str) -> dict[str, Any]:
        """Apply ``changes`` (curve, gamma, white) over the current settings, or ``reset``."""
        changes = {k: v for k, v in changes.items() if not (k == "reset" and v is False)}
        async with self._lock:
            if changes.get("reset"):
                if len(changes) > 1:
                    raise ConfigError("reset goes alone: it returns to the screen file's settings")
                settings, overrides = self.screen.settings, {}

                def persist() -> None:
                    self.store.clear_correction()
            else:
                settings = self.inputs.settings.changed(changes)
                overrides = {**self.inputs.overrides, **changes}
                if "gamma" in changes and "curve" not in changes:
                    overrides["curve"] = "power"
                if settings.curve == "cie1931":
                    overrides.pop("gamma", None)
                stored = dict(overrides)

                def persist() -> None:
                    self.store.save_correction(stored, who)
            inputs = Inputs(settings, self.inputs.arrays, self.inputs.origin, overrides)
            await self._change(inputs, persist, "picture.correction.changed", who,
                               {"settings": settings.as_dict(), "reset": bool(changes.get("reset"))})
            return self.correction_view()

    async def import_calibration(self, address: int, data: bytes, fmt: str, who: str, *,
                                 activate: bool, source: str = "") -> dict[str, Any]:
        """Check a cabinet's calibration file and store it as its next version."""
        cab = self._cabinet(address)
        array = await asyncio.to_thread(calibration.parse, data, fmt, cab, source or fmt)
        async with self._lock:
            if not activate:
                index = await asyncio.to_thread(_stored, lambda: self.store.add(
                    address, array, source=source or fmt, who=who, activate=False))
                await asyncio.to_thread(self._file_only, "picture.calibration.imported", who,
                                        {"cabinet": address, "version": index.versions[-1]["version"]})
                return index.as_dict()
            box: list[CabinetIndex] = []
            number = max([v["version"] for v in self.store.index(address).versions] + [0]) + 1

            def persist() -> None:
                box.append(self.store.add(address, array, source=source or fmt, who=who,
                                          activate=True))
            inputs = self._with(address, array, {"from": "stored", "version": number})
            await self._change(inputs, persist, "picture.calibration.imported", who,
                               {"cabinet": address, "version": number, "activated": True})
            return box[0].as_dict()

    def _file_only(self, code: str, who: str, details: dict[str, Any]) -> None:
        if self.journal is not None:
            self.journal.record(code, "info", "controller", {**details, "by": who})
            self.journal.resolve(code, "controller", by=who or "?")

    def _with(self, address: int, array: np.ndarray | None, origin: JsonObject | None) -> Inputs:
        arrays, origins = dict(self.inputs.arrays), dict(self.inputs.origin)
        if array is None:
            arrays.pop(address, None)
            origins.pop(address, None)
        else:
            arrays[address] = array
            assert origin is not None
            origins[address] = origin
        return Inputs(self.inputs.settings, arrays, origins, self.inputs.overrides)

    async def activate(self, address: int, version: int, who: str) -> dict[str, Any]:
        cab = self._cabinet(address)
        async with self._lock:
            index = self.store.index(address)
            index.version(version)                 # NotFound before anything is built
            if index.active == version:
                raise LedwardenError(f"cabinet {address}: version {version} is already active")
            array = await asyncio.to_thread(self.store.load, address, version)
            calibration.check(array, cab, f"stored version {version}")
            box: list[CabinetIndex] = []
            await self._change(self._with(address, array, {"from": "stored", "version": version}),
                               lambda: box.append(self.store.activate(address, version)),
                               "picture.calibration.activated", who,
                               {"cabinet": address, "version": version})
            return box[0].as_dict()

    async def rollback(self, address: int, who: str) -> dict[str, Any]:
        """The version active before this one, or the screen file's calibration, or none."""
        cab = self._cabinet(address)
        async with self._lock:
            index = self.store.index(address)
            if not index.history:
                raise LedwardenError(f"cabinet {address} has no stored calibration active, so "
                                     f"there is nothing to roll back")
            before = index.history[:-1]
            version: int | None = before[-1] if before else None
            if version is not None:
                stored = await asyncio.to_thread(self.store.load, address, version)
                calibration.check(stored, cab, f"stored version {version}")
                inputs = self._with(address, stored, {"from": "stored", "version": version})
            else:
                screen = await asyncio.to_thread(self._screen_array, address)
                inputs = self._with(address, screen, None if screen is None else {
                    "from": "screen file", "file": str(self.screen.calibration[address])})
            box: list[CabinetIndex] = []
            await self._change(inputs, lambda: box.append(self.store.rollback(address)),
                               "picture.calibration.rolled_back", who,
                               {"cabinet": address, "from": index.active, "to": version})
            return box[0].as_dict()


def _stored(write: Callable[[], Any]) -> Any:
    """Run a store write; a disk that refuses it (full, read-only) is said in words, and
    nothing was swapped: the picture on the wall is unchanged."""
    try:
        return write()
    except OSError as exc:
        raise LedwardenError(f"the change could not be stored on the board "
                             f"({exc.strerror or exc}); the picture is unchanged. Free space "
                             f"on the state directory's disk and try again") from None
