"""JSON that arrives from outside: nesting bounded before parsing, whole numbers that are not booleans.

Python's ``json`` parser recurses once per ``[`` or ``{``, so a document of a
few thousand brackets (a ``manifest.sig``, an API body) ends in
``RecursionError`` — an internal error rather than a refusal.  :func:`loads`
measures the nesting first, with two regular-expression passes and no
recursion, and refuses anything deeper than :data:`MAX_DEPTH` with a
``ValueError`` saying so, the same class of error as a syntax error, so every
caller that already refuses bad JSON refuses this too.

Python also counts ``True`` as the integer 1, so ``isinstance(x, int)`` lets
``{"level": true}`` through; :func:`whole_number` is the one check for "a
number" that refuses booleans.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

#: A JSON object whose shape is genuinely free-form or owned elsewhere (a report,
#: an API body before it is checked, a stats block): named so a reader can tell
#: "JSON, any keys" from a dict with a fixed shape, which gets a TypedDict.
JsonObject = dict[str, Any]

#: Deeper than anything ledwarden writes or reads (a manifest nests 3 levels, an API body 2).
MAX_DEPTH = 32

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def depth(text: str) -> int:
    """How deeply ``text`` nests arrays and objects, counting brackets outside strings."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0)


def loads(data: bytes | str, max_depth: int = MAX_DEPTH):
    """``json.loads`` for untrusted documents; ``ValueError`` for bad JSON and for deep nesting."""
    text = data.decode(json.detect_encoding(data), "surrogatepass") if isinstance(data, bytes) else data
    found = depth(text)
    if found > max_depth:
        raise ValueError(f"it nests {found} levels deep, more than the {max_depth} allowed")
    return json.loads(text)


def whole_number(value) -> int | None:
    """``value`` as an int if it is a whole number (``3`` or ``3.0``), else None; booleans are not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None
