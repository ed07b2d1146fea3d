"""The screen file: which cabinets make up the wall, where they sit, how they are wired.

A screen file is TOML (``docs/spec/correction.md`` section 4): one
``[screen]`` table, module types under ``[modules.NAME]`` and one
``[[cabinets]]`` entry per receiving card.  :func:`load_screen` reads it into
a :class:`Layout` of small frozen dataclasses that the fast path, the
commissioning job and the card configuration all read, so a layout that
loads is one every consumer can trust: the checks live here, once.

Every broken rule is reported, not just the first, in one
:class:`~controller.errors.ConfigError` whose message has a line per problem
naming the cabinet (its place in the file and its address) and the rule, so
an installer fixes a file in one pass.  The problems are also on the
exception's ``problems`` attribute.  Keys the spec does not define are
rejected inside ``[screen]``, ``[modules.*]`` and ``[[cabinets]]`` (a
misspelt ``rotaton`` would otherwise pass silently); other top-level tables
are left to the rest of the project.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.cardaddress import ADDR_FIRST_CARD, ADDR_LAST_CARD
from controller.errors import ConfigError

CHAINS = ("rows", "serpentine")
ROTATIONS = (0, 180)


@dataclass(frozen=True)
class ModuleType:
    """One LED module type: ``width`` × ``height`` pixels driven at 1/``scan``."""

    name: str
    width: int
    height: int
    scan: int

    @property
    def groups(self) -> int:
        """Rows driven together from one scan line (HUB75's R1/R2 give 2)."""
        return self.height // self.scan


@dataclass(frozen=True)
class Cabinet:
    """One cabinet, driven by the receiving card at ``address``.

    Field names are the screen file's keys; ``module`` is the resolved
    :class:`ModuleType` (its ``name`` is the key's value).
    """

    address: int
    x: int
    y: int
    module: ModuleType
    modules_x: int
    modules_y: int
    chain: str
    rotation: int

    @property
    def width(self) -> int:
        return self.modules_x * self.module.width

    @property
    def height(self) -> int:
        return self.modules_y * self.module.height

    @property
    def module_count(self) -> int:
        return self.modules_x * self.modules_y


@dataclass(frozen=True)
class Layout:
    """A validated screen: its size and its cabinets in the file's order."""

    name: str
    width: int
    height: int
    modules: tuple[ModuleType, ...]
    cabinets: tuple[Cabinet, ...]

    def cabinet(self, address: int) -> Cabinet:
        for cab in self.cabinets:
            if cab.address == address:
                return cab
        raise KeyError(f"no cabinet with address {address} on screen {self.name!r}")


def read_screen_text(path: str | Path) -> str:
    """The screen file's text, or a :class:`ConfigError` saying why it cannot be read.

    TOML is UTF-8.  A UTF-8 byte-order mark (Windows editors write one) is
    dropped, since it changes nothing in the text; a file in UTF-16 or a
    binary file is refused in words rather than as a decoding traceback.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the screen file: {exc.strerror or exc}") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        hint = ("it looks like UTF-16; save it as UTF-8"
                if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in raw[:64]
                else "save it as UTF-8 text")
        raise ConfigError(f"{path}: the screen file is not UTF-8 text ({hint})") from None


def load_screen_data(path: str | Path) -> dict[str, Any]:
    """The screen file parsed as TOML but not yet validated (for the tables the rest of the
    project reads, such as ``[cards]``)."""
    return _toml(read_screen_text(path), str(path))


def load_screen(path: str | Path) -> Layout:
    """Read and validate a screen file; :class:`ConfigError` lists every problem."""
    return parse_screen(load_screen_data(path), str(path))


def loads_screen(text: str, source: str = "<screen>") -> Layout:
    """Like :func:`load_screen`, from the file's text."""
    return parse_screen(_toml(text, source), source)


def _toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc


def parse_screen(data: Mapping[str, Any], source: str = "<screen>") -> Layout:
    """Validate an already-parsed screen file (a dict shaped like the TOML)."""
    problems: list[str] = []
    screen = _Table(data.get("screen"), "[screen]", problems)
    name = screen.string("name")
    width = screen.integer("width", 1)
    height = screen.integer("height", 1)
    screen.no_other_keys()

    modules = _module_types(data.get("modules"), problems)
    cabinets = _cabinets(data.get("cabinets"), modules, problems)
    if width is not None and height is not None:
        _check_placement(cabinets, width, height, problems)
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        err = ConfigError(f"{source}: {len(problems)} {noun} in the screen file:\n  "
                          + "\n  ".join(problems))
        err.problems = [f"{source}: {p}" for p in problems]
        raise err
    assert name is not None and width is not None and height is not None  # else a problem
    return Layout(name=name, width=width, height=height,
                  modules=tuple(modules.values()),
                  cabinets=tuple(cab for _, cab in cabinets))


# ------------------------------------------------------------------ the tables

class _Table:
    """Typed reads from one TOML table, each failure appended to ``problems``."""

    def __init__(self, raw: Any, where: str, problems: list[str]) -> None:
        self.where = where
        self.problems = problems
        self.seen: set[str] = set()
        self.broken = raw is None or not isinstance(raw, Mapping)   # said once, not per key
        if raw is None:
            problems.append(f"{where}: missing")
        elif self.broken:
            problems.append(f"{where}: must be a table, not {type(raw).__name__}")
        self.raw = {} if self.broken else raw

    def _get(self, key: str) -> Any:
        self.seen.add(key)
        if key not in self.raw and not self.broken:
            self.problems.append(f"{self.where}: {key} is missing")
        return self.raw.get(key)

    def string(self, key: str) -> str | None:
        value = self._get(key)
        if value is not None and not isinstance(value, str):
            self.problems.append(f"{self.where}: {key} must be a string, not {value!r}")
            return None
        return value

    def integer(self, key: str, low: int, high: int | None = None) -> int | None:
        value = self._get(key)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            self.problems.append(f"{self.where}: {key} must be a whole number, not {value!r}")
            return None
        if value < low or (high is not None and value > high):
            span = f"at least {low}" if high is None else f"{low} … {high}"
            self.problems.append(f"{self.where}: {key} = {value} is out of range ({span})")
            return None
        return value

    def choice(self, key: str, options: tuple) -> Any:
        value = self._get(key)
        if value is not None and not any(type(value) is type(o) and value == o for o in options):
            shown = ", ".join(repr(o) for o in options)
            self.problems.append(f"{self.where}: {key} = {value!r} is not one of {shown}")
            return None
        return value

    def no_other_keys(self) -> None:
        for key in self.raw:
            if key not in self.seen:
                self.problems.append(f"{self.where}: unknown key {key!r}")


def _module_types(raw: Any, problems: list[str]) -> dict[str, ModuleType]:
    if raw is None:
        problems.append("[modules]: missing (define at least one module type as [modules.NAME])")
        return {}
    if not isinstance(raw, Mapping):
        problems.append("[modules]: must be a table of module types ([modules.NAME])")
        return {}
    out = {}
    for name, body in raw.items():
        t = _Table(body, f"module type {name!r}", problems)
        width, height, scan = t.integer("width", 1), t.integer("height", 1), t.integer("scan", 1)
        t.no_other_keys()
        if width is None or height is None or scan is None:
            continue
        if height % scan:
            problems.append(f"module type {name!r}: height {height} is not a multiple of "
                            f"scan {scan} (rule: height % scan == 0)")
            continue
        out[name] = ModuleType(name, width, height, scan)
    return out


def _cabinets(raw: Any, modules: dict[str, ModuleType],
              problems: list[str]) -> list[tuple[str, Cabinet]]:
    """The valid cabinets with their names for messages; problems for the rest."""
    if raw is None:
        problems.append("[[cabinets]]: missing (the screen needs at least one cabinet)")
        return []
    if not isinstance(raw, list) or not raw:
        problems.append("[[cabinets]]: must be a non-empty array of tables ([[cabinets]] entries)")
        return []
    out = []
    owner: dict[int, str] = {}
    for index, body in enumerate(raw, start=1):
        address = body.get("address") if isinstance(body, Mapping) else None
        label = f"cabinet {index}" + (f" (address {address})" if isinstance(address, int) else "")
        t = _Table(body, label, problems)
        address = t.integer("address", ADDR_FIRST_CARD, ADDR_LAST_CARD)
        x, y = t.integer("x", 0), t.integer("y", 0)
        module_name = t.string("module")
        modules_x, modules_y = t.integer("modules_x", 1), t.integer("modules_y", 1)
        chain, rotation = t.choice("chain", CHAINS), t.choice("rotation", ROTATIONS)
        t.no_other_keys()
        module = modules.get(module_name) if module_name is not None else None
        if module_name is not None and module is None:
            known = ", ".join(sorted(modules)) or "none defined"
            problems.append(f"{label}: module {module_name!r} is not a defined module type "
                            f"(known: {known})")
        if address is not None:
            if address in owner:
                problems.append(f"{label}: address {address} is already used by {owner[address]} "
                                f"(rule: addresses are unique)")
            else:
                owner[address] = label
        if (address is not None and x is not None and y is not None and module is not None
                and modules_x is not None and modules_y is not None and chain is not None
                and rotation is not None):
            out.append((label, Cabinet(address, x, y, module, modules_x, modules_y, chain,
                                       rotation)))
    return out


def _check_placement(cabinets: list[tuple[str, Cabinet]], width: int, height: int,
                     problems: list[str]) -> None:
    """Cabinets lie wholly inside the screen and do not overlap."""
    placed: list[tuple[str, Cabinet]] = []
    for label, cab in cabinets:
        right, bottom = cab.x + cab.width, cab.y + cab.height
        if right > width:
            problems.append(f"{label}: x {cab.x} + width {cab.width} = {right} is past the screen's "
                            f"width {width} (rule: cabinets lie wholly inside the screen)")
        if bottom > height:
            problems.append(f"{label}: y {cab.y} + height {cab.height} = {bottom} is past the "
                            f"screen's height {height} (rule: cabinets lie wholly inside the screen)")
        for other_label, other in placed:
            x0, x1 = max(cab.x, other.x), min(right, other.x + other.width)
            y0, y1 = max(cab.y, other.y), min(bottom, other.y + other.height)
            if x0 < x1 and y0 < y1:
                problems.append(f"{label}: overlaps {other_label} on pixels x {x0}…{x1 - 1}, "
                                f"y {y0}…{y1 - 1} (rule: cabinets do not overlap)")
        placed.append((label, cab))
