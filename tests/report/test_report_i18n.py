"""The string tables: both complete, placeholders that agree, numbers that read right."""

from __future__ import annotations

import string

import pytest

from controller.errors import LedwardenError
from controller.report import i18n
from controller.report.i18n import fmt_duration, fmt_fan, fmt_supply, fmt_temperature, fmt_time, label, t


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_tables_have_every_key_and_no_empty_value():
    assert set(i18n.EN) == set(i18n.ZH)
    for table in (i18n.EN, i18n.ZH):
        assert all(v.strip() for v in table.values())


def test_chinese_uses_only_placeholders_english_provides():
    # Chinese may drop a plural word ({cabinets}); it must never need a field English does not pass.
    for key, en in i18n.EN.items():
        assert _fields(i18n.ZH[key]) <= _fields(en), key


def test_chinese_headings_are_chinese():
    for key in (k for k in i18n.ZH if k.startswith(("section.", "col.", "sig.", "result."))):
        assert any("\u4e00" <= c <= "\u9fff" for c in i18n.ZH[key]), key


def test_lookup_and_formatting():
    assert t("section.signatures", "en") == "Signatures"
    assert t("section.signatures", "zh") == "签字确认"
    assert t("fmt.row_col", "en", row=1, col=3) == "row 1, column 3"
    assert t("fmt.row_col", "zh", row=1, col=3) == "第 1 行第 3 列"


def test_unknown_language_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="'fr'") as info:
        t("section.summary", "fr")
    assert isinstance(info.value, LedwardenError)
    assert "'en'" in str(info.value) and "'zh'" in str(info.value)


def test_unknown_key_is_a_key_error():
    with pytest.raises(KeyError):
        t("no.such.key", "en")


def test_codes_from_elsewhere_fall_back_to_themselves():
    assert label("flag", "over_temperature", "zh") == "过温"
    assert label("step", "discovery", "en") == "discovery"
    assert label("step", "brand-new-step", "zh") == "brand-new-step"
    assert label("role", "installer", "zh") == "安装方"


@pytest.mark.parametrize("seconds, lang, text", [
    (0.4, "en", "0.4 s"), (58.25, "en", "58.2 s"), (60, "en", "1 min 0 s"), (192.4, "en", "3 min 12 s"),
    (192.4, "zh", "3 分 12 秒"), (None, "en", "—"),
])
def test_durations(seconds, lang, text):
    assert fmt_duration(seconds, lang) == text


def test_readings():
    assert fmt_temperature(38.5) == "38.5 °C"
    assert fmt_temperature(40.0) == "40 °C"
    assert fmt_temperature(None) == "—"
    assert fmt_supply(5040) == "5.04 V"
    assert fmt_fan(2400, "en") == "2400 rpm"
    assert fmt_fan(0, "zh") == "无风扇"             # a card reports 0 rpm when no fan is fitted …
    assert fmt_fan(0, "en", ["fan_fault", "over_temperature"]) == "stopped"   # … and flags a stopped one
    assert fmt_fan(0, "zh", ["fan_fault"]) == "停转"


def test_times_are_shown_in_utc_with_the_zone_written():
    assert fmt_time("2026-11-22T10:03:12Z") == "2026-11-22 10:03:12 UTC"
    assert fmt_time("2026-11-22T18:03:12+08:00") == "2026-11-22 10:03:12 UTC"
    assert fmt_time("yesterday") == "yesterday"
    assert fmt_time(None) == "—"
