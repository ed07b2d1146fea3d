"""JSON from outside: nesting is measured without recursing, and booleans are not numbers."""

from __future__ import annotations

import pytest

from controller import jsonin


def test_depth_counts_brackets_outside_strings_only():
    assert jsonin.depth('{"a": [1, "[[[\\"[", {"b": []}]}') == 4
    assert jsonin.depth('"{{{{"') == 0 and jsonin.depth("7") == 0


@pytest.mark.parametrize("doc", ["[" * 4000 + "]" * 4000, '{"a":' * 5000 + "1" + "}" * 5000, "[" * 100000])
def test_deep_documents_are_refused_before_parsing(doc):
    with pytest.raises(ValueError, match="levels deep, more than the 32 allowed"):
        jsonin.loads(doc.encode())


def test_documents_within_the_bound_parse_as_json_does():
    assert jsonin.loads(b'{"files": [{"size": 3}]}') == {"files": [{"size": 3}]}
    assert jsonin.loads("[" * 32 + "]" * 32) is not None
    with pytest.raises(ValueError):
        jsonin.loads(b"{not json")


@pytest.mark.parametrize("value,expected", [(3, 3), (3.0, 3), (True, None), (False, None), (2.5, None),
                                            ("3", None), (None, None)])
def test_whole_numbers_are_not_booleans(value, expected):
    assert jsonin.whole_number(value) == expected
