"""How the screen file's cabinets map to the receiving cards that drive them.

The screen file (:mod:`controller.config`) says where each cabinet is and how
its modules are chained; a card knows only its own module grid.  This module
translates between the two: the config block a cabinet's card must hold, the
screen pixel of an LED a card reports dead, how a cabinet and its card are
described in reports and the API, and the ``[cards]`` table that says what
every card of the screen should be.  Commissioning and the self-test both use
it, so the acceptance report and the inspection describe a wall alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.brightness import LEVEL_MAX, screen_file_level
from controller.cardaddress import hex_address
from controller.config import Cabinet, Layout
from controller.errors import ConfigError
from controller.protocol import cards as ops
from controller.protocol import commands as c


@dataclass(frozen=True)
class CardSettings:
    """The screen file's ``[cards]`` table: what every card on this screen should be."""

    model: int | None = None          # expected hw_model; None accepts any
    firmware: str | None = None       # expected card firmware version; None accepts any
    refresh_hz: int = 3840
    #: The commissioning default brightness: ``[correction] brightness`` as a card level
    #: (:func:`controller.brightness.screen_file_level`).  Not what the cards must hold now:
    #: that is the wall's current brightness, controller state (``service.brightness``).
    default_level: int = LEVEL_MAX

    @classmethod
    def from_screen_file(cls, data: dict) -> CardSettings:
        table = data.get("cards", {})
        if not isinstance(table, dict):
            raise ConfigError("[cards] must be a table")
        default_level = screen_file_level(data)      # refuses the retired [cards] brightness
        unknown = set(table) - {"model", "firmware", "refresh_hz"}
        if unknown:
            raise ConfigError(f"[cards]: unknown keys {sorted(unknown)}; known: model, firmware, "
                              f"refresh_hz")
        settings = cls(**table, default_level=default_level)
        if not 30 <= settings.refresh_hz <= 7680:
            raise ConfigError(f"[cards] refresh_hz = {settings.refresh_hz} must be 30 … 7680")
        return settings


def card_config(cab: Cabinet, settings: CardSettings) -> c.CardConfig:
    """The config block a cabinet's card must hold."""
    return c.CardConfig(cab.module.width, cab.module.height, cab.module.scan, cab.modules_x,
                        cab.modules_y, chain=0 if cab.chain == "rows" else 1,
                        rotation=0 if cab.rotation == 0 else 2, refresh_hz=settings.refresh_hz)


def card_summary(info: ops.CardInfo) -> dict:
    """How a found card is shown in reports and the API: serial and model in hex."""
    return {"serial": f"{info.serial:016X}", "model": f"0x{info.hw_model:04X}",
            "firmware": info.version, "bank": info.bank}


def cabinet_entry(cab: Cabinet) -> dict:
    """A cabinet as the reports hold it (acceptance and inspection alike, so ``wall_svg`` draws
    both), before anything is known of its card."""
    return {"address": cab.address, "x": cab.x, "y": cab.y, "width": cab.width,
            "height": cab.height,
            "module": {"name": cab.module.name, "width": cab.module.width,
                       "height": cab.module.height, "scan": cab.module.scan},
            "modules_x": cab.modules_x, "modules_y": cab.modules_y, "chain": cab.chain,
            "rotation": cab.rotation, "found": False, "serial": None, "model": None,
            "firmware": None, "bank": None, "config_ok": False, "brightness": None,
            "status": None, "dead_leds": [], "problems": []}


def card_where(layout: Layout, address: int) -> dict:
    """The subject and fields every sentence about a card carries: its cabinet number (screen
    file order, from 1) and address; the self-test's findings carry the same."""
    index = [cab.address for cab in layout.cabinets].index(address) + 1
    return {"subject": f"card:{hex_address(address)}", "cabinet": index, "address": hex_address(address)}


def led_on_screen(cab: Cabinet, led: ops.DeadLed) -> tuple[int, int]:
    """Screen pixel of a module-local LED: undo the module order and the rotation."""
    row, col = divmod(led.module, cab.modules_x)
    if cab.chain == "serpentine" and row % 2:
        col = cab.modules_x - 1 - col
    cx, cy = col * cab.module.width + led.x, row * cab.module.height + led.y
    if cab.rotation == 180:
        cx, cy = cab.width - 1 - cx, cab.height - 1 - cy
    return cab.x + cx, cab.y + cy
