"""From a layout to the flat arrays the C kernel walks: the plan, built once.

The kernel knows nothing of cabinets, chains or rotation.  It sees a list
of modules in output order, each a frame byte offset (where the module's
``T[0][0]`` is), an output offset, a coefficient offset and one of a few
geometries (a module type at a rotation): ``scan`` lines of ``n`` pixels,
pixel ``k`` of a line at ``line + off[k]``.  A cabinet turned by 180° is the
same walk with negative steps, so the kernel has no rotated special case.

Everything here is NumPy and Python, run at construction; nothing in it
runs per frame.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from controller.config import Cabinet, Layout


@dataclass(frozen=True, eq=False)
class Geometry:
    width: int
    scan: int
    groups: int
    line_step: int      # frame bytes from scan line i to i + 1
    group_step: int     # frame bytes from group j to j + 1
    dir: int            # frame bytes from column x to x + 1
    off: np.ndarray     # int32[n]: frame byte offset of a line's pixel k

    @property
    def n(self) -> int:
        return self.width * self.groups


@dataclass(frozen=True, eq=False)
class Plan:
    """Modules in output order (cabinets in file order, modules in chain order)."""

    geoms: tuple[Geometry, ...]
    mod_geom: np.ndarray     # int32[M]
    mod_base: np.ndarray     # int64[M]: frame byte offset of the module's T[0][0]
    mod_out: np.ndarray      # int64[M]: first uint16 of the module in the output
    mod_pixels: np.ndarray   # int64[M]
    cab_modules: tuple[tuple[int, int], ...]   # per cabinet: module index range
    cab_out: tuple[tuple[int, int], ...]       # per cabinet: output element range

    @property
    def n_modules(self) -> int:
        return len(self.mod_base)

    @property
    def pixels(self) -> int:
        return int(self.mod_pixels.sum())

    def coef_offsets(self, per_pixel: int) -> np.ndarray:
        """First coefficient of each module when there are ``per_pixel`` per pixel."""
        return (self.mod_out // 3) * per_pixel

    def bands(self, count: int) -> np.ndarray:
        """``count + 1`` module indices cutting the work into runs of about equal pixels.

        Cuts fall on module boundaries (a module's sums are one thread's), so
        with fewer modules than bands some bands are empty.
        """
        ends = np.cumsum(self.mod_pixels)
        cuts = np.searchsorted(ends, ends[-1] * np.arange(1, count) / count, side="left") + 1
        return np.concatenate(([0], np.minimum(cuts, self.n_modules), [self.n_modules])).astype(np.int32)


def _geometry(cab: Cabinet, stride: int) -> Geometry:
    m = cab.module
    sign = -1 if cab.rotation == 180 else 1
    line_step, group_step, dir_ = sign * stride, sign * m.scan * stride, sign * 3
    k = np.arange(m.width * m.groups, dtype=np.int64)
    off = (k % m.groups) * group_step + (k // m.groups) * dir_
    return Geometry(m.width, m.scan, m.groups, line_step, group_step, dir_, off.astype(np.int32))


def _module_origins(cab: Cabinet) -> Iterator[tuple[int, int]]:
    """Frame (row, column) of each module's T[0][0], in chain order."""
    h, w = cab.module.height, cab.module.width
    for row in range(cab.modules_y):
        cols: Sequence[int] = range(cab.modules_x)
        if cab.chain == "serpentine" and row % 2:
            cols = cols[::-1]
        for col in cols:
            if cab.rotation == 180:
                yield cab.y + cab.height - 1 - row * h, cab.x + cab.width - 1 - col * w
            else:
                yield cab.y + row * h, cab.x + col * w


@lru_cache(maxsize=8)
def build(layout: Layout) -> Plan:
    stride = layout.width * 3
    geoms: dict[tuple[str, int], int] = {}
    geom_list: list[Geometry] = []
    mod_geom: list[int] = []
    mod_base: list[int] = []
    mod_out: list[int] = []
    mod_pixels: list[int] = []
    cab_modules: list[tuple[int, int]] = []
    cab_out: list[tuple[int, int]] = []
    out = 0
    for cab in layout.cabinets:
        key = (cab.module.name, cab.rotation)
        if key not in geoms:
            geoms[key] = len(geom_list)
            geom_list.append(_geometry(cab, stride))
        first_module, first_out = len(mod_base), out
        pixels = cab.module.width * cab.module.height
        for fy, fx in _module_origins(cab):
            mod_geom.append(geoms[key])
            mod_base.append((fy * layout.width + fx) * 3)
            mod_out.append(out)
            mod_pixels.append(pixels)
            out += 3 * pixels
        cab_modules.append((first_module, len(mod_base)))
        cab_out.append((first_out, out))
    for g in geom_list:
        g.off.setflags(write=False)
    arrays = [np.array(a, dtype=t) for a, t in ((mod_geom, np.int32), (mod_base, np.int64),
                                                 (mod_out, np.int64), (mod_pixels, np.int64))]
    for a in arrays:
        a.setflags(write=False)
    geom_ids, bases, outs, pixel_counts = arrays
    return Plan(tuple(geom_list), geom_ids, bases, outs, pixel_counts, tuple(cab_modules),
                tuple(cab_out))
