"""SIGKILL the controller again and again during one DDI deployment of a controller bundle.

A guarded board on N takes N+1 from our DDI server (``tests/support/ddi_server.py``,
which records every feedback it gets, so "one final status" can be counted; gooseBit
keeps only the last log).  Twenty times the test kills it with SIGKILL, each time a
seeded random delay after the deployment reached one of its stages:

- **download**: after a download request arrived (served at a rate that spreads the
  bundle over the planned kills), so the next start resumes it with ``Range``;
- **install**: while the A/B installer writes the other slot;
- **restart**: once the switch is made, while the old version stops and the guard
  starts the new one on trial;
- **verdict**: while the new version answers and runs its health check;
- **report**: while the server holds the final status (it waits ``final_delay``
  before recording it and again before answering), both before and after it
  was recorded.

Each kill is either of the controller process alone (the OOM killer: the guard
lives on) or of every process of the unit (a power cut: guard, controller,
installer); the test then starts the guard again, as systemd's ``Restart=always``
does.  At the end the board runs N+1, confirmed, from the other slot; the journal
shows one install and one verdict; the server got exactly one final status.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter

import pytest

from controller.upgrade.bundles.slots import SlotStateError, SlotStore
from support.ddi_server import TARGET, TENANT, TOKEN, Action, DdiServer, Serving
from support.fleet_rig import configure_ddi, wait_for
from support.upgrade_rig import N, N1, board_on, bundle

pytestmark = pytest.mark.timeout(600)

SEED = 1717
#: Kills planned at each stage, in the order the deployment meets them (20 in all).
PLAN = (("download", 8), ("install", 2), ("restart", 2), ("verdict", 2), ("report", 6))
FINAL_DELAY = 1.5
#: Starts a trial gets before the guard gives up on it: the restart and verdict kills each
#: cost one, and this test is about the deployment surviving them, not about a rollback.
MAX_STARTS = 6


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    found, todo = [], children(pid)
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children(p)
    return found


def kill(run, how: str) -> str:
    """SIGKILL the controller process (``service``) or the whole unit (``power``)."""
    service = children(run.proc.pid)
    if how == "service" and service:
        os.kill(service[0], signal.SIGKILL)
        return how
    for pid in [run.proc.pid, *descendants(run.proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    run.proc.wait()
    return "power"


def plan_delays(rng: random.Random) -> list[tuple[str, float]]:
    plan = []
    for stage, n in PLAN:
        for i in range(n):
            if stage == "download":
                delay = rng.uniform(0.4, 1.2)
            elif stage == "install":
                delay = rng.uniform(0.5, 2.5)
            elif stage == "restart":
                delay = rng.uniform(0.0, 0.6)
            elif stage == "verdict":
                delay = rng.uniform(0.3, 2.5)
            elif i < n - 1:                           # report: before the server records it ...
                delay = rng.uniform(0.1, FINAL_DELAY - 0.4)
            else:                                     # ... and once after
                delay = rng.uniform(FINAL_DELAY + 0.4, 2 * FINAL_DELAY - 0.4)
            plan.append((stage, delay))
    return plan


def test_twenty_kills_during_a_deployment_one_install_one_final_status(tmp_path):
    t_setup = time.monotonic()
    board = board_on((N,)).copy(tmp_path / "board")
    lwb = bundle(N1)
    rng = random.Random(SEED)
    plan = plan_delays(rng)
    download_time = sum(d for s, d in plan if s == "download") + 1.5
    server = DdiServer(sleep="00:00:10", action=Action("41", [lwb]),
                       rate=max(64 * 1024, int(lwb.stat().st_size / download_time)),
                       final_delay=FINAL_DELAY)
    store = SlotStore(board.state)

    def stage() -> str:
        try:
            return json.loads((board.state / "ddi" / "action.json").read_text()).get("stage", "idle")
        except (OSError, ValueError):
            return "idle"

    def trial() -> dict | None:
        try:
            return store.load().trial
        except SlotStateError:
            return None

    def answering() -> bool:
        """The new version answers (on trial): not the old one stopping, not nothing."""
        try:
            doc = run.client.get("/api/v1/upgrade/controller")
        except Exception:                          # not up (yet): refused, reset, timed out
            return False
        return doc["trial"] is not None and doc["running"]["version"] == N1

    def observed() -> str:
        st, tr = stage(), trial()
        if st in ("new", "downloading", "downloaded"):
            return "download"
        if st == "installing" and tr is None:
            return "install"
        if tr is not None:
            return "verdict" if answering() else "restart"
        if st == "switched":
            return "verdict"
        return "report" if st == "finished" else f"after ({st})"

    def seen() -> str:
        st, tr = stage(), trial()
        return f"{observed()} ({st}{', trial' if tr else ''})"

    with Serving(server):
        configure_ddi(board.state, server.url, TENANT, TARGET, TOKEN)   # it trusts the rig's key
        with board.running(max_starts=MAX_STARTS) as run:
            run.settled()
            t0 = time.monotonic()
            last, last_wall = t0, time.time()
            triggers = {
                "download": lambda: server.download_times and server.download_times[-1] > last,
                # the installer has begun writing its staging slot since the last kill
                "install": lambda: stage() == "installing" and trial() is None and any(
                    p.name.startswith(".new-") and p.stat().st_mtime > last_wall
                    for p in store.leftovers()),
                # switched, and the new version not answering yet
                "restart": lambda: trial() is not None and children(run.proc.pid)
                and not answering(),
                "verdict": lambda: trial() is not None and answering(),
                "report": lambda: server.closed_arrivals and server.closed_arrivals[-1] > last,
            }
            kills = []

            def reached(what) -> bool:
                run.restart()                          # systemd's part; not itself a stage
                return bool(triggers[what]())
            for planned, delay in plan:
                wait_for(lambda: reached(planned), 120,
                         f"the deployment to reach '{planned}' again (kill {len(kills) + 1}); "
                         f"stage {stage()}, log: {board.log()[-2000:]}", every=0.05)
                time.sleep(delay)
                where = seen()
                how = kill(run, rng.choice(("service", "power")))
                last, last_wall = time.monotonic(), time.time()
                kills.append((planned, where, how, round(delay, 2)))
                run.restart()
            t_kills = time.monotonic() - t0

            # Then left alone, it finishes: the server hears the end, the action is reported.
            triggers["end"] = lambda: server.closed() and stage() == "idle"
            wait_for(lambda: reached("end"), 120,
                     f"the final status; stage {stage()}, log: {board.log()[-2000:]}")
            doc = run.settled()
            t_total = time.monotonic() - t0

    by_stage = Counter(where.split()[0] for _, where, _, _ in kills)
    print(f"\nkills: {len(kills)}, by stage {dict(by_stage)}, by kind "
          f"{dict(Counter(how for *_, how, _ in kills))}; kill phase {t_kills:.1f} s, "
          f"deployment {t_total:.1f} s, test {time.monotonic() - t_setup:.1f} s; "
          f"Range requests {len(server.ranges)}; bundle {lwb.stat().st_size} bytes")
    for _, fb in server.feedback:
        print("  feedback", fb["status"]["execution"], fb["status"]["details"][:1])
    print("  ranges", server.ranges)
    for k in kills:
        print("  planned %-8s observed %-26s %-7s after %.2f s" % k)

    assert len(kills) >= 20
    assert set(by_stage) == {"download", "install", "restart", "verdict", "report"}, kills
    assert server.ranges, "no download was resumed with Range"
    # Exactly one final status, and the right one.
    (final,) = server.closed()
    assert final["result"]["finished"] == "success", final
    assert f"{N1} confirmed healthy by the boot guard" in final["details"][0]
    # Bootable and upgraded: N+1 from the other slot, confirmed, under the guard.
    assert doc["running"] == {"slot": "b", "version": N1, "guarded": True}, doc
    assert doc["last_transaction"]["outcome"] == "confirmed"
    # One install of the action, one verdict, nothing left half-written.
    journal = [(e["code"].rsplit(".", 1)[1], e["details"].get("transaction"))
               for e in board.journal() if e["details"].get("version") == N1]
    assert [code for code, _ in journal] == ["installed", "confirmed"], journal
    assert journal[0][1] == journal[1][1]
    assert store.leftovers() == []
