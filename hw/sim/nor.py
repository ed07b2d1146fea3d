"""The simulated cards' flash chip: how long a NOR flash takes to erase, program and read.

The firmware tells its platform what it asks of the chip
(``hw.flash_started(op, nbytes)``, see ``hw/firmware/card.py``); a simulated
card takes the time below over it.  The figures are the *typical* ones of
the Winbond W25Q32JV datasheet (32 Mbit SPI NOR, the family receiving cards
and RP2040 boards carry), with the maximum beside each for reference:

=====================  ==========  =========
operation              typical     maximum
=====================  ==========  =========
page program (256 B)   0.4 ms      3 ms
sector erase (4 KiB)   45 ms       400 ms
block erase (64 KiB)   150 ms      2 000 ms
=====================  ==========  =========

Reading is clocked out at 50 MHz on one data line (6.25 MB/s: the standard
read command, which any SPI master speaks), and what is read for
``FW_COMMIT`` is also hashed by the card's CPU: SHA-256 at about 150
cycles per byte for portable C on a Cortex-M0+ at 125 MHz (≈ 0.83 MB/s).
``docs/firmware.md`` ("Flash timing") says how the firmware keeps every
answer deadline and the watchdog with these figures.
"""

from __future__ import annotations

PAGE = 256
SECTOR = 4 * 1024
BLOCK = 64 * 1024
PAGE_PROGRAM_MS = 0.4
SECTOR_ERASE_MS = 45.0
BLOCK_ERASE_MS = 150.0
READ_BYTES_PER_MS = 6_250.0
SHA256_BYTES_PER_MS = 125_000 / 150   # 125 MHz, 150 cycles per byte, per millisecond

#: The datasheet's maximum times, for the worst case docs/firmware.md works out.
PAGE_PROGRAM_MAX_MS = 3.0
SECTOR_ERASE_MAX_MS = 400.0
BLOCK_ERASE_MAX_MS = 2_000.0


def erase_ms(nbytes: int) -> float:
    """One erase command: a 64 KiB block, or the 4 KiB sectors covering ``nbytes``."""
    if nbytes >= BLOCK:
        return BLOCK_ERASE_MS * -(-nbytes // BLOCK)
    return SECTOR_ERASE_MS * -(-nbytes // SECTOR)


def program_ms(nbytes: int) -> float:
    """Programming ``nbytes`` into erased flash, page by page."""
    return PAGE_PROGRAM_MS * -(-nbytes // PAGE)


def read_and_hash_ms(nbytes: int) -> float:
    """Reading ``nbytes`` back and hashing them (``FW_COMMIT``)."""
    return nbytes / READ_BYTES_PER_MS + nbytes / SHA256_BYTES_PER_MS


def busy_ms(op: str, nbytes: int) -> float:
    """How long the chip (and, for ``read``, the CPU hashing it) takes over one operation."""
    if op == "erase":
        return erase_ms(nbytes)
    if op == "program":
        return program_ms(nbytes)
    if op == "read":
        return read_and_hash_ms(nbytes)
    raise ValueError(f"unknown flash operation {op!r}")
