"""``ledwarden selftest run|list|history|report``: the service engineer's inspection.

``run --profile quarterly`` is the quarterly inspection: it follows the job
with a progress bar, prints every check's outcome and what it found, and
saves the report (HTML in the chosen language, and JSON) so it can be handed
over.  ``report ID`` fetches any earlier run's report again, in English or
Chinese.  The exit status is 0 for pass or warn, 1 for fail or error, so a
script (or systemd's timer) can tell.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controller.cardaddress import hex_address
from controller.cliout import add_json_flag, emit, table, wants_json
from controller.errors import LedwardenError
from controller.jsonin import JsonObject
from controller.report.page import report_stem, write_new
from host.remote import client_for, follow

MARK = {"pass": "ok  ", "warn": "WARN", "fail": "FAIL", "error": "ERR "}


def _save(client, report: JsonObject, out: Path, lang: str) -> JsonObject:
    """Save the run's JSON and its page in ``lang`` under a name of their own (screen, start time,
    run number), never over an earlier file: two walls or two demos fill one folder side by side."""
    run_id = report["id"]
    html = client.get_text(f"/api/v1/selftest/runs/{run_id}?format=html&lang={lang}")
    json_text = client.get_text(f"/api/v1/selftest/runs/{run_id}?format=json")
    stem = report_stem("inspection", (report.get("screen") or {}).get("name"), report.get("started"), run_id)
    html_suffix = ".html" if lang == "en" else f".{lang}.html"
    paths = write_new(out, stem, {".json": json_text, html_suffix: html})
    return {"html": str(paths[html_suffix].resolve()), "json": str(paths[".json"].resolve())}


def _print_report(report: JsonObject) -> None:
    counts = report["counts"]
    print(f"\nSelf-test {report['id']} ({report['profile']}): {report['result'].upper()} in "
          f"{report['duration_s']} s — " + ", ".join(f"{n} {o}" for o, n in counts.items() if n))
    for check in report["checks"]:
        print(f"  [{MARK[check['outcome']]}] {check['id']}")
        for f in check["findings"]:
            if f["outcome"] != "pass" or check["outcome"] == "pass":
                print(f"           {f['text']}")
    comparison = report.get("comparison")
    if comparison:
        print(f"\nSince self-test {comparison['previous_id']} ({comparison['previous_profile']}, "
              f"{comparison['previous_started']}, {comparison['previous_result']}):")
        for f in comparison["new_findings"]:
            print(f"  new:   {f['text']}")
        for f in comparison["fixed_findings"]:
            print(f"  fixed: {f['text']}")
        dead = comparison.get("dead_leds")
        if dead:
            print(f"  dead LEDs: {dead['previous']} → {dead['now']} ({len(dead['new'])} new, "
                  f"{len(dead['fixed'])} fixed)")
        for t in comparison["temperature"]:
            if abs(t["delta_c"]) >= 5:
                print(f"  cabinet {t['cabinet']} ({hex_address(t['address'])}): {t['previous_c']} → "
                      f"{t['now_c']} °C")
        if not (comparison["new_findings"] or comparison["fixed_findings"]):
            print("  no change in findings")
    else:
        print("\nFirst run of its kind on record: nothing to compare with yet.")


def cmd_run(args, client) -> int:
    job = client.post("/api/v1/selftest/run", {"profile": args.selftest_profile, "trigger": args.trigger})
    job = follow(client, job, quiet=wants_json(args))
    if job["state"] != "succeeded":
        emit(args, job, lambda job: print(f"ledwarden: self-test {job['state']}: {job['error']}",
                                          file=sys.stderr))
        return 1
    run_id = job["result"]["id"]
    report = client.get(f"/api/v1/selftest/runs/{run_id}")
    saved = _save(client, report, Path(args.out), args.lang)

    def show(_: object) -> None:
        _print_report(report)
        print(f"\nReport: {saved['html']}\n  (JSON): {saved['json']}")

    emit(args, report | {"saved": saved}, show)
    return 0 if report["result"] in ("pass", "warn") else 1


def cmd_list(args, client) -> int:
    return emit(args, client.get("/api/v1/selftest/checks", lang=args.lang), _show_checks)


def _show_checks(data: JsonObject) -> None:
    for check in data["checks"]:
        used = [p for p, spec in data["profiles"].items() if check["id"] in spec["checks"]]
        print(f"{check['id']:<18} {check['title']}  [{', '.join(used)}]")
        print(f"{'':<18} measures: {check['measures']}")
        print(f"{'':<18} limits:   {check['limits']}")


def cmd_history(args, client) -> int:
    data = client.get("/api/v1/selftest/runs", limit=args.limit,
                      **({"profile": args.selftest_profile} if args.selftest_profile else {}))

    def show(data: JsonObject) -> None:
        print(table([(r["id"], r["profile"], r["trigger"], r["started"], r["result"])
                     for r in data["runs"]], ["id", "profile", "trigger", "started", "result"]))
        schedule = client.get("/api/v1/selftest/schedule")
        if schedule.get("next"):
            print(f"\nnext scheduled quarterly inspection: {schedule['next']} (last {schedule['last']})")

    return emit(args, data, show)


def cmd_report(args, client) -> int:
    if args.html and wants_json(args):
        raise LedwardenError("choose --html or --json, not both")
    if args.html:
        text = client.get_text(f"/api/v1/selftest/runs/{args.id}?format=html&lang={args.lang}")
    else:
        text = client.get_text(f"/api/v1/selftest/runs/{args.id}?format=json")
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"saved {Path(args.output).resolve()}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("selftest", help="run self-tests (quick, quarterly inspection) and read reports",
                       description=__doc__.split("\n\n")[0])
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def add(name, fn, help):
        a = actions.add_parser(name, help=help, description=help)
        add_json_flag(a)
        a.set_defaults(func=lambda args: fn(args, client_for(args)))
        return a

    a = add("run", cmd_run, "run a profile and save its report")
    # dest differs from the global --profile (a controller profile of the config file)
    a.add_argument("--profile", dest="selftest_profile", default="quick",
                   choices=("quick", "quarterly", "commissioning"), help="default quick")
    a.add_argument("--lang", default="en", choices=("en", "zh"), help="language of the saved HTML page")
    a.add_argument("--out", default="reports", help="where to save the report (default ./reports)")
    a.add_argument("--trigger", default="manual", choices=("manual", "schedule"),
                   help=argparse.SUPPRESS)   # systemd's timer says "schedule"
    a = add("list", cmd_list, "the checks, what each measures, its limits, and its profiles")
    a.add_argument("--lang", default="en", choices=("en", "zh"))
    a = add("history", cmd_history, "earlier runs, newest first, and the next scheduled one")
    a.add_argument("--limit", type=int, default=20)
    a.add_argument("--profile", dest="selftest_profile", choices=("quick", "quarterly", "commissioning"))
    a = add("report", cmd_report, "one run's report: the JSON record (--json, the default) "
                                  "or the HTML page (--html)")
    a.add_argument("id", type=int)
    a.add_argument("--html", action="store_true", help="the HTML page")
    a.add_argument("--lang", default="en", choices=("en", "zh"))
    a.add_argument("-o", "--output", help="write to this file instead of stdout")
