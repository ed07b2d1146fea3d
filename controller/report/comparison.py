"""The inspection report's comparison with the previous inspection, and the trend over recent runs.

A quarterly inspection is signed because it says what changed: which
faults are new, which were fixed, whether the wall lost LEDs or runs hotter
than last time.  The self-test runner works this out (matching findings by
check, key and subject; see ``docs/reports.md``) and puts it in the report's
``comparison``; this module only prints it, so the JSON and the page can
never disagree about what is new.

When there is no previous inspection the section says so in a sentence:
"nothing to compare" is itself something the customer signs.
"""

from __future__ import annotations

from controller.jsonin import JsonObject
from controller.limits import HOT_C, WARM_C
from controller.report.findings import OUTCOMES, finding_item, outcome_class
from controller.report.html import Markup, el, join
from controller.report.i18n import fmt_number, fmt_temperature, fmt_time, t
from controller.report.page import empty, simple_table, thead
from controller.report.tables import LED_COLS, led_row
from controller.report.trend import sparkline
from controller.report.wall import address_text, temperature_level

#: A cabinet's temperature change is highlighted from this size on: smaller ones are the
#: weather and the time of day, not the cabinet.
NOTABLE_DELTA_C = 5.0

#: Sparkline point colours at the wall's warm and hot thresholds.
LEVEL_COLOURS = ((WARM_C, "#d97706"), (HOT_C, "#b91c1c"))


def comparison(report: JsonObject, detected: bool, lang: str) -> Markup:
    """The previous inspection, new and fixed findings, dead LEDs, temperatures, then the trend.

    ``detected`` says whether this run looked for dead LEDs; without it there
    is no dead-LED comparison to make, and the page says so.
    """
    cmp = report.get("comparison")
    parts: list[Markup] = []
    if not cmp:
        parts.append(empty("empty.comparison", lang))
    else:
        prev = cmp.get("previous_result")
        parts.append(el("p", {"class": "lead"}, t(
            "fmt.previous", lang, id="—" if cmp.get("previous_id") is None else cmp["previous_id"],
            when=fmt_time(cmp.get("previous_started")),
            result=t(f"result.{prev}", lang) if prev in OUTCOMES else (prev or "—"))))
        cabinets = report.get("cabinets") or []
        parts += [
            _part("new-findings", "section.new_findings", lang,
                  _findings(cmp.get("new_findings"), False, "empty.new_findings", lang)),
            _part("fixed-findings", "section.fixed_findings", lang,
                  _findings(cmp.get("fixed_findings"), True, "empty.fixed_findings", lang)),
            _part("dead-change", "section.dead_change", lang,
                  _dead_change(cmp.get("dead_leds"), cabinets, detected, lang)),
            _part("temperature", "section.temperature", lang,
                  _temperatures(cmp.get("temperature") or [], lang)),
        ]
    history = report.get("history") or []
    if history:
        parts.append(_part("trend", "section.trend", lang, _trend(history, report.get("id"), lang)))
    return join(parts)


def result_tag(result: str | None, lang: str) -> Markup:
    """A run's verdict as a small tag, in the badge's words (PASS, WARNING, …)."""
    if result in OUTCOMES:
        return el("span", {"class": f"tag {outcome_class(result)}"}, t(f"result.{result}", lang))
    return el("span", {"class": "tag out-other"}, result or "—")


def _part(ident: str, key: str, lang: str, content: Markup) -> Markup:
    return el("div", {"class": f"part {ident}"}, el("h3", None, t(key, lang)), content)


def _findings(findings: list[JsonObject] | None, fixed: bool, empty_key: str, lang: str) -> Markup:
    """New findings with their outcome; fixed ones tagged "fixed" (their sentence says what was wrong)."""
    if not findings:
        return empty(empty_key, lang)
    if fixed:
        tag = el("span", {"class": "tag fixed"}, t("value.fixed", lang))
        items = (finding_item(f, lang, check=f.get("check"), tag=tag, outcome="pass") for f in findings)
    else:
        items = (finding_item(f, lang, check=f.get("check")) for f in findings)
    return el("ul", {"class": "findings"}, *items)


def _dead_change(dead: JsonObject | None, cabinets: list[JsonObject], detected: bool, lang: str) -> Markup:
    """Previous and current counts, then each LED that came or went, new first."""
    if not detected:
        return empty("empty.no_detection", lang)
    if not dead:
        return empty("empty.no_dead_comparison", lang)     # no earlier run looked for them
    new, fixed = dead.get("new") or [], dead.get("fixed") or []
    lead = el("p", {"class": "lead"}, t("fmt.dead_change", lang, previous=dead.get("previous", "—"),
                                         now=dead.get("now", "—"), new=len(new), fixed=len(fixed)),
              _baseline(dead.get("baseline"), lang))
    by_address = {int(c["address"]): c for c in cabinets}
    rows = []
    for leds, word, klass in ((new, "value.new", "tag new"), (fixed, "value.fixed", "tag fixed")):
        for led in leds:
            cab = by_address.get(int(led["address"]), {"address": led["address"]})
            rows.append(led_row(cab, led, lang) + [el("span", {"class": klass}, t(word, lang))])
    table = simple_table("dead", LED_COLS + [("col.change", None)], rows, lang, "empty.dead_change")
    return join([lead, table])


def _baseline(source: JsonObject | None, lang: str) -> Markup | None:
    """Which run the dead LEDs are compared with: a self-test run, or the acceptance report."""
    if not isinstance(source, dict):
        return None
    when = fmt_time(source.get("started"))
    if source.get("kind") == "acceptance":
        return el("span", {"class": "sub"}, t("fmt.baseline_acceptance", lang, when=when))
    return el("span", {"class": "sub"}, t("fmt.baseline_selftest", lang, id=source.get("id", "—"), when=when))


def _temperatures(rows: list[JsonObject], lang: str) -> Markup:
    """Each cabinet's temperature then and now; the current one tinted like the wall."""
    out = []
    for row in rows:
        out.append([address_text(row["address"]) if row.get("address") is not None else "—",
                    fmt_temperature(row.get("previous_c")), _tinted(row.get("now_c")),
                    _delta(row.get("delta_c"), lang)])
    cols: list[tuple[str, str | None]] = [("col.cabinet", "mono"), ("col.previous", "num"),
                                          ("col.now", "num"), ("col.change", "num")]
    return simple_table("temps", cols, out, lang, "empty.temperature")


def _tinted(temp: float | None) -> Markup:
    """A temperature tinted warm or hot as the wall draws it."""
    level = temperature_level({"status": {"temperature_c": temp}})
    return el("span", {"class": f"temp {level}"}, fmt_temperature(temp))


def _delta(delta: float | None, lang: str) -> Markup | str:
    if delta is None:
        return "—"
    sign = "+" if delta > 0 else "\u2212" if delta < 0 else "±"
    klass = ("delta up" if delta >= NOTABLE_DELTA_C else "delta down" if delta <= -NOTABLE_DELTA_C
             else "delta")
    return el("span", {"class": klass}, t("fmt.delta_c", lang, sign=sign, value=fmt_number(abs(delta))))


def _trend(history: list[JsonObject], this_id, lang: str) -> Markup:
    """Sparklines of dead LEDs and the hottest cabinet over the runs, and the runs as a table."""
    dead = [h.get("dead_leds") for h in history]
    hottest = [h.get("max_temperature_c") for h in history]
    lines = [(sparkline(dead, t("trend.dead_leds", lang)), "trend.dead_leds"),
             (sparkline(hottest, t("trend.max_temperature", lang), zero_based=False, levels=LEVEL_COLOURS),
              "trend.max_temperature")]
    figures = [el("figure", None, svg, el("figcaption", None, t(key, lang))) for svg, key in lines if svg]
    rows = []
    for h in history:
        here = this_id is not None and h.get("id") == this_id
        rows.append(el("tr", {"class": "this-run" if here else None},
                       el("td", {"class": "num"}, str(h.get("id", "—")),
                          el("span", {"class": "sub"}, t("value.this_run", lang)) if here else None),
                       el("td", None, fmt_time(h.get("started"))),
                       el("td", None, result_tag(h.get("result"), lang)),
                       el("td", {"class": "num"}, "—" if h.get("dead_leds") is None else str(h["dead_leds"])),
                       el("td", {"class": "num"}, _tinted(h.get("max_temperature_c")))))
    cols = [("col.run", "num"), ("col.date", None), ("col.result", None), ("col.dead_leds", "num"),
            ("col.max_temperature", "num")]
    table = el("table", {"class": "trend"}, thead(cols, lang), el("tbody", None, *rows))
    return join([el("div", {"class": "sparks"}, *figures) if figures else None, table])
