"""Filing a self-test's findings in the fault log: one feed among the others.

A run's warnings and failures become faults (or fold into the active fault
for the same condition), and the faults a check filed earlier are resolved
when that check runs again and no longer finds them.  It lives next to the
fault log, not in the service, because it is a rule of the log (which code a
finding is filed under, when it counts as repaired) that every caller of a
self-test — a job, the boot guard's health check, a test — must apply the
same way.

A report here is the self-test runner's JSON (``checks`` → ``findings``
with ``outcome``, ``key``, ``subject``, ``text``); this module reads it as
data and imports nothing of the self-test package, which sits above it.
"""

from __future__ import annotations

from typing import Any

from controller.faultlog.store import FaultLog

#: How a self-test outcome is filed in the fault log.
SEVERITY = {"warn": "warning", "fail": "error", "error": "warning"}
#: Every self-test finding's own code starts so (``selftest.env.warm``).
PREFIX = "selftest."


def record_selftest_faults(faults: FaultLog, report: dict[str, Any]) -> None:
    """Every warning and failure becomes (or folds into) a fault; faults of checks that
    ran and no longer find them are resolved."""
    seen = set()
    for check in report["checks"]:
        for f in check["findings"]:
            if f["outcome"] == "pass":
                continue
            code = f"{PREFIX}{f['key']}"
            seen.add((code, f["subject"]))
            faults.record(code, SEVERITY[f["outcome"]], f["subject"],
                          {"text": f["text"], "check": check["id"], "run": report["id"]})
    ran = {check["id"] for check in report["checks"]}
    for fault in faults.active():
        if (fault.code.startswith(PREFIX) and (fault.code, fault.source) not in seen
                and fault.details.get("check") in ran):
            faults.resolve(fault.code, fault.source, by=f"self-test {report['id']}")
