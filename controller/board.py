"""The controller's default hardware wiring, in one place.

Why a module of constants: the software's defaults (which serial device is
the card bus, which line enables the RS-485 driver, at what rate) and the
bus-interface board (``hw/schematics/bus_interface.py`` and the KiCad netlist
generated from it) describe the same copper.  Kept apart they drift, and a
drifted default fails only on a real wall.  So the defaults live here,
``tests/hw/test_schematic.py`` checks every pin named below against the
committed netlist, and code that needs a default takes it from here.

The wiring, on a Raspberry Pi's 40-pin header (Pi 3, 4, 5 and the CM4 IO
board number the header the same way):

- the bus is UART0, the PL011, as ``/dev/ttyAMA0``: TXD0 is GPIO14 (pin 8)
  and RXD0 is GPIO15 (pin 10).  The PL011, unlike the mini UART, has a clock
  of its own, so its baud rate does not move with the core clock;
- the transceiver's DE and /RE are tied together and driven by UART0's RTS,
  GPIO17 in function ALT3 (pin 11).  The kernel then switches the driver in
  RS-485 mode (``TIOCSRS485``, which pyserial's ``rs485_mode`` sets): RTS
  goes high while bytes leave and low once the last stop bit has gone, with
  no user-space timing in the loop.  DE is active high, hence
  ``rts_level_for_tx=True``;
- the transceiver runs on 3.3 V (pins 1 and 17), because the Pi's GPIOs are
  not 5 V tolerant: a 5 V transceiver's RO would drive RXD0 above its rating.
  The 5 V pins (2 and 4) are left unconnected on purpose;
- a status LED hangs on GPIO27 (pin 13), active high.

``docs/hardware.md`` explains the board, ``docs/deployment.md`` how to set up
Raspberry Pi OS so that these defaults hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.protocol.bus import DEFAULT_BAUD, RS485Config


@dataclass(frozen=True)
class HeaderPin:
    """One signal on the Pi's 40-pin header: physical pin, BCM GPIO, function."""

    pin: int        # physical pin number on the header (1 … 40)
    gpio: int       # BCM GPIO number
    function: str   # what the SoC routes to it: "TXD0", "RXD0", "RTS0", "output"
    alt: str        # pin-mux setting that selects ``function`` ("ALT0", "ALT3", "OUT")


#: The card bus: the PL011 UART0.  The controller service and ``ledwarden bus``
#: take ``--bus`` / ``--port``; this is the device to give them on a Pi.
BUS_PORT = "/dev/ttyAMA0"
BUS_UART = "uart0"
BUS_BAUD = DEFAULT_BAUD

UART_TX = HeaderPin(pin=8, gpio=14, function="TXD0", alt="ALT0")
UART_RX = HeaderPin(pin=10, gpio=15, function="RXD0", alt="ALT0")
#: The transceiver's DE and /RE, together: RTS0 in kernel RS-485 mode.
DRIVER_ENABLE = HeaderPin(pin=11, gpio=17, function="RTS0", alt="ALT3")
STATUS_LED = HeaderPin(pin=13, gpio=27, function="output", alt="OUT")

#: Header pins of the 3.3 V rail, of ground, and of 5 V (which must stay unused).
POWER_3V3 = (1, 17)
GROUND = (6, 9, 14, 20, 25, 30, 34, 39)
POWER_5V = (2, 4)

#: pyserial's RS-485 mode for this board: RTS (driver enable) high while sending.
BUS_RS485 = RS485Config(rts_level_for_tx=True, rts_level_for_rx=False)

__all__ = ["BUS_BAUD", "BUS_PORT", "BUS_RS485", "BUS_UART", "DRIVER_ENABLE", "GROUND",
           "HeaderPin", "POWER_3V3", "POWER_5V", "STATUS_LED", "UART_RX", "UART_TX"]
