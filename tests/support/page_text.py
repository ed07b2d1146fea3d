"""What a reader sees on a report page, and the English left on a Chinese one.

A Chinese page may hold ASCII that is not English: addresses (``0x05``),
serials, units (``°C``, ``mV``, ``rpm``), product and protocol names
(``ledwarden``, ``PING``), command names (``'ledwarden bus set-address'``,
``--yes``) and paths.  What it must not hold is an English sentence; a run of
three or more English words in the visible text is taken as one.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

#: Elements whose text a reader does not see as prose: the stylesheet, and code.
HIDDEN = {"style", "code", "head"}
#: Quoted command lines and options, which stay as typed in every language.
COMMANDS = re.compile(r"'ledwarden[^']*'|--[a-z][a-z-]*")
#: Three or more English words in a row (separated by spaces or light punctuation).
ENGLISH_RUN = re.compile(r"[A-Za-z][A-Za-z'’]+(?:[ \t,;:()-]+[A-Za-z][A-Za-z'’]+){2,}")


def visible_text(html: str) -> list[str]:
    """The text nodes of a page a reader sees (tooltips included), in document order."""
    root = ET.fromstring(html.split("\n", 1)[1])
    out: list[str] = []

    def walk(node: ET.Element, hidden: bool) -> None:
        hide = hidden or node.tag.split("}")[-1] in HIDDEN
        if node.text and not hide:
            out.append(node.text)
        for child in node:
            walk(child, hide)
            if child.tail and not hide:
                out.append(child.tail)

    walk(root, False)
    return [t for t in (s.strip() for s in out) if t]


def english_runs(html: str) -> list[str]:
    """Every run of three or more English words in the page's visible text, with its text node."""
    found = []
    for text in visible_text(html):
        for run in ENGLISH_RUN.findall(COMMANDS.sub(" ", text)):
            found.append(f"{run!r} in {text!r}")
    return found
