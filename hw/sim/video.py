"""The simulated cards' video side: LWV1 datagrams in, frames shown, current drawn.

Receiving cards take video over Ethernet, not over the RS-485 bus.  The
controller's ``udp://`` frame sink sends each card's scan buffer as LWV1
datagrams (docs/video-io.md, "LWV1").  The simulator receives them in a process
of its own (:mod:`hw.sim.videoproc`), as a card's video input is silicon of its
own; :class:`VideoInput` does the same in a thread, for tests of the sender
alone.  Either hands each datagram to the card it is addressed to.

Each card's :class:`CardVideo` assembles frames as a card's receiver does:
a frame is *shown* when every byte of it has arrived, and *dropped* when a
newer frame begins before it is whole (torn) or when its datagrams come after
a newer frame began (late).  A frame number far behind the current one is a
sender that restarted, not a late frame.  Those two counters, with the
current the LEDs draw, are what ``GET_OUTPUT`` reports.

The current comes from :class:`LedModel`, the card's own model of its LEDs,
written here from how LED modules are driven and sharing nothing with the
controller's power estimate: each LED channel is a constant-current driver
output switched by PWM, so its average current is the driver's peak current
times the duty (value / 65535) times the card's dimming level, divided by the
scan ratio (a 1/16-scan module lights each row a sixteenth of the time); the
driver ICs draw a quiescent current per module whatever the picture.  Every
card is off its nominal by a tolerance the controller cannot know (±3 %,
drawn once per card from the seed and its serial), as LEDs and sense
resistors are.  The current is computed when a card is asked, from the frame
it shows then: what a sensor sampled at that moment would read.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MAGIC = b"LWV1"
HEADER = struct.Struct("<4sB3xII")
HEADER_BYTES = HEADER.size
#: A frame number this far behind the one being assembled means the sender started again.
RESTART_GAP = 64
#: The per-card spread of the current around the model's nominal (LED bins, sense resistors).
TOLERANCE = 0.03

# Test patterns (TEST_PATTERN): channels lit, and the share of a solid pattern's light the
# non-solid ones give (a grid of 1-pixel lines every 8, a left-to-right ramp, module numbers).
PATTERN_CHANNELS = {1: (1, 0, 0), 2: (0, 1, 0), 3: (0, 0, 1), 4: (1, 1, 1)}
PATTERN_SHARE = {5: 15 / 64, 6: 0.5, 7: 0.1}


@dataclass(frozen=True)
class LedModel:
    """One card's LEDs: peak driver current per channel, quiescent draw per module, tolerance.

    Nominal values are those of an indoor fine-pitch module with constant-current drivers
    (docs/simulator.md, "Video and current"): a controller's power model should be given
    these to agree with the simulator within its tolerance.
    """

    peak_ma: tuple[float, float, float] = (15.0, 12.0, 10.0)
    quiescent_ma_per_module: float = 40.0
    #: This card's factor, 1 ± TOLERANCE: unknown to the controller.
    factor: float = 1.0

    @classmethod
    def for_card(cls, serial: int, seed: int | None) -> LedModel:
        """The nominal model with this card's own tolerance, the same on every run with ``seed``."""
        rng = random.Random(f"{seed}:{serial}")
        return cls(factor=1.0 + rng.uniform(-TOLERANCE, TOLERANCE))

    def current_ma(self, sums: tuple[float, float, float], scan: int, modules: int,
                   brightness: int) -> float:
        """Milliamps drawn for channel ``sums`` (of 16-bit values over every LED), at 1/``scan``
        and dimming ``brightness`` (0..65535)."""
        *per_sum, quiescent = self.linear(scan, modules, brightness)
        return quiescent + sum(k * s for k, s in zip(per_sum, sums))

    def linear(self, scan: int, modules: int, brightness: int) -> tuple[float, float, float, float]:
        """The current as ``(k_r, k_g, k_b, q)``: ``q + Σ k_ch × sum_ch`` milliamps, so a receiver
        in another process can compute every frame's current from four numbers."""
        per_sum = self.factor * brightness / 65535 / scan / 65535
        r, g, b = (p * per_sum for p in self.peak_ma)
        return r, g, b, self.factor * modules * self.quiescent_ma_per_module


class CardVideo:
    """One card's video receiver: the frame being assembled, the last whole one, counters.

    Called from the video thread (:meth:`datagram`) and the bus thread
    (:meth:`output`, :meth:`reset`), hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self, stays_black: bool = False) -> None:
        """A boot: RAM and counters start afresh.  ``stays_black``: the card does not lock onto
        the stream it finds running, only onto one that starts anew (a sender restart)."""
        with self._lock:
            self.shown = 0
            self.dropped = 0
            self.rejected = 0
            self._frame: int | None = None     # number of the frame being assembled
            self._have: set[int] = set()       # offsets of its datagrams that arrived
            self._got = 0
            self._whole = False
            self._lost: deque[int] = deque(maxlen=16)   # frames already counted dropped
            self._buf = bytearray()
            self.last: bytes | None = None     # the frame on show
            self.black = stays_black
            self._black_first: int | None = None

    def datagram(self, frame: int, offset: int, data: bytes | memoryview, size: int) -> None:
        """One slice of frame ``frame`` at byte ``offset``; ``size`` is the card's buffer size
        from its config (module size × modules × 3 channels × 2 bytes)."""
        with self._lock:
            if offset + len(data) > size or not data:
                self.rejected += 1
                return
            if self.black and not self._unblack(frame):
                return
            if (self._frame is None or frame > self._frame
                    or self._frame - frame > RESTART_GAP or len(self._buf) != size):
                if self._frame is not None and frame != self._frame and not self._whole:
                    self._drop(self._frame)             # torn: a newer frame began first
                self._frame, self._have, self._got, self._whole = frame, set(), 0, False
                if len(self._buf) != size:
                    self._buf = bytearray(size)
            elif frame < self._frame:
                self._drop(frame)                       # late: a newer frame already began
                return
            if self._whole or offset in self._have:
                return                                  # a duplicate datagram
            self._have.add(offset)
            self._buf[offset:offset + len(data)] = data
            self._got += len(data)
            if self._got >= size:
                self._whole = True
                self.shown += 1
                self.last = bytes(self._buf)

    def _drop(self, frame: int) -> None:
        """Count frame ``frame`` dropped, once however many of its datagrams come."""
        if frame not in self._lost:
            self._lost.append(frame)
            self.dropped += 1

    def _unblack(self, frame: int) -> bool:
        """A black card locks on when frame numbers start again below the first it saw."""
        if self._black_first is None:
            self._black_first = frame
        elif frame < self._black_first:
            self.black = False
            return True
        self._drop(frame)
        return False

    def sums(self) -> tuple[float, float, float]:
        """Per channel, the sum of the values of the frame on show (black before the first)."""
        with self._lock:
            last = self.last
        if not last:
            return (0.0, 0.0, 0.0)
        values = np.frombuffer(last, dtype="<u2")
        total = values[: len(values) // 3 * 3].reshape(-1, 3).sum(axis=0, dtype=np.uint64)
        return (float(total[0]), float(total[1]), float(total[2]))


def pattern_sums(pattern: int, level: int, leds: int) -> tuple[float, float, float]:
    """Channel sums of a test pattern shown at ``level`` on ``leds`` pixels."""
    if pattern in PATTERN_CHANNELS:
        on = PATTERN_CHANNELS[pattern]
        return (on[0] * level * leds, on[1] * level * leds, on[2] * level * leds)
    share = PATTERN_SHARE.get(pattern, 0.0) * level * leds
    return (share, share, share)


class VideoInput:
    """The cards' video input: UDP datagrams from the controller's ``udp://`` frame sink.

    ``card_for(address)`` gives the receiving side of the card at that bus
    address, or None (no such card, or it is powered off): the datagram is
    then only counted.  Per address it keeps counts, whoever receives them:
    datagrams, bytes, frames started, and the last frame number seen.
    """

    MAGIC = MAGIC

    def __init__(self, host: str, port: int,
                 card_for: Callable[[int], tuple[CardVideo, int] | None] | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Room for a few frames of a whole wall while this thread catches up (the kernel caps
        # it at net.core.rmem_max; what does not fit is lost, as on a congested link).
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)
        self.address = self.sock.getsockname()
        self.card_for = card_for
        self.cards: dict[int, dict] = {}
        self.bad = 0
        #: When a datagram last arrived (monotonic), for tests and the closing note.
        self.last_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledwarden-sim-video", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(2048)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self.take(data)

    def take(self, data: bytes) -> None:
        """One datagram: ``"LWV1"``, card address (u8), 3 reserved bytes, frame number and
        byte offset (u32 LE each), then the slice of the card's buffer."""
        if len(data) < HEADER_BYTES or data[:4] != MAGIC:
            self.bad += 1
            return
        _, address, frame, offset = HEADER.unpack_from(data)
        self.last_at = time.monotonic()
        card = self.cards.setdefault(address, {"datagrams": 0, "bytes": 0, "frames": 0,
                                               "last_frame": None})
        card["datagrams"] += 1
        card["bytes"] += len(data) - HEADER_BYTES
        if offset == 0:
            card["frames"] += 1
        card["last_frame"] = frame
        receiver = self.card_for(address) if self.card_for else None
        if receiver is not None:
            video, size = receiver
            video.datagram(frame, offset, memoryview(data)[HEADER_BYTES:], size)

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(timeout=2)
