"""Running a profile: the checks in order, a report, the comparison with the last run.

One :class:`Inspection` per run is the context every check reads and adds to
(what the cards answered, their status, the cabinets as the report draws
them).  A check that raises is recorded as ``error`` with the reason and the
run goes on: an inspection that stops at the first surprise tells the
engineer less than one that reports the surprise and everything else.

The report is stored with the event-log cursors it advanced in one
transaction (:mod:`.history`), and compared with the previous *comparable*
run: the previous quarterly inspection for a quarterly one (or, before the
first, the commissioning run), so the customer sees what changed since the
last visit, not since last night's quick check.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from controller.boardcontext import (BoardContext, BusAccess, FrameStats, JobProgress,
                                     LivePicture, SelftestHistory, WallLevels)
from controller.cardaddress import hex_address
from controller.errors import LedwardenError
from controller.faultlog import FaultLog
from controller.jsonin import JsonObject
from controller.protocol import cards as ops
from controller.protocol import commands as c
from controller.report.findings import error_fields
from controller.screenmap import CardWhere, cabinet_entry, card_where
from controller.selftest.history import detected
from controller.selftest.model import OUTCOMES, RANK, CheckResult, worst
from controller.selftest.profiles import CHECKS
from controller.selftest.profiles import profile as get_profile
from controller.timeutil import utc_now

log = logging.getLogger("ledwarden.selftest")

HISTORY_RUNS = 8

#: Findings about what happened since the last run (card events), not a state the wall is in:
#: their absence next time is no repair, so they are never listed as fixed.
OCCURRENCES = ("events.",)
#: Keys naming one condition at different severities (a module's dead LEDs, some of them new):
#: compared as one, so a module that gains a dead LED is "worse", not "fixed" plus "new".
SAME_CONDITION = {"leds.dead_new": "leds.dead"}
#: Which earlier runs a run of each profile is compared with, best first.
COMPARABLE = {"quarterly": ("quarterly", "commissioning"), "commissioning": ("commissioning",
              "quarterly"), "quick": ("quick",)}


class Inspection:
    """The context of one run; checks read ``owner``, ``layout``… and fill ``cards``, ``status``.

    What it reads comes from the :class:`~controller.boardcontext.BoardContext`
    it is handed, never from the service: a run needs the board's parts, and
    a test or a bench script can hand them in without starting a service.
    """

    def __init__(self, board: BoardContext, profile_name: str) -> None:
        self.profile = get_profile(profile_name)
        self.params = self.profile.params()
        self.board = board
        #: The bus, queued (the checks' name for :attr:`BoardContext.bus`).
        self.owner: BusAccess = board.bus
        self.layout, self.settings = board.layout, board.settings
        self.frame_loop: FrameStats | None = board.frame_loop
        #: The live picture (settings and calibration the wall shows), when the board has one.
        self.picture: LivePicture | None = board.picture
        self.faults: FaultLog | None = board.faults
        self.state_dir: Path = board.state_dir
        self.reports_dir: Path = board.reports_dir
        self.history: SelftestHistory = board.history
        #: The wall's current brightness; without one, the screen file's default holds.
        self._brightness: WallLevels | None = board.brightness
        self.cards: dict[int, ops.CardInfo] = {}          # found by cards.present
        self.status: dict[int, c.StatusReply] = {}        # read by cards.environment
        self.next_cursors: dict[str, int] = {}
        self.baseline_source: JsonObject | None = None
        self.baseline: dict[tuple, dict] | None = None
        self._cabinets = {cab.address: cabinet_entry(cab) for cab in self.layout.cabinets}

    # ---- helpers for checks

    def where(self, address: int) -> CardWhere:
        """The fields and subject every card finding carries."""
        return card_where(self.layout, address)

    def cabinet(self, address: int) -> JsonObject:
        """The cabinet's entry in the report being built; checks fill in what they learn of its
        card."""
        return self._cabinets[address]

    def brightness_wanted(self, address: int) -> int:
        """The level a card should hold now: the wall's current brightness, not the screen
        file's default (which only commissioning starts from)."""
        if self._brightness is None:
            return self.settings.default_level
        return self._brightness.level(address)

    def brightness_ok(self, address: int, level: int) -> bool:
        """Whether a card's level is right, allowing a fade step sent while the check ran."""
        if self._brightness is None:
            return level == self.settings.default_level
        return self._brightness.accepts(address, level)

    def present(self) -> list[int]:
        """Addresses of the cards that answered, in screen-file order: the later checks ask only
        these."""
        return [cab.address for cab in self.layout.cabinets if cab.address in self.cards]

    def dead_led_baseline(self) -> dict[tuple, dict] | None:
        """Dead LEDs known before this run, keyed ``(address, module, x, y, channel)``: those of
        the last run that detected them, else of this screen's last acceptance report (the
        commissioning's own detection is the first baseline); None when neither exists.

        Kept in ``baseline`` (and where it came from in ``baseline_source``)
        for the comparison, so the new-LED flags and the comparison agree.
        """
        previous = self.history.previous(where_detected=True)
        if previous is not None:
            self.baseline_source = {"kind": "selftest", "id": previous["id"], "started": previous["started"]}
            self.baseline = _dead(previous)
        else:
            acceptance = last_acceptance(self.reports_dir, self.layout.name)
            if acceptance is None:
                return None
            self.baseline_source = {"kind": "acceptance", "started": acceptance.get("started")}
            self.baseline = _dead(acceptance)
        return self.baseline

    def cabinets(self) -> list[JsonObject]:
        """The cabinets in screen-file order, as the report and its wall drawing want them."""
        return [self._cabinets[cab.address] for cab in self.layout.cabinets]


async def run_profile(board: BoardContext, profile_name: str, *, trigger: str, who: str,
                      job: JobProgress | None = None) -> JsonObject:
    """Run every check of a profile and store the report in the board's history; returns it
    (with its ``id``).  ``job``, when given, hears each check as a step."""
    ix = Inspection(board, profile_name)
    history = board.history
    t0 = time.monotonic()
    report = {"kind": "inspection", "version": 1, "lang": "en", "id": None,
              "profile": profile_name, "trigger": trigger, "started_by": who,
              "screen": {"name": ix.layout.name, "width": ix.layout.width,
                         "height": ix.layout.height, "file": board.screen_file},
              "controller": board.controller_info(), "started": utc_now()}
    checks = []
    ids = ix.profile.checks
    for n, check_id in enumerate(ids):
        if job is not None:
            job.step(f"check {check_id}", n, len(ids))
        result = CheckResult()
        c0 = time.monotonic()
        try:
            await CHECKS[check_id].run(ix, result)
        except LedwardenError as exc:
            result.add("error", "check.error", **error_fields(exc))
        except Exception as exc:       # a bug in a check must not hide the other checks
            log.exception("self-test check %s crashed", check_id)
            result.add("error", "check.error", reason="internal", error=f"internal error: {exc!r}")
        entry: dict[str, Any] = {"id": check_id, "outcome": result.outcome, "duration_s": round(time.monotonic() - c0, 2),
                 "values": result.values, "findings": [f.as_dict() for f in result.findings]}
        checks.append(entry)
        if job is not None:
            bad = [f["text"] for f in entry["findings"] if f["outcome"] in ("warn", "fail", "error")]
            job.note(f"{check_id}: {entry['outcome']}" + (f" — {'; '.join(bad)}" if bad else ""))
    if job is not None:
        job.advance(len(ids), len(ids))
    for address, cab in zip([c.address for c in ix.layout.cabinets], ix.cabinets()):
        cab["problems"] = [{k: f[k] for k in ("key", "fields", "subject", "text")}
                           for ch in checks for f in ch["findings"]
                           if f["subject"].split("/")[0] == f"card:{hex_address(address)}"
                           and f["outcome"] in ("warn", "fail", "error")]
    counts = {o: sum(ch["outcome"] == o for ch in checks) for o in OUTCOMES}
    report.update(finished=utc_now(), duration_s=round(time.monotonic() - t0, 1),
                  result=worst(ch["outcome"] for ch in checks), counts=counts, checks=checks,
                  cabinets=ix.cabinets())
    previous = None
    for kind in COMPARABLE[profile_name]:
        previous = history.previous(profiles=(kind,))
        if previous is not None:
            break
    report["comparison"] = (compare(report, previous, ix.baseline, ix.baseline_source) if previous
                            else None)
    history.save(report, ix.next_cursors,
                 finish=lambda r: r.update(history=trend(history, r)))
    return report


def last_acceptance(reports_dir: Path, screen_name: str) -> JsonObject | None:
    """The newest acceptance report of this screen in ``reports_dir`` (by its start time), or None."""
    best = None
    for path in reports_dir.glob("acceptance-*.json"):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue                    # a damaged or foreign file is no baseline
        if not isinstance(report, dict) or (report.get("screen") or {}).get("name") != screen_name:
            continue
        if best is None or str(report.get("started")) > str(best.get("started")):
            best = report
    return best


def _finding_ids(report: JsonObject, checks: set[str]) -> dict[tuple, dict]:
    return {(ch["id"], SAME_CONDITION.get(f["key"], f["key"]), f["subject"]): {**f, "check": ch["id"]}
            for ch in report.get("checks", []) if ch["id"] in checks for f in ch["findings"]
            if f["outcome"] in ("warn", "fail", "error")}


def _dead(report: JsonObject) -> dict[tuple, dict]:
    return {(cab["address"], d["module"], d["x"], d["y"], d["channel"]): {"address": cab["address"], **d}
            for cab in report.get("cabinets", []) for d in cab.get("dead_leds") or []}


def _max_temperature(report: JsonObject) -> float | None:
    temps = [cab["status"]["temperature_c"] for cab in report.get("cabinets", []) if cab.get("status")]
    return max(temps) if temps else None


def compare(now: JsonObject, before: JsonObject, baseline: dict[tuple, dict] | None = None,
            baseline_source: JsonObject | None = None) -> JsonObject:
    """What changed since ``before``: findings new and fixed, dead LEDs, temperatures.

    Findings are compared only for checks both runs made: LEDs not looked at
    by a commissioning run are not "new" in the next quarterly one.  A
    finding is new if its condition was not there or is worse now; it is
    fixed only if its condition is gone (an event count that changed is no
    repair: see :data:`OCCURRENCES`).  Dead LEDs are compared with
    ``baseline`` (:meth:`Inspection.dead_led_baseline`), else with
    ``before`` if it looked for them.
    """
    both = ({ch["id"] for ch in now.get("checks", [])}
            & {ch["id"] for ch in before.get("checks", [])})
    f_now, f_before = _finding_ids(now, both), _finding_ids(before, both)
    out = {"previous_id": before.get("id"), "previous_started": before.get("started"),
           "previous_result": before.get("result"), "previous_profile": before.get("profile"),
           "new_findings": [f for k, f in f_now.items()
                            if k not in f_before or RANK[f["outcome"]] > RANK[f_before[k]["outcome"]]],
           "fixed_findings": [f for k, f in f_before.items()
                              if k not in f_now and not f["key"].startswith(OCCURRENCES)]}
    if baseline is None and detected(before):
        baseline, baseline_source = _dead(before), {"kind": "selftest", "id": before.get("id"),
                                                    "started": before.get("started")}
    if detected(now) and baseline is not None:
        d_now = _dead(now)
        out["dead_leds"] = {"previous": len(baseline), "now": len(d_now), "baseline": baseline_source,
                            "new": [d for k, d in d_now.items() if k not in baseline],
                            "fixed": [d for k, d in baseline.items() if k not in d_now]}
    else:
        out["dead_leds"] = None
    temps_before = {cab["address"]: cab["status"]["temperature_c"]
                    for cab in before.get("cabinets", []) if cab.get("status")}
    temperature = []
    for index, cab in enumerate(now.get("cabinets", []), 1):
        if cab.get("status") and cab["address"] in temps_before:
            was, is_ = temps_before[cab["address"]], cab["status"]["temperature_c"]
            temperature.append({"address": cab["address"], "cabinet": index, "previous_c": was,
                                "now_c": is_, "delta_c": round(is_ - was, 1)})
    out["temperature"] = temperature
    return out


def compared_with(now: JsonObject, before: JsonObject) -> JsonObject:
    """``now`` as if ``before`` had been the run before it: the comparison made again, and each
    dead LED's ``new`` mark set against ``before``'s (when it looked for them), so the page's
    rings and its comparison agree.  For comparing any two stored inspections; ``now`` itself is
    not changed."""
    out = json.loads(json.dumps(now))
    baseline = _dead(before) if detected(before) else None
    for cab in out.get("cabinets", []):
        for led in cab.get("dead_leds") or []:
            led["new"] = (baseline is not None and (cab["address"], led["module"], led["x"],
                                                    led["y"], led["channel"]) not in baseline)
    out["comparison"] = compare(out, before)
    return out


def trend(history: SelftestHistory, report: JsonObject) -> list[JsonObject]:
    """This run and the comparable runs before it, oldest first: the trend table's rows."""
    rows = []
    for run in history.runs(limit=HISTORY_RUNS * 4):
        if run["profile"] not in COMPARABLE[report["profile"]] or run["id"] > report["id"]:
            continue
        r = report if run["id"] == report["id"] else history.report(run["id"])
        rows.append({"id": r["id"], "profile": r["profile"], "started": r["started"],
                     "result": r["result"],
                     "dead_leds": len(_dead(r)) if detected(r) else None,
                     "max_temperature_c": _max_temperature(r)})
        if len(rows) == HISTORY_RUNS:
            break
    return rows[::-1]
