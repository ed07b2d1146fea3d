"""What the acceptance report claims, from a real commissioning run over simulated cards.

An unattended run (``--yes``) cannot vouch for the patterns: the report says
they were not watched, in its verdict, its patterns table and its summary,
and the summary carries every warning of the closing self-test.  One
condition seen twice (by commissioning and by its self-test) is said once,
and a Chinese page holds no English sentence.
"""

from __future__ import annotations

import json

from support.page_text import english_runs, visible_text

from controller.report import render_acceptance_html
from controller.report.i18n import LANGS
from hw.sim.faults import FaultPlan


def commission(rig, *, lang: str = "en") -> dict:
    """Commission unattended; the acceptance report as the service wrote it."""
    async def go():
        job = rig.service.start_commissioning(True, "test", lang=lang)
        await job.task
        return job
    job = rig.run(go())
    assert job.state == "succeeded", job.error
    path = rig.service.reports_dir / job.result["report"]["json"]
    return json.loads(path.read_text(encoding="utf-8")) | {"job_summary": job.result["summary"]}


def test_an_unattended_run_with_a_warm_cabinet_is_not_a_plain_pass(rig):
    rig.sim.set_plan(FaultPlan().with_card(3, temp_c=75.0))       # warm: a warning, nothing fails
    report = commission(rig)
    assert report["result"] == "unwatched"
    assert {(p["confirmed"], p["how"]) for p in report["patterns"]} == {(None, "unattended")}
    keys = [(m["key"], m.get("subject")) for m in report["summary"]]
    assert ("commission.not_watched", None) in keys
    assert ("env.warm", "card:0x03") in keys                      # the self-test's warning
    html = render_acceptance_html(report)
    text = " ".join(visible_text(html))
    assert "PASS · NOT WATCHED" in text and "Nobody watched the test patterns" in text
    assert "Cabinet 3 (0x03) runs warm at 75 °C" in text
    patterns = html[html.index('class="patterns"'):html.index('class="steps"')]
    assert ">yes<" not in patterns and patterns.count("not watched") >= 6
    zh = " ".join(visible_text(render_acceptance_html(report, lang="zh")))
    assert "合格 · 画面未经目视确认" in zh and "温度偏高" in zh and "无人目视确认" in zh


def test_one_condition_once_capitalised_counted_and_worded_for_customers(rig):
    rig.sim.set_plan(FaultPlan().with_card(3, temp_c=91.5).with_card(6, fan_rpm=0)
                     .with_card(2, dead_leds=frozenset({(0, 10, 5, 0), (9, 33, 17, 1), (9, 34, 17, 1)}))
                     .with_card(7, dead_leds=frozenset({(15, 2, 30, 2)})))
    report = commission(rig)
    assert report["result"] == "fail"
    conditions = [(m["key"], m.get("subject")) for m in report["summary"]]
    assert len(conditions) == len(set(conditions)), conditions
    assert conditions.count(("env.hot", "card:0x03")) == 1
    lines = report["job_summary"]
    assert all(line[0].isupper() for line in lines), lines
    assert "Cabinet 2 (0x02): 3 dead LEDs" in lines and "Cabinet 7 (0x07): 1 dead LED" in lines
    assert not any("LED(s)" in line for line in lines)
    page = " ".join(visible_text(render_acceptance_html(report)))
    assert "stopped" in page and "no fan" not in page


def test_a_chinese_acceptance_report_is_chinese_throughout(rig):
    rig.sim.set_plan(FaultPlan().with_card(3, temp_c=91.5).with_card(4, temp_c=75.0).with_card(6, fan_rpm=0)
                     .with_card(2, dead_leds=frozenset({(0, 10, 5, 0)})))
    report = commission(rig, lang="zh")
    assert report["lang"] == "zh"
    assert all(not any(c.isascii() and c.isalpha() for c in line[:3]) for line in report["job_summary"])
    for lang in LANGS:
        html = render_acceptance_html(report, lang=lang)
        text = " ".join(visible_text(html))
        assert "module_numbers" not in text and "selftest" not in text
    assert english_runs(render_acceptance_html(report, lang="en")) != []   # the English page is English
    assert english_runs(render_acceptance_html(report, lang="zh")) == []
