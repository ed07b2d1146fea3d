"""Shared pieces of the card-upgrade tests (this module holds no tests).

Images come from :func:`hw.sim.images.sim_image`, so a test can mark one as
firmware that crashes, hangs or fails its health check on a simulated card.
:class:`WireLog` counts what a run put on the bus through the engine's trace
hook, and :class:`ModelledTime` adds up a run's time as the simulator models
it, independent of how busy this machine is (see its docstring).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter

from controller.protocol import commands as c
from controller.protocol.bus import Bus
from controller.protocol.framing import ADDR_BROADCAST, encoded_size
from controller.upgrade.cards.firmware import CardFirmware, parse_version
from controller.upgrade.cards.flash import CardFlasher
from controller.upgrade.cards.run import FlashOptions
from hw.sim.bus import count_chunk_frames
from hw.sim.images import sim_image
from hw.sim.server import Simulator

HW_MODEL = 0x0A01   # the simulator's card model
OLD, NEW = "1.0.0", "2.0.0"


def firmware(size: int = 32 * 1024, *, version: str = NEW, seed: int = 1,
             behaviour: str | None = None, hw_model: int = HW_MODEL) -> CardFirmware:
    """An image as :func:`controller.upgrade.cards.firmware.open_firmware` would return it."""
    image = sim_image(size, seed=seed, behaviour=behaviour)
    return CardFirmware(hw_model, parse_version(version), image, hashlib.sha256(image).digest(),
                        "test-key")


class WireLog:
    """Frames a bus sent, by (command name, broadcast?), from the bus trace hook."""

    def __init__(self) -> None:
        self.sent: Counter = Counter()
        self.timeouts: Counter = Counter()
        self.order: list[tuple[str, int]] = []

    def __call__(self, kind: str, item, when: float) -> None:
        if kind == "tx":
            name = c.Cmd(item.cmd).name
            self.sent[name, item.dst == ADDR_BROADCAST] += 1
            self.order.append((name, item.dst))
        elif kind == "timeout":
            self.timeouts[c.Cmd(item.cmd).name] += 1

    def count(self, name: str, broadcast: bool | None = None) -> int:
        return sum(n for (cmd, b), n in self.sent.items()
                   if cmd == name and (broadcast is None or b == broadcast))


class ModelledTime:
    """A run's duration as modelled: what it would take on hardware with instant CPUs.

    The simulator adds up the line time it models for every exchange (request
    bytes, and for an answered one the turnaround, the card's work and the
    answer bytes: ``SimBus.line_busy_s``); to that come the waits the master
    is obliged to make with the line idle — the pause after each broadcast
    (``Bus.broadcast_pause``), the pauses while cards erase (``Bus.pause``),
    both traced as ``idle``, and the full answer window of every try that got
    no answer (while a card reboots, say).  Python overhead on either side is not in it,
    which is why it does not change with the machine's load.
    """

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.bus: Bus | None = None
        self.timeout_s = 0.0
        self.idle_s = 0.0
        self.late = 0          # answers that came after their window: the simulator fell behind
        self._busy0 = sim.bus.line_busy_s

    def __call__(self, kind: str, item, when: float) -> None:
        if kind == "late":
            self.late += 1
        elif kind == "idle":
            self.idle_s += item
        elif kind == "timeout":
            spec = c.spec_of(item.cmd)  # the engine's answer window for this command
            self.timeout_s += (spec.deadline_s + self.bus.wire_time(encoded_size(spec.max_response))
                               + self.bus.latency)

    @property
    def seconds(self) -> float:
        return self.sim.bus.line_busy_s - self._busy0 + self.timeout_s + self.idle_s


class WireChunks:
    """Counts the FW_CHUNK frames that reach the simulated line, with the cards' own decoder.

    A port read may end inside a frame, so the unfinished tail is carried to
    the next read before :func:`hw.sim.bus.count_chunk_frames` looks at it.
    """

    def __init__(self, sim: Simulator) -> None:
        self.count = 0
        self._tail = b""
        carry = sim.bus.from_master

        def counting(data: bytes) -> bytes:
            whole, _, self._tail = (self._tail + data).rpartition(b"\x00")
            self.count += count_chunk_frames(whole + b"\x00") if whole else 0
            return carry(data)
        sim.bus.from_master = counting


def run(sim: Simulator, fw: CardFirmware, addresses, trace=None, others=(), **options):
    """One engine run on a fresh bus to ``sim``; returns (report, wall seconds)."""
    defaults = {"boot_timeout_s": 10.0, "drop_grace_s": 3.0}
    with Bus(sim.url, trace=trace) as bus:
        if isinstance(trace, ModelledTime):
            trace.bus = bus
        started = time.monotonic()
        report = CardFlasher(bus, fw, addresses, FlashOptions(**{**defaults, **options}),
                             others=others).run()
        return report, time.monotonic() - started


def ping(sim: Simulator, address: int) -> c.PingReply:
    with Bus(sim.url) as bus:
        return bus.call(address, c.Cmd.PING)


def states(report) -> dict[int, str]:
    return {a: k.state for a, k in report.cards.items()}
