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

import json
import os
import re
import secrets
from pathlib import Path
from string import Template

from controller.report import ReportError
from controller.report.html import Markup, css_string, el, esc, join
from controller.report.i18n import (FONTS, MONO_FONT, check_lang, fmt_duration, fmt_fan, fmt_supply,
                                    fmt_temperature, fmt_time, label, plural, t)
from controller.report.wall import (FILLS, address_text, cabinet_size, dead_led_screen_xy,
                                    marker_shapes, temperature_level, wall_svg)

KIND = "acceptance"
VERSION = 1


def render_acceptance_html(report: dict, lang: str | None = None) -> str:
    """The whole HTML document for an acceptance report, in ``lang`` (default: the report's)."""
    _check_report(report)
    lang = check_lang(lang or report.get("lang") or "en")
    screen = report["screen"]
    cabinets = report.get("cabinets") or []
    title = f"{t('report.acceptance', lang)} — {screen.get('name', '')}"
    body = join([
        _header(report, lang),
        _summary(report, lang),
        _section("wall", t("section.wall", lang),
                 el("figure", None, Markup(wall_svg(screen, cabinets, lang=lang)))),
        _section("cabinets", t("section.cabinets", lang), _cabinet_table(cabinets, lang)),
        _section("unexpected", t("section.unexpected", lang), _unexpected(report, lang)),
        _section("patterns", t("section.patterns", lang), _patterns(report, lang)),
        _section("steps", t("section.steps", lang), _steps(report, lang)),
        _section("dead-leds", t("section.dead_leds", lang), _dead_leds(cabinets, lang)),
        _section("signatures", t("section.signatures", lang), _signatures(report, lang)),
        _footer(report, lang),
    ])
    head = join([
        Markup('<meta charset="utf-8"/>'),
        el("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
        el("meta", {"name": "generator",
                    "content": f"ledwarden {(report.get('controller') or {}).get('software', '')}"}),
        el("title", None, title),
        el("style", None, Markup(_css(report, lang))),
    ])
    return ("<!DOCTYPE html>\n"
            + el("html", {"lang": lang}, el("head", None, head),
                 el("body", None, el("main", {"class": "sheet"}, body)))
            + "\n")


def write_acceptance(report: dict, directory: Path, stem: str = "acceptance") -> tuple[Path, Path]:
    """Write ``stem.json`` and ``stem.html`` into ``directory``; returns both paths.

    The HTML is rendered before anything is written, so a report that cannot
    be rendered leaves no half-written pair behind; each file is replaced
    atomically, so a reader never sees a truncated one.
    """
    html = render_acceptance_html(report)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path, html_path = directory / f"{stem}.json", directory / f"{stem}.html"
    _write_atomic(json_path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    _write_atomic(html_path, html)
    return json_path, html_path


def _write_atomic(path: Path, text: str) -> None:
    """Write beside ``path`` and rename over it (not ``mkstemp``: its 0600 would hide the report)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _check_report(report: dict) -> None:
    if not isinstance(report, dict) or report.get("kind") != KIND:
        kind = report.get("kind") if isinstance(report, dict) else type(report).__name__
        raise ReportError(f"not an acceptance report (kind {kind!r}): render it with its own renderer")
    version = report.get("version")
    if version != VERSION:
        raise ReportError(f"acceptance report version {version!r} is not one this ledwarden renders "
                          f"(version {VERSION}): render it with the ledwarden that wrote it, or upgrade")
    if not isinstance(report.get("screen"), dict):
        raise ReportError("acceptance report has no 'screen' table: the commissioning job did not finish it")


# --- sections -------------------------------------------------------------------------------------

def _section(ident: str, heading: str, content: Markup) -> Markup:
    return el("section", {"class": ident}, el("h2", None, heading), content)


def _header(report: dict, lang: str) -> Markup:
    screen, ctl = report["screen"], report.get("controller") or {}
    result = report.get("result")
    if result in ("pass", "fail"):
        badge_class, badge = result, t(f"result.{result}", lang)
    else:
        badge_class, badge = "other", result or t("value.unknown", lang)
    n = len(report.get("cabinets") or [])
    bus, baud = ctl.get("bus"), ctl.get("baud")
    size = t("fmt.pixels", lang, w=screen.get("width"), h=screen.get("height"))
    count = t("fmt.cabinet_count", lang, n=n, cabinets=plural(n, "cabinet", lang))
    # (key, value, monospace, whole row)
    fields = [
        ("field.screen_file", screen.get("file") or "—", True, False),
        ("field.size", f"{size} · {count}", False, False),
        ("field.modules", _module_types(report.get("cabinets") or [], lang), False, False),
        ("field.started", fmt_time(report.get("started")), False, False),
        ("field.finished", fmt_time(report.get("finished")), False, False),
        ("field.duration", fmt_duration(report.get("duration_s"), lang), False, False),
        ("field.software", ctl.get("software") or "—", False, False),
        ("field.host", ctl.get("host") or "—", True, False),
        ("field.bus", t("fmt.bus", lang, bus=bus, baud=baud) if bus and baud else (bus or "—"), False, False),
        ("field.fingerprint", ctl.get("fingerprint") or "—", True, True),
    ]
    meta = el("dl", {"class": "meta"}, *(
        el("div", {"class": "wide" if wide else None},
           el("dt", None, t(key, lang)), el("dd", {"class": "mono" if mono else None}, value))
        for key, value, mono, wide in fields))
    return el("header", {"class": "head"},
              el("div", {"class": "titlerow"},
                 el("div", None,
                    el("div", {"class": "kicker"}, f"ledwarden · {t('report.acceptance', lang)}"),
                    el("h1", None, screen.get("name") or "—")),
                 el("div", {"class": f"badge {badge_class}"}, badge)),
              meta)


def _module_types(cabinets: list[dict], lang: str) -> str:
    """Each module type once (``p25: 64 × 32 px, 1/16 scan``): the table then needs only its name."""
    seen: dict[str, str] = {}
    for cab in cabinets:
        m = cab.get("module") or {}
        if m.get("name") is not None and m["name"] not in seen:
            size = t("fmt.pixels", lang, w=m.get("width"), h=m.get("height"))
            seen[m["name"]] = f"{m['name']}: {size}, {t('fmt.scan', lang, scan=m.get('scan'))}"
    return "; ".join(seen.values()) or "—"


def _summary(report: dict, lang: str) -> Markup:
    lines = report.get("summary") or []
    klass = "summary fail" if report.get("result") != "pass" else "summary"
    content = (el("ul", {"class": klass}, *(el("li", None, s) for s in lines)) if lines
               else el("p", {"class": "empty"}, t("empty.summary", lang)))
    return _section("summary-section", t("section.summary", lang), content)


def _grid_positions(cabinets: list[dict]) -> dict[int, tuple[int, int]]:
    """Row and column (from 1) of each cabinet: the rank of its y and x among all cabinets'."""
    rows = {y: i for i, y in enumerate(sorted({int(c["y"]) for c in cabinets}), 1)}
    cols = {x: i for i, x in enumerate(sorted({int(c["x"]) for c in cabinets}), 1)}
    return {id(c): (rows[int(c["y"])], cols[int(c["x"])]) for c in cabinets}


def _status(ok: bool | None, lang: str, yes: str = "value.ok", no: str = "value.failed") -> Markup:
    if ok is None:
        return esc("—")
    return el("span", {"class": "st ok" if ok else "st bad"}, t(yes if ok else no, lang))


def _sub(*parts) -> Markup:
    """A muted second line; it wraps only between its parts, never inside one."""
    return el("span", {"class": "sub"},
              join((el("span", {"class": "nw"}, p) for p in parts if p not in (None, "")), "\u00a0· "))


def _cabinet_table(cabinets: list[dict], lang: str) -> Markup:
    cols = [("col.address", None), ("col.position", None), ("col.modules", None), ("col.card", None),
            ("col.config", None), ("col.temperature", "num"), ("col.supply", "num"), ("col.fan", "num"),
            ("col.flags", None), ("col.dead_leds", "num")]
    pos = _grid_positions(cabinets)
    bodies = [_cabinet_rows(cab, pos[id(cab)], len(cols), lang) for cab in cabinets]
    return el("div", {"class": "scroll"}, el("table", {"class": "cabinets"}, _thead(cols, lang), *bodies))


def _cabinet_rows(cab: dict, row_col: tuple[int, int], ncols: int, lang: str) -> Markup:
    """One cabinet's row, and under it a full-width row of its problems if it has any.

    Each cabinet is its own ``<tbody>`` so print never splits a cabinet from
    its problems across pages.
    """
    found = cab.get("found", True)
    status = cab.get("status") or {}
    module = cab.get("module") or {}
    w, h = cabinet_size(cab)
    problems = cab.get("problems") or []
    dead = len(cab.get("dead_leds") or [])
    layout = [t("fmt.pixels", lang, w=w, h=h), label("chain", cab.get("chain"), lang)]
    if cab.get("rotation") == 180:
        layout.append(t("value.rotated", lang))
    if found:
        bank = t("fmt.bank", lang, bank=cab["bank"]) if cab.get("bank") else None
        card = [el("span", {"class": "mono"}, cab.get("serial") or "—"),
                _sub(cab.get("model"), cab.get("firmware"), bank)]
        brightness = cab.get("brightness")
        config = [_status(cab.get("config_ok"), lang),
                  _sub(t("fmt.brightness", lang, pct=round(brightness * 100 / 65535)))
                  if brightness is not None else None]
        temp = el("span", {"class": f"temp {temperature_level(cab)}"},
                  fmt_temperature(status.get("temperature_c")))
        flags = status.get("flags") or []
        flag_text = join((label("flag", f, lang) for f in flags), ", ") if flags else t("value.none", lang)
    else:
        card = [el("span", {"class": "noanswer"}, t("value.no_answer", lang))]
        config, temp, flag_text = ["—"], "—", "—"
    cells = [
        el("td", {"class": "addr mono"}, address_text(cab["address"])),
        el("td", {"class": "pos"}, t("fmt.row_col", lang, row=row_col[0], col=row_col[1]),
           _sub(f"({cab['x']}, {cab['y']})")),
        el("td", None, f"{cab.get('modules_x')} × {cab.get('modules_y')} {module.get('name', '')}",
           _sub(*layout)),
        el("td", None, *card),
        el("td", None, *config),
        el("td", {"class": "num"}, temp),
        el("td", {"class": "num"}, fmt_supply(status.get("supply_mv"))),
        el("td", {"class": "num"}, fmt_fan(status.get("fan_rpm"), lang)),
        el("td", {"class": "flags"}, flag_text),
        el("td", {"class": "num dead" if dead else "num"}, str(dead) if found else "—"),
    ]
    klass = " ".join(k for k in ("missing" if not found else "", "has-problems" if problems else "") if k)
    rows = [el("tr", {"class": klass or None, "id": f"cabinet-{int(cab['address'])}"}, *cells)]
    if problems:
        rows.append(el("tr", {"class": "problems"},
                       el("td", {"colspan": ncols}, el("ul", None, *(el("li", None, p) for p in problems)))))
    return el("tbody", None, *rows)


def _thead(cols: list[tuple[str, str | None]], lang: str) -> Markup:
    """Header cells take only the alignment of their column (``num``), not its font."""
    return el("thead", None, el("tr", None, *(
        el("th", {"class": "num" if c and "num" in c else None}, t(k, lang)) for k, c in cols)))


def _simple_table(klass: str, headers: list[tuple[str, str | None]], rows: list[list], lang: str,
                  empty_key: str) -> Markup:
    if not rows:
        return el("p", {"class": "empty"}, t(empty_key, lang))
    head = _thead(headers, lang)
    body = el("tbody", None, *(
        el("tr", None, *(el("td", {"class": c}, cell) for (_, c), cell in zip(headers, row, strict=True)))
        for row in rows))
    return el("table", {"class": klass}, head, body)


def _unexpected(report: dict, lang: str) -> Markup:
    rows = [[address_text(u["address"]) if u.get("address") is not None else "—", u.get("serial") or "—",
             u.get("model") or "—", u.get("problem") or "—"]
            for u in report.get("unexpected") or []]
    return _simple_table("unexpected", [("col.address", "mono"), ("col.serial", "mono"),
                                        ("col.model", "mono"), ("col.problem", None)],
                         rows, lang, "empty.unexpected")


def _patterns(report: dict, lang: str) -> Markup:
    rows = []
    for p in report.get("patterns") or []:
        how = p.get("how")
        rows.append([label("pattern", p.get("pattern"), lang),
                     _status(bool(p.get("confirmed")), lang, "value.yes", "value.no"),
                     el("span", {"class": "warn" if how and how != "operator" else None},
                        label("how", how, lang) if how else "—")])
    return _simple_table("patterns", [("col.pattern", None), ("col.confirmed", None), ("col.how", None)],
                         rows, lang, "empty.patterns")


def _steps(report: dict, lang: str) -> Markup:
    rows = [[label("step", s.get("name"), lang), _status(s.get("ok"), lang), s.get("detail") or ""]
            for s in report.get("steps") or []]
    return _simple_table("steps", [("col.step", None), ("col.result", None), ("col.detail", None)],
                         rows, lang, "empty.steps")


def _dead_leds(cabinets: list[dict], lang: str) -> Markup:
    rows, with_dead = [], 0
    for cab in cabinets:
        leds = cab.get("dead_leds") or []
        with_dead += bool(leds)
        for led in leds:
            channel = str(led.get("channel", ""))
            sx, sy = dead_led_screen_xy(cab, led)
            icon = el("svg", {"class": "icon", "width": 14, "height": 14, "viewBox": "0 0 16 16",
                              "aria-hidden": "true"}, marker_shapes(channel, 8, 8, 4.5))
            rows.append([address_text(cab["address"]), str(led.get("module")),
                         f"({led.get('x')}, {led.get('y')})", join([icon, label("channel", channel, lang)]),
                         f"({sx}, {sy})"])
    if not rows:
        return el("p", {"class": "empty"}, t("empty.dead_leds", lang))
    n = len(rows)
    total = el("p", {"class": "lead"}, t("fmt.dead_total", lang, n=n, c=with_dead,
                                         leds=plural(n, "dead_led", lang),
                                         cabinets=plural(with_dead, "cabinet", lang)))
    cols = [("col.cabinet", "mono"), ("col.module", "num"), ("col.in_module", "num"), ("col.channel", None),
            ("col.on_screen", "num")]
    table = _simple_table("dead", cols, rows, lang, "empty.dead_leds")
    return join([total, table])


def _signatures(report: dict, lang: str) -> Markup:
    roles = report.get("signatures") or []
    blocks = [el("div", {"class": "sig"},
                 el("h3", None, label("role", role, lang)),
                 *(el("div", {"class": "line tall" if key == "sig.signature" else "line"},
                      el("span", None, t(key, lang)), el("div", {"class": "blank"}))
                   for key in ("sig.name", "sig.signature", "sig.date")))
              for role in roles]
    return join([el("p", {"class": "statement"}, t("sig.statement", lang)),
                 el("div", {"class": "sigs"}, *blocks)])


def _footer(report: dict, lang: str) -> Markup:
    ctl = report.get("controller") or {}
    return el("footer", {"class": "foot"},
              el("span", None, t("fmt.footer", lang, version=ctl.get("software") or "?",
                                 format=f"{KIND}/{report.get('version')}")),
              el("span", None, fmt_time(report.get("finished"))))


# --- style ----------------------------------------------------------------------------------------

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


def _css(report: dict, lang: str) -> str:
    running = f"{t('report.acceptance', lang)} — {report['screen'].get('name', '')}"
    return _CSS_TEMPLATE.substitute(
        font=FONTS[lang], mono=MONO_FONT, running=css_string(running),
        started=css_string(fmt_time(report.get("started"))), page=_css_content(t("fmt.page", lang)),
        fill_normal=FILLS["normal"], fill_warm=FILLS["warm"], fill_hot=FILLS["hot"],
    )


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
@page { size: A4; margin: 16mm 14mm 18mm;
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
