"""The one percentile the project reports (link round trips, frame times, self-test PINGs)."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile ``p`` (0…1) of values already sorted; None when there are none.

    Nearest rank, not interpolation: the figure is a value that was measured,
    which is what an engineer compares with a limit.
    """
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]
