"""From measured primaries to each LED's 3x3 coefficients: a common target, or a module matched.

Conventions: ``primaries[y][x][k]`` is the XYZ of LED (x, y)'s primary k at
full drive, so the LED's matrix ``P`` has those as columns and it emits
``P @ a`` for drive ``a`` (0 … 1 per channel).  The calibration (spec 2.2)
gives ``a = M @ g`` for the video's ``g``, so the LED emits ``P M g``: with
``M = P⁻¹ T`` every LED shows the target primaries ``T``.

**Whole wall** (:func:`calibrate`).  Every input must stay reachable: for
every ``g`` in the unit cube, ``M g`` must lie in it too, which asks for
``M >= 0`` (each target primary a non-negative mix of the LED's own, i.e.
the target gamut inside every LED's) and every row sum of ``M`` at most 1
(white reachable).  The target is the wall's average primaries ``P̄``
desaturated just enough — ``T = s P̄ A(α)``, ``A(α) = (1 - α) I + α/3`` (each
primary mixed with a share of all three) — for the first condition; the
smallest such α is found in closed form.  ``A`` keeps row sums, so the scale
``s`` is the weakest LED's reach, less :data:`HEADROOM` for the measurement's
noise.  Dead LEDs (a primary below :data:`DEAD` of the median) take no part
and keep the identity; they are reported.

**One module** (:func:`match_module`).  The target is what the neighbours
show now: the mean of ``P_j M_j`` over their LEDs, with their current
coefficients ``M_j``.  Only the module's coefficients are computed; every
other LED's are returned unchanged, bit for bit.

Coefficients leave here as ``int16`` Q1.14 (``floor(16384 m + 0.5)``), the
form :mod:`controller.picture.calibration` checks and stores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controller.config import Layout
from controller.picture import calibration
from controller.picture.photocal.photos import PRIMARIES, PhotoError

#: Share of the weakest LED's reach kept back for the measurement's noise.
HEADROOM = 0.02
#: A primary below this share of its median is a dead (or failing) LED.
DEAD = 0.3
#: Least share of the wall's average light a common target may keep.
MIN_LEVEL = 0.5
#: Most desaturation (share of the other primaries mixed in) a common target may need.
MAX_DESATURATION = 0.25


class UnreachableError(PhotoError):
    """No target every LED reaches exists within the limits; the message names the LED."""


@dataclass(frozen=True)
class Result:
    coefficients: np.ndarray     # float64[H][W][3][3], rows: output channel
    target: np.ndarray           # float64[3][3]: XYZ of the target primaries (columns)
    level: float                 # target's light over the average LED's
    desaturation: float          # α
    dead: list[tuple[int, int]]  # (x, y) of LEDs left out

    def q14(self) -> np.ndarray:
        return to_q14(self.coefficients)


def to_q14(coefficients: np.ndarray) -> np.ndarray:
    """``int16`` Q1.14 coefficients, as the spec and the calibration store take them."""
    return np.floor(coefficients * calibration.ONE + 0.5).astype(np.int16)


def matrices(primaries: np.ndarray) -> np.ndarray:
    """``float[..][3][3]`` LED matrices ``P`` (primaries as columns)."""
    out: np.ndarray = np.swapaxes(primaries, -1, -2)
    return out


def dead_leds(primaries: np.ndarray) -> np.ndarray:
    """``bool[H][W]``: LEDs with a primary (its luminance, Y) below :data:`DEAD` of the median."""
    y = primaries[..., 1]
    return np.asarray((y < DEAD * np.median(y, axis=(0, 1))).any(axis=-1))


def _where(mask: np.ndarray) -> tuple[int, int]:
    y, x = (int(v) for v in np.argwhere(mask)[0])
    return x, y


def _mix(alpha: float) -> np.ndarray:
    """``A(α)``: each primary with a share α of all three mixed in; keeps white (rows sum to 1)."""
    out: np.ndarray = (1 - alpha) * np.eye(3) + alpha / 3
    return out


def _least_mix(b: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per matrix ``B`` (rows summing to ``rows``), the least α with ``B A(α) >= 0``: an entry
    ``(1 - α) b + α r / 3`` is non-negative from ``α = -b / (r / 3 - b)`` on."""
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.where(b < 0, -b / (rows[..., None] / 3 - b), 0.0)
    out: np.ndarray = need.max(axis=(-1, -2))
    return out


def calibrate(primaries: np.ndarray, *, headroom: float = HEADROOM, min_level: float = MIN_LEVEL,
              max_desaturation: float = MAX_DESATURATION) -> Result:
    """The whole wall's coefficients towards one target (see the module's docstring)."""
    dead = dead_leds(primaries)
    live = ~dead
    if live.mean() < 0.5:
        raise UnreachableError(f"{int(dead.sum())} of {dead.size} LEDs measure dark; check that "
                               f"the photos show the full fields of this region")
    p = matrices(primaries)
    mean = p[live].mean(axis=0)
    b = np.zeros_like(p)
    b[live] = np.linalg.solve(p[live], np.broadcast_to(mean, p[live].shape))   # P⁻¹ P̄
    rows = b.sum(axis=-1)                                                      # row sums of B
    need = np.where(live, _least_mix(b, rows), 0.0)
    alpha = float(need.max())
    if not alpha <= max_desaturation or (rows[live] <= 0).any():
        x, y = _where(need == need.max())
        raise UnreachableError(f"LED (x={x}, y={y}): its colours are too far from the wall's "
                               f"for a common target (it needs {100 * alpha:.0f} % "
                               f"desaturation, at most {100 * max_desaturation:.0f} %); replace "
                               f"its module, or calibrate its module alone with the module mode")
    top = rows[live].max()
    level = (1 - headroom) / float(top)
    if level < min_level:
        worst = rows.max(axis=-1) * live
        x, y = _where(worst == worst.max())
        c = int(np.argmax(rows[y, x]))
        raise UnreachableError(f"LED (x={x}, y={y}) reaches only {100 / float(top):.0f} % of "
                               f"the wall's average {PRIMARIES[c]}; a common target would dim "
                               f"the wall below {100 * min_level:.0f} %: replace that LED or its "
                               f"module and take the photos again")
    mix = _mix(alpha)
    target = level * mean @ mix
    coefficients = np.zeros_like(p)
    coefficients[live] = level * b[live] @ mix
    coefficients[dead] = np.eye(3)
    dead_list = [(int(x), int(y)) for y, x in np.argwhere(dead)]
    return Result(coefficients, target, level, alpha, dead_list)


def match_module(primaries: np.ndarray, current: np.ndarray, module: tuple[slice, slice],
                 neighbours: np.ndarray) -> Result:
    """Coefficients for the LEDs in ``module`` (rows, columns of ``primaries``) that show what
    the ``neighbours`` (``bool[H][W]``) show with their ``current`` coefficients (``float``, as
    factors); every other LED keeps its ``current`` coefficients exactly.
    """
    dead = dead_leds(primaries)
    p = matrices(primaries)
    around = neighbours & ~dead
    if not around.any():
        raise UnreachableError("the module has no working neighbour LEDs in the photos; "
                               "photograph it with the modules around it")
    target = (p[around] @ current[around]).mean(axis=0)
    inside = np.zeros(dead.shape, bool)
    inside[module] = True
    fit = inside & ~dead
    b = np.linalg.solve(p[fit], np.broadcast_to(target, p[fit].shape))
    rows = b.sum(axis=-1)
    alpha = float(_least_mix(b, rows).max())
    if (rows > 1.0).any() or alpha > MAX_DESATURATION:
        over = np.zeros(dead.shape)
        over[fit] = rows.max(axis=-1)
        x, y = _where(over == over.max())
        raise UnreachableError(f"the module cannot show what its neighbours show: LED "
                               f"(x={x}, y={y}) would need {100 * over.max():.0f} % drive"
                               f"{'' if alpha <= MAX_DESATURATION else ' and colours it lacks'}; "
                               f"calibrate the whole wall instead")
    coefficients = current.copy()
    coefficients[fit] = b @ _mix(alpha)
    coefficients[inside & dead] = np.eye(3)
    return Result(coefficients, target, 1.0, alpha,
                  [(int(x), int(y)) for y, x in np.argwhere(inside & dead)])


def per_cabinet(layout: Layout, q14: np.ndarray) -> dict[int, np.ndarray]:
    """The screen's Q1.14 coefficients cut into cabinets, each in its own orientation and
    checked against the spec's bound, as the calibration import takes them."""
    out = {}
    for cab in layout.cabinets:
        part = q14[cab.y:cab.y + cab.height, cab.x:cab.x + cab.width]
        if cab.rotation == 180:
            part = part[::-1, ::-1]
        out[cab.address] = calibration.check(np.ascontiguousarray(part), cab, "photocal")
    return out
