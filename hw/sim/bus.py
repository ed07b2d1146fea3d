"""N simulated receiving cards on one RS-485 bus, with the wire's timing.

Every byte costs ten bit times at the configured baud rate (8N1) in each
direction, a card answers a short turnaround after the request's last byte
plus its own CPU time (:mod:`hw.sim.cardcpu`: MicroPython on an RP2040) and
the flash work its firmware asked for (:mod:`hw.sim.nor`), and several cards
answering at once garble each other as they would on a real multi-drop
line.  A card whose CPU falls behind the line buffers what it hears in its
UART's 2 KiB receive buffer, and loses what does not fit.  The bus keeps
count of every answer's delay against the spec's deadline for its command
and of the longest time a card's main loop was held up (its watchdog
allows 2 s), so a test can show that no deadline and no watchdog is broken.  Line noise and card faults come from a :class:`FaultPlan`
that may change while the bus runs.

The firmware runs unmodified: each :class:`SimCard` owns a
``hw.firmware.card.Card`` over a flash directory and a :class:`SimPlatform`.
Faults name cards by their position on the bus, 1..N, which is also the
address a fresh simulator gives them.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from pathlib import Path

from hw.firmware import framing as fw_framing
from hw.firmware.card import Card
from hw.firmware.flash import Flash
from hw.sim import cardcpu
from hw.sim.faults import CardFaults, FaultPlan, LineNoise
from hw.sim.images import RESET_AFTER_S, SILENT, behaviour_of
from hw.sim.platform import SimPlatform
from hw.sim.video import LedModel

log = logging.getLogger("ledwarden.sim")

DEFAULT_HW_MODEL = 0x0A01
DEFAULT_VERSION = (1, 0, 0)
SERIAL_BASE = 0x4C57_2026_0000_0000
TURNAROUND_S = 0.00015   # firmware time from a request's last byte to its answer's first
BOOT_TIME_S = 0.15       # a rebooting card hears nothing for this long
POWER_OFF_S = 0.5        # how long an injected power cut lasts
FW_CHUNK_CMD = 0x31
#: The spec's answer deadlines (wire-protocol.md section 3), from the request's last byte.
ANSWER_DEADLINE_S = {0x30: 0.25, 0x33: 1.0}   # FW_BEGIN, FW_COMMIT
DEFAULT_DEADLINE_S = 0.005
WATCHDOG_S = 2.0          # the card firmware's watchdog (hw/firmware/main.py)
RX_BUFFER_BYTES = 2048    # the card's UART receive buffer (hw/firmware/main.py)


def sleep_until(t: float, clock: Callable[[], float] = time.monotonic) -> None:
    delay = t - clock()
    if delay > 0:
        time.sleep(delay)


class SimFlash(Flash):
    """The card's flash, with the one flash fault the simulator injects: a cell that flips.

    While ``bad_flash_byte`` is set, the byte at that offset of a bank reads
    back with bit 0 flipped whenever a write covers it, so an image received
    intact fails its SHA-256 at ``FW_COMMIT`` (``VERIFY_FAILED``), as it
    would on a card with worn flash.
    """

    def __init__(self, directory: str, faults: Callable[[], CardFaults]) -> None:
        self._faults = faults
        super().__init__(directory)

    def bank_write(self, bank, offset, data):
        bad = self._faults().bad_flash_byte
        if bad is not None and offset <= bad < offset + len(data):
            flipped = bytearray(data)
            flipped[bad - offset] ^= 0x01
            data = bytes(flipped)
        super().bank_write(bank, offset, data)


class SimCard:
    """One card: its firmware, flash, platform, power state and place on the bus.

    Besides power (``off_until``: off or rebooting), a card may be *away*
    (``away_until``: powered, RAM intact, but its bus cable pulled), and the
    image it booted may carry a simulated behaviour (:mod:`hw.sim.images`)
    that silences it, resets it, or breaks its module links.
    """

    def __init__(self, position: int, directory: Path, faults: Callable[[], CardFaults], *,
                 hw_model: int = DEFAULT_HW_MODEL, version=DEFAULT_VERSION,
                 address: int | None = None, clock: Callable[[], float] = time.monotonic,
                 config: tuple | None = None, seed: int | None = None) -> None:
        self.position = position
        self.directory = directory
        self.faults = faults
        self.clock = clock
        self.serial = SERIAL_BASE + position
        Flash.provision(str(directory), self.serial, hw_model, version=version,
                        address=position if address is None else address, config=config)
        self.platform = SimPlatform(position, faults, clock)
        self.platform.leds = LedModel.for_card(self.serial, seed)
        self.platform.config = lambda: self.card.config
        self._black: tuple = (None, 0.0, False)   # stays_black_after_s armed, since, fired
        self._black_next = False                  # the next boot comes up black
        self.off_until: float | None = None   # powered off or rebooting until then
        self.away_until: float | None = None  # off the bus (inf: until the fault is cleared)
        self.reboot_reason = 0
        self.chunks_heard = 0
        self._armed: tuple = (None, None)     # the chunk-counting faults the count belongs to
        self._fired: set[str] = set()
        self.behaviour: str | None = None     # of the image running, see hw.sim.images
        self.reset_at: float | None = None    # when that image's watchdog resets the card
        self.busy_until = 0.0                 # still working on an unanswered request until then
        self._power_on()

    def _power_on(self, reason: int = 0) -> None:
        """A fresh start: RAM lost, the firmware boots from flash."""
        self.card = Card(SimFlash(str(self.directory), self.faults), self.platform)
        self.card.boot(reason)
        self._booted()

    def _booted(self) -> None:
        """Look at the image just booted: does it carry a simulated behaviour?"""
        self.behaviour = behaviour_of(self.directory / f"bank{self.card.active_bank}.bin")
        self.platform.links_down = self.behaviour == "unhealthy"
        self.platform.video.reset(stays_black=self._black_next)
        self._black_next = False
        after = RESET_AFTER_S.get(self.behaviour or "")
        self.reset_at = None if after is None else self.clock() + after
        if self.behaviour:
            log.info("card %d booted bank %d, an image marked %r", self.position,
                     self.card.active_bank, self.behaviour)

    @property
    def powered(self) -> bool:
        return self.off_until is None

    @property
    def listening(self) -> bool:
        """Powered, on the bus and running firmware that serves it."""
        return self.powered and not self.away and self.behaviour not in SILENT

    @property
    def away(self) -> bool:
        if self.away_until is not None and (
                self.clock() >= self.away_until
                or (self.away_until == math.inf and self.faults().drop_off_after_chunks is None)):
            self.away_until = None
            log.info("card %d: back on the bus", self.position)
        return self.away_until is not None

    def receive(self, data: bytes) -> list[bytes]:
        if not self.powered or self.away or self.behaviour in SILENT:
            return []
        out = self.card.receive(data)
        if self._chunk_faults(data):
            return []
        return out

    def _chunk_faults(self, data: bytes) -> bool:
        """Count FW_CHUNK frames for the faults that wait for them; True if one fired now."""
        f = self.faults()
        armed = (f.power_cut_after_chunks, f.drop_off_after_chunks)
        if armed != self._armed:
            self._armed, self.chunks_heard, self._fired = armed, 0, set()
        if armed == (None, None):
            return False
        self.chunks_heard += count_chunk_frames(data)
        if (f.drop_off_after_chunks is not None and "drop" not in self._fired
                and self.chunks_heard >= f.drop_off_after_chunks):
            self._fired.add("drop")
            self.away_until = self.clock() + (f.drop_off_for_s or math.inf)
            log.info("card %d: injected drop off the bus after %d FW_CHUNK frames",
                     self.position, self.chunks_heard)
            return True
        if (f.power_cut_after_chunks is not None and "cut" not in self._fired
                and self.chunks_heard >= f.power_cut_after_chunks):
            self._fired.add("cut")
            log.info("card %d: injected power cut after %d FW_CHUNK frames",
                     self.position, self.chunks_heard)
            self.power_cut()
            return True
        return False

    def power_cut(self, duration: float = POWER_OFF_S) -> None:
        self.off_until = self.clock() + duration
        self.reboot_reason = 0

    def watchdog_reset(self) -> None:
        self.off_until = self.clock() + BOOT_TIME_S
        self.reboot_reason = 2

    def after_transmit(self) -> None:
        if self.powered and self.card.reboot_requested:
            self.off_until = self.clock() + BOOT_TIME_S
            self.reboot_reason = 1

    def reboot_unanswered(self, at: float) -> None:
        """Reboot after a request that got no answer on the wire (a broadcast ``FW_COMMIT`` or
        ``REBOOT``, or any request to a muted card): from ``at``, when its work is done."""
        if self.powered and self.card.reboot_requested:
            self.off_until = at + BOOT_TIME_S
            self.reboot_reason = 1

    def due(self) -> float:
        """When :meth:`step` next has something to do (a boot, a watchdog reset, the next
        step of a bank erase), or inf."""
        erase = self.platform.flash_free_at() if self.powered and self.card.erasing else None
        return min(t for t in (self.off_until, self.reset_at, erase, math.inf) if t is not None)

    def step(self) -> bool:
        """Finish a boot or a watchdog reset that is due; True if the card is up and running."""
        if self.off_until is not None:
            if self.clock() < self.off_until:
                return False
            self.off_until = None
            if self.reboot_reason == 1:
                self.card.boot(1)   # a warm reboot: the same firmware object restarts
                self._booted()
            else:
                self._power_on(self.reboot_reason)
        if self.card.erasing and self.behaviour not in SILENT:
            self.card.service()   # the main loop starts the next erase as soon as the chip is free
        if self.reset_at is not None and self.clock() >= self.reset_at:
            log.info("card %d: the %s image's watchdog resets the card", self.position, self.behaviour)
            self.reset_at = None
            self.watchdog_reset()
            return False
        return True

    def tick(self) -> None:
        self._stays_black()
        if self.step() and self.behaviour not in SILENT:
            self.card.poll()

    def _stays_black(self) -> None:
        """The field failure ``stays_black_after_s`` stands for: once, that long after it is
        set, the card loses power and comes back unable to lock onto the running stream."""
        armed = self.faults().stays_black_after_s
        if armed != self._black[0]:
            self._black = (armed, self.clock(), False)
        if armed is not None and not self._black[2] and self.clock() - self._black[1] >= armed:
            self._black = (armed, self._black[1], True)
            self._black_next = True
            log.info("card %d: injected power cycle; it stays black until the sender restarts",
                     self.position)
            self.power_cut()



def count_chunk_frames(data: bytes) -> int:
    """FW_CHUNK frames in ``data``, decoded with the card's own framing (for the chunk-counting faults)."""
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
        #: Seconds the line was busy as modelled (request bytes; for an answered request also
        #: the turnaround, the card's work and the answer), whatever the host's CPU load: the
        #: part of a run's time that does not depend on how fast this machine simulates.
        self.line_busy_s = 0.0
        self.collisions = 0
        self._watchdog_done: set[int] = set()
        self._tail = b""          # bytes of a frame whose delimiter has not come yet
        #: Per command code: the longest answer delay seen (request's last byte to the answer's
        #: first) and how many answers came later than the spec's deadline.
        self.answer_delay_s: dict[int, float] = {}
        self.deadline_misses: dict[int, int] = {}
        #: The longest a card's main loop was held up by one request (CPU and waited-for flash).
        self.longest_hold_s = 0.0
        self.rx_overruns = 0      # reads a card lost because its receive buffer was full
        #: Reads that held several answered requests: a master waits for an answer (or its
        #: timeout) between two, so these are requests that piled up unread while this process
        #: lagged behind; their answers' delays say nothing of the cards and are not counted.
        self.bursts = 0

    def from_master(self, data: bytes) -> bytes:
        """Carry the master's bytes to the cards; return what comes back (after its wire time).

        Blocks for the wire time of ``data`` and of any answer, so the caller
        writes the answer at the moment its last byte would arrive.  The cards
        take the bytes in while they are on the wire, as real cards do, each on
        its own silicon: simulating 64 of them one after the other costs this
        process CPU time, which must not stretch the modelled line, so it
        overlaps the sleep instead of preceding it.
        """
        plan = self.plan()
        start = max(self.clock(), self._line_free)
        end = start + len(data) * self.byte_time
        self._line_free = end
        self.bytes_down += len(data)
        heard = self.downlink_noise.apply(data, plan)
        frames = self._frames(heard)
        answers, work, answered_cmd, answered = [], 0.0, None, 0
        for card in self.cards:
            if not card.listening:
                card.receive(heard)   # off, away or silent: hears nothing, spends nothing
                continue
            if card.busy_until - start > RX_BUFFER_BYTES * self.byte_time:
                self.rx_overruns += 1   # still busy with what it heard before: these bytes are lost
                continue
            out = card.receive(heard)
            cpu_done, handler = self._cpu(card, frames, start, end)
            flash = card.platform.take_work_s()
            # The main loop is held up by the last request's handler and the flash work it waits
            # for (an erase runs in the chip, not here); the watchdog is fed between requests.
            self.longest_hold_s = max(self.longest_hold_s, handler + flash)
            done = cpu_done + flash   # when the card is free again, and its answer can start
            if out and not card.faults().mute:
                answers.append(b"".join(out))
                work = max(work, done - end)
                answered += len(out)
                answered_cmd = frames[-1][1] if frames else None
            else:
                card.busy_until = max(card.busy_until, done)
                card.reboot_unanswered(done)
        sleep_until(end, self.clock)
        if not answers:
            self.line_busy_s += end - start
            return b""
        if len(answers) > 1:
            self.collisions += 1
        reply = collide(answers)
        if answered > 1:
            self.bursts += 1
        else:
            self._answered(answered_cmd, TURNAROUND_S + work)
        tx_end = end + TURNAROUND_S + work + len(reply) * self.byte_time
        self._line_free = tx_end
        self.bytes_up += len(reply)
        self.line_busy_s += tx_end - start
        sleep_until(tx_end, self.clock)
        for card in self.cards:
            card.after_transmit()
        return self.uplink_noise.apply(reply, plan)

    def _frames(self, heard: bytes) -> list[tuple[int, int | None, int | None]]:
        """``(encoded bytes, command, destination)`` of each frame whose delimiter is in
        ``heard`` (command and destination None for a broken one), decoded with the cards' own
        framing; the unfinished tail waits for the next read."""
        whole, _, self._tail = (self._tail + heard).rpartition(b"\x00")
        found = []
        for segment in whole.split(b"\x00") if whole else ():
            if segment:
                frame = fw_framing.decode(segment)  # (flags, dst, src, seq, cmd, payload) or None
                found.append((len(segment) + 1, frame[4] if frame else None,
                              frame[1] if frame else None))
        return found

    @staticmethod
    def _cpu(card: SimCard, frames, start: float, end: float) -> tuple[float, float]:
        """When the card's CPU is done with what it heard from ``start`` to ``end``, and how long
        the last frame's dispatch and handler took.

        One CPU: it decodes bytes as they arrive, from when it is free (``busy_until``) on, so
        decoding overlaps the wire time unless the line outpaces it; it cannot finish before the
        last byte is in; then the last frame's last piece, dispatch and handler follow
        (:func:`hw.sim.cardcpu.after_frame_ms`).
        """
        if not frames:
            return max(end, card.busy_until), 0.0
        address = card.card.address
        before = 0.0
        for i, (nbytes, cmd, dst) in enumerate(frames):
            mine = cmd if dst in (address, fw_framing.BROADCAST) else None
            after = cardcpu.after_frame_ms(nbytes, mine) / 1000
            if i < len(frames) - 1:
                before += cardcpu.decode_ms(nbytes) / 1000 + after
            else:
                before += cardcpu.decode_ms(max(0, nbytes - cardcpu.PIECE_BYTES)) / 1000
        decoded = max(end, max(start, card.busy_until) + before)
        return decoded + after, after

    def _answered(self, cmd: int | None, delay: float) -> None:
        if cmd is None:
            return
        self.answer_delay_s[cmd] = max(self.answer_delay_s.get(cmd, 0.0), delay)
        if delay > ANSWER_DEADLINE_S.get(cmd, DEFAULT_DEADLINE_S):
            self.deadline_misses[cmd] = self.deadline_misses.get(cmd, 0) + 1

    def next_due(self) -> float:
        """The earliest moment a card finishes a boot or is reset (inf if none is pending)."""
        return min((card.due() for card in self.cards), default=math.inf)

    def wake(self) -> None:
        """Finish the boots and resets that are due, between housekeeping ticks, so a reboot
        takes the modelled time and not up to a tick more."""
        now = self.clock()
        for card in self.cards:
            if card.due() <= now:
                card.step()

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
            "line_busy_s": round(self.line_busy_s, 6), "rx_overruns": self.rx_overruns,
            "longest_hold_s": round(self.longest_hold_s, 6),
            "deadline_misses": dict(self.deadline_misses), "bursts": self.bursts,
            "flipped_bits": d.flipped_bits + u.flipped_bits,
            "dropped_bytes": d.dropped_bytes + u.dropped_bytes,
            "inserted_bytes": d.inserted_bytes + u.inserted_bytes,
        }
