"""The inspection report: the page a service engineer hands the customer after a self-test run.

Service engineers inspect every screen four times a year; the self-test
runner writes the run as a JSON dict (its shape is in ``docs/reports.md``)
and this module turns it into one self-contained HTML page, in the style and
with the shared parts of the acceptance report (:mod:`.page`,
:mod:`.tables`, the wall of :mod:`.wall`).  As there, the JSON is the record
and the page a rendering of it, in English or Chinese whatever language
the run was started in.

The page reads top to bottom the way an engineer and a customer go through
it: the verdict, which inspection and when; what needs attention (failures
and warnings first); the wall's health at a glance (temperature tints, dead
LEDs, new ones ringed); what changed since the previous inspection; then
the evidence — every check with what it measures, its limits and its
findings, every cabinet, every dead LED — and the signatures last.
"""

from __future__ import annotations

from pathlib import Path

from controller.jsonin import JsonObject
from controller.report.comparison import comparison
from controller.report.findings import (OUTCOMES, check_about, check_title, finding_item, format_value,
                                        led_detection_ran, outcome_class, outcome_tag)
from controller.report.html import Markup, el, join
from controller.report.i18n import check_lang, fmt_duration, label, t
from controller.report.page import (badge, check_report, css, document, empty, footer, header, run_fields,
                                    screen_fields, section, signatures, write_report)
from controller.report.tables import cabinet_table, dead_led_table
from controller.report.wall import wall_svg

KIND = "inspection"
VERSION = 1


#: Who signs when the report does not name its own roles.
DEFAULT_SIGNATURES = ("service", "customer")

#: The order findings need attention in: what failed, what could not be checked, then warnings.
ATTENTION = ("fail", "error", "warn")


def render_inspection_html(report: JsonObject, lang: str | None = None) -> str:
    """The whole HTML document for an inspection report, in ``lang`` (default: the report's)."""
    check_report(report, KIND, VERSION, "the self-test run")
    lang = check_lang(lang or report.get("lang") or "en")
    screen = report["screen"]
    cabinets = report.get("cabinets") or []
    detected = led_detection_ran(report)
    running = f"{t('report.inspection', lang)} — {screen.get('name', '')}"
    body = [
        _header(report, lang),
        section("summary-section", t("section.summary", lang), _summary(report, lang)),
        section("wall", t("section.wall", lang),
                el("figure", None, Markup(wall_svg(screen, cabinets, lang=lang)))),
        section("comparison", t("section.comparison", lang), comparison(report, detected, lang)),
        section("checks", t("section.checks", lang), _checks(report.get("checks") or [], lang)),
        section("cabinets", t("section.cabinets", lang), cabinet_table(cabinets, lang)),
        section("dead-leds", t("section.dead_leds", lang),
                dead_led_table(cabinets, lang, mark_new=True) if detected
                else empty("empty.no_detection", lang)),
        section("signatures", t("section.signatures", lang),
                signatures(list(report.get("signatures") or DEFAULT_SIGNATURES), "sig.inspection_statement",
                           lang)),
        footer(report, KIND, lang),
    ]
    software = (report.get("controller") or {}).get("software", "")
    return document(lang, running, software, css(running, report.get("started"), lang, _CSS), body)


def write_inspection(report: JsonObject, directory: Path, stem: str = "inspection") -> tuple[Path, Path]:
    """Write ``stem.json`` and ``stem.html`` into ``directory``; returns both paths.

    Rendered first, so a report that cannot be rendered writes nothing; each
    file is replaced atomically (see :func:`.page.write_report`).
    """
    return write_report(report, render_inspection_html(report), directory, stem)


# --- sections -------------------------------------------------------------------------------------

def _header(report: JsonObject, lang: str) -> Markup:
    profile, trigger = report.get("profile"), report.get("trigger")
    fields = [
        ("field.profile", label("profile", profile, lang) if profile else "—", False, False),
        ("field.trigger", label("trigger", trigger, lang) if trigger else "—", False, False),
        ("field.started_by", report.get("started_by") or "—", True, False),
        ("field.run", "—" if report.get("id") is None else str(report["id"]), False, False),
        *screen_fields(report, lang),
        *run_fields(report, lang),
    ]
    return header(f"ledwarden · {t('report.inspection', lang)}", report["screen"].get("name"),
                  badge(report.get("result"), OUTCOMES, lang), fields, lang)


def _summary(report: JsonObject, lang: str) -> Markup:
    """How many checks ended how, then every finding that needs attention, the worst first."""
    checks = report.get("checks") or []
    counts = report.get("counts") or {o: sum(c.get("outcome") == o for c in checks) for o in OUTCOMES}
    chips = el("div", {"class": "counts"}, *(
        el("div", {"class": f"count {outcome_class(o)}" + ("" if counts.get(o) else " zero")},
           el("span", None, t(f"count.{o}", lang)), el("b", None, str(counts.get(o, 0))))
        for o in OUTCOMES))
    items = [finding_item(f, lang, check=c.get("id"))
             for outcome in ATTENTION for c in checks for f in c.get("findings") or []
             if f.get("outcome") == outcome]
    attention = (el("ul", {"class": "findings"}, *items) if items else empty("empty.attention", lang))
    return join([chips, el("h3", None, t("section.attention", lang)), attention])


def _checks(checks: list[JsonObject], lang: str) -> Markup:
    """Every check in the runner's order (the same from quarter to quarter), each a block of its own."""
    if not checks:
        return empty("empty.checks", lang)
    return join(_check(c, lang) for c in checks)


def _check(check: JsonObject, lang: str) -> Markup:
    cid, outcome = check.get("id") or "?", check.get("outcome")
    about = [(key, check_about(cid, part, lang)) for key, part in
             (("inspection.measures", "measures"), ("inspection.limits", "limits"))]
    values = _headline_values(check.get("values") or {})
    if values:
        about.append(("inspection.values", el("span", {"class": "mono"}, join(
            (f"{label('measure', name, lang)} {format_value(name, value, lang)}"
             for name, value in values.items()), " · "))))
    findings = check.get("findings") or []
    return el("div", {"class": f"check {outcome_class(outcome)}", "id": f"check-{cid}"},
              el("div", {"class": "check-head"},
                 el("h3", None, check_title(cid, lang)), outcome_tag(outcome, lang),
                 el("span", {"class": "dur"}, fmt_duration(check.get("duration_s"), lang))),
              el("dl", {"class": "about"}, *(join([el("dt", None, t(key, lang)), el("dd", None, text)])
                                             for key, text in about if text)),
              el("ul", {"class": "findings"}, *(finding_item(f, lang) for f in findings)) if findings
              else empty("empty.findings", lang))


def _headline_values(values: JsonObject) -> JsonObject:
    """The measured figures the page shows, each under its translated name: numbers, times and
    names.  Per-card figures (nested objects) and free text (a damaged fault log's verdict,
    which its finding words) stay in the JSON record; "ok" is shown as the page's own word."""
    shown = {}
    for name, value in values.items():
        if isinstance(value, (dict, list)) or value is None:
            continue
        if isinstance(value, str) and name not in ("backend", "now", "built", "last_run"):
            if value != "ok":
                continue
        shown[name] = value
    return shown


_CSS = """\
.badge.warn { color: var(--warn); background: #fffbeb; font-weight: 800; }
.badge.error { color: #5b21b6; background: #f5f3ff; }
h3 { font-size: 13.5px; margin: 18px 0 6px; }
.counts { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 12px; margin: 0 0 6px; }
.count { padding: 7px 12px 8px; background: var(--soft); border-top: 4px solid var(--rule);
         border-radius: 4px; }
.count span { display: block; font-size: 11px; color: var(--muted); text-transform: uppercase;
              letter-spacing: .05em; }
.count b { display: block; font-size: 26px; line-height: 1.15; }
.count.zero b { color: var(--muted); font-weight: 400; }
.tag { display: inline-block; font-size: 11px; font-weight: 700; padding: 0 6px; border-radius: 3px;
       margin-right: 8px; white-space: nowrap; color: var(--muted); background: var(--soft); }
.tag.out-pass, .tag.fixed { color: #14532d; background: #dcfce7; }
.tag.out-warn { color: #78350f; background: #fef3c7; }
.tag.out-fail { color: #7f1d1d; background: #fee2e2; }
.tag.out-error { color: #4c1d95; background: #ede9fe; }
.tag.new { color: #fff; background: var(--ink); }
ul.findings { list-style: none; margin: 0; padding: 0; }
ul.findings li { padding: 2px 0 2px 8px; border-left: 3px solid var(--rule); margin: 4px 0; }
ul.findings .of { color: var(--muted); font-size: 11.5px; white-space: nowrap; }
ul.findings .of::before { content: " · "; }
.check { border: 1px solid var(--rule); border-left: 4px solid var(--rule); border-radius: 4px;
         padding: 8px 12px 10px; margin: 0 0 10px; }
.count.out-pass { border-top-color: var(--pass); }
.count.out-warn { border-top-color: var(--warn); }
.count.out-fail { border-top-color: var(--fail); }
.count.out-error { border-top-color: #5b21b6; }
.check.out-pass, ul.findings li.out-pass { border-left-color: var(--pass); }
.check.out-warn, ul.findings li.out-warn { border-left-color: var(--warn); }
.check.out-fail, ul.findings li.out-fail { border-left-color: var(--fail); }
.check.out-error, ul.findings li.out-error { border-left-color: #5b21b6; }
.check-head { display: flex; align-items: baseline; gap: 10px; }
.check-head h3 { margin: 0; flex: 1; }
.check-head .tag { margin-right: 0; }
.dur { color: var(--muted); font-size: 12px; white-space: nowrap; }
.about { display: grid; grid-template-columns: max-content 1fr; gap: 1px 14px; margin: 4px 0 6px;
         font-size: 12.5px; }
.about dt { color: var(--muted); }
.about dd { margin: 0; }
.delta.up { color: var(--fail); font-weight: 700; }
.delta.down { color: var(--pass); font-weight: 700; }
.sparks { display: flex; flex-wrap: wrap; gap: 12px 36px; margin: 0 0 10px; }
.sparks figcaption { font-size: 11px; color: var(--muted); }
svg.spark { display: block; }
table.temps, table.trend { width: auto; min-width: 60%; }
tr.this-run > td { background: var(--soft); font-weight: 700; }
@media print {
  h3 { break-after: avoid; }
  .check, .counts, .sparks, .part.trend { break-inside: avoid; }
}
"""
