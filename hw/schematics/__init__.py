"""The controller's bus interface: a Raspberry Pi header to an RS-485 card bus.

``bus_interface.py`` holds the design as data and turns it into a KiCad
netlist with SKiDL; ``render_svg.py`` draws the same data as the SVG that
``docs/hardware.md`` shows; ``failsafe.py`` works out the bus's worst-case
idle voltage and driven swing for the resistor values on the board.  Both
outputs are committed beside them, and ``tests/hw/test_schematic.py``
checks them against each other, against ``controller/board.py``, against
the parts' datasheet pinouts and ratings, and against ``failsafe.py``.
"""
