"""The card firmware (``hw/firmware/``) is MicroPython code, not just Python that happens to run.

The firmware runs on the real interpreter in ``test_firmware_on_micropython.py``
and ``test_firmware_main.py``; but a session only meets the code it drives.
Two static checks cover every line, for what a session may not reach:

1. **Types against MicroPython's own stubs.**  mypy checks every firmware
   file against ``micropython-stdlib-stubs`` (given as mypy's typeshed, so
   CPython's standard library is out of sight) and the RP2040 port's
   ``micropython-rp2-stubs`` (``machine``, ``time.ticks_ms`` …, on
   ``MYPYPATH``).  The stubs are pinned below and installed on first use
   into ``.venv/micropython-stubs`` with ``pip --target``: never into the
   project's site-packages, where they would shadow CPython's standard
   library for everything else.  Errors inside the stubs themselves (they
   have a few) are not ours and are ignored; the firmware's are reported.
2. **The language MicroPython speaks.**  An AST and token walk over every
   firmware file, with one rule per difference from CPython that the type
   check cannot see.  Nothing in it is taken on trust: the modules and the
   names in ``os`` and ``sys`` it allows are what MicroPython 1.27 itself
   lists (``interpreter_facts``), every rule has a bad snippet that the real
   interpreter refuses or runs otherwise than CPython
   (``test_every_rule_is_proven_by_the_real_interpreter``), and what the
   check lets through runs there.  (An earlier hand-written allow-list let
   ``Exception.__init__(self)`` and ``(*a, b)`` through; MicroPython refuses
   both.)

Without network access to install the stubs, or without mypy, test 1 is
skipped on a developer's machine and fails in CI (``CI`` set); without Node,
likewise for the interpreter (``tests/support/micropython_runner.py``).
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib.util
import io
import json
import keyword
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tokenize
import warnings
from pathlib import Path

import pytest

from support import micropython_runner

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "hw" / "firmware"
STUBS = ROOT / ".venv" / "micropython-stubs"
#: The MicroPython release the stubs describe; the card firmware targets it.
STUB_PACKAGES = ("micropython-stdlib-stubs==1.29.0.post2", "micropython-rp2-stubs==1.29.0.post1")

#: The rp2 port's hardware modules, which the WebAssembly port lacks: their use is checked by
#: the type check against the rp2 stubs (test 1), and main.py runs on a stand-in for them.
PORT_MODULES = {"machine", "rp2"}
#: Modules the WebAssembly port's PyScript variant freezes from micropython-lib, or has for the
#: browser, that a card's firmware build does not ship: present there, absent on a card.
WASM_VARIANT_EXTRAS = {
    "js", "jsffi", "abc", "base64", "copy", "datetime", "fnmatch", "functools", "gzip", "hmac",
    "html", "inspect", "itertools", "locale", "logging", "operator", "pathlib", "stat", "string",
    "tarfile", "types", "unittest", "uu",
}
#: Run by the real interpreter: its modules, and what its ``os`` and ``sys`` hold.
_FACTS_PROBE = """
import json, os, sys

def main():
    help('modules')
    print(json.dumps({"os": sorted(dir(os)), "sys": sorted(dir(sys))}))
"""


@functools.lru_cache(maxsize=None)
def interpreter_facts() -> tuple[frozenset, dict[str, frozenset]]:
    """What MicroPython itself says it has: its modules (as ``help('modules')`` lists them,
    less the WebAssembly variant's extras, plus the port's hardware modules) and the names in
    its ``os`` and ``sys``.  The language check's allow-lists come from here, not from a list
    someone wrote down."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "facts_probe.py").write_text(_FACTS_PROBE)
        run = micropython_runner.run(Path(tmp), "facts_probe")
    assert run.status == 0, run.stderr
    listing, _, attrs = run.stdout.rpartition("Plus any modules on the filesystem")
    modules = {word.split("/")[0] for word in listing.split()}
    modules = (modules - WASM_VARIANT_EXTRAS - {"__main__"}) | PORT_MODULES
    names = json.loads(attrs.strip().splitlines()[-1])
    return frozenset(modules), {"os": frozenset(names["os"]), "sys": frozenset(names["sys"])}


STRUCT_CALLS = {"pack", "pack_into", "unpack", "unpack_from", "calcsize"}


def firmware_files() -> list[Path]:
    return sorted(FIRMWARE.glob("*.py"))


def own_modules() -> set[str]:
    return {p.stem for p in firmware_files() if p.stem != "__init__"}


# ------------------------------------------------------------------ the language check

class _Checker(ast.NodeVisitor):
    """Collects ``(line, message)`` for every construct MicroPython lacks."""

    def __init__(self, source: str, own: set[str]) -> None:
        self.source = source
        self.own = own
        self.problems: list[tuple[int, str]] = []
        self.aliases: dict[str, str] = {}   # local name -> module, for os/sys/struct
        self.functions: set[str] = set()    # module-level function names
        self.constants: dict[str, str] = {}  # module-level string constants
        self.class_depth = 0                # > 0 lexically inside a class (mangling)

    def flag(self, node: ast.AST, message: str) -> None:
        self.problems.append((getattr(node, "lineno", 0), message))

    def visit_Module(self, node: ast.Module) -> None:
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions.add(item.name)
            if (isinstance(item, ast.Assign) and len(item.targets) == 1
                    and isinstance(item.targets[0], ast.Name)
                    and isinstance(item.value, ast.Constant) and isinstance(item.value.value, str)):
                self.constants[item.targets[0].id] = item.value.value
        self.generic_visit(node)

    # -- modules
    def _module(self, node: ast.AST, name: str, alias: str | None) -> None:
        top = name.split(".")[0]
        if top == "__future__":
            self.flag(node, "__future__ is not a MicroPython module (it is micropython-lib's, "
                            "and annotations are never evaluated anyway)")
        elif top not in interpreter_facts()[0] and top not in self.own:
            self.flag(node, f"module {name!r} does not exist on MicroPython")
        if alias and top in ("os", "sys", "struct"):
            self.aliases[alias] = top

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self._module(node, a.name, a.asname or a.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            for a in node.names:
                if a.name not in self.own:
                    self.flag(node, f"relative import of {a.name!r}, which is not a firmware module")
        else:
            self._module(node, node.module or "", None)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name):
            module = self.aliases.get(node.value.id)
            attributes = interpreter_facts()[1]
            if module in attributes and node.attr not in attributes[module]:
                self.flag(node, f"{module}.{node.attr} does not exist on MicroPython")
            if node.attr == "__new__":
                self.flag(node, f"{node.value.id}.__new__: MicroPython's classes have no __new__ "
                                f"attribute; give __init__ a flag instead")
        if self.class_depth and node.attr.startswith("__") and not node.attr.endswith("__"):
            self.flag(node, f"{node.attr}: MicroPython does not mangle private names")
        self.generic_visit(node)

    # -- syntax
    def visit_Match(self, node: ast.AST) -> None:
        self.flag(node, "match statements are not implemented (PEP 634)")
        self.generic_visit(node)

    def visit_TryStar(self, node: ast.AST) -> None:
        self.flag(node, "except* is not implemented")
        self.generic_visit(node)

    def _arguments(self, node: ast.AST, args: ast.arguments) -> None:
        if args.posonlyargs:
            self.flag(node, "positional-only parameters (/) are not implemented (PEP 570)")

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._arguments(node, node.args)
        self.generic_visit(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._arguments(node, node.args)
        for inner in ast.walk(node):
            if isinstance(inner, (ast.Yield, ast.YieldFrom)):
                self.flag(node, "asynchronous generators are not implemented (PEP 525)")
                break
        self.generic_visit(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._arguments(node, node.args)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if node.keywords:
            self.flag(node, "class keywords (metaclass=…) are not supported")
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    item.name in ("__del__", "__init_subclass__"):
                self.flag(item, f"{item.name} is never called by MicroPython")
            targets = item.targets if isinstance(item, ast.Assign) else \
                [item.target] if isinstance(item, ast.AnnAssign) else []
            if any(isinstance(t, ast.Name) and t.id == "__slots__" for t in targets):
                self.flag(item, "__slots__ has no effect on MicroPython")
        self.class_depth += 1
        self.generic_visit(node)
        self.class_depth -= 1

    def visit_Name(self, node: ast.Name) -> None:
        if self.class_depth and node.id.startswith("__") and not node.id.endswith("__"):
            self.flag(node, f"{node.id}: MicroPython does not mangle private names")

    def visit_Dict(self, node: ast.Dict) -> None:
        if any(k is None for k in node.keys):
            self.flag(node, "{**mapping} unpacking in a dict literal is a syntax error")
        self.generic_visit(node)

    def _display(self, node: ast.Tuple | ast.List | ast.Set) -> None:
        # Star-unpacking works in calls and assignment targets, not in building a display.
        if isinstance(getattr(node, "ctx", ast.Load()), ast.Load) and \
                any(isinstance(e, ast.Starred) for e in node.elts):
            self.flag(node, "*unpacking inside a tuple, list or set display is not implemented; "
                            "build it with + or list()")
        self.generic_visit(node)

    def visit_Tuple(self, node: ast.Tuple) -> None:
        self._display(node)

    def visit_List(self, node: ast.List) -> None:
        self._display(node)

    def visit_Set(self, node: ast.Set) -> None:
        self._display(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        # {x=} parses as the text "x=" and x with the !r conversion; MicroPython prints str(x).
        for before, value in zip(node.values, node.values[1:]):
            if (isinstance(before, ast.Constant) and str(before.value).endswith("=")
                    and isinstance(value, ast.FormattedValue) and value.conversion == ord("r")):
                self.flag(node, "{x=} in an f-string shows str(x) on MicroPython, not repr(x); "
                                "write x={x!r}")
        self.generic_visit(node)

    # -- calls and assignments
    def visit_Call(self, node: ast.Call) -> None:
        f = node.func
        if (isinstance(f, ast.Attribute) and f.attr == "__init__" and isinstance(f.value, ast.Name)
                and isinstance(getattr(builtins, f.value.id, None), type)):
            self.flag(node, f"{f.value.id}.__init__(...): MicroPython's built-in types have no "
                            f"__init__ attribute to call; use super().__init__(...)")
        if node.keywords and ((isinstance(f, ast.Name) and f.id in ("bytes", "str", "bytearray"))
                              or (isinstance(f, ast.Attribute) and f.attr in ("encode", "decode"))):
            self.flag(node, "keyword arguments to bytes()/str()/encode()/decode() are not "
                            "implemented; pass them positionally")
        if (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
                and self.aliases.get(f.value.id) == "struct" and f.attr in STRUCT_CALLS and node.args):
            fmt = node.args[0]
            text = fmt.value if isinstance(fmt, ast.Constant) else \
                self.constants.get(fmt.id) if isinstance(fmt, ast.Name) else None
            if isinstance(text, str) and ("?" in text or re.search(r"\s", text)):
                self.flag(node, f"struct format {text!r}: MicroPython has no '?' and no spaces")
        self.generic_visit(node)

    def _assigned(self, node: ast.AST, targets: list[ast.expr]) -> None:
        for t in targets:
            if (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                    and t.value.id in self.functions):
                self.flag(node, f"attributes on functions ({t.value.id}.{t.attr}) are not supported")

    def visit_Assign(self, node: ast.Assign) -> None:
        self._assigned(node, node.targets)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._assigned(node, [node.target])
        self.generic_visit(node)


def _string_runs(source: str):
    """Runs of adjacent string literals as lists of (prefix, text, line), f-strings whole.

    Python 3.12 splits an f-string into FSTRING_START … FSTRING_END tokens;
    they are joined back into one literal here, so the rules below see the
    same thing on every Python.
    """
    fstart = getattr(tokenize, "FSTRING_START", None)
    fend = getattr(tokenize, "FSTRING_END", None)
    lines = source.splitlines(keepends=True)
    runs, run, depth, start = [], [], 0, None

    def text(a, b):
        (l1, c1), (l2, c2) = a, b
        if l1 == l2:
            return lines[l1 - 1][c1:c2]
        return lines[l1 - 1][c1:] + "".join(lines[l1:l2 - 1]) + lines[l2 - 1][:c2]

    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if fstart is not None and tok.type == fstart:
            depth += 1
            if depth == 1:
                start = tok
            continue
        if depth:
            if tok.type == fend:
                depth -= 1
                if depth == 0:
                    literal = text(start.start, tok.end)
                    prefix = re.match(r"[A-Za-z]*", literal)[0].lower()
                    run.append((prefix, literal[len(prefix):], start.start[0]))
            continue
        if tok.type == tokenize.STRING:
            prefix = re.match(r"[A-Za-z]*", tok.string)[0].lower()
            run.append((prefix, tok.string[len(prefix):], tok.start[0]))
        elif tok.type in (tokenize.NL, tokenize.COMMENT):
            continue
        else:
            if run:
                runs.append(run)
            run = []
    if run:
        runs.append(run)
    return runs


def token_problems(source: str) -> list[tuple[int, str]]:
    problems = []
    for run in _string_runs(source):
        fstrings = [lit for lit in run if "f" in lit[0]]
        for prefix, body, line in run:
            if "r" not in prefix and "\\N{" in body:
                problems.append((line, "\\N{name} escapes are not implemented"))
        braces = any("{" in body or "}" in body for prefix, body, _ in run if "f" not in prefix)
        if fstrings and braces:
            problems.append((run[0][2], "an f-string joined to a literal with braces formats the "
                                        "literal too on MicroPython; use +"))
    previous = None
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if (previous is not None and previous.type == tokenize.NUMBER and tok.type == tokenize.NAME
                and keyword.iskeyword(tok.string) and previous.end == tok.start):
            problems.append((tok.start[0], f"a number glued to {tok.string!r} is one token on "
                                           f"MicroPython; put a space between them"))
        previous = tok
    return problems


def problems_in(source: str, own: set[str] | None = None) -> list[tuple[int, str]]:
    """Everything in ``source`` that MicroPython would refuse or run differently."""
    checker = _Checker(source, own_modules() if own is None else own)
    with warnings.catch_warnings():  # CPython warns of what the token check reports
        warnings.simplefilter("ignore", SyntaxWarning)
        checker.visit(ast.parse(source))
    return sorted(checker.problems + token_problems(source))


@pytest.mark.parametrize("path", firmware_files(), ids=lambda p: p.name)
def test_firmware_uses_only_what_micropython_has(path):
    found = problems_in(path.read_text(encoding="utf-8"))
    assert not found, "\n".join(f"{path.relative_to(ROOT)}:{line}: {msg}" for line, msg in found)


#: What each rule catches: a snippet, and where running it does not simply fail on MicroPython,
#: code that sets ``r`` to what it observably does (CPython and MicroPython must differ).
BAD = {
    "future": ("from __future__ import annotations\n", None),
    "typing": ("import typing\n", None),
    "dataclasses": ("from dataclasses import dataclass\n", None),
    "unknown relative": ("from . import nothere\n", None),
    "match": ("match x:\n    case 1:\n        pass\n", None),
    "except star": ("try:\n    pass\nexcept* ValueError:\n    pass\n", None),
    "positional-only": ("def f(a, /, b):\n    pass\n", None),
    "async generator": ("async def f():\n    yield 1\n",
                        "async def f():\n    yield 1\nr = type(f()).__name__\n"),
    "dict unpacking": ("d = {**a, 'b': 1}\n", None),
    "return unpacking": ("def f(a):\n    return *a, 1\n", "r = (lambda a: (*a, 1))([0])\n"),
    "display unpacking": ("r = [*a, 1]\n", "a = [0]\nr = [*a, 1]\n"),
    "fstring equals": ("s = f'{x=}'\n", "x = 'a'\nr = f'{x=}'\n"),
    "fstring braces": ("s = 'a{}' f'{x}'\n", "x = 'a'\nr = 'a{}' f'{x}'\n"),
    "name escape": ("s = '\\N{BULLET}'\n", None),
    "slots": ("class A:\n    __slots__ = ('a',)\n",
              "class A:\n    __slots__ = ('a',)\no = A()\ntry:\n    o.b = 1\n    r = 'set'\n"
              "except AttributeError:\n    r = 'refused'\n"),
    "del": ("class A:\n    def __del__(self):\n        pass\n",
            "L = []\nclass A:\n    def __del__(self):\n        L.append(1)\na = A()\ndel a\n"
            "import gc\ngc.collect()\nr = L\n"),
    "init subclass": ("class A:\n    def __init_subclass__(cls):\n        pass\n",
                      "L = []\nclass A:\n    def __init_subclass__(cls):\n        L.append(1)\n"
                      "class B(A):\n    pass\nr = L\n"),
    "metaclass": ("class A(metaclass=M):\n    pass\n", "class A(metaclass=type):\n    pass\n"),
    "mangling": ("class A:\n    def f(self):\n        return self.__x\n",
                 "class A:\n    def f(self):\n        self.__x = 1\n"
                 "        return hasattr(self, '_A__x')\nr = A().f()\n"),
    "bytes keywords": ("b = bytes('a', encoding='utf8')\n", None),
    "decode keywords": ("s = b.decode(errors='ignore')\n", "s = b'a'.decode(errors='ignore')\n"),
    "struct bool": ("import struct\nstruct.pack('<?', True)\n", None),
    "struct spaces": ("import struct\nFMT = '<I H'\nstruct.unpack(FMT, b)\n",
                      "import struct\nFMT = '<I H'\nstruct.unpack(FMT, bytes(6))\n"),
    "os.makedirs": ("import os\nos.makedirs('/a')\n", None),
    "sys.getsizeof": ("import sys as s\ns.getsizeof(1)\n", None),
    "glued keyword": ("x = 1if y else 0\n", None),
    "function attribute": ("def f():\n    pass\nf.calls = 0\n", None),
    "builtin init": ("class E(Exception):\n    def __init__(self):\n        Exception.__init__(self)\n",
                     "class E(Exception):\n    def __init__(self):\n"
                     "        Exception.__init__(self, 'x')\nr = E().args\n"),
    "new": ("class A:\n    pass\na = A.__new__(A)\n", None),
}
#: Rules about the firmware itself rather than the interpreter: nothing to run.
NOT_INTERPRETER_FACTS = {"unknown relative"}
OWN = {"card", "flash", "framing", "main"}
#: Runs each snippet under either interpreter and prints what it did, one JSON line a snippet.
_RULES_PROBE = """
import json

def main():
    for name, code in json.loads(open('snippets.json').read()):
        scope = {}
        try:
            exec(code, scope)
            print(json.dumps([name, 'ran', repr(scope.get('r'))]))
        except Exception as e:
            print(json.dumps([name, 'raised', type(e).__name__]))
"""


@pytest.mark.parametrize("name", sorted(BAD))
def test_the_language_check_catches(name):
    assert problems_in(BAD[name][0], own=OWN), name


def test_every_rule_is_proven_by_the_real_interpreter(tmp_path):
    """A rule stays only while MicroPython itself refuses the construct, or runs it otherwise
    than CPython: run on both, the outcomes must differ."""
    snippets = [[name, probe or code] for name, (code, probe) in sorted(BAD.items())
                if name not in NOT_INTERPRETER_FACTS]
    (tmp_path / "snippets.json").write_text(json.dumps(snippets))
    (tmp_path / "rules_probe.py").write_text(_RULES_PROBE)
    micro = micropython_runner.run(tmp_path, "rules_probe")
    assert micro.status == 0, micro.stderr
    on_micropython = {r[0]: r[1:] for r in map(json.loads, micro.stdout.splitlines())}
    cpython = subprocess.run([sys.executable, "-c", "import rules_probe; rules_probe.main()"],
                             cwd=tmp_path, capture_output=True, text=True, check=True)
    on_cpython = {r[0]: r[1:] for r in map(json.loads, cpython.stdout.splitlines())}
    unproven = [name for name, _ in snippets
                if on_micropython[name][0] == "ran" and on_micropython[name] == on_cpython[name]]
    assert not unproven, f"MicroPython runs these as CPython does; drop their rules: {unproven}"


def test_the_language_check_passes_plain_micropython(tmp_path):
    """What the check lets through runs on the real interpreter."""
    ok = ("import struct\nimport json\nfrom . import framing\n"
          "def f(a, *b, c=1, **d):\n    x = (n := 3)\n    first, *rest = b + (a,)\n"
          "    return (first, max(*rest, x), f'{a:>4}' + '{}', f'{a!r}')\n"
          "class A(Exception):\n    def __init__(self, code):\n        super().__init__(code)\n"
          "        self.code = code\n")
    assert problems_in(ok, own={"framing"}) == []
    runnable = ok.replace("from . import framing\n", "") + (
        "\ndef main():\n    assert f(1, 2) == (2, 3, '   1{}', '1')\n"
        "    assert A(7).code == 7 and A(7).args == (7,)\n    print('ran')\n")
    (tmp_path / "plain.py").write_text(runnable)
    run = micropython_runner.run(tmp_path, "plain")
    assert run.status == 0 and run.stdout.strip() == "ran", run.stderr


# ------------------------------------------------------------------ the type check

def _missing(what: str, how: str):
    if os.environ.get("CI"):
        pytest.fail(f"{what}, and CI must run this test: {how}")
    pytest.skip(f"{what} ({how}); CI runs this test")


def _stubs() -> Path:
    """The pinned stubs in .venv/micropython-stubs, installed there on first use."""
    stamp = STUBS / ".installed"
    want = "\n".join(STUB_PACKAGES)
    if stamp.exists() and stamp.read_text() == want:
        return STUBS
    fresh = STUBS.with_name(STUBS.name + ".partial")
    shutil.rmtree(fresh, ignore_errors=True)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--disable-pip-version-check", "--timeout", "30", "--retries", "2",
                           "--target", str(fresh), *STUB_PACKAGES],
                          capture_output=True, text=True)
    if done.returncode:
        shutil.rmtree(fresh, ignore_errors=True)
        _missing("the MicroPython stubs could not be installed",
                 f"pip install --target {STUBS} {' '.join(STUB_PACKAGES)}: {done.stderr.strip()[-300:]}")
    (fresh / ".installed").write_text(want)
    shutil.rmtree(STUBS, ignore_errors=True)
    fresh.rename(STUBS)
    return STUBS


def _stub_modules(stubs: Path) -> list[str]:
    """Top-level modules of the port stubs (not the typeshed-shaped stdlib/ and stubs/)."""
    names = set()
    for p in stubs.iterdir():
        if p.name in ("stdlib", "stubs") or p.name.startswith(".") or p.name.endswith(".dist-info"):
            continue
        if p.suffix == ".pyi" or (p.is_dir() and p.name.isidentifier()):
            names.add(p.stem if p.suffix == ".pyi" else p.name)
    return sorted(names)


def test_firmware_type_checks_against_micropython_stubs(tmp_path):
    if importlib.util.find_spec("mypy") is None:
        _missing("mypy is not installed", "pip install -e '.[test]'")
    stubs = _stubs()
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\ncheck_untyped_defs = True\nwarn_unused_configs = False\n"
                      "[mypy-%s]\nignore_errors = True\n"
                      % ",".join(f"{m}.*" for m in _stub_modules(stubs)))
    env = dict(os.environ, MYPYPATH=str(stubs))
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), "--custom-typeshed-dir",
         str(stubs), "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
         "--no-error-summary", *(str(p.relative_to(ROOT)) for p in firmware_files())],
        cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"mypy against MicroPython stubs:\n{done.stdout}{done.stderr}"


def test_the_type_check_catches_a_cpython_only_call(tmp_path):
    """The same check on a copy of main.py calling what only CPython has must fail."""
    if importlib.util.find_spec("mypy") is None:
        _missing("mypy is not installed", "pip install -e '.[test]'")
    stubs = _stubs()
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nimport json\n"
                   "def f():\n    time.ticks_ms()\n    return json.dumps({}, indent=2)\n")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--custom-typeshed-dir", str(stubs), "--no-incremental",
         "--cache-dir", str(tmp_path / "cache"), "--check-untyped-defs", str(bad)],
        env=dict(os.environ, MYPYPATH=str(stubs)), capture_output=True, text=True)
    assert done.returncode == 1 and "indent" in done.stdout, done.stdout + done.stderr
    assert "ticks_ms" not in done.stdout, "time.ticks_ms should come from the MicroPython stubs"
