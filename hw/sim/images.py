"""Firmware images for simulated cards, and how a simulated card behaves when it runs one.

The simulator never executes an image: a simulated card runs the firmware in
``hw/firmware`` whatever its bank holds, and takes the version from the bank
record written at ``FW_COMMIT``.  To test what the controller does when a new
firmware is bad, an image may carry a marker, ASCII text anywhere in its
bytes::

    ledwarden-sim-behaviour=crash;

which the simulated card reads from the bank it boots.  Behaviours:

``crash``
    the firmware dies right after boot: the card answers nothing and its
    watchdog resets it 0.1 s after every boot;
``hang``
    the firmware starts but never serves the bus: no answers, and the
    watchdog resets it 1 s after every boot;
``unhealthy``
    the firmware runs and answers, but drives the LED modules wrongly: every
    module's data link reads as lost (status bit 3), so the controller's
    health check fails and it must not confirm the image.

In all three cases it is the card's own trial-boot rule that brings back the
previous bank: three boots without ``FW_CONFIRM``, then the fourth boot
reverts and logs event 6.  An unknown behaviour name is ignored (logged), so
a typo shows up as a healthy card rather than as a mystery.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

log = logging.getLogger("ledwarden.sim")

#: Seconds from boot to the watchdog reset, per behaviour that resets.
RESET_AFTER_S = {"crash": 0.1, "hang": 1.0}
#: Behaviours under which the card's firmware does not serve the bus at all.
SILENT = frozenset(RESET_AFTER_S)
BEHAVIOURS = ("crash", "hang", "unhealthy")
_MARKER = re.compile(rb"ledwarden-sim-behaviour=([a-z-]{1,32});")


def sim_image(size: int, *, seed: int = 0, behaviour: str | None = None) -> bytes:
    """A deterministic stand-in image of ``size`` bytes, optionally with a behaviour marker.

    The bytes are a SHA-256 stream of the seed, so two seeds give images
    that differ everywhere (a wrong image cannot pass for the right one) and
    the same seed gives the same image on every run.
    """
    if behaviour is not None and behaviour not in BEHAVIOURS:
        raise ValueError(f"simulated behaviour {behaviour!r} is not one of {', '.join(BEHAVIOURS)}")
    marker = b"" if behaviour is None else b"ledwarden-sim-behaviour=%s;" % behaviour.encode()
    if size < len(marker):
        raise ValueError(f"an image of {size} bytes cannot hold the marker {marker!r}")
    out = bytearray()
    block = hashlib.sha256(b"ledwarden sim image %d" % seed).digest()
    while len(out) < size - len(marker):
        out += block
        block = hashlib.sha256(block).digest()
    del out[size - len(marker):]
    return bytes(marker + out)


def behaviour_of(bank_file: Path) -> str | None:
    """The behaviour marked in a bank's image, or None for a well-behaved one."""
    try:
        data = bank_file.read_bytes()
    except OSError:
        return None
    found = _MARKER.search(data)
    if found is None:
        return None
    name = found.group(1).decode()
    if name not in BEHAVIOURS:
        log.warning("%s: unknown simulated behaviour %r ignored (known: %s)", bank_file, name,
                    ", ".join(BEHAVIOURS))
        return None
    return name
