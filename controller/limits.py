"""The card limits every part judges a card by: one place, quoted by the checks and the reports.

Two come from the wire spec (``shared/spec/wire-protocol.md``, "Status flags"):
a card sets its over-temperature flag at 85 °C and above (bit 0) and its
under-voltage flag below 4.5 V (bit 1), so the controller calls a card hot or
under-supplied at the same point the card itself does.  The warning level is
the project's own: 70 °C leaves a cabinet room to cool before the card's flag
trips.

The self-test (:mod:`controller.selftest.checks_cards`), commissioning
(:mod:`controller.service.commission`), the reports' colours and legends
(:mod:`controller.report.wall`, :mod:`controller.report.comparison`) and the
check descriptions in :mod:`controller.report.i18n` all quote these.  The watch
(:mod:`controller.service.watch`) files the cards' own flags and so holds no
number of its own.
"""

from __future__ import annotations

#: A cabinet is drawn warm, and the self-test warns, from this temperature (°C): the project's
#: own early warning, below the cards' flag.
WARM_C = 70.0
#: A card is hot from this temperature (°C): its over-temperature flag (LWP/1 status bit 0, ≥ 85 °C).
HOT_C = 85.0
#: The least supply (mV) a card works at: its under-voltage flag (LWP/1 status bit 1, < 4.5 V).
SUPPLY_MIN_MV = 4500
