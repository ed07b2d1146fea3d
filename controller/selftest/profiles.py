"""The three profiles: which checks run, in what order, and how thoroughly.

- ``quick``: seconds, and safe while the screen shows content — nothing is
  drawn on the wall and the bus is held a card at a time.  What the boot
  guard runs after an upgrade, and what to run on a support call.
- ``quarterly``: the full inspection: every address scanned for stray cards,
  a longer link test, LED detection (which may light test patterns on the
  wall) and a longer look at the frame budget.
- ``commissioning``: run at the end of commissioning, which has just scanned
  the bus and detected LEDs itself: the link, the settings it wrote, the
  controller's own health.

Order matters: ``cards.present`` learns which cards answer and what they
run, and the checks after it ask only those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from controller.errors import ConfigError
from controller.selftest import checks_cards as cards
from controller.selftest import checks_controller as ctl
from controller.selftest import checks_video as video
from controller.selftest.model import Check

CHECKS = {check.id: check for check in (
    Check("cards.present", cards.cards_present),
    Check("bus.link", cards.bus_link),
    Check("cards.config", cards.cards_config),
    Check("cards.environment", cards.cards_environment),
    Check("cards.leds", cards.cards_leds),
    Check("cards.events", cards.cards_events),
    Check("cards.firmware", cards.cards_firmware),
    Check("fastpath.golden", ctl.fastpath_golden),
    Check("frameloop.budget", ctl.frameloop_budget),
    Check("video.output", video.video_output),
    Check("storage", ctl.storage),
    Check("clock", ctl.clock),
)}


class ProfileParams(TypedDict):
    """A profile's knobs, as the checks read them and the API shows them."""

    pings: int
    discover: bool
    detect: bool
    frame_window_s: float


@dataclass(frozen=True)
class Profile:
    """A named set of checks with their depth: the quick profile is seconds and lights nothing, the
    quarterly one pings more, scans every address and lights the LEDs."""

    name: str
    checks: tuple[str, ...]
    pings: int                 # per card, for bus.link
    discover: bool             # scan every address for cards not in the screen file
    detect: bool               # run LED detection (lights the LEDs briefly)
    frame_window_s: float      # how long to watch the frame loop

    def params(self) -> ProfileParams:
        """The profile's knobs as the checks read them (``ix.params``) and the API shows them."""
        return {"pings": self.pings, "discover": self.discover, "detect": self.detect,
                "frame_window_s": self.frame_window_s}


ALL = tuple(CHECKS)
PROFILES = {p.name: p for p in (
    Profile("quick", ALL, pings=5, discover=False, detect=False, frame_window_s=1.0),
    Profile("quarterly", ALL, pings=50, discover=True, detect=True, frame_window_s=3.0),
    Profile("commissioning", tuple(k for k in ALL if k != "cards.leds"), pings=20, discover=False,
            detect=False, frame_window_s=2.0),
)}


def profile(name: str) -> Profile:
    """The profile of this name, or a :class:`ConfigError` naming the ones there are."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"no self-test profile {name!r}; choose one of "
                          f"{', '.join(PROFILES)}") from None
