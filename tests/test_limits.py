"""The card limits live in controller.limits, agree with the wire spec, and every part quotes them."""

from __future__ import annotations

import re
from pathlib import Path

from controller import limits
from controller.report import i18n
from controller.selftest import checks_cards
from controller.service import commission

SPEC = Path(__file__).resolve().parents[1] / "docs" / "spec" / "wire-protocol.md"


def test_the_limits_are_the_cards_own_status_flags():
    text = " ".join(SPEC.read_text().split())
    hot = re.search(r"bit0 over-temperature \(≥ (\d+) °C\)", text)
    low = re.search(r"bit1 under-voltage \(< ([\d.]+) V\)", text)
    assert hot and low, "the wire spec no longer states the status flags' thresholds"
    assert limits.HOT_C == float(hot[1])
    assert limits.SUPPLY_MIN_MV == round(float(low[1]) * 1000)
    assert limits.WARM_C < limits.HOT_C


def test_the_check_descriptions_quote_the_limits_in_both_languages():
    for table in (i18n.EN, i18n.ZH):
        described = table["check.cards.environment.limits"]
        assert f"{limits.WARM_C:g} °C" in described and f"{limits.HOT_C:g} °C" in described
        assert f"{limits.SUPPLY_MIN_MV} mV" in described


def test_no_part_keeps_its_own_copy():
    for module in (i18n, checks_cards, commission):
        source = Path(module.__file__).read_text()
        for name in ("WARM_C = ", "HOT_C = ", "SUPPLY_MIN_MV = "):
            assert name not in source, f"{module.__name__} defines its own {name.strip(' =')}"
