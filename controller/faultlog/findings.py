"""Filing a self-test's findings in the fault log: one feed among the others.

A run's warnings and failures become faults (or fold into the active fault
for the same condition), and the faults a check filed earlier are resolved
when that check runs again and no longer finds them.  It lives next to the
fault log, not in the service, because it is a rule of the log (which code a
finding is filed under, when it counts as repaired) that every caller of a
self-test — a job, the boot guard's health check, a test — must apply the
same way.

One condition is one fault, whichever feed sees it.  The card watch
(``controller/service/watch.py``) files a card's status flags under
``card.*`` codes; the self-test's ``cards.environment`` check reads the same
status and used to file the same condition under its own code
(``selftest.env.hot`` beside ``card.over_temperature``), so a hot cabinet
showed as two faults; likewise a logged watchdog reset or firmware rollback,
which the watch reads from the card's event log and the ``cards.events``
check counts.  :data:`CARD_CODES` maps those findings to the
watch's codes: a run that finds the cabinet hot folds into the watch's
fault (or opens it, and the watch then folds into the run's), and the one
fault is resolved by whichever feed next sees the condition gone.  Every
other finding is filed as ``selftest.KEY``.

Fault logs written before this mapping may hold ``selftest.env.hot``
(``.supply``, ``.fan``, ``.module_link``, ``selftest.leds.flagged``,
``selftest.events.watchdog``, ``selftest.events.rollback``) rows.  They are
not rewritten: cleared ones stay readable under their old code, and an
active one is resolved by the next run of its check, which files the
condition under its ``card.*`` code if it is still there.

A report here is the self-test runner's JSON (``checks`` → ``findings``
with ``outcome``, ``key``, ``subject``, ``text``); this module reads it as
data and imports nothing of the self-test package, which sits above it.
"""

from __future__ import annotations

from typing import Any

from controller.faultlog.model import card_source
from controller.faultlog.store import FaultLog

#: How a self-test outcome is filed in the fault log.
SEVERITY = {"warn": "warning", "fail": "error", "error": "warning"}
#: Every self-test finding's own code starts so (``selftest.env.warm``).
PREFIX = "selftest."

#: Finding key → (the card watch's code for the same condition, the check that files it).
#: Each is judged from the card's status (LWP/1 ``GET_STATUS``), as the watch's flags are:
#: hot at :data:`controller.limits.HOT_C` (the card's own flag), supply below
#: :data:`controller.limits.SUPPLY_MIN_MV`, the fan, module link and pixel-fault flags.
#: A check of None marks an occurrence (an entry in the card's event log): the watch files it
#: to stay until a person clears it, so no run resolves it either.
CARD_CODES: dict[str, tuple[str, str | None]] = {
    "env.hot": ("card.over_temperature", "cards.environment"),
    "env.supply": ("card.under_voltage", "cards.environment"),
    "env.fan": ("card.fan_fault", "cards.environment"),
    "env.module_link": ("card.module_link_lost", "cards.environment"),
    "leds.flagged": ("card.pixel_faults", "cards.leds"),
    "events.watchdog": ("card.watchdog_reset", None),
    "events.rollback": ("card.firmware_rolled_back", None),
}


def fault_code(key: str) -> str:
    """The fault code a finding is filed under: the watch's ``card.*`` code for a condition
    both feeds see (:data:`CARD_CODES`), else ``selftest.KEY``."""
    shared = CARD_CODES.get(key)
    return shared[0] if shared else f"{PREFIX}{key}"


def _looked_at(report: dict[str, Any]) -> dict[str, set[str]]:
    """Check id → the card sources whose status that check judged in this run.

    A ``card.*`` fault may be resolved by a run only if the run looked: the
    environment check judges every card whose status it read (the report's
    cabinet has a ``status``); the LED check judges the pixel-fault flag only
    when it did not run a detection instead (its ``dead_leds`` value is None).
    """
    read = {card_source(cab["address"]) for cab in report.get("cabinets", []) if cab.get("status")}
    looked: dict[str, set[str]] = {}
    for check in report["checks"]:
        if check["id"] == "cards.environment":
            looked[check["id"]] = read
        elif check["id"] == "cards.leds" and check.get("values", {}).get("dead_leds") is None:
            looked[check["id"]] = read
    return looked


def record_selftest_faults(faults: FaultLog, report: dict[str, Any]) -> None:
    """Every warning and failure becomes (or folds into) a fault; faults of checks that
    ran and no longer find them are resolved.

    ``selftest.*`` faults are resolved by a run of the check that filed them;
    a ``card.*`` fault (:data:`CARD_CODES`) only by a run that judged that
    card's status and found the condition gone — the watch may have filed it,
    and a run that did not look at the card knows nothing about it.
    """
    seen = set()
    for check in report["checks"]:
        for f in check["findings"]:
            if f["outcome"] == "pass":
                continue
            code = fault_code(f["key"])
            seen.add((code, f["subject"]))
            faults.record(code, SEVERITY[f["outcome"]], f["subject"],
                          {"text": f["text"], "check": check["id"], "run": report["id"]})
    ran = {check["id"] for check in report["checks"]}
    looked = _looked_at(report)
    card_checks = {code: check for code, check in CARD_CODES.values()}
    by = f"self-test {report['id']}"
    for fault in faults.active():
        if (fault.code, fault.source) in seen:
            continue
        if fault.code.startswith(PREFIX) and fault.details.get("check") in ran:
            faults.resolve(fault.code, fault.source, by=by)
        elif (card_checks.get(fault.code) is not None
              and fault.source in looked.get(card_checks[fault.code] or "", ())):
            faults.resolve(fault.code, fault.source, by=by)
