"""LWP/1 framing for the receiving card: COBS, CRC-32C, frame codec, deframer.

This is the card's own copy of the wire format (docs/spec/wire-protocol.md
section 2), written from the spec and nothing else, so that the controller's
codec and this one check each other through bytes on the wire.  It uses only
what MicroPython has (``struct``, ``sys``) and no I/O.

Decoded frame, little-endian::

    0    1     2    3    4..5  6    7..8  9 .. 9+N-1   9+N .. 12+N
    ver  flags dst  src  seq   cmd  len   payload      crc32c(bytes 0 .. 8+N)

On the wire: ``cobs_encode(frame) + b"\\x00"``.

Speed matters on both interpreters, for different reasons:

- on a card, MicroPython on an RP2040 needs about as long to un-COBS and CRC
  a byte as the byte takes on the wire at 921 600 baud.  So the deframer
  decodes each piece of a frame as it arrives (a running COBS state and a
  running CRC, checked against the CRC-32C residue at the delimiter): by
  the frame's last byte only its last piece is left, and the answer can
  still leave within the 5 ms the spec allows (docs/firmware.md, "CPU time");
- in the simulator, CPython runs up to 64 cards in one process and every
  card hears every byte.  So a frame that arrives whole in one piece is
  decoded by ``decode``, which keeps a tiny memo of recent segments: the 64
  cards all hear the same bytes, and decoding is a pure function of them,
  so only the first card pays for the CRC.  (On MicroPython, where one
  card runs per interpreter and RAM is scarce, there is no memo and every
  frame goes the incremental way.)  Both ways give the same result for the
  same bytes, which the tests check.

Either way the work is done by ``bytes.find`` and slicing, not a loop per
byte, except for the CRC itself.
"""

import struct
import sys

VERSION = 1
RESP = 0x01
ERR = 0x02
BROADCAST = 0xFF
CONTROLLER = 0x00
MAX_PAYLOAD = 640
#: More encoded bytes than this before a delimiter is a broken frame (spec §2).
MAX_ENCODED = 700

_HEADER = "<BBBBHBH"
_HEADER_LEN = 9
_MIN_FRAME = _HEADER_LEN + 4
_MAX_FRAME = _HEADER_LEN + MAX_PAYLOAD + 4


def _make_tables():
    """The CRC-32C table split into the low 24 and the high 8 bits of each entry.

    Why split: MicroPython's small integers hold 30 bits plus sign on 32-bit
    ports, and 192 of the 256 entries of a 32-bit table do not fit, so a
    32-bit CRC allocates big integers on the heap for every byte (measured:
    96 bytes of heap per byte checked, a garbage collection every 2 KiB on a
    card's 192 KiB heap).  Split 24/8, the running CRC and every entry stay
    small integers, and the high part needs no shifting of its own.
    """
    low, high = [], []
    for n in range(256):
        c = n
        for _ in range(8):
            # Reflected Castagnoli polynomial 0x1EDC6F41 -> 0x82F63B78.
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        low.append(c & 0xFFFFFF)
        high.append(c >> 24)
    return tuple(low), tuple(high)


_CRC_LOW, _CRC_HIGH = _make_tables()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli, reflected, init and xorout 0xFFFFFFFF).

    ``crc`` continues a previous result, so ``crc32c(b, crc32c(a)) ==
    crc32c(a + b)``.  Table-driven, one lookup per byte, on the CRC held as
    its low 24 bits ``a`` and its high 8 bits ``b`` (see ``_make_tables``):
    ``crc >> 8`` is ``(a >> 8) | (b << 16)`` with nothing left above, so the
    new high byte is the table's alone.
    """
    tlow, thigh = _CRC_LOW, _CRC_HIGH
    crc ^= 0xFFFFFFFF
    a = crc & 0xFFFFFF
    b = crc >> 24
    for x in data:
        i = (a ^ x) & 0xFF
        a = ((a >> 8) | (b << 16)) ^ tlow[i]
        b = thigh[i]
    return ((b << 24) | a) ^ 0xFFFFFFFF


def cobs_encode(data):
    """COBS-encode ``data`` (no delimiter) exactly like the ``cobs`` package.

    Works per zero-free run: each run becomes full 254-byte blocks (code
    0xFF, no implied zero) and one final block.  The only subtle case is the
    spec's: when the data ends with a full 254-byte run, no empty final block
    (code 0x01) follows it.
    """
    out = bytearray()
    parts = bytes(data).split(b"\x00")
    last = len(parts) - 1
    for i, part in enumerate(parts):
        n = len(part)
        j = 0
        while n - j >= 254:
            out.append(0xFF)
            out += part[j:j + 254]
            j += 254
        if i == last and n and j == n:
            break
        out.append(n - j + 1)
        out += part[j:]
    return bytes(out)


def cobs_decode(data):
    """Decode one COBS block sequence (no delimiter); ``ValueError`` if broken.

    Accepts both encodings of a final full run: with or without the empty
    final block, as the spec asks of decoders.
    """
    data = bytes(data)
    if b"\x00" in data:
        raise ValueError("zero byte inside a COBS frame")
    out = bytearray()
    n = len(data)
    i = 0
    while i < n:
        code = data[i]
        end = i + code
        if end > n:
            raise ValueError("COBS block runs past the end of the frame")
        out += data[i + 1:end]
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


def encode(flags, dst, src, seq, cmd, payload=b""):
    """One frame as it goes on the wire: COBS of header+payload+CRC, then 0x00."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("payload of %d bytes exceeds %d" % (len(payload), MAX_PAYLOAD))
    body = struct.pack(_HEADER, VERSION, flags, dst, src, seq & 0xFFFF, cmd, len(payload)) + bytes(payload)
    return cobs_encode(body + struct.pack("<I", crc32c(body))) + b"\x00"


#: crc32c(frame + its little-endian CRC) for every intact frame: the CRC-32C residue.
_RESIDUE = 0x48674BC7


def _check(raw, crc_ok):
    """The frame tuple for decoded bytes ``raw`` whose CRC check gave ``crc_ok``, or None."""
    n = len(raw)
    if n < _MIN_FRAME or n > _MAX_FRAME:
        return None
    ver, flags, dst, src, seq, cmd, length = struct.unpack_from(_HEADER, raw, 0)
    if ver != VERSION or flags & 0xFC or length != n - _MIN_FRAME or not crc_ok:
        return None
    return (flags, dst, src, seq, cmd, bytes(raw[_HEADER_LEN:n - 4]))


def _decode(segment):
    try:
        raw = cobs_decode(segment)
    except ValueError:
        return None
    return _check(raw, crc32c(raw) == _RESIDUE)


# Memo of recently decoded segments (see module docstring).  Off on
# MicroPython, where one card runs per interpreter and RAM is scarce.
_MEMO_SIZE = 16 if sys.implementation.name == "cpython" else 0
_memo = {}  # type: dict
_MISS = object()


def decode(segment):
    """Check one received segment (COBS bytes between delimiters).

    Returns ``(flags, dst, src, seq, cmd, payload)`` for a well-formed frame,
    or ``None`` for anything the spec says to drop and count in ``rx_bad``:
    bad COBS, a length that does not add up, version other than 1, a reserved
    flag bit, a CRC mismatch.  Addressing is the caller's business.
    """
    if not _MEMO_SIZE:
        return _decode(segment)
    segment = bytes(segment)
    hit = _memo.get(segment, _MISS)
    if hit is _MISS:
        hit = _decode(segment)
        if len(_memo) >= _MEMO_SIZE:
            _memo.clear()
        _memo[segment] = hit
    return hit


class Deframer:
    """Turns a byte stream, in any chunking, into decoded frames, decoding as bytes arrive.

    ``feed`` returns a list whose items are decoded frames (as ``decode``
    gives them) or ``None`` for a frame the spec says to drop: one that
    fails any check, or one that grew past ``MAX_ENCODED`` bytes before a
    delimiter, which is reported once while everything up to the next 0x00
    is skipped (that is how a receiver resynchronises).  Empty segments (two
    delimiters in a row, which a master may send to flush receivers) are
    not frames and are not reported.

    State between pieces: the bytes decoded so far and their running CRC,
    how many encoded bytes of the current COBS block are still to come, and
    whether a zero is owed before the next block (every block but a full
    254-byte one ends in an implied zero, unless it is the frame's last).
    """

    def __init__(self):
        self.reset()

    def reset(self):
        self._start_frame()
        self._skipping = False

    def _start_frame(self):
        self._raw = bytearray()
        self._crc = 0
        self._left = 0       # encoded bytes still to copy from the current COBS block
        self._zero = False   # a zero is owed before the next block
        self._seen = 0       # encoded bytes of this frame so far

    def feed(self, data):
        if not isinstance(data, bytes):
            data = bytes(data)
        out = []  # type: list
        pos, n = 0, len(data)
        while pos < n:
            end = data.find(b"\x00", pos)
            if end < 0:
                self._take(data, pos, n, out)
                return out
            if _MEMO_SIZE and not self._seen and not self._skipping and end - pos <= MAX_ENCODED:
                if end > pos:  # a whole segment in one piece: the memoised decode
                    out.append(decode(data[pos:end]))
            else:
                self._take(data, pos, end, out)
                if self._skipping:
                    self._skipping = False
                elif self._seen:
                    out.append(self._finish())
                self._start_frame()
            pos = end + 1
        return out

    def _take(self, data, pos, end, out):
        """Decode the encoded bytes ``data[pos:end]`` of the current frame (no delimiter in them)."""
        if self._skipping or pos == end:
            return
        self._seen += end - pos
        if self._seen > MAX_ENCODED:
            self._start_frame()
            self._skipping = True
            out.append(None)
            return
        while pos < end:
            if self._left == 0:
                code = data[pos]
                pos += 1
                if self._zero:
                    self._add(b"\x00")
                self._left = code - 1
                self._zero = code != 0xFF
            else:
                k = min(self._left, end - pos)
                self._add(data[pos:pos + k])
                pos += k
                self._left -= k

    def _add(self, decoded):
        self._raw += decoded
        self._crc = crc32c(decoded, self._crc)

    def _finish(self):
        if self._left:
            return None  # the last COBS block runs past the delimiter
        return _check(self._raw, self._crc == _RESIDUE)
