"""Settings to inputs (correction.md section 3): curves, gains, calibration files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from controller.errors import ConfigError
from controller.fastpath import settings


def test_power_curve_follows_the_formula():
    lut = settings.power_lut(2.2)
    assert lut.dtype == np.uint16 and lut.shape == (3, 256)
    for v in (0, 1, 17, 128, 254, 255):
        assert lut[1, v] == math.floor(65535 * (v / 255) ** 2.2 + 0.5)
    assert lut[:, 0].tolist() == [0, 0, 0] and lut[:, 255].tolist() == [65535] * 3
    assert settings.power_lut(1.0)[0, 128] == math.floor(65535 * 128 / 255 + 0.5)
    per_channel = settings.power_lut((2.0, 2.2, 2.4))
    assert per_channel[0, 128] > per_channel[1, 128] > per_channel[2, 128]
    with pytest.raises(ValueError, match="^gamma: "):
        settings.power_lut(0)


def test_cie1931_curve_follows_the_formula():
    lut = settings.cie1931_lut()
    for v in (0, 5, 20, 21, 100, 255):
        lightness = 100 * v / 255
        y = lightness / 903.3 if lightness <= 8 else ((lightness + 16) / 116) ** 3
        assert lut[2, v] == math.floor(65535 * y + 0.5)
    assert lut[0, 255] == 65535 and np.all(np.diff(lut[0].astype(int)) >= 0)


def test_gains_from_brightness_and_white_balance():
    assert settings.gains_from(1.0).tolist() == [65536] * 3
    assert settings.gains_from(0.5, (1.0, 0.9, 0.0)).tolist() == [32768, math.floor(29491.2 + 0.5), 0]
    assert settings.gains_from(0).tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="^brightness: "):
        settings.gains_from(1.2)
    with pytest.raises(ValueError, match="^white: "):
        settings.gains_from(1.0, (1.0, 1.1, 1.0))


@pytest.mark.parametrize("shape", [(4, 5, 3), (4, 5, 3, 3)])
def test_calibration_round_trip(tmp_path, shape):
    calib = np.random.default_rng(0).integers(0, 10000, shape).astype(np.int16)
    settings.save_calibration(tmp_path / "c.npz", calib)
    loaded = settings.load_calibration(tmp_path / "c.npz", shape=(4, 5))
    assert loaded.dtype == np.int16 and np.array_equal(loaded, calib)


def test_calibration_files_that_break_a_rule(tmp_path):
    path = tmp_path / "c.npz"
    matrix = np.zeros((4, 5, 3, 3), np.int16)
    matrix[3, 1, 0] = [-20000, 10000, 2769]
    np.savez(path, matrix=matrix)
    with pytest.raises(ConfigError, match=r"c.npz: calib: matrix row R at pixel \(y=3, x=1\).*32769"):
        settings.load_calibration(path)
    np.savez(path, gain=np.full((4, 5, 3), -3, np.int16))
    with pytest.raises(ConfigError, match=r"gain at pixel \(y=0, x=0\) channel R is -3"):
        settings.load_calibration(path)
    np.savez(path, gain=np.zeros((4, 5, 3), np.int32))
    with pytest.raises(ConfigError, match="must be int16"):
        settings.load_calibration(path)
    np.savez(path, gain=np.zeros((4, 5, 3), np.int16))
    with pytest.raises(ConfigError, match="calibration is 5x4 pixels, the screen 6x4"):
        settings.load_calibration(path, shape=(4, 6))
    np.savez(path, gain=np.zeros((4, 5, 3), np.int16), matrix=matrix)
    with pytest.raises(ConfigError, match="exactly one array"):
        settings.load_calibration(path)
    np.savez(path, matrix=np.zeros((4, 5, 3), np.int16))
    with pytest.raises(ConfigError, match=r"'matrix' must have shape \(H, W, 3, 3\)"):
        settings.load_calibration(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="not a readable .npz"):
        settings.load_calibration(path)
