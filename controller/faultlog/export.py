"""Faults out of the controller: CSV for a spreadsheet, JSON for programs and tickets.

Both carry every field; the CSV puts ``details`` in one column as JSON, so
a row is one fault and opens as such in any spreadsheet.  No I/O here: the
API sends the text, the host tool saves it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable

from controller.faultlog.model import Fault

FORMATS = ("csv", "json")
COLUMNS = ("id", "code", "severity", "source", "state", "count", "first_seen", "last_seen",
           "cleared_at", "cleared_by", "details")
#: Cells a spreadsheet would run as a formula.  Details can carry text a
#: card or a file sent; an export opened in a spreadsheet must not execute it.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> object:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(faults: Iterable[Fault]) -> str:
    """A header row, then one row per fault (``\\r\\n`` line ends, as RFC 4180 has them)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for fault in faults:
        row = fault.as_dict()
        row["details"] = json.dumps(fault.details, sort_keys=True, ensure_ascii=False)
        writer.writerow([_cell(row[c]) for c in COLUMNS])
    return out.getvalue()


def to_json(faults: Iterable[Fault], *, exported: str, controller: str = "") -> str:
    """``{"exported": time, "controller": name, "faults": [...]}``, one fault object each.

    The export time and controller name travel with the data, because an
    export ends up attached to a ticket far from the wall it came from.
    """
    doc = {"exported": exported, "controller": controller,
           "faults": [f.as_dict() for f in faults]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
