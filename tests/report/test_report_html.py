"""Markup building: text and attributes escaped on the way in, markup passed through."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from controller.report.html import Markup, css_string, el, esc, join, num


def test_text_and_attributes_are_escaped():
    out = el("p", {"title": '"><script>', "class_": "x"}, "<b>&'")
    assert out == '<p title="&quot;&gt;&lt;script&gt;" class="x">&lt;b&gt;&amp;&#x27;</p>'
    ET.fromstring(out)


def test_markup_is_not_escaped_twice():
    inner = el("b", None, "a < b")
    assert el("p", None, inner) == "<p><b>a &lt; b</b></p>"
    assert esc(Markup("<i/>")) == "<i/>"
    assert join(["<", inner], sep="&") == "&lt;&amp;<b>a &lt; b</b>"


def test_attribute_conventions():
    assert el("rect", {"stroke_width": 1.5, "fill": None, "hidden": False}) == '<rect stroke-width="1.5"/>'
    assert el("input", {"checked": True}) == '<input checked="checked"></input>'
    assert el("text", {"x": 1.0}, "") == '<text x="1"></text>'


def test_numbers_are_short():
    assert [num(x) for x in (1.0, 1.234, -0.001, 12.5)] == ["1", "1.23", "0", "12.5"]


def test_css_strings_cannot_end_the_literal_or_the_style_element():
    s = css_string('Lobby "wall" </style><script>alert(1)</script> — 大厅')
    assert s.startswith('"') and s.endswith('"')
    inner = s[1:-1]
    assert not re.search(r'["<>/]', inner)
    assert "大厅" in inner and "Lobby" in inner
    # An escape's terminating space is consumed by CSS, so the real space after it survives.
    assert css_string("a — b") == '"a \\2014  b"'
