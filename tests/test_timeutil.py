"""Timestamps are written in one place: every spelling the project uses comes from controller.timeutil."""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from controller import timeutil

ROOT = Path(__file__).resolve().parents[1]
EPOCH = 1_795_000_000.5     # 2026-11-18T11:06:40Z, with a fraction that must be dropped


def test_utc_text_takes_epoch_seconds_and_aware_datetimes_alike():
    assert timeutil.utc_text(EPOCH) == "2026-11-18T11:06:40Z"
    plus_eight = datetime(2026, 11, 18, 19, 6, 40, tzinfo=timezone(timedelta(hours=8)))
    assert timeutil.utc_text(plus_eight) == "2026-11-18T11:06:40Z"


def test_now_is_utc_and_sorts_as_text():
    before = timeutil.utc_text(timeutil.utc_clock() - timedelta(seconds=2))
    now = timeutil.utc_now()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", now)
    assert before < now


def test_compact_form_has_no_colons_for_file_names():
    assert timeutil.utc_compact(EPOCH) == "20261118T110640Z"
    assert re.fullmatch(r"\d{8}T\d{6}Z", timeutil.utc_compact())


def test_readable_names_the_zone_and_leaves_a_zoneless_time_unlabelled():
    aware = datetime(2026, 11, 22, 18, 3, 12, tzinfo=timezone(timedelta(hours=8)))
    assert timeutil.readable(aware) == "2026-11-22 10:03:12 UTC"
    assert timeutil.readable(datetime(2026, 11, 22, 10, 3, 12)) == "2026-11-22 10:03:12"


def test_local_text_is_the_schedule_stamp_and_reads_back():
    when = datetime(2026, 12, 1, 0, 0, 7, 123456)
    assert timeutil.local_text(when) == "2026-12-01T00:00:07"
    assert datetime.fromisoformat(timeutil.local_text(when)) == when.replace(microsecond=0)


def test_no_other_module_spells_a_timestamp():
    """A new strftime/isoformat/gmtime outside timeutil fails here."""
    pattern = r"strftime\|\.isoformat(\|datetime\.now\|time\.gmtime\|utcnow\|fromtimestamp"
    found = subprocess.run(["grep", "-rn", "--include=*.py", pattern, "controller", "host", "hw"],
                           cwd=ROOT, capture_output=True, text=True).stdout.splitlines()
    allowed = ("controller/timeutil.py",)
    stray = [line for line in found if not line.startswith(allowed)]
    assert not stray, "spell timestamps with controller.timeutil:\n" + "\n".join(stray)


def test_epoch_of_reads_what_utc_text_wrote_and_refuses_a_non_time():
    assert timeutil.epoch_of(timeutil.utc_text(1_796_457_600)) == 1_796_457_600
    assert timeutil.epoch_of("2026-12-05T08:00:00") == 1_796_457_600      # naive: UTC
    assert timeutil.epoch_of("2026-12-05T16:00:00+08:00") == 1_796_457_600
    with pytest.raises(ValueError):
        timeutil.epoch_of("yesterday")
