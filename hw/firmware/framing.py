"""LWP/1 framing for the receiving card: COBS, CRC-32C, frame codec, deframer.

This is the card's own copy of the wire format (shared/spec/wire-protocol.md
section 2), written from the spec and nothing else, so that the controller's
codec and this one check each other through bytes on the wire.  It uses only
what MicroPython has (``struct``, ``sys``) and no I/O.

Decoded frame, little-endian::

    0    1     2    3    4..5  6    7..8  9 .. 9+N-1   9+N .. 12+N
    ver  flags dst  src  seq   cmd  len   payload      crc32c(bytes 0 .. 8+N)

On the wire: ``cobs_encode(frame) + b"\\x00"``.

Speed matters on CPython: the simulator runs up to 64 cards in one process
and every card hears every byte.  So the deframer splits on ``0x00`` with
``bytes.find`` and slicing instead of a per-byte loop, COBS works on whole
blocks, and ``decode`` keeps a tiny memo of recent segments: the 64 cards of
one process all hear the same bytes, and decoding is a pure function of
them, so only the first card pays for the CRC of each frame.
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


def _make_table():
    # Reflected Castagnoli polynomial 0x1EDC6F41 -> 0x82F63B78.
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            if c & 1:
                c = (c >> 1) ^ 0x82F63B78
            else:
                c >>= 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _make_table()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli, reflected, init and xorout 0xFFFFFFFF).

    ``crc`` continues a previous result, so ``crc32c(b, crc32c(a)) ==
    crc32c(a + b)``.  Table-driven: one lookup per byte.
    """
    table = _CRC_TABLE
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


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


def _decode(segment):
    try:
        raw = cobs_decode(segment)
    except ValueError:
        return None
    n = len(raw)
    if n < _MIN_FRAME or n > _MAX_FRAME:
        return None
    ver, flags, dst, src, seq, cmd, length = struct.unpack_from(_HEADER, raw, 0)
    if ver != VERSION or flags & 0xFC or length != n - _MIN_FRAME:
        return None
    if crc32c(raw[:n - 4]) != struct.unpack_from("<I", raw, n - 4)[0]:
        return None
    return (flags, dst, src, seq, cmd, raw[_HEADER_LEN:n - 4])


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
    """Cuts a byte stream into segments at each 0x00, in any chunking.

    ``feed`` returns a list whose items are segments (``bytes``, delimiter
    removed) or ``None`` for a segment that grew past ``MAX_ENCODED`` bytes;
    such a segment is reported once and everything up to the next 0x00 is
    skipped, which is how a receiver resynchronises.  Empty segments (two
    delimiters in a row, which a master may send to flush receivers) are
    not frames and are not reported.
    """

    def __init__(self):
        self._buf = bytearray()
        self._skipping = False

    def reset(self):
        self._buf = bytearray()
        self._skipping = False

    def feed(self, data):
        if not isinstance(data, bytes):
            data = bytes(data)
        out = []  # type: list
        pos = 0
        while True:
            idx = data.find(b"\x00", pos)
            if idx < 0:
                if not self._skipping and pos < len(data):
                    if len(self._buf) + len(data) - pos > MAX_ENCODED:
                        self._buf = bytearray()
                        self._skipping = True
                        out.append(None)
                    else:
                        self._buf += data[pos:]
                return out
            seg = data[pos:idx]
            pos = idx + 1
            if self._skipping:
                self._skipping = False
                continue
            if self._buf:
                seg = bytes(self._buf) + seg
                self._buf = bytearray()
            if len(seg) > MAX_ENCODED:
                out.append(None)
            elif seg:
                out.append(seg)
