"""Acceptance reports shaped like the commissioning job's, for the renderer's tests.

Imported by name (``from report_cases import sample_report``): pytest puts
this directory on the path for the test modules beside it.
"""

from __future__ import annotations

P25 = {"name": "p25", "width": 64, "height": 32, "scan": 16}


def cabinet(address: int, x: int, y: int, *, temp: float = 38.5, found: bool = True, dead=(),
            rotation: int = 0, problems=(), flags=(), modules_x: int = 4, modules_y: int = 4) -> dict:
    """One cabinet of P2.5 modules (4 × 4: 256 × 128 px) as the report carries it.

    ``dead`` holds ``(module, x, y, channel)``; the screen position is worked
    out here independently of the renderer (serpentine chain, no rotation).
    """
    cab = {
        "address": address, "x": x, "y": y, "width": modules_x * 64, "height": modules_y * 32,
        "module": dict(P25), "modules_x": modules_x, "modules_y": modules_y, "chain": "serpentine",
        "rotation": rotation,
        "found": found, "serial": f"4C572026{address:08X}" if found else None,
        "model": "0x0A01" if found else None, "firmware": "1.0.0" if found else None,
        "bank": "A" if found else None, "config_ok": True if found else None,
        "brightness": 65535 if found else None,
        "status": {"temperature_c": temp, "supply_mv": 5040, "fan_rpm": 2400, "flags": list(flags)}
        if found else None,
        "dead_leds": [], "problems": list(problems),
    }
    for module, mx, my, channel in dead:
        row, col = divmod(module, modules_x)
        if row % 2:
            col = modules_x - 1 - col
        cab["dead_leds"].append({"module": module, "x": mx, "y": my, "channel": channel,
                                 "screen_x": x + col * 64 + mx, "screen_y": y + row * 32 + my})
    return cab


def sample_report() -> dict:
    """A 4 × 4 cabinet wall: one hot, one warm, one missing, one rotated, four dead LEDs."""
    cabinets = []
    for i in range(16):
        address = i + 1
        row, col = divmod(i, 4)
        kwargs: dict = {"temp": 38.5 + (i % 5) * 1.3}
        if address == 3:
            kwargs = {"temp": 91.5, "flags": ["over_temperature"],
                      "problems": ["cabinet 3 (address 0x03, row 1 column 3) runs hot at 91.5 °C: "
                                   "check its fan and the air flow behind the wall"]}
        elif address == 7:
            kwargs = {"temp": 74.0}
        elif address == 6:
            kwargs = {"found": False,
                      "problems": ["cabinet 6 (address 0x06, row 2 column 2) does not answer: "
                                   "check its bus cable"]}
        elif address == 5:
            kwargs = {"dead": [(2, 33, 17, "g"), (9, 5, 30, "r"), (15, 60, 2, "b")],
                      "problems": ["3 dead LEDs on cabinet 5: replace modules 2, 9 and 15"]}
        elif address == 12:
            kwargs = {"dead": [(0, 0, 0, "r")]}
        elif address == 14:
            kwargs = {"rotation": 180}
        cabinets.append(cabinet(address, col * 256, row * 128, **kwargs))
    return {
        "kind": "acceptance", "version": 1, "lang": "en",
        "screen": {"name": "Lobby wall", "width": 1024, "height": 512, "file": "lobby.toml"},
        "controller": {"software": "0.1.0", "host": "ctrl-lobby", "bus": "/dev/ttyAMA0", "baud": 921600,
                       "fingerprint": "SHA256:3q2+7wAAAAC0fhXr9l7bYzv3mQ5xUQk8o1nq0i0N3cE"},
        "started": "2026-11-22T10:00:00Z", "finished": "2026-11-22T10:03:12Z", "duration_s": 192.4,
        "result": "fail",
        "summary": ["15 of 16 cabinets answer; cabinet 6 does not",
                    "4 dead LEDs: 3 on cabinet 5, 1 on cabinet 12",
                    "cabinet 3 runs hot: 91.5 °C"],
        "cabinets": cabinets,
        "unexpected": [{"address": 17, "serial": "4C57202600000011", "model": "0x0A01",
                        "problem": "a card at 0x11 is not in the screen file"}],
        "patterns": [{"pattern": "red", "confirmed": True, "how": "operator"},
                     {"pattern": "green", "confirmed": True, "how": "operator"},
                     {"pattern": "blue", "confirmed": True, "how": "operator"},
                     {"pattern": "white", "confirmed": False, "how": "--yes (unattended)"}],
        "steps": [{"name": "discovery", "ok": True, "detail": "16 cards found in 1.2 s"},
                  {"name": "layout", "ok": False, "detail": "cabinet 6 missing; 0x11 not in the screen file"},
                  {"name": "config", "ok": True, "detail": "15 configs written and read back"},
                  {"name": "detect", "ok": True, "detail": "4 dead LEDs on 2 cabinets"}],
        "signatures": ["installer", "customer"],
    }


def grid_wall(cols: int, rows: int, cab_w: int = 256, cab_h: int = 128,
              overrides: dict[int, dict] | None = None) -> tuple[dict, list[dict]]:
    """A ``cols`` × ``rows`` wall of equal cabinets; ``overrides[address]`` are :func:`cabinet` options.

    Cabinet sizes are whole P2.5 modules (multiples of 64 × 32).
    """
    cabinets = []
    for i in range(cols * rows):
        row, col = divmod(i, cols)
        kwargs = (overrides or {}).get(i + 1, {})
        cabinets.append(cabinet(i + 1, col * cab_w, row * cab_h, modules_x=cab_w // 64,
                                modules_y=cab_h // 32, **kwargs))
    return {"name": "grid", "width": cols * cab_w, "height": rows * cab_h}, cabinets
