"""The card's receiver under garbage, any chunking, and a busy bus."""

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw.firmware import card as fw
from hw.firmware import framing
from test_firmware_kit import Bench, frame, parse

_settings = settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _split(data, cuts):
    cuts = sorted(set(c % (len(data) + 1) for c in cuts))
    pieces, prev = [], 0
    for c in cuts + [len(data)]:
        pieces.append(data[prev:c])
        prev = c
    return pieces


def _feed(card, pieces):
    out = []
    for p in pieces:
        out += card.receive(p)
    return out


@pytest.fixture
def bench(tmp_path):
    return Bench(tmp_path)


@_settings
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_random_bytes_never_raise_and_chunking_does_not_matter(tmp_path_factory, data, cuts):
    b = Bench(tmp_path_factory.mktemp("c"))
    whole = b.card.receive(data)
    ok, bad = b.card.rx_ok, b.card.rx_bad
    b.reboot(0)
    assert _feed(b.card, _split(data, cuts)) == whole
    assert (b.card.rx_ok, b.card.rx_bad) == (ok, bad)
    assert bad <= data.count(0) + 1


garbage = st.binary(min_size=1, max_size=1200).map(lambda g: g.replace(b"\x00", b"\x5a"))
request = st.tuples(st.sampled_from([fw.PING, fw.GET_BRIGHTNESS, fw.GET_CONFIG, fw.FW_STATUS]),
                    st.integers(0, 0xFFFF), st.sampled_from([0x05, 0x06, 0xFF]))


@_settings
@given(items=st.lists(st.one_of(garbage, request), max_size=25),
       cuts=st.lists(st.integers(min_value=0), max_size=30))
def test_frames_between_garbage_are_all_answered(tmp_path_factory, items, cuts):
    b = Bench(tmp_path_factory.mktemp("c"))
    stream, expect_answers, expect_bad, expect_ok = b"", [], 0, 0
    for it in items:
        if isinstance(it, bytes):
            stream += it + b"\x00"
            expect_bad += 1
            continue
        cmd, seq, dst = it
        stream += frame(dst, seq, cmd)
        if dst in (0x05, 0xFF):
            expect_ok += 1
        if dst == 0x05:
            expect_answers.append((seq, cmd))  # a repeat too, from memory
    answers = [parse(w) for w in _feed(b.card, _split(stream, cuts))]
    assert [(a[3], a[4]) for a in answers] == expect_answers
    assert all(a[0] == 1 and a[1] == 0 and a[2] == 5 for a in answers)
    assert (b.card.rx_ok, b.card.rx_bad) == (expect_ok, expect_bad)


def test_garbage_without_delimiter_eats_only_the_next_frame(bench):
    card = bench.card
    assert card.receive(b"\x33" * 50) == []
    assert card.receive(frame(5, 1, fw.PING)) == []  # glued to the garbage: one bad frame
    assert len(card.receive(frame(5, 2, fw.PING))) == 1
    assert (card.rx_ok, card.rx_bad) == (1, 1)


def test_overlong_counts_once_and_resyncs(bench):
    card = bench.card
    for _ in range(10):
        assert card.receive(b"\x44" * 333) == []
    assert card.rx_bad == 1
    assert card.receive(b"\x00") == []
    assert len(card.receive(frame(5, 1, fw.PING))) == 1
    assert card.rx_bad == 1


def test_each_drop_reason_counts_bad(bench):
    from cobs import cobs
    from test_firmware_kit import crc32c_ref
    card = bench.card

    def raw(ver=1, flags=0, n=None, payload=b"", crc_xor=0):
        body = struct.pack("<BBBBHBH", ver, flags, 5, 0, 1, 1, len(payload) if n is None else n) + payload
        return cobs.encode(body + struct.pack("<I", crc32c_ref(body) ^ crc_xor)) + b"\x00"

    for w in [raw(ver=2), raw(flags=4), raw(n=3), raw(crc_xor=1), b"\x05\x01\x00", b"\x01\x01\x01\x00"]:
        assert card.receive(w) == []
    assert (card.rx_ok, card.rx_bad) == (0, 6)


def test_many_cards_share_the_decode_work(tmp_path):
    """64 cards each hearing a 512-byte chunk stay fast (the simulator's case)."""
    import time
    cards = [Bench(tmp_path / str(i)) for i in range(64)]
    wire = frame(0xFF, 1, fw.FW_CHUNK, struct.pack("<I", 0) + bytes(range(256)) * 2)
    t = time.perf_counter()
    for _ in range(20):
        for c in cards:
            c.card.receive(wire)
    elapsed = time.perf_counter() - t
    assert all(c.card.rx_ok == 20 for c in cards)
    assert elapsed < 2.0
    assert framing.decode(wire[:-1])[4] == fw.FW_CHUNK
