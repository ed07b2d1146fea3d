"""The frame loop: a source of frames → the fast path → a sink, at a set frame rate.

Sources (``--source``): ``pattern:NAME`` (``bars``, ``gradient``, ``white``,
``black``, ``red``, ``green``, ``blue``; ``bars`` scrolls so consecutive
frames differ; ``registration``, the calibration from photographs' pattern;
``registration`` and the solid colours take a region, ``pattern:red:X,Y,W,H``,
black elsewhere), a ``.npy`` file holding one ``uint8[H][W][3]`` frame or a
stack ``[N][H][W][3]``, an image file (PNG, JPEG … when Pillow is
installed), or a folder of such files played in a loop in name order;
video files (``file:``) and DDP (``ddp:``) come from :mod:`controller.video`.

Sinks (``--sink``): ``null`` (correct and drop: measures the board), or
``udp://HOST:PORT``, which sends every card's buffer as datagrams the way
receiving cards take video over Ethernet (``hw/sim`` listens with
``ledwarden sim --video``).  A datagram is ``"LWV1"``, the card address
(u8), three reserved bytes, the frame number (u32 LE) and the byte offset
(u32 LE) of the 1 400-byte (at most) slice of the buffer that follows.
``ddp://HOST:PORT`` and ``colorlight:IFACE`` come from :mod:`controller.video`.

The fast path runs in a worker thread (the C kernel releases the GIL and
uses its own threads), so the API stays responsive while frames flow.
Frame-time statistics: fps over the last second, p50 and p99 of the time
from taking a frame to handing its buffers to the sink, and overruns
(frames that took longer than the frame period).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import struct
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, TypedDict
from urllib.parse import urlparse

import numpy as np

from controller import fastpath
from controller.config import Layout
from controller.errors import ConfigError
from controller.fastpath.common import ScanResult
from controller.jsonin import JsonObject
from controller.percentile import percentile
from controller.picture.photocal.photos import PhotoError, registration_pattern
from controller.power import PowerLimiter
from controller.timeutil import utc_now
from controller.video.specs import video_sink, video_source

log = logging.getLogger("ledwarden.frames")

SOLID = {"white": (255, 255, 255), "black": (0, 0, 0), "red": (255, 0, 0),
         "green": (0, 255, 0), "blue": (0, 0, 255)}
BARS = np.array([(192, 192, 192), (192, 192, 0), (0, 192, 192), (0, 192, 0),
                 (192, 0, 192), (192, 0, 0), (0, 0, 192), (16, 16, 16)], dtype=np.uint8)
PATTERNS = ("bars", "gradient", *SOLID, "registration")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class FrameSource(Protocol):
    """Where frames come from: each ``next`` gives the next ``uint8[H][W][3]`` frame of the
    screen's size, forever.  Any iterator of frames is one (patterns, files, a folder); a
    live input (DDP, a video file) only has to be one too for the loop to play it."""

    def __next__(self) -> np.ndarray: ...


class FrameSink(Protocol):
    """Where corrected frames go: each card's scanned buffer, numbered, once per frame.

    ``send`` runs on the loop's worker thread and must not stop the loop for a
    receiver that is missing (video is best effort); ``name`` is shown in the
    status, ``close`` is called once when the loop stops.  A sink that also has
    ``send_frame(frame, pipeline, frame_no)`` (the 8-bit video sinks) is handed
    the source frame and the live pipeline instead, and corrects it itself."""

    @property
    def name(self) -> str: ...

    def send(self, scan: ScanResult, frame_no: int) -> None: ...

    def close(self) -> None: ...


class FramePipeline(Protocol):
    """The fast path's part in the loop: one frame in, every card's buffer out
    (:class:`controller.fastpath.Pipeline`, compiled or NumPy); ``scale`` is the current
    limiter's per-cabinet gain scale (``uint32[cabinets]``, Q16)."""

    def process(self, frame: np.ndarray, scale: np.ndarray | None = None) -> ScanResult: ...


def _pattern_frames(name: str, width: int, height: int) -> Iterator[np.ndarray]:
    if name in SOLID:
        frame = np.empty((height, width, 3), np.uint8)
        frame[:] = SOLID[name]
        while True:
            yield frame
    if name == "gradient":
        ramp = np.linspace(0, 255, width).astype(np.uint8)
        frame = np.repeat(np.repeat(ramp[None, :, None], height, 0), 3, 2)
        while True:
            yield frame
    if name == "bars":
        columns = BARS[(np.arange(width) * len(BARS)) // width]
        base = np.repeat(columns[None], height, 0)
        shift = 0
        while True:  # scroll four pixels a frame so no two frames in a row are equal
            yield np.roll(base, shift, axis=1)
            shift = (shift + 4) % width
    raise ConfigError(f"--source pattern:{name}: patterns are bars, gradient, "
                      f"{', '.join(SOLID)}")


def _region_frames(spec: str, name: str, region: str | None, width: int,
                   height: int) -> Iterator[np.ndarray]:
    """``pattern:registration[:X,Y,W,H]`` and ``pattern:COLOUR:X,Y,W,H``: the calibration from
    photographs' registration pattern (``docs/photocal.md``) or a solid colour on that region
    of the screen (the whole screen without one), black elsewhere.  Checked here, not at the
    first frame, so that a live switch to a bad spec fails."""
    if name not in SOLID and name != "registration":
        raise ConfigError(f"--source {spec}: only registration and the solid colours "
                          f"({', '.join(SOLID)}) take a region X,Y,W,H")
    try:
        x, y, w, h = (int(v) for v in region.split(",")) if region else (0, 0, width, height)
    except ValueError:
        raise ConfigError(f"--source {spec}: a region is X,Y,W,H in screen pixels, e.g. "
                          f"pattern:{name}:0,0,64,32") from None
    if x < 0 or y < 0 or w < 1 or h < 1 or x + w > width or y + h > height:
        raise ConfigError(f"--source {spec}: the region lies outside the {width}x{height} screen")
    frame = np.zeros((height, width, 3), np.uint8)
    try:
        frame[y:y + h, x:x + w] = (registration_pattern(w, h) if name == "registration"
                                   else SOLID[name])
    except PhotoError as exc:
        raise ConfigError(f"--source {spec}: {exc}") from None
    return itertools.repeat(frame)


def _load_file(path: Path, width: int, height: int) -> list[np.ndarray]:
    if path.suffix == ".npy":
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: not a readable .npy file: {exc}") from None
        frames = [data] if data.ndim == 3 else list(data)
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        try:
            from PIL import Image
        except ImportError:
            raise ConfigError(f"{path}: reading images needs Pillow (pip install pillow); "
                              f"or give frames as .npy") from None
        with Image.open(path) as img:
            frames = [np.asarray(img.convert("RGB"))]
    else:
        raise ConfigError(f"{path}: frames are .npy files or images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    for f in frames:
        if f.dtype != np.uint8 or f.shape != (height, width, 3):
            raise ConfigError(f"{path}: a frame must be uint8[{height}][{width}][3] for this "
                              f"screen, got {f.dtype}{list(f.shape)}")
    return frames


def frame_source(spec: str, width: int, height: int) -> FrameSource:
    """Frames for ``--source SPEC``, forever (video files and DDP: :mod:`controller.video`)."""
    live = video_source(spec, width, height)
    if live is not None:
        return live
    if spec.startswith("pattern:"):
        parts = spec.split(":", 2)
        name, region = parts[1], parts[2:]
        if name not in PATTERNS:  # now, not at the first frame: a live switch must fail here
            raise ConfigError(f"--source pattern:{name}: patterns are {', '.join(PATTERNS)}")
        if region or name == "registration":
            return _region_frames(spec, name, region[0] if region else None, width, height)
        return _pattern_frames(name, width, height)
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES | {".npy"})
        if not files:
            raise ConfigError(f"{path}: the folder holds no .npy or image files")
        frames = [f for p in files for f in _load_file(p, width, height)]
    elif path.is_file():
        frames = _load_file(path, width, height)
    else:
        raise ConfigError(f"--source {spec}: no such file or folder, and not pattern:NAME")

    def loop() -> Iterator[np.ndarray]:
        while True:
            yield from frames
    return loop()


class NullSink:
    """Drops the corrected buffers: the loop measures the board alone."""

    name = "null"

    def send(self, scan: ScanResult, frame_no: int) -> None:
        pass

    def close(self) -> None:
        pass


class UdpSink:
    """Sends each card's buffer as UDP datagrams to the cards' video input."""

    HEADER = struct.Struct("<4sB3xII")
    SLICE = 1400
    #: Video goes to our own cards, whose GET_OUTPUT says what they showed (outputwatch).
    feeds_cards = True

    def __init__(self, host: str, port: int) -> None:
        self.name = f"udp://{host}:{port}"
        self.address = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.datagrams = 0

    def send(self, scan: ScanResult, frame_no: int) -> None:
        for address, buf in scan.buffers.items():
            data = np.ascontiguousarray(buf).data.cast("B")
            for offset in range(0, len(data), self.SLICE):
                header = self.HEADER.pack(b"LWV1", address, frame_no & 0xFFFFFFFF, offset)
                try:
                    self.sock.sendto(header + data[offset:offset + self.SLICE], self.address)
                    self.datagrams += 1
                except OSError:
                    pass  # video is best effort: a missing receiver must not stop the loop

    def close(self) -> None:
        self.sock.close()


def frame_sink(spec: str, layout: Layout | None = None) -> FrameSink:
    """The sink for ``--sink SPEC``: ``null``, ``udp://HOST:PORT``, or (with the screen's
    ``layout``) ``ddp://HOST:PORT`` and ``colorlight:IFACE`` from :mod:`controller.video`."""
    live = video_sink(spec, layout)
    if live is not None:
        return live
    if spec == "null":
        return NullSink()
    url = urlparse(spec)
    if url.scheme == "udp" and url.hostname and url.port:
        return UdpSink(url.hostname, url.port)
    raise ConfigError(f"--sink {spec}: use null or udp://HOST:PORT, or for a wall "
                      f"ddp://HOST:PORT or colorlight:IFACE")


class FrameLoop:
    """Runs source → pipeline → sink at ``fps`` and keeps frame-time statistics.

    The source can be replaced while frames flow (:meth:`set_source`): ``next``
    is called on the event loop's thread, so an assignment made there lands
    between two frames and no frame mixes two sources.  Statistics are kept
    per source (reset when it changes) and per sink, plus the end-to-end
    latency from a frame's arrival (a live source's stamp, else the moment
    it was taken) to the sink's return, i.e. its last packet sent.
    """

    def __init__(self, layout: Layout, pipeline: FramePipeline, source: FrameSource,
                 sink: FrameSink,
                 fps: float = 30.0, source_name: str = "", *,
                 power: PowerLimiter | None = None) -> None:
        if not 0 < fps <= 240:
            raise ConfigError(f"--fps {fps}: choose a frame rate between 0 and 240")
        self.layout, self.pipeline, self.source, self.sink = layout, pipeline, source, sink
        self.fps = fps
        self.source_name = source_name
        #: The current limiter: its scale goes into each frame, the frame's sums back to it.
        self.power = power
        self.frames = 0
        self.overruns = 0
        self.times: deque[float] = deque(maxlen=1000)   # seconds per frame, most recent last
        #: Seconds spent on all ``frames`` so far: with ``frames`` the running sum and count a
        #: Prometheus summary needs (``/metrics``); ``times`` only keeps a window.
        self.busy_s = 0.0
        self.stamps: deque[float] = deque(maxlen=1000)  # monotonic time each frame finished
        self.latencies: deque[float] = deque(maxlen=1000)  # arrival → last packet sent, new frames
        self.send_times: deque[float] = deque(maxlen=1000)  # seconds in sink.send
        self.sink_frames = 0
        self.sink_slow = 0
        self.last_frame: np.ndarray | None = None
        self._new_source_counters()
        self._task: asyncio.Task | None = None
        self.error: str | None = None
        self._next_pipeline: FramePipeline | None = None

    def use_pipeline(self, pipeline: FramePipeline) -> None:
        """Compute frames with ``pipeline`` from the next frame on (a live correction change).

        The swap happens on the event loop between two frames, never while a frame is
        in the worker thread, so every frame is computed by one pipeline from start to
        end: none mixes old and new settings.  A loop that is not running takes it at once.
        """
        if self._task is None or self._task.done():
            self.pipeline = pipeline
        else:
            self._next_pipeline = pipeline

    def _new_source_counters(self) -> None:
        self.source_frames = 0      # frames taken from the current source
        self.source_new = 0         # of which it had not shown before (a live source's arrivals)
        self.source_since = utc_now()

    async def set_source(self, source: FrameSource, name: str) -> None:
        """Play ``source`` from the next frame on and close the one it replaces (off the loop:
        a source's thread may take a moment to stop).  A live source that has nothing yet
        shows the picture already on the wall, not black."""
        if self.last_frame is not None and isinstance(getattr(source, "last", None), np.ndarray):
            setattr(source, "last", self.last_frame)  # repeated until its first frame comes
        old, self.source, self.source_name = self.source, source, name
        self._new_source_counters()
        self.latencies.clear()
        await asyncio.get_running_loop().run_in_executor(None, close_source, old)

    def _one(self, frame: np.ndarray, frame_no: int) -> float:
        """Correct one frame and send it; returns when the send ended (for the latency)."""
        power = self.power
        send_frame = getattr(self.sink, "send_frame", None)
        scan, scale = None, None
        if send_frame is not None and power is None:
            # 8-bit sinks correct and re-encode in one pass (issue 16), so their send time
            # includes the correction; with a limiter they take card buffers, whose module
            # sums the limiter needs
            t0 = time.monotonic()
            send_frame(frame, self.pipeline, frame_no)
        else:
            scan, scale = ((self.pipeline.process(frame), None) if power is None
                           else power.correct(self.pipeline, frame))
            t0 = time.monotonic()
            self.sink.send(scan, frame_no)
        t1 = time.monotonic()
        self.send_times.append(t1 - t0)
        self.sink_frames += 1
        if t1 - t0 > 1.0 / self.fps:
            self.sink_slow += 1
        if power is not None and scan is not None:   # after the send: no latency added
            power.update(scan.sums, scale)
        return t1

    async def _run(self) -> None:
        period = 1.0 / self.fps
        loop = asyncio.get_running_loop()
        next_at = time.monotonic()
        while True:
            if self._next_pipeline is not None:   # between two frames: see use_pipeline
                self.pipeline, self._next_pipeline = self._next_pipeline, None
            t0 = time.monotonic()
            frame = next(self.source)
            self.last_frame = frame
            arrived = getattr(self.source, "arrived", t0)
            self.source_frames += 1
            try:
                sent = await loop.run_in_executor(None, self._one, frame, self.frames)
            except Exception as exc:  # keep the service up; say it in status
                self.error = f"frame {self.frames}: {exc!r}"
                log.error("frame loop stopped: %s", self.error)
                raise
            if arrived is not None:
                self.source_new += 1
                self.latencies.append(sent - arrived)
            t1 = time.monotonic()
            self.times.append(t1 - t0)
            self.busy_s += t1 - t0
            self.stamps.append(t1)
            self.frames += 1
            if t1 - t0 > period:
                self.overruns += 1
            next_at = max(next_at + period, t1 - period)  # don't try to catch up a backlog
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="frame-loop")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(None, close_source, self.source)
        self.sink.close()

    def source_stats(self) -> JsonObject:
        """The current source: its name, since when, frames taken and new, and its own counters
        (a live source's produced, dropped, repeated and error)."""
        own = getattr(self.source, "stats", None)
        return {**(own() if callable(own) else {}), "source": self.source_name,
                "since": self.source_since, "frames": self.source_frames,
                "new_frames": self.source_new}

    def sink_stats(self) -> JsonObject:
        """The sink: frames handed to it, slow ones (longer than a frame period), send times,
        and its own counters (send errors, packets, link …)."""
        own = getattr(self.sink, "stats", None)
        ordered = sorted(self.send_times)
        return {**(own() if callable(own) else {}), "sink": self.sink.name,
                "frames": self.sink_frames, "slow_frames": self.sink_slow,
                "send_p50_ms": _ms(percentile(ordered, 0.50)),
                "send_p99_ms": _ms(percentile(ordered, 0.99)),
                "last_send_ms": _ms(self.send_times[-1] if self.send_times else None)}

    def latency(self) -> Latency:
        """End to end, arrival (or decode) to the last packet sent, over the last 1 000 new frames."""
        ordered = sorted(self.latencies)
        return Latency(frames=len(ordered), p50_ms=_ms(percentile(ordered, 0.50)),
                       p99_ms=_ms(percentile(ordered, 0.99)))

    def video_cards(self) -> list[JsonObject]:
        """Receiving cards the sink found on its own (Colorlight discovery); [] for other sinks."""
        cards = getattr(self.sink, "cards", None)
        return cards() if callable(cards) else []

    def stats(self) -> JsonObject:
        """Everything ``status``, the watch and the ``frameloop.budget`` check read of the loop
        (a free-form object: the source's and sink's own counters are merged in)."""
        now = time.monotonic()
        recent = [t for t in self.stamps if now - t <= 1.0]
        ordered = sorted(self.times)
        return {
            "running": self._task is not None and not self._task.done(),
            "target_fps": self.fps, "fps": len(recent), "frames": self.frames,
            "overruns": self.overruns, "p50_ms": _ms(percentile(ordered, 0.50)),
            "p99_ms": _ms(percentile(ordered, 0.99)),
            "budget_ms": round(1000 / self.fps, 2), "backend": fastpath.backend,
            "threads": getattr(self.pipeline, "threads", None),
            "resolution": f"{self.layout.width}x{self.layout.height}",
            "source": self.source_name, "sink": self.sink.name, "error": self.error,
            "latency": self.latency(), "source_stats": self.source_stats(),
            "sink_stats": self.sink_stats(), "video_cards": self.video_cards(),
        }


class Latency(TypedDict):
    """End-to-end latency over the last new frames, as ``status`` and the ``video.output`` check show it."""

    frames: int
    p50_ms: float | None
    p99_ms: float | None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def close_source(source: FrameSource) -> None:
    """Stop a source that holds something (a thread, a socket); plain iterators hold nothing."""
    close = getattr(source, "close", None)
    if callable(close):
        close()
