"""The simulated cards' video input in a process of its own, sharing its counters in memory.

A full-HD wall's video is 8 890 datagrams a frame.  Taken in a thread of the
simulator, that work held the GIL the bus thread needs, and the cards'
answers missed their 5 ms deadline: with 1080p at 30 fps going in, 41 % of
``GET_STATUS`` requests timed out (2 % without video).  A real card's video
input is separate silicon, so here it is a separate process: it receives the
LWV1 datagrams and runs each card's :class:`~hw.sim.video.CardVideo`; the bus
side reads what ``GET_OUTPUT`` needs (frames shown and dropped, the channel
sums of the frame on show) from shared memory, and writes there what the
receiver needs of the card (where it is on the bus, its buffer size, whether
it is powered, and a boot generation that makes the receiver start afresh).

With a ``current_log`` file the receiver is also a current probe on every
card's supply: one line per frame shown, with the current that frame draws by
the card's own LED model (the four numbers of :meth:`LedModel.linear
<hw.sim.video.LedModel.linear>`, written here by the bus side), so a
benchmark can count frames over a budget where ``GET_OUTPUT``, read every
two seconds, only samples them.
"""

from __future__ import annotations

import multiprocessing
import socket
import time
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory

import numpy as np

from hw.sim.video import HEADER, HEADER_BYTES, MAGIC, CardVideo

POSITIONS = 241      # cards 1..240; row 0 unused
GEN, BLACK, SIZE, POWERED, SHOWN, DROPPED, REJECTED, SUM0 = range(8)
K0, QUIESCENT, PATTERN = SUM0 + 3, SUM0 + 6, SUM0 + 7
FIELDS = 16          # SUM0..SUM0+2 the channel sums, K0..K0+2 mA per unit of each sum
#: The current log's first line.
CURRENT_LOG_HEADER = "t_s,address,frame,current_ma\n"
ADDRESSES = 256
#: Per address: datagrams, bytes, frames started, last frame number.
COUNTS = 4
STOP = 0             # control word: set to stop the receiver


def _layout(buf) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Views of the shared block: card rows, address → position, per-address counts, control."""
    cards = np.ndarray((POSITIONS, FIELDS), np.float64, buf, 0)
    at = cards.nbytes
    route = np.ndarray((ADDRESSES,), np.int32, buf, at)
    at += route.nbytes
    counts = np.ndarray((ADDRESSES, COUNTS), np.float64, buf, at)
    at += counts.nbytes
    control = np.ndarray((1,), np.int32, buf, at)
    return cards, route, counts, control


SHARED_BYTES = (POSITIONS * FIELDS * 8 + ADDRESSES * 4 + ADDRESSES * COUNTS * 8 + 4)


class SharedCardVideo:
    """The bus side's view of one card's receiver: what ``GET_OUTPUT`` reads, and the reset at
    boot (the same interface as :class:`CardVideo` has for the platform)."""

    def __init__(self, row: np.ndarray) -> None:
        self.row = row

    def reset(self, stays_black: bool = False) -> None:
        self.row[SHOWN:K0] = 0
        self.row[BLACK] = float(stays_black)
        self.row[GEN] += 1

    @property
    def shown(self) -> int:
        return int(self.row[SHOWN])

    @property
    def dropped(self) -> int:
        return int(self.row[DROPPED])

    @property
    def rejected(self) -> int:
        return int(self.row[REJECTED])

    def sums(self) -> tuple[float, float, float]:
        return float(self.row[SUM0]), float(self.row[SUM0 + 1]), float(self.row[SUM0 + 2])


def _serve(host: str, port: int, name: str, conn: Connection,
           current_log: str | None) -> None:
    """The receiver process: bind, report, then take datagrams until told to stop."""
    shm = SharedMemory(name)
    cards, route, counts, control = _layout(shm.buf)
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind((host, port))
    except OSError as exc:
        conn.send(("error", exc.strerror or str(exc)))
        shm.close()
        return
    conn.send(("ok", sock.getsockname()))
    sock.settimeout(0.2)
    receivers: dict[int, tuple[float, CardVideo]] = {}
    # line-buffered: a simulator stopped by a signal leaves every line it wrote
    log = None if not current_log else open(  # noqa: SIM115 - open for the process's life
        current_log, "w", encoding="ascii", buffering=1)
    if log is not None:
        log.write(CURRENT_LOG_HEADER)
    try:
        while not control[STOP]:
            try:
                data = sock.recv(2048)
            except (TimeoutError, socket.timeout):
                continue
            if len(data) < HEADER_BYTES or data[:4] != MAGIC:
                continue
            _, address, frame, offset = HEADER.unpack_from(data)
            count = counts[address]
            count[0] += 1
            count[1] += len(data) - HEADER_BYTES
            count[2] += offset == 0
            count[3] = frame
            position = route[address]
            row = cards[position]
            if not position or not row[POWERED]:
                continue
            held = receivers.get(position)
            if held is None or held[0] != row[GEN]:
                held = (row[GEN], CardVideo())
                held[1].reset(stays_black=bool(row[BLACK]))
                receivers[position] = held
            video = held[1]
            shown = video.shown
            video.datagram(frame, offset, memoryview(data)[HEADER_BYTES:], int(row[SIZE]))
            if held[0] != row[GEN]:
                continue                  # the card rebooted meanwhile: write nothing stale
            if video.shown != shown:
                row[SUM0:SUM0 + 3] = sums = video.sums()
                if log is not None and not row[PATTERN]:
                    ma = row[QUIESCENT] + sum(k * v for k, v in zip(row[K0:K0 + 3], sums))
                    log.write(f"{time.monotonic():.4f},{address},{frame},{ma:.1f}\n")
            row[SHOWN], row[DROPPED], row[REJECTED] = video.shown, video.dropped, video.rejected
    finally:
        sock.close()
        if log is not None:
            log.close()
        del cards, route, counts, control
        shm.close()


class VideoProcess:
    """The cards' LWV1 input, received in a child process (see the module's docstring).

    Same face as :class:`~hw.sim.video.VideoInput` for the simulator: ``address``,
    ``cards`` (per-address counts), ``close()``; plus :meth:`receiver` for each
    card's platform and :meth:`update`, which the simulator calls every tick.
    """

    def __init__(self, host: str, port: int, current_log: str | None = None) -> None:
        self._shm = SharedMemory(create=True, size=SHARED_BYTES)
        self._cards, self._route, self._counts, self._control = _layout(self._shm.buf)
        self._cards[:] = 0
        self._route[:] = 0
        self._counts[:] = 0
        self._control[:] = 0
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(target=_serve,
                                        args=(host, port, self._shm.name, child, current_log),
                                        name="ledwarden-sim-video", daemon=True)
        self._process.start()
        status, value = parent.recv() if parent.poll(30) else ("error", "no answer in 30 s")
        if status != "ok":
            self._release()
            raise OSError(0, value)
        self.address: tuple[str, int] = (str(value[0]), int(value[1]))

    def receiver(self, position: int) -> SharedCardVideo:
        return SharedCardVideo(self._cards[position])

    def update(self, cards) -> None:
        """Where each card is now: bus address, buffer size from its config, powered or not,
        and its current's coefficients at its dimming level (for the current log)."""
        route = np.zeros(ADDRESSES, np.int32)
        for card in cards:
            w, h, scan, mx, my = card.card.config[:5]
            row = self._cards[card.position]
            row[SIZE] = w * h * mx * my * 3 * 2
            row[POWERED] = float(card.powered)
            platform = card.platform
            row[K0:QUIESCENT + 1] = platform.leds.linear(scan, mx * my, platform.brightness)
            row[PATTERN] = float(bool(platform.pattern))
            route[card.card.address] = card.position
        self._route[:] = route

    @property
    def cards(self) -> dict[int, dict]:
        """Per address that received datagrams: datagrams, bytes, frames started, last frame."""
        return {a: {"datagrams": int(c[0]), "bytes": int(c[1]), "frames": int(c[2]),
                    "last_frame": int(c[3])}
                for a, c in enumerate(self._counts) if c[0]}

    def _release(self) -> None:
        del self._cards, self._route, self._counts
        self._control = np.zeros(1, np.int32)
        self._shm.close()
        self._shm.unlink()

    def close(self) -> None:
        self._control[STOP] = 1
        self._process.join(timeout=2)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=2)
        self._release()
