"""The health check a freshly upgraded controller must pass before its slot is marked good.

It belongs to the upgrades (:mod:`controller.upgrade.confirm` calls it on a
trial start, the boot guard acts on its verdict), not to the service that
happens to run it: it needs only the board (:class:`~controller.boardcontext.BoardContext`)
to run the quick self-test on, so it is tested, and could run, without one.
"""

from __future__ import annotations

import asyncio

from controller.boardcontext import BoardContext
from controller.faultlog.findings import record_selftest_faults
from controller.selftest.runner import run_profile

#: Outcomes that make a finding a failure the new controller must not have added.
FAILING = ("fail", "error")


async def health_check(board: BoardContext) -> tuple[bool, str]:
    """Is this controller fit to keep running?  (ok, one-line summary).

    The quick self-test talks to every card and checks the fast path, the
    storage and the clock.  Only failures that the last run before it did
    not have count: a wall with a hot cabinet must still be upgradable, but a
    controller that cannot talk to a card it talked to before, or whose fast
    path is wrong, is no better than the one it replaced.  With no earlier
    run every failure counts.  The run's findings are filed in the fault log
    like any other run's.
    """
    before = board.history.previous()
    report = await run_profile(board, "quick", trigger="upgrade", who="boot guard")
    if board.faults is not None:
        await asyncio.to_thread(record_selftest_faults, board.faults, report)
    known = set() if before is None else {
        (ch["id"], f["key"], f["subject"]) for ch in before["checks"] for f in ch["findings"]
        if f["outcome"] in FAILING}
    new = [f["text"] for ch in report["checks"] for f in ch["findings"]
           if f["outcome"] in FAILING and (ch["id"], f["key"], f["subject"]) not in known]
    summary = f"quick self-test {report['id']}: {report['result']}"
    if new:
        return False, f"{summary}, new since self-test {before['id'] if before else '—'}: {'; '.join(new)}"
    return True, summary + (" (no failure that was not there before)" if report["result"] == "fail" else "")
