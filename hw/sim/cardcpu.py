"""How long a card's own CPU takes over a request: measured on MicroPython, scaled to an RP2040.

The figures below were measured by ``tests/hw/card_cpu_bench.py`` under
MicroPython 1.27's WebAssembly port on this project's machines (AMD EPYC,
2.6 GHz, Node 20): microseconds per request, over hundreds of requests.
``python3 dev.py test tests/hw/test_card_cpu_time.py -s`` measures them
afresh and prints them beside these.

A card's MicroPython runs on an RP2040's Cortex-M0+ at 125 MHz, which is
slower than that interpreter by ``RP2040_SLOWDOWN``.  That factor is an
estimate, not a measurement on silicon: the clock ratio (2 600 / 125 =
20.8) times the ratio of instructions per cycle of an out-of-order x86 core
and a two-stage in-order core running from XIP flash (about 2), divided by
the WebAssembly build's own overhead against native code (about 1.7):
about 25.  docs/firmware.md ("CPU time") gives the margins this leaves.

What a frame costs, in the firmware's order of work:

- **while it arrives**: the deframer un-COBSes and CRCs each piece the
  main loop reads from the UART (``DECODE_US_PER_BYTE``).  That overlaps the
  frame's wire time, and only the part the line outpaces is late;
- **after its last byte**: the last piece, then checking and dispatching
  the frame (``FRAME_US``) and, for a request to this card or a broadcast,
  the command's handler and its answer (``HANDLER_US``).
"""

from __future__ import annotations

#: Slowdown of an RP2040 at 125 MHz against MicroPython/WebAssembly on this machine (estimate).
RP2040_SLOWDOWN = 25.0
#: Microseconds under MicroPython/WebAssembly per frame byte, deframing and CRC.
DECODE_US_PER_BYTE = 0.39
#: Microseconds to finish any frame after its delimiter (a 15-byte frame for another card: 25 µs,
#: less its 15 bytes of decoding).
FRAME_US = 19.0
#: Microseconds of a command's handler and answer, beyond FRAME_US (measured request minus a
#: frame for another card of the same size).
HANDLER_US = {
    0x01: 105.0,   # PING (packs the 64-bit serial: a big integer on MicroPython)
    0x02: 55.0,    # GET_STATUS
    0x10: 37.0,    # GET_CONFIG
    0x14: 50.0,    # GET_OUTPUT: measured beside GET_STATUS on a loaded machine (0.6-0.95 of it)
    0x12: 127.0,   # SET_BRIGHTNESS (writes metadata)
    0x32: 27.0,    # FW_STATUS
    0x31: 65.0,    # FW_CHUNK (writes 512 bytes)
    0x40: 70.0,    # GET_EVENTS
}
#: Commands not measured on their own: the dearest measured handler (SET_BRIGHTNESS).
OTHER_HANDLER_US = 127.0
#: Bytes the firmware's main loop takes from the UART per turn: what arrives in its 2 ms read
#: timeout at 921 600 baud.  The last piece of a frame is decoded after its delimiter.
PIECE_BYTES = 184


def ms(us: float) -> float:
    """Milliseconds on an RP2040 for ``us`` microseconds measured under the WebAssembly port."""
    return us * RP2040_SLOWDOWN / 1000.0


def decode_ms(nbytes: int) -> float:
    """CPU time to deframe and CRC ``nbytes`` on the card."""
    return ms(DECODE_US_PER_BYTE * nbytes)


def after_frame_ms(nbytes: int, cmd: int | None) -> float:
    """CPU time after a frame's delimiter: its last piece, the dispatch, and the handler when
    ``cmd`` is a request this card executes (None for a frame it only decodes)."""
    handler = 0.0 if cmd is None else HANDLER_US.get(cmd, OTHER_HANDLER_US)
    return ms(DECODE_US_PER_BYTE * min(nbytes, PIECE_BYTES) + FRAME_US + handler)
