"""Per-card results (controller/cardresults.py): one wire shape, built and read in one place."""

from __future__ import annotations

import asyncio

import pytest

from controller.cardresults import CardResult, from_json, is_error, per_card, to_json
from controller.errors import BusTimeout, LedwardenError, PayloadError


def test_per_card_goes_on_past_a_failing_card_and_reports_it_in_its_place():
    steps, noted = [], []

    async def action(address: int) -> int:
        if address == 5:
            raise BusTimeout(5, "GET_BRIGHTNESS", 4)
        return address * 10

    results = asyncio.run(per_card([1, 5, 9], action, before=lambda n, a: steps.append((n, a)),
                                   on_error=lambda a, exc: noted.append((a, str(exc)))))
    assert [(r.address, r.ok, r.value) for r in results] == [(1, True, 10), (5, False, None),
                                                              (9, True, 90)]
    assert steps == [(0, 1), (1, 5), (2, 9)]
    assert noted == [(5, results[1].error)] and "0x05" in results[1].error


def test_a_bug_is_not_swallowed_as_a_card_error():
    async def action(address: int) -> int:
        raise KeyError(address)
    with pytest.raises(KeyError):
        asyncio.run(per_card([1], action))


def test_the_wire_shape_is_the_apis_and_reads_back():
    results = [CardResult(1, value=[{"module": 0, "x": 1, "y": 2, "channel": 0}]),
               CardResult(0x0A, value=[]), CardResult(0xF0, error="no card at 0xF0 after 4 tries")]
    doc = to_json(results)
    assert doc == {"0x01": [{"module": 0, "x": 1, "y": 2, "channel": 0}], "0x0A": [],
                   "0xF0": {"error": "no card at 0xF0 after 4 tries"}}
    assert list(doc) == ["0x01", "0x0A", "0xF0"]                # the order the cards were asked
    assert from_json(doc) == results
    assert to_json([CardResult(3, value=7)], lambda v: v * 2) == {"0x03": 14}
    assert [r.value for r in from_json({"0x03": "ok", "0x04": 5}, str)] == ["ok", "5"]


def test_only_an_object_holding_just_an_error_is_an_error():
    assert is_error({"error": "x"})
    assert not is_error({"error": "x", "level": 3}) and not is_error("ok") and not is_error([])
    assert not is_error({"error": 5})


@pytest.mark.parametrize("key", ["5", "0x00", "0xF1", "0xZZ", "cards", ""])
def test_a_key_that_is_no_card_address_is_refused_in_words(key):
    with pytest.raises(PayloadError, match="not a per-card result") as err:
        from_json({key: 1})
    assert isinstance(err.value, LedwardenError)
