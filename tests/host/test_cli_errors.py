"""Every way a command can end is an exit status and at most one line, never a traceback
(issue 15 items 10 and 14).

The commands are found by walking the real argparse tree, so a command added later is covered
without anyone remembering to list it here.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from controller.service.auth import TokenStore
from controller.upgrade.bundles.slots import SlotStore
from host.cli import EXIT_BROKEN_PIPE, EXIT_BUG, EXIT_INTERRUPTED, build_parser, main
from hw.sim.server import Simulator
from support import controller_process

ROOT = Path(__file__).resolve().parents[2]
SCREEN = controller_process.SCREEN


def leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every runnable command line prefix: ('status',), ('controller', 'token', 'list'), …"""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path
        return
    for name, child in subs[0].choices.items():
        yield from leaf_commands(child, path + (name,))


COMMANDS = list(leaf_commands(build_parser()))


def run_with_closed_stdout(argv: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    """``ledwarden ARGV | head -0``: the reader is gone before the command writes a byte."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "host.cli", *argv], cwd=ROOT, stdout=write,
                                stderr=subprocess.PIPE, text=True, env=env)
    finally:
        os.close(write)
    _, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(argv, proc.returncode, "", err)


def assert_quiet(done: subprocess.CompletedProcess, statuses=(0, EXIT_BROKEN_PIPE)) -> None:
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert done.returncode in statuses, (done.args, done.returncode, done.stderr)


def test_the_walk_finds_the_commands():
    assert ("status",) in COMMANDS and ("controller", "token", "list") in COMMANDS
    assert len(COMMANDS) >= 40


class ClosedStdout:
    """What ``sys.stdout`` is after ``| head -1`` has read its line: every write fails."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    def isatty(self) -> bool:
        return False


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_with_a_closed_stdout(path, capsys, monkeypatch):
    """``ledwarden COMMAND --help | head -1`` for every command the parser has."""
    monkeypatch.setattr(sys, "stdout", ClosedStdout())
    try:
        status = main([*path, "--help"])
    except SystemExit as exc:       # argparse's own exit after --help keeps its status
        status = exc.code
    assert status in (0, EXIT_BROKEN_PIPE)
    assert capsys.readouterr().err == ""


def test_output_commands_end_quietly_when_the_reader_is_gone(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    for n in range(200):                      # more than a pipe buffer of table
        TokenStore(state / "tokens.db").create(f"engineer-{n}", "viewer")
    for argv in (["controller", "token", "list"], ["controller", "token", "list", "--json"],
                 ["controller", "slots"], ["controller", "trust", "list"]):
        done = run_with_closed_stdout([*argv, "--state", str(state)])
        assert_quiet(done, statuses=(EXIT_BROKEN_PIPE,))
        assert done.stderr == ""


def test_status_piped_into_head_against_a_real_controller(tmp_path):
    """The issue's own case: ``ledwarden … status | head -1`` gave a BrokenPipeError."""
    state = tmp_path / "state"
    state.mkdir()
    token = TokenStore(state / "tokens.db").create("viewer-1", "viewer")
    env = os.environ | {"LEDWARDEN_TOKEN": token, "LEDWARDEN_CONFIG_DIR": str(tmp_path / "host")}
    with Simulator(8, pty=True) as sim:
        proc, url = controller_process.start(state, sim.url, "--no-frames", "--watch-interval", "0")
        try:
            for argv in (["status"], ["status", "--json"], ["cards"], ["jobs"], ["faults", "list"],
                         ["selftest", "list"], ["selftest", "history"]):
                done = run_with_closed_stdout(["--controller", url, *argv], env=env)
                assert_quiet(done, statuses=(EXIT_BROKEN_PIPE,))
                assert "Traceback" not in done.stderr
        finally:
            controller_process.stop(proc)


def test_a_second_controller_on_a_port_in_use_says_so(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status = main(["controller", "run", "--screen", str(SCREEN), "--bus", "loop://",
                       "--no-frames", "--watch-interval", "0", "--schedule", "off",
                       "--listen", f"127.0.0.1:{port}", "--state", str(tmp_path / "state")])
    err = capsys.readouterr().err
    assert status == 1
    assert err == (f"ledwarden: error: cannot listen on 127.0.0.1:{port}: Address already in use; "
                   f"is another controller running there? Stop it, or give --listen another port\n")


def test_a_state_directory_that_cannot_be_made_says_so(tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    state = tmp_path / "a-file" / "state"
    status = main(["controller", "run", "--screen", str(SCREEN), "--bus", "loop://",
                   "--listen", "127.0.0.1:0", "--state", str(state)])
    assert status == 1
    assert capsys.readouterr().err == (
        f"ledwarden: error: cannot create the state directory {state}: Not a directory; give "
        f"--state a directory this user may create\n")


@pytest.mark.parametrize("content, says", [
    ("utf-16", "the screen file is not UTF-8 text (it looks like UTF-16; save it as UTF-8)"),
    ("binary", "the screen file is not UTF-8 text (save it as UTF-8 text)"),
])
def test_a_screen_file_that_is_not_utf8_says_so(tmp_path, capsys, content, says):
    screen = tmp_path / "screen.toml"
    text = SCREEN.read_text(encoding="utf-8")
    screen.write_bytes(text.encode("utf-16") if content == "utf-16" else bytes(range(128, 256)))
    status = main(["controller", "run", "--screen", str(screen), "--bus", "loop://",
                   "--listen", "127.0.0.1:0", "--state", str(tmp_path / "state")])
    assert status == 1
    assert capsys.readouterr().err == f"ledwarden: error: {screen}: {says}\n"


def test_an_unexpected_error_is_one_line_that_asks_for_a_report(tmp_path, capsys, monkeypatch):
    (tmp_path / "state").mkdir()

    def broken(self):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(SlotStore, "describe", broken)
    argv = ["controller", "slots", "--state", str(tmp_path / "state")]
    assert main(argv) == EXIT_BUG
    err = capsys.readouterr().err
    assert err == ("ledwarden: internal error: ZeroDivisionError: division by zero; this is a bug; "
                   "please report it with the output of the same command run with --debug\n")
    assert main(["--debug", *argv]) == EXIT_BUG
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "ZeroDivisionError" in err


def test_os_errors_and_interrupts_are_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "state").mkdir()
    argv = ["controller", "slots", "--state", str(tmp_path / "state")]

    def denied(self):
        raise PermissionError(13, "Permission denied", "/var/lib/ledwarden/slots/state.json")

    monkeypatch.setattr(SlotStore, "describe", denied)
    assert main(argv) == 1
    assert capsys.readouterr().err == ("ledwarden: error: Permission denied: "
                                       "/var/lib/ledwarden/slots/state.json\n")

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(SlotStore, "describe", interrupted)
    assert main(argv) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "ledwarden: interrupted\n"


@pytest.mark.parametrize("argv", [
    ["controller", "token", "list"], ["controller", "token", "list", "--json"],
    ["controller", "token", "revoke", "someone"], ["controller", "trust", "list"],
    ["controller", "trust", "remove", "centre"], ["controller", "slots"],
])
def test_read_only_commands_never_create_a_state_directory(tmp_path, capsys, argv):
    """Issue 15 item 14: ``token list --state <typo>`` made an empty state directory."""
    typo = tmp_path / "var" / "lib" / "ledwarden-typo"
    assert main([*argv, "--state", str(typo)]) == 1
    assert capsys.readouterr().err == f"ledwarden: error: no state directory at {typo}; is --state right?\n"
    assert not (tmp_path / "var").exists()


def test_token_list_in_a_new_state_directory_writes_nothing(tmp_path, capsys):
    state = tmp_path / "state"
    state.mkdir()
    assert main(["controller", "token", "list", "--state", str(state)]) == 0
    assert "no tokens yet" in capsys.readouterr().out
    assert list(state.iterdir()) == []


def test_state_is_absolute_from_the_command_line_on(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for argv in (["controller", "slots", "--state", "st"], ["controller", "install", "x.lwb", "--state", "st"],
                 ["controller", "run", "--screen", "s", "--bus", "loop://", "--state", "st"],
                 ["controller", "boot", "--state", "st"]):
        assert build_parser().parse_args(argv).state == str(tmp_path / "st")


def test_a_broken_pipe_that_is_not_stdout_is_an_error(tmp_path, capsys, monkeypatch):
    """Only stdout's reader going away is quiet: a socket that breaks is said like any error."""
    (tmp_path / "state").mkdir()

    def broken(self):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(SlotStore, "describe", broken)
    read, write = os.pipe()               # a real stdout whose reader is still there
    try:
        with os.fdopen(write, "w") as stdout:
            monkeypatch.setattr(sys, "stdout", stdout)
            assert main(["controller", "slots", "--state", str(tmp_path / "state")]) == 1
    finally:
        os.close(read)
    assert capsys.readouterr().err == "ledwarden: error: Broken pipe\n"
