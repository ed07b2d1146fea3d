"""An abandoned interactive job must not jam the controller (issue 15 item 1).

A real ``ledwarden controller run`` process with simulated cards on a
pseudo-terminal; the host tool runs in-process.  A commissioning left at
"Does every cabinet show the red pattern?" can be cancelled and re-attached
from the host tool, times out to "not confirmed" when nobody answers, and
every way it ends puts the wall back to normal video.
"""

from __future__ import annotations

import io
import time

import pytest

from host.cli import main
from host.client import ApiError, ControllerClient
from hw.sim.server import Simulator
from support import controller_process

QUESTION_TIMEOUT_S = 4.0
NORMAL = 0


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    with Simulator(8, pty=True) as sim, controller_process.running(
            tmp_path_factory.mktemp("jobs"), sim.url, "installer", "--no-frames",
            "--watch-interval", "0", "--question-timeout", str(QUESTION_TIMEOUT_S)) as ctl:
        yield {"sim": sim, "url": ctl.url, "token": ctl.token, "state": ctl.state, "proc": ctl.proc}


@pytest.fixture
def host(rig, monkeypatch):
    monkeypatch.setenv("LEDWARDEN_TOKEN", rig["token"])
    return lambda *argv: main(["--controller", rig["url"], *argv])


class Terminal(io.StringIO):
    """Standard input that is a terminal, holding what the installer types."""

    def isatty(self) -> bool:
        return True


class WalkedAway(Terminal):
    """A terminal where the installer presses Ctrl-C at the prompt."""

    def readline(self, *args) -> str:
        raise KeyboardInterrupt


def wait_job(c: ControllerClient, job_id: int, state: str = "done", timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/api/v1/jobs/{job_id}")
        if job["state"] == state or (state == "done" and job["finished"]):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not reach {state}: {job}")


def waiting_commissioning(rig) -> tuple[ControllerClient, dict]:
    """An interactive commissioning showing the red pattern and asking about it."""
    c = ControllerClient(rig["url"], rig["token"])
    job = c.post("/api/v1/commission", {"unattended": False})
    waiting = wait_job(c, job["id"], "waiting")
    assert "red pattern" in waiting["question"]
    assert {k.platform.pattern for k in rig["sim"].cards} != {NORMAL}
    return c, waiting


def patterns(rig) -> set[int]:
    return {k.platform.pattern for k in rig["sim"].cards}


def test_jobs_cancel_frees_the_bus_and_restores_normal_video(rig, host, capsys):
    c, job = waiting_commissioning(rig)
    with pytest.raises(ApiError) as refused:
        c.post("/api/v1/selftest/run", {"profile": "quick"})
    assert refused.value.status == 409
    assert f"'ledwarden jobs cancel {job['id']}'" in refused.value.message
    assert f"'ledwarden jobs attach {job['id']}'" in refused.value.message

    assert host("jobs", "cancel", str(job["id"])) == 0
    assert f"job {job['id']} commission: cancelled" in capsys.readouterr().out
    assert c.get(f"/api/v1/jobs/{job['id']}")["state"] == "cancelled"
    assert patterns(rig) == {NORMAL}
    # the bus is free again, and a job that has ended cannot be cancelled twice
    run = c.post("/api/v1/selftest/run", {"profile": "quick"})
    wait_job(c, run["id"])
    assert host("jobs", "cancel", str(job["id"])) == 1
    assert "already ended (cancelled)" in capsys.readouterr().err


def test_jobs_attach_answers_the_pending_questions(rig, host, monkeypatch, capsys):
    c, job = waiting_commissioning(rig)
    monkeypatch.setattr("sys.stdin", Terminal("y\n" * 6))
    assert host("jobs", "attach", str(job["id"])) == 0
    out = capsys.readouterr().out
    assert f"job {job['id']} commission: succeeded, pass" in out
    done = c.get(f"/api/v1/jobs/{job['id']}")
    assert done["state"] == "succeeded"
    assert patterns(rig) == {NORMAL}


def test_ctrl_c_at_a_question_cancels_the_job(rig, host, monkeypatch, capsys):
    c, job = waiting_commissioning(rig)
    monkeypatch.setattr("sys.stdin", WalkedAway())
    assert host("jobs", "attach", str(job["id"])) == 130
    assert f"job {job['id']} (commission) cancelled on the controller" in capsys.readouterr().err
    assert c.get(f"/api/v1/jobs/{job['id']}")["state"] == "cancelled"
    assert patterns(rig) == {NORMAL}


def test_an_unanswered_question_times_out_as_not_confirmed(rig):
    c, job = waiting_commissioning(rig)
    done = wait_job(c, job["id"], timeout=QUESTION_TIMEOUT_S + 30)
    assert done["state"] == "failed"
    assert "counts as not confirmed" in done["error"]
    assert patterns(rig) == {NORMAL}


def test_job_commands_with_a_wrong_shape_say_what_to_type(host, capsys):
    assert host("jobs", "cancel") == 1
    assert "'ledwarden jobs cancel N'" in capsys.readouterr().err
    assert host("jobs", "stop", "3") == 1
    assert "'jobs cancel N'" in capsys.readouterr().err


def test_a_controller_stopping_during_the_patterns_restores_normal_video(rig):
    waiting_commissioning(rig)
    controller_process.stop(rig["proc"])
    assert patterns(rig) == {NORMAL}
