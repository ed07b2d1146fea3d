"""The signed package container: what it accepts, and every way it refuses."""

from __future__ import annotations

import json
import os
import tarfile

import pytest

from controller.errors import UpgradeRejected
from controller.upgrade import package, signing
from controller.upgrade.signing import TrustedKeys
from host.cli import main
from support import tar_members

PAYLOAD = {"a.whl": b"A" * 5000, "b.bin": os.urandom(70000)}


@pytest.fixture
def keys(tmp_path):
    private_path, public_path = signing.generate(tmp_path / "keys", "centre")
    return signing.load_private(private_path), TrustedKeys.from_directory(tmp_path / "keys")


def build(tmp_path, keys, manifest=None, payload=None):
    out = tmp_path / "p.lwb"
    package.build(out, manifest or {"kind": "controller", "version": "1.2.3"},
                  payload if payload is not None else PAYLOAD, keys[0])
    return out


def test_a_signed_package_round_trips_and_every_file_is_verified(tmp_path, keys):
    path = build(tmp_path, keys)
    with package.open_package(path, keys[1], kind="controller") as pkg:
        assert pkg.manifest["version"] == "1.2.3"
        assert pkg.key_id == next(iter(keys[1].keys))
        received = {entry["name"]: reader.read() for entry, reader in pkg.files()}
    assert received == PAYLOAD
    with package.open_package(path, keys[1], kind="controller") as pkg:
        assert pkg.read("b.bin") == PAYLOAD["b.bin"]


def test_refusals_name_the_reason(tmp_path, keys):
    path = build(tmp_path, keys)
    members = tar_members.members(path)

    def refused(mutate, reason, trusted=keys[1], kind="controller"):
        bad = tmp_path / f"bad-{reason}.lwb"
        bad.write_bytes(path.read_bytes())
        mutate(bad)
        with pytest.raises(UpgradeRejected) as err:
            with package.open_package(bad, trusted, kind=kind) as pkg:
                pkg.verify_all()
        assert err.value.reason == reason, str(err.value)
        return str(err.value)

    refused(lambda p: tar_members.write(p, [members[0]] + members[2:]), "unsigned")
    other = signing.load_private(signing.generate(tmp_path / "other", "rogue")[0])
    assert "does not trust" in refused(lambda p: tar_members.write(p, [members[0], (members[1][0], signing.sign(members[0][1], other))] + members[2:]), "untrusted-key")
    tampered = members[0][1].replace(b"1.2.3", b"9.9.9")
    refused(lambda p: tar_members.write(p, [(members[0][0], tampered)] + members[1:]), "bad-signature")
    refused(lambda p: tar_members.write(p, members[:3] + [(members[3][0], b"X" + members[3][1][1:])]), "payload")
    refused(lambda p: p.write_bytes(p.read_bytes()[:40000]), "truncated")
    refused(lambda p: None, "kind", kind="card-firmware")
    refused(lambda p: tar_members.write(p, members + [(tarfile.TarInfo("extra.txt"), b"x")]), "payload")


@pytest.mark.parametrize("name,kind", [("../evil", tarfile.REGTYPE), ("/etc/passwd", tarfile.REGTYPE),
                                       ("a.whl", tarfile.SYMTYPE), ("a.whl", tarfile.LNKTYPE)])
def test_entries_that_could_escape_are_refused(tmp_path, keys, name, kind):
    priv = keys[0]
    files = [{"name": "a.whl", "size": 1, "sha256": "0" * 64}]
    body = package.manifest_bytes({"format": package.FORMAT, "kind": "controller", "files": files})
    path = tmp_path / "escape.lwb"
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = "/etc/passwd" if kind != tarfile.REGTYPE else ""
    tar_members.write(path, [(tarfile.TarInfo(package.MANIFEST), body),
                    (tarfile.TarInfo(package.SIGNATURE), signing.sign(body, priv)), (info, b"x")])
    with pytest.raises(UpgradeRejected) as err:
        with package.open_package(path, keys[1], kind="controller") as pkg:
            pkg.verify_all()
    assert err.value.reason == "unsafe-path"


def test_a_manifest_naming_a_path_is_refused_even_when_signed(tmp_path, keys):
    body = package.manifest_bytes({"format": package.FORMAT, "kind": "controller",
                                   "files": [{"name": "../x", "size": 1, "sha256": "0" * 64}]})
    path = tmp_path / "m.lwb"
    tar_members.write(path, [(tarfile.TarInfo(package.MANIFEST), body),
                    (tarfile.TarInfo(package.SIGNATURE), signing.sign(body, keys[0]))])
    with pytest.raises(UpgradeRejected, match="outside the install directory"):
        package.open_package(path, keys[1], kind="controller")


def test_oversized_is_refused_before_reading(tmp_path, keys):
    path = build(tmp_path, keys)
    with pytest.raises(UpgradeRejected) as err:
        package.open_package(path, keys[1], kind="controller", max_size=1000)
    assert err.value.reason == "oversized"


def test_keys_generate_refuses_to_overwrite_and_keeps_the_private_key_private(tmp_path, capsys):
    assert main(["keys", "generate", "--name", "c1", "--dir", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (os.stat(out["private"]).st_mode & 0o777) == 0o600
    assert main(["keys", "show", out["private"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["key_id"] == out["key_id"]
    assert main(["keys", "generate", "--name", "c1", "--dir", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_peek_reads_the_manifest_without_trusting_it_and_refuses_what_has_none(tmp_path, keys):
    path = build(tmp_path, keys)
    assert package.peek_manifest(path)["version"] == "1.2.3"
    junk = tmp_path / "junk.lwb"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(UpgradeRejected) as err:
        package.peek_manifest(junk)
    assert err.value.reason == "manifest"


# ------------------------------------------------------------------ every byte accounted for

def _verify(path, keys, kind="controller"):
    with package.open_package(path, keys[1], kind=kind) as pkg:
        return pkg.verify_all()


@pytest.mark.parametrize("mutation", list(tar_members.UNNOTICED_BY_TAR))
def test_a_changed_byte_anywhere_or_anything_appended_is_refused(tmp_path, keys, mutation):
    """Padding, end blocks, a checksum's terminator, garbage or a second archive after the end:
    tar readers skip all of them, yet they change the file's SHA-256, which is what a service
    centre publishes, so the package is refused as altered."""
    path = build(tmp_path, keys)
    assert _verify(path, keys) == sum(len(v) for v in PAYLOAD.values())      # untouched: accepted
    path.write_bytes(tar_members.UNNOTICED_BY_TAR[mutation](path.read_bytes()))
    with pytest.raises(UpgradeRejected) as err:
        _verify(path, keys)
    assert err.value.reason == "altered", str(err.value)
    assert "altered or is not a ledwarden package; download it again" in str(err.value)
    if mutation.startswith("appended"):
        assert "bytes after its end" in str(err.value)


def test_a_package_cut_anywhere_is_refused_with_a_reason(tmp_path, keys):
    """Every cut inside the first entries and at every block boundary after them: a refusal that
    says so, never tarfile's ReadError."""
    raw = build(tmp_path, keys).read_bytes()
    cut = tmp_path / "cut.lwb"
    for length in [*range(1, 2600, 37), *range(512, len(raw), 512)]:
        cut.write_bytes(raw[:length])
        with pytest.raises(UpgradeRejected) as err:
            _verify(cut, keys)
        assert err.value.reason in ("truncated", "manifest"), (length, str(err.value))
        assert "truncated" in str(err.value) or "not a ledwarden package" in str(err.value)


def test_the_writer_writes_what_the_reader_accepts_and_tar_tools_read(tmp_path, keys):
    long_name = "x" * 150 + ".whl"          # past ustar's 100 bytes: a pax path record first
    path = build(tmp_path, keys, payload={long_name: b"L" * 700, "b.bin": b""})
    assert _verify(path, keys) == 700
    assert [m.name for m, _ in tar_members.members(path)][2:] == [long_name, "b.bin"]
    assert path.stat().st_size % tarfile.RECORDSIZE == 0


def test_the_header_bytes_are_pinned():
    """What :func:`package.header` writes is the package format: if a Python's tarfile ever
    wrote it differently, packages built there would be refused by boards, so pin the bytes."""
    import hashlib
    assert hashlib.sha256(package.header("manifest.json", 1234)).hexdigest()[:16] == "ea206311d066f39c"
    assert len(package.header("x" * 150, 1)) == 3 * 512


@pytest.mark.parametrize("part", ["signature", "manifest"])
def test_deeply_nested_json_is_refused_without_recursing(tmp_path, keys, part):
    path = build(tmp_path, keys)
    members = tar_members.members(path)
    nested = b"[" * 2000 + b"]" * 2000
    index = 1 if part == "signature" else 0
    members[index] = (members[index][0], nested)
    tar_members.write(path, members)
    with pytest.raises(UpgradeRejected) as err:
        _verify(path, keys)
    assert err.value.reason == ("unsigned" if part == "signature" else "bad-signature"), str(err.value)
    if part == "manifest":
        with pytest.raises(UpgradeRejected, match="nests 2000 levels deep"):
            package.peek_manifest(path)
