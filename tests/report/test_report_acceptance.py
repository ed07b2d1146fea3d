"""The acceptance report page: self-contained, escaped, complete, in English and Chinese."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from controller.report import ReportError, render_acceptance_html, write_acceptance
from controller.report.page import report_stem
from report_cases import sample_report


def as_xml(html: str) -> ET.Element:
    """The page is also well-formed XML: injected markup would break this parse."""
    assert html.startswith("<!DOCTYPE html>\n")
    return ET.fromstring(html.split("\n", 1)[1])


def section(root: ET.Element, klass: str) -> ET.Element:
    (found,) = [s for s in root.iter("section") if s.get("class") == klass]
    return found


def text_of(element: ET.Element) -> str:
    return "".join(element.itertext())


@pytest.fixture
def report() -> dict:
    return sample_report()


def test_screen_name_and_every_other_string_from_the_json_is_escaped(report):
    report["screen"]["name"] = "<script>alert('wall')</script>"
    report["summary"].append('<img src=x onerror="alert(1)">')
    report["cabinets"][0]["problems"] = ["</td></tr></table><b>loose</b>"]
    report["unexpected"][0]["serial"] = '"><svg onload=alert(1)>'
    report["steps"][0]["detail"] = "a & b"
    report["signatures"].append("<i>auditor</i>")
    html = render_acceptance_html(report)
    assert "<script" not in html and "<img" not in html and "<b>loose" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(&#x27;wall&#x27;)&lt;/script&gt;" in html
    root = as_xml(html)
    assert root.find("head/title").text == "Acceptance report — <script>alert('wall')</script>"
    assert root.find(".//h1").text == "<script>alert('wall')</script>"
    assert "a & b" in text_of(section(root, "steps"))
    # The running page header in CSS carries the name too, hex-escaped.
    style = root.find("head/style").text
    assert "</" not in style and "script" in style


def test_no_external_references(report):
    html = render_acceptance_html(report)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//|file:)""", html, re.I)
    assert "<link" not in html and "<script" not in html and "@import" not in html
    assert "@font-face" not in html
    assert set(re.findall(r"url\(([^)]*)\)", html)) == {"#lw-hatch"}     # only the wall's own hatch
    # The only URL-looking text is the SVG namespace, which is a name, not a fetch.
    assert set(re.findall(r"https?://[^\"'\s)]+", html)) == {"http://www.w3.org/2000/svg"}


def test_header_shows_verdict_dates_duration_and_controller(report):
    root = as_xml(render_acceptance_html(report))
    head = text_of(root.find(".//header"))
    for words in ("Lobby wall", "FAIL", "lobby.toml", "1024 × 512 px · 16 cabinets", "p25: 64 × 32 px, 1/16 scan",
                  "2026-11-22 10:00:00 UTC", "2026-11-22 10:03:12 UTC", "3 min 12 s", "0.1.0", "ctrl-lobby",
                  "/dev/ttyAMA0 at 921600 baud", report["controller"]["fingerprint"]):
        assert words in head, words
    report["result"] = "pass"
    badge = [d for d in as_xml(render_acceptance_html(report)).iter("div") if "badge" in d.get("class", "")]
    assert [(b.get("class"), b.text) for b in badge] == [("badge pass", "PASS")]


def test_every_cabinet_has_a_row_with_its_readings(report):
    root = as_xml(render_acceptance_html(report))
    table = section(root, "cabinets")
    rows = {tr.get("id"): tr for tr in table.iter("tr") if tr.get("id")}
    assert sorted(rows) == sorted(f"cabinet-{a}" for a in range(1, 17))
    hot = text_of(rows["cabinet-3"])
    for words in ("0x03", "row 1, column 3", "4C57202600000003", "91.5 °C", "5.04 V", "2400 rpm",
                  "over-temperature"):
        assert words in hot, words
    assert "0x06" in text_of(rows["cabinet-6"]) and "no answer" in text_of(rows["cabinet-6"])
    assert "missing" in rows["cabinet-6"].get("class")
    problems = [text_of(tr) for tr in table.iter("tr") if tr.get("class") == "problems"]
    assert any("does not answer: check its bus cable" in p for p in problems)
    assert len(problems) == sum(1 for c in report["cabinets"] if c["problems"])


def test_every_address_appears_in_the_wall_and_the_table(report):
    html = render_acceptance_html(report)
    for cab in report["cabinets"]:
        assert html.count(f"0x{cab['address']:02X}") >= 2


def test_wall_picture_is_embedded_with_one_marker_per_dead_led(report):
    root = as_xml(render_acceptance_html(report))
    svg = section(root, "wall").find(".//{http://www.w3.org/2000/svg}svg")
    markers = [g for g in svg.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "dead-led"]
    assert len(markers) == 4


def test_dead_led_list_other_sections_and_signatures(report):
    root = as_xml(render_acceptance_html(report))
    dead = section(root, "dead-leds")
    assert "4 dead LEDs on 2 cabinets." in text_of(dead)
    assert len(dead.findall(".//tbody/tr")) == 4
    assert "(161, 145)" in text_of(dead)
    assert "4C57202600000011" in text_of(section(root, "unexpected"))
    patterns = text_of(section(root, "patterns"))
    assert "seen by the operator" in patterns and "not watched (--yes, unattended)" in patterns
    assert "cabling against the screen file" in text_of(section(root, "steps"))
    sigs = section(root, "signatures")
    blocks = [d for d in sigs.iter("div") if d.get("class") == "sig"]
    assert [b.find("h3").text for b in blocks] == ["Installer", "Customer"]
    for b in blocks:
        assert [text_of(line) for line in b if line.tag == "div"] == ["Name", "Signature", "Date"]


def test_empty_sections_say_so(report):
    report.update(unexpected=[], patterns=[], steps=[], summary=[])
    for cab in report["cabinets"]:
        cab["dead_leds"] = []
    root = as_xml(render_acceptance_html(report))
    assert "No dead LEDs were found." in text_of(section(root, "dead-leds"))
    assert "No card outside the screen file answered." in text_of(section(root, "unexpected"))


def test_chinese_rendering(report):
    html = render_acceptance_html(report, lang="zh")
    root = as_xml(html)
    assert root.get("lang") == "zh" and '<html lang="zh">' in html
    headings = [h.text for h in root.iter("h2")]
    assert headings == ["结论摘要", "屏体示意图（正面视图）", "箱体明细", "配置文件以外的接收卡",
                        "测试画面", "检测步骤", "坏点明细", "签字确认"]
    assert "不合格" in text_of(root.find(".//header"))
    assert "无应答" in html and "安装方" in html and "客户" in html and "第 1 行第 3 列" in html
    # The report's own language is the default.
    report["lang"] = "zh"
    assert render_acceptance_html(report) == html


def test_unknown_language_names_it(report):
    with pytest.raises(ValueError, match="'de'"):
        render_acceptance_html(report, lang="de")


@pytest.mark.parametrize("change, match", [
    ({"kind": "selftest"}, "not an acceptance report"),
    ({"version": 2}, "version 2"),
    ({"screen": None}, "'screen'"),
])
def test_reports_it_cannot_render_are_refused_in_words(report, change, match):
    report.update(change)
    with pytest.raises(ReportError, match=match):
        render_acceptance_html(report)


def test_write_acceptance_writes_the_json_and_the_page(report, tmp_path):
    json_path, html_path = write_acceptance(report, tmp_path / "out", stem="lobby-2026-11-22")
    assert (json_path.name, html_path.name) == ("lobby-2026-11-22.json", "lobby-2026-11-22.html")
    assert json.loads(json_path.read_text(encoding="utf-8")) == report
    assert html_path.read_text(encoding="utf-8") == render_acceptance_html(report)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([json_path.name, html_path.name])
    assert html_path.stat().st_mode & 0o044      # readable by others, unlike a mkstemp file


def test_write_acceptance_writes_nothing_for_a_report_it_cannot_render(report, tmp_path):
    report["version"] = 99
    with pytest.raises(ReportError):
        write_acceptance(report, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_print_css_is_a4_with_page_numbers(report):
    style = as_xml(render_acceptance_html(report)).find("head/style").text
    assert "@media print" in style and "size: A4" in style and "counter(pages)" in style


def test_a_report_never_overwrites_another(report, tmp_path):
    # Two walls commissioned in the same second, or a demo run twice: both reports stay.
    first = write_acceptance(report, tmp_path, stem="acceptance-lobby-20261122T100000Z")
    report["screen"]["name"] = "Second wall"
    second = write_acceptance(report, tmp_path, stem="acceptance-lobby-20261122T100000Z")
    assert [p.name for p in second] == ["acceptance-lobby-20261122T100000Z-2.json",
                                        "acceptance-lobby-20261122T100000Z-2.html"]
    assert json.loads(first[0].read_text())["screen"]["name"] == "Lobby wall"
    assert json.loads(second[0].read_text())["screen"]["name"] == "Second wall"
    # a stray page of the first name moves the whole pair on, so JSON and page keep one stem
    (tmp_path / "acceptance-lobby-20261122T100000Z-3.html").write_text("someone else's")
    third = write_acceptance(report, tmp_path, stem="acceptance-lobby-20261122T100000Z")
    assert {p.stem for p in third} == {"acceptance-lobby-20261122T100000Z-4"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]      # no temporary left


@pytest.mark.parametrize("kind, name, started, run, stem", [
    ("acceptance", "Lobby wall", "2026-11-22T10:00:00Z", None, "acceptance-lobby-wall-20261122T100000Z"),
    ("inspection", "Lobby wall", "2026-11-22T18:00:05+08:00", 12, "inspection-lobby-wall-20261122T100005Z-run12"),
    ("inspection", "大厅屏 / B", "2026-11-22T10:00:00Z", 3, "inspection-b-20261122T100000Z-run3"),
    ("inspection", "", None, 3, "inspection-screen-undated-run3"),
])
def test_report_files_are_named_by_kind_screen_and_utc_time(kind, name, started, run, stem):
    assert report_stem(kind, name, started, run) == stem
