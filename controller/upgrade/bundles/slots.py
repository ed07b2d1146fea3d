"""The A/B slot store under ``STATE/slots``: two self-contained environments and one pointer.

Layout (see ``docs/upgrades.md``)::

    STATE/slots/
      state.json        which slot is current, which one a failed trial goes back
                        to, the trial (slot, transaction, boot count), the
                        anti-rollback floor, the last transaction's outcome
      .lock             flock'd by whoever changes the store (installer, guard)
      a/  b/            a slot: env/ (a venv without pip), lib/<group>/ (the
                        installed wheels), slot.json (what is in it, written
                        last), health.json (the trial's verdict, written by the
                        service running from it)
      .new-TXN/         a slot being built; renamed to a/ or b/ when complete
      .old-TXN/         the inactive slot's previous content, on its way out

``state.json`` is the only pointer: a slot runs because state.json names it,
and it is changed only by :meth:`SlotStore.save`, which writes a temporary
file, fsyncs it, renames it over the old one and fsyncs the directory — the
rename is the atomic switch.  Everything else a reboot can find half-done
(``.new-*``, ``.old-*``, ``*.tmp``) is unreferenced and removed by
:meth:`SlotStore.recover`.  A slot whose ``slot.json`` is missing is empty.

The file formats are a contract between versions: the boot guard of the base
installation reads what any slot's service writes (``health.json``) and the
other way round, so fields are only ever added.  Only the standard library
and ``packaging`` are imported here, because the boot guard imports this
module and must stay small and start fast.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from packaging.version import InvalidVersion, Version

from controller.errors import LedwardenError
from controller.timeutil import utc_now
from controller.upgrade.steps import Steps, stop_children_under

SLOTS = ("a", "b")
BASE = "base"
FORMAT = 1
STATE_FILE, SLOT_FILE, HEALTH_FILE, LOCK_FILE = "state.json", "slot.json", "health.json", ".lock"
STAGING, TRASH = ".new-", ".old-"


class SlotStateError(LedwardenError):
    """``state.json`` or a slot's metadata is unreadable (disk damage: it is only ever renamed
    into place whole)."""


def clean_env(**extra: str) -> dict:
    """The environment for a slot's processes: none of the caller's PYTHON*/PIP* settings
    (a PYTHONPATH would make the new slot import the old one's code)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))}
    return env | {"PIP_CONFIG_FILE": os.devnull} | extra


def version_of(text: str, what: str) -> Version:
    """A PEP 440 version, or an error naming what held the bad text."""
    try:
        return Version(str(text))
    except InvalidVersion:
        raise LedwardenError(f"{what} {text!r} is not a version (PEP 440, e.g. 1.4.0)") from None


@dataclass
class BootState:
    """What ``state.json`` holds.  ``current`` None means the base installation runs."""

    current: str | None = None
    #: Where a failed trial of ``current`` goes back to (None: the base installation).
    previous: str | None = None
    #: Anti-rollback: bundles older than this are refused (raised on each confirmation).
    floor: str = "0"
    #: {"slot", "transaction", "version", "from_version", "boots", "since"} while on trial.
    trial: dict | None = None
    #: The last transaction: {"transaction", "outcome", "from_version", "version", "slot",
    #: "reason", "time"}; outcome is trial, confirmed or rolled-back.
    last: dict | None = None
    format: int = field(default=FORMAT)

    @classmethod
    def from_json(cls, data: dict) -> "BootState":
        known = {k: data[k] for k in ("current", "previous", "floor", "trial", "last", "format")
                 if k in data}
        state = cls(**known)
        for name in (state.current, state.previous):
            if name is not None and name not in SLOTS:
                raise SlotStateError(f"state.json names slot {name!r}; slots are a and b")
        return state


class SlotStore:
    """The slots of one state directory; every change goes through a :class:`Steps`."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.root = self.state_dir / "slots"

    # ---------------------------------------------------------------- pointer

    def load(self) -> BootState:
        path = self.root / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return BootState()
        except (OSError, ValueError) as exc:
            raise SlotStateError(f"{path} is unreadable ({exc}); the boot guard falls back to a "
                                 f"confirmed slot. Inspect it, or remove it to boot the base "
                                 f"installation") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SlotStateError(f"{path} is not a format-{FORMAT} slot state")
        return BootState.from_json(data)

    def save(self, state: BootState, steps: Steps) -> None:
        self.ensure(steps)
        steps.replace(self.root / STATE_FILE, _json(asdict(state)))

    def ensure(self, steps: Steps) -> None:
        """Make ``slots/`` durably (its name fsync'd into the state directory)."""
        if not self.root.is_dir():
            self.state_dir.mkdir(parents=True, exist_ok=True)
            steps.mkdir(self.root)
            steps.fsync_dir(self.state_dir)

    @contextmanager
    def lock(self, steps: Steps) -> Iterator[None]:
        """Exclusive use of the store across processes; the kernel drops it if the holder dies."""
        self.ensure(steps)
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # ---------------------------------------------------------------- slots

    def slot_dir(self, name: str) -> Path:
        if name not in SLOTS:
            raise ValueError(f"no slot {name!r}")
        return self.root / name

    def meta(self, name: str) -> dict | None:
        """The slot's ``slot.json`` if the slot is complete, else None (empty or broken)."""
        path = self.slot_dir(name) / SLOT_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("slot") != name:
            return None
        if not all((self.slot_dir(name) / p).is_dir() for p in data.get("paths", [])):
            return None
        return data if self.python(name).exists() else None

    def python(self, name: str) -> Path:
        return self.slot_dir(name) / "env" / "bin" / "python"

    def health(self, name: str) -> dict | None:
        try:
            data = json.loads((self.slot_dir(name) / HEALTH_FILE).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def record_health(self, name: str, transaction: str, healthy: bool, detail: str,
                      version: str, steps: Steps) -> None:
        """The trial's verdict, durable before this returns; an OSError means NOT recorded."""
        doc = {"format": FORMAT, "transaction": transaction, "healthy": bool(healthy),
               "detail": detail, "version": version, "time": utc_now()}
        steps.replace(self.slot_dir(name) / HEALTH_FILE, _json(doc))

    def verdict(self, name: str, transaction: str) -> bool | None:
        """True/False if the service in ``name`` judged trial ``transaction``, else None."""
        doc = self.health(name)
        if doc is None or doc.get("transaction") != transaction:
            return None
        return bool(doc.get("healthy"))

    def confirmed(self, name: str) -> bool:
        meta = self.meta(name)
        return meta is not None and self.verdict(name, meta["transaction"]) is True

    @staticmethod
    def inactive(state: BootState) -> str:
        """The slot an install writes: never the current one."""
        return "b" if state.current == "a" else "a"

    # ---------------------------------------------------------------- recovery

    def leftovers(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir()
                      if p.name.startswith((STAGING, TRASH)) or p.name.endswith(".tmp"))

    def recover(self, steps: Steps) -> list[str]:
        """Remove what an interrupted install or state write left behind; nothing refers to it."""
        removed = []
        for path in self.leftovers():
            if path.name.startswith(STAGING):
                stop_children_under(path)   # or a killed installer's pip writes on into it
            if path.is_dir() and not path.is_symlink():
                steps.rmtree(path)
            else:
                steps.unlink(path)
            removed.append(path.name)
        for name in SLOTS:
            tmp = self.slot_dir(name) / (HEALTH_FILE + ".tmp")
            if tmp.is_file():
                steps.unlink(tmp)
                removed.append(f"{name}/{tmp.name}")
        if removed:
            steps.fsync_dir(self.root)
        return removed

    def reclaimable(self, name: str) -> int:
        """Bytes freed by emptying slot ``name``: files hard-linked elsewhere free nothing."""
        total, root = 0, self.slot_dir(name)
        for dirpath, _dirs, files in os.walk(root):
            for f in files:
                st = os.lstat(os.path.join(dirpath, f))
                if st.st_nlink == 1:
                    total += st.st_blocks * 512
        return total

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root if self.root.is_dir() else self.state_dir).free

    # ---------------------------------------------------------------- views

    def describe(self) -> dict:
        """Both slots, the pointer and the trial, as the API and ``controller slots`` show them."""
        try:
            state, problem = self.load(), None
        except SlotStateError as exc:
            state, problem = BootState(), str(exc)
        last = state.last or {}
        slots = {}
        for name in SLOTS:
            meta = self.meta(name)
            if meta is None:
                role = "empty"
            elif state.trial and state.trial.get("slot") == name:
                role = "trial"
            elif name == state.current:
                role = "current"
            elif (last.get("outcome") == "rolled-back" and last.get("slot") == name
                  and last.get("transaction") == meta["transaction"]):
                role = "rolled-back"
            elif name == state.previous:
                role = "previous"
            else:
                role = "inactive"
            health = self.health(name) if meta else None
            slots[name] = {
                "role": role,
                "version": meta and meta["version"],
                "installed": meta and meta["installed"],
                "transaction": meta and meta["transaction"],
                "key_id": meta and meta.get("key_id"),
                "confirmed": bool(meta and self.verdict(name, meta["transaction"]) is True),
                "health": health if health and meta and
                health.get("transaction") == meta["transaction"] else None,
            }
        return {"current": state.current or BASE, "previous": state.previous or BASE,
                "floor": state.floor, "trial": state.trial, "last_transaction": state.last,
                "slots": slots, "problem": problem}


def _json(doc: dict) -> bytes:
    return json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"
