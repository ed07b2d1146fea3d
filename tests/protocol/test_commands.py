"""Every command's request and response payloads round-trip and validate."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.errors import PayloadError
from controller.protocol import commands as c

EXAMPLES = {
    c.Cmd.PING: (c.Empty(), c.PingReply(0x0A01, 1, 2, 3, 0x4C57202600000001, 1, 3600, 640)),
    c.Cmd.GET_STATUS: (c.Empty(), c.StatusReply(-52, 5010, 2400, 0b1000_0001, 12345, 7)),
    c.Cmd.SET_ADDRESS: (c.SetAddress(0x4C57202600000005, 17), None),
    c.Cmd.REBOOT: (c.Empty(), None),
    c.Cmd.GET_CONFIG: (c.Empty(), c.CardConfig(64, 32, 16, 4, 4, 1, 2, 3840)),
    c.Cmd.SET_CONFIG: (c.CardConfig(128, 64, 32, 2, 3, 0, 0, 1920), None),
    c.Cmd.SET_BRIGHTNESS: (c.Brightness(0x8000), None),
    c.Cmd.GET_BRIGHTNESS: (c.Empty(), c.Brightness(65535)),
    c.Cmd.GET_OUTPUT: (c.Empty(), c.OutputReply(2480, 123456, 7)),
    c.Cmd.TEST_PATTERN: (c.TestPattern(c.Pattern.GRID, 0x1234), None),
    c.Cmd.PIXEL_SCAN: (c.PixelScan(3, 8, 8),
                       c.PixelScanReply(3, 8, 8, 64, bytes(64), bytes([1]) + bytes(63), bytes(64))),
    c.Cmd.DETECT_START: (c.Empty(), None),
    c.Cmd.FW_BEGIN: (c.FwBegin(262144, 0x0A01, 1, 1, 0, 512, hashlib.sha256(b"x").digest()), None),
    c.Cmd.FW_CHUNK: (c.FwChunk(511, b"\x00\x01" * 200), None),
    c.Cmd.FW_STATUS: (c.Empty(), c.FwStatusReply(1, 1000, 100, 3, bytes([0b101, 0b10]))),
    c.Cmd.FW_COMMIT: (c.Empty(), None),
    c.Cmd.FW_CONFIRM: (c.Empty(), None),
    c.Cmd.FW_ABORT: (c.Empty(), None),
    c.Cmd.GET_EVENTS: (c.GetEvents(5), c.EventsReply((c.Event(5, 10, 1, 0), c.Event(6, 99, 2, 912)))),
}


def test_every_command_has_an_example():
    assert set(EXAMPLES) == set(c.COMMANDS) == set(c.Cmd)


@pytest.mark.parametrize("cmd", list(c.Cmd), ids=lambda x: x.name)
def test_request_and_response_round_trip(cmd):
    request, response = EXAMPLES[cmd]
    spec = c.COMMANDS[cmd]
    assert isinstance(request, spec.request)
    assert type(request).unpack(request.pack()) == request
    if response is None:
        assert spec.response is None
        assert c.decode_response(cmd, b"") is None
    else:
        assert c.decode_response(cmd, response.pack()) == response
        assert len(response.pack()) <= spec.max_response or spec.max_response == 64


@pytest.mark.parametrize("cmd", [k for k, (_, r) in EXAMPLES.items() if r is not None],
                         ids=lambda x: x.name)
def test_truncated_responses_are_payload_errors(cmd):
    payload = EXAMPLES[cmd][1].pack()
    with pytest.raises(PayloadError):
        c.decode_response(cmd, payload[:-1])


def test_empty_answers_must_be_empty():
    with pytest.raises(PayloadError):
        c.decode_response(c.Cmd.SET_BRIGHTNESS, b"\x00")


@pytest.mark.parametrize("build", [
    lambda: c.SetAddress(1, 0), lambda: c.SetAddress(1, 241),
    lambda: c.CardConfig(64, 32, 3, 4, 4), lambda: c.CardConfig(64, 24, 16, 4, 4),
    lambda: c.CardConfig(64, 32, 16, 4, 4, rotation=1), lambda: c.CardConfig(0, 32, 16, 4, 4),
    lambda: c.Brightness(65536), lambda: c.TestPattern(8), lambda: c.PixelScan(0, 0, 0),
    lambda: c.FwBegin(10, 1, 1, 0, 0, 513, bytes(32)), lambda: c.FwBegin(10, 1, 1, 0, 0, 16, b"x"),
    lambda: c.FwChunk(0, b""), lambda: c.FwChunk(0, bytes(513)),
])
def test_out_of_range_fields_are_refused_when_built(build):
    with pytest.raises(PayloadError):
        build()


def test_status_flags_and_error_names():
    s = c.StatusReply(900, 4400, 0, 0b111, 0, 0)
    assert s.flag_names == ["over_temperature", "under_voltage", "fan_fault"]
    assert s.temperature_c == 90.0
    assert c.error_name(3) == "BAD_VALUE" and c.error_name(0x42) == "error 0x42"
    assert c.decode_error(b"\x03out of range") == (3, "out of range")


@given(st.integers(1, 512), st.data())
def test_pixel_scan_bitmaps_map_back_to_positions(width, data):
    rows = c.pixel_scan_rows_that_fit(width)
    assert rows >= 1
    assert 8 + 3 * c.PixelScanReply.bitmap_size(width, rows) <= 640
    assert 8 + 3 * c.PixelScanReply.bitmap_size(width, rows + 1) > 640
    leds = data.draw(st.sets(st.tuples(st.integers(0, width - 1), st.integers(0, rows - 1),
                                       st.sampled_from("rgb")), max_size=20))
    maps = {ch: bytearray(c.PixelScanReply.bitmap_size(width, rows)) for ch in "rgb"}
    for x, y, ch in leds:
        bit = y * width + x
        maps[ch][bit >> 3] |= 1 << (bit & 7)
    reply = c.PixelScanReply(0, 4, rows, width, bytes(maps["r"]), bytes(maps["g"]), bytes(maps["b"]))
    again = c.PixelScanReply.unpack(reply.pack())
    assert sorted(again.faults()) == sorted((x, y + 4, ch) for x, y, ch in leds)


def test_fw_status_missing_chunks():
    s = c.FwStatusReply(1, 1000, 100, 3, bytes([0b101, 0b10]))
    assert s.chunks == 10
    assert s.missing() == [1, 3, 4, 5, 6, 7, 8]
    with pytest.raises(PayloadError):
        c.FwStatusReply.unpack(s.pack()[:-1])
