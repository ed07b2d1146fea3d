"""Self-tests through the host tool against a real controller process and simulated cards."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from test_end_to_end import host, rig  # noqa: F401  (the module-scoped controller rig)

from controller.report.page import report_stem


def test_selftest_run_history_and_report_in_both_languages(rig, capsys, tmp_path):  # noqa: F811
    out = tmp_path / "reports"
    assert host(rig, "installer", "selftest", "run", "--profile", "quick", "--out", str(out),
                "--json") == 1                                  # card 3 runs hot: fail
    report = json.loads(capsys.readouterr().out)
    assert report["profile"] == "quick" and report["result"] == "fail"
    env = next(ch for ch in report["checks"] if ch["id"] == "cards.environment")
    assert any(f["subject"] == "card:0x03" and f["key"] == "env.hot" for f in env["findings"])
    # named by screen, UTC start and run number, so other walls' runs of that number do not clash
    assert Path(report["saved"]["html"]).name == report_stem("inspection", "Demo wall", report["started"],
                                                             report["id"]) + ".html"
    assert Path(report["saved"]["html"]).read_text().startswith("<!DOCTYPE html>")

    assert host(rig, "viewer", "selftest", "history", "--json") == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert runs[0]["id"] == report["id"]

    page = tmp_path / "zh.html"
    assert host(rig, "viewer", "selftest", "report", str(report["id"]), "--html", "--lang", "zh",
                "-o", str(page)) == 0
    text = page.read_text(encoding="utf-8")
    ET.fromstring(text.split("\n", 1)[1])                       # well-formed after the doctype
    assert 'lang="zh"' in text and "箱体" in text

    assert host(rig, "viewer", "status", "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert status["last_selftest"]["id"] == report["id"]
    assert status["faults"]["active"] >= 1          # the hot card, filed by the self-test
    assert host(rig, "viewer", "status") == 0
    assert "faults " in capsys.readouterr().out

    assert host(rig, "viewer", "selftest", "list") == 0
    assert "cards.environment" in capsys.readouterr().out
    # viewers read; they cannot start a run
    assert host(rig, "viewer", "selftest", "run", "--profile", "quick") == 1
    err = capsys.readouterr().err
    assert "installer" in err, err
