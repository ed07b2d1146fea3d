"""Building HTML and SVG text in which nothing from a report goes in unescaped.

A report carries strings that came from a screen file, from cards on the bus
and from the operator's terminal: a screen named ``<script>`` must print as
those eight characters, and a card serial must not be able to close an
attribute.  Rather than trusting every call site to remember ``escape()``,
markup is built with :func:`el`: text and attribute values are escaped on
the way in unless they are :class:`Markup` (already built by :func:`el` or
deliberately marked), the approach of MarkupSafe without the dependency.

The output is both HTML5 and well-formed XML (attribute values always
quoted, void elements self-closed), so the wall's SVG also parses on its own
with ``xml.etree`` and opens in an image viewer.
"""

from __future__ import annotations

import html as _html
from collections.abc import Iterable, Mapping
from typing import Any

#: Elements written as ``<x/>``: HTML's void elements and childless SVG shapes.
_VOID = frozenset({"br", "hr", "meta", "col", "rect", "line", "path", "circle", "use", "polyline",
                   "polygon"})


class Markup(str):
    """A string that is already markup and is inserted as is."""

    __slots__ = ()


def esc(value: Any) -> Markup:
    """Text escaped for element content and double- or single-quoted attributes."""
    if isinstance(value, Markup):
        return value
    return Markup(_html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[Any], sep: str = "") -> Markup:
    """Concatenate parts, escaping those that are not markup yet."""
    return Markup(esc(sep).join(esc(p) for p in parts))


def el(tag: str, attrs: Mapping[str, Any] | None = None, *children: Any) -> Markup:
    """``<tag attrs>children</tag>``; ``None``/``False`` attributes are left out.

    Attribute names with a trailing underscore lose it (``class_`` → ``class``)
    and inner underscores become hyphens (``font_size`` → ``font-size``), so
    SVG presentation attributes read naturally as keyword-style dicts.  A
    ``True`` attribute is written ``name="name"`` to stay valid XML.
    """
    out = [f"<{tag}"]
    for name, value in (attrs or {}).items():
        if value is None or value is False:
            continue
        name = name.rstrip("_").replace("_", "-")
        if value is True:
            value = name
        elif isinstance(value, float):
            value = num(value)
        out.append(f' {name}="{esc(value)}"')
    body = join(c for c in children if c is not None)
    if not body and tag in _VOID:
        out.append("/>")
    else:
        out.append(f">{body}</{tag}>")
    return Markup("".join(out))


def num(x: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros (keeps SVGs small)."""
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def css_string(value: Any) -> str:
    """A CSS string literal for ``content:``, safe inside a ``<style>`` element.

    Everything but letters, digits and spaces becomes a hex escape, so neither
    quotes nor ``</style>`` can end the literal or the element.  Each escape
    ends with a space, which CSS consumes as its terminator; without it a
    real space after the escape would be eaten instead.
    """
    text = "" if value is None else str(value)
    return '"' + "".join(c if c.isalnum() or c == " " else f"\\{ord(c):x} " for c in text) + '"'
