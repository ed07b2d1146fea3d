"""The issue's "done when", end to end: a guarded controller goes N → N+1, then a broken N+2
is rolled back automatically — through the host tool, over HTTPS, with real slots and cards.

The board starts on N (1.0.0) in slot A, confirmed.  ``ledwarden upgrade
controller`` uploads N+1 (resuming an upload a previous attempt left
half-done), the install job writes slot B and switches, the service
restarts itself, the guard starts B on trial, the quick self-test passes,
the guard keeps B and raises the floor.  Then N+2 — a build whose health
check always fails — goes into slot A, starts on trial, fails three times,
and the guard puts B back; the command says why and exits 1.
"""

from __future__ import annotations

import json

import pytest

from host.cli import main
from host.demo_upgrade import BROKEN
from host.upload import CHUNK, sha256_of
from support.upgrade_rig import N, N1, N2, board_on, bundle

pytestmark = pytest.mark.timeout(600)


def test_n_to_n_plus_1_confirmed_then_a_broken_n_plus_2_rolled_back(tmp_path, capsys, monkeypatch):
    board = board_on((N,)).copy(tmp_path / "board")
    good, broken = bundle(N1), bundle(N2)
    monkeypatch.setenv("LEDWARDEN_CONFIG_DIR", str(tmp_path / "host-config"))
    monkeypatch.setenv("LEDWARDEN_TOKEN", board.token)
    with board.running() as run:
        assert run.settled()["running"] == {"slot": "a", "version": N, "guarded": True}
        url = run.client.url

        # An earlier attempt got three chunks across before the link dropped.
        upload_id = sha256_of(good)
        data = good.read_bytes()
        for offset in range(0, 3 * CHUNK, CHUNK):
            run.client.put_bytes(f"/api/v1/uploads/{upload_id}?offset={offset}",
                                 data[offset:offset + CHUNK], {})

        assert main(["--controller", url, "upgrade", "controller", str(good)]) == 0
        out, err = capsys.readouterr()
        assert f"already holds {3 * CHUNK / 2**20:.1f} MiB of it: resuming there" in err
        assert f"upgraded {N} → {N1}, confirmed healthy" in out
        doc = run.client.get("/api/v1/upgrade/controller")
        assert doc["running"] == {"slot": "b", "version": N1, "guarded": True}
        assert doc["confirmation"]["state"] == "confirmed"
        assert (doc["slots"]["a"]["role"], doc["slots"]["a"]["version"]) == ("previous", N)
        assert (doc["slots"]["b"]["role"], doc["slots"]["b"]["confirmed"]) == ("current", True)
        assert doc["floor"] == N            # N+1 may replace N or newer: N is the floor now

        assert main(["--controller", url, "upgrade", "controller", str(broken), "--json"]) == 1
        result = json.loads(capsys.readouterr().out)
        assert result["outcome"] == "rolled-back" and result["running"] == N1
        assert result["reason"] == f"{N2} failed its health check: {BROKEN}"
        doc = result["status"]
        assert doc["running"] == {"slot": "b", "version": N1, "guarded": True}
        assert doc["trial"] is None
        assert (doc["slots"]["a"]["role"], doc["slots"]["a"]["version"]) == ("rolled-back", N2)
        assert doc["slots"]["a"]["health"]["healthy"] is False
        assert (doc["slots"]["b"]["role"], doc["slots"]["b"]["version"]) == ("current", N1)
        assert doc["floor"] == N            # a version that never confirmed raises nothing

        # One transaction id per install, through every record of it.
        journal = board.journal()[-4:]
        assert [e["code"].rsplit(".", 1)[1] for e in journal] == [
            "installed", "confirmed", "installed", "rolled-back"]
        assert journal[0]["details"]["transaction"] == journal[1]["details"]["transaction"]
        assert journal[2]["details"]["transaction"] == journal[3]["details"]["transaction"] \
            == result["transaction"]
        assert journal[2]["details"]["reused_dependencies"] is True
        # The restored version forwarded the journal into the fault log.
        faults = {f["code"]: f for f in run.client.get("/api/v1/faults")["faults"]}
        rolled = faults["upgrade.controller.rolled-back"]
        assert rolled["severity"] == "error" and rolled["details"]["transaction"] == result["transaction"]

        # The human-readable form of the same outcome.
        assert main(["--controller", url, "upgrade", "controller"]) == 0
        shown = capsys.readouterr().out
        assert f"running {N1} from slot b" in shown and "rolled-back" in shown
    assert run.proc.returncode == 0
