"""Host commands that work through a controller's API: ``status``, ``cards``, ``commission``,
``pattern``, ``detect``, ``jobs`` (``brightness`` is :mod:`host.brightnesscli`).

The controller is named with the global ``--controller https://HOST:PORT`` or
``--profile NAME``; the token comes from ``--token-file``, the
``LEDWARDEN_TOKEN`` environment variable or the profile, never from the
command line (it would show in ``ps`` and shell history).  Long jobs show a
live progress bar and, during commissioning, ask the installer to confirm
each test pattern unless ``--yes``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from controller.brightness import LEVEL_MAX
from controller.cardresults import from_json
from controller.cardaddress import hex_address
from controller.cliout import Progress, emit_json, table
from controller.errors import LedwardenError
from controller.protocol import commands as c
from controller.report.i18n import plural
from controller.report.page import write_new
from host.brightnesscli import describe
from host.buscli import parse_addresses, parse_level
from host.client import ControllerClient, client_from_args

POLL_S = 0.25


def client_for(args: argparse.Namespace) -> ControllerClient:
    """The client every host command uses; its first-use notice is the client's own (the one
    ``docs/security.md`` quotes), not a second wording."""
    return client_from_args(args)


def follow(client: ControllerClient, job: dict, *, quiet: bool, answer_yes: bool = False) -> dict:
    """Poll a job until it ends, drawing progress and asking its questions.

    Ctrl-C at a question cancels the job on the controller (nobody is there
    to look at the wall, and a waiting job holds the bus); Ctrl-C while it
    merely runs leaves it running and says how to come back to it.
    """
    at_question = False
    try:
        bar = Progress(job["kind"], enabled=not quiet)
        shown_step = None
        while True:
            job = client.get(f"/api/v1/jobs/{job['id']}")
            progress = job["progress"]
            if not quiet and progress["step"] != shown_step and sys.stderr.isatty():
                bar.label = progress["step"][:40] or job["kind"]
                shown_step = progress["step"]
            bar(progress["done"], max(progress["total"], 1))
            if job["state"] == "waiting" and job["question"]:
                if answer_yes:
                    yes = True
                elif not sys.stdin.isatty():
                    raise LedwardenError(
                        f"the controller asks: {job['question']} — but there is no terminal to "
                        f"answer; answer from a terminal with 'ledwarden jobs attach {job['id']}', "
                        f"cancel with 'ledwarden jobs cancel {job['id']}', or run with --yes for "
                        f"unattended runs")
                else:
                    at_question = True
                    reply = input(f"\n{job['question']} [y/n, Ctrl-C cancels job {job['id']}] ")
                    at_question = False
                    yes = reply.strip().lower() in ("y", "yes")
                client.post(f"/api/v1/jobs/{job['id']}/answer", {"yes": yes})
                continue
            if job["state"] in ("succeeded", "failed", "cancelled"):
                bar(1, 1)
                return job
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        if at_question:
            ended = client.post(f"/api/v1/jobs/{job['id']}/cancel")
            print(f"\nledwarden: job {job['id']} ({job['kind']}) {ended['state']} on the "
                  f"controller; the wall is back to normal video", file=sys.stderr)
        else:
            print(f"\nledwarden: job {job['id']} ({job['kind']}) keeps running on the controller: "
                  f"follow it again with 'ledwarden jobs attach {job['id']}' or stop it with "
                  f"'ledwarden jobs cancel {job['id']}'", file=sys.stderr)
        raise


# ------------------------------------------------------------------ commands

def output_summary(readings: dict) -> str:
    """One line of the cards' GET_OUTPUT readings in ``status`` (outputwatch)."""
    values = list(readings.values())
    showing = sum(1 for r in values if r["showing"] is True)
    black = [a for a, r in readings.items() if r["showing"] is False]
    lacking = sum(1 for r in values if not r["supported"])
    measured = [r["current_ma"] for r in values if r["current_ma"] is not None]
    parts = [f"{showing} of {len(values)} cards showing video"]
    if black:
        parts.append(f"NOT showing: {', '.join(black)}")
    if measured:
        parts.append(f"{sum(measured) / 1000:.2f} A measured by {len(measured)} cards")
    if lacking:
        parts.append(f"{lacking} without GET_OUTPUT (current estimated only)")
    return "; ".join(parts)


def cmd_status(args, client) -> int:
    data = client.get("/api/v1/status")
    if args.json:
        emit_json(data)
        return 0
    s, fl = data["screen"], data["frame_loop"]
    print(f"screen     {s['name']}: {s['width']}x{s['height']}, {s['cabinets']} cabinets ({s['file']})")
    print(f"software   {data['software']}, up {data['uptime_s']:.0f} s")
    print(f"bus        {data['bus']['port']} at {data['bus']['baud']} baud, "
          f"{data['bus']['operations']} operations")
    if fl:
        print(f"frames     {fl['fps']} fps of {fl['target_fps']:g} ({fl['resolution']}, "
              f"{fl['backend']}, {fl['threads']} threads), p50 {fl['p50_ms']} ms, "
              f"p99 {fl['p99_ms']} ms, {fl['overruns']} overruns"
              + (f", ERROR {fl['error']}" if fl["error"] else ""))
    for line in power_lines(data.get("power")):
        print(line)
    output = data.get("card_output")
    if output:
        print(f"output     {output_summary(output)}")
    faults, last = data.get("faults"), data.get("last_selftest")
    if faults is not None:
        by = ", ".join(f"{n} {sev}" for sev, n in faults.get("by_severity", {}).items() if n)
        print(f"faults     {faults['active']} active" + (f" ({by})" if by else "")
              + "  ('ledwarden faults list')")
    if data.get("brightness"):
        print("\n".join(describe(data["brightness"])))
    if last:
        print(f"self-test  {last['id']} ({last['profile']}, {last['started']}): {last['result']}")
    for job in data["jobs"]:
        print(f"job {job['id']:<5}  {job['kind']} {job['state']}: {job['progress']['step']}")
    return 0


def power_lines(power: dict | None) -> list[str]:
    """The current limiter in ``status``: a summary, then each cabinet it is limiting."""
    if not power:
        return []
    cabs = power["cabinets"]
    limited = [c for c in cabs if c["limiting"]]
    top = max(cabs, key=lambda c: c["estimate_a"] / (c["budget_a"] or math.inf), default=None)
    parts = [f"{len(limited)} of {len(cabs)} cabinets limited"]
    if top is not None and top["budget_a"]:
        parts.append(f"highest {top['estimate_a']:g} A of {top['budget_a']:g} A (cabinet "
                     f"{top['address']})")
    if power["wall_budget_a"]:
        parts.append(f"wall {power['wall_estimate_a']:g} A of {power['wall_budget_a']:g} A")
    lines = [f"power      {'; '.join(parts)}; {power['note']}"]
    for c in limited:
        card = "" if c["measured_a"] is None else f", card reads {c['measured_a']:g} A"
        budget = f"of {c['budget_a']:g} A" if c["budget_a"] else "(the wall's budget)"
        lines.append(f"  cabinet {c['address']}: {c['estimate_a']:g} A {budget}{card}, "
                     f"gain x{c['scale']:.2f}")
    return lines


def cmd_cards(args, client) -> int:
    data = client.get("/api/v1/cards")
    if args.json:
        emit_json(data)
        return 0
    rows = []
    for cab in data["cabinets"]:
        card, link = cab["card"] or {}, cab["link"] or {}
        rtt = (link.get("rtt_ms") or {}).get("p99")
        rows.append((hex_address(cab['address']), f"{cab['x']},{cab['y']}",
                     "yes" if cab["found"] else "not seen", card.get("serial"), card.get("firmware"),
                     link.get("requests"), link.get("retries"), rtt))
    print(table(rows, ["address", "at", "found", "serial", "firmware", "requests", "retries",
                       "rtt_p99_ms"]))
    for extra in data["unexpected"]:
        print(f"unexpected card at {hex_address(extra['address'])}: {extra['card']}")
    if not any(cab["found"] for cab in data["cabinets"]):
        print("(no card seen yet: 'ledwarden commission' finds and identifies them; the "
              "controller's watch also marks each card that answers its status polls)")
    return 0


def _finish(args, job: dict) -> int:
    if args.json:
        emit_json(job)
    elif job["state"] != "succeeded":
        print(f"ledwarden: {job['kind']} {job['state']}: {job['error']}", file=sys.stderr)
    return 0 if job["state"] == "succeeded" else 1


def cmd_commission(args, client) -> int:
    job = client.post("/api/v1/commission", {"unattended": args.yes, "lang": args.lang})
    job = follow(client, job, quiet=args.json, answer_yes=args.yes)
    if job["state"] != "succeeded":
        return _finish(args, job)
    result = job["result"]
    names = result["report"]
    # The board names the pair (screen, start time); a file of that name here is never replaced.
    paths = write_new(Path(args.out), Path(names["json"]).stem,
                      {".json": client.get_text(f"/api/v1/reports/{names['json']}"),
                       ".html": client.get_text(f"/api/v1/reports/{names['html']}")})
    saved = {"json": str(paths[".json"].resolve()), "html": str(paths[".html"].resolve())}
    if args.json:
        emit_json(job | {"saved": saved})
    else:
        verdict = {"pass": "PASS", "fail": "FAIL", "unwatched": "PASS, but nobody watched the test patterns"}
        print(f"\nCommissioning {verdict.get(result['result'], result['result'].upper())}")
        for line in result["summary"]:
            print(f"  - {line}")
        print(f"\nAcceptance report: {saved['html']}\n            (JSON): {saved['json']}")
    return 0 if result["result"] in ("pass", "unwatched") else 1


def cmd_pattern(args, client) -> int:
    body = {"pattern": args.pattern, "level": args.level}
    if args.address:
        body["addresses"] = args.address
    data = client.post("/api/v1/pattern", body)
    if args.json:
        emit_json(data)
    else:
        where = "every card" if data["broadcast"] else ", ".join(data["cards"])
        print(f"pattern {data['pattern']} on {where}")
    return 0


def cmd_detect(args, client) -> int:
    job = client.post("/api/v1/detect", {"addresses": args.address} if args.address else {})
    job = follow(client, job, quiet=args.json)
    if job["state"] != "succeeded" or args.json:
        return _finish(args, job)
    rows, errors = [], []
    for card in from_json(job["result"], list):
        if card.error is not None:
            errors.append(card.error)
        else:
            rows += [(hex_address(card.address), d["module"], d["x"], d["y"], d["channel"])
                     for d in card.value or []]
    if rows:
        print(table(rows, ["address", "module", "x", "y", "channel"]))
    cards = len(job["result"])
    print(f"{len(rows)} {plural(len(rows), 'dead_led', 'en')} on {cards} {plural(cards, 'card', 'en')}")
    for e in errors:
        print(f"ledwarden: error: {e}", file=sys.stderr)
    return int(bool(errors))


JOB_ACTIONS = ("attach", "cancel")


def _job_target(args) -> tuple[str, int | None]:
    """``jobs``, ``jobs N``, ``jobs attach N``, ``jobs cancel N`` → (action, job id)."""
    what, rest = args.what, args.job_id
    if what is None:
        return "list", None
    if what in JOB_ACTIONS:
        if rest is None or not rest.isdigit():
            raise LedwardenError(f"say which job: 'ledwarden jobs {what} N' "
                                 f"(see 'ledwarden jobs' for the numbers)")
        return what, int(rest)
    if what.isdigit() and rest is None:
        return "show", int(what)
    raise LedwardenError(f"'{' '.join(filter(None, (what, rest)))}' is not a job command: use "
                         f"'ledwarden jobs', 'jobs N', 'jobs attach N' or 'jobs cancel N'")


def cmd_jobs(args, client) -> int:
    action, job_id = _job_target(args)
    if action == "cancel":
        job = client.post(f"/api/v1/jobs/{job_id}/cancel")
        if args.json:
            emit_json(job)
        else:
            print(f"job {job['id']} {job['kind']}: {job['state']}")
        return 0 if job["state"] == "cancelled" else 1
    if action == "attach":
        job = follow(client, client.get(f"/api/v1/jobs/{job_id}"), quiet=args.json)
        if args.json or job["state"] != "succeeded":
            return _finish(args, job)
        result = job["result"] if isinstance(job["result"], dict) else {}
        print(f"job {job['id']} {job['kind']}: succeeded"
              + (f", {result['result']}" if "result" in result else ""))
        for line in result.get("summary", []):
            print(f"  - {line}")
        return 0
    if action == "show":
        job = client.get(f"/api/v1/jobs/{job_id}")
        if args.json:
            emit_json(job)
        else:
            print(f"job {job['id']} {job['kind']}: {job['state']}"
                  + (f" ({job['error']})" if job["error"] else ""))
            print("\n".join(job["log"]))
        return 0
    data = client.get("/api/v1/jobs")
    if args.json:
        emit_json(data)
        return 0
    rows = [(j["id"], j["kind"], j["state"], j["started_by"], j["created"], j["progress"]["step"])
            for j in data["jobs"]]
    print(table(rows, ["id", "kind", "state", "by", "created", "step"]))
    return 0


# ------------------------------------------------------------------ parser

def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON")

    def add(name, fn, help):
        p = sub.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(func=lambda args: fn(args, client_for(args)))
        return p

    add("status", cmd_status, "the controller's state: screen, bus, frame loop, running jobs")
    add("cards", cmd_cards, "cards the controller knows, with link quality")
    p = add("commission", cmd_commission,
            "commission the screen: discover, configure, test patterns, LED detection, report")
    p.add_argument("--yes", action="store_true",
                   help="do not wait for confirmation of each test pattern (unattended)")
    p.add_argument("--out", default="reports", help="where to save the acceptance report (default ./reports)")
    p.add_argument("--lang", default="en", choices=("en", "zh"),
                   help="language of the acceptance report (default en)")
    p = add("pattern", cmd_pattern, "show a test pattern on the wall")
    p.add_argument("pattern", choices=[x.name.lower().replace("_", "-") for x in c.Pattern])
    p.add_argument("--level", type=parse_level, default=LEVEL_MAX)
    p.add_argument("-a", "--address", type=parse_addresses, help="only these cards (default: all)")
    p = add("detect", cmd_detect, "run LED-fault detection and list dead LEDs")
    p.add_argument("-a", "--address", type=parse_addresses, help="only these cards (default: all)")
    p = add("jobs", cmd_jobs, "list the controller's jobs; 'jobs N' shows one with its log, "
                              "'jobs attach N' follows it and answers its questions, "
                              "'jobs cancel N' cancels it")
    p.add_argument("what", nargs="?", metavar="N|attach|cancel",
                   help="a job number to show, or attach/cancel followed by the job number")
    p.add_argument("job_id", nargs="?", metavar="N", help=argparse.SUPPRESS)
