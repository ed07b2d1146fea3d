"""The board entry, ``hw/firmware/main.py``, run on a stand-in ``machine`` (the only module the
simulator never runs), under real MicroPython and on CPython, with the same transcript.

A factory-fresh card (no flash directory) provisions itself from the MCU's
unique id, answers at the factory address, takes an address, a firmware
image with its commit, reboots into it on trial (``machine.reset()``),
confirms it, reboots on request, and idles for seconds with the watchdog
fed.  The driver-enable pin is high exactly while an answer is written.
Frames are built and checked with this test's own codec (``cobs``,
``crcmod``), not the firmware's.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
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
UID = b"\xe6\x61\x41\x04\x03\x2f\x27\x2a"
SERIAL = int.from_bytes(UID, "big")
PING, GET_STATUS, SET_ADDRESS, REBOOT, GET_CONFIG = 0x01, 0x02, 0x03, 0x04, 0x10
FW_BEGIN, FW_CHUNK, FW_STATUS, FW_COMMIT, FW_CONFIRM = 0x30, 0x31, 0x32, 0x33, 0x34
IMAGE = bytes((i * 13 + 5) & 0xFF for i in range(8 * 1024))


def uart_script() -> tuple[str, list[tuple[int, int, bytes]]]:
    """The bytes the card's UART receives, and the requests in order as (addr, cmd, wire)."""
    t, seq, lines, sent = 10, 0, [], []

    def at(ms, dst, cmd, payload=b""):
        nonlocal t, seq
        t += ms
        seq += 1
        wire = frame(dst, seq, cmd, payload)
        lines.append(f"{t} {wire.hex()}")
        sent.append((dst, cmd, wire))

    at(0, 0xF0, PING)
    at(20, 0xF0, SET_ADDRESS, struct.pack("<QB", SERIAL, 5))
    at(20, 5, GET_STATUS)
    at(20, 5, GET_CONFIG)
    begin = struct.pack("<IHBBHH32s", len(IMAGE), 0x0001, 2, 0, 0, 512,
                        hashlib.sha256(IMAGE).digest())
    at(20, 5, FW_BEGIN, begin)
    at(50, 5, FW_STATUS)
    for i in range(len(IMAGE) // 512):
        at(10, 5, FW_CHUNK, struct.pack("<I", i) + IMAGE[i * 512:(i + 1) * 512])
    at(20, 5, FW_COMMIT)
    at(300, 5, PING)          # after the reset: on trial with 2.0.0
    at(20, 5, FW_CONFIRM)
    at(20, 5, REBOOT)
    at(300, 5, PING)
    at(20, 5, GET_STATUS)
    at(5000, 5, PING)         # five seconds of idling with the watchdog fed
    return "\n".join(lines) + "\n", sent


def standin() -> object:
    spec = importlib.util.spec_from_file_location("machine", HERE / "machine_standin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def on_cpython(tmp_path: Path, uart: str) -> str:
    """main() through ``hw.firmware.main``, the stand-in installed as ``machine``."""
    (tmp_path / "uart.txt").write_text(uart)
    saved = {name: sys.modules.pop(name, None) for name in ("machine", "hw.firmware.main")}
    sys.modules["machine"] = standin()
    sys.path.insert(0, str(HERE))
    try:
        session = importlib.import_module("board_session")
        session.run(str(tmp_path / "uart.txt"), str(tmp_path / "cpython.txt"), str(tmp_path / "lw"))
    finally:
        sys.path.remove(str(HERE))
        for name in ("machine", "hw.firmware.main", "board_session"):
            sys.modules.pop(name, None)
        vars(sys.modules["hw.firmware"]).pop("main", None)  # bound to this run's stand-in
        for name, module in saved.items():
            if module is not None:
                sys.modules[name] = module
    return (tmp_path / "cpython.txt").read_text()


def on_micropython(tmp_path: Path, uart: str) -> micropython_runner.Run:
    board = tmp_path / "board"
    board.mkdir()
    for name in ("card.py", "flash.py", "framing.py", "main.py"):
        shutil.copy(FIRMWARE / name, board / name)
    shutil.copy(HERE / "machine_standin.py", board / "machine.py")
    shutil.copy(HERE / "board_session.py", board / "board_session.py")
    (board / "uart.txt").write_text(uart)
    return micropython_runner.run(board, "board_session")


def check(transcript: str, sent) -> None:
    lines = transcript.splitlines()
    tx = [bytes.fromhex(line.split()[3]) for line in lines if " tx " in line]
    assert all(" tx de=1 " in line for line in lines if " tx " in line), "DE low while answering"
    # DE goes high right before each answer and low right after it, and at no other time.
    pins = [line.split()[1:] for line in lines if " pin 6 " in line or " tx " in line]
    flat = [" ".join(p[:3]) if p[0] == "pin" else "tx" for p in pins]
    assert flat == ["pin 6 1", "tx", "pin 6 0"] * len(tx)
    # every request (all unicast) is answered, in order
    assert len(tx) == len(sent)
    for (dst, cmd, wire), answer in zip(sent, tx):
        flags, adst, src, seq, acmd, payload = parse(answer)
        req = parse(wire)
        assert (adst, src, seq, acmd) == (0, dst, req[3], cmd), (hex(cmd), payload)
        assert flags == 0x01, f"{hex(cmd)} refused: {payload!r}"
        if cmd == PING:
            model, major, minor, patch, serial, bank, _, _ = struct.unpack("<HBBHQBIH", payload)
            assert serial == SERIAL   # provisioned from the MCU's unique id
    pings = [struct.unpack("<HBBHQBIH", parse(a)[5]) for (_, cmd, _), a in zip(sent, tx) if cmd == PING]
    assert [(p[1:4], p[5]) for p in pings] == [((1, 0, 0), 0), ((2, 0, 0), 1), ((2, 0, 0), 1),
                                              ((2, 0, 0), 1)]
    assert sum(1 for line in lines if line.endswith(" reset")) == 2   # FW_COMMIT and REBOOT
    longest = int(lines[-1].split()[-1])
    assert 0 < longest < 1000, f"the watchdog (2 s) went unfed for {longest} ms"


@pytest.fixture(scope="module")
def script():
    return uart_script()


def test_main_runs_a_fresh_card_on_cpython(tmp_path, script):
    uart, sent = script
    check(on_cpython(tmp_path, uart), sent)


def test_main_runs_a_fresh_card_on_micropython_exactly_as_on_cpython(tmp_path, script):
    uart, sent = script
    mp = on_micropython(tmp_path, uart)
    assert mp.status == 0, f"MicroPython failed:\n{mp.stderr}"
    micro = mp.file("transcript.txt")
    check(micro, sent)
    assert micro == on_cpython(tmp_path, uart)
