"""The fault log's store: folding, what reaches the disk when, clearing, filters, retention,
bad files, and property tests of the folding invariants."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.errors import LedwardenError, NotFound, PayloadError
from controller.faultlog import (
    SEVERITIES,
    FaultLog,
    FaultLogUnusable,
    card_source,
    parse_time,
    schema,
)
from controller.faultlog.export import COLUMNS, to_csv, to_json
from controller.timeutil import utc_text as iso

T0 = 1_800_000_000.0          # 2027-01-15T08:00:00Z
DAY = 86400.0


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def flog(tmp_path, clock):
    log = FaultLog(tmp_path / "faults.db", clock=clock)
    yield log
    log.close()


def on_disk(path: Path) -> dict[int, dict]:
    """The rows as another process would read them from the file right now."""
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return {r["id"]: dict(r) for r in db.execute("SELECT * FROM faults")}


# ------------------------------------------------------------------ recording and folding

def test_a_new_fault_is_on_disk_when_record_returns(flog):
    fault = flog.record("bus.timeout", "warning", card_source(3), {"tries": 3}, at=T0)
    assert (fault.id, fault.count, fault.state, fault.details) == (1, 1, "active", {"tries": 3})
    assert fault.first_seen == fault.last_seen == "2027-01-15T08:00:00Z"
    row = on_disk(flog.path)[fault.id]
    assert (row["code"], row["source"], row["count"], row["state"]) == \
        ("bus.timeout", "card:0x03", 1, "active")
    assert json.loads(row["details"]) == {"tries": 3}


def test_repeats_fold_into_one_row_newest_details_worst_severity(flog):
    flog.record("bus.timeout", "warning", "card:0x03", {"n": 0}, at=T0)
    flog.record("bus.timeout", "critical", "card:0x03", {"n": 1}, at=T0 + 5)
    last = flog.record("bus.timeout", "info", "card:0x03", {"n": 2}, at=T0 + 9)
    assert (last.id, last.count, last.severity, last.details) == (1, 3, "critical", {"n": 2})
    assert (last.first_seen, last.last_seen) == (iso(T0), iso(T0 + 9))
    assert flog.get(1) == last and flog.list() == [last]
    # same code, other source: another fault
    other = flog.record("bus.timeout", "warning", "card:0x04", at=T0)
    assert other.id == 2 and len(flog.active()) == 2


def test_an_out_of_order_repeat_does_not_move_last_seen_back(flog):
    flog.record("x", "info", "controller", at=T0 + 10)
    assert flog.record("x", "info", "controller", at=T0).last_seen == iso(T0 + 10)


def test_repeats_reach_the_disk_at_most_once_per_interval(flog, clock):
    """The wear point: 600 repeats over ten minutes are 20 small writes, not 600 rows."""
    flog.record("bus.timeout", "warning", "card:0x03", at=T0)
    statements = []
    flog._db.set_trace_callback(statements.append)
    for n in range(600):
        clock.t += 1.0
        flog.record("bus.timeout", "warning", "card:0x03", {"n": n}, at=T0 + n)
    flog._db.set_trace_callback(None)
    updates = [s for s in statements if s.startswith("UPDATE")]
    assert len(updates) == 600 // 30
    assert not [s for s in statements if s.startswith("INSERT")]
    assert len(on_disk(flog.path)) == 1


def test_a_folded_repeat_writes_one_page_to_the_wal(flog, clock):
    for n in range(50):
        flog.record(f"other-{n}", "info", "controller", {"pad": "x" * 100})
    flog.record("fan", "error", "card:0x01")
    wal = flog.path.with_name("faults.db-wal")
    page = flog._db.execute("PRAGMA page_size").fetchone()[0]
    before = wal.stat().st_size
    for _ in range(10):
        clock.t += 31
        flog.record("fan", "error", "card:0x01", {"rpm": 0})
    assert wal.stat().st_size - before == 10 * (page + 24)     # a WAL frame: header + page


def test_a_repeat_is_written_after_the_interval_not_before(flog, clock):
    flog.record("fan", "error", "card:0x01", at=T0)
    clock.t += 10
    assert flog.record("fan", "error", "card:0x01", at=T0 + 10).count == 2
    assert on_disk(flog.path)[1]["count"] == 1            # in memory only
    clock.t += 25                                         # 35 s since the insert was written
    flog.record("fan", "error", "card:0x01", at=T0 + 35)
    assert on_disk(flog.path)[1]["count"] == 3


def test_a_due_repeat_rides_along_with_another_fault(flog, clock):
    flog.record("fan", "error", "card:0x01", at=T0)
    flog.record("fan", "error", "card:0x01", at=T0 + 1)
    clock.t += 31
    flog.record("temp", "warning", "card:0x02", at=T0 + 31)
    assert on_disk(flog.path)[1]["count"] == 2


def test_flush_and_close_write_pending_repeats(tmp_path, clock):
    log = FaultLog(tmp_path / "faults.db", clock=clock)
    for _ in range(4):
        log.record("fan", "error", "card:0x01", {"rpm": 0})
    assert on_disk(log.path)[1]["count"] == 1
    log.flush()
    assert on_disk(log.path)[1]["count"] == 4
    log.record("fan", "error", "card:0x01", {"rpm": 1})
    log.close()
    row = on_disk(log.path)[1]
    assert (row["count"], json.loads(row["details"])) == (5, {"rpm": 1})


def test_a_timer_writes_repeats_when_nothing_else_happens(tmp_path):
    log = FaultLog(tmp_path / "faults.db", flush_interval_s=0.1)
    try:
        log.record("fan", "error", "card:0x01")
        log.record("fan", "error", "card:0x01")
        deadline = time.monotonic() + 5
        while on_disk(log.path)[1]["count"] != 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert on_disk(log.path)[1]["count"] == 2
    finally:
        log.close()


def test_recording_from_many_threads_loses_no_count(tmp_path):
    log = FaultLog(tmp_path / "faults.db", flush_interval_s=0.01)
    codes = ["a", "b", "c"]

    def feed(n: int) -> None:
        for i in range(200):
            log.record(codes[i % 3], "warning", card_source(n % 2 + 1), {"thread": n})
    threads = [threading.Thread(target=feed, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    rows = on_disk(log.path).values()
    assert len(rows) == 6 and sum(r["count"] for r in rows) == 800


def test_bad_input_is_refused_in_words(flog):
    with pytest.raises(PayloadError, match="severity must be one of info, warning"):
        flog.record("x", "fatal", "controller")
    with pytest.raises(PayloadError, match="code must be a non-empty string"):
        flog.record("", "info", "controller")
    with pytest.raises(PayloadError, match="source"):
        flog.record("x", "info", "s" * 97)
    assert flog.active() == []


def test_details_survive_anything_a_feed_passes(flog):
    fault = flog.record("x", "info", "controller", {"raw": b"\x01", "path": Path("/a")})
    assert fault.details == {"raw": "b'\\x01'", "path": "/a"}
    big = flog.record("y", "info", "controller", {"trace": "x" * 10000})
    assert list(big.details) == ["truncated"] and len(json.dumps(big.details)) < 4200
    assert flog.get(big.id) == big


def test_card_source_spelling():
    assert card_source(3) == "card:0x03"
    assert card_source(0xA5, 2) == "card:0xA5/module:2"
    with pytest.raises(PayloadError):
        card_source(300)
    with pytest.raises(PayloadError):
        card_source(3, -1)


# ------------------------------------------------------------------ resolving and clearing

def test_resolve_clears_and_a_recurrence_is_a_new_episode(flog, clock):
    flog.record("bus.timeout", "warning", "card:0x03", at=T0)
    flog.record("bus.timeout", "warning", "card:0x03", at=T0 + 1)
    done = flog.resolve("bus.timeout", "card:0x03", at=T0 + 2)
    assert (done.state, done.count, done.cleared_by, done.cleared_at) == \
        ("cleared", 2, "auto", iso(T0 + 2))
    row = on_disk(flog.path)[1]
    assert (row["state"], row["count"], row["cleared_by"]) == ("cleared", 2, "auto")
    assert flog.resolve("bus.timeout", "card:0x03") is None
    again = flog.record("bus.timeout", "warning", "card:0x03", at=T0 + 3)
    assert (again.id, again.count) == (2, 1)
    assert [f.id for f in flog.list(state="all")] == [2, 1]


def test_clear_by_id_code_and_source(flog):
    a = flog.record("temp", "warning", "card:0x03")
    b = flog.record("temp", "warning", "card:0x03/module:2")
    c = flog.record("temp", "warning", "card:0x04")
    d = flog.record("fan", "error", "card:0x03")
    e = flog.record("fan", "error", "card:0x30")
    flog.record("temp", "warning", "card:0x03")          # folded, in memory only
    assert flog.clear(a.id, by="alice") == 1
    assert flog.get(a.id).cleared_by == "alice" and flog.get(a.id).state == "cleared"
    row = on_disk(flog.path)[a.id]
    assert (row["state"], row["count"], row["cleared_by"]) == ("cleared", 2, "alice")
    assert flog.clear(a.id, by="bob") == 0                 # already cleared: nothing happens
    assert flog.get(a.id).cleared_by == "alice"
    assert flog.clear(code="fan", source="card:0x03", by="alice") == 1   # d, not e
    assert flog.clear(source="card:0x03", by="alice") == 1               # b: under card 0x03
    assert flog.get(b.id).state == "cleared"
    assert {f.id for f in flog.active()} == {c.id, e.id}
    assert flog.clear(code="temp", by="alice") == 1 and [f.id for f in flog.active()] == [e.id]
    assert d.id != e.id


def test_clear_needs_a_selector_and_a_known_id(flog):
    with pytest.raises(PayloadError, match="say which faults"):
        flog.clear(by="alice")
    with pytest.raises(NotFound, match="no fault 42"):
        flog.clear(42, by="alice")
    with pytest.raises(NotFound):
        flog.get(42)


def test_clear_by_id_must_match_the_other_selectors_too(flog):
    a = flog.record("temp", "warning", "card:0x03")
    assert flog.clear(a.id, code="fan", by="alice") == 0
    assert flog.get(a.id).state == "active"


# ------------------------------------------------------------------ reading

def test_list_filters_and_order(flog):
    flog.record("a", "info", "controller", at=T0)
    flog.record("b", "warning", "card:0x01", at=T0 + DAY)
    flog.record("c", "error", "card:0x01/module:3", at=T0 + 2 * DAY)
    flog.record("d", "critical", "card:0x02", at=T0 + 3 * DAY)
    flog.resolve("d", "card:0x02")

    def codes(**kw):
        return [f.code for f in flog.list(**kw)]
    assert codes() == ["c", "b", "a"]                      # active, newest first
    assert codes(state="cleared") == ["d"]
    assert codes(state="all") == codes(state=None) == ["d", "c", "b", "a"]
    assert codes(state="all", severity="error") == ["d", "c"]
    assert codes(state="all", source="card:0x01") == ["c", "b"]
    assert codes(state="all", source="card:0x01/module:3") == ["c"]
    assert codes(state="all", since=iso(T0 + DAY)) == ["d", "c", "b"]
    assert codes(state="all", since="2027-01-17") == ["d", "c"]
    assert codes(state="all", limit=2) == ["d", "c"]
    assert codes(state="cleared", source="card:0x0") == []    # a source is not a text prefix
    with pytest.raises(PayloadError, match="state must be"):
        flog.list(state="open")
    with pytest.raises(PayloadError, match="limit"):
        flog.list(limit=0)
    with pytest.raises(PayloadError, match="not a date"):
        flog.list(since="yesterday")


def test_list_sees_repeats_that_are_not_written_yet(flog, clock):
    flog.record("a", "info", "controller", at=T0)
    flog.record("b", "info", "controller", at=T0 + 10)
    flog.record("a", "error", "controller", at=T0 + 20)     # folded in memory only
    assert [(f.code, f.count) for f in flog.list()] == [("a", 2), ("b", 1)]
    assert [f.code for f in flog.list(severity="error")] == ["a"]
    assert on_disk(flog.path)[1]["severity"] == "info"


def test_counts_of_active_faults_by_severity(flog):
    flog.record("a", "info", "controller")
    flog.record("b", "critical", "controller")
    flog.record("c", "critical", "card:0x01")
    flog.resolve("c", "card:0x01")
    assert flog.counts() == {"active": 2, "by_severity": {"info": 1, "warning": 0, "error": 0,
                                                          "critical": 1}}


def test_reopening_restores_active_faults_and_keeps_folding(tmp_path):
    log = FaultLog(tmp_path / "faults.db")
    log.record("a", "warning", "controller", at=T0)
    log.record("a", "warning", "controller", at=T0 + 1)
    log.record("b", "warning", "controller", at=T0)
    log.resolve("b", "controller")
    log.close()
    log = FaultLog(tmp_path / "faults.db")
    try:
        assert [(f.code, f.count) for f in log.active()] == [("a", 2)]
        assert log.record("a", "warning", "controller", at=T0 + 2).count == 3
        assert log.record("b", "warning", "controller", at=T0 + 2).id == 3
        assert log.integrity() == "ok"
    finally:
        log.close()


def test_a_closed_log_refuses_and_closes_twice(tmp_path):
    log = FaultLog(tmp_path / "faults.db")
    log.close()
    log.close()
    with pytest.raises(LedwardenError, match="closed"):
        log.record("a", "info", "controller")


def test_parse_time_accepts_dates_times_and_zones():
    assert parse_time("2026-11-22") == "2026-11-22T00:00:00Z"
    assert parse_time("2026-11-22T10:00") == "2026-11-22T10:00:00Z"
    assert parse_time("2026-11-22T10:00:00Z") == "2026-11-22T10:00:00Z"
    assert parse_time("2026-11-22T11:00:00+01:00") == "2026-11-22T10:00:00Z"
    with pytest.raises(PayloadError):
        parse_time("22/11/2026")


# ------------------------------------------------------------------ retention

def test_prune_drops_old_cleared_faults_never_active_ones(tmp_path):
    log = FaultLog(tmp_path / "faults.db", retention_days=30)
    try:
        log.record("old-active", "info", "controller", at=T0)
        log.record("old-cleared", "info", "controller", at=T0)
        log.resolve("old-cleared", "controller", at=T0)
        log.record("new-cleared", "info", "controller", at=T0 + 20 * DAY)
        log.resolve("new-cleared", "controller", at=T0 + 20 * DAY)
        assert log.prune(now=T0 + 29 * DAY) == 0
        assert log.prune(now=T0 + 31 * DAY) == 1
        assert {f.code for f in log.list(state="all")} == {"old-active", "new-cleared"}
        assert log.prune(now=T0 + 1000 * DAY) == 1
        assert [f.code for f in log.list(state="all")] == ["old-active"]
    finally:
        log.close()


def test_prune_keeps_the_row_bound_with_the_oldest_cleared_going_first(tmp_path):
    log = FaultLog(tmp_path / "faults.db", max_rows=5)
    try:
        for n in range(8):
            log.record(f"c{n}", "info", "controller", at=T0 + n)
            log.resolve(f"c{n}", "controller", at=T0 + n)
        for n in range(3):
            log.record(f"a{n}", "info", "controller", at=T0)
        assert log.prune(now=T0 + 10) == 6
        assert sorted(f.code for f in log.list(state="all")) == ["a0", "a1", "a2", "c6", "c7"]
        # ids are never reused once rows are gone
        assert log.record("new", "info", "controller").id == 12
    finally:
        log.close()


def test_too_many_active_faults_are_all_kept(tmp_path, caplog):
    log = FaultLog(tmp_path / "faults.db", max_rows=2)
    try:
        for n in range(3):
            log.record(f"a{n}", "info", "controller")
        log.record("c", "info", "controller")
        log.resolve("c", "controller")
        assert log.prune() == 1 and len(log.active()) == 3
        assert "only active ones are left" in caplog.text
    finally:
        log.close()


def test_prune_runs_on_open_and_every_so_often(tmp_path, monkeypatch):
    monkeypatch.setattr(FaultLog, "PRUNE_EVERY", 4)
    log = FaultLog(tmp_path / "faults.db", max_rows=3)
    for n in range(4):
        log.record(f"c{n}", "info", "controller")
        log.resolve(f"c{n}", "controller")
    log.record("trigger", "info", "controller")           # the 5th insert: no prune yet
    log.record("trigger2", "info", "controller")
    log.record("trigger3", "info", "controller")
    log.record("trigger4", "info", "controller")          # the 8th: prune
    assert len(on_disk(log.path)) == 4                     # the active ones outnumber the bound
    log.close()
    with sqlite3.connect(log.path) as db:
        db.execute("INSERT INTO faults (code, severity, source, first_seen, last_seen, count, "
                   "state, cleared_at) VALUES ('x', 'info', 'y', 'a', 'a', 1, 'cleared', 'a')")
    FaultLog(log.path, max_rows=3).close()
    assert len(on_disk(log.path)) == 4


# ------------------------------------------------------------------ bad files

def test_a_missing_directory_is_made(tmp_path):
    FaultLog(tmp_path / "a" / "b" / "faults.db").close()
    assert (tmp_path / "a" / "b" / "faults.db").is_file()


@pytest.mark.parametrize("content", [
    b"not a database at all" * 100,                    # refused before SQLite sees it
    b"SQLite format 3\x00" + b"\xff" * 4080,           # SQLite's own "not a database"
])
def test_garbage_is_refused_as_corrupt(tmp_path, content):
    path = tmp_path / "faults.db"
    path.write_bytes(content)
    with pytest.raises(FaultLogUnusable, match="is damaged") as err:
        FaultLog(path)
    assert err.value.reason == "corrupt" and isinstance(err.value, LedwardenError)


def test_a_damaged_page_is_refused_as_corrupt(tmp_path):
    path = tmp_path / "faults.db"
    log = FaultLog(path)
    for n in range(300):
        log.record(f"code-{n}", "info", "controller", {"pad": "x" * 200})
    log.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[3 * page:5 * page] = bytes(range(256)) * (2 * page // 256)
    path.write_bytes(bytes(data))
    with pytest.raises(FaultLogUnusable) as err:
        FaultLog(path)
    assert err.value.reason == "corrupt"


def test_another_programs_database_is_refused_as_foreign(tmp_path):
    path = tmp_path / "faults.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(FaultLogUnusable, match="not a ledwarden fault log") as err:
        FaultLog(path)
    assert err.value.reason == "foreign"
    with sqlite3.connect(path) as db:                     # untouched
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("t",)]


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "faults.db"
    FaultLog(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    with pytest.raises(FaultLogUnusable, match="rolled back") as err:
        FaultLog(path)
    assert err.value.reason == "newer"


def test_migrations_run_in_order_up_to_the_schema_version(tmp_path, monkeypatch):
    path = tmp_path / "faults.db"
    FaultLog(path).record("a", "info", "controller")     # left open: the WAL stays, as after a crash
    v = schema.SCHEMA_VERSION
    monkeypatch.setattr(schema, "SCHEMA_VERSION", v + 1)
    monkeypatch.setitem(schema.MIGRATIONS, v, "ALTER TABLE faults ADD COLUMN note TEXT;")
    log = FaultLog(path)
    log.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == v + 1
        assert "note" in [r[1] for r in db.execute("PRAGMA table_info(faults)")]
        assert db.execute("SELECT code FROM faults").fetchall() == [("a",)]


def test_open_or_recover_moves_a_bad_file_and_its_wal_aside(tmp_path):
    path = tmp_path / "faults.db"
    path.write_bytes(b"\x00garbage" * 512)
    (tmp_path / "faults.db-wal").write_bytes(b"old wal")
    log, note = FaultLog.open_or_recover(path)
    try:
        assert log.record("a", "info", "controller").id == 1
        aside = sorted(p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name)
        assert len(aside) == 2 and aside[1] == aside[0] + "-wal"
        assert aside[0] in note and "new fault log was started" in note
        assert "restart the service" not in note
        assert (tmp_path / aside[0]).read_bytes().startswith(b"\x00garbage")
    finally:
        log.close()


def test_open_or_recover_leaves_a_good_file_alone(tmp_path):
    FaultLog(tmp_path / "faults.db").record("a", "info", "controller")
    log, note = FaultLog.open_or_recover(tmp_path / "faults.db")
    try:
        assert note is None and [f.code for f in log.active()] == ["a"]
    finally:
        log.close()


def test_a_problem_that_is_not_the_files_is_not_recovered(tmp_path):
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")
    with pytest.raises((LedwardenError, OSError)) as err:
        FaultLog.open_or_recover(blocker / "faults.db")
    assert not isinstance(err.value, FaultLogUnusable)
    assert blocker.read_text().startswith("a file")


# ------------------------------------------------------------------ export

def test_csv_export_has_a_header_and_one_row_per_fault(flog):
    flog.record("a", "warning", "card:0x01", {"text": "=HYPERLINK(\"x\")", "n": 1}, at=T0)
    flog.record("=cmd|' /C calc'!A0", "info", "controller", at=T0 + 1)
    text = to_csv(flog.list(state="all"))
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 3
    first = dict(zip(rows[0], rows[1]))
    assert first["code"].startswith("'=")                  # a spreadsheet shows it, never runs it
    second = dict(zip(rows[0], rows[2]))
    assert json.loads(second["details"]) == {"n": 1, "text": "=HYPERLINK(\"x\")"}
    assert second["cleared_at"] == "" and second["count"] == "1"
    assert text.endswith("\r\n")


def test_json_export_carries_every_field(flog):
    fault = flog.record("a", "warning", "card:0x01", {"n": 1}, at=T0)
    doc = json.loads(to_json([fault], exported="2027-01-15T09:00:00Z", controller="lobby"))
    assert doc == {"exported": "2027-01-15T09:00:00Z", "controller": "lobby",
                   "faults": [fault.as_dict()]}


# ------------------------------------------------------------------ properties

KEYS = [("temp", "card:0x01"), ("temp", "card:0x01/module:0"), ("link", "card:0x01"),
        ("overrun", "controller")]

#: Each step: a roll choosing the operation (records most often, so episodes grow long
#: before something ends them), then its arguments.
steps = st.tuples(st.integers(0, 99), st.sampled_from(KEYS), st.sampled_from(SEVERITIES),
                  st.floats(0, 20), st.integers(0, 30))


def operation(roll: int, key, severity: str, dt: float, n: int) -> tuple:
    if roll < 60:
        return ("record", key, severity, dt)
    if roll < 68:
        return ("resolve", key)
    if roll < 74:
        return ("clear_id", n)
    if roll < 80:
        return ("clear_code", key[0])
    if roll < 86:
        return ("clear_source", "card:0x01" if n % 2 else key[1])
    if roll < 93:
        return ("flush",)
    return ("prune", n * 20.0)


operations = st.lists(steps.map(lambda s: operation(*s)), min_size=10, max_size=80)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, max_rows=st.integers(1, 6))
def test_folding_invariants_hold_for_any_sequence(ops, max_rows):
    """Model: each id's episode with its number of records and its state."""
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "faults.db"
        log = FaultLog(path, max_rows=max_rows, retention_days=100, flush_interval_s=10, clock=clock)
        model: dict[int, dict] = {}               # id -> {"key", "count", "state"}
        open_ids: dict[tuple[str, str], int] = {}
        now = T0
        for op in ops:
            if op[0] == "record":
                _, key, severity, dt = op
                clock.t += dt
                now += dt
                fault = log.record(key[0], severity, key[1], at=now)
                if key in open_ids:
                    assert fault.id == open_ids[key]
                    model[fault.id]["count"] += 1
                else:
                    assert fault.id not in model
                    open_ids[key] = fault.id
                    model[fault.id] = {"key": key, "count": 1, "state": "active"}
            elif op[0] == "resolve":
                fault = log.resolve(*op[1], at=now)
                assert (fault is None) == (op[1] not in open_ids)
                if fault:
                    model[open_ids.pop(op[1])]["state"] = "cleared"
            elif op[0].startswith("clear"):
                ids = sorted(model)
                if op[0] == "clear_id":
                    if not ids:
                        continue
                    target = ids[op[1] % len(ids)]
                    try:
                        n = log.clear(target, by="t")
                    except NotFound:
                        assert model[target]["state"] == "cleared"   # pruned
                        continue
                    hits = [target] if model[target]["state"] == "active" else []
                elif op[0] == "clear_code":
                    n = log.clear(code=op[1], by="t")
                    hits = [i for k, i in open_ids.items() if k[0] == op[1]]
                else:
                    n = log.clear(source=op[1], by="t")
                    hits = [i for k, i in open_ids.items()
                            if k[1] == op[1] or k[1].startswith(op[1] + "/")]
                assert n == len(hits)
                for i in hits:
                    model[i]["state"] = "cleared"
                    del open_ids[model[i]["key"]]
            elif op[0] == "flush":
                log.flush()
            else:
                log.prune(now=now + op[1] * DAY)

            # invariants after every step
            listed = log.list(state="all", limit=None)
            active = [(f.code, f.source) for f in listed if f.state == "active"]
            assert len(active) == len(set(active)) == len(open_ids)
            for f in listed:
                assert (f.count, f.state) == (model[f.id]["count"], model[f.id]["state"])
            kept = {f.id for f in listed}
            assert set(open_ids.values()) <= kept           # prune never drops an active fault
            disk = on_disk(path)
            assert set(disk) == kept
            for i, row in disk.items():
                assert row["state"] == model[i]["state"]
                assert 1 <= row["count"] <= model[i]["count"]   # the disk may lag, never lead
        log.close()
        disk = on_disk(path)
        assert {i: (r["count"], r["state"]) for i, r in disk.items()} == \
            {i: (model[i]["count"], model[i]["state"]) for i in disk}
        assert set(open_ids.values()) <= set(disk)


def test_symptoms_filed_before_their_cause_become_its_evidence(tmp_path):
    """One condition, one fault (issue 15 item 13), whatever order the feeds file in."""
    with FaultLog(tmp_path / "faults.db") as flog:
        flog.record("bus.timeout", "warning", "card:0x05", {"command": "GET_CONFIG"}, at=T0)
        flog.record("selftest.check.error", "warning", "card:0x05", {"check": "cards.leds"}, at=T0 + 1)
        flog.record("selftest.config.unreadable", "error", "card:0x05", at=T0 + 2)
        flog.record("bus.timeout", "warning", "card:0x06", at=T0 + 2)      # another card: its own
        offline = flog.record("card.offline", "error", "card:0x05", {"text": "gone"}, at=T0 + 3)
        again = flog.record("bus.timeout", "warning", "card:0x05", {"command": "PING"}, at=T0 + 4)
        assert again.id == offline.id
        active = [(f.code, f.source) for f in flog.active()]
        assert sorted(active) == [("bus.timeout", "card:0x06"), ("card.offline", "card:0x05")]
        cause = next(f for f in flog.active() if f.code == "card.offline")
        assert [e["code"] for e in cause.details["evidence"]] == [
            "bus.timeout", "selftest.check.error", "selftest.config.unreadable", "bus.timeout"]
        assert cause.details["text"] == "gone" and cause.count == 1
        explained = flog.list(state="cleared")
        assert {f.cleared_by for f in explained} == {f"explained by card.offline (fault {offline.id})"}
