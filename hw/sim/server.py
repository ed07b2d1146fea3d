"""The simulator as a process: N cards behind a TCP port or a pseudo-terminal.

A master connects exactly as it would to real hardware: ``socket://HOST:PORT``
or the printed ``/dev/pts/N`` path with any pyserial client.  One loop in
one thread reads the master's bytes, hands them to the :class:`SimBus`, writes
the answers back, and every 100 ms lets the cards poll their sensors and
finish reboots.  :class:`Simulator` can also run in a background thread,
which is how the tests and the demo use it.
"""

from __future__ import annotations

import logging
import os
import random
import select
import shutil
import socket
import tempfile
import threading
import time
import tty
from pathlib import Path

from controller.config import Cabinet, Layout
from controller.errors import ConfigError, PortError
from hw.firmware.card import config_problem
from hw.sim.bus import DEFAULT_HW_MODEL, DEFAULT_VERSION, SimBus, SimCard
from hw.sim.faults import FaultPlan, load_plan
from hw.sim.video import VideoInput
from hw.sim.videoproc import VideoProcess

__all__ = ["Simulator", "VideoInput", "cabinet_config"]

log = logging.getLogger("ledwarden.sim")

TICK_S = 0.1
FACTORY_ADDRESS = 0xF0


class _TcpLink:
    """Listens on HOST:PORT; one master at a time, the next may connect after it leaves."""

    def __init__(self, host: str, port: int) -> None:
        self.server = socket.create_server((host, port), reuse_port=False)
        self.server.setblocking(False)
        self.conn: socket.socket | None = None
        host, port = self.server.getsockname()[:2]
        self.url = f"socket://{host}:{port}"

    def read(self, timeout: float) -> bytes:
        sock = self.conn or self.server
        ready, _, _ = select.select([sock], [], [], timeout)
        if not ready:
            return b""
        if self.conn is None:
            self.conn, _ = self.server.accept()
            self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            log.info("master connected")
            return b""
        try:
            data = self.conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.conn.close()
            self.conn = None
            log.info("master disconnected")
        return data

    def write(self, data: bytes) -> None:
        if self.conn is not None:
            try:
                self.conn.sendall(data)
            except OSError:
                pass  # the master left; the next read notices

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


class _PtyLink:
    """A pseudo-terminal in raw mode; the master opens the printed slave path."""

    def __init__(self) -> None:
        self.fd, self._slave = os.openpty()
        tty.setraw(self.fd)
        tty.setraw(self._slave)  # no line discipline: 0x0D, 0x11 … pass untouched
        self.url = os.ttyname(self._slave)

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self.fd, 65536)
        except OSError:
            return b""

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def close(self) -> None:
        os.close(self.fd)
        os.close(self._slave)


def cabinet_config(cab: Cabinet, refresh_hz: int = 3840) -> tuple:
    """The config block (spec section 5) a cabinet's card holds once commissioned."""
    return (cab.module.width, cab.module.height, cab.module.scan, cab.modules_x, cab.modules_y,
            0 if cab.chain == "rows" else 1, 0 if cab.rotation == 0 else 2, refresh_hz)


class Simulator:
    """N simulated cards on one bus, served over TCP (``tcp=(host, port)``) or a pty.

    With a ``screen`` layout there is one card per cabinet, at the cabinet's
    address and already holding its config (module size, scan, modules), as a
    commissioned wall's cards do; ``cards`` is then ignored.
    """

    def __init__(self, cards: int = 8, *, baud: int = 921_600, tcp: tuple[str, int] | None = None,
                 pty: bool = False, state_dir: str | Path | None = None,
                 plan: FaultPlan | None = None, fault_file: str | Path | None = None,
                 hw_model: int = DEFAULT_HW_MODEL, version=DEFAULT_VERSION,
                 unaddressed: int = 0, seed: int | None = None,
                 video: tuple[str, int] | None = None, screen: Layout | None = None,
                 current_log: str | Path | None = None) -> None:
        if screen is not None:
            cards = len(screen.cabinets)
        if not 1 <= cards <= 240:
            raise ConfigError(f"--cards {cards}: a bus holds 1 to 240 cards")
        if not 0 <= unaddressed <= cards:
            raise ConfigError(f"--unaddressed {unaddressed} must be between 0 and --cards")
        if current_log and not video:
            raise ConfigError("--current-log needs --video: the log is of the video frames shown")
        if (tcp is None) == (not pty):
            raise ConfigError("choose exactly one of a TCP address or a pseudo-terminal")
        for cab in screen.cabinets if screen is not None else ():
            problem = config_problem(cabinet_config(cab))
            if problem:
                raise ConfigError(f"cabinet at address {cab.address} (module {cab.module.name}): "
                                  f"a card's config cannot hold it: {problem}; the screen file "
                                  f"needs modules the cards can drive")
        self._tmp = None if state_dir else tempfile.mkdtemp(prefix="ledwarden-sim-")
        self.state_dir = Path(state_dir) if state_dir else Path(str(self._tmp))
        self.base_plan = plan or FaultPlan()
        self.fault_file = Path(fault_file) if fault_file else None
        self._file_plan = FaultPlan()
        self._file_mtime: float | None = None
        self._plan = self.base_plan
        self._reload_faults()
        cabinets = list(screen.cabinets) if screen is not None else []
        self.cards = [
            SimCard(i, self.state_dir / f"card{i:03d}", self._faults_of(i), hw_model=hw_model,
                    version=version, seed=seed,
                    address=(FACTORY_ADDRESS if i > cards - unaddressed
                             else cabinets[i - 1].address if cabinets else i),
                    config=cabinet_config(cabinets[i - 1]) if cabinets else None)
            for i in range(1, cards + 1)
        ]
        self.bus = SimBus(self.cards, baud, lambda: self._plan, random.Random(seed))
        try:
            self.link = _TcpLink(*tcp) if tcp else _PtyLink()
        except OSError as exc:
            where = f"{tcp[0]}:{tcp[1]}" if tcp else "a pseudo-terminal"
            raise PortError(f"cannot listen on {where}: {exc.strerror}") from None
        self.video: VideoProcess | None = None
        if video:
            try:
                self.video = VideoProcess(*video, str(current_log) if current_log else None)
                for card in self.cards:
                    card.platform.video = self.video.receiver(card.position)
                self.video.update(self.cards)
            except OSError as exc:
                self.link.close()
                raise PortError(f"cannot listen for video on {video[0]}:{video[1]}: "
                                f"{exc.strerror}") from None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """What a master passes as ``--port``."""
        return self.link.url

    def _faults_of(self, position: int):
        return lambda: self._plan.for_card(position)

    def _reload_faults(self) -> None:
        """Re-read the fault file when it changed; a broken file keeps the last good plan."""
        if self.fault_file is None:
            return
        try:
            mtime = self.fault_file.stat().st_mtime
        except OSError:
            return
        if mtime == self._file_mtime:
            return
        self._file_mtime = mtime
        try:
            self._file_plan = load_plan(self.fault_file)
        except ConfigError as exc:
            log.error("%s; keeping the previous faults", exc)
            return
        self._plan = self.base_plan.merged(self._file_plan)
        log.info("faults loaded from %s", self.fault_file)

    def set_plan(self, plan: FaultPlan) -> None:
        """Replace the command-line faults while running (tests use this)."""
        self.base_plan = plan
        self._plan = plan.merged(self._file_plan)

    def serve_forever(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            wake = min(next_tick, self.bus.next_due())
            data = self.link.read(max(0.0, min(TICK_S, wake - time.monotonic())))
            if data:
                reply = self.bus.from_master(data)
                if reply:
                    self.link.write(reply)
            now = time.monotonic()
            if now >= next_tick:
                self._reload_faults()
                self.bus.tick()
                if self.video is not None:
                    self.video.update(self.cards)
                next_tick = time.monotonic() + TICK_S
            elif now >= self.bus.next_due():
                self.bus.wake()

    # -------- running in a background thread

    def start(self) -> Simulator:
        self._thread = threading.Thread(target=self.serve_forever, name="ledwarden-sim", daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask :meth:`serve_forever` to return (safe from a signal handler)."""
        self._stop.set()

    def stop(self) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.link.close()
        if self.video is not None:
            self.video.close()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
