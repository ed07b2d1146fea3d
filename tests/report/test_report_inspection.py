"""The inspection report: every message in both languages, the comparison, the wall, the page's rules."""

from __future__ import annotations

import json
import re
import string

import pytest

from controller.report import (ReportError, finding_text, render_acceptance_html, render_inspection_html,
                               wall_svg, write_inspection)
from controller.report import i18n
from controller.report.findings import check_about, check_title, format_value
from inspection_cases import SPEC_CHECKS, SPEC_FINDINGS, first_inspection, sample_inspection
from report_cases import sample_report
from test_report_acceptance import as_xml, section, text_of

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def report() -> dict:
    return sample_inspection()


def groups(root, klass: str) -> list:
    return [g for g in root.iter(f"{SVG}g") if klass in (g.get("class") or "").split()]


def by_class(root, tag: str, klass: str) -> list:
    return [e for e in root.iter(tag) if klass in (e.get("class") or "").split()]


# --- messages -------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", i18n.LANGS)
@pytest.mark.parametrize("key", sorted(SPEC_FINDINGS))
def test_every_finding_of_the_spec_reads_as_a_sentence_with_all_its_numbers(key, lang):
    assert f"finding.{key}" in i18n.TABLES[lang], key       # not the fallback, which also shows fields
    fields = SPEC_FINDINGS[key]
    text = finding_text({"outcome": "warn", "key": key, "fields": fields}, lang)
    assert "{" not in text and "}" not in text and "—" not in text, text
    for name, value in fields.items():
        assert format_value(name, value, lang) in text, (name, text)


def test_the_tables_hold_no_finding_the_spec_does_not_define():
    # Catches a misspelt key, which would otherwise sit unused while the real one falls back.
    for table in i18n.TABLES.values():
        keys = {k.removeprefix("finding.").removesuffix(".one") for k in table if k.startswith("finding.")}
        assert keys == set(SPEC_FINDINGS)


@pytest.mark.parametrize("key, fields, en", [
    ("leds.dead", {"cabinet": 5, "address": "0x05", "module": 2, "count": 1},
     "Cabinet 5 (0x05), module 2: 1 dead LED"),
    ("leds.dead", {"cabinet": 5, "address": "0x05", "module": 2, "count": 3},
     "Cabinet 5 (0x05), module 2: 3 dead LEDs"),
    ("events.boot", {"cabinet": 3, "address": "0x03", "count": 1},
     "Cabinet 3 (0x03) restarted once since the last run"),
    ("cards.ok", {"cards": 1}, "The one card answers with the expected model"),
    ("link.ok", {"cards": 16, "count": 1, "rtt_ms": 0.42},
     "16 cards, 1 PING each: no retries, round trip at most 0.42 ms"),
    ("link.failed", {"cabinet": 3, "address": "0x03", "failed": 1, "count": 1},
     "Cabinet 3 (0x03): 1 of 1 PING failed after all retries: check the bus cable and termination"),
    ("commission.dead_leds", {"cabinet": 7, "address": "0x07", "count": 1}, "Cabinet 7 (0x07): 1 dead LED"),
    ("commission.dead_leds", {"cabinet": 2, "address": "0x02", "count": 3}, "Cabinet 2 (0x02): 3 dead LEDs"),
    ("step.detect", {"count": 1, "cards": 8}, "1 dead LED on 8 cards"),
    ("step.detect", {"count": 3, "cards": 1}, "3 dead LEDs on 1 card"),
])
def test_english_says_one_not_ones(key, fields, en):
    assert finding_text({"key": key, "fields": fields}, "en") == en


def test_numbers_times_and_lists_are_formatted_for_the_page():
    f = {"key": "clock.backwards",
         "fields": {"now": "2026-11-20T17:00:00+08:00", "last": "2026-11-21T10:00:00Z"}}
    assert finding_text(f, "en") == ("The clock says 2026-11-20 09:00:00 UTC, before the last recorded run "
                                     "(2026-11-21 10:00:00 UTC): it went backwards")
    mixed = {"key": "firmware.mixed", "fields": {"n": 2, "versions": ["1.0.0", "1.0.1"]}}
    assert finding_text(mixed, "en").endswith("1.0.0, 1.0.1")
    assert finding_text(mixed, "zh").endswith("1.0.0、1.0.1")
    hot = {"key": "env.hot", "fields": {"cabinet": 3, "address": 3, "temp_c": 91.54, "limit_c": 85.0}}
    assert "(0x03) runs hot at 91.5 °C (limit 85 °C)" in finding_text(hot, "en")


def test_unknown_finding_keys_fall_back_to_the_checks_text_or_key_and_fields():
    tomorrow = {"key": "psu.ripple", "fields": {"cabinet": 2, "ripple_mv": 180.25}}
    assert finding_text(tomorrow, "en") == "psu.ripple: cabinet=2, ripple_mv=180.2"
    assert finding_text(tomorrow, "zh") == "psu.ripple: cabinet=2, ripple_mv=180.2"
    told = "Ripple of 180 mV on cabinet 2"
    assert finding_text({**tomorrow, "text": told}, "zh") == told
    assert finding_text({"key": "psu.ok"}, "en") == "psu.ok"
    # A known key whose check forgot a field still prints, with a dash for the gap.
    assert finding_text({"key": "env.fan", "fields": {"cabinet": 4}}, "en") == (
        "Cabinet 4 (—): its fan has stopped (— rpm): replace it")
    with pytest.raises(ValueError, match="'fr'"):
        finding_text(tomorrow, "fr")


@pytest.mark.parametrize("lang", i18n.LANGS)
def test_every_check_has_a_title_what_it_measures_and_its_limits(lang):
    for cid in SPEC_CHECKS:
        assert check_title(cid, lang) != cid
        for part in ("measures", "limits"):
            text = check_about(cid, part, lang)
            assert text and not any(name for _, name, _, _ in string.Formatter().parse(text)), (cid, part)
    assert check_title("psu.ripple", lang) == "psu.ripple"
    assert check_about("psu.ripple", "limits", lang) is None


# --- the page -------------------------------------------------------------------------------------

def test_the_page_reads_top_to_bottom_in_english(report):
    root = as_xml(render_inspection_html(report))
    assert [h.text for h in root.iter("h2")] == [
        "Summary", "The wall, seen from the front", "Compared with the previous inspection", "Checks",
        "Cabinets", "Dead LEDs", "Signatures"]
    head = text_of(root.find(".//header"))
    for words in ("Lobby wall", "FAIL", "Quarterly inspection", "on schedule", "svc-anna", "12", "lobby.toml",
                  "1024 × 512 px · 16 cabinets", "2026-11-22 10:00:00 UTC", "31.2 s", "ctrl-lobby",
                  "/dev/ttyAMA0 at 921600 baud"):
        assert words in head, words
    sigs = [h.text for h in section(root, "signatures").iter("h3")]
    assert sigs == ["Service engineer", "Customer"]
    assert "was inspected" in text_of(section(root, "signatures"))


def test_the_page_in_chinese(report):
    html = render_inspection_html(report, lang="zh")
    root = as_xml(html)
    assert root.get("lang") == "zh"
    assert [h.text for h in root.iter("h2")] == [
        "结论摘要", "屏体示意图（正面视图）", "与上次巡检对比", "检测项目", "箱体明细", "坏点明细", "签字确认"]
    head = text_of(root.find(".//header"))
    assert "不合格" in head and "季度巡检" in head and "定时执行" in head and "巡检报告" in head
    assert "3 号箱体（0x03）温度过高，达 91.5 °C（上限 85 °C），请检查风扇和通风" in html
    assert "售后工程师" in html and "客户" in html
    report["lang"] = "zh"
    assert render_inspection_html(report) == html


@pytest.mark.parametrize("result, en, zh", [
    ("pass", "PASS", "合格"), ("warn", "WARNING", "需关注"), ("fail", "FAIL", "不合格"),
    ("error", "INCOMPLETE", "未完成"),
])
def test_the_badge_names_every_result(report, result, en, zh):
    report["result"] = result
    for lang, word in (("en", en), ("zh", zh)):
        (badge,) = by_class(as_xml(render_inspection_html(report, lang=lang)), "div", "badge")
        assert badge.text == word and badge.get("class") == f"badge {result}"


def test_summary_counts_outcomes_and_lists_failures_then_errors_then_warnings(report):
    root = as_xml(render_inspection_html(report))
    summary = section(root, "summary-section")
    counts = {d.get("class").split()[1]: d.find("b").text for d in by_class(summary, "div", "count")}
    assert counts == {"out-pass": "5", "out-warn": "2", "out-fail": "3", "out-error": "1"}
    items = summary.findall(".//ul/li")
    outcomes = [li.get("class").split()[1] for li in items]
    assert outcomes == ["out-fail"] * 4 + ["out-error"] + ["out-warn"] * 7
    first = text_of(items[0])
    assert "Cabinet 6 (0x06) does not answer" in first and "Cards present" in first
    assert "All 15 cards hold" not in text_of(summary)          # passes are under the checks, not here


def test_summary_says_when_nothing_needs_attention(report):
    for check in report["checks"]:
        check["outcome"] = "pass"
        check["findings"] = [f for f in check["findings"] if f["outcome"] == "pass"]
    report["counts"] = None                                   # worked out from the checks instead
    root = as_xml(render_inspection_html(report))
    summary = section(root, "summary-section")
    assert "Every check passed: nothing needs attention." in text_of(summary)
    counts = {d.get("class").split()[1]: d.find("b").text for d in by_class(summary, "div", "count")}
    assert counts == {"out-pass": "11", "out-warn": "0", "out-fail": "0", "out-error": "0"}


def test_every_check_shows_what_it_measures_its_limits_outcome_findings_and_duration(report):
    checks = section(as_xml(render_inspection_html(report)), "checks")
    blocks = by_class(checks, "div", "check")
    assert [b.get("id") for b in blocks] == [f"check-{c['id']}" for c in report["checks"]]
    env = text_of(next(b for b in blocks if b.get("id") == "check-cards.environment"))
    for words in ("Temperature, supply and fan", "each card's temperature", "fail: 85 °C and above", "failed",
                  "0.1 s", "hottest °C 91.5",
                  "Cabinet 7 (0x07) runs warm at 74 °C (warning from 70 °C)"):
        assert words in env, words
    frameloop = text_of(next(b for b in blocks if b.get("id") == "check-frameloop.budget"))
    assert "could not run" in frameloop and "the frame loop did not answer within 2 s" in frameloop


def test_a_check_this_release_does_not_know_still_prints(report):
    report["checks"].append({"id": "psu.ripple", "outcome": "warn", "duration_s": 1.0, "values": {},
                             "findings": [{"outcome": "warn", "subject": "card:0x02", "key": "psu.ripple",
                                           "fields": {"ripple_mv": 180}}]})
    (block,) = [b for b in by_class(as_xml(render_inspection_html(report)), "div", "check")
                if b.get("id") == "check-psu.ripple"]
    assert block.find(".//h3").text == "psu.ripple"
    assert "psu.ripple: ripple_mv=180" in text_of(block)


def test_comparison_shows_new_and_fixed_findings_dead_leds_and_temperatures(report):
    cmp = section(as_xml(render_inspection_html(report)), "comparison")
    text = text_of(cmp)
    assert "Previous inspection: run 11, 2026-08-22 10:00:00 UTC, result WARNING." in text
    (new,) = by_class(cmp, "div", "new-findings")
    assert [li.get("class") for li in new.iter("li")] == ["finding out-fail"] * 2
    assert "Cabinet 3 (0x03) runs hot at 91.5 °C" in text_of(new)
    (fixed,) = by_class(cmp, "div", "fixed-findings")
    assert "fixed" in text_of(fixed) and "Cabinet 10 (0x0A): its fan has stopped" in text_of(fixed)
    assert [li.get("class") for li in fixed.iter("li")] == ["finding out-pass"]     # fixed is good news
    (dead,) = by_class(cmp, "div", "dead-change")
    assert "3 at the previous inspection, 4 now: 2 new, 1 fixed." in text_of(dead)
    rows = [[text_of(td) for td in tr] for tr in dead.findall(".//tbody/tr")]
    assert [(r[0], r[1], r[-1]) for r in rows] == [("0x05", "9", "new"), ("0x0C", "0", "new"),
                                                   ("0x0A", "4", "fixed")]
    assert rows[2][4] == "(451, 291)"
    (temps,) = by_class(cmp, "div", "temperature")
    hot = next(tr for tr in temps.findall(".//tbody/tr") if text_of(tr).startswith("0x03"))
    assert [text_of(td) for td in hot] == ["0x03", "70 °C", "91.5 °C", "+21.5 °C"]
    assert hot.find(".//span[@class='delta up']") is not None
    assert hot.find(".//span[@class='temp hot']") is not None


def test_comparison_says_when_nothing_changed(report):
    report["comparison"].update(new_findings=[], fixed_findings=[],
                                dead_leds={"previous": 4, "now": 4, "new": [], "fixed": []})
    text = text_of(section(as_xml(render_inspection_html(report)), "comparison"))
    for words in ("No new findings.", "No fixed findings.",
                  "4 at the previous inspection, 4 now: 0 new, 0 fixed.",
                  "No dead LED came or went."):
        assert words in text, words


def test_dead_leds_without_an_earlier_detection_to_compare_with(report):
    report["comparison"]["dead_leds"] = None
    (dead,) = by_class(section(as_xml(render_inspection_html(report)), "comparison"), "div", "dead-change")
    assert text_of(dead).endswith("No earlier run looked for dead LEDs: "
                                  "there is nothing to compare them with.")


@pytest.mark.parametrize("lang, words", [
    ("en", "This is the first inspection on record for this screen: "
           "there is nothing to compare it with yet."),
    ("zh", "这是该屏体的第一份巡检记录，暂无上次巡检可供对比。"),
])
def test_first_inspection_on_record(lang, words):
    cmp = section(as_xml(render_inspection_html(first_inspection(), lang=lang)), "comparison")
    assert words in text_of(cmp)
    assert not by_class(cmp, "div", "new-findings") and not by_class(cmp, "div", "temperature")
    # A history of one: its row, no line to draw.
    (trend,) = by_class(cmp, "div", "trend")
    assert len(trend.findall(".//tbody/tr")) == 1 and not list(trend.iter(f"{SVG}svg"))


def test_trend_lists_every_run_marks_this_one_and_draws_two_lines(report):
    (trend,) = by_class(section(as_xml(render_inspection_html(report)), "comparison"), "div", "trend")
    rows = trend.findall(".//tbody/tr")
    assert [text_of(r.find("td")) for r in rows] == ["8", "9", "11", "12this run"]
    assert [r.get("class") for r in rows] == [None, None, None, "this-run"]
    cells = [[text_of(td) for td in r] for r in rows]
    assert cells[1][2:] == ["WARNING", "—", "68.2 °C"] and cells[2][2:] == ["WARNING", "3", "72.5 °C"]
    lines = list(trend.iter(f"{SVG}svg"))
    assert len(lines) == 2
    # Dead LEDs: run 9 (a quick check) has no count, so the line breaks there.
    dots = [len(list(svg.iter(f"{SVG}circle"))) for svg in lines]
    assert dots == [3, 4]


def test_wall_rings_the_new_dead_leds_and_explains_the_ring(report):
    root = section(as_xml(render_inspection_html(report)), "wall")
    markers = groups(root, "dead-led")
    assert len(markers) == 4
    new = groups(root, "new")
    assert len(new) == 2 and all(len(by_class(g, f"{SVG}circle", "new-ring")) == 1 for g in new)
    legend = [t.text for g in groups(root, "legend") for t in g.iter(f"{SVG}text")]
    assert "new since the last inspection" in legend


def test_acceptance_pictures_have_no_ring_and_no_ring_legend():
    accepted = sample_report()
    svg = wall_svg(accepted["screen"], accepted["cabinets"])
    assert "new-ring" not in svg and "new since the last inspection" not in svg
    assert "new-ring" not in render_acceptance_html(accepted)


def test_dead_led_table_marks_new_ones(report):
    dead = section(as_xml(render_inspection_html(report)), "dead-leds")
    assert "4 dead LEDs on 2 cabinets." in text_of(dead)
    rows = [[text_of(td) for td in tr] for tr in dead.findall(".//tbody/tr")]
    assert [(r[0], r[1], r[-1]) for r in rows] == [("0x05", "2", ""), ("0x05", "9", "new"),
                                                   ("0x05", "15", ""), ("0x0C", "0", "new")]


def test_a_quick_check_says_it_did_not_look_for_dead_leds(report):
    report["profile"] = "quick"
    leds = next(ch for ch in report["checks"] if ch["id"] == "cards.leds")
    leds["values"]["dead_leds"] = None          # what the check says when it ran no detection
    root = as_xml(render_inspection_html(report))
    for ident in ("dead-leds", "comparison"):
        assert "This run did not look for dead LEDs" in text_of(section(root, ident)), ident
    assert "Quick check" in text_of(root.find(".//header"))


def test_every_string_from_the_json_is_escaped(report):
    evil = "<script>alert('x')</script>"
    report["screen"]["name"] = evil
    report["started_by"] = '"><img src=x onerror=alert(1)>'
    report["profile"] = "<b>custom</b>"
    report["checks"][0]["id"] = "<i>bus</i>"
    report["checks"][0]["values"] = {"<u>k</u>": "</li><b>v</b>"}
    report["checks"][1]["findings"][0]["fields"]["address"] = "</span></li></ul><b>x</b>"
    report["checks"].append({"id": "x", "outcome": "<em>odd</em>", "findings": [
        {"outcome": "warn", "key": "new.thing", "text": "</dd><script>bad()</script>"}]})
    report["comparison"]["previous_result"] = "<blink>warn</blink>"
    report["comparison"]["fixed_findings"][0]["fields"]["fan_rpm"] = "<svg onload=alert(1)>"
    report["history"][0]["result"] = "<marquee>"
    report["signatures"] = ["service", "<i>auditor</i>"]
    html = render_inspection_html(report)
    for tag in ("<script", "<img", "<b>custom", "<b>v", "<b>x", "<i>", "<u>", "<em>", "<blink", "<marquee",
                "<svg onload"):
        assert tag not in html, tag
    root = as_xml(html)                         # any injected tag would break the parse
    assert root.find(".//h1").text == evil
    assert "</dd><script>bad()</script>" in text_of(section(root, "checks"))
    style = root.find("head/style").text
    assert "</" not in style


def test_no_external_references(report):
    html = render_inspection_html(report)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//|file:)""", html, re.I)
    assert "<link" not in html and "<script" not in html and "@import" not in html
    assert "@font-face" not in html
    assert set(re.findall(r"url\(([^)]*)\)", html)) == {"#lw-hatch"}
    assert set(re.findall(r"https?://[^\"'\s)]+", html)) == {"http://www.w3.org/2000/svg"}
    # Ids are unique, so the hatch reference and anchors cannot point at the wrong element.
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids))


def test_print_css_is_a4_with_page_numbers_and_the_report_title(report):
    style = as_xml(render_inspection_html(report)).find("head/style").text
    assert "@media print" in style and "size: A4" in style and "counter(pages)" in style
    assert "Inspection report" in style           # the running header of every printed page


@pytest.mark.parametrize("change, match", [
    ({"kind": "acceptance"}, "not an inspection report"),
    ({"version": 2}, "version 2"),
    ({"screen": None}, "'screen'"),
])
def test_reports_it_cannot_render_are_refused_in_words(report, change, match):
    report.update(change)
    with pytest.raises(ReportError, match=match):
        render_inspection_html(report)


def test_the_acceptance_renderer_refuses_an_inspection(report):
    with pytest.raises(ReportError, match="not an acceptance report"):
        render_acceptance_html(report)


def test_write_inspection_writes_the_json_and_the_page(report, tmp_path):
    json_path, html_path = write_inspection(report, tmp_path / "out", stem="lobby-2026-11-22")
    assert (json_path.name, html_path.name) == ("lobby-2026-11-22.json", "lobby-2026-11-22.html")
    assert json.loads(json_path.read_text(encoding="utf-8")) == report
    assert html_path.read_text(encoding="utf-8") == render_inspection_html(report)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([json_path.name, html_path.name])


def test_write_inspection_writes_nothing_for_a_report_it_cannot_render(report, tmp_path):
    report["version"] = 99
    with pytest.raises(ReportError):
        write_inspection(report, tmp_path)
    assert list(tmp_path.iterdir()) == []
