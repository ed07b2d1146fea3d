"""``--json`` or a table, chosen in one place: controller.cliout.emit."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import pytest

from controller import cliout


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cliout.add_json_flag(parser)
    return parser.parse_args(list(argv))


def test_json_prints_the_document_and_never_calls_show(capsys):
    def show(_):
        raise AssertionError("show must not run under --json")

    assert cliout.emit(_args("--json"), {"a": 1, "when": cliout}, show) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["a"] == 1 and out.endswith("}\n")


def test_without_json_show_draws_it_and_its_status_is_returned(capsys):
    assert cliout.emit(_args(), {"a": 1}, lambda d: print(f"a is {d['a']}")) == 0
    assert capsys.readouterr().out == "a is 1\n"
    assert cliout.emit(_args(), [1, 2], lambda d: len(d)) == 2


def test_a_command_without_the_flag_prints_for_people(capsys):
    assert not cliout.wants_json(argparse.Namespace())
    cliout.emit(argparse.Namespace(), "x", print)
    assert capsys.readouterr().out == "x\n"


@pytest.mark.parametrize("argv, expected", [((), "working…\n"), (("--json",), "")])
def test_notice_goes_to_stderr_and_is_silent_under_json(capsys, argv, expected):
    cliout.notice(_args(*argv), "working…")
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", expected)


def test_no_command_chooses_between_json_and_a_table_itself():
    """A new ``if args.json`` fails here: use emit/notice/wants_json."""
    root = Path(__file__).resolve().parents[1]
    found = subprocess.run(["grep", "-rn", "--include=*.py", r"args\.json\|add_argument(\"--json\"",
                            "host", "controller", "hw"],
                           cwd=root, capture_output=True, text=True).stdout.splitlines()
    stray = [line for line in found if not line.startswith("controller/cliout.py")]
    assert not stray, "print through controller.cliout.emit:\n" + "\n".join(stray)
