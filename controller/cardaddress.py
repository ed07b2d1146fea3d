"""A receiving card's bus address: the range cards may use and the way messages name one.

LWP/1 (``shared/spec/wire-protocol.md``, "Addresses") gives the cards the
unicast addresses 0x01..0xF0; 0xF0 is also the factory address a new card
answers on until discovery moves it.  Every part that takes an address from a
person or a file (the screen file, the host's ``-a 1-8``, the API's
``addresses``, set-address) or puts one on the bus checks it against this one
range, and every message names an address the same way (``0x2A``), so a card
reads the same in a log line, an error and a report.

It lives at the base layer, below the bus master, because the screen file
(:mod:`controller.config`) checks addresses too and may import nothing above
the base; :mod:`controller.protocol.framing` re-exports the constants as part of
the wire format.  The card firmware (``hw/firmware``) keeps its own copy: it
runs on the card, where none of the controller exists.
"""

from __future__ import annotations

#: The first and last unicast address a card may have (LWP/1).
ADDR_FIRST_CARD = 0x01
ADDR_LAST_CARD = 0xF0
#: Every card address, in scan order.
CARD_ADDRESSES = range(ADDR_FIRST_CARD, ADDR_LAST_CARD + 1)


def is_card_address(address: int) -> bool:
    """Whether ``address`` is one a card may have (0x01..0xF0)."""
    return ADDR_FIRST_CARD <= address <= ADDR_LAST_CARD


def hex_address(address: int) -> str:
    """A card address the way every message shows it: ``0x`` and two upper-case hex digits."""
    return f"0x{address:02X}"
