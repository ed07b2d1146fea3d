"""The card's own COBS, CRC-32C and frame codec against the spec and references."""

import struct

import crcmod.predefined
import pytest
from cobs import cobs
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.firmware import framing

crc_ref = crcmod.predefined.mkCrcFun("crc-32c")

# Spec §4: (wire bytes, (flags, dst, src, seq, cmd, payload))
VECTORS = [
    ("02 01 02 01 02 01 02 01 01 05 f1 6f 88 ba 00", (0, 0x01, 0, 1, 0x01, b"")),
    ("02 01 02 05 05 34 12 12 02 01 06 80 07 df a0 ca 00", (0, 0x05, 0, 0x1234, 0x12, b"\x00\x80")),
    ("03 01 03 06 05 34 12 12 01 06 03 87 32 d8 14 00", (3, 0x00, 0x05, 0x1234, 0x12, b"\x03")),
    ("02 01 02 ff 02 07 03 20 03 08 04 ff ff 2c a7 4c 54 00", (0, 0xFF, 0, 7, 0x20, b"\x04\xff\xff")),
]


def test_crc_check_value():
    assert framing.crc32c(b"123456789") == 0xE3069283
    assert framing.crc32c(b"") == 0


@given(st.binary(max_size=700), st.binary(max_size=50))
def test_crc_matches_crcmod_and_continues(data, more):
    assert framing.crc32c(data) == crc_ref(data)
    assert framing.crc32c(more, framing.crc32c(data)) == crc_ref(data + more)


@pytest.mark.parametrize("wire,fields", VECTORS)
def test_spec_vectors_encode_byte_exact(wire, fields):
    flags, dst, src, seq, cmd, payload = fields
    assert framing.encode(flags, dst, src, seq, cmd, payload) == bytes.fromhex(wire)


@pytest.mark.parametrize("wire,fields", VECTORS)
def test_spec_vectors_decode(wire, fields):
    assert framing.Deframer().feed(bytes.fromhex(wire)) == [fields]
    assert framing.decode(bytes.fromhex(wire)[:-1]) == fields


RUNS = [0, 1, 253, 254, 255, 507, 508, 509, 762, 1000]


@pytest.mark.parametrize("n", RUNS)
@pytest.mark.parametrize("around", [b"", b"\x00", b"\x00\x00"])
def test_cobs_long_runs_like_the_cobs_package(n, around):
    for data in (b"\x01" * n + around, around + b"\x02" * n, around + b"\x03" * n + around):
        enc = framing.cobs_encode(data)
        assert enc == cobs.encode(data)
        assert framing.cobs_decode(enc) == data


def test_cobs_full_run_at_end_has_no_empty_block_but_decoder_takes_both():
    data = bytes(range(1, 255))  # 254 non-zero bytes
    enc = framing.cobs_encode(data)
    assert enc == b"\xff" + data
    assert framing.cobs_decode(enc) == data
    assert framing.cobs_decode(enc + b"\x01") == data


@given(st.binary(max_size=2000))
def test_cobs_matches_package(data):
    enc = framing.cobs_encode(data)
    assert enc == cobs.encode(data)
    assert b"\x00" not in enc
    assert framing.cobs_decode(enc) == data


@pytest.mark.parametrize("bad", [b"\x05\x01\x02", b"\x02", b"\x01\x00\x01", b"\xff" + b"\x01" * 10])
def test_cobs_decoder_rejects_broken_blocks(bad):
    with pytest.raises(ValueError):
        framing.cobs_decode(bad)


def _raw(flags=0, dst=1, src=0, seq=1, cmd=1, payload=b"", ver=1, length=None, crc=None):
    n = len(payload) if length is None else length
    body = struct.pack("<BBBBHBH", ver, flags, dst, src, seq, cmd, n) + payload
    return body + struct.pack("<I", crc_ref(body) if crc is None else crc)


@pytest.mark.parametrize("raw", [
    _raw(ver=2), _raw(ver=0), _raw(flags=0x04), _raw(flags=0x80),
    _raw(payload=b"ab", length=1), _raw(payload=b"ab", length=3),
    _raw(crc=0), b"\x01\x00\x01\x00\x01\x00\x01\x00\x00\x00\x00\x00",
    _raw(payload=b"\x55" * 641),
])
def test_decode_drops_what_the_spec_drops(raw):
    assert framing.decode(cobs.encode(raw)) is None


def test_decode_keeps_a_full_640_byte_payload():
    raw = _raw(payload=bytes(range(256)) * 2 + b"\x00" * 128)
    enc = cobs.encode(raw)
    assert len(enc) <= framing.MAX_ENCODED
    assert framing.decode(enc)[5] == raw[9:-4]


def test_every_single_bit_flip_is_caught():
    raw = _raw(dst=5, seq=0x1234, cmd=0x12, payload=b"\x00\x80")
    for i in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[i // 8] ^= 1 << (i % 8)
        assert framing.decode(cobs.encode(bytes(flipped))) is None, i


def test_deframer_any_split_point():
    wire = b"".join(bytes.fromhex(v[0]) for v in VECTORS)
    for cut in range(len(wire) + 1):
        d = framing.Deframer()
        assert d.feed(wire[:cut]) + d.feed(wire[cut:]) == [v[1] for v in VECTORS]


def test_deframer_byte_by_byte_and_empty_segments():
    wire = b"\x00\x00" + bytes.fromhex(VECTORS[0][0]) + b"\x00"
    d = framing.Deframer()
    frames = []
    for b in wire:
        frames += d.feed(bytes([b]))
    assert frames == [VECTORS[0][1]]


def test_deframer_overlong_is_reported_once_then_resyncs():
    good = bytes.fromhex(VECTORS[0][0])
    d = framing.Deframer()
    out = d.feed(b"\x11" * 400)
    out += d.feed(b"\x22" * 400)  # past 700 here
    out += d.feed(b"\x33" * 5000)
    out += d.feed(b"\x44\x00" + good)
    assert out == [None, VECTORS[0][1]]
    assert framing.Deframer().feed(b"\x11" * 701 + b"\x00" + good) == [None, VECTORS[0][1]]
    # 700 encoded bytes are still a frame (a broken one here: reported, not skipped)
    assert framing.Deframer().feed(b"\x11" * 700 + b"\x00" + good) == [None, VECTORS[0][1]]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=40), st.integers(0, 3)), max_size=12),
       st.lists(st.integers(1, 60), max_size=30), st.booleans())
def test_pieces_decode_like_whole_segments(parts, cuts, memo):
    """Frames fed in any pieces give what ``decode`` gives each whole segment, with and
    without the simulator's memo path, for good frames, damaged ones and noise alike."""
    wire = bytearray()
    for payload, damage in parts:
        one = bytearray(framing.encode(0, 5, 0, len(wire) & 0xFFFF, 0x12, payload))
        if damage == 1 and len(one) > 2:
            one[len(one) // 2] ^= 0x10 if one[len(one) // 2] != 0x10 else 0x20
        elif damage == 2:
            one = one[:-1] + b"\x00\x00"   # an empty segment after it
        elif damage == 3:
            one = bytes(payload).replace(b"\x00", b"") + b"\x00"  # noise
        wire += one
    wire = bytes(wire)
    want = [framing.decode(s) for s in wire.split(b"\x00")[:-1] if s]
    old = framing._MEMO_SIZE
    framing._MEMO_SIZE = 16 if memo else 0
    try:
        d, got, pos = framing.Deframer(), [], 0
        for n in cuts + [len(wire)]:
            got += d.feed(wire[pos:pos + n])
            pos += n
    finally:
        framing._MEMO_SIZE = old
    assert got == want
