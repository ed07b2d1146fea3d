"""The card firmware (``hw/firmware/``) is MicroPython code, not just Python that happens to run.

The simulator runs the firmware on CPython, so the other firmware tests
cannot notice a module or a construct that a card's MicroPython lacks.  Two
checks do:

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
   firmware file, with one rule per documented difference from CPython
   that the type check cannot see (MicroPython's docs, "MicroPython
   differences from CPython" and the "Python 3.x" status pages).  Each rule
   has a bad snippet below that it must catch.

Without network access to install the stubs, or without mypy, test 1 is
skipped on a developer's machine and fails in CI (``CI`` set).
"""

from __future__ import annotations

import ast
import importlib.util
import io
import keyword
import os
import re
import shutil
import subprocess
import sys
import tokenize
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "hw" / "firmware"
STUBS = ROOT / ".venv" / "micropython-stubs"
#: The MicroPython release the stubs describe; the card firmware targets it.
STUB_PACKAGES = ("micropython-stdlib-stubs==1.29.0.post2", "micropython-rp2-stubs==1.29.0.post1")

#: Modules a MicroPython firmware build has (core, and the rp2 port's), by
#: name and by their older u-prefixed names.  Anything else is not there.
MICROPYTHON_MODULES = {
    "micropython", "machine", "time", "struct", "hashlib", "binascii", "os", "sys", "gc",
    "select", "errno", "collections", "array", "uctypes", "rp2", "json", "io", "math", "re",
    "random", "heapq", "asyncio", "framebuf", "cmath", "deflate", "_thread", "vfs",
    "utime", "ustruct", "uhashlib", "ubinascii", "uos", "usys", "uselect", "uerrno",
    "ucollections", "uarray", "ujson", "uio", "ure", "urandom", "uheapq", "uasyncio",
}
#: What MicroPython's ``os`` and ``sys`` have (their stubs are typeshed's, far larger).
MODULE_ATTRIBUTES = {
    "os": {"uname", "urandom", "chdir", "getcwd", "ilistdir", "listdir", "mkdir", "remove",
           "rmdir", "rename", "stat", "statvfs", "sync", "dupterm", "dupterm_notify", "mount",
           "umount", "sep", "VfsFat", "VfsLfs1", "VfsLfs2", "VfsPosix"},
    "sys": {"argv", "byteorder", "exit", "implementation", "maxsize", "modules", "path",
            "platform", "print_exception", "stderr", "stdin", "stdout", "version",
            "version_info", "atexit", "settrace", "ps1", "ps2"},
}
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
        elif top not in MICROPYTHON_MODULES and top not in self.own:
            self.flag(node, f"module {name!r} does not exist on MicroPython")
        if alias and top in MODULE_ATTRIBUTES | {"struct": None}:
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
            if module in MODULE_ATTRIBUTES and node.attr not in MODULE_ATTRIBUTES[module]:
                self.flag(node, f"{module}.{node.attr} does not exist on MicroPython")
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

    def _unpacking_result(self, node: ast.AST, value: ast.AST | None) -> None:
        if isinstance(value, ast.Tuple) and any(isinstance(e, ast.Starred) for e in value.elts):
            segment = ast.get_source_segment(self.source, value) or ""
            if not segment.startswith("("):
                self.flag(node, "unparenthesised *unpacking in return/yield is not implemented")

    def visit_Return(self, node: ast.Return) -> None:
        self._unpacking_result(node, node.value)
        self.generic_visit(node)

    def visit_Yield(self, node: ast.Yield) -> None:
        self._unpacking_result(node, node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if not isinstance(node.target, ast.Name):
            self.flag(node, "annotations are allowed on plain names only")
        self.generic_visit(node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> None:
        if node.conversion != -1:
            self.flag(node, "f-string conversions (!r, !s, !a, and the repr of {x=}) are not "
                            "supported; call repr()/str() explicitly")
        self.generic_visit(node)

    # -- calls and assignments
    def visit_Call(self, node: ast.Call) -> None:
        f = node.func
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
            if "f" in prefix and "r" in prefix:
                problems.append((line, "raw f-strings are not supported"))
            if "r" not in prefix and "\\N{" in body:
                problems.append((line, "\\N{name} escapes are not implemented"))
        braces = any("{" in body or "}" in body for prefix, body, _ in run if "f" not in prefix)
        if fstrings and len(run) > 1 and (len(fstrings) > 1 or braces):
            problems.append((run[0][2], "an f-string joined to another f-string, or to a literal "
                                        "with braces, is a syntax error; use +"))
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


BAD = {
    "future": "from __future__ import annotations\n",
    "typing": "import typing\n",
    "dataclasses": "from dataclasses import dataclass\n",
    "unknown relative": "from . import nothere\n",
    "match": "match x:\n    case 1:\n        pass\n",
    "except star": "try:\n    pass\nexcept* ValueError:\n    pass\n",
    "positional-only": "def f(a, /, b):\n    pass\n",
    "async generator": "async def f():\n    yield 1\n",
    "dict unpacking": "d = {**a, 'b': 1}\n",
    "return unpacking": "def f(a):\n    return *a, 1\n",
    "fstring repr": "s = f'{x!r}'\n",
    "fstring equals": "s = f'{x=}'\n",
    "raw fstring": "s = rf'{x}\\n'\n",
    "fstring concat": "s = f'{x}' f'{y}'\n",
    "fstring braces": "s = 'a{}' f'{x}'\n",
    "name escape": "s = '\\N{BULLET}'\n",
    "slots": "class A:\n    __slots__ = ('a',)\n",
    "del": "class A:\n    def __del__(self):\n        pass\n",
    "init subclass": "class A:\n    def __init_subclass__(cls):\n        pass\n",
    "metaclass": "class A(metaclass=M):\n    pass\n",
    "mangling": "class A:\n    def f(self):\n        return self.__x\n",
    "bytes keywords": "b = bytes('a', encoding='utf8')\n",
    "decode keywords": "s = b.decode(errors='ignore')\n",
    "struct bool": "import struct\nstruct.pack('<?', True)\n",
    "struct spaces": "import struct\nFMT = '<I H'\nstruct.unpack(FMT, b)\n",
    "os.makedirs": "import os\nos.makedirs('/a')\n",
    "sys.getsizeof": "import sys as s\ns.getsizeof(1)\n",
    "glued keyword": "x = 1if y else 0\n",
    "function attribute": "def f():\n    pass\nf.calls = 0\n",
    "annotated attribute": "def f(o):\n    o.x: int = 1\n",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_the_language_check_catches(name):
    assert problems_in(BAD[name], own={"card", "flash", "framing", "main"}), name


def test_the_language_check_passes_plain_micropython():
    ok = ("import struct\nimport machine\nfrom . import framing\n"
          "def f(a, *b, c=1, **d):\n    x = (n := 3)\n    return (*b, a, f'{a:>4}' + '{}')\n"
          "class A(Exception):\n    def __init__(self, code):\n        Exception.__init__(self)\n")
    assert problems_in(ok, own={"framing"}) == []


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
