"""``ledwarden correction`` and ``ledwarden calibration``: what the command line refuses
itself, before anything is sent, in one sentence and with a non-zero status."""

from __future__ import annotations

import pytest

from host.cli import main

URL = "https://127.0.0.1:9"      # nothing listens: a refusal here must come before any request


@pytest.fixture(autouse=True)
def token(monkeypatch, tmp_path):
    monkeypatch.setenv("LEDWARDEN_TOKEN", "lw_test")
    monkeypatch.setenv("LEDWARDEN_CONFIG_DIR", str(tmp_path))


@pytest.mark.parametrize("args, words", [
    (["correction", "set", "--white", "1,2,1"], "give three factors R,G,B, each above 0"),
    (["correction", "set", "--white", "1,0.5"], "give three factors"),
    (["correction", "set", "--curve", "srgb"], "invalid choice: 'srgb'"),
    (["calibration", "import", "x.csv", "--cabinet", "0"], "a cabinet is its card's address, 1..240"),
    (["calibration", "activate", "--cabinet", "3"], "--version"),
])
def test_usage_errors(args, words, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--controller", URL, *args])
    assert exit_.value.code == 2 and words in capsys.readouterr().err


@pytest.mark.parametrize("args, words", [
    (["correction", "set"], "say what to change: --gamma G, --curve power|cie1931 or --white R,G,B"),
    (["calibration", "import", "cab.png", "--cabinet", "3"], "cab.png: a calibration file is .csv or .npz"),
])
def test_refused_before_sending(args, words, capsys):
    assert main(["--controller", URL, *args]) == 1
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err
