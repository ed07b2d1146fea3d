"""Shared pieces of the firmware tests (this module holds no tests).

Frames are built and checked here with the ``cobs`` and ``crcmod`` packages,
not with the firmware's own framing, so a mistake in the firmware's codec
cannot hide behind the same mistake in the test.  ``FakeHw`` is the platform
object a card talks to; its readings are plain attributes a test sets, and
its flash chip finishes every operation at once (``flash_ops`` lists them).
"""

import struct

import crcmod.predefined
from cobs import cobs

from hw.firmware import card as fw
from hw.firmware.flash import Flash

crc32c_ref = crcmod.predefined.mkCrcFun("crc-32c")

SERIAL = 0x1122334455667788
HW_MODEL = 7


def frame(dst, seq, cmd, payload=b"", flags=0, src=0):
    """A frame on the wire, encoded independently of the firmware."""
    body = struct.pack("<BBBBHBH", 1, flags, dst, src, seq, cmd, len(payload)) + bytes(payload)
    return cobs.encode(body + struct.pack("<I", crc32c_ref(body))) + b"\x00"


def parse(wire):
    """(flags, dst, src, seq, cmd, payload) of one transmitted frame; asserts it is well formed."""
    assert wire.endswith(b"\x00") and wire.count(0) == 1, wire
    raw = cobs.decode(wire[:-1])
    ver, flags, dst, src, seq, cmd, n = struct.unpack_from("<BBBBHBH", raw)
    assert ver == 1 and len(raw) == 13 + n
    assert struct.unpack_from("<I", raw, 9 + n)[0] == crc32c_ref(raw[:9 + n])
    return flags, dst, src, seq, cmd, raw[9:9 + n]


class FakeHw:
    """Platform double: a settable clock, sensors, links and LED faults."""

    def __init__(self):
        self.now = 1000
        self.temp, self.mv, self.rpm, self.fan = 250, 5000, 3000, True
        self.lost = set()  # module indexes whose link is down
        self.faulty = {}  # module -> [(x, y, ch), ...]
        self.shown = []
        self.flash_ops = []  # (op, nbytes) the card asked of its flash chip
        self.booted_as = []

    def millis(self):
        return self.now

    def sensors(self):
        return self.temp, self.mv, self.rpm, self.fan

    def module_link_ok(self, m):
        return m not in self.lost

    def detect_leds(self, m, w, h):
        return list(self.faulty.get(m, ()))

    def show(self, pattern, level, brightness):
        self.shown.append((pattern, level, brightness))

    def flash_ready(self):
        return True

    def flash_started(self, op, nbytes):
        self.flash_ops.append((op, nbytes))

    def booted(self, bank, version):
        self.booted_as.append((bank, version))


class Bench:
    """One provisioned card on a FakeHw, and a master that numbers requests.

    With ``settle`` (the default) the card's main loop finishes any bank
    erase between two requests, as it has time to on a real bus when the
    master waits for ``FW_STATUS`` to stop answering ``BUSY``; tests of the
    erase itself turn it off.
    """

    def __init__(self, tmp_path, address=0x05, flash_class=Flash, settle=True, **provision):
        self.dir = str(tmp_path / "card")
        Flash.provision(self.dir, SERIAL, HW_MODEL, address=address, **provision)
        self.hw = FakeHw()
        self.flash_class = flash_class
        self.card = fw.Card(flash_class(self.dir), self.hw)
        self.card.boot(0)
        self.seq = 100
        self.settle = settle

    def send(self, cmd, payload=b"", dst=None, seq=None):
        """Send one request; returns the parsed answers (0 or 1)."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        dst = self.card.address if dst is None else dst
        answers = [parse(w) for w in self.card.receive(frame(dst, seq, cmd, payload))]
        while self.settle and self.card.erasing:
            self.card.service()
        return answers

    def call(self, cmd, payload=b"", dst=None, seq=None):
        answers = self.send(cmd, payload, dst, seq)
        assert len(answers) == 1, answers
        flags, adst, src, aseq, acmd, body = answers[0]
        assert adst == 0 and acmd == cmd and flags in (1, 3)
        assert aseq == (self.seq if seq is None else seq)
        return flags, body

    def ok(self, cmd, payload=b"", dst=None):
        flags, body = self.call(cmd, payload, dst)
        assert flags == 1, "expected success, got error %r" % (body,)
        return body

    def err(self, cmd, payload=b"", dst=None):
        flags, body = self.call(cmd, payload, dst)
        assert flags == 3, "expected an error answer, got %r" % (body,)
        assert len(body) >= 1
        body[1:].decode("utf-8")
        return body[0]

    def reboot(self, reason=1):
        self.card.boot(reason)

    def power_cycle(self, flash_class=None):
        """A new Card from the same directory, as after a power cut."""
        self.card = fw.Card((flash_class or self.flash_class)(self.dir), self.hw)
        self.card.boot(0)

    def events(self, first=0):
        body = self.ok(fw.GET_EVENTS, struct.pack("<I", first))
        n = body[0]
        assert len(body) == 1 + 14 * n
        return [struct.unpack_from("<IIHI", body, 1 + 14 * i) for i in range(n)]

    def event_codes(self):
        return [e[2] for e in self.events()]

    def status(self):
        return struct.unpack("<hHHHII", self.ok(fw.GET_STATUS))


def begin_payload(image, version=(2, 0, 0), chunk=256, hw_model=HW_MODEL, sha=None):
    import hashlib
    sha = hashlib.sha256(image).digest() if sha is None else sha
    return struct.pack("<IHBBHH32s", len(image), hw_model, version[0], version[1], version[2], chunk, sha)


def chunks(image, chunk):
    return [struct.pack("<I", i) + image[i * chunk:(i + 1) * chunk]
            for i in range((len(image) + chunk - 1) // chunk)]


def upload(bench, image, version=(2, 0, 0), chunk=256, skip=(), dst=None):
    """FW_BEGIN and every chunk not in ``skip``; asserts each is accepted."""
    bench.ok(fw.FW_BEGIN, begin_payload(image, version, chunk), dst)
    for i, c in enumerate(chunks(image, chunk)):
        if i not in skip:
            bench.ok(fw.FW_CHUNK, c, dst)


def image_of(n, salt=0):
    return bytes((i * 7 + salt + (i >> 8)) & 0xFF for i in range(n))
