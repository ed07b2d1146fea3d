"""The screen file: valid files load into the layout, every broken rule is named."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from controller.config import Cabinet, Layout, ModuleType, load_screen, loads_screen, parse_screen
from controller.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SPEC_EXAMPLE = """
[screen]
name = "Lobby wall"
width = 1024            # pixels
height = 512

[modules.p25]           # a module type, named freely
width = 64              # pixels
height = 32
scan = 16               # rows driven per data line; height % scan == 0

[[cabinets]]            # one receiving card drives one cabinet
address = 1             # bus address of its card, 1 … 240, unique
x = 0                   # top-left pixel of the cabinet on the screen
y = 0
module = "p25"
modules_x = 4           # cabinet = modules_x × modules_y modules
modules_y = 4
chain = "serpentine"    # "rows" or "serpentine"
rotation = 0            # 0, or 180 for a cabinet mounted upside down
"""


def screen(**changes) -> dict:
    """Two side-by-side cabinets; ``changes`` maps 'cabinets.N.key' etc. to new values."""
    data = {
        "screen": {"name": "t", "width": 512, "height": 256},
        "modules": {"p25": {"width": 64, "height": 32, "scan": 16}},
        "cabinets": [
            {"address": 1, "x": 0, "y": 0, "module": "p25", "modules_x": 4, "modules_y": 4,
             "chain": "serpentine", "rotation": 0},
            {"address": 2, "x": 256, "y": 0, "module": "p25", "modules_x": 4, "modules_y": 4,
             "chain": "rows", "rotation": 180},
        ],
    }
    data = copy.deepcopy(data)
    for path, value in changes.items():
        *parents, key = path.split(".")
        node = data
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
    return data


DELETE = object()


def problems(data) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_screen(data, "wall.toml")
    assert isinstance(info.value, ValueError)
    return info.value.problems


def test_the_spec_example_loads():
    layout = loads_screen(SPEC_EXAMPLE)
    p25 = ModuleType("p25", 64, 32, 16)
    assert layout == Layout("Lobby wall", 1024, 512, (p25,),
                            (Cabinet(1, 0, 0, p25, 4, 4, "serpentine", 0),))
    cab = layout.cabinet(1)
    assert (cab.width, cab.height, cab.module_count, cab.module.groups) == (256, 128, 16, 2)
    with pytest.raises(KeyError):
        layout.cabinet(2)


@pytest.mark.parametrize("name", ["lobby.toml", "atrium-4k.toml"])
def test_example_files_load(name):
    layout = load_screen(EXAMPLES / name)
    assert len(layout.cabinets) > 1
    assert {c.rotation for c in layout.cabinets} == {0, 180}


@pytest.mark.parametrize("changes, expected", [
    ({"cabinets.1.address": 1}, "cabinet 2 (address 1): address 1 is already used by cabinet 1"),
    ({"cabinets.1.address": 0}, "cabinet 2 (address 0): address = 0 is out of range (1 … 240)"),
    ({"cabinets.1.address": 241}, "address = 241 is out of range"),
    ({"cabinets.1.x": 300}, "cabinet 2 (address 2): x 300 + width 256 = 556 is past the screen's "
                            "width 512 (rule: cabinets lie wholly inside the screen)"),
    ({"cabinets.1.y": 200}, "y 200 + height 128 = 328 is past the screen's height 256"),
    ({"cabinets.1.x": 200}, "cabinet 2 (address 2): overlaps cabinet 1 (address 1) on pixels "
                            "x 200…255, y 0…127 (rule: cabinets do not overlap)"),
    ({"cabinets.1.x": -1}, "cabinet 2 (address 2): x = -1 is out of range (at least 0)"),
    ({"cabinets.0.module": "p3"}, "cabinet 1 (address 1): module 'p3' is not a defined module type"),
    ({"cabinets.0.chain": "zigzag"}, "cabinet 1 (address 1): chain = 'zigzag' is not one of 'rows', "
                                     "'serpentine'"),
    ({"cabinets.0.rotation": 90}, "cabinet 1 (address 1): rotation = 90 is not one of 0, 180"),
    ({"cabinets.0.rotation": 0.0}, "rotation = 0.0 is not one of 0, 180"),
    ({"cabinets.0.modules_x": 0}, "cabinet 1 (address 1): modules_x = 0 is out of range"),
    ({"cabinets.0.modules_y": True}, "modules_y must be a whole number, not True"),
    ({"cabinets.0.chain": DELETE}, "cabinet 1 (address 1): chain is missing"),
    ({"cabinets.0.rotaton": 0}, "cabinet 1 (address 1): unknown key 'rotaton'"),
    ({"modules.p25.scan": 12}, "module type 'p25': height 32 is not a multiple of scan 12 "
                               "(rule: height % scan == 0)"),
    ({"modules.p25.width": 0}, "module type 'p25': width = 0 is out of range"),
    ({"screen.width": "wide"}, "[screen]: width must be a whole number, not 'wide'"),
    ({"screen.name": DELETE}, "[screen]: name is missing"),
    ({"cabinets": DELETE}, "[[cabinets]]: missing"),
    ({"cabinets": []}, "[[cabinets]]: must be a non-empty array of tables"),
])
def test_each_broken_rule_is_named(changes, expected):
    found = problems(screen(**changes))
    assert any(expected in p for p in found), found
    assert all(p.startswith("wall.toml: ") for p in found)


def test_every_problem_is_reported_at_once():
    found = problems(screen(**{"cabinets.0.rotation": 90, "cabinets.1.address": 1,
                               "cabinets.1.y": 200}))
    assert len(found) == 3
    with pytest.raises(ConfigError, match=r"wall.toml: 3 problems in the screen file:\n  cabinet 1 "):
        parse_screen(screen(**{"cabinets.0.rotation": 90, "cabinets.1.address": 1,
                               "cabinets.1.y": 200}), "wall.toml")


def test_a_missing_table_is_one_problem():
    data = screen()
    del data["screen"]
    assert problems(data) == ["wall.toml: [screen]: missing"]
    data["screen"] = "big"
    data["cabinets"][1] = 7
    assert problems(data) == ["wall.toml: [screen]: must be a table, not str",
                              "wall.toml: cabinet 2: must be a table, not int"]


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the screen file"):
        load_screen(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[screen\nwidth = 3\n")
    with pytest.raises(ConfigError, match=r"bad.toml: not valid TOML"):
        load_screen(bad)


def test_other_top_level_tables_are_left_alone():
    data = screen()
    data["bus"] = {"port": "/dev/ttyAMA0"}
    assert len(parse_screen(data).cabinets) == 2


def test_layouts_are_frozen_and_hashable():
    layout = parse_screen(screen())
    with pytest.raises(AttributeError):
        layout.cabinets[0].x = 3
    assert hash(layout) == hash(parse_screen(screen()))


def test_screen_file_encodings(tmp_path):
    """Issue 15 item 10: a UTF-16 or binary screen file is refused in words, a UTF-8 BOM is accepted."""
    text = (EXAMPLES / "lobby.toml").read_text(encoding="utf-8")
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert load_screen(bom) == load_screen(EXAMPLES / "lobby.toml")
    utf16 = tmp_path / "utf16.toml"
    utf16.write_bytes(text.encode("utf-16"))
    with pytest.raises(ConfigError, match=r"utf16.toml: the screen file is not UTF-8 text "
                                          r"\(it looks like UTF-16; save it as UTF-8\)"):
        load_screen(utf16)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(bytes(range(128, 256)))
    with pytest.raises(ConfigError, match=r"binary.toml: the screen file is not UTF-8 text "
                                          r"\(save it as UTF-8 text\)"):
        load_screen(binary)
