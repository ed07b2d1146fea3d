"""Video files: decoded, scaled, looped and paced; playlists; files that are not video.

Clips are made here with PyAV, losslessly (PNG pictures in QuickTime .mov), with
known colours, so the decoded frames can be checked exactly.
"""

from __future__ import annotations

import time
from pathlib import Path

import av
import numpy as np
import pytest

from controller.errors import ConfigError
from controller.service.frameloop import frame_source
from controller.video.files import VideoFileSource, decode, playlist

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]


def make_clip(path: Path, colours, width=32, height=16, fps=25, codec="png", pix_fmt="rgb24"):
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for colour in colours:
            picture = np.empty((height, width, 3), np.uint8)
            picture[:] = colour
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "colours.mov", COLOURS)


def test_decoding_gives_the_clips_colours_at_the_screen_size(clip):
    frames = list(decode(clip, 64, 32, "stretch"))
    assert [f.shape for f in frames] == [(32, 64, 3)] * 4
    assert [tuple(f[10, 10]) for f in frames] == COLOURS
    assert all((f == f[0, 0]).all() for f in frames)


def test_fit_letterboxes_fill_crops_and_stretch_distorts(tmp_path):
    # a 32 × 16 clip, left half red and right half blue, onto a 32 × 32 screen
    path = tmp_path / "halves.mov"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("png", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 16, "rgb24"
        picture = np.zeros((16, 32, 3), np.uint8)
        picture[:, :16] = (255, 0, 0)
        picture[:, 16:] = (0, 0, 255)
        for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    fit = next(decode(path, 32, 32, "fit"))
    assert (fit[:8] == 0).all() and (fit[24:] == 0).all()            # bars top and bottom
    assert tuple(fit[16, 4]) == (255, 0, 0) and tuple(fit[16, 28]) == (0, 0, 255)
    fill = next(decode(path, 32, 32, "fill"))                         # 64 × 32, middle kept
    assert tuple(fill[0, 4]) == (255, 0, 0) and tuple(fill[31, 28]) == (0, 0, 255)
    assert (fill[:, :14] == (255, 0, 0)).all() and (fill[:, 18:] == (0, 0, 255)).all()
    stretch = next(decode(path, 32, 32, "stretch"))
    assert tuple(stretch[0, 4]) == (255, 0, 0) and tuple(stretch[31, 28]) == (0, 0, 255)


def collect(source, count, timeout=10):
    frames = []
    deadline = time.monotonic() + timeout
    while len(frames) < count and time.monotonic() < deadline:
        frame = source.wait_frame(0.5)
        if frame is not None:
            frames.append(tuple(frame[0, 0]))
    return frames


def test_the_source_loops_the_clip_in_order(clip):
    source = frame_source(f"file:{clip}?scale=stretch&fps=200", 16, 8)
    try:
        got = collect(source, 9)
    finally:
        source.close()
    start = got.index(COLOURS[0])
    assert got[start:start + 5] == COLOURS + [COLOURS[0]]
    assert source.stats()["decode_errors"] == 0 and source.stats()["error"] is None


def test_the_files_frame_rate_paces_the_frames(tmp_path):
    """At 10 fps, 5 frames cannot all arrive in less than 0.4 s (a lower bound: never flaky)."""
    path = make_clip(tmp_path / "slow.mov", COLOURS + COLOURS[:1], fps=10)
    source = VideoFileSource(str(path), 16, 8, loop=False)
    try:
        t0 = time.monotonic()
        got = collect(source, 5)
        elapsed = time.monotonic() - t0
    finally:
        source.close()
    assert got == COLOURS + COLOURS[:1] and elapsed >= 0.35
    assert source.rates == [10.0]


def test_next_never_waits_and_repeats_the_last_picture(clip):
    source = VideoFileSource(str(clip), 16, 8, loop=False, fps=200)
    try:
        while not source.finished:
            time.sleep(0.01)
        first = next(source)
        again = next(source)
    finally:
        source.close()
    assert again is first and source.stats()["repeated"] >= 1


def test_a_playlist_and_a_folder_play_their_files_in_order(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    make_clip(folder / "b.mov", [(0, 0, 255)])
    make_clip(folder / "a.mov", [(255, 0, 0)])
    (folder / "notes.txt").write_text("not a clip")
    assert [p.name for p in playlist(folder)] == ["a.mov", "b.mov"]
    listing = tmp_path / "show.txt"
    listing.write_text("# tonight\nclips/b.mov\n\nclips/a.mov\n")
    assert playlist(listing) == [folder / "b.mov", folder / "a.mov"]
    source = frame_source(f"file:{listing}?fps=200", 16, 8)
    try:
        got = collect(source, 4)
    finally:
        source.close()
    assert got[:2] in ([(0, 0, 255), (255, 0, 0)], [(255, 0, 0), (0, 0, 255)])
    assert set(got) == {(0, 0, 255), (255, 0, 0)}


def test_an_ordinary_lossy_mp4_decodes_close_to_its_colours(tmp_path):
    path = make_clip(tmp_path / "clip.mp4", COLOURS, width=64, height=32, codec="mpeg4",
                     pix_fmt="yuv420p")
    frames = list(decode(path, 64, 32, "fit"))
    assert len(frames) == 4
    for frame, colour in zip(frames, COLOURS):
        assert np.abs(frame[16, 32].astype(int) - colour).max() <= 12


def test_bad_files_and_options_are_one_clear_error(tmp_path, clip):
    text = tmp_path / "readme.mp4"
    text.write_text("this is not a video")
    with pytest.raises(ConfigError, match="not a video file"):
        frame_source(f"file:{text}", 16, 8)
    with pytest.raises(ConfigError, match="no such file"):
        frame_source(f"file:{tmp_path / 'missing.mp4'}", 16, 8)
    listing = tmp_path / "list.txt"
    listing.write_text("gone.mov\n")
    with pytest.raises(ConfigError, match="list.txt:1: 'gone.mov' is not a file"):
        frame_source(f"file:{listing}", 16, 8)
    with pytest.raises(ConfigError, match="scaling is one of fit, fill, stretch"):
        frame_source(f"file:{clip}?scale=zoom", 16, 8)
    with pytest.raises(ConfigError, match="fps must be a number"):
        frame_source(f"file:{clip}?fps=fast", 16, 8)
    with pytest.raises(ConfigError, match="options are"):
        frame_source(f"file:{clip}?speed=2", 16, 8)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no video files"):
        frame_source(f"file:{empty}", 16, 8)


def near(picture, colours, tolerance=16):
    return any(np.abs(picture[4, 8].astype(int) - c).max() <= tolerance for c in colours)


def test_a_stream_broken_mid_file_plays_on_and_the_last_picture_is_a_real_one(tmp_path):
    good = make_clip(tmp_path / "good.ts", COLOURS * 30, width=64, height=32, codec="mpeg4",
                     pix_fmt="yuv420p")
    data = good.read_bytes()
    third = len(data) // 3
    broken = tmp_path / "broken.ts"
    broken.write_bytes(data[:third] + bytes(range(256)) * (third // 256) + data[2 * third:])
    source = VideoFileSource(str(broken), 16, 8, loop=False, fps=240)
    try:
        deadline = time.monotonic() + 10
        while not source.finished and time.monotonic() < deadline:
            time.sleep(0.01)
        last = next(source)
    finally:
        source.close()
    assert source.finished and source.produced > 0
    assert near(last, COLOURS)     # a picture from the clip, not garbage or black


def test_a_file_that_fails_while_playing_is_counted_and_the_next_one_plays(tmp_path):
    first = make_clip(tmp_path / "a.mov", [(255, 0, 0)])
    make_clip(tmp_path / "b.mov", [(0, 0, 255)])
    source = VideoFileSource(str(tmp_path), 16, 8, fps=240)
    try:
        first.unlink()          # gone after the start-up check: fails when its turn comes
        deadline = time.monotonic() + 10
        while source.decode_errors < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        blue = source.wait_frame(2)
    finally:
        source.close()
    assert source.decode_errors >= 2 and "a.mov" in source.stats()["error"]
    assert blue is not None and tuple(blue[0, 0]) == (0, 0, 255)
