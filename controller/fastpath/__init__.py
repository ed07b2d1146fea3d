"""Frame correction and module scan (``docs/spec/correction.md``), fast.

One API over two backends, as python-zstandard does it: the compiled
kernel (``_cffi``, built by cffi when the package is installed) and the NumPy
:mod:`~controller.fastpath.reference`, which defines what correct means.
``backend`` says which is live.  Without the extension the NumPy one stands
in, with a warning, because a wall that shows frames slowly beats one that
shows none.  ``LEDWARDEN_FASTPATH=numpy`` picks the reference on purpose and
``LEDWARDEN_FASTPATH=cffi`` makes a missing extension an ImportError (for
CI and for benchmarks that must not measure the wrong thing).

::

    out = fastpath.correct(frame, lut, gains, calib=None)       # uint16[H][W][3]
    scan = fastpath.module_scan(out, layout)                    # scan.buffers[address] ...
    pipe = fastpath.Pipeline(layout, lut, gains, calib=None)    # threads=None: all cores
    scan = pipe.process(frame)                                  # fused, no allocation

For a card that applies its own curve (Colorlight, DDP receivers), the
corrected frame re-encoded to 8 bits straight into packet payloads
(``docs/correction.md``, "Cards with their own curve")::

    table = fastpath.encode_table(2.2)                          # the card's gamma
    payloads = fastpath.Payloads(segment=W, chunk=497, stride=1512, first=21, order=(2, 1, 0))
    enc = fastpath.Encoder((H, W), lut, gains, calib, table, payloads)
    enc.encode_into(frame, buffer)                              # uint8[enc.size] at least
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType

import numpy as np

from controller.fastpath import reference
from controller.fastpath.common import ScanResult
from controller.fastpath.reencode import Payloads, encode_table

_policy = os.environ.get("LEDWARDEN_FASTPATH", "auto")
if _policy not in ("auto", "cffi", "numpy"):
    raise ImportError(f"LEDWARDEN_FASTPATH={_policy!r}: use auto, cffi or numpy")

#: The live backend: either module offers the same public functions and ``Pipeline``.
_impl: ModuleType
if _policy == "numpy":
    _impl = reference
else:
    try:
        from controller.fastpath import _cffi as _impl
    except ImportError as exc:
        if _policy == "cffi":
            raise
        warnings.warn(f"ledwarden.fastpath: the compiled kernel is not built ({exc}); using the "
                      f"NumPy reference, which is far slower. Reinstall with a C compiler "
                      f"(pip install -e .) to build it.", RuntimeWarning, stacklevel=2)
        _impl = reference

#: ``"cffi"`` when the compiled kernel is in use, else ``"numpy"``.
backend = "numpy" if _impl is reference else "cffi"

correct = _impl.correct
module_scan = _impl.module_scan
Pipeline = _impl.Pipeline
Encoder = _impl.Encoder


# What a benchmark reports beside its figures, so a reader knows what ran (``ledwarden bench``).

def kernels() -> tuple[str, ...]:
    """The kernels this CPU can run, the default first, as ``Pipeline(kernel=…)`` names them;
    ``("numpy",)`` on the NumPy backend, which has one."""
    if backend != "cffi":
        return ("numpy",)
    from controller.fastpath import _cffi
    return _cffi.kernels()


def build_info() -> str:
    """The compiler and flags the compiled kernel was built with, or that there is none."""
    if backend != "cffi":
        return "NumPy backend: the C extension is not built"
    from controller.fastpath import _cffi
    return _cffi.build_info()


def default_threads() -> int:
    """The threads a :class:`Pipeline` runs on when not told: every core this process may use
    (the NumPy reference runs on one)."""
    if backend != "cffi":
        return 1
    from controller.fastpath import _cffi
    return _cffi.default_threads()


def floor_copy(sources: list[np.ndarray], dst: np.ndarray) -> None:
    """The memory-copy floor (``lw.h``): read every byte of ``sources`` once and fill ``dst``,
    what no correction can beat on this memory system.  The compiled kernel only: in NumPy it
    would time NumPy, not the memory."""
    if backend != "cffi":
        raise RuntimeError("fastpath.floor_copy needs the compiled kernel; fastpath.backend is numpy")
    from controller.fastpath import _cffi
    _cffi.floor_copy(sources, dst)


__all__ = ["Encoder", "Payloads", "Pipeline", "ScanResult", "backend", "build_info", "correct", "default_threads",
           "encode_table", "floor_copy", "kernels", "module_scan", "reference"]
