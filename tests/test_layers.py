"""Imports point down the layers, and no module reaches itself again through its imports.

The project is a stack: the laptop's command line (``host/``) above the
board's service (``controller/service/``), the service above the parts it
wires (self-test, upgrades, reports, fault log, fast path, bus protocol),
those above the modules at ``controller/*.py`` every side shares; beside
them the card's firmware (``hw/firmware``), which runs on MicroPython on the
card and so imports nothing of ours, and the simulator around it.  An import
that runs upward ties a lower part to everything above it (a self-test that
needs the service cannot run without one; a board that needs the laptop's
CLI ships it), so this test reads every import of every module with
:mod:`ast` — at the top and inside functions, ``import x`` and ``from x
import y``, relative ones resolved — and fails naming file, line and the rule
broken.  It also fails on an import loop between modules: a loop makes the
import order matter and makes the modules in it one module in effect.

Dynamic imports by name (``host/cli.py`` mounting each command's module,
``service/app.py`` its route modules) are not read: they are how the one
``ledwarden`` program is assembled, not a dependency of a part.  Tests,
benchmarks and examples sit above everything and are not checked.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The project's top-level packages; any other import is the standard library or a dependency.
PACKAGES = ("controller", "host", "hw")


@dataclass(frozen=True)
class Layer:
    name: str
    #: Modules and packages in the layer (a package means everything in it); the longest match wins.
    modules: tuple[str, ...]
    #: The layers below that this one may import; a module may always import its own layer.
    uses: tuple[str, ...]
    #: Why it may use those and nothing else: the reason printed when the rule is broken.
    why: str


#: The layer table, top to bottom.  It is the project's one statement of who may import whom;
#: change it here, with the reason, when the design changes.
LAYERS = (
    Layer("host", ("host",),
          ("selftest", "bundles", "cards", "upgrade", "report", "power", "faultlog", "fastpath",
           "picture", "protocol", "shared", "base", "sim"),
          "the laptop's command line builds and signs bundles, talks to the bus, renders reports "
          "and computes calibration from photos (picture.photocal, on the laptop the photos are "
          "on) with the board's libraries and runs the simulator for its demo, but reaches the "
          "running service only over HTTPS: never the service's modules, never a package's "
          "private module"),
    Layer("service", ("controller.service",),
          ("fleet", "picture", "video", "bundles", "cards", "selftest", "upgrade", "board", "report",
           "power", "faultlog", "fastpath", "protocol", "shared", "base"),
          "the service wires the parts together (bus owner, jobs, API); nothing below may need it, "
          "so every part runs and is tested without a service"),
    Layer("fleet", ("controller.fleet",), ("upgrade", "faultlog", "shared", "base"),
          "the DDI client asks a rollout server what to install and hands it to the upgrade "
          "machinery a hand upload uses (upload store, signed package, trusted keys, durable "
          "steps); the installs themselves (A/B installer, card job) the service lends it, so a "
          "rollout can do nothing a service engineer could not, and the fleet needs no service"),
    Layer("picture", ("controller.picture",), ("upgrade", "fastpath", "faultlog", "base"),
          "the live picture turns correction settings and per-cabinet calibration into the fast "
          "path's inputs and keeps run-time changes on disk with the upgrade's durable steps "
          "(controller.upgrade.steps: temp file, fsync, rename, cut points for tests, shared by "
          "bundles and the picture store); the "
          "service hands it the frame loop and the fault log, so it needs neither"),
    Layer("video", ("controller.video",), ("fastpath", "base"),
          "video sources and sinks (files, DDP, Colorlight) feed and drain the frame loop; they "
          "turn the fast path's card buffers back into a picture with its NumPy reference and "
          "know no bus and no service"),
    Layer("bootguard-name", ("controller.upgrade.bootguard",), ("bundles",),
          "the boot guard's old module name, run by the systemd unit of boards deployed before "
          "the upgrade split and imported by older releases' install smoke test; it only "
          "forwards to the guard in bundles"),
    Layer("bundles", ("controller.upgrade.bundles",),
          ("selftest", "board", "upgrade", "faultlog", "shared", "base"),
          "controller bundles (A/B slots, installer, boot guard) open the signed package and "
          "read the board's command-line options (cliargs, cliout); the health check that "
          "confirms a new controller is the quick self-test run on the board context, its "
          "failures filed in the fault log; they never touch the bus themselves and share "
          "nothing with card firmware but the package, so they do not import cards"),
    Layer("cards", ("controller.upgrade.cards",), ("upgrade", "faultlog", "protocol", "base"),
          "card firmware opens the signed package, streams it over the bus (protocol), files "
          "each card's outcome in the fault log and reads the firmware from an upload; it "
          "knows nothing of controller bundles, so it does not import them"),
    Layer("selftest", ("controller.selftest",),
          ("board", "report", "faultlog", "fastpath", "protocol", "shared", "base"),
          "self-tests ask the cards (protocol), time the fast path and write their findings as "
          "report sentences; they get the board's parts handed in (board), not the service"),
    Layer("upgrade", ("controller.upgrade",), ("base",),
          "what both upgrade kinds share: the signed container, Ed25519 keys, resumable "
          "uploads and the counted durable file steps; pure storage and cryptography, so it "
          "may use only the base vocabulary and neither of the two subsystems above it"),
    Layer("board", ("controller.boardcontext",),
          ("faultlog", "protocol", "shared", "base"),
          "the board context is what the self-tests, the watch, the jobs and the health check "
          "are handed instead of the service: the bus, layout, settings, fault log, frame loop, "
          "history; what it needs of the parts above (bus owner, job, history) it names as "
          "Protocols, so it imports none of them"),
    Layer("report", ("controller.report",), ("base",),
          "reports render what they are given (JSON in, HTML out) and know no bus and no service"),
    Layer("power", ("controller.power",), ("faultlog", "base"),
          "the power model and current limiter turn the fast path's module sums into a gain "
          "scale and file power.limiting; the frame loop hands both in, so it needs no service "
          "and no fast path"),
    Layer("faultlog", ("controller.faultlog",), ("base",),
          "the fault log is storage: it files what others found"),
    Layer("fastpath", ("controller.fastpath",), ("base",),
          "the per-frame correction is pure computation over the screen's layout"),
    Layer("protocol", ("controller.protocol",), ("base",),
          "the bus master speaks LWP/1 and knows nothing of what the cards are used for"),
    Layer("shared", ("controller.board", "controller.cardresults", "controller.cliargs",
                     "controller.cliout", "controller.screenmap"),
          ("protocol", "base"),
          "what both sides and the simulator share about the board and its cards: the bus "
          "interface (board), the command lines' argument types and output (cliargs, cliout), "
          "the screen-to-card mapping (screenmap), the per-card result shape the service "
          "writes and the host reads (cardresults); they name the protocol's types"),
    Layer("base", ("controller",), (),
          "errors, the screen file, JSON input, time and the certificate fingerprint: the "
          "vocabulary every layer speaks, so it may speak of none of them"),
    Layer("sim", ("hw.sim",), ("firmware", "shared", "base"),
          "the simulator runs the cards' own firmware and uses the project's errors and argument "
          "types, but never the bus master (controller.protocol): it stands for the real cards the "
          "master is tested against, so it must not share the master's code"),
    Layer("schematics", ("hw.schematics",), ("shared", "base"),
          "the bus interface's schematic quotes the board's electrical settings (controller.board)"),
    Layer("firmware", ("hw.firmware", "hw"), (),
          "the card's firmware runs on MicroPython on the card, where none of the project exists"),
)

LAYER_BY_NAME = {layer.name: layer for layer in LAYERS}


@dataclass(frozen=True)
class Import:
    path: str       # file, relative to the project
    line: int
    source: str     # importing module
    target: str     # imported module (a module the project has, or the nearest package)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for top in PACKAGES for p in sorted((ROOT / top).rglob("*.py"))}


def layer_of(module: str) -> Layer:
    best, length = None, -1
    for layer in LAYERS:
        for prefix in layer.modules:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = layer, len(prefix)
    if best is None:
        raise LookupError(f"{module} is in no layer: add it to LAYERS in tests/test_layers.py")
    return best


def imports_of(source: str, text: str, path: str, is_package: bool, known: set[str]) -> list[Import]:
    """Every project module ``source`` imports, anywhere in its text."""
    found = []
    here = source.split(".") if is_package else source.split(".")[:-1]
    for node in ast.walk(ast.parse(text, path)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # ``from pkg import name``: the submodule if there is one, else the package itself
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                       for alias in node.names]
        else:
            continue
        for target in dict.fromkeys(targets):
            if target.split(".")[0] in PACKAGES:
                found.append(Import(path, node.lineno, source, target))
    return found


def all_imports(modules: dict[str, Path]) -> list[Import]:
    known = set(modules)
    return [imp for name, path in modules.items()
            for imp in imports_of(name, path.read_text(encoding="utf-8"),
                                  str(path.relative_to(ROOT)), path.name == "__init__.py", known)]


def broken_rules(imports: list[Import]) -> list[str]:
    """One line per import that runs upward or into another package's private module."""
    problems = []
    for imp in imports:
        src, dst = layer_of(imp.source), layer_of(imp.target)
        where = f"{imp.path}:{imp.line}: {imp.source} imports {imp.target}"
        if dst is not src and dst.name not in src.uses:
            allowed = ", ".join(src.uses) or "nothing of the project"
            problems.append(f"{where}: layer {src.name} may use {allowed}, not {dst.name} "
                            f"({src.why})")
        leaf = imp.target.rsplit(".", 1)[-1]
        package = imp.target.rsplit(".", 1)[0]
        if leaf.startswith("_") and not leaf.startswith("__") and not (
                imp.source == package or imp.source.startswith(package + ".")):
            problems.append(f"{where}: {leaf} is private to {package}; use {package}'s public API")
    return problems


def cycles(imports: list[Import]) -> list[list[str]]:
    """The import loops: each strongly connected group of modules (Tarjan's algorithm), sorted."""
    graph = _graph(imports)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def _graph(imports: list[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if imp.target != imp.source:
            graph.setdefault(imp.source, set()).add(imp.target)
    return graph


def describe_loop(group: list[str], imports: list[Import]) -> str:
    """A shortest loop from the group's first module back to it, each step with its file:line,
    then every module of the group (breaking that one loop may leave others in it)."""
    graph, start, members = _graph(imports), group[0], set(group)
    paths, queue, loop = {start: [start]}, [start], group
    while queue and loop is group:
        node = queue.pop(0)
        for nxt in sorted(graph.get(node, ()) & members):
            if nxt == start:
                loop = paths[node] + [start]
                break
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    lines = {(imp.source, imp.target): f"{imp.path}:{imp.line}" for imp in imports}
    steps = ", ".join(lines[a, b] for a, b in zip(loop, loop[1:]))
    return f"{' -> '.join(loop)} ({steps}); modules in the loop: {', '.join(group)}"


# ------------------------------------------------------------------ the project


@pytest.fixture(scope="module")
def project():
    modules = project_modules()
    return modules, all_imports(modules)


def test_every_package_has_its_own_layer(project):
    """A new package must be placed in the table, not fall silently into its parent's layer."""
    modules, _ = project
    packages = {module_name(p.parent / "__init__.py") for p in modules.values()
                if (p.parent / "__init__.py").exists()}
    named = {prefix for layer in LAYERS for prefix in layer.modules}
    assert sorted(p for p in packages if p not in named and p.count(".") == 1) == []
    for layer in LAYERS:
        assert set(layer.uses) <= set(LAYER_BY_NAME), layer.name


def test_imports_point_down(project):
    _, imports = project
    problems = broken_rules(imports)
    assert not problems, "imports that break the layers:\n" + "\n".join(problems)


def test_no_import_loops(project):
    _, imports = project
    loops = [describe_loop(group, imports) for group in cycles(imports)]
    assert not loops, "import loops:\n" + "\n".join(loops)


def test_firmware_imports_nothing_of_the_project(project):
    _, imports = project
    assert [imp for imp in imports if imp.source.startswith("hw.firmware")
            and not imp.target.startswith("hw.firmware")] == []


# ------------------------------------------------------------------ the checker itself


def check_text(module: str, text: str, known: set[str], *, is_package: bool = False) -> list[str]:
    path = module.replace(".", "/") + ("/__init__.py" if is_package else ".py")
    return broken_rules(imports_of(module, text, path, is_package, known))


def test_an_upward_import_fails_with_file_line_and_rule(project):
    modules, _ = project
    text = ("from controller.protocol import commands\n"
            "\n"
            "def when():\n"
            "    from ..service.jobs import QUESTION_TIMEOUT_S\n"
            "    return QUESTION_TIMEOUT_S\n")
    problems = check_text("controller.selftest.synthetic", text, set(modules))
    assert len(problems) == 1
    assert problems[0].startswith("controller/selftest/synthetic.py:4: controller.selftest.synthetic "
                                  "imports controller.service.jobs: layer selftest may use ")
    assert "not service" in problems[0]


def test_the_board_importing_the_laptop_fails(project):
    modules, _ = project
    for text in ("import host.settings\n", "from host import pinning\n", "from host.client import x\n"):
        assert len(check_text("controller.upgrade.synthetic", text, set(modules))) == 1, text


def test_the_two_upgrade_subsystems_share_only_the_upgrade_package(project):
    """Bundles and card firmware stay apart; the shared package (signed container, keys,
    uploads) is below both and may reach neither."""
    known = set(project[0])
    assert check_text("controller.upgrade.bundles.synthetic",
                      "from controller.upgrade.cards import firmware\n", known)
    assert check_text("controller.upgrade.cards.synthetic",
                      "from controller.upgrade.bundles.slots import Slots\n", known)
    assert check_text("controller.upgrade.synthetic", "from .bundles import slots\n", known)
    assert check_text("controller.upgrade.synthetic", "from controller.faultlog import journal\n",
                      known)
    for module in ("controller.upgrade.bundles.synthetic", "controller.upgrade.cards.synthetic"):
        assert check_text(module, "from controller.upgrade import package, signing, uploads\n",
                          known) == []


def test_private_modules_of_another_package_fail(project):
    modules, _ = project
    assert check_text("host.synthetic", "from controller.fastpath import _cffi\n", set(modules))
    assert check_text("controller.fastpath", "from controller.fastpath import _cffi\n", set(modules),
                      is_package=True) == []


def test_firmware_may_import_only_itself(project):
    modules, _ = project
    assert check_text("hw.firmware.synthetic", "from controller.errors import ConfigError\n", set(modules))
    assert check_text("hw.firmware.synthetic", "from . import framing\n", set(modules)) == []
    assert check_text("hw.sim.synthetic", "from controller.protocol import framing\n", set(modules))


def test_a_loop_is_found_and_named():
    imports = [Import("a.py", 1, "controller.a", "controller.b"),
               Import("b.py", 7, "controller.b", "controller.c"),
               Import("c.py", 3, "controller.c", "controller.a"),
               Import("c.py", 4, "controller.c", "controller.d")]
    assert cycles(imports) == [["controller.a", "controller.b", "controller.c"]]
    assert describe_loop(cycles(imports)[0], imports) == (
        "controller.a -> controller.b -> controller.c -> controller.a (a.py:1, b.py:7, c.py:3); "
        "modules in the loop: controller.a, controller.b, controller.c")
    assert cycles(imports[:2] + imports[3:]) == []


def test_the_board_context_may_not_reach_the_parts_it_is_handed_to(project):
    """The board context sits below the self-tests, upgrades and the service: it names what it
    needs of them as Protocols, so importing any of them is refused."""
    modules, _ = project
    for text in ("from controller.service.busowner import BusOwner\n",
                 "from controller.selftest.history import History\n",
                 "from controller.upgrade.bundles.health import health_check\n"):
        problems = check_text("controller.boardcontext", text, set(modules))
        assert len(problems) == 1 and "layer board may use" in problems[0], text
    assert check_text("controller.boardcontext", "from controller.faultlog import FaultLog\n",
                      set(modules)) == []
