"""The card's own CPU time, measured under real MicroPython, against the model the simulator uses.

``card_cpu_bench.py`` times requests under MicroPython 1.27 (WebAssembly);
``hw.sim.cardcpu`` holds the figures the simulator scales to an RP2040.
Timings move with this machine's load, so they are printed (``-s``) beside
the model, never asserted; what is asserted does not depend on speed: every
request the model names is measured, and the card's CRC allocates nothing
per byte on MicroPython's heap (a 32-bit CRC table did: 96 bytes of heap per
byte checked, a garbage collection every 2 KiB on a card).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from support import micropython_runner
from hw.sim import cardcpu

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
#: Request name -> command code of the model's handler table.
MEASURED = {"PING": 0x01, "GET_STATUS": 0x02, "GET_CONFIG": 0x10, "GET_OUTPUT": 0x14,
            "SET_BRIGHTNESS": 0x12,
            "FW_STATUS": 0x32, "FW_CHUNK": 0x31, "GET_EVENTS": 0x40}
CRC_HEAP_PROBE = """
import gc
import framing

def main():
    data = bytes(range(256)) * 16
    framing.crc32c(data)
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    framing.crc32c(data)
    print(gc.mem_alloc() - before)
    gc.enable()
"""


def board(tmp_path: Path, *extra: str) -> Path:
    for name in ("card.py", "flash.py", "framing.py"):
        shutil.copy(ROOT / "hw" / "firmware" / name, tmp_path / name)
    for name in extra:
        shutil.copy(HERE / name, tmp_path / name)
    return tmp_path


def test_cpu_time_per_request_is_measured_for_every_modelled_command(tmp_path):
    run = micropython_runner.run(board(tmp_path, "card_cpu_bench.py", "card_session.py"),
                                 "card_cpu_bench")
    assert run.status == 0, run.stderr
    got = dict(line.split() for line in run.file("cpu.txt").splitlines())
    assert set(MEASURED) <= set(got)
    frame_us = int(got["OTHER_CARD"])
    per_byte = (int(got["OTHER_CARD_CHUNK"]) - frame_us) / (537 - 15)
    print(f"\nMicroPython/WebAssembly here, µs per request, its handler beyond decoding (the "
          f"model's in brackets), and the model's time after the last byte on an RP2040 "
          f"(x{cardcpu.RP2040_SLOWDOWN:g}):")
    for name, cmd in MEASURED.items():
        size = 537 if name == "FW_CHUNK" else 15
        handler = int(got[name]) - int(got["OTHER_CARD_CHUNK" if size > 15 else "OTHER_CARD"])
        print(f"  {name:15s} {int(got[name]):5d} µs  handler {handler:4d} ({cardcpu.HANDLER_US[cmd]:g})"
              f"  -> {cardcpu.after_frame_ms(size, cmd):.2f} ms")
    print(f"  decoding {per_byte:.2f} µs a byte (model {cardcpu.DECODE_US_PER_BYTE}), "
          f"a frame for another card {frame_us} µs; CRC-32C {int(got['crc32c_bytes_per_s']):,} B/s")


def test_the_cards_crc_allocates_nothing_per_byte_on_micropython(tmp_path):
    (tmp_path / "crc_heap.py").write_text(CRC_HEAP_PROBE)
    run = micropython_runner.run(board(tmp_path), "crc_heap")
    assert run.status == 0, run.stderr
    heap = int(run.stdout.split()[-1])
    assert heap < 1024, f"crc32c of 4 KiB allocated {heap} bytes of heap on MicroPython"
