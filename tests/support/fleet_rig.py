"""What the fleet tests share: waiting for a condition, a signed card firmware package, and a
board's state directory set up to poll a DDI server (the target token in its file, as
``ledwarden controller ddi set`` leaves it)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from controller.fleet import settings as ddi_settings
from controller.upgrade import signing
from controller.upgrade.cards import firmware as fwpkg
from upgrade.card_cases import firmware


def wait_for(predicate, timeout: float = 120.0, what: str = "the condition", every: float = 0.3):
    """``predicate()``'s first true value, or AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def card_package(dest: Path, private_key: Path, version: str = "2.0.0", size: int = 64 * 1024) -> Path:
    """A card firmware package for the simulated cards, signed with ``private_key``."""
    fw = firmware(size, version=version)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fwpkg.build_firmware(dest, fw.image, hw_model=fw.hw_model, version=version,
                         private_key=signing.load_private(private_key))
    return dest


def configure_ddi(state: Path, url: str, tenant: str, target: str, token: str, *,
                  trust: Path | None = None, poll_s: int = 10) -> None:
    """Point the board at a DDI server; ``trust``: a public key to add to its trusted keys."""
    if trust is not None:
        (state / "trusted-keys").mkdir(parents=True, exist_ok=True)
        shutil.copy(trust, state / "trusted-keys" / trust.name)
    ddi_settings.save(state, ddi_settings.check(url, tenant, target, poll_s=poll_s))
    ddi_settings.save_token(state, token)
