"""The .swu wrap/unwrap around a signed package: a real signed card firmware goes through and
still passes its own signature check; every malformed container is refused with one sentence."""

from __future__ import annotations

import pytest

from controller.fleet.swu import (DESCRIPTION, MAGIC_CRC, SwuError, _entry, is_swu, unwrap, wrap,
                                  TRAILER)
from controller.upgrade.cards.firmware import build_firmware, open_firmware
from controller.upgrade.signing import TrustedKeys, generate, load_private
from controller.errors import UpgradeRejected


@pytest.fixture
def signed(tmp_path):
    keys = tmp_path / "trusted"
    keys.mkdir()
    priv, pub = generate(tmp_path / "keys", "centre")
    (keys / "centre.pub").write_bytes(pub.read_bytes())
    other, _ = generate(tmp_path / "keys", "stranger")
    pkg = tmp_path / "fw-2.0.0.lwpkg"
    build_firmware(pkg, b"\x5a" * 5001, hw_model=0x0101, version="2.0.0",
                   private_key=load_private(priv))
    return {"pkg": pkg, "keys": keys, "stranger": other, "tmp": tmp_path}


def test_a_wrapped_package_unwraps_byte_for_byte_and_passes_its_own_signature_check(signed):
    swu = wrap(signed["pkg"], signed["tmp"] / "fw.swu", version="2.0.0", hardware="rev-0101")
    blob = swu.read_bytes()
    assert is_swu(swu) and not is_swu(signed["pkg"])
    assert blob[110:110 + len(DESCRIPTION)] == DESCRIPTION.encode()     # sw-description first
    assert b'version = "2.0.0"' in blob and b'hardware-compatibility = [ "rev-0101" ]' in blob
    assert len(blob) % 4 == 0
    out = unwrap(swu, signed["tmp"] / "inner")
    assert out.read_bytes() == signed["pkg"].read_bytes()
    open_firmware(out, TrustedKeys.from_directory(signed["keys"]))


def test_the_container_adds_no_trust_an_untrusted_package_still_fails_after_unwrap(signed):
    bad = signed["tmp"] / "bad.lwpkg"
    build_firmware(bad, b"\x5a" * 100, hw_model=0x0101, version="2.0.0",
                   private_key=load_private(signed["stranger"]))
    out = unwrap(wrap(bad, signed["tmp"] / "bad.swu", version="2.0.0", hardware="x"),
                 signed["tmp"] / "inner")
    with pytest.raises(UpgradeRejected):
        open_firmware(out, TrustedKeys.from_directory(signed["keys"]))


def _swu(tmp, *entries, tail=b""):
    path = tmp / "x.swu"
    path.write_bytes(b"".join(entries) + _entry(TRAILER, b"", 0, mode=0) + tail)
    return path


def _raw(tmp, data):
    path = tmp / "x.swu"
    path.write_bytes(data)
    return path


DESC = _entry(DESCRIPTION, b'software = { version = "1.0"; };', 1)


@pytest.mark.parametrize("build, words", [
    (lambda t: _swu(t, _entry("fw.lwpkg", b"x", 2), DESC), "does not start with sw-description"),
    (lambda t: _swu(t, DESC), "holds 0 files"),
    (lambda t: _swu(t, DESC, _entry("a.lwpkg", b"x", 2), _entry("b.lwpkg", b"y", 3)), "holds 2 files"),
    (lambda t: _swu(t, DESC, _entry("../etc/passwd", b"x", 2)), "not a plain file name"),
    (lambda t: _swu(t, DESC, _entry("link", b"/etc", 2, mode=0o120777)), "not a regular file"),
    (lambda t: _swu(t, DESC, _entry("fw.lwpkg", b"x", 2), tail=b"hidden"), "after its trailer"),
    (lambda t: _raw(t, DESC + _entry("fw.lwpkg", b"x" * 400, 2)[:300]),
     "claims more bytes"),
    (lambda t: _raw(t, DESC + _entry("fw.lwpkg", b"x", 2)),
     "ends inside an entry header"),
    (lambda t: _raw(t, b"ustar\0" + b"\0" * 200), "not a cpio"),
    (lambda t: _raw(t, DESC[:6] + b"ZZZZZZZZ" + DESC[14:]),
     "non-hex"),
    (lambda t: _raw(t, DESC + b"070707" + b"0" * 200),
     "not a cpio 'newc' header"),
    (lambda t: _swu(t, DESC, MAGIC_CRC + _entry("fw.lwpkg", b"abc", 2)[6:]), "fails its cpio checksum"),
])
def test_malformed_containers_are_refused_with_one_sentence_and_nothing_written(tmp_path, build,
                                                                                  words):
    path = build(tmp_path)
    dest = tmp_path / "inner"
    with pytest.raises(SwuError) as err:
        unwrap(path, dest)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert not dest.exists()


def test_names_that_cannot_go_into_sw_description_are_refused(tmp_path):
    pkg = tmp_path / "fw.lwpkg"
    pkg.write_bytes(b"x")
    with pytest.raises(SwuError, match="cannot go into sw-description"):
        wrap(pkg, tmp_path / "o.swu", version='1"; evil', hardware="x")
