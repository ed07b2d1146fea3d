"""Video files and playlists, decoded with PyAV on the source's own thread.

``file:PATH`` plays a video file, a folder of them (name order) or a playlist
(a text file, one path a line, relative to the playlist; blank lines and
``#`` comments skipped), looped.  Each picture is scaled to the screen:

* ``fit``: the whole picture, centred, black bars where the aspect differs;
* ``fill``: the screen covered, the picture's overflow cropped equally;
* ``stretch``: both axes scaled independently.

Frames are released at the file's frame rate (its average rate, else its
time base's guess, else 30) or at ``fps`` when given, by the decoding thread;
the frame loop shows the newest (see :mod:`controller.video.threaded`).

Every file is opened once when the source is made, so a file that is not a
video is one clear :class:`ConfigError` at start.  A stream that breaks while
playing is counted in ``decode_errors``, the rest of that file is skipped, the
next one plays and the last good picture stays up meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from controller.errors import ConfigError
from controller.jsonin import JsonObject
from controller.video.threaded import ThreadedSource

if TYPE_CHECKING:
    import av

MODES = ("fit", "fill", "stretch")
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".gif"}
PLAYLIST_SUFFIXES = {".txt", ".m3u", ".m3u8"}
DEFAULT_FPS = 30.0


def playlist(path: Path) -> list[Path]:
    """The files ``path`` stands for: itself, a folder's videos, or a playlist's lines."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        if not files:
            raise ConfigError(f"{path}: the folder holds no video files "
                              f"({', '.join(sorted(VIDEO_SUFFIXES))})")
        return files
    if not path.is_file():
        raise ConfigError(f"--source file:{path}: no such file or folder")
    if path.suffix.lower() not in PLAYLIST_SUFFIXES:
        return [path]
    files = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        entry = (path.parent / line) if not Path(line).is_absolute() else Path(line)
        if not entry.is_file():
            raise ConfigError(f"{path}:{number}: {line!r} is not a file; fix or remove the line")
        files.append(entry)
    if not files:
        raise ConfigError(f"{path}: the playlist names no files")
    return files


def probe(path: Path) -> float | None:
    """Open ``path`` as a video; its frame rate (``None`` if it does not say).  ConfigError if not a video."""
    import av  # here, not at the top: PyAV takes ~0.1 s to import and most commands never play video
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ConfigError(f"{path}: has no video stream; give a video file")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
    except av.FFmpegError as exc:
        raise ConfigError(f"{path}: not a video file PyAV can read ({exc}); "
                          f"give an .mp4, .mkv, .mov …") from None
    return float(rate) if rate else None


def scale(frame: av.VideoFrame, width: int, height: int, mode: str) -> np.ndarray:
    """One decoded picture as ``uint8[height][width][3]`` RGB, scaled by ``mode``."""
    if mode == "stretch":
        return frame.to_ndarray(format="rgb24", width=width, height=height)
    sw, sh = frame.width, frame.height
    factor = min(width / sw, height / sh) if mode == "fit" else max(width / sw, height / sh)
    w, h = max(1, round(sw * factor)), max(1, round(sh * factor))
    picture = frame.to_ndarray(format="rgb24", width=w, height=h)
    out = np.zeros((height, width, 3), np.uint8)
    if mode == "fit":
        y, x = (height - h) // 2, (width - w) // 2
        out[y:y + h, x:x + w] = picture
    else:
        y, x = (h - height) // 2, (w - width) // 2
        out[:] = picture[y:y + height, x:x + width]
    return out


def decode(path: Path, width: int, height: int, mode: str) -> Iterator[np.ndarray]:
    """Every picture of ``path``'s first video stream, scaled; raises what PyAV raises."""
    import av
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield scale(frame, width, height, mode)


class VideoFileSource(ThreadedSource):
    """Plays a file, folder or playlist in a loop at the file's frame rate or ``fps``."""

    def __init__(self, spec: str, width: int, height: int, mode: str = "fit",
                 fps: float | None = None, loop: bool = True) -> None:
        super().__init__(width, height)
        if mode not in MODES:
            raise ConfigError(f"--source {spec}: scaling is one of {', '.join(MODES)}, not {mode!r}")
        if fps is not None and not 0 < fps <= 240:
            raise ConfigError(f"--source {spec}: fps must be between 0 and 240, not {fps}")
        self.name = spec
        self.mode, self.fps_override, self.loop = mode, fps, loop
        self.files = playlist(Path(spec[len("file:"):] if spec.startswith("file:") else spec))
        self.rates = [probe(p) for p in self.files]
        self.decode_errors = 0
        self.file_index = 0
        self.finished = False
        self.start()

    def produce(self) -> None:
        while not self.stopping.is_set():
            before = self.produced
            for index, path in enumerate(self.files):
                self.file_index = index
                self._play(path, self.fps_override or self.rates[index] or DEFAULT_FPS)
                if self.stopping.is_set():
                    return
            if not self.loop:
                self.finished = True
                return
            if self.produced == before and self.stopping.wait(1.0):
                return  # nothing played at all: retry once a second, not in a busy loop

    def _play(self, path: Path, fps: float) -> None:
        period = 1.0 / fps
        due = time.monotonic()
        try:
            for picture in decode(path, self.width, self.height, self.mode):
                wait = due - time.monotonic()
                if wait > 0 and self.stopping.wait(wait):
                    return
                if self.stopping.is_set():
                    return
                self.offer(picture)
                due = max(due + period, time.monotonic() - period)  # no catching up a backlog
            # The last picture is shown for its period too, not replaced at once by the next
            # file's (or the loop's) first picture.
            wait = due - time.monotonic()
            if wait > 0:
                self.stopping.wait(wait)
        except Exception as exc:  # a broken stream: count it, play on with the next file
            self.decode_errors += 1
            self.error = f"{path.name}: {type(exc).__name__}: {exc}"

    def stats(self) -> JsonObject:
        return {**super().stats(), "files": len(self.files), "playing": self.file_index,
                "decode_errors": self.decode_errors, "mode": self.mode}
