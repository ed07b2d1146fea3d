"""Every command a message tells someone to run exists (issue 15 item 11).

``cards`` suggested "start a discovery", which is no command. Here every
``'ledwarden …'`` or ```ledwarden …``` named in a string the program prints (docstrings
excepted) is parsed by the real command line parser, with its placeholders
(``NAME``, ``N``, ``{name}`` …) given sample values. A hint naming a command
or option that does not exist, or arguments the command refuses, fails.
"""

from __future__ import annotations

import argparse
import ast
import re
import shlex
from pathlib import Path

import pytest

from host.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("controller", "host", "hw/sim")
QUOTED = re.compile(r"""(?:'ledwarden ([^']*)'|`ledwarden ([^`]*)`)""")
FIELD = "\x00"           # stands for an f-string's {…} while the text is searched
SAMPLES = {"N": "3", "ID": "3", "NAME": "centre", "S": "0x1A2B", "A": "5", FIELD: "3"}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _texts(tree: ast.AST):
    """The program's strings: plain constants and f-strings (fields as FIELD), adjacent parts
    joined as Python joins them."""
    skip = _docstrings(tree)
    inside_fstring = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            inside_fstring.update(id(v) for v in node.values)
            yield node.lineno, "".join(v.value if isinstance(v, ast.Constant) else FIELD
                                       for v in node.values)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in skip and id(node) not in inside_fstring):
            yield node.lineno, node.value


def named_commands() -> list[tuple[str, str]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for line, text in _texts(tree):
                for match in QUOTED.finditer(text):
                    command = (match.group(1) or match.group(2)).rstrip(" …").rstrip(".")
                    found.append((f"{path.relative_to(ROOT)}:{line}", command))
    return found


COMMANDS = named_commands()


class Refused(Exception):
    pass


def _raising(parser: argparse.ArgumentParser) -> None:
    """Make this parser and all below it raise instead of printing usage and exiting."""
    def error(message: str):
        raise Refused(message)
    parser.error = error
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _raising(child)


def test_hints_are_found():
    commands = {c for _, c in COMMANDS}
    assert "commission" in commands and "controller token list" in commands


@pytest.mark.parametrize("where, command", COMMANDS, ids=[f"{w} {c}" for w, c in COMMANDS])
def test_every_named_command_parses(where, command):
    parser = build_parser()
    _raising(parser)
    argv = [SAMPLES.get(word, word) for word in shlex.split(command.replace(FIELD, " \x00 "))]
    try:
        parser.parse_args(argv)
    except Refused as exc:
        # Required options a hint leaves to the reader (`controller run` without --screen) are
        # fine; a command, option or value the parser does not know is not.
        assert str(exc).startswith("the following arguments are required"), (where, argv, str(exc))
