"""Per-cabinet calibration files: CSV and .npz read alike, every bad file named by cabinet,
pixel and rule, and the screen's array put together with rotated cabinets turned."""

from __future__ import annotations

import io

import numpy as np
import pytest

from controller.config import loads_screen
from controller.errors import ConfigError
from controller.fastpath import reference
from controller.picture import calibration
from support.picture_screen import SCREEN, csv_text, matrix, q14

LAYOUT = loads_screen(SCREEN)
CAB1, CAB2 = LAYOUT.cabinets


def npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_csv_and_npz_give_the_same_array():
    m = matrix(3)
    from_csv = calibration.parse(csv_text(m).encode(), "csv", CAB1, "cab1.csv")
    assert from_csv.dtype == np.int16 and from_csv.shape == (16, 32, 3, 3)
    assert np.array_equal(from_csv, q14(m))
    from_npz = calibration.parse(calibration.to_npz(from_csv), "npz", CAB1, "cab1.npz")
    assert np.array_equal(from_npz, from_csv)


def test_a_gain_npz_is_read():
    gain = np.full((16, 32, 3), 15000, np.int16)
    assert np.array_equal(calibration.parse(npz(gain=gain), "npz", CAB1, "g"), gain)


def bad_csv(edit) -> bytes:
    lines = csv_text(matrix(4)).splitlines()
    edit(lines)
    return ("\n".join(lines) + "\n").encode()


def replace_pixel(x, y, values):
    def edit(lines):
        for i, line in enumerate(lines):
            if line.startswith(f"{x},{y},"):
                lines[i] = f"{x},{y}," + values
    return edit


@pytest.mark.parametrize("edit, words", [
    (replace_pixel(5, 3, "1.5,0.6,0,0,1,0,0,0,1"),
     "cabinet 1 (cab.csv): pixel (x=5, y=3) row R is [1.5, 0.6, 0.0], absolute sum 2.1000 > 2.0 "
     "(rule: every row's absolute sum within 2.0"),
    (replace_pixel(7, 2, "1,0,0,0,nan,0,0,0,1"),
     "pixel (x=7, y=2) has a coefficient that is not a number (NaN or infinite)"),
    (replace_pixel(0, 0, "1,0,0,0,1,0,0,0,3"), "pixel (x=0, y=0) coefficient bb is 3"),
    (lambda lines: lines.pop(10), "1 of the cabinet's 512 pixels have no row"),
    (lambda lines: lines.append("40,2,1,0,0,0,1,0,0,0,1"),
     "pixel (x=40, y=2) is outside the cabinet's 32x16 pixels"),
    (lambda lines: lines.append(lines[5]), "is given twice"),
    (lambda lines: lines.__setitem__(0, "x,y,r,g,b"), "the first line must be the header"),
    (lambda lines: lines.__setitem__(3, "1,2,3"), "has 3 fields, not 11"),
    (lambda lines: lines.__setitem__(3, "a,2,1,0,0,0,1,0,0,0,1"), "x and y must be whole numbers"),
])
def test_a_bad_csv_is_refused_naming_cabinet_pixel_and_rule(edit, words):
    with pytest.raises(ConfigError) as err:
        calibration.parse(bad_csv(edit), "csv", CAB1, "cab.csv")
    assert words in str(err.value)


def test_a_file_for_another_cabinet_size_is_refused():
    with pytest.raises(ConfigError, match=r"cabinet 1 \(x\.npz\): the calibration is 64x16 pixels, "
                                          r"the cabinet 32x16"):
        calibration.parse(npz(matrix=q14(matrix(1, 16, 64))), "npz", CAB1, "x.npz")
    with pytest.raises(ConfigError, match="have no row"):       # a smaller CSV misses pixels
        calibration.parse(csv_text(matrix(1, 8, 32)).encode(), "csv", CAB1, "x.csv")


@pytest.mark.parametrize("data, words", [
    (npz(matrix=q14(matrix(1)).astype(np.int32)), "must be int16 (Q1.14"),
    (npz(gain=np.zeros((16, 32, 3), np.int16), matrix=q14(matrix(1))), "exactly one array"),
    (npz(gain=np.full((16, 32, 3), -1, np.int16)), "gain R is -1 (Q1.14), outside 0 … 32768"),
    (npz(matrix=np.zeros((16, 32, 3), np.int16)), "'matrix' must have shape (h, w, 3, 3)"),
    (b"PK\x03\x04 not really", "not a readable .npz calibration file"),
])
def test_a_bad_npz_is_refused(data, words):
    with pytest.raises(ConfigError) as err:
        calibration.parse(data, "npz", CAB1, "x.npz")
    assert words in str(err.value)


def test_a_file_too_large_for_the_cabinet_is_refused_before_parsing():
    with pytest.raises(ConfigError, match="more than a 32x16 cabinet's calibration can take"):
        calibration.parse(b"x" * 300_000, "csv", CAB1, "big.csv")


def test_the_screen_array_places_each_cabinet_turning_the_rotated_one():
    m1, m2 = q14(matrix(1)), q14(matrix(2))
    screen = calibration.screen_array(LAYOUT, {1: m1, 2: m2})
    assert np.array_equal(screen[:, :32], m1)
    assert np.array_equal(screen[:, 32:], m2[::-1, ::-1])    # cabinet 2 hangs at 180°


def test_gains_alone_stay_gains_and_a_matrix_makes_the_screen_matrix():
    g = np.full((16, 32, 3), 12000, np.int16)
    assert calibration.screen_array(LAYOUT, {1: g}).shape == (16, 64, 3)
    assert calibration.screen_array(LAYOUT, {}) is None
    mixed = calibration.screen_array(LAYOUT, {1: g, 2: q14(matrix(2))})
    assert mixed.shape == (16, 64, 3, 3)
    assert np.array_equal(mixed[:, :32, 1, 1], g[:, :, 1]) and not mixed[:, :32, 0, 1].any()


def test_an_uncalibrated_cabinet_shows_what_no_calibration_shows():
    """The identity the missing cabinet gets changes nothing, bit for bit."""
    frame = np.random.default_rng(5).integers(0, 256, (16, 64, 3), dtype=np.uint8)
    lut, gains = np.broadcast_to(np.arange(256, dtype=np.uint16) * 257, (3, 256)).copy(), [65536] * 3
    with_cab1 = calibration.screen_array(LAYOUT, {1: q14(matrix(1))})
    a = reference.Pipeline(LAYOUT, lut, gains, with_cab1).process(frame)
    b = reference.Pipeline(LAYOUT, lut, gains, None).process(frame)
    assert np.array_equal(a.buffers[2], b.buffers[2])
    assert not np.array_equal(a.buffers[1], b.buffers[1])


def test_the_fast_reading_and_the_line_by_line_one_agree():
    """A good file is read by NumPy's parser; the line-by-line reading (which names errors)
    must give the same array, or an error would describe another file than the one read."""
    text = csv_text(matrix(8)).replace("\n", "\r\n")
    fast = calibration.read_csv(text.encode(), CAB1, "c")
    slow = calibration._read_csv_rows(text, CAB1, "cabinet 1 (c)", "c")
    assert np.array_equal(fast, slow) and np.array_equal(fast, q14(matrix(8)))
