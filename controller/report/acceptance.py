"""The acceptance report: the page an installer and a customer sign when a screen is handed over.

The commissioning job produces the report as a JSON dict (its shape is in
``docs/reports.md``); this module turns that dict into one self-contained
HTML page and writes both side by side.  The JSON stays the record — the
HTML is a rendering of it and can be rebuilt from it at any time, in either
language (``render_acceptance_html(report, lang="zh")`` for a Chinese
vendor's engineer, whatever language the installer used).

The page reads top to bottom the way a customer checks it: the verdict and
what was tested, the summary sentences, the picture of the wall, then the
evidence (every cabinet, unexpected cards, patterns, steps, every dead LED)
and the signatures last.  It prints on A4 with running headers and page
numbers; colours are kept in print because the badge and the wall's tints
carry meaning.
"""

from __future__ import annotations

from pathlib import Path

from controller.jsonin import JsonObject
from controller.report.findings import message_text
from controller.report.html import Markup, el, join
from controller.report.i18n import check_lang, fmt_duration, label, t
from controller.report.page import (badge, check_report, css, document, empty, footer, header, run_fields,
                                    screen_fields, section, signatures, simple_table, status, write_report)
from controller.report.tables import cabinet_table, dead_led_table, module_types
from controller.report.wall import address_text, wall_svg

KIND = "acceptance"
VERSION = 1

#: The verdicts: ``unwatched`` is a pass nobody watched the test patterns of (``--yes``).
RESULTS = ("pass", "fail", "unwatched")


def render_acceptance_html(report: JsonObject, lang: str | None = None) -> str:
    """The whole HTML document for an acceptance report, in ``lang`` (default: the report's)."""
    check_report(report, KIND, VERSION, "the commissioning job")
    lang = check_lang(lang or report.get("lang") or "en")
    screen = report["screen"]
    cabinets = report.get("cabinets") or []
    running = f"{t('report.acceptance', lang)} — {screen.get('name', '')}"
    body = [
        _header(report, lang),
        _summary(report, lang),
        section("wall", t("section.wall", lang),
                el("figure", None, Markup(wall_svg(screen, cabinets, lang=lang)))),
        section("cabinets", t("section.cabinets", lang), cabinet_table(cabinets, lang)),
        section("unexpected", t("section.unexpected", lang), _unexpected(report, lang)),
        section("patterns", t("section.patterns", lang), _patterns(report, lang)),
        section("steps", t("section.steps", lang), _steps(report, lang)),
        section("dead-leds", t("section.dead_leds", lang), dead_led_table(cabinets, lang)),
        section("signatures", t("section.signatures", lang),
                signatures(report.get("signatures") or [], "sig.statement", lang)),
        footer(report, KIND, lang),
    ]
    software = (report.get("controller") or {}).get("software", "")
    return document(lang, running, software, css(running, report.get("started"), lang, _CSS), body)


def write_acceptance(report: JsonObject, directory: Path, stem: str = "acceptance") -> tuple[Path, Path]:
    """Write ``stem.json`` and ``stem.html`` into ``directory``; returns both paths.

    The HTML is rendered before anything is written, so a report that cannot
    be rendered leaves no half-written pair behind; each file is replaced
    atomically, so a reader never sees a truncated one.
    """
    return write_report(report, render_acceptance_html(report), directory, stem)


# --- sections -------------------------------------------------------------------------------------

def _header(report: JsonObject, lang: str) -> Markup:
    fields = [*screen_fields(report, lang),
              ("field.modules", module_types(report.get("cabinets") or [], lang), False, False),
              *run_fields(report, lang)]
    return header(f"ledwarden · {t('report.acceptance', lang)}", report["screen"].get("name"),
                  badge(report.get("result"), RESULTS, lang), fields, lang)


def _summary(report: JsonObject, lang: str) -> Markup:
    lines = report.get("summary") or []
    result = report.get("result")
    klass = "summary" if result == "pass" else "summary warn" if result == "unwatched" else "summary fail"
    content = (el("ul", {"class": klass}, *(el("li", None, message_text(s, lang)) for s in lines)) if lines
               else empty("empty.summary", lang))
    return section("summary-section", t("section.summary", lang), content)


def _unexpected(report: JsonObject, lang: str) -> Markup:
    rows = [[address_text(u["address"]) if u.get("address") is not None else "—", u.get("serial") or "—",
             u.get("model") or "—", message_text(u["problem"], lang) if u.get("problem") else "—"]
            for u in report.get("unexpected") or []]
    return simple_table("unexpected", [("col.address", "mono"), ("col.serial", "mono"),
                                       ("col.model", "mono"), ("col.problem", None)],
                        rows, lang, "empty.unexpected")


def _patterns(report: JsonObject, lang: str) -> Markup:
    rows = []
    for p in report.get("patterns") or []:
        how = p.get("how")
        watched = how in (None, "operator")
        # Only an operator confirms; "--yes" (recorded as confirmed by older releases) is not watched.
        seen = (status(bool(p.get("confirmed")), lang, "value.yes", "value.no")
                if watched and p.get("confirmed") is not None
                else el("span", {"class": "st unwatched"}, t("value.not_watched", lang)))
        rows.append([label("pattern", p.get("pattern"), lang), seen,
                     el("span", {"class": None if watched else "warn"},
                        label("how", how, lang) if how else "—")])
    return simple_table("patterns", [("col.pattern", None), ("col.confirmed", None), ("col.how", None)],
                        rows, lang, "empty.patterns")


def _steps(report: JsonObject, lang: str) -> Markup:
    rows = []
    for s in report.get("steps") or []:
        ok = (status(s["ok"], lang) if s.get("ok") is not None
              else el("span", {"class": "st unwatched"}, t("value.not_checked", lang)))
        took = fmt_duration(s["duration_s"], lang) if s.get("duration_s") is not None else None
        detail = message_text(s["detail"], lang) if s.get("detail") else ""
        rows.append([label("step", s.get("name"), lang), ok,
                     join([detail, el("span", {"class": "sub"}, took) if took else None])])
    return simple_table("steps", [("col.step", None), ("col.result", None), ("col.detail", None)],
                        rows, lang, "empty.steps")


_CSS = """\
.badge.unwatched { color: var(--warn); background: #fffbeb; font-size: 20px; }
.summary.warn { border-left-color: var(--warn); }
.st.unwatched { color: var(--warn); }
"""
