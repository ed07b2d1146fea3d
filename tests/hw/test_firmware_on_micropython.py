"""The card firmware on the interpreter it ships on: real MicroPython, byte for byte with CPython.

One session walks a card through every command of the spec, every error
code, broadcasts (refused ones too), retries answered from duplicate memory,
a firmware transfer with its erase, commit, trial boot, rollback and confirm,
a failing flash and power cycles.  ``card_session.py`` plays it on MicroPython
1.27 (WebAssembly, from the flat layout a card's filesystem has, with a
board's heap) and on CPython through ``hw.firmware`` as the simulator
imports it.  Every answer must be the same bytes, no step may raise on
either, and the CPython answers must be the ones the spec asks for, checked
with this test's own decoder (``cobs``/``crcmod``, not the firmware's).
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
import struct
import sys
from pathlib import Path

import pytest

from support import micropython_runner
from test_firmware_kit import frame, parse

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "hw" / "firmware"
HERE = Path(__file__).resolve().parent
SERIAL, MODEL, ADDR = 0x1122334455667788, 7, 0x05
OK = "ok"
SILENT = "silent"
# Command and error codes, from the spec (docs/spec/wire-protocol.md), not from the firmware.
PING, GET_STATUS, SET_ADDRESS, REBOOT = 0x01, 0x02, 0x03, 0x04
GET_CONFIG, SET_CONFIG, SET_BRIGHTNESS, GET_BRIGHTNESS, GET_OUTPUT = 0x10, 0x11, 0x12, 0x13, 0x14
TEST_PATTERN, PIXEL_SCAN, DETECT_START = 0x20, 0x21, 0x22
FW_BEGIN, FW_CHUNK, FW_STATUS, FW_COMMIT, FW_CONFIRM, FW_ABORT = 0x30, 0x31, 0x32, 0x33, 0x34, 0x35
GET_EVENTS = 0x40
UNKNOWN_COMMAND, BAD_LENGTH, BAD_VALUE, BUSY, BAD_STATE, VERIFY_FAILED, STORAGE = range(1, 8)
CONFIG = struct.pack("<HHBBBBBH", 64, 32, 16, 2, 2, 0, 0, 3840)


class Session:
    """The steps of one session and what the spec says each ``rx`` must bring back."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.expect: dict[int, str | int | None] = {}
        self.seq = 0
        self.addr = ADDR

    def step(self, *words) -> int:
        self.lines.append(" ".join(str(w) for w in words))
        return len(self.lines) - 1

    def rx(self, data: bytes, expect, label: str = "-") -> int:
        # Every third request arrives in UART-sized reads, the rest whole, so both ways the
        # deframer takes bytes (decoding as they arrive, or a whole segment) meet every command.
        piece = [len(data), 7, 184][len(self.expect) % 3]
        n = self.step("rx", data.hex(), label.replace(" ", "_"), piece)
        self.expect[n] = expect
        return n

    def send(self, cmd: int, payload: bytes = b"", expect=OK, dst=None, seq=None) -> bytes:
        """A request to the card (a new seq unless given); returns its wire bytes."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        dst = self.addr if dst is None else dst
        wire = frame(dst, seq, cmd, payload)
        self.rx(wire, SILENT if dst == 0xFF else expect, "%02x" % cmd)
        return wire

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def begin(image: bytes, version=(2, 0, 0), chunk=512, model=MODEL, sha=None) -> bytes:
    sha = hashlib.sha256(image).digest() if sha is None else sha
    return struct.pack("<IHBBHH32s", len(image), model, *version, chunk, sha)


def chunk(image: bytes, index: int, size=512) -> bytes:
    return struct.pack("<I", index) + image[index * size:(index + 1) * size]


def transfer(s: Session, image: bytes, version, *, skip=(), broadcast=False) -> None:
    """FW_BEGIN, the erase run out by the main loop, every chunk not in ``skip``."""
    s.send(FW_BEGIN, begin(image, version))
    s.send(FW_STATUS, expect=BUSY)          # erasing: five 4 KiB sectors, 4 ms each on this chip
    s.send(FW_CHUNK, chunk(image, 0), expect=BUSY)
    for _ in range(6):
        s.step("clock", 30)
        s.step("service")
    for i in range((len(image) + 511) // 512):
        if i not in skip:
            s.send(FW_CHUNK, chunk(image, i), dst=0xFF if broadcast else None)


def full_session() -> Session:
    s = Session()
    s.step("provision", SERIAL, MODEL, ADDR)
    s.step("power")
    s.step("state")
    # identity, status, config, brightness
    s.step("clock", 7500)
    s.send(PING)
    s.send(GET_STATUS)
    s.send(GET_CONFIG)
    s.send(GET_BRIGHTNESS)
    s.send(SET_BRIGHTNESS, b"\x00\x80")
    s.send(GET_BRIGHTNESS)
    s.send(SET_CONFIG, CONFIG)
    s.send(SET_CONFIG, struct.pack("<HHBBBBBH", 64, 32, 3, 2, 2, 0, 0, 3840), expect=BAD_VALUE)
    s.send(SET_CONFIG, CONFIG[:-1], expect=BAD_LENGTH)
    s.send(0x7E, expect=UNKNOWN_COMMAND)
    # GET_OUTPUT: a board whose display side gives no counters answers as a card without it
    s.send(GET_OUTPUT, expect=UNKNOWN_COMMAND)
    s.step("output", 1234, 5, 2)
    s.send(GET_OUTPUT)
    s.step("output", -1, 70000, 0)                # no current sensor: 0xFFFFFFFF
    s.send(GET_OUTPUT)
    s.step("output", 2**33, 2**32 + 9, 3)         # a reading past u32 is clamped, counters wrap
    s.send(GET_OUTPUT)
    s.send(GET_OUTPUT, b"\x00", expect=BAD_LENGTH)
    s.send(0x7E, dst=0xFF)                      # a refused broadcast: silence, no crash
    s.send(SET_CONFIG, b"\x01", dst=0xFF)       # likewise, with a bad length
    # patterns and detection
    s.send(TEST_PATTERN, struct.pack("<BH", 1, 0xFFFF))
    s.send(TEST_PATTERN, struct.pack("<BH", 9, 0xFFFF), expect=BAD_VALUE)
    s.send(TEST_PATTERN, struct.pack("<BH", 4, 0x8000), dst=0xFF)
    s.send(TEST_PATTERN, struct.pack("<BH", 9, 0), dst=0xFF)
    s.step("state")
    s.send(PIXEL_SCAN, struct.pack("<HHH", 0, 0, 8), expect=BAD_STATE)
    s.step("dead", 1, 10, 3, 2)
    s.step("dead", 3, 63, 31, 0)
    s.send(DETECT_START)
    s.send(DETECT_START, expect=BUSY)
    s.send(PIXEL_SCAN, struct.pack("<HHH", 1, 0, 8), expect=BUSY)
    s.send(GET_STATUS)
    s.step("clock", 200)
    s.send(PIXEL_SCAN, struct.pack("<HHH", 1, 0, 8))
    s.send(PIXEL_SCAN, struct.pack("<HHH", 3, 24, 8))
    s.send(PIXEL_SCAN, struct.pack("<HHH", 4, 0, 8), expect=BAD_VALUE)
    s.send(PIXEL_SCAN, struct.pack("<HHH", 0, 0, 40), expect=BAD_VALUE)
    s.send(GET_STATUS)
    # duplicate memory: the same bytes again are answered, not executed again
    again = s.send(SET_CONFIG, CONFIG)
    s.rx(again, OK, "retry")
    s.send(GET_EVENTS, struct.pack("<I", 0))
    # sensors, links and the event log
    s.step("sense", 862, 4400, 300, 1)
    s.step("link", 2, 0)
    s.step("poll")
    s.send(GET_STATUS)
    s.step("sense", 300, 5000, 2800, 1)
    s.step("link", 2, 1)
    s.step("poll")
    s.send(GET_EVENTS, struct.pack("<I", 0))
    s.send(GET_EVENTS, struct.pack("<I", 3))
    # noise on the line
    s.rx(b"\x13\x37\x00" + b"\xff" * 800 + b"\x00", SILENT, "noise")
    s.rx(frame(ADDR, 99, PING)[:-3] + b"\x00", SILENT, "bad crc")
    s.rx(frame(0x09, 99, PING), SILENT, "other card")
    s.send(GET_STATUS)
    # addresses
    s.send(SET_ADDRESS, struct.pack("<QB", SERIAL + 1, 9), expect=BAD_VALUE)
    s.send(SET_ADDRESS, struct.pack("<QB", SERIAL, 0), expect=BAD_VALUE)
    s.send(SET_ADDRESS, struct.pack("<QB", SERIAL + 1, 9), dst=0xFF)
    move = s.send(SET_ADDRESS, struct.pack("<QB", SERIAL, 6))
    s.rx(move, OK, "retry at the old address")
    s.addr = 6
    s.send(PING)
    s.send(SET_ADDRESS, struct.pack("<QB", SERIAL, 5), dst=0xFF)
    s.addr = 5
    s.send(PING)
    # a failing flash: STORAGE, and RAM keeps the old value
    s.step("flash_fails", 1)
    s.send(SET_BRIGHTNESS, b"\x01\x00", expect=STORAGE)
    s.step("flash_fails", 0)
    s.send(GET_BRIGHTNESS)
    # firmware: refusals before a transfer (a bystander hears broadcast chunks)
    image = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(20 * 1024))
    s.send(FW_STATUS)
    s.send(FW_CHUNK, chunk(image, 0), expect=BAD_STATE)
    s.send(FW_CHUNK, chunk(image, 0), dst=0xFF)
    s.send(FW_COMMIT, expect=BAD_STATE)
    s.send(FW_BEGIN, begin(image, model=MODEL + 1), expect=BAD_VALUE)
    s.send(FW_BEGIN, begin(bytes(600 * 1024)), expect=BAD_VALUE)
    s.send(FW_BEGIN, begin(image, chunk=0), expect=BAD_VALUE)
    s.send(FW_BEGIN, begin(image)[:-1], expect=BAD_LENGTH)
    # a transfer, partly by broadcast, with a chunk missing
    transfer(s, image, (2, 0, 0), skip={7}, broadcast=True)
    s.send(FW_BEGIN, begin(image, (2, 0, 0)))    # identical: resumes, keeps what arrived
    s.send(FW_STATUS)
    s.send(FW_CHUNK, chunk(image, 40), expect=BAD_VALUE)
    s.send(FW_CHUNK, chunk(image, 3)[:-1], expect=BAD_LENGTH)
    s.send(FW_CHUNK, b"\x01", expect=BAD_LENGTH)
    s.send(FW_COMMIT, expect=BAD_STATE)
    s.send(FW_CHUNK, chunk(image, 7))
    s.send(FW_STATUS)
    s.send(FW_COMMIT)
    s.send(FW_COMMIT, expect=SILENT)           # deaf until it has rebooted
    s.step("state")
    s.step("boot", 1)
    s.send(PING)
    s.send(GET_STATUS)
    s.send(FW_BEGIN, begin(image, (3, 0, 0)), expect=BAD_STATE)  # on trial: confirm first
    # a trial that is never confirmed rolls back on the 4th boot
    for _ in range(3):
        s.step("boot", 2)
        s.step("state")
    s.send(PING)
    s.send(GET_EVENTS, struct.pack("<I", 8))
    # again, confirmed this time; then a transfer that fails its hash, and an abort
    transfer(s, image, (2, 1, 0))
    s.send(FW_COMMIT)
    s.step("boot", 1)
    s.send(FW_CONFIRM)
    s.send(FW_CONFIRM)
    s.send(GET_STATUS)
    wrong = bytes(len(image))
    s.send(FW_BEGIN, begin(image, (2, 2, 0), sha=hashlib.sha256(wrong).digest()))
    for _ in range(6):
        s.step("clock", 30)
        s.step("service")
    for i in range(40):
        s.send(FW_CHUNK, chunk(image, i))
    s.send(FW_COMMIT, expect=VERIFY_FAILED)
    s.send(FW_STATUS)
    s.send(FW_BEGIN, begin(image, (2, 3, 0)))
    s.send(FW_ABORT)
    s.send(FW_STATUS)
    # a power cut mid-transfer: the transfer is gone, the card runs its bank
    transfer(s, image, (2, 4, 0), skip=set(range(10, 40)))
    s.step("power")
    s.send(FW_STATUS)
    s.send(PING)
    # reboot on request
    s.send(REBOOT)
    s.send(PING, expect=SILENT)
    s.step("boot", 1)
    s.send(PING)
    s.send(GET_EVENTS, struct.pack("<I", 0))
    s.step("state")
    return s


def transcript_on_cpython(board: Path, session_file: Path) -> tuple[str, str]:
    """The session through ``hw.firmware`` as the simulator imports it."""
    sys.path.insert(0, str(HERE))
    try:
        card_session = importlib.import_module("card_session")
    finally:
        sys.path.remove(str(HERE))
    out = board / "cpython"
    out.mkdir()
    card_session.run(str(session_file), str(out), str(board / "cpython-card"))
    return (out / "transcript.txt").read_text(), (out / "cpu.txt").read_text()


def micropython_board(tmp_path: Path, session: Session, firmware: Path = FIRMWARE) -> Path:
    """A folder laid out as a card's filesystem: the firmware's modules flat, the driver, the steps."""
    board = tmp_path / "board"
    board.mkdir()
    for name in ("card.py", "flash.py", "framing.py"):
        shutil.copy(firmware / name, board / name)
    shutil.copy(HERE / "card_session.py", board / "card_session.py")
    (board / "session.txt").write_text(session.text())
    return board


def answers(transcript: str) -> dict[int, list[bytes]]:
    """Step number -> frames the card sent, from a transcript."""
    found, step = {}, None
    for line in transcript.splitlines():
        words = line.split()
        if len(words) == 2 and words[0].isdigit():
            step = int(words[0])
        elif words and words[0] == "tx":
            found[step] = [] if words[1:] == ["-"] else [bytes.fromhex(w) for w in words[1:]]
    return found


#: What the GET_OUTPUT answers of the session must carry, by the spec's ``<III`` (step order).
OUTPUT_ANSWERS = [struct.pack("<III", 1234, 5, 2), struct.pack("<III", 0xFFFFFFFF, 70000, 0),
                  struct.pack("<III", 0xFFFFFFFE, 9, 3)]


def check_against_spec(session: Session, transcript: str) -> None:
    got = answers(transcript)
    outputs: list[bytes] = []
    for step, want in session.expect.items():
        frames = got[step]
        request = bytes.fromhex(session.lines[step].split()[1])
        if want == SILENT:
            assert frames == [], f"step {step} ({session.lines[step][:40]}…) should get no answer"
            continue
        assert len(frames) == 1, f"step {step}: {len(frames)} answers"
        flags, dst, _src, seq, cmd, payload = parse(frames[0])
        req = parse(request)
        assert (dst, seq, cmd) == (0, req[3], req[4]), f"step {step}: answer header"
        if want == OK:
            assert flags == 0x01, f"step {step}: expected success, got error {payload!r}"
            if cmd == GET_OUTPUT:
                outputs.append(payload)
        else:
            assert flags == 0x03 and payload[0] == want, \
                f"step {step}: expected error {want}, got flags {flags} payload {payload!r}"
            payload[1:].decode("utf-8")
    assert outputs == OUTPUT_ANSWERS


@pytest.fixture(scope="module")
def session() -> Session:
    return full_session()


def test_the_whole_session_runs_on_micropython_exactly_as_on_cpython(tmp_path, session):
    board = micropython_board(tmp_path, session)
    cpython, _ = transcript_on_cpython(tmp_path, board / "session.txt")
    assert "raised" not in cpython, cpython
    check_against_spec(session, cpython)
    mp = micropython_runner.run(board, "card_session")
    micro = mp.file("transcript.txt")
    assert mp.status == 0, f"MicroPython failed:\n{mp.stderr}"
    raised = [line for line in micro.splitlines() if line.startswith("raised")]
    assert not raised, f"the firmware raised on MicroPython: {raised}"
    for mine, theirs in zip(micro.splitlines(), cpython.splitlines()):
        assert mine == theirs, f"MicroPython and CPython differ:\n  mpy: {mine}\n  cpy: {theirs}"
    assert micro == cpython
    assert len(answers(micro)) == len(session.expect)


def test_a_card_that_crashes_on_micropython_fails_this_test(tmp_path, session):
    """Put back the bug the stub check passed: ``Exception.__init__`` is not there on MicroPython."""
    broken = tmp_path / "firmware"
    shutil.copytree(FIRMWARE, broken)
    card = broken / "card.py"
    text = card.read_text()
    assert "super().__init__(text)" in text
    card.write_text(text.replace("super().__init__(text)", "Exception.__init__(self, text)"))
    board = micropython_board(tmp_path, session, broken)
    mp = micropython_runner.run(board, "card_session")
    raised = [line for line in mp.file("transcript.txt").splitlines() if line.startswith("raised")]
    assert raised and "AttributeError" in raised[0], raised
