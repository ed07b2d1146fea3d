"""A frame source that produces on its own thread and hands over the newest frame.

The frame loop calls ``next(source)`` on the event loop's thread, so a source
must answer at once.  Live sources (a DDP receiver, a video decoder) instead
run ``produce`` on a daemon thread that ``offer``\\ s frames into a small
queue; ``next`` takes the newest waiting frame, or repeats the last one when
none has come (the last good picture stays up; before the first, black).
When the queue is full the oldest waiting frame is dropped and counted, so a
producer faster than the loop costs memory of two frames, never a backlog.
Each frame is queued with the monotonic time it arrived (a DDP PUSH, a decoded
picture), which ``next`` leaves in :attr:`ThreadedSource.arrived`: the frame
loop measures end-to-end latency from it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

import numpy as np

from controller.jsonin import JsonObject

log = logging.getLogger("ledwarden.video")

QUEUE_FRAMES = 2


class ThreadedSource:
    """Base class: subclasses implement :meth:`produce`, which runs until ``stopping`` is set."""

    name = "threaded"

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.frames: queue.Queue[tuple[np.ndarray, float]] = queue.Queue(maxsize=QUEUE_FRAMES)
        self.last = np.zeros((height, width, 3), np.uint8)
        #: When the frame ``next`` last returned new arrived (monotonic); None for a repeat.
        self.arrived: float | None = None
        self.stopping = threading.Event()
        self.produced = 0
        self.dropped = 0
        self.repeated = 0
        self.error: str | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"source-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.produce()
        except Exception as exc:  # say it in stats; the last picture stays up
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("source %s stopped: %s", self.name, self.error)

    def produce(self) -> None:
        raise NotImplementedError

    def offer(self, frame: np.ndarray) -> None:
        """Queue ``frame`` for the loop; drop the oldest waiting one if the queue is full."""
        item = (frame, time.monotonic())
        while True:
            try:
                self.frames.put_nowait(item)
                self.produced += 1
                return
            except queue.Full:
                try:
                    self.frames.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def __iter__(self) -> ThreadedSource:
        return self

    def __next__(self) -> np.ndarray:
        newest = None
        while True:
            try:
                newest = self.frames.get_nowait()
            except queue.Empty:
                break
        if newest is None:
            self.repeated += 1
            self.arrived = None
        else:
            self.last, self.arrived = newest
        return self.last

    def wait_frame(self, timeout: float) -> np.ndarray | None:
        """The next produced frame, waiting up to ``timeout`` s (for tests and self-tests)."""
        try:
            self.last, self.arrived = self.frames.get(timeout=timeout)
        except queue.Empty:
            return None
        return self.last

    def close(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def stats(self) -> JsonObject:
        return {"source": self.name, "produced": self.produced, "dropped": self.dropped,
                "repeated": self.repeated, "error": self.error}
