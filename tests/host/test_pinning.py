"""known_controllers.json: pin on first use, refuse a change, forget on request."""

from __future__ import annotations

import argparse
import json

import pytest

from controller.errors import ConfigError, LedwardenError
from host.pinning import KnownControllers, PinMismatch, register_forget

A = "SHA256:" + "A" * 43
B = "SHA256:" + "B" * 43


@pytest.fixture
def known(tmp_path):
    return KnownControllers(tmp_path / "cfg" / "known_controllers.json")


def test_first_use_remembers_then_matches(known):
    assert known.check_or_remember("wall:8443", A) is True
    assert known.check_or_remember("wall:8443", A) is False
    assert json.loads(known.path.read_text()) == {"wall:8443": A}
    assert KnownControllers(known.path).get("wall:8443") == A  # persisted


def test_change_raises_with_both_fingerprints_and_the_way_out(known):
    known.check_or_remember("wall:8443", A)
    with pytest.raises(PinMismatch) as err:
        known.check_or_remember("wall:8443", B)
    e = err.value
    assert isinstance(e, LedwardenError)
    assert (e.hostport, e.expected, e.presented) == ("wall:8443", A, B)
    text = str(e)
    assert f"remembered: {A}" in text and f"presented:  {B}" in text
    assert "DIFFERENT certificate" in text
    assert "attack" in text and "reinstalled" in text
    assert "ledwarden controller forget wall:8443" in text
    assert known.get("wall:8443") == A  # the pin is not replaced


def test_pins_are_per_host_and_port(known):
    known.check_or_remember("wall:8443", A)
    assert known.check_or_remember("wall:9443", B) is True
    assert known.check_or_remember("10.0.0.5:8443", B) is True
    assert len(known.load()) == 3


def test_forget(known):
    known.check_or_remember("wall:8443", A)
    known.check_or_remember("other:8443", A)
    assert known.forget("wall:8443") is True
    assert known.forget("wall:8443") is False
    assert known.load() == {"other:8443": A}
    assert known.check_or_remember("wall:8443", B) is True


def test_corrupt_file_is_an_error_not_a_silent_reset(known):
    known.path.parent.mkdir(parents=True)
    known.path.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot be read"):
        known.check_or_remember("wall:8443", A)
    known.path.write_text('["a list"]')
    with pytest.raises(ConfigError, match="not a map"):
        known.check_or_remember("wall:8443", A)
    assert known.path.read_text() == '["a list"]'


def test_no_temporary_files_left(known):
    for i in range(3):
        known.check_or_remember(f"h{i}:1", A)
    assert [p.name for p in known.path.parent.iterdir()] == ["known_controllers.json"]


def test_default_location_follows_config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LEDWARDEN_CONFIG_DIR", str(tmp_path / "c"))
    assert KnownControllers().path == tmp_path / "c" / "known_controllers.json"


def forget_cli(*argv):
    parser = argparse.ArgumentParser(prog="ledwarden controller")
    register_forget(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(["forget", *argv])
    return args.func(args)


def test_forget_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEDWARDEN_CONFIG_DIR", str(tmp_path))
    KnownControllers().check_or_remember("wall-7.local:8443", A)
    assert forget_cli("Wall-7.local:8443") == 0
    assert "Forgot the certificate of wall-7.local:8443" in capsys.readouterr().out
    assert KnownControllers().load() == {}
    with pytest.raises(LedwardenError, match="no certificate is remembered"):
        forget_cli("https://wall-7.local:8443")
