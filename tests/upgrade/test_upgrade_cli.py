"""The board's ``controller trust|slots`` and the service centre's ``bundle verify``, as typed."""

from __future__ import annotations

import json

import pytest

import controller
from controller.errors import ConfigError
from controller.upgrade import signing
from controller.upgrade.bundles import bundle as bundlepkg
from host.cli import main
from support.upgrade_rig import N, N1, ROOT, board_on, bundle, signing_key


def test_trust_takes_public_keys_only_and_keeps_at_least_one(tmp_path, capsys):
    state = tmp_path / "state"
    state.mkdir()                     # a read-only command never makes one (issue 15 item 14)
    private, public = signing.generate(tmp_path / "keys", "centre-2026")
    other = signing.generate(tmp_path / "keys", "centre-2027")[1]
    assert main(["controller", "trust", "list", "--state", str(state)]) == 0
    assert "trusts no key yet" in capsys.readouterr().out
    assert main(["controller", "trust", "add", str(private), "--state", str(state)]) == 1
    assert "is a private key: boards hold public keys only" in capsys.readouterr().err
    assert main(["controller", "trust", "add", str(public), "--state", str(state), "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["key_id"] == signing.key_id(signing.load_public(public))
    assert main(["controller", "trust", "add", str(public), "--state", str(state)]) == 0
    assert "already trusted" in capsys.readouterr().out
    assert main(["controller", "trust", "remove", "centre-2026", "--state", str(state)]) == 1
    assert "only trusted key" in capsys.readouterr().err
    assert main(["controller", "trust", "add", str(other), "--state", str(state)]) == 0
    assert main(["controller", "trust", "remove", added["key_id"], "--state", str(state)]) == 0
    capsys.readouterr()
    assert main(["controller", "trust", "list", "--state", str(state), "--json"]) == 0
    assert [k["name"] for k in json.loads(capsys.readouterr().out)] == ["centre-2027"]
    assert not list((state / "trusted-keys").glob("*.tmp"))


def test_bundle_verify_checks_the_signature_and_every_file(tmp_path, capsys):
    good = bundle(N)
    assert main(["bundle", "verify", str(good), "--key", str(signing_key()[1]), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] and summary["version"] == N and summary["project"].startswith(f"ledwarden-{N}-")
    stranger = signing.generate(tmp_path, "stranger")[1]
    assert main(["bundle", "verify", str(good), "--key", str(stranger)]) == 1
    assert "does not trust" in capsys.readouterr().err
    assert main(["bundle", "verify", str(good), "--key", str(signing_key()[1]),
                 "--platform", "cp311-linux-aarch64"]) == 1
    assert "not cp311-linux-aarch64" in capsys.readouterr().err


def test_slots_shows_both_slots_and_the_floor(capsys):
    board = board_on((N, N1))
    assert main(["controller", "slots", "--state", str(board.state)]) == 0
    out = capsys.readouterr().out
    assert "a     previous  1.0.0" in out and "b     current   1.1.0" in out
    assert "anti-rollback floor: 1.0.0" in out


def test_bundle_build_defaults_to_the_checkout_it_runs_from(tmp_path, monkeypatch, capsys):
    """``bundle build`` without ``--source`` builds the checkout this ledwarden runs from; a module
    move once pointed that one directory too low (issue 13), so check it, and the wheel case."""
    assert bundlepkg.default_source() == ROOT
    installed = tmp_path / "site-packages" / "controller"
    installed.mkdir(parents=True)
    (installed / "__init__.py").write_text("")
    monkeypatch.setattr(controller, "__file__", str(installed / "__init__.py"))
    with pytest.raises(ConfigError, match="installed from a wheel.*give --source DIR"):
        bundlepkg.default_source()
    key = signing.generate(tmp_path / "keys", "centre")[0]
    assert main(["bundle", "build", "--version", "9.9.9", "--key", str(key),
                 "--out", str(tmp_path / "b.lwb")]) == 1
    err = capsys.readouterr().err
    assert "installed from a wheel, so there is no source tree" in err and "Traceback" not in err
    assert not (tmp_path / "b.lwb").exists()
