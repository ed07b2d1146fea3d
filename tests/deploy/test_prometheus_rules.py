"""The alert rules in ``deploy/prometheus/`` under ``promtool test rules`` (issue 17 item 4).

``promtool`` comes with Debian's ``prometheus`` package, which ``.ci/run``
installs: without it the test is skipped on a developer's machine and fails
in CI (``CI`` set).  Every alert must have a case in which it fires — a
rule nobody tested is a rule nobody knows fires.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from support.prometheus_tools import tool

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "ledwarden-rules.yml"
TESTS = ROOT / "deploy" / "prometheus" / "ledwarden-rules.test.yml"


def alerts() -> set[str]:
    doc = yaml.safe_load(RULES.read_text())
    return {rule["alert"] for group in doc["groups"] for rule in group["rules"] if "alert" in rule}


def test_every_alert_has_a_case_in_which_it_fires_and_one_in_which_it_does_not():
    doc = yaml.safe_load(TESTS.read_text())
    cases = [case for test in doc["tests"] for case in test.get("alert_rule_test", [])]
    fires = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet: set[str] = set()
    for test in doc["tests"]:
        # a silent case: an empty expectation, or a series in the test the alert leaves alone
        for case in test.get("alert_rule_test", []):
            if not case.get("exp_alerts") or len(test["input_series"]) > len(case["exp_alerts"]):
                quiet.add(case["alertname"])
    assert alerts() - fires == set(), "alerts without a case in which they fire"
    assert alerts() - quiet == set(), "alerts without a case in which they stay quiet"
    assert len(alerts()) == 10


def test_the_rules_pass_promtool():
    promtool = tool("promtool")
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    done = subprocess.run([promtool, "test", "rules", TESTS.name], cwd=TESTS.parent,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
