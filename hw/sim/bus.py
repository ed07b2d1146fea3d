"""N simulated receiving cards on one RS-485 bus, with the wire's timing.

Every byte costs ten bit times at the configured baud rate (8N1) in each
direction, a card answers a short turnaround after the request's last byte
plus whatever slow work its firmware reported (flash erase, image hash), and
several cards answering at once garble each other as they would on a real
multi-drop line.  Line noise and card faults come from a :class:`FaultPlan`
that may change while the bus runs.

The firmware runs unmodified: each :class:`SimCard` owns a
``hw.firmware.card.Card`` over a flash directory and a :class:`SimPlatform`.
Faults name cards by their position on the bus, 1..N, which is also the
address a fresh simulator gives them.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from pathlib import Path

from hw.firmware import framing as fw_framing
from hw.firmware.card import Card
from hw.firmware.flash import Flash
from hw.sim.faults import CardFaults, FaultPlan, LineNoise
from hw.sim.platform import SimPlatform

log = logging.getLogger("ledwarden.sim")

DEFAULT_HW_MODEL = 0x0A01
DEFAULT_VERSION = (1, 0, 0)
SERIAL_BASE = 0x4C57_2026_0000_0000
TURNAROUND_S = 0.00015   # firmware time from a request's last byte to its answer's first
BOOT_TIME_S = 0.15       # a rebooting card hears nothing for this long
POWER_OFF_S = 0.5        # how long an injected power cut lasts
FW_CHUNK_CMD = 0x31


def sleep_until(t: float, clock: Callable[[], float] = time.monotonic) -> None:
    delay = t - clock()
    if delay > 0:
        time.sleep(delay)


class SimCard:
    """One card: its firmware, flash, platform, and power state."""

    def __init__(self, position: int, directory: Path, faults: Callable[[], CardFaults], *,
                 hw_model: int = DEFAULT_HW_MODEL, version=DEFAULT_VERSION,
                 address: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.position = position
        self.directory = directory
        self.faults = faults
        self.clock = clock
        self.serial = SERIAL_BASE + position
        Flash.provision(str(directory), self.serial, hw_model, version=version,
                        address=position if address is None else address)
        self.platform = SimPlatform(position, faults, clock)
        self.off_until: float | None = None   # powered off or rebooting until then
        self.reboot_reason = 0
        self.chunks_heard = 0
        self._power_on()

    def _power_on(self, reason: int = 0) -> None:
        """A fresh start: RAM lost, the firmware boots from flash."""
        self.card = Card(Flash(str(self.directory)), self.platform)
        self.card.boot(reason)

    @property
    def powered(self) -> bool:
        return self.off_until is None

    def receive(self, data: bytes) -> list[bytes]:
        if not self.powered:
            return []
        out = self.card.receive(data)
        cut_after = self.faults().power_cut_after_chunks
        if cut_after is not None:
            self.chunks_heard += count_chunk_frames(data)
            if self.chunks_heard >= cut_after:
                log.info("card %d: injected power cut after %d FW_CHUNK frames",
                         self.position, self.chunks_heard)
                self.power_cut()
                return []
        return out

    def power_cut(self, duration: float = POWER_OFF_S) -> None:
        self.off_until = self.clock() + duration
        self.reboot_reason = 0
        self.chunks_heard = 0

    def watchdog_reset(self) -> None:
        self.off_until = self.clock() + BOOT_TIME_S
        self.reboot_reason = 2

    def after_transmit(self) -> None:
        if self.powered and self.card.reboot_requested:
            self.off_until = self.clock() + BOOT_TIME_S
            self.reboot_reason = 1

    def tick(self) -> None:
        if self.off_until is not None:
            if self.clock() < self.off_until:
                return
            self.off_until = None
            if self.reboot_reason == 1:
                self.card.boot(1)   # a warm reboot: the same firmware object restarts
            else:
                self._power_on(self.reboot_reason)
        self.card.poll()


def count_chunk_frames(data: bytes) -> int:
    """FW_CHUNK frames in ``data``, decoded with the card's own framing (for the power-cut trigger)."""
    count = 0
    for packet in data.split(b"\x00"):
        frame = fw_framing.decode(packet) if packet else None  # (flags, dst, src, seq, cmd, payload)
        if frame is not None and frame[4] == FW_CHUNK_CMD:
            count += 1
    return count


def collide(answers: list[bytes]) -> bytes:
    """What the master hears when several cards drive the line at once.

    Idle RS-485 reads as 1s and a driver pulling low wins on most
    transceivers, so overlapping bytes AND together; the longer answer's
    tail follows.  The result almost never passes the CRC, which is the point.
    """
    if len(answers) == 1:
        return answers[0]
    longest = max(len(a) for a in answers)
    out = bytearray(b"\xff" * longest)
    for a in answers:
        for i, byte in enumerate(a):
            out[i] &= byte
    return bytes(out)


class SimBus:
    """The shared line: routes the master's bytes to every card and their answers back."""

    def __init__(self, cards: list[SimCard], baud: int, plan: Callable[[], FaultPlan],
                 rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.cards = cards
        self.baud = baud
        self.plan = plan
        self.clock = clock
        rng = rng or random.Random()
        self.downlink_noise = LineNoise(rng)
        self.uplink_noise = LineNoise(rng)
        self.byte_time = 10.0 / baud
        self._line_free = 0.0
        self.bytes_down = 0
        self.bytes_up = 0
        self.collisions = 0
        self._watchdog_done: set[int] = set()

    def from_master(self, data: bytes) -> bytes:
        """Carry the master's bytes to the cards; return what comes back (after its wire time).

        Blocks for the wire time of ``data`` and of any answer, so the caller
        writes the answer at the moment its last byte would arrive.
        """
        plan = self.plan()
        start = max(self.clock(), self._line_free)
        end = start + len(data) * self.byte_time
        self._line_free = end
        self.bytes_down += len(data)
        heard = self.downlink_noise.apply(data, plan)
        sleep_until(end, self.clock)
        answers, work = [], 0.0
        for card in self.cards:
            out = card.receive(heard)
            work = max(work, card.platform.take_work_s())
            if out and not card.faults().mute:
                answers.append(b"".join(out))
        if not answers:
            return b""
        if len(answers) > 1:
            self.collisions += 1
        reply = collide(answers)
        tx_end = end + TURNAROUND_S + work + len(reply) * self.byte_time
        self._line_free = tx_end
        self.bytes_up += len(reply)
        sleep_until(tx_end, self.clock)
        for card in self.cards:
            card.after_transmit()
        return self.uplink_noise.apply(reply, plan)

    def tick(self) -> None:
        """Housekeeping every ~100 ms: power and reboots, sensor polling, one-shot faults."""
        plan = self.plan()
        for card in self.cards:
            if plan.for_card(card.position).watchdog_reset:
                if card.position not in self._watchdog_done:
                    self._watchdog_done.add(card.position)
                    card.watchdog_reset()
            else:
                self._watchdog_done.discard(card.position)
            card.tick()

    def line_stats(self) -> dict:
        d, u = self.downlink_noise, self.uplink_noise
        return {
            "bytes_down": self.bytes_down, "bytes_up": self.bytes_up, "collisions": self.collisions,
            "flipped_bits": d.flipped_bits + u.flipped_bits,
            "dropped_bytes": d.dropped_bytes + u.dropped_bytes,
            "inserted_bytes": d.inserted_bytes + u.inserted_bytes,
        }
