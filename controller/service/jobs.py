"""Jobs: the long-running things the service does, each with an id, progress, a log and a result.

Discovery, commissioning, detection (and later self-tests and upgrades) run
as asyncio tasks wrapped in a :class:`Job`, so the host tool can start one,
follow its progress, answer its questions ("does the wall show red?"), and
read its result, over plain JSON.  A job that needs a person's answer sets
``question`` and waits in state ``waiting`` until :meth:`Job.answer` is
called through the API.

Nobody may hold the controller forever: a question left unanswered for
``question_timeout_s`` (ten minutes unless ``controller run
--question-timeout`` says otherwise) ends the job as failed, the unanswered
question counting as *not confirmed* -- the safe answer, since nobody looked --
and the job's error says so.  A job that changes what the wall shows (test
patterns) puts the picture back in :meth:`Job.restoring`, which runs on every
ending: done, failed, cancelled, timed out, or the controller stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, NotRequired, TypedDict

from controller.errors import LedwardenError, NotFound
from controller.jsonin import JsonObject
from controller.timeutil import utc_now

log = logging.getLogger("ledwarden.jobs")



class JobState(enum.StrEnum):
    """Where a job stands.  A ``str`` enum, so the API's JSON, the OpenAPI document and every
    message show the same words as before (``"running"``), and a comparison with the word works."""

    QUEUED = "queued"
    RUNNING = "running"
    #: Waiting for a person's answer to :attr:`Job.question`.
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: The states of a job that has not ended: it still holds what it took (the bus, the controller).
UNFINISHED = frozenset({JobState.QUEUED, JobState.RUNNING, JobState.WAITING})
MAX_LOG_LINES = 500
KEEP_FINISHED = 100
#: How long a question waits for a person before its safe default applies.
QUESTION_TIMEOUT_S = 600.0
#: How long a cancel request waits for the job to wind down before answering.
CANCEL_WAIT_S = 10.0


class JobError(LedwardenError):
    """A job cannot do what was asked of it now (nothing to answer, already running …)."""


class QuestionTimeout(JobError):
    """Nobody answered a job's question in time; the job ends with the safe default recorded."""


class Job:
    """One job; coroutines update it, the API reads :meth:`as_dict`."""

    def __init__(self, job_id: int, kind: str, params: JsonObject, started_by: str,
                 exclusive: bool = False, role: str = "installer",
                 question_timeout_s: float = QUESTION_TIMEOUT_S) -> None:
        self.id = job_id
        self.question_timeout_s = question_timeout_s
        self.exclusive = exclusive
        #: The least role that may answer or cancel the job: the one that may start it.
        self.role = role
        self.kind = kind
        self.params = params
        self.started_by = started_by
        self.state = JobState.QUEUED
        self.created = utc_now()
        self.started: str | None = None
        self.finished: str | None = None
        self.progress: JobProgress = {"done": 0, "total": 0, "step": ""}
        self.log: list[str] = []
        self.result: Any = None
        self.error: str | None = None
        self.question: str | None = None
        #: How many questions the job has asked: the current one's number while it waits, so an
        #: answer can say which question it answers (two browsers, one question).
        self.question_no = 0
        self._answer: asyncio.Future[bool] | None = None
        self._t0 = time.monotonic()
        self.task: asyncio.Task | None = None

    # -------- used by the job's coroutine

    def step(self, name: str, done: int = 0, total: int = 0) -> None:
        self.progress = {"done": done, "total": total, "step": name}
        self.note(name)

    def advance(self, done: int, total: int) -> None:
        self.progress = {**self.progress, "done": done, "total": total}

    def note(self, line: str) -> None:
        stamp = f"{time.monotonic() - self._t0:7.2f}s"
        self.log.append(f"{stamp} {line}")
        del self.log[:-MAX_LOG_LINES]
        log.info("job %d (%s): %s", self.id, self.kind, line)

    async def ask(self, question: str) -> bool:
        """Wait for a person's yes or no through the API.

        Raises :class:`QuestionTimeout` when nobody answers within
        ``question_timeout_s``: the answer counts as no, and the job ends.
        """
        self._answer = asyncio.get_running_loop().create_future()
        self.question_no += 1
        self.question, self.state = question, JobState.WAITING
        self.note(f"waiting: {question}")
        try:
            return await asyncio.wait_for(self._answer, self.question_timeout_s)
        except TimeoutError:
            raise QuestionTimeout(
                f"nobody answered {question!r} within {self.question_timeout_s:g} s: it counts as "
                f"not confirmed and job {self.id} ({self.kind}) stopped; start it again when "
                f"someone can watch the wall") from None
        finally:
            self.question, self._answer, self.state = None, None, JobState.RUNNING

    @contextlib.asynccontextmanager
    async def restoring(self, what: str, restore: Callable[[], Awaitable[Any]]):
        """Run the block, then ``restore()`` however it ends (a change to the wall undone).

        The restore is shielded, so a second cancel (the controller stopping
        right after a cancel) cannot cut it short; its own failure is noted,
        not raised over the job's outcome.
        """
        try:
            yield
        finally:
            try:
                await asyncio.shield(restore())
                self.note(f"restored {what}")
            except asyncio.CancelledError:
                self.note(f"restoring {what} continues after the job ended")
                raise
            except LedwardenError as exc:
                self.note(f"could not restore {what}: {exc}")

    # -------- used by the API

    def answer(self, yes: bool, question_no: int | None = None) -> None:
        """Answer the waiting question; with ``question_no``, only if that is still the question
        asked, so a second person answering what the first already answered changes nothing."""
        if self._answer is None or self._answer.done():
            raise JobError(f"job {self.id} is not waiting for an answer")
        if question_no is not None and question_no != self.question_no:
            raise JobError(f"job {self.id} no longer asks question {question_no} (it was answered "
                           f"already); it now asks: {self.question}")
        self.note(f"answer: {'yes' if yes else 'no'}")
        self._answer.set_result(bool(yes))

    def as_dict(self, full: bool = True) -> JobView:
        """The job for the API; ``full`` adds the log and the result, left out of lists to keep them short."""
        d: JobView = {"id": self.id, "kind": self.kind, "state": self.state, "created": self.created,
             "started": self.started, "finished": self.finished, "progress": self.progress,
             "question": self.question, "question_no": self.question_no, "error": self.error, "started_by": self.started_by,
             "params": self.params}
        if full:
            d["log"], d["result"] = self.log, self.result
        return d


class JobProgress(TypedDict):
    """How far a job is: ``done`` of ``total`` units of the current ``step``."""

    done: int
    total: int
    step: str


class JobView(TypedDict):
    """A job as the API shows it (``/api/v1/jobs``); the list leaves out the log and the result."""

    id: int
    kind: str
    state: str
    created: str
    started: str | None
    finished: str | None
    progress: JobProgress
    question: str | None
    question_no: int
    error: str | None
    started_by: str
    params: JsonObject
    log: NotRequired[list[str]]
    result: NotRequired[Any]


JobBody = Callable[[Job], Awaitable[Any]]


class JobManager:
    """Starts jobs as tasks and keeps the recent ones for the API."""

    def __init__(self, question_timeout_s: float = QUESTION_TIMEOUT_S) -> None:
        self._ids = itertools.count(1)
        self.jobs: dict[int, Job] = {}
        self.question_timeout_s = question_timeout_s

    def start(self, kind: str, body: JobBody, params: JsonObject | None = None,
              started_by: str = "", exclusive: bool = False, role: str = "installer") -> Job:
        job = Job(next(self._ids), kind, params or {}, started_by, exclusive, role,
                  self.question_timeout_s)
        self.jobs[job.id] = job
        job.task = asyncio.get_running_loop().create_task(self._run(job, body),
                                                          name=f"job-{job.id}-{kind}")
        self._forget_old()
        return job

    async def _run(self, job: Job, body: JobBody) -> None:
        job.state, job.started = JobState.RUNNING, utc_now()
        job.note(f"{job.kind} started")
        try:
            job.result = await body(job)
            job.state = JobState.SUCCEEDED
        except asyncio.CancelledError:
            job.state, job.error = JobState.CANCELLED, "cancelled"
        except LedwardenError as exc:
            job.state, job.error = JobState.FAILED, str(exc)
        except Exception as exc:  # a bug: keep the service up, say so in the job
            job.state, job.error = JobState.FAILED, f"internal error: {exc!r}"
            log.error("job %d crashed:\n%s", job.id, traceback.format_exc())
        job.finished = utc_now()
        job.note(f"{job.kind} {job.state}" + (f": {job.error}" if job.error else ""))

    async def cancel(self, job: Job, wait_s: float = CANCEL_WAIT_S) -> Job:
        """Cancel an unfinished job and wait (up to ``wait_s``) until it has ended, its
        restores done, so the answer can say "cancelled" rather than "running"."""
        if job.task is None or job.task.done():
            raise JobError(f"job {job.id} ({job.kind}) has already ended ({job.state}); "
                           f"there is nothing to cancel")
        job.note("cancel requested")
        job.task.cancel()
        await asyncio.wait({job.task}, timeout=wait_s)
        return job

    def get(self, job_id: int) -> Job:
        try:
            return self.jobs[job_id]
        except KeyError:
            raise NotFound(f"no job {job_id}") from None

    def running(self, kind: str) -> Job | None:
        return next((j for j in self.jobs.values()
                     if j.kind == kind and j.state in UNFINISHED), None)

    def running_exclusive(self) -> Job | None:
        """The job holding the bus to itself, if one is unfinished."""
        return next((j for j in self.jobs.values()
                     if j.exclusive and j.state in UNFINISHED), None)

    def _forget_old(self) -> None:
        done = [j for j in self.jobs.values() if j.finished]
        for job in done[:-KEEP_FINISHED]:
            del self.jobs[job.id]

    async def shutdown(self) -> None:
        tasks = [j.task for j in self.jobs.values() if j.task and not j.task.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
