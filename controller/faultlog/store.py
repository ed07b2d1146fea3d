"""The durable fault log: one row per fault episode, repeats folded in, kept on the SD card.

A card that stops answering raises the same fault ten times a second.
Writing a row for each would wear out the SD card and bury the one
interesting line; so a fault that recurs while still active is *folded*
into its open row (``count`` + 1, ``last_seen``, newest ``details``,
severity raised to the worst seen).

What is written when:

- a **new** fault is committed, fsync included, before :meth:`FaultLog.record`
  returns: once it returns, the fault survives a crash or a power cut;
- a **repeat** only changes the row in memory; the row is written at most
  once per ``flush_interval_s`` (by the next record of any fault, or by a
  timer when nothing else happens), when its state changes, and on
  :meth:`FaultLog.flush` / :meth:`FaultLog.close`.  A power cut can lose
  at most ``flush_interval_s`` worth of repeat counts, never a fault;
- **resolving** or **clearing** is committed before the call returns.

All active rows are held in memory, so folding needs no read and the API
reads active faults without touching the card.  This process is the log's
only writer (the host tool goes through the API); a second writer would
not see the memory.  One connection and one lock serve the event loop, the
bus worker and the flush timer, each holding the lock for one short
transaction.  A call that commits waits for an fsync (milliseconds on an
SD card): from the event loop, prefer ``asyncio.to_thread``.
"""

from __future__ import annotations

import builtins
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Self

from controller.errors import LedwardenError, NotFound, PayloadError
from controller.faultlog import causes, schema
from controller.faultlog.model import (
    SEVERITIES,
    Fault,
    check_name,
    check_severity,
    details_json,
    parse_time,
    severities_from,
    source_matches,
    worse,
)
from controller.faultlog.schema import FaultLogUnusable
from controller.jsonin import JsonObject
from controller.timeutil import utc_text

log = logging.getLogger("ledwarden.faults")

DAY_S = 86400.0


class FaultLog:
    """The fault log in the SQLite file ``path`` (normally ``STATE/faults.db``).

    ``max_rows`` and ``retention_days`` bound the file: cleared faults go
    after ``retention_days``, and the oldest cleared ones beyond
    ``max_rows``; active faults are never deleted.  ``clock`` (monotonic
    seconds) times the flushes and is injectable for tests.
    """

    #: New faults between automatic prunes: often enough to keep the file
    #: near its bound, rarely enough that the scan costs nothing.
    PRUNE_EVERY = 200

    def __init__(self, path: Path, *, max_rows: int = 20000, retention_days: int = 400,
                 flush_interval_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self.max_rows = max_rows
        self.retention_days = retention_days
        self.flush_interval_s = flush_interval_s
        self._clock = clock
        self._lock = threading.RLock()
        self._active: dict[tuple[str, str], Fault] = {}
        self._keys: dict[int, tuple[str, str]] = {}
        self._written: dict[int, float] = {}      # clock time each active row was last written
        self._dirty: set[int] = set()              # active rows with repeats not yet written
        self._timer: threading.Timer | None = None
        self._inserts = 0
        self._closed = False
        self._db = schema.connect(self.path)
        try:
            with self._sql():
                rows = self._db.execute("SELECT * FROM faults WHERE state = 'active'").fetchall()
            now = self._clock()
            for row in rows:
                self._remember(_fault(row), now)
            self.prune()
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def open_or_recover(cls, path: Path, **kwargs) -> tuple[FaultLog, str | None]:
        """Open ``path``; if the file is damaged, foreign or from newer software, move it aside.

        Returns the log and a sentence for the service's log and status when
        a file was moved (``faults.db.corrupt-TIMESTAMP`` and its WAL), else
        None.  The controller keeps its fault history only as long as the
        file is sound; a fresh log beats a controller that cannot start.
        Problems that are not the file's (a read-only or full disk) are
        raised, not recovered: moving the file would not help.
        """
        try:
            return cls(path, **kwargs), None
        except FaultLogUnusable as exc:
            try:
                aside = schema.move_aside(Path(path), exc.reason)
            except OSError as err:
                raise LedwardenError(f"{exc.problem}, and it cannot be moved aside "
                                     f"({err.strerror or err}): move it away by hand") from None
            note = (f"{exc.problem}; it was moved to {aside.name} (with its WAL, for a "
                    "post-mortem) and a new fault log was started")
            log.warning("%s", note)
            return cls(path, **kwargs), note

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- feeding

    def record(self, code: str, severity: str, source: str, details: JsonObject | None = None, *,
               at: float | None = None) -> Fault:
        """Raise a fault (``at`` in epoch seconds, default now); returns it as it now stands.

        An active fault with the same code and source absorbs it: count + 1,
        ``last_seen`` moves on, ``details`` become these, severity becomes
        the worse of the two.  Otherwise a new active row is committed
        before this returns — a cleared fault that comes back is a new
        episode.  A symptom whose cause is active on the same card becomes
        the cause's evidence instead, and a new cause absorbs its card's
        symptoms (:mod:`controller.faultlog.causes`).
        """
        check_name("code", code)
        check_name("source", source)
        check_severity(severity)
        details_text = details_json(details)
        when = utc_text(at)
        with self._lock:
            self._check_open()
            card = causes.card_of(source)
            cause = self._active.get((causes.EXPLAINED_BY.get(code, ""), card or ""))
            if cause is not None:
                return self._add_evidence(cause, code, source, json.loads(details_text), when)
            old = self._active.get((code, source))
            if old is not None:
                fault = replace(old, count=old.count + 1, last_seen=max(old.last_seen, when),
                                details=json.loads(details_text),
                                severity=worse(old.severity, severity))
                self._active[(code, source)] = fault
                self._dirty.add(fault.id)
                self._flush_quietly()
                self._arm_timer()
                return fault
            with self._transaction():
                cursor = self._db.execute(
                    "INSERT INTO faults (code, severity, source, first_seen, last_seen, count, "
                    "state, details) VALUES (?, ?, ?, ?, ?, 1, 'active', ?)",
                    (code, severity, source, when, when, details_text))
            if cursor.lastrowid is None:      # cannot happen after an INSERT; for the type
                raise LedwardenError(f"the fault log {self.path} gave no id to a new fault")
            fault = Fault(id=cursor.lastrowid, code=code, severity=severity, source=source,
                          first_seen=when, last_seen=when, count=1, state="active",
                          details=json.loads(details_text))
            self._remember(fault, self._clock())
            self._inserts += 1
            if self._inserts % self.PRUNE_EVERY == 0:
                self._prune_quietly()
            symptoms = [f for (c, src), f in self._active.items()
                        if causes.explains(code, c) and causes.card_of(src) == source]
            if symptoms:
                for symptom in symptoms:
                    fault = self._add_evidence(fault, symptom.code, symptom.source,
                                               symptom.details, symptom.last_seen)
                self._close_episodes(symptoms, f"explained by {code} (fault {fault.id})")
            # A due repeat of another fault rides along with this record.
            self._flush_quietly()
            return fault

    def _add_evidence(self, cause: Fault, code: str, source: str, details: JsonObject,
                      when: str) -> Fault:
        """Fold a symptom into its active cause (in memory; written like a repeat)."""
        fault = replace(cause, last_seen=max(cause.last_seen, when),
                        details=causes.with_evidence(cause.details, code, source, details, when))
        self._active[(fault.code, fault.source)] = fault
        self._dirty.add(fault.id)
        self._flush_quietly()
        self._arm_timer()
        return fault

    def resolve(self, code: str, source: str, *, by: str = "auto",
                at: float | None = None) -> Fault | None:
        """The condition went away (a card answers again): its active fault becomes cleared.

        Returns the cleared fault, or None if none was active.  Counts folded
        in memory are written in the same commit.
        """
        with self._lock:
            self._check_open()
            fault = self._active.get((code, source))
            if fault is None:
                return None
            return self._close_episodes([fault], by, at)[0]

    def clear(self, fault_id: int | None = None, *, code: str | None = None,
              source: str | None = None, by: str) -> int:
        """A person clears faults: by id, by code, by source (and what lies under it), or a mix.

        Every selector given must match.  Only active faults change; clearing
        a cleared fault is not an error and counts 0.  An id that never
        existed (or was pruned) is :class:`~controller.errors.NotFound`.
        Returns how many faults were cleared.
        """
        if fault_id is None and code is None and source is None:
            raise PayloadError("say which faults to clear: an id, a code or a source")
        with self._lock:
            self._check_open()
            if fault_id is not None and fault_id not in self._keys:
                self.get(fault_id)                # NotFound, or an already cleared fault
                return 0
            chosen = [f for f in self._active.values()
                      if (fault_id is None or f.id == fault_id)
                      and (code is None or f.code == code)
                      and (source is None or source_matches(f.source, source))]
            return len(self._close_episodes(chosen, by)) if chosen else 0

    # ---------------------------------------------------------------- reading

    def get(self, fault_id: int) -> Fault:
        """One fault by id, with any folded repeats not yet written."""
        with self._lock:
            self._check_open()
            key = self._keys.get(fault_id)
            if key is not None:
                return self._active[key]
            with self._sql():
                row = self._db.execute("SELECT * FROM faults WHERE id = ?", (fault_id,)).fetchone()
        if row is None:
            raise NotFound(f"no fault {fault_id} (it may have been removed by retention; "
                           "see `ledwarden faults list --state all`)")
        return _fault(row)

    def list(self, *, state: str | None = "active", severity: str | None = None,
             source: str | None = None, since: str | None = None,
             limit: int | None = 1000) -> builtins.list[Fault]:
        """Faults, the most recently seen first.

        ``state`` is ``active``, ``cleared`` or None / ``all``; ``severity``
        means that bad or worse; ``source`` includes what lies under it;
        ``since`` (a date or ISO time) keeps faults seen at or after it;
        ``limit`` None means all.  Active faults come from memory, so they
        are current to the last repeat.
        """
        if state == "all":
            state = None
        if state not in (None, "active", "cleared"):
            raise PayloadError(f"state must be active, cleared or all, not {state!r}")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise PayloadError(f"limit must be a positive whole number, not {limit!r}")
        wanted = severities_from(severity) if severity is not None else SEVERITIES
        since = parse_time(since) if since is not None else None
        found: builtins.list[Fault] = []
        with self._lock:
            self._check_open()
            if state in (None, "active"):
                found += [f for f in self._active.values()
                          if f.severity in wanted
                          and (source is None or source_matches(f.source, source))
                          and (since is None or f.last_seen >= since)]
            if state in (None, "cleared"):
                found += self._cleared(wanted, source, since, limit)
        found.sort(key=lambda f: (f.last_seen, f.id), reverse=True)
        return found if limit is None else found[:limit]

    def active(self) -> builtins.list[Fault]:
        """Every active fault, most recently seen first."""
        return self.list(state="active", limit=None)

    def counts(self) -> JsonObject:
        """Active faults in total and by severity (every severity present), for status views."""
        with self._lock:
            self._check_open()
            by = dict.fromkeys(SEVERITIES, 0)
            for fault in self._active.values():
                by[fault.severity] += 1
            return {"active": len(self._active), "by_severity": by}

    def integrity(self) -> str:
        """``ok``, or what SQLite's quick check found wrong with the file."""
        with self._lock:
            self._check_open()
            with self._sql():
                return schema.quick_check(self._db)

    # ---------------------------------------------------------------- upkeep

    def flush(self) -> None:
        """Write every folded repeat now (before a planned shutdown or an export)."""
        with self._lock:
            self._check_open()
            self._flush(due_only=False)

    def prune(self, now: float | None = None) -> int:
        """Apply retention; returns how many cleared faults were deleted.

        First cleared faults cleared more than ``retention_days`` ago, then
        the oldest cleared ones while the log holds more than ``max_rows``.
        Active faults are never deleted, whatever their age or number: an
        open problem outlives any retention policy.  Freed pages are reused
        by later rows rather than returned with a VACUUM, which would
        rewrite the whole file.
        """
        cutoff = utc_text((time.time() if now is None else now) - self.retention_days * DAY_S)
        with self._lock:
            self._check_open()
            with self._sql():
                old, total = self._db.execute(
                    "SELECT coalesce(sum(state = 'cleared' AND cleared_at < ?), 0), count(*) "
                    "FROM faults", (cutoff,)).fetchone()
            excess = max(0, total - old - self.max_rows)
            if not old and not excess:
                return 0     # no write transaction at all: most prunes find nothing
            with self._transaction():
                gone = self._db.execute("DELETE FROM faults WHERE state = 'cleared' "
                                        "AND cleared_at < ?", (cutoff,)).rowcount
                if excess:
                    gone += self._db.execute(
                        "DELETE FROM faults WHERE id IN (SELECT id FROM faults WHERE "
                        "state = 'cleared' ORDER BY cleared_at, id LIMIT ?)", (excess,)).rowcount
            if total - gone > self.max_rows:
                log.warning("the fault log holds %d faults, more than its bound of %d, and "
                            "only active ones are left", total - gone, self.max_rows)
            return gone

    def close(self) -> None:
        """Write folded repeats and close the file; later calls raise.  Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            try:
                self._flush(due_only=False)
            finally:
                self._closed = True
                self._db.close()

    # ---------------------------------------------------------------- machinery

    def _check_open(self) -> None:
        """Refuse use after :meth:`close`: a record then would be lost without a word."""
        if self._closed:
            raise LedwardenError(f"the fault log {self.path} is closed")

    @contextmanager
    def _sql(self) -> Iterator[None]:
        """SQLite errors as the project's: callers catch ``LedwardenError`` and show its words."""
        try:
            yield
        except sqlite3.Error as exc:
            raise schema.translate(exc, self.path) from exc

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One short write transaction, committed (and fsynced) or rolled back as a whole.

        ``IMMEDIATE`` takes the write lock at the start, so a transaction
        never fails half-way for want of it.
        """
        with self._sql():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _remember(self, fault: Fault, written: float) -> None:
        """Hold an active row in memory, as written to disk at clock time ``written``."""
        key = (fault.code, fault.source)
        self._active[key] = fault
        self._keys[fault.id] = key
        self._written[fault.id] = written

    def _cleared(self, severities, source, since, limit) -> builtins.list[Fault]:
        """Cleared rows matching the filters, from the file (they never change in memory).

        ``source`` matches itself and what lies under it; the LIKE pattern is
        escaped so a ``_`` in a source name is not a wildcard.
        """
        where, args = ["state = 'cleared'", f"severity IN ({','.join('?' * len(severities))})"], \
            list(severities)
        if source is not None:
            pattern = source.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("(source = ? OR source LIKE ? ESCAPE '\\')")
            args += [source, pattern + "/%"]
        if since is not None:
            where.append("last_seen >= ?")
            args.append(since)
        sql = f"SELECT * FROM faults WHERE {' AND '.join(where)} ORDER BY last_seen DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._sql():
            return [_fault(r) for r in self._db.execute(sql, args).fetchall()]

    def _close_episodes(self, faults: builtins.list[Fault], by: str,
                        at: float | None = None) -> builtins.list[Fault]:
        """Clear active faults in one commit, folded counts included, then forget them."""
        when = utc_text(at)
        closed = [replace(f, state="cleared", cleared_at=when, cleared_by=by) for f in faults]
        with self._transaction():
            for fault in closed:
                self._write(fault)
        for fault in closed:
            del self._active[self._keys.pop(fault.id)]
            self._written.pop(fault.id, None)
            self._dirty.discard(fault.id)
        return closed

    def _write(self, fault: Fault) -> None:
        """Write an active row's folded repeats, or a closed episode's end too.

        A repeat leaves ``state`` out of the statement: naming a column of
        the partial index's WHERE makes SQLite rewrite the index entry, and
        that would double the pages every folded repeat writes.
        """
        values = (fault.severity, fault.last_seen, fault.count, details_json(fault.details))
        if fault.state == "active":
            self._db.execute("UPDATE faults SET severity = ?, last_seen = ?, count = ?, "
                             "details = ? WHERE id = ?", (*values, fault.id))
        else:
            self._db.execute("UPDATE faults SET severity = ?, last_seen = ?, count = ?, "
                             "details = ?, state = ?, cleared_at = ?, cleared_by = ? WHERE id = ?",
                             (*values, fault.state, fault.cleared_at, fault.cleared_by, fault.id))

    def _flush(self, *, due_only: bool) -> None:
        """Write folded repeats in one commit: all of them, or those whose interval has passed."""
        now = self._clock()
        ids = [i for i in self._dirty
               if not due_only or now - self._written[i] >= self.flush_interval_s]
        if not ids:
            return
        with self._transaction():
            for fault_id in ids:
                self._write(self._active[self._keys[fault_id]])
        for fault_id in ids:
            self._dirty.discard(fault_id)
            self._written[fault_id] = now

    def _flush_quietly(self) -> bool:
        """Write due repeats; a failure is logged, not raised.

        The record that triggered it has been folded in memory already, so
        raising would tell a feed its fault was lost when it was not (and
        invite a retry that counts it twice).  The repeats stay pending and
        are tried again.
        """
        try:
            self._flush(due_only=True)
            return True
        except LedwardenError as exc:
            log.error("could not write folded fault repeats (kept in memory, will retry): %s",
                      exc)
            return False

    def _arm_timer(self, at_least: float = 0.0) -> None:
        """Make sure a pending repeat is written on time even if nothing else happens."""
        if self._timer is not None or not self._dirty:
            return
        due = min(self._written[i] for i in self._dirty) + self.flush_interval_s
        delay = max(at_least, due - self._clock(), 0.0)
        self._timer = threading.Timer(delay, self._on_timer)
        self._timer.daemon = True
        self._timer.start()

    def _on_timer(self) -> None:
        """The timer thread: write what is due, then wait for the next due row."""
        with self._lock:
            self._timer = None
            if self._closed:
                return
            ok = self._flush_quietly()
            # After a failure, wait a full interval rather than spin on a broken disk.
            self._arm_timer(0.0 if ok else self.flush_interval_s)

    def _prune_quietly(self) -> None:
        """Retention after an insert; a failure must not make the committed fault look lost."""
        try:
            self.prune()
        except LedwardenError as exc:
            # The fault itself is committed; retention can wait for the next round.
            log.error("fault log retention failed: %s", exc)


def _fault(row: sqlite3.Row) -> Fault:
    """A row as a :class:`Fault`."""
    return Fault(id=row["id"], code=row["code"], severity=row["severity"], source=row["source"],
                 first_seen=row["first_seen"], last_seen=row["last_seen"], count=row["count"],
                 state=row["state"], details=json.loads(row["details"]),
                 cleared_at=row["cleared_at"], cleared_by=row["cleared_by"])
