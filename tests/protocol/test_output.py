"""``GET_OUTPUT`` (0x14): the codec against vectors written from the spec's table, and the
operation that takes ``UNKNOWN_COMMAND`` as "not supported".

The vectors are built here from the spec's words alone (``<III``: current in mA with
``0xFFFFFFFF`` for no sensor, frames shown, frames dropped; frame layout, COBS and CRC-32C
from sections 2 and 4) with ``cobs`` and ``crcmod``, not with the master's framing.
"""

from __future__ import annotations

import struct

import crcmod.predefined
import pytest
from cobs import cobs

from controller.errors import CardError, PayloadError
from controller.protocol import cards as ops
from controller.protocol import commands as c
from controller.protocol.bus import Bus
from controller.protocol.framing import Frame, encode
from hw.sim.faults import FaultPlan
from hw.sim.server import Simulator

CRC32C = crcmod.predefined.mkCrcFun("crc-32c")


def wire(flags: int, dst: int, src: int, seq: int, cmd: int, payload: bytes) -> bytes:
    body = struct.pack("<BBBBHBH", 1, flags, dst, src, seq, cmd, len(payload)) + payload
    return cobs.encode(body + struct.pack("<I", CRC32C(body))) + b"\x00"


def test_the_command_code_and_layout_are_the_spec_s():
    assert c.Cmd.GET_OUTPUT == 0x14
    spec = c.COMMANDS[0x14]
    assert spec.request is c.Empty and spec.response is c.OutputReply
    assert spec.deadline_s == 0.005


@pytest.mark.parametrize("payload, fields, milliamps", [
    (bytes.fromhex("d2040000" "05000000" "02000000"), (1234, 5, 2), 1234),
    (bytes.fromhex("ffffffff" "70110100" "00000000"), (0xFFFFFFFF, 70000, 0), None),
    (bytes.fromhex("00000000" "ffffffff" "ffffffff"), (0, 2**32 - 1, 2**32 - 1), 0),
])
def test_answers_decode_to_the_spec_s_fields(payload, fields, milliamps):
    reply = c.decode_response(c.Cmd.GET_OUTPUT, payload)
    assert isinstance(reply, c.OutputReply)
    assert (reply.current_ma, reply.frames_shown, reply.frames_dropped) == fields
    assert reply.milliamps == milliamps
    assert reply.pack() == payload


def test_request_and_answer_frames_are_byte_for_byte_the_spec_s():
    request = Frame(flags=0, dst=0x05, src=0x00, seq=0x1234, cmd=0x14, payload=b"")
    assert encode(request) == wire(0, 0x05, 0x00, 0x1234, 0x14, b"")
    assert encode(request).hex(" ") == "02 01 02 05 04 34 12 14 01 05 ea 76 88 4e 00"
    answer = c.OutputReply(2480, 900, 3).pack()
    assert encode(Frame(flags=1, dst=0x00, src=0x05, seq=0x1234, cmd=0x14, payload=answer)) == \
        wire(1, 0x00, 0x05, 0x1234, 0x14, answer)


@pytest.mark.parametrize("payload", [b"", b"\x00" * 11, b"\x00" * 13])
def test_a_wrong_length_is_a_payload_error(payload):
    with pytest.raises(PayloadError, match="12 bytes"):
        c.decode_response(c.Cmd.GET_OUTPUT, payload)


def test_fields_are_checked_when_built():
    with pytest.raises(PayloadError, match="frames_shown"):
        c.OutputReply(0, -1, 0)


def test_read_output_is_none_for_a_card_without_the_command_and_the_card_keeps_working():
    plan = FaultPlan().with_card(2, no_get_output=True)
    with Simulator(3, pty=True, plan=plan) as sim, Bus(sim.url) as bus:
        assert ops.read_output(bus, 2) is None
        assert bus.call(2, c.Cmd.PING).serial          # still a working card
        assert bus.call(2, c.Cmd.GET_STATUS).rx_ok > 0
        reply = ops.read_output(bus, 1)
        assert isinstance(reply, c.OutputReply)
        assert (reply.frames_shown, reply.frames_dropped) == (0, 0)   # no video yet
        assert reply.milliamps is not None and reply.milliamps > 0    # the drivers' own draw


def test_read_output_raises_other_refusals():
    class Refusing:
        def call(self, address, cmd, request=None):
            raise CardError(address, "GET_OUTPUT", c.ErrorCode.BUSY, "BUSY")
    with pytest.raises(CardError, match="BUSY"):
        ops.read_output(Refusing(), 3)  # type: ignore[arg-type]
