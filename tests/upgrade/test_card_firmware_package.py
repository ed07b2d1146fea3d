"""Card firmware packages: built and verified with the signed container, and every refusal."""

from __future__ import annotations

import hashlib
import json

import pytest

from controller.errors import ConfigError, UpgradeRejected
from controller.protocol import commands as c
from controller.upgrade import package, signing
from controller.upgrade.cards import firmware
from controller.upgrade.signing import TrustedKeys
from host.cli import main
from hw.sim.images import sim_image
from support import tar_members

IMAGE = sim_image(40_000, seed=3)


@pytest.fixture
def keys(tmp_path):
    private, _ = signing.generate(tmp_path / "keys", "centre")
    return signing.load_private(private), TrustedKeys.from_directory(tmp_path / "keys")


def build(tmp_path, keys, image=IMAGE, **kw):
    out = tmp_path / "card.lwf"
    firmware.build_firmware(out, image, hw_model=kw.pop("hw_model", 0x0A01),
                            version=kw.pop("version", "2.1.7"), private_key=keys[0], **kw)
    return out


def test_a_package_round_trips_with_what_the_card_will_check(tmp_path, keys):
    fw = firmware.open_firmware(build(tmp_path, keys, notes="fixes the fan curve"), keys[1])
    assert (fw.hw_model, fw.version, fw.image) == (0x0A01, (2, 1, 7), IMAGE)
    assert fw.sha256 == hashlib.sha256(IMAGE).digest() and fw.key_id == next(iter(keys[1].keys))
    begin = fw.begin()
    assert (begin.size, begin.hw_model, begin.chunk_size, begin.sha256) == (40_000, 0x0A01, 512,
                                                                           fw.sha256)
    assert fw.chunks() == 79 and fw.chunk(78).data == IMAGE[78 * 512:]
    assert fw.describe()["notes"] == "fixes the fan curve"


def test_unsigned_untrusted_and_tampered_packages_are_refused(tmp_path, keys):
    path = build(tmp_path, keys)
    members = tar_members.members(path)
    unsigned = tmp_path / "unsigned.lwf"
    tar_members.write(unsigned, [members[0]] + members[2:])
    with pytest.raises(UpgradeRejected) as err:
        firmware.open_firmware(unsigned, keys[1])
    assert err.value.reason == "unsigned"

    other, _ = signing.generate(tmp_path / "other", "rogue")
    with pytest.raises(UpgradeRejected) as err:
        firmware.open_firmware(path, TrustedKeys.from_directory(tmp_path / "other"))
    assert err.value.reason == "untrusted-key"

    image = bytearray(members[2][1])
    image[1234] ^= 0x40
    tampered = tmp_path / "tampered.lwf"
    tar_members.write(tampered, members[:2] + [(members[2][0], bytes(image))])
    with pytest.raises(UpgradeRejected, match="does not match its SHA-256") as err:
        firmware.open_firmware(tampered, keys[1])
    assert err.value.reason == "payload"

    manifest = json.loads(members[0][1])
    manifest["hw_model"] = 0x0B02  # retargeting a signed image at another model
    relabelled = tmp_path / "relabelled.lwf"
    tar_members.write(relabelled, [(members[0][0], package.manifest_bytes(manifest))] + members[1:])
    with pytest.raises(UpgradeRejected) as err:
        firmware.open_firmware(relabelled, keys[1])
    assert err.value.reason == "bad-signature"


def test_a_signed_manifest_that_disagrees_with_its_image_is_refused(tmp_path, keys):
    bad = {"kind": firmware.KIND, "hw_model": 0x0A01, "version": "2.0.0", "size": len(IMAGE),
           "sha256": hashlib.sha256(b"another image").hexdigest()}
    package.build(tmp_path / "bad.lwf", bad, {firmware.PAYLOAD: IMAGE}, keys[0])
    with pytest.raises(UpgradeRejected, match="inconsistent") as err:
        firmware.open_firmware(tmp_path / "bad.lwf", keys[1])
    assert err.value.reason == "payload"
    controller_bundle = tmp_path / "controller.lwb"
    package.build(controller_bundle, {"kind": "controller", "version": "1.0.0"}, {"a": b"x"}, keys[0])
    with pytest.raises(UpgradeRejected) as err:
        firmware.open_firmware(controller_bundle, keys[1])
    assert err.value.reason == "kind"


def test_build_refuses_what_no_card_could_take(tmp_path, keys):
    with pytest.raises(ConfigError, match="one bank"):
        build(tmp_path, keys, image=bytes(firmware.MAX_IMAGE + 1))
    with pytest.raises(ConfigError, match="MAJOR.MINOR.PATCH"):
        build(tmp_path, keys, version="2.0")
    with pytest.raises(ConfigError, match="patch 0..65535"):
        build(tmp_path, keys, version="1.256.0")
    assert firmware.parse_version("255.255.65535") == (255, 255, 65535)


def test_a_card_of_another_model_is_refused(tmp_path, keys):
    fw = firmware.open_firmware(build(tmp_path, keys), keys[1])
    ping = c.PingReply(0x0A02, 1, 0, 0, 42, 0, 10, 640)
    with pytest.raises(UpgradeRejected, match="card 0x07 is hw_model 0x0A02 but this firmware is "
                                              "for 0x0A01") as err:
        fw.check_card(7, ping)
    assert err.value.reason == "hw-model"
    fw.check_card(7, c.PingReply(0x0A01, 1, 0, 0, 42, 0, 10, 640))


def test_host_builds_and_verifies_a_firmware_package(tmp_path, keys, capsys):
    image = tmp_path / "card-2.3.0.bin"
    image.write_bytes(IMAGE)
    key = tmp_path / "keys" / "centre.key"
    out = tmp_path / "card-2.3.0.lwf"
    assert main(["bundle", "build-firmware", str(image), "--hw-model", "0x0A01", "--version",
                 "2.3.0", "--key", str(key), "--out", str(out), "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["sha256"] == hashlib.sha256(IMAGE).hexdigest() and built["version"] == "2.3.0"
    assert main(["bundle", "verify-firmware", str(out), "--key", str(key.with_suffix(".pub")),
                 "--json"]) == 0
    verified = json.loads(capsys.readouterr().out)
    assert (verified["hw_model"], verified["version"], verified["size"]) == (0x0A01, "2.3.0",
                                                                             len(IMAGE))
    signing.generate(tmp_path / "other", "rogue")
    assert main(["bundle", "verify-firmware", str(out), "--key",
                 str(tmp_path / "other" / "rogue.pub")]) == 1
    assert "does not trust" in capsys.readouterr().err


@pytest.mark.parametrize("mutation", list(tar_members.UNNOTICED_BY_TAR))
def test_a_firmware_package_with_any_byte_changed_or_added_is_refused(tmp_path, keys, mutation):
    path = build(tmp_path, keys)
    assert firmware.open_firmware(path, keys[1]).image == IMAGE          # untouched: accepted
    path.write_bytes(tar_members.UNNOTICED_BY_TAR[mutation](path.read_bytes()))
    with pytest.raises(UpgradeRejected) as err:
        firmware.open_firmware(path, keys[1])
    assert err.value.reason == "altered", str(err.value)
    assert "download it again" in str(err.value)


def test_a_firmware_package_cut_inside_its_first_entries_is_refused(tmp_path, keys):
    raw = build(tmp_path, keys).read_bytes()
    cut = tmp_path / "cut.lwf"
    for length in range(1, 3000, 53):
        cut.write_bytes(raw[:length])
        with pytest.raises(UpgradeRejected) as err:
            firmware.open_firmware(cut, keys[1])
        assert err.value.reason in ("truncated", "manifest"), (length, str(err.value))


@pytest.mark.parametrize("field", ["hw_model", "size"])
def test_a_boolean_is_not_a_number_even_in_a_signed_manifest(tmp_path, keys, field):
    image = b"\x01"          # a one-byte image: True == 1 would pass for its size
    manifest = {"kind": firmware.KIND, "hw_model": 1, "version": "2.0.0", "size": 1,
                "sha256": hashlib.sha256(image).hexdigest()} | {field: True}
    package.build(tmp_path / "bool.lwf", manifest, {firmware.PAYLOAD: image}, keys[0])
    with pytest.raises(UpgradeRejected, match="True"):
        firmware.open_firmware(tmp_path / "bool.lwf", keys[1])
