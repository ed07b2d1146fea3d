"""The frame every report page shares: document, header, sections, tables, signatures, style, files.

The acceptance report and the inspection report are different documents
about the same wall, signed by the same kinds of people, so they look and
behave alike: one stylesheet, one header layout, one way to say a section
is empty, one signature block, one way to write the files.  Each report
module builds only its own sections and hands them to :func:`document`;
:func:`write_report` writes the pair.  A change to how a signed page prints
is then made once and holds for every report.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from string import Template

from controller.errors import ReportError
from controller.jsonin import JsonObject
from controller.report.html import Markup, css_string, el, esc, join
from controller.report.i18n import FONTS, MONO_FONT, fmt_duration, fmt_time, label, plural, t
from controller.report.wall import FILLS
from controller.timeutil import utc_compact

#: A header field: (i18n key of its label, value, monospace, spans the whole row).
Field = tuple[str, object, bool, bool]


def document(lang: str, title: str, software: str, css: str, body: Iterable[Markup]) -> str:
    """The whole HTML5 document (also well-formed XML) around a report's sections."""
    head = join([
        Markup('<meta charset="utf-8"/>'),
        el("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
        el("meta", {"name": "generator", "content": f"ledwarden {software}"}),
        el("title", None, title),
        el("style", None, Markup(css)),
    ])
    return ("<!DOCTYPE html>\n"
            + el("html", {"lang": lang}, el("head", None, head),
                 el("body", None, el("main", {"class": "sheet"}, join(body))))
            + "\n")


def report_stem(kind: str, screen_name: str | None, started: str | None, run: int | None = None) -> str:
    """A report's file name without suffix: ``inspection-lobby-wall-20261122T100000Z-run12``.

    Named by kind, screen and UTC start time (and run number), so reports
    of two walls, or of two demo runs, land side by side in one folder
    instead of over each other.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", (screen_name or "").lower()).strip("-")[:40] or "screen"
    try:
        when = utc_compact(datetime.fromisoformat(started or ""))
    except (TypeError, ValueError):
        when = "undated"
    return f"{kind}-{slug}-{when}" + (f"-run{run}" if run is not None else "")


def write_new(directory: Path, stem: str, texts: dict[str, str]) -> dict[str, Path]:
    """Write ``stem<suffix>`` for each ``suffix: text`` into ``directory``, never over a file.

    If any name of the set is taken, the set moves to ``stem-2``, ``stem-3``…
    together, so a JSON and its page keep one stem.  Each file appears
    whole (written aside, then linked into place, which fails rather than
    replaces if the name was taken meanwhile).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        name = stem if n == 1 else f"{stem}-{n}"
        paths = {suffix: directory / f"{name}{suffix}" for suffix in texts}
        if any(p.exists() for p in paths.values()):
            continue
        done: list[Path] = []
        try:
            for suffix, text in texts.items():
                write_atomic(paths[suffix], text, replace=False)
                done.append(paths[suffix])
        except FileExistsError:
            for p in done:
                p.unlink(missing_ok=True)
            continue
        return paths
    raise ReportError(f"{directory} holds 9999 reports named {stem}: move some elsewhere")


def write_report(report: JsonObject, html: str, directory: Path, stem: str) -> tuple[Path, Path]:
    """Write ``stem.json`` and ``stem.html`` into ``directory`` (``stem-2.*`` if taken); returns both.

    Callers render ``html`` before calling, so a report that cannot be
    rendered leaves no half-written pair behind; each file appears whole,
    and no earlier report is ever overwritten.
    """
    paths = write_new(directory, stem, {".json": json.dumps(report, indent=2, ensure_ascii=False) + "\n",
                                        ".html": html})
    return paths[".json"], paths[".html"]


def write_atomic(path: Path, text: str, *, replace: bool = True) -> None:
    """Write beside ``path`` and rename over it (not ``mkstemp``: its 0600 would hide the report).

    With ``replace=False`` the file is linked into place instead, which
    raises :class:`FileExistsError` rather than replace an existing one.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_report(report: object, kind: str, version: int, made_by: str) -> None:
    """Refuse what a renderer cannot draw, saying what it is and what to do."""
    if not isinstance(report, dict) or report.get("kind") != kind:
        found = report.get("kind") if isinstance(report, dict) else type(report).__name__
        raise ReportError(f"not an {kind} report (kind {found!r}): render it with its own renderer")
    if report.get("version") != version:
        raise ReportError(f"{kind} report version {report.get('version')!r} is not one this ledwarden "
                          f"renders (version {version}): render it with the ledwarden that wrote "
                          f"it, or upgrade")
    if not isinstance(report.get("screen"), dict):
        raise ReportError(f"{kind} report has no 'screen' table: {made_by} did not finish it")


def screen_fields(report: JsonObject, lang: str) -> list[Field]:
    """The header fields that say which screen: its file, its size and cabinet count."""
    screen = report["screen"]
    n = len(report.get("cabinets") or [])
    size = t("fmt.pixels", lang, w=screen.get("width"), h=screen.get("height"))
    count = t("fmt.cabinet_count", lang, n=n, cabinets=plural(n, "cabinet", lang))
    return [("field.screen_file", screen.get("file") or "—", True, False),
            ("field.size", f"{size} · {count}", False, False)]


def run_fields(report: JsonObject, lang: str) -> list[Field]:
    """The header fields that say when and on which controller the report was made."""
    ctl = report.get("controller") or {}
    bus, baud = ctl.get("bus"), ctl.get("baud")
    return [
        ("field.started", fmt_time(report.get("started")), False, False),
        ("field.finished", fmt_time(report.get("finished")), False, False),
        ("field.duration", fmt_duration(report.get("duration_s"), lang), False, False),
        ("field.software", ctl.get("software") or "—", False, False),
        ("field.host", ctl.get("host") or "—", True, False),
        ("field.bus", t("fmt.bus", lang, bus=bus, baud=baud) if bus and baud else (bus or "—"), False, False),
        ("field.fingerprint", ctl.get("fingerprint") or "—", True, True),
    ]


def header(kicker: str, name: str, badge: Markup, fields: list[Field], lang: str) -> Markup:
    """Title row (kicker, screen name, verdict badge) over a grid of labelled fields."""
    meta = el("dl", {"class": "meta"}, *(
        el("div", {"class": "wide" if wide else None},
           el("dt", None, t(key, lang)), el("dd", {"class": "mono" if mono else None}, value))
        for key, value, mono, wide in fields))
    return el("header", {"class": "head"},
              el("div", {"class": "titlerow"},
                 el("div", None, el("div", {"class": "kicker"}, kicker), el("h1", None, name or "—")),
                 badge),
              meta)


def badge(result: str | None, known: tuple[str, ...], lang: str) -> Markup:
    """The verdict in words and colour; a verdict this report does not define prints as given, grey."""
    if result in known:
        return el("div", {"class": f"badge {result}"}, t(f"result.{result}", lang))
    return el("div", {"class": "badge other"}, result or t("value.unknown", lang))


def section(ident: str, heading: str, content: Markup) -> Markup:
    """A report section with its heading; ``ident`` is its class, which the print stylesheet and the
    tests find it by."""
    return el("section", {"class": ident}, el("h2", None, heading), content)


def empty(key: str, lang: str) -> Markup:
    """An empty section says so: the absence of a finding is part of what is signed."""
    return el("p", {"class": "empty"}, t(key, lang))


def status(ok: bool | None, lang: str, yes: str = "value.ok", no: str = "value.failed") -> Markup:
    """An ok/failed mark in the report's colours; None (not checked) is a dash, never a pass."""
    if ok is None:
        return esc("—")
    return el("span", {"class": "st ok" if ok else "st bad"}, t(yes if ok else no, lang))


def sub(*parts) -> Markup:
    """A muted second line; it wraps only between its parts, never inside one."""
    return el("span", {"class": "sub"},
              join((el("span", {"class": "nw"}, p) for p in parts if p not in (None, "")), "\u00a0· "))


def thead(cols: list[tuple[str, str | None]], lang: str) -> Markup:
    """Header cells take only the alignment of their column (``num``), not its font."""
    return el("thead", None, el("tr", None, *(
        el("th", {"class": "num" if c and "num" in c else None}, t(k, lang)) for k, c in cols)))


def simple_table(klass: str, headers: list[tuple[str, str | None]], rows: list[list], lang: str,
                 empty_key: str) -> Markup:
    """A table with a class per column (from ``headers``), or the empty sentence without rows."""
    if not rows:
        return empty(empty_key, lang)
    body = el("tbody", None, *(
        el("tr", None, *(el("td", {"class": c}, cell) for (_, c), cell in zip(headers, row, strict=True)))
        for row in rows))
    return el("table", {"class": klass}, thead(headers, lang), body)


def signatures(roles: list[str], statement_key: str, lang: str) -> Markup:
    """What is signed, in one sentence, then a name, signature and date block per role."""
    blocks = [el("div", {"class": "sig"},
                 el("h3", None, label("role", role, lang)),
                 *(el("div", {"class": "line tall" if key == "sig.signature" else "line"},
                      el("span", None, t(key, lang)), el("div", {"class": "blank"}))
                   for key in ("sig.name", "sig.signature", "sig.date")))
              for role in roles]
    return join([el("p", {"class": "statement"}, t(statement_key, lang)),
                 el("div", {"class": "sigs"}, *blocks)])


def footer(report: JsonObject, kind: str, lang: str) -> Markup:
    """The software version and report format under every page, so a printed report says what made
    it."""
    ctl = report.get("controller") or {}
    return el("footer", {"class": "foot"},
              el("span", None, t("fmt.footer", lang, version=ctl.get("software") or "?",
                                 format=f"{kind}/{report.get('version')}")),
              el("span", None, fmt_time(report.get("finished"))))


# --- style ----------------------------------------------------------------------------------------

def css(running: str, started: str | None, lang: str, extra: str = "") -> str:
    """The stylesheet: ``running`` heads every printed page, ``extra`` holds a report's own rules.

    ``extra`` goes before the print rules, so those still have the last word.
    """
    return _CSS_TEMPLATE.substitute(
        font=FONTS[lang], mono=MONO_FONT, running=css_string(running),
        started=css_string(fmt_time(started)), page=_css_content(t("fmt.page", lang)),
        fill_normal=FILLS["normal"], fill_warm=FILLS["warm"], fill_hot=FILLS["hot"],
        extra=extra,
    )


def _css_content(template: str) -> str:
    """A ``{page}``/``{pages}`` template as a CSS ``content`` value with page counters."""
    out = []
    for part in re.split(r"(\{page\}|\{pages\})", template):
        if part == "{page}":
            out.append("counter(page)")
        elif part == "{pages}":
            out.append("counter(pages)")
        elif part:
            out.append(css_string(part))
    return " ".join(out)


_CSS_TEMPLATE = Template("""
:root { --ink: #0f172a; --muted: #5b6577; --rule: #d7dde5; --soft: #f4f6f9; --accent: #1f3b63;
        --pass: #15803d; --fail: #b91c1c; --warn: #b45309; }
* { box-sizing: border-box; }
html { background: #e8ebf0; color: var(--ink); font: 14px/1.45 $font;
       -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; }
.sheet { max-width: 1060px; margin: 28px auto; background: #fff; padding: 36px 48px 28px;
         box-shadow: 0 1px 3px rgba(15, 23, 42, .12), 0 10px 30px rgba(15, 23, 42, .07); }
.mono { font-family: $mono; font-size: .92em; }
.head { border-bottom: 3px solid var(--accent); padding-bottom: 18px; }
.titlerow { display: flex; align-items: center; justify-content: space-between; gap: 24px; }
.kicker { font-size: 12px; letter-spacing: .08em; text-transform: uppercase; color: var(--muted);
          font-weight: 600; }
h1 { font-size: 30px; line-height: 1.2; margin: 4px 0 0; overflow-wrap: anywhere; }
.badge { flex: none; font-size: 24px; font-weight: 800; letter-spacing: .08em; padding: 6px 22px;
         border: 2.5px solid; border-radius: 8px; }
.badge.pass { color: var(--pass); background: #ecfdf3; }
.badge.fail { color: var(--fail); background: #fef2f2; }
.badge.other { color: var(--muted); background: var(--soft); }
.meta { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 10px 28px; margin: 18px 0 0; }
.meta div { min-width: 0; }
.meta .wide { grid-column: 1 / -1; }
.meta dt { font-size: 11px; color: var(--muted); text-transform: uppercase; letter-spacing: .05em; }
.meta dd { margin: 1px 0 0; font-weight: 600; overflow-wrap: anywhere; }
h2 { font-size: 16px; color: var(--accent); margin: 28px 0 10px; padding-bottom: 5px;
     border-bottom: 1px solid var(--rule); }
.summary { margin: 0; padding: 10px 16px 10px 34px; background: var(--soft);
           border-left: 4px solid var(--pass); font-size: 15px; }
.summary.fail { border-left-color: var(--fail); }
.summary li + li { margin-top: 3px; }
figure { margin: 0; }
svg.wall { display: block; max-width: 100%; height: auto; margin: 0 auto; }
.scroll { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; font-size: 12.5px; font-variant-numeric: tabular-nums; }
th { text-align: left; font-size: 11px; font-weight: 600; color: var(--muted); text-transform: uppercase;
     letter-spacing: .04em; padding: 6px 8px; border-bottom: 1.5px solid var(--ink); white-space: nowrap; }
td { padding: 6px 8px; border-bottom: 1px solid var(--rule); vertical-align: top; }
.num { text-align: right; white-space: nowrap; }
td.addr { font-weight: 700; }
td.pos { white-space: nowrap; }
.sub { display: block; color: var(--muted); font-size: 11px; }
.nw { white-space: nowrap; }
tr.missing > td { background: #f1f3f6; }
tr.has-problems > td { border-bottom: 0; }
tr.problems > td { padding: 0 8px 7px; border-bottom: 1px solid var(--rule); }
tr.missing + tr.problems > td { background: #f1f3f6; }
tr.problems ul { margin: 0; padding: 5px 10px 5px 26px; background: #fffbeb; border-left: 3px solid #d97706;
                 color: #78350f; }
.noanswer { display: inline-block; font-weight: 700; color: #7f1d1d; background: #fee2e2; padding: 0 7px;
            border-radius: 3px; }
.temp { padding: 1px 6px; border-radius: 3px; }
.temp.warm { background: $fill_warm; color: #78350f; font-weight: 700; }
.temp.hot { background: $fill_hot; color: #7f1d1d; font-weight: 700; }
td.dead { color: var(--fail); font-weight: 700; }
.st { display: inline-flex; align-items: center; gap: 6px; font-weight: 600; }
.st::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: currentColor; }
.st.ok { color: var(--pass); }
.st.bad { color: var(--fail); }
.warn { color: var(--warn); font-weight: 600; }
svg.icon { vertical-align: -2px; margin-right: 6px; }
.empty { color: var(--muted); font-style: italic; margin: 4px 0; }
.lead { margin: 0 0 6px; font-weight: 600; break-after: avoid; }
table.dead, table.patterns { width: auto; min-width: 60%; }
.statement { margin: 0 0 14px; }
.sigs { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 22px 48px; }
.sig { padding: 12px 16px 14px; border: 1px solid var(--rule); border-radius: 6px; }
.sig h3 { font-size: 14px; margin: 0 0 2px; }
.sig .line { display: grid; grid-template-columns: 84px 1fr; align-items: end; height: 38px; }
.sig .line.tall { height: 64px; }
.sig .line span { font-size: 11px; color: var(--muted); padding-bottom: 2px; }
.sig .blank { border-bottom: 1px solid var(--ink); height: 100%; }
.foot { display: flex; justify-content: space-between; gap: 16px; margin-top: 32px; padding-top: 8px;
        border-top: 1px solid var(--rule); font-size: 11px; color: var(--muted); }
${extra}@page { size: A4; margin: 16mm 14mm 18mm;
  @top-left { content: $running; font: 8pt $font; color: #5b6577; }
  @bottom-left { content: $started; font: 8pt $font; color: #5b6577; }
  @bottom-right { content: $page; font: 8pt $font; color: #5b6577; } }
@media print {
  html { background: #fff; font-size: 9.5pt; }
  .sheet { max-width: none; margin: 0; padding: 0; box-shadow: none; }
  h1 { font-size: 20pt; }
  h2 { font-size: 12pt; break-after: avoid; }
  table { font-size: 8pt; }
  th { font-size: 7pt; }
  .sub { font-size: 7pt; }
  .scroll { overflow: visible; }
  tbody, figure, .meta, .sig, .summary { break-inside: avoid; }
  section.signatures { break-inside: avoid; }
}
""")
