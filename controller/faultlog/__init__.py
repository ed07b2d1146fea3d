"""The controller's durable fault log (``STATE/faults.db``); see ``docs/faults.md``.

Feeds (the bus, card status, self-tests, the frame loop, upgrades) call
:meth:`FaultLog.record` and :meth:`FaultLog.resolve`; people read and clear
through the API and ``ledwarden faults``.
"""

from controller.faultlog.model import SEVERITIES, STATES, Fault, card_source, parse_time
from controller.faultlog.schema import FaultLogUnusable
from controller.faultlog.store import FaultLog

__all__ = ["SEVERITIES", "STATES", "Fault", "FaultLog", "FaultLogUnusable", "card_source",
           "parse_time"]
