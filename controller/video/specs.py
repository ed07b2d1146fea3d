"""The ``--source`` and ``--sink`` spellings this package answers, for the frame loop's dispatch.

Sources: ``file:PATH[?scale=fit|fill|stretch&fps=N]`` (a video, a folder of
videos or a playlist; see :mod:`controller.video.files`), a bare path ending in
a video suffix, ``ddp:`` or ``ddp://HOST:PORT`` (listen for DDP; every address
and port 4048 by default).  Sinks: ``ddp://HOST[:PORT][?gamma=G]`` (send DDP) and
``colorlight:IFACE[?order=bgr|rgb&gamma=G]``, ``G`` the receiver's own gamma
(1.0, the default, for one that applies none).  Anything else is ``None``: not ours, so
the frame loop's own patterns, images and sinks get their turn.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

from controller.config import Layout
from controller.errors import ConfigError
from controller.video.colorlight import ColorlightSink, parse_spec
from controller.video.ddp import DdpSink, DdpSource, parse_listen, parse_target, parse_target_gamma
from controller.video.files import PLAYLIST_SUFFIXES, VIDEO_SUFFIXES, VideoFileSource
from controller.video.threaded import ThreadedSource


def _file_options(spec: str) -> tuple[str, str, float | None]:
    path, _, query = spec.partition("?")
    options = parse_qs(query, keep_blank_values=True) if query else {}
    unknown = set(options) - {"scale", "fps"}
    if unknown:
        raise ConfigError(f"--source {spec}: options are scale=fit|fill|stretch and fps=N, "
                          f"not {', '.join(sorted(unknown))}")
    mode = options.get("scale", ["fit"])[-1]
    fps = None
    if "fps" in options:
        try:
            fps = float(options["fps"][-1])
        except ValueError:
            raise ConfigError(f"--source {spec}: fps must be a number, as fps=25") from None
    return path, mode, fps


def video_source(spec: str, width: int, height: int) -> ThreadedSource | None:
    """A live source for ``spec``, started, or ``None`` if ``spec`` is not one of ours."""
    if spec == "ddp:" or spec.startswith("ddp://"):
        host, port = parse_listen(spec)
        return DdpSource(width, height, host, port)
    bare = Path(spec.partition("?")[0]).suffix.lower() in VIDEO_SUFFIXES | PLAYLIST_SUFFIXES
    if spec.startswith("file:") or bare:
        path, mode, fps = _file_options(spec.removeprefix("file:"))
        return VideoFileSource(path, width, height, mode, fps)
    return None


def video_sink(spec: str, layout: Layout | None) -> DdpSink | ColorlightSink | None:
    """A sink for ``spec``, or ``None`` if ``spec`` is not one of ours."""
    if not (spec.startswith("ddp:") or spec.startswith("colorlight:")):
        return None
    if layout is None:
        raise ConfigError(f"--sink {spec}: this sink needs the screen's layout")
    if spec.startswith("ddp:"):
        host, port = parse_target(spec)
        return DdpSink(layout, host, port, gamma=parse_target_gamma(spec))
    iface, order, gamma = parse_spec(spec)
    return ColorlightSink(layout, iface, order=order, gamma=gamma)
