"""``ledwarden controller ddi set|show|off``, run as a person runs it: the token never on the
command line, bad input refused in one sentence with exit 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def ledwarden(*argv: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "host.cli", *argv], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_set_show_off(tmp_path):
    state = ["--state", str(tmp_path)]
    done = ledwarden("controller", "ddi", "show", "--json", *state)
    assert json.loads(done.stdout)["enabled"] is False
    done = ledwarden("controller", "ddi", "set", "--url", "https://hawkbit.example:8443",
                     "--controller-id", "hall-a", "--token-file", "-", *state,
                     stdin="0123456789abcdef0123456789abcdef\n")
    assert done.returncode == 0, done.stderr
    assert "0123456789abcdef" not in done.stdout
    assert (tmp_path / "ddi-token").stat().st_mode & 0o777 == 0o600
    shown = json.loads(ledwarden("controller", "ddi", "show", "--json", *state).stdout)
    assert shown == {"enabled": True, "url": "https://hawkbit.example:8443", "tenant": "DEFAULT",
                     "controller_id": "hall-a", "poll_s": 300, "token": "stored"}
    # a second set changes one setting and keeps the rest and the token
    assert ledwarden("controller", "ddi", "set", "--tenant", "rental", *state).returncode == 0
    assert json.loads(ledwarden("controller", "ddi", "show", "--json", *state).stdout)["tenant"] == "rental"
    assert ledwarden("controller", "ddi", "off", *state).returncode == 0
    assert not (tmp_path / "ddi-token").exists() and not (tmp_path / "ddi.toml").exists()


def test_bad_input_is_one_sentence_and_exit_1(tmp_path):
    state = ["--state", str(tmp_path)]
    for argv, stdin, words in (
            (["--url", "ftp://x", "--controller-id", "a", "--token-file", "-"], "t\n", "not an http"),
            (["--url", "https://x", "--controller-id", "a"], "", "give the target token once"),
            (["--url", "https://x", "--controller-id", "a", "--token-file", "-"], "two words\n",
             "one line"),
            (["--url", "https://x", "--controller-id", "a b", "--token-file", "-"], "t\n",
             "controller id"),
            (["--url", "https://x", "--controller-id", "a", "--token-file",
              str(tmp_path / "missing")], "", "cannot read the target token")):
        done = ledwarden("controller", "ddi", "set", *argv, *state, stdin=stdin)
        assert done.returncode == 1 and words in done.stderr, (argv, done.stderr)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ddi.toml").exists()
