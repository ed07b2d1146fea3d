"""Where self-test runs are kept: ``STATE/selftest.db`` (SQLite, WAL).

Each run's whole report is stored as JSON in one row, written once when the
run ends, so the quarterly comparison and ``selftest report ID`` read exactly
what the engineer saw.  Beside the runs: how far each card's event log has
been read (by card serial, so a card moved to another address keeps its
place), and small settings such as when the schedule last ran.  Everything a
run learns is committed in one transaction with the run itself: a power cut
either keeps the run and its event cursors or neither.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from controller.errors import LedwardenError, NotFound
from controller.jsonin import JsonObject
from controller.report.findings import led_detection_ran as detected

SCHEMA_VERSION = 1
KEEP_RUNS = 400        # about 25 years of quarterly inspections with the quick runs between them

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    profile TEXT NOT NULL,
    trigger TEXT NOT NULL,
    started TEXT NOT NULL,
    result TEXT NOT NULL,
    report TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS event_cursors (serial TEXT PRIMARY KEY, next_index INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class History:
    """The self-test runs, their reports and per-card event cursors, in SQLite in the state
    directory, so comparisons and cursors survive restarts."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise LedwardenError(f"{self.path} was written by a newer ledwarden (schema "
                                     f"{version}); upgrade this controller's software")
            self._db.executescript(SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise LedwardenError(f"the self-test history {self.path} cannot be opened: {exc}; "
                                 f"move it aside to start a new one") from None

    def close(self) -> None:
        """Close the database; the service calls it on shutdown."""
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------ runs

    def save(self, report: JsonObject, cursors: dict[str, int], finish=None) -> int:
        """Store a finished run and the event cursors it advanced, atomically; returns its id.

        ``finish(report)``, if given, is called once the run has its id and before
        the report is written, for whatever needs the id (the trend rows).
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "INSERT INTO runs (profile, trigger, started, result, report) VALUES (?,?,?,?,?)",
                    (report["profile"], report["trigger"], report["started"], report["result"], "{}"))
                run_id = cur.lastrowid
                assert run_id is not None  # set by the INSERT just made
                report["id"] = run_id
                if finish is not None:
                    finish(report)
                self._db.execute("UPDATE runs SET report=? WHERE id=?", (json.dumps(report), run_id))
                self._db.executemany(
                    "INSERT INTO event_cursors (serial, next_index) VALUES (?, ?) "
                    "ON CONFLICT(serial) DO UPDATE SET next_index=excluded.next_index",
                    list(cursors.items()))
                self._db.execute("DELETE FROM runs WHERE id <= ?", (run_id - KEEP_RUNS,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return run_id

    def runs(self, limit: int = 50, profile: str | None = None) -> list[JsonObject]:
        """Newest first: id, profile, trigger, started, result (no report bodies)."""
        sql = "SELECT id, profile, trigger, started, result FROM runs"
        args: tuple = ()
        if profile:
            sql, args = sql + " WHERE profile=?", (profile,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [dict(zip(("id", "profile", "trigger", "started", "result"), r)) for r in rows]

    def report(self, run_id: int) -> JsonObject:
        """One run's stored report; :class:`NotFound` for an unknown id, so the API answers 404."""
        with self._lock:
            row = self._db.execute("SELECT report FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise NotFound(f"no self-test run {run_id}; 'ledwarden selftest history' lists them")
        return json.loads(row[0])

    def previous(self, before_id: int | None = None, *, profiles: tuple[str, ...] = (),
                 where_detected: bool = False) -> JsonObject | None:
        """The newest stored report (before ``before_id``), optionally of given profiles, or
        one whose LED check ran detection."""
        sql = "SELECT report FROM runs WHERE id < ?"
        args: list = [before_id or 1 << 62]
        if profiles:
            sql += f" AND profile IN ({','.join('?' * len(profiles))})"
            args += profiles
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id DESC LIMIT 50", args).fetchall()
        for (text,) in rows:
            report = json.loads(text)
            if not where_detected or detected(report):
                return report
        return None

    def last_started(self) -> str | None:
        """When the latest run started, for the clock check: time must not run backwards between
        runs."""
        with self._lock:
            row = self._db.execute("SELECT max(started) FROM runs").fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------ cursors and settings

    def event_cursor(self, serial: str) -> int:
        """The first event index not yet read from the card with this serial; 0 for a card never
        seen."""
        with self._lock:
            row = self._db.execute("SELECT next_index FROM event_cursors WHERE serial=?",
                                   (serial,)).fetchone()
        return row[0] if row else 0

    def setting(self, key: str) -> str | None:
        """A small persistent value (the schedule's last stamp), None if never set."""
        with self._lock:
            row = self._db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_setting(self, key: str, value: str) -> None:
        """Store a small persistent value, replacing any earlier one."""
        with self._lock:
            self._db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) "
                             "DO UPDATE SET value=excluded.value", (key, value))
