"""``ledwarden faults …`` in-process against a real HTTPS server carrying the fault routes."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from aiohttp import web
from support.https_server import ServerThread

from controller.faultlog import FaultLog
from controller.service import api_faults
from controller.service.apikit import SERVICE, errors_as_json
from controller.service.auth import RateLimiter, TokenStore, auth_middleware
from controller.service.tls import server_ssl_context
from host.cli import main
from host.faultscli import parse_since

T0 = 1_800_000_000.0          # 2027-01-15T08:00:00Z


class StubService:
    def __init__(self, faults: FaultLog) -> None:
        self.faults = faults


@pytest.fixture
def ctl(tmp_path, monkeypatch):
    """A controller-like HTTPS server with a seeded fault log; yields (url, faults, tokens)."""
    state = tmp_path / "state"
    faults = FaultLog(state / "faults.db")
    faults.record("bus.timeout", "warning", "card:0x03", {"tries": 3}, at=T0)
    faults.record("card.overtemp", "critical", "card:0x03/module:1", {"temp_c": 91.5}, at=T0 + 60)
    faults.record("frameloop.overrun", "info", "controller", at=T0 + 120)
    faults.record("card.offline", "error", "card:0x05", at=T0 + 180)
    faults.resolve("card.offline", "card:0x05", at=T0 + 240)
    store = TokenStore(state / "tokens.db")
    tokens = {role: store.create(f"{role}-1", role) for role in ("viewer", "installer")}
    app = web.Application(middlewares=[errors_as_json, auth_middleware(store, RateLimiter(limit=1000))])
    app[SERVICE] = StubService(faults)
    for method, path, handler in api_faults.ROUTES:
        app.router.add_route(method, path, handler)
    server = ServerThread(app, server_ssl_context(state))
    monkeypatch.setenv("LEDWARDEN_CONFIG_DIR", str(tmp_path / "config"))
    yield f"https://127.0.0.1:{server.port}", faults, tokens
    server.stop()
    faults.close()


def run(ctl, role: str, *argv: str, monkeypatch) -> int:
    url, _, tokens = ctl
    monkeypatch.setenv("LEDWARDEN_TOKEN", tokens[role])
    return main(["--controller", url, "faults", *argv])


@pytest.fixture
def faults_cmd(ctl, monkeypatch, capsys):
    capsys.readouterr()

    def call(role: str, *argv: str) -> tuple[int, str, str]:
        status = run(ctl, role, *argv, monkeypatch=monkeypatch)
        out, err = capsys.readouterr()
        return status, out, err
    return call


# ------------------------------------------------------------------ list and show

def test_list_prints_a_table_and_the_active_counts(faults_cmd):
    status, out, _ = faults_cmd("viewer", "list")
    lines = out.splitlines()
    assert status == 0
    assert lines[0].split() == ["id", "severity", "code", "source", "count", "first", "seen",
                                "last", "seen", "state"]
    assert [line.split()[2] for line in lines[2:5]] == ["frameloop.overrun", "card.overtemp",
                                                        "bus.timeout"]
    assert lines[-1] == "3 active on the controller (1 critical, 1 warning, 1 info)"


def test_list_json_and_filters_reach_the_controller(faults_cmd):
    status, out, _ = faults_cmd("viewer", "list", "--json", "--state", "all", "--severity", "error")
    assert status == 0
    assert [f["code"] for f in json.loads(out)["faults"]] == ["card.offline", "card.overtemp"]
    _, out, _ = faults_cmd("viewer", "list", "--json", "--source", "card:0x03",
                           "--since", "2027-01-15T08:01:00Z")
    assert [f["code"] for f in json.loads(out)["faults"]] == ["card.overtemp"]
    _, out, _ = faults_cmd("viewer", "list", "--state", "cleared", "--since", "2027-01-16")
    assert out.startswith("no cleared faults match")


def test_since_takes_ages_and_dates():
    now = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.timezone.utc)
    assert parse_since("24h", now) == "2026-11-21T10:00:00Z"
    assert parse_since("2w", now) == "2026-11-08T10:00:00Z"
    assert parse_since("30m", now) == "2026-11-22T09:30:00Z"
    assert parse_since("2026-11-01", now) == "2026-11-01T00:00:00Z"


def test_a_bad_since_is_refused_before_anything_is_sent(faults_cmd, capsys):
    with pytest.raises(SystemExit) as exit_:
        faults_cmd("viewer", "list", "--since", "last week")
    assert exit_.value.code == 2
    assert "or an age such as 24h" in capsys.readouterr().err


def test_show_one_fault(faults_cmd):
    status, out, _ = faults_cmd("viewer", "show", "2")
    assert status == 0
    assert out.splitlines()[0] == "fault 2: card.overtemp (critical, active)"
    assert "    temp_c: 91.5" in out and "card:0x03/module:1" in out
    _, out, _ = faults_cmd("viewer", "show", "4")
    assert "cleared     2027-01-15T08:04:00Z by auto" in out
    _, out, _ = faults_cmd("viewer", "show", "2", "--json")
    assert json.loads(out)["details"] == {"temp_c": 91.5}


def test_show_unknown_says_so(faults_cmd):
    status, _, err = faults_cmd("viewer", "show", "99")
    assert status == 1 and "no fault 99" in err and "HTTP 404" in err


# ------------------------------------------------------------------ clear

def test_clear_one_then_again(ctl, faults_cmd):
    status, out, _ = faults_cmd("installer", "clear", "1")
    assert (status, out) == (0, "cleared fault 1 (bus.timeout on card:0x03)\n")
    assert ctl[1].get(1).cleared_by == "installer-1"
    _, out, _ = faults_cmd("installer", "clear", "1")
    assert out == "fault 1 was already cleared\n"


def test_clear_by_code_and_by_source(ctl, faults_cmd):
    _, out, _ = faults_cmd("installer", "clear", "--all-of-source", "card:0x03")
    assert out == "cleared 2 faults\n"
    status, out, _ = faults_cmd("installer", "clear", "--code", "frameloop.overrun", "--json")
    assert status == 0 and json.loads(out) == {"cleared": 1} and ctl[1].active() == []


@pytest.mark.parametrize("argv,error", [
    ((), "say what to clear"),
    (("1", "--code", "x"), "either one fault by id"),
])
def test_clear_needs_one_kind_of_selector(ctl, faults_cmd, argv, error):
    status, _, err = faults_cmd("installer", "clear", *argv)
    assert status == 1 and error in err
    assert ctl[1].counts()["active"] == 3


def test_a_viewer_cannot_clear(ctl, faults_cmd):
    status, _, err = faults_cmd("viewer", "clear", "1")
    assert status == 1 and "needs the 'installer' role" in err and "HTTP 403" in err
    assert ctl[1].get(1).state == "active"


# ------------------------------------------------------------------ export

def test_export_csv_to_a_file(faults_cmd, tmp_path):
    target = tmp_path / "out" / "faults.csv"
    target.parent.mkdir()
    status, out, err = faults_cmd("viewer", "export", "-o", str(target))
    assert status == 0 and out == "" and str(target) in err
    raw = target.read_bytes()
    assert raw.count(b"\r\n") == 5 and b"\r\r\n" not in raw
    rows = list(csv.DictReader(io.StringIO(raw.decode())))
    assert len(rows) == 4 and {r["state"] for r in rows} == {"active", "cleared"}


def test_export_json_to_stdout_with_filters(faults_cmd):
    status, out, _ = faults_cmd("viewer", "export", "--format", "json", "--state", "cleared")
    assert status == 0
    assert [f["code"] for f in json.loads(out)["faults"]] == ["card.offline"]
