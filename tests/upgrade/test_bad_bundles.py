"""Every bad bundle the issue lists is refused with a clear reason, and nothing on the board changes.

Each bad bundle is made from a real one (1.0.0) the way it would go wrong in
the field — unsigned, signed by a stranger, a manifest or a wheel altered
after signing, cut short, built for another board, older than the board's
floor, entries that would escape the slot, too big — and installed through
the real installer on a board running 1.1.0 from slot B with 1.0.0 in slot
A.  After each: the same reason tag and a sentence that says what to do,
``state.json`` and both slots byte for byte and inode for inode as before,
no staging left behind, and a ``rejected`` line in the journal.  Two go
through the API and the host command as well, with the controller running.
"""

from __future__ import annotations

import functools
import json
import os
import tarfile
from pathlib import Path

import pytest

from controller.errors import UpgradeRejected
from controller.upgrade import package, signing
from controller.upgrade.bundles.installer import Installer
from host.cli import main
from support import tar_members
from support.upgrade_rig import N, N1, board_on, bundle, workdir

pytestmark = pytest.mark.timeout(600)


def _resigned(members, key, **changes):
    """The bundle with manifest fields changed and signed again (by ``key``)."""
    manifest = json.loads(members[0][1]) | changes
    body = package.manifest_bytes(manifest)
    return [(package.MANIFEST, body), (package.SIGNATURE, signing.sign(body, key))] + members[2:]


def _trusted_key():
    return signing.load_private(workdir() / "keys" / "centre.key")


@functools.cache
def _rogue_key():
    return signing.load_private(signing.generate(workdir() / "rogue", "rogue")[0])


def _escaping(members, how: str):
    """A signed bundle whose first wheel arrives as an entry that could leave the slot."""
    first_info, first_data = members[2]
    info = tarfile.TarInfo({"dotdot": f"../{first_info.name}", "absolute": f"/tmp/{first_info.name}",
                            "symlink": first_info.name}[how])
    if how == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return members[:2] + [(info, first_data)] + members[3:]


BAD = {
    "unsigned": lambda m: [m[0]] + m[2:],
    "untrusted-key": lambda m: _resigned(m, _rogue_key()),
    "manifest-tampered": lambda m: [(m[0][0], m[0][1].replace(b'"1.0.0"', b'"9.9.9"'))] + m[1:],
    "payload-tampered": lambda m: m[:4] + [(m[4][0], m[4][1][:1000] + bytes([m[4][1][1000] ^ 1])
                                            + m[4][1][1001:])] + m[5:],
    "wrong-platform": lambda m: _resigned(m, _trusted_key(), platform="cp311-linux-aarch64"),
    "downgrade": lambda m: _resigned(m, _trusted_key(), version="0.9.0"),
    "min-version": lambda m: _resigned(m, _trusted_key(), min_version="1.2.0"),
    "dotdot": lambda m: _escaping(m, "dotdot"),
    "absolute": lambda m: _escaping(m, "absolute"),
    "symlink": lambda m: _escaping(m, "symlink"),
    "nested-signature": lambda m: [m[0], (m[1][0], b"[" * 2000 + b"]" * 2000)] + m[2:],
}
#: Changes to the file's bytes that leave every entry as it was (issue 15, item 16).
BYTES = {**tar_members.UNNOTICED_BY_TAR,
         "cut-in-manifest": lambda data: data[:700],
         "truncated": lambda data: data[: len(data) * 2 // 3]}
REASON = {"unsigned": "unsigned", "untrusted-key": "untrusted-key",
          "manifest-tampered": "bad-signature", "payload-tampered": "payload",
          "wrong-platform": "platform", "downgrade": "downgrade", "min-version": "min-version",
          "dotdot": "unsafe-path", "absolute": "unsafe-path", "symlink": "unsafe-path",
          "truncated": "truncated", "oversized": "oversized", "nested-signature": "unsigned",
          "cut-in-manifest": "truncated", **{name: "altered" for name in tar_members.UNNOTICED_BY_TAR}}
SAYS = {"unsigned": "unsigned", "untrusted-key": "does not trust", "manifest-tampered": "altered",
        "payload-tampered": "altered or damaged", "wrong-platform": "this board is",
        "downgrade": "below this board's floor 1.0.0", "min-version": "may only replace 1.2.0",
        "dotdot": "escape", "absolute": "escape", "symlink": "links", "truncated": "truncated",
        "oversized": "accepts at most", "nested-signature": "not readable",
        "cut-in-manifest": "truncated",
        **{name: "it was altered or is not a ledwarden package" for name in tar_members.UNNOTICED_BY_TAR}}


def make_bad(name: str, dest: Path) -> Path:
    good = bundle(N)
    path = dest / f"{name}.lwb"
    if name in BYTES:
        path.write_bytes(BYTES[name](good.read_bytes()))
    elif name == "oversized":
        path.write_bytes(good.read_bytes())
        os.truncate(path, 600 * 2**20)     # sparse: past the board's 512 MiB limit, no disk used
    else:
        tar_members.write(path, BAD[name](tar_members.members(good)))
    return path


def snapshot(state: Path) -> dict:
    """state.json's bytes and every file of both slots with its size and inode."""
    out = {"state.json": (state / "slots" / "state.json").read_bytes()}
    for dirpath, _dirs, files in os.walk(state / "slots"):
        for f in files:
            st = os.lstat(os.path.join(dirpath, f))
            out[os.path.relpath(os.path.join(dirpath, f), state)] = (st.st_size, st.st_ino)
    return out


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    return board_on((N, N1)).copy(tmp_path_factory.mktemp("bad") / "board")


@pytest.mark.parametrize("name", list(REASON))
def test_a_bad_bundle_is_refused_and_nothing_changes(board, tmp_path, name):
    bad = make_bad(name, tmp_path)
    before = snapshot(board.state)
    journal = len(board.journal())
    with pytest.raises(UpgradeRejected) as err:
        Installer(board.state, running_version=N1).install(bad)
    assert err.value.reason == REASON[name], str(err.value)
    assert SAYS[name] in str(err.value)
    assert snapshot(board.state) == before
    new = board.journal()[journal:]
    assert [(e["code"], e["details"]["reason"]) for e in new] == [
        ("upgrade.controller.rejected", REASON[name])]


def test_the_command_line_says_why_and_fails(board, tmp_path):
    from support.upgrade_rig import ledwarden
    bad = make_bad("wrong-platform", tmp_path)
    before = snapshot(board.state)
    done = ledwarden("controller", "install", str(bad), "--state", str(board.state), check=False)
    assert done.returncode == 1
    assert "built for cp311-linux-aarch64" in done.stderr and "bundle build --platform" in done.stderr
    assert snapshot(board.state) == before


def test_through_the_api_the_running_controller_refuses_and_keeps_running(board, tmp_path,
                                                                          capsys, monkeypatch):
    monkeypatch.setenv("LEDWARDEN_CONFIG_DIR", str(tmp_path / "host-config"))
    monkeypatch.setenv("LEDWARDEN_TOKEN", board.token)
    with board.running() as run:
        status = run.settled()
        before = snapshot(board.state)
        url = run.client.url
        for name in ("payload-tampered", "untrusted-key", "nested-signature", "appended-tar"):
            bad = make_bad(name, tmp_path)
            journal = len(board.journal())
            assert main(["--controller", url, "upgrade", "controller", str(bad)]) == 1
            err = capsys.readouterr().err
            assert f"the bundle was refused ({REASON[name]})" in err, err
            assert f"keeps running {N1}" in err
            assert [(e["code"], e["details"]["reason"]) for e in board.journal()[journal:]] == [
                ("upgrade.controller.rejected", REASON[name])]
            after = run.client.get("/api/v1/upgrade/controller")
            assert after["running"] == status["running"] and after["slots"] == status["slots"]
            assert snapshot(board.state) == before
            assert run.proc.poll() is None          # no restart
        assert not list((board.state / "uploads").iterdir())   # refused uploads are not kept


def test_a_bundle_whose_manifest_nests_deeply_is_refused_by_the_host_in_one_sentence(tmp_path, capsys,
                                                                                     monkeypatch):
    """The host reads the manifest before it uploads; 2000 nested brackets are a refusal, not a
    RecursionError, and nothing is sent."""
    monkeypatch.setenv("LEDWARDEN_CONFIG_DIR", str(tmp_path / "host-config"))
    monkeypatch.setenv("LEDWARDEN_TOKEN", "lw_unused")
    members = tar_members.members(bundle(N))
    bad = tar_members.write(tmp_path / "nested.lwb", [(members[0][0], b"[" * 2000 + b"]" * 2000)]
                            + members[1:])
    assert main(["--controller", "https://127.0.0.1:9", "upgrade", "controller", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert "nests 2000 levels deep" in err and "ledwarden bundle build" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
