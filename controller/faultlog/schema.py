"""The fault log's SQLite file: schema, migrations, durability settings, and telling a bad file apart.

Why these settings:

- **WAL mode**: a commit appends to ``faults.db-wal`` and never rewrites
  the main file in place, so a crash or power cut mid-write leaves the last
  committed state readable; readers (the API) do not block the writer.
- **synchronous=FULL**: every commit fsyncs the WAL before returning.
  With NORMAL a commit survives a killed process but not a power cut, and
  a power cut is exactly when the fault that explains it (low supply, a
  card dropping off) must not vanish.  Commits are rare — a new fault, a
  clear, a folded repeat at most every ``flush_interval_s`` — so the fsyncs
  cost little.
- **application_id** marks the file as ours and **user_version** is the
  schema version, so a wrong or future file is refused with a sentence
  instead of being written into.

Only one index besides the primary key: every index page an update touches
is one more 4 KiB written to the SD card, and a folded repeat changes only
columns no index covers, so it rewrites a single page.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from controller.errors import LedwardenError
from controller.timeutil import utc_compact

#: "LWFL" — the SQLite header field that says whose file this is.
APPLICATION_ID = 0x4C57464C
SCHEMA_VERSION = 1

#: Scripts that bring a file from version N to N + 1, each run in one
#: transaction together with the new user_version.  Append, never edit: a
#: board may sit at any old version until its next upgrade.
MIGRATIONS: dict[int, str] = {
    0: f"""
    CREATE TABLE IF NOT EXISTS faults (
        -- AUTOINCREMENT: an id is never reused after retention deletes a row,
        -- so an id quoted in a ticket or an old export names one fault forever.
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        code       TEXT NOT NULL,
        severity   TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'error', 'critical')),
        source     TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen  TEXT NOT NULL,
        count      INTEGER NOT NULL CHECK (count >= 1),
        state      TEXT NOT NULL CHECK (state IN ('active', 'cleared')),
        details    TEXT NOT NULL DEFAULT '{{}}',
        cleared_at TEXT,
        cleared_by TEXT NOT NULL DEFAULT ''
    );
    -- One open episode per condition: folding relies on it, the file enforces it.
    CREATE UNIQUE INDEX IF NOT EXISTS faults_one_active ON faults(code, source)
        WHERE state = 'active';
    PRAGMA application_id = {APPLICATION_ID};
    """,
}

#: Bytes the WAL is cut back to after a checkpoint, so a burst (a mass
#: clear, a big prune) does not leave a large file behind for good.
WAL_SIZE_LIMIT = 1024 * 1024

SQLITE_MAGIC = b"SQLite format 3\x00"
_CORRUPT, _FULL, _NOTADB = 11, 13, 26
RESTART_ADVICE = "restart the service: it moves a damaged log aside and starts a new one"


class FaultLogUnusable(LedwardenError):
    """The file cannot be used as a fault log; ``reason`` is ``corrupt``, ``foreign`` or ``newer``.

    Raised only for problems with the file itself, never for a missing
    directory or a permission, so :meth:`FaultLog.open_or_recover` may move
    the file aside without hiding a fault of the board's setup.
    """

    def __init__(self, reason: str, problem: str, advice: str = "") -> None:
        super().__init__(f"{problem}; {advice}" if advice else problem)
        self.reason = reason
        self.problem = problem


def translate(exc: sqlite3.Error, path: Path) -> LedwardenError:
    """An SQLite error as the project's error, in words that say what to do."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (_CORRUPT, _NOTADB):
        return FaultLogUnusable("corrupt", f"the fault log {path} is damaged ({exc})",
                                RESTART_ADVICE)
    if code == _FULL:
        return LedwardenError(f"no space left to write the fault log {path}: free space on "
                              "the state partition")
    return LedwardenError(f"the fault log {path} cannot be used: {exc}")


def connect(path: Path) -> sqlite3.Connection:
    """Open, identify, migrate and check ``path``; the connection is ready for the store.

    Autocommit mode (``isolation_level=None``): the store writes its own
    ``BEGIN IMMEDIATE`` … ``COMMIT`` so each transaction is exactly as long
    as it means it to be.  ``check_same_thread=False`` because the store
    serialises callers from the event loop, the bus worker and its flush
    timer with one lock.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _check_header(path)
    try:
        db = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise translate(exc, path) from None
    try:
        db.row_factory = sqlite3.Row
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise LedwardenError(f"the fault log {path} cannot use WAL mode (got {mode!r}): put "
                                 "the state directory on a local file system")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        _identify_and_migrate(db, path)
        problem = quick_check(db)
        if problem != "ok":
            raise FaultLogUnusable("corrupt", f"the fault log {path} is damaged: {problem}",
                                   RESTART_ADVICE)
    except sqlite3.Error as exc:
        db.close()
        raise translate(exc, path) from None
    except BaseException:
        db.close()
        raise
    return db


def _check_header(path: Path) -> None:
    """Refuse a file that is not SQLite at all before SQLite opens it.

    Opening it would fail anyway, but closing that failed connection makes
    SQLite delete the file's WAL — the very pages a post-mortem would want.
    An empty file is a new log (SQLite treats it so).
    """
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LedwardenError(f"cannot read the fault log {path}: {exc.strerror or exc}") from None
    if head and head != SQLITE_MAGIC:
        raise FaultLogUnusable("corrupt", f"the fault log {path} is damaged (it does not start "
                               "like an SQLite database)", RESTART_ADVICE)


def quick_check(db: sqlite3.Connection) -> str:
    """``ok``, or SQLite's description of what is broken (``PRAGMA quick_check``)."""
    rows = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
    return "ok" if rows == ["ok"] else "; ".join(rows)


def _identify_and_migrate(db: sqlite3.Connection, path: Path) -> None:
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    objects = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    fresh = app_id == 0 and version == 0 and objects == 0
    if not fresh and app_id != APPLICATION_ID:
        raise FaultLogUnusable("foreign", f"{path} is a SQLite database but not a ledwarden "
                               "fault log", "name another file, or move this one away")
    if version > SCHEMA_VERSION:
        raise FaultLogUnusable("newer", f"the fault log {path} has schema version {version}, "
                               f"newer than this software's {SCHEMA_VERSION}",
                               "was the software rolled back? Upgrade it again, or move the "
                               "file away to start a new log")
    for step in range(version, SCHEMA_VERSION):
        # One transaction per step: a crash between steps leaves a file at
        # a consistent older version, and the next start carries on.
        db.executescript(f"BEGIN IMMEDIATE;\n{MIGRATIONS[step]}\n"
                         f"PRAGMA user_version = {step + 1};\nCOMMIT;")


def move_aside(path: Path, reason: str, now: dt.datetime | None = None) -> Path:
    """Rename a bad log and its WAL out of the way: ``faults.db.corrupt-20261122T100000Z``.

    The WAL and shared-memory files, where still there, move with it under
    matching names, so the set can still be opened for a post-mortem;
    nothing is deleted.
    """
    stamp = utc_compact(now)
    target = path.with_name(f"{path.name}.{reason}-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{reason}-{stamp}-{n}")
    # The WAL first: a WAL left behind under the old name would be replayed
    # into the next, new faults.db and damage it.
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    if path.exists():
        path.rename(target)
    return target
