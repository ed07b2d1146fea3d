"""The LWP/1 codec: the spec's known answers, round trips, and a deframer that never breaks."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.errors import FrameError
from controller.protocol.framing import (
    FLAG_ERR,
    FLAG_RESP,
    MAX_PAYLOAD,
    Deframer,
    Frame,
    crc32c,
    decode,
    encode,
    encoded_size,
)

# docs/spec/wire-protocol.md, section 4
VECTORS = [
    (Frame(dst=0x01, src=0x00, seq=1, cmd=0x01),
     "02 01 02 01 02 01 02 01 01 05 f1 6f 88 ba 00"),
    (Frame(dst=0x05, src=0x00, seq=0x1234, cmd=0x12, payload=struct.pack("<H", 0x8000)),
     "02 01 02 05 05 34 12 12 02 01 06 80 07 df a0 ca 00"),
    (Frame(dst=0x00, src=0x05, seq=0x1234, cmd=0x12, payload=b"\x03", flags=FLAG_RESP | FLAG_ERR),
     "03 01 03 06 05 34 12 12 01 06 03 87 32 d8 14 00"),
    (Frame(dst=0xFF, src=0x00, seq=7, cmd=0x20, payload=struct.pack("<BH", 4, 0xFFFF)),
     "02 01 02 ff 02 07 03 20 03 08 04 ff ff 2c a7 4c 54 00"),
]


def test_crc_check_value():
    assert crc32c(b"123456789") == 0xE3069283


@pytest.mark.parametrize("frame,wire", VECTORS)
def test_spec_vectors_encode(frame, wire):
    assert encode(frame) == bytes.fromhex(wire)


@pytest.mark.parametrize("frame,wire", VECTORS)
def test_spec_vectors_decode(frame, wire):
    assert decode(bytes.fromhex(wire)[:-1]) == frame


def test_spec_vectors_through_deframer_one_byte_at_a_time():
    stream = b"".join(bytes.fromhex(w) for _, w in VECTORS)
    d = Deframer()
    got = [f for b in stream for f in d.feed(bytes([b]))]
    assert got == [f for f, _ in VECTORS]
    assert d.dropped_total == 0


frames = st.builds(
    Frame,
    dst=st.integers(0, 255), src=st.integers(0, 255), seq=st.integers(0, 0xFFFF),
    cmd=st.integers(0, 255), payload=st.binary(max_size=MAX_PAYLOAD),
    flags=st.sampled_from([0, FLAG_RESP, FLAG_RESP | FLAG_ERR]),
)


@given(frames)
def test_any_frame_round_trips(frame):
    wire = encode(frame)
    assert wire.endswith(b"\x00") and b"\x00" not in wire[:-1]
    assert len(wire) <= encoded_size(len(frame.payload))
    assert len(wire) - 1 <= 700
    assert decode(wire[:-1]) == frame


def _frame_ending_in_full_run() -> Frame:
    """A frame whose last zero is followed by exactly 254 non-zero bytes (CRC included)."""
    payload = bytes([7] * 6 + [0] + [9] * 250)          # 257 bytes: len field 0x0101 has no zero
    for seq in range(0x0101, 0x10000):
        frame = Frame(dst=1, src=2, seq=seq, cmd=4, payload=payload, flags=FLAG_RESP)
        if seq & 0xFF and seq >> 8 and 0 not in struct.pack("<I", crc32c(_raw_body(frame))):
            return frame
    raise AssertionError("no such frame")


def _raw_body(frame: Frame) -> bytes:
    return struct.pack("<BBBBHBH", 1, frame.flags, frame.dst, frame.src, frame.seq, frame.cmd,
                       len(frame.payload)) + frame.payload


def test_full_254_byte_run_has_no_empty_final_block_and_both_forms_decode():
    frame = _frame_ending_in_full_run()
    wire = encode(frame)[:-1]
    assert wire[-255] == 0xFF              # the last block is a full 254-byte run …
    assert len(wire) == 9 + 257 + 4 + 1    # … with no empty block after it (cobs package style)
    assert decode(wire) == frame
    assert decode(wire + b"\x01") == frame  # the other form, with the empty final block


@pytest.mark.parametrize("mutate,reason", [
    (lambda raw: raw[:-4] + bytes([raw[-4] ^ 1]) + raw[-3:], "crc"),
    (lambda raw: bytes([2]) + raw[1:], "version"),
    (lambda raw: raw[:1] + bytes([0x04]) + raw[2:], "flags"),
    (lambda raw: raw[:7] + struct.pack("<H", 3) + raw[9:], "length"),
    (lambda raw: raw[:5], "short"),
])
def test_bad_frames_are_rejected_with_their_reason(mutate, reason):
    from cobs import cobs
    raw = cobs.decode(encode(Frame(dst=1, src=0, seq=9, cmd=1, payload=b"ab"))[:-1])
    bad = bytearray(mutate(raw))
    if reason != "crc":  # fix the CRC so that the intended rule is what fails
        bad[-4:] = struct.pack("<I", crc32c(bytes(bad[:-4])))
    with pytest.raises(FrameError) as err:
        decode(cobs.encode(bytes(bad)))
    assert err.value.reason == reason
    assert isinstance(err.value, ValueError)


def test_bad_cobs_block_rejected():
    with pytest.raises(FrameError) as err:
        decode(b"\x05\x01\x02")  # the code byte promises more than there is
    assert err.value.reason == "cobs"


def test_oversize_run_is_dropped_and_stream_resynchronises():
    d = Deframer()
    good = encode(Frame(dst=1, src=0, seq=1, cmd=1))
    out = list(d.feed(b"\x01" * 800)) + list(d.feed(b"\x00" + good))
    assert out == [Frame(dst=1, src=0, seq=1, cmd=1)]
    assert d.dropped["oversize"] == 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=40), frames.map(encode)), max_size=12),
       st.lists(st.integers(1, 64), min_size=1, max_size=8))
def test_any_stream_in_any_chunking_never_raises_and_yields_only_valid_frames(parts, cuts):
    stream = b"".join(parts)
    d = Deframer()
    pos, i, got = 0, 0, []
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        got += list(d.feed(stream[pos:pos + step]))
        pos, i = pos + step, i + 1
    for frame in got:
        # every yielded frame re-encodes to bytes whose CRC holds
        assert decode(encode(frame)[:-1]) == frame


@settings(max_examples=300, deadline=None)
@given(frames, st.sets(st.integers(0, 10_000), min_size=1, max_size=5))
def test_up_to_five_flipped_bits_are_always_detected(frame, bits):
    wire = bytearray(encode(frame)[:-1])
    flips = {b % (len(wire) * 8) for b in bits}
    for b in flips:
        wire[b >> 3] ^= 1 << (b & 7)
    d = Deframer()
    got = list(d.feed(bytes(wire) + b"\x00"))
    # A flip may create a 0x00 and split the frame; nothing that comes out may differ from the original.
    assert all(f == frame for f in got)
    assert not got  # and with at least one bit changed, the original cannot survive either
