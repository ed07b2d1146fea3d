"""Every sentence a customer reads exists in both languages: no English is left on a Chinese page.

The pages are rendered with every sentence the commissioning job and the
self-test can record (``SPEC_FINDINGS`` holds each key with its fields), in
every place they can appear: summary, cabinet problems, unexpected cards,
step details, check findings, the comparison.  Any run of three English
words in the visible text of the Chinese page fails the test.
"""

from __future__ import annotations

import pytest
from inspection_cases import SPEC_FINDINGS, finding, sample_inspection
from report_cases import sample_report
from support.page_text import english_runs, visible_text

from controller.errors import BusTimeout, CardError
from controller.report import finding_text, i18n, render_acceptance_html, render_inspection_html
from controller.report.findings import error_fields, message


def every_message() -> list[dict]:
    return [message(key, **fields) for key, fields in sorted(SPEC_FINDINGS.items())]


def acceptance_with_every_sentence() -> dict:
    report = sample_report()
    report["screen"]["name"] = "大厅屏"
    report["result"] = "unwatched"
    report["summary"] = every_message()
    for cab in report["cabinets"]:
        if cab["problems"]:
            cab["problems"] = every_message()
    report["unexpected"][0]["problem"] = message("cards.unexpected", address="0x11", serial="4C57202600000011")
    report["patterns"] = [{"pattern": p, "confirmed": None, "how": "unattended"}
                          for p in ("red", "green", "blue", "white", "grid", "module_numbers")]
    report["steps"] = [{"name": name, "ok": ok, "detail": message(f"step.{key}", **SPEC_FINDINGS[f"step.{key}"]),
                        "duration_s": 1.2}
                       for name, key, ok in (("discovery", "discovery", True), ("config", "config", False),
                                             ("patterns", "patterns_unwatched", None),
                                             ("detect", "detect", True), ("status", "status", True),
                                             ("selftest", "selftest", True))]
    return report


def inspection_with_every_finding() -> dict:
    report = sample_inspection()
    report["screen"]["name"] = "大厅屏"
    # what the runner now records for a check that could not run: a reason, the error kept beside it
    frameloop = next(c for c in report["checks"] if c["id"] == "frameloop.budget")
    frameloop["findings"] = [finding("error", "check.error", reason="bus_error",
                                     error="the frame loop did not answer within 2 s")]
    everything = [finding("warn", key, **fields) for key, fields in sorted(SPEC_FINDINGS.items())]
    report["checks"][0]["findings"] += everything
    report["comparison"]["new_findings"] += [{**f, "check": "bus.link"} for f in everything]
    report["comparison"]["dead_leds"]["baseline"] = {"kind": "acceptance", "started": "2026-05-02T09:00:00Z"}
    for cab in report["cabinets"]:
        cab["problems"] = [{**f, "text": finding_text(f, "en")} for f in everything[:5]]
    return report


def test_the_english_check_finds_english():
    # The detector must be able to fail: the English pages are full of runs it catches.
    assert english_runs(render_acceptance_html(acceptance_with_every_sentence(), lang="en"))
    assert english_runs(render_inspection_html(inspection_with_every_finding(), lang="en"))


def test_a_chinese_acceptance_page_has_no_english_sentence():
    assert english_runs(render_acceptance_html(acceptance_with_every_sentence(), lang="zh")) == []


def test_a_chinese_inspection_page_has_no_english_sentence():
    assert english_runs(render_inspection_html(inspection_with_every_finding(), lang="zh")) == []


@pytest.mark.parametrize("lang", i18n.LANGS)
def test_no_raw_code_on_a_page(lang):
    # Pattern and step names are codes; the page shows their words (issue 15: module_numbers, selftest).
    text = " ".join(visible_text(render_acceptance_html(acceptance_with_every_sentence(), lang=lang)))
    for code in ("module_numbers", "selftest", "patterns_unwatched", "no_answer"):
        assert code not in text, code


def test_english_sentences_start_with_a_capital():
    for key, fields in SPEC_FINDINGS.items():
        text = finding_text({"key": key, "fields": fields}, "en")
        assert not text[0].islower(), (key, text)


def test_bus_errors_reach_the_page_as_reasons_and_stay_whole_in_the_json():
    # "no card at 0x05 after 4 tries (GET_CONFIG)" is protocol talk; the customer reads a reason.
    timeout = message("config.unreadable", cabinet=5, address="0x05", **error_fields(BusTimeout(5, "GET_CONFIG", 4)))
    assert timeout["text"] == "Cabinet 5 (0x05): its settings could not be read: the card did not answer"
    assert "GET_CONFIG" in timeout["fields"]["error"] and "4 tries" in timeout["fields"]["error"]
    refused = message("commission.config_failed", cabinet=5, address="0x05",
                      **error_fields(CardError(5, "SET_CONFIG", 3, "BAD_VALUE")))
    assert refused["text"].endswith("the card refused the request") and "SET_CONFIG" not in refused["text"]
    assert finding_text(timeout, "zh") == "5 号箱体（0x05）：无法读取接收卡参数：接收卡无应答"
    report = acceptance_with_every_sentence()
    report["summary"] = [timeout, refused]
    for lang in i18n.LANGS:
        text = " ".join(visible_text(render_acceptance_html(report, lang=lang)))
        assert "GET_CONFIG" not in text and "SET_CONFIG" not in text and "4 tries" not in text


def test_a_finding_from_before_reasons_still_prints_its_error():
    old = {"key": "check.error", "fields": {"error": "the bus is busy with an upgrade"}}
    assert finding_text(old, "en") == "This check could not run: the bus is busy with an upgrade"
