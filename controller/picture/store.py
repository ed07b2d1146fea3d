"""What was changed at run time, kept in files that survive a restart and a power cut.

::

    STATE/correction.json                 settings set through the API (curve, gamma, white)
    STATE/calibration/0x05/index.json     cabinet 5's versions and which one is active
    STATE/calibration/0x05/v3.npz         one imported version (the .npz form, int16 Q1.14)

Every file is replaced whole through :class:`controller.upgrade.steps.Steps`
(temporary file, fsync, rename, fsync of the folder), the project's one way of
writing durably, so a reader or a reboot finds the old content or the new,
never a mix.  A version's ``.npz`` is written before the index names it: a cut
between the two leaves a file no index points at, which the next import of
that cabinet overwrites.  ``LEDWARDEN_CUT_AFTER=N`` kills the process after
the Nth durable step, which is how the tests prove it.

An index keeps the newest :data:`KEEP` versions (never dropping the active
one) and ``history``, the versions activated in turn, newest last: rollback
drops the last and activates the one before, or, when there is none, returns
the cabinet to the screen file's calibration (or to none).
"""

from __future__ import annotations

import io
import zipfile
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from controller.cardaddress import hex_address
from controller.errors import ConfigError, LedwardenError, NotFound
from controller.jsonin import JsonObject
from controller.picture import calibration
from controller.timeutil import utc_text
from controller.upgrade.steps import Steps

KEEP = 5
CORRECTION = "correction.json"
CALIBRATION = "calibration"


def _write_json(path: Path, data: JsonObject) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Steps().replace(path, json.dumps(data, indent=1, sort_keys=True).encode() + b"\n")


def _read_json(path: Path) -> JsonObject | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc}); move it aside to start from the screen "
                          f"file's settings") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a JSON object; move it aside to start from the screen "
                          f"file's settings")
    return data


@dataclass
class CabinetIndex:
    """One cabinet's ``index.json``."""

    address: int
    versions: list[dict[str, Any]] = field(default_factory=list)
    history: list[int] = field(default_factory=list)

    @property
    def active(self) -> int | None:
        return self.history[-1] if self.history else None

    def as_dict(self) -> dict[str, Any]:
        return {"cabinet": self.address, "active": self.active, "history": self.history,
                "versions": self.versions}

    def version(self, number: int) -> dict[str, Any]:
        for v in self.versions:
            if v["version"] == number:
                return v
        kept = ", ".join(str(v["version"]) for v in self.versions) or "none"
        raise NotFound(f"cabinet {self.address} has no calibration version {number} "
                       f"(kept: {kept})")


class PictureStore:
    """The run-time picture state under ``state_dir``; one writer (the service)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)

    # ---------------------------------------------------------------- settings

    def correction(self) -> dict[str, Any]:
        """The settings set at run time (``{}`` when none): what overrides the screen file."""
        data = _read_json(self.state_dir / CORRECTION) or {}
        return data

    def save_correction(self, settings: dict[str, Any], who: str) -> None:
        _write_json(self.state_dir / CORRECTION,
                    {**settings, "set_by": who, "set_at": utc_text()})

    def clear_correction(self) -> None:
        path = self.state_dir / CORRECTION
        if path.exists():
            Steps().unlink(path)
            Steps().fsync_dir(path.parent)

    # ---------------------------------------------------------------- calibration

    def _dir(self, address: int) -> Path:
        return self.state_dir / CALIBRATION / hex_address(address)

    def index(self, address: int) -> CabinetIndex:
        data = _read_json(self._dir(address) / "index.json")
        if data is None:
            return CabinetIndex(address)
        return CabinetIndex(address, list(data.get("versions", [])), list(data.get("history", [])))

    def cabinets(self) -> list[int]:
        """Addresses with an index, in order."""
        root = self.state_dir / CALIBRATION
        if not root.is_dir():
            return []
        found = []
        for p in root.iterdir():
            try:
                if (p / "index.json").is_file():
                    found.append(int(p.name, 16))
            except ValueError:
                continue
        return sorted(found)

    def load(self, address: int, version: int) -> np.ndarray:
        """A stored version's array (checked again: the file could have been damaged)."""
        index = self.index(address)
        entry = index.version(version)
        path = self._dir(address) / entry["file"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cabinet {address}: calibration version {version} ({path}) cannot "
                              f"be read: {exc.strerror or exc}") from None
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                return archive[archive.files[0]]
        except (OSError, ValueError, EOFError, IndexError, KeyError, zipfile.BadZipFile) as exc:
            raise ConfigError(f"cabinet {address}: calibration version {version} ({path}) is "
                              f"damaged ({exc}); import it again") from None

    def add(self, address: int, calib: np.ndarray, *, source: str, who: str,
            activate: bool) -> CabinetIndex:
        """Store ``calib`` (already checked) as the cabinet's next version."""
        index = self.index(address)
        number = max([v["version"] for v in index.versions] + [0]) + 1
        folder = self._dir(address)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"v{number}.npz"
        Steps().replace(folder / name, calibration.to_npz(calib))
        index.versions.append({"version": number, "file": name, "source": source[:200],
                               "form": "matrix" if calib.ndim == 4 else "gain",
                               "imported_by": who, "imported_at": utc_text()})
        if activate:
            index.history.append(number)
        dropped = self._trim(index)
        _write_json(folder / "index.json", index.as_dict())
        for entry in dropped:
            (folder / entry["file"]).unlink(missing_ok=True)
        return index

    def activate(self, address: int, version: int) -> CabinetIndex:
        index = self.index(address)
        index.version(version)
        if index.active == version:
            raise LedwardenError(f"cabinet {address}: version {version} is already active")
        index.history.append(version)
        index.history = index.history[-4 * KEEP:]
        _write_json(self._dir(address) / "index.json", index.as_dict())
        return index

    def rollback(self, address: int) -> CabinetIndex:
        """Back to the version active before the current one (or to the screen file's)."""
        index = self.index(address)
        if not index.history:
            raise LedwardenError(f"cabinet {address} has no stored calibration active, so there "
                                 f"is nothing to roll back")
        index.history.pop()
        _write_json(self._dir(address) / "index.json", index.as_dict())
        return index

    @staticmethod
    def _trim(index: CabinetIndex) -> list[dict[str, Any]]:
        """Drop the oldest versions beyond :data:`KEEP`, never the active one."""
        dropped = []
        while len(index.versions) > KEEP:
            oldest = next((v for v in index.versions if v["version"] != index.active), None)
            if oldest is None:
                break
            index.versions.remove(oldest)
            dropped.append(oldest)
        kept = {v["version"] for v in index.versions}
        history: list[int] = []
        for n in index.history:          # a dropped version leaves its neighbours side by side
            if n in kept and (not history or history[-1] != n):
                history.append(n)
        index.history = history
        return dropped
