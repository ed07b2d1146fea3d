"""The card's own CPU time per request, measured on MicroPython (and CRC-32C throughput).

Run by ``test_card_cpu_time.py`` under the WebAssembly MicroPython; it
writes ``out/cpu.txt``, one line per measure: ``name microseconds`` per
request (or ``crc32c bytes_per_second``).  The request frames are built
before the clock starts, in batches small enough for a board's heap, and
each batch is timed over many requests because ``time.ticks_us`` moves in
whole milliseconds on this port.  The flash chip is instant here: what is
measured is the interpreter's work (deframing, CRC, decoding, the handler,
encoding the answer), the part ``hw.sim.cardcpu`` scales to an RP2040.
"""

import time

try:
    from hw.firmware import card as _card
    from hw.firmware import flash as _flash
    from hw.firmware import framing as _framing
except ImportError:  # MicroPython: flat layout
    import card as _card  # type: ignore
    import flash as _flash  # type: ignore
    import framing as _framing  # type: ignore

from card_session import SessionHw  # noqa: E402 - after the firmware, as on the board

ADDR = 5
BATCH = 40


class _Hw(SessionHw):
    """The session's platform, with a flash chip that is never busy and a log that stays empty."""

    def flash_started(self, op, nbytes):
        pass

    def show(self, pattern, level, brightness):
        pass


class _Bench:
    def __init__(self, directory):
        _flash.Flash.provision(directory, 0x1122334455667788, 7, address=ADDR)
        hw = _Hw()
        hw.out = (2480, 123456, 7)     # a board with GET_OUTPUT and a current sensor
        self.card = _card.Card(_flash.Flash(directory), hw)
        self.card.boot(0)
        self.seq = 0

    def frames(self, cmd, payloads, dst=ADDR):
        out = []
        for payload in payloads:
            self.seq += 1
            out.append(_framing.encode(0, dst, 0, self.seq, cmd, payload))
        return out

    def time_us(self, cmd, payloads, dst=ADDR):
        """Microseconds per request over ``payloads`` (sent in batches)."""
        total = 0
        for first in range(0, len(payloads), BATCH):
            frames = self.frames(cmd, payloads[first:first + BATCH], dst)
            began = time.ticks_ms()
            for f in frames:
                self.card.receive(f)
            total += time.ticks_diff(time.ticks_ms(), began)
        return total * 1000 // len(payloads)


def _chunk(index, size):
    return bytes([index & 0xFF, (index >> 8) & 0xFF, 0, 0]) + bytes([(index * 7 + i) & 0xFF for i in range(size)])


def measure(directory, out_path, rounds=400):
    b = _Bench(directory)
    lines = []
    lines.append("PING %d" % b.time_us(_card.PING, [b""] * rounds))
    lines.append("GET_STATUS %d" % b.time_us(_card.GET_STATUS, [b""] * rounds))
    lines.append("GET_CONFIG %d" % b.time_us(_card.GET_CONFIG, [b""] * rounds))
    lines.append("GET_OUTPUT %d" % b.time_us(_card.GET_OUTPUT, [b""] * rounds))
    lines.append("SET_BRIGHTNESS %d" % b.time_us(
        _card.SET_BRIGHTNESS, [bytes([i & 0xFF, 0x80]) for i in range(rounds // 4)]))
    lines.append("GET_EVENTS %d" % b.time_us(_card.GET_EVENTS, [b"\x00\x00\x00\x00"] * (rounds // 4)))
    lines.append("OTHER_CARD %d" % b.time_us(_card.PING, [b""] * rounds, dst=ADDR + 1))
    lines.append("OTHER_CARD_CHUNK %d" % b.time_us(
        _card.FW_CHUNK, [_chunk(i, 512) for i in range(rounds // 4)], dst=ADDR + 1))
    count = rounds // 2
    size = count * 512
    begin = bytes([size & 0xFF, (size >> 8) & 0xFF, (size >> 16) & 0xFF, 0, 7, 0, 2, 0, 0, 0,
                   0, 2]) + bytes(32)
    b.card.receive(b.frames(_card.FW_BEGIN, [begin])[0])
    while b.card.erasing:
        b.card.service()
    half = count // 2
    lines.append("FW_CHUNK %d" % b.time_us(_card.FW_CHUNK, [_chunk(i, 512) for i in range(half)]))
    lines.append("FW_CHUNK_BROADCAST %d" % b.time_us(
        _card.FW_CHUNK, [_chunk(i, 512) for i in range(half, count)], dst=0xFF))
    lines.append("FW_STATUS %d" % b.time_us(_card.FW_STATUS, [b""] * (rounds // 4)))
    data = bytes([i & 0xFF for i in range(4096)])
    began = time.ticks_ms()
    for _ in range(16):
        _framing.crc32c(data)
    ms = max(1, time.ticks_diff(time.ticks_ms(), began))
    lines.append("crc32c_bytes_per_s %d" % (16 * 4096 * 1000 // ms))
    with open(out_path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    measure("/board/card", "/board/out/cpu.txt")
