"""The simulated wall's light and the camera that photographs it: the spreads the issue asks
for, a replaced module about Δu′v′ 0.01 off, light kept by the camera, clipping and files."""

from __future__ import annotations

import cv2
import numpy as np

from hw.sim import camera, photometry


def full(wall: photometry.Wall, channel: int | None = None) -> np.ndarray:
    drive = np.zeros((wall.height, wall.width, 3), np.uint16)
    if channel is None:
        drive[:] = 65535
    else:
        drive[..., channel] = 65535
    return drive


def test_the_wall_spreads_as_real_modules_do():
    wall = photometry.make_wall(64, 64, 16, 16, seed=5)
    for k in range(3):
        y = photometry.emit(wall, full(wall, k))[..., 1]
        assert 0.05 <= y.std() / y.mean() <= 0.10
    xy = photometry.xyz_to_xy(wall.primaries[..., 1, :])     # green's chromaticity
    assert 0.0005 < xy.std(axis=(0, 1)).max() < 0.005
    assert np.array_equal(photometry.make_wall(64, 64, 16, 16, seed=5).primaries, wall.primaries)
    assert not np.array_equal(photometry.make_wall(64, 64, 16, 16, seed=6).primaries,
                              wall.primaries)


def test_ageing_dims_red_most():
    new = photometry.make_wall(32, 32, 16, 16, seed=1, years=0)
    old = photometry.make_wall(32, 32, 16, 16, seed=1, years=8)
    loss = 1 - old.primaries[..., 1].mean(axis=(0, 1)) / new.primaries[..., 1].mean(axis=(0, 1))
    assert loss[0] > loss[2] > loss[1] > 0.05


def test_a_replaced_module_has_a_visibly_different_white():
    wall = photometry.make_wall(64, 64, 16, 16, seed=2).replace_module(1, 2)
    white = photometry.emit(wall, full(wall))
    rows, cols = wall.module_slice(1, 2)
    rest = np.ones((64, 64), bool)
    rest[rows, cols] = False
    d = np.linalg.norm(photometry.upvp(white[rows, cols].mean(axis=(0, 1)))
                       - photometry.upvp(white[rest].mean(axis=0)))
    assert abs(d - 0.01) < 0.0005
    assert np.array_equal(wall.primaries[rest], photometry.make_wall(64, 64, 16, 16, seed=2)
                          .primaries[rest])


def test_light_is_proportional_to_drive_and_dead_leds_are_dark():
    wall = photometry.make_wall(32, 32, 16, 16, seed=3).kill([(4, 7)])
    half = photometry.emit(wall, full(wall) // 2 + 1)      # 32768 of 65535
    np.testing.assert_allclose(half * 65535 / 32768, photometry.emit(wall, full(wall)))
    assert not photometry.emit(wall, full(wall))[7, 4].any()


def test_the_camera_keeps_each_leds_light():
    """One LED lit: the photo's sum above the stray light is its signal through the colour
    matrix and the vignetting (within the noise)."""
    cam = camera.Camera(read_noise=0.0, ambient=0.0, vignetting=(0.0, 0.0), bits=16)
    xyz = np.zeros((8, 8, 3))
    xyz[3, 5] = photometry.nominal_primaries()[1]
    hom = camera.view(cam, 8, 8, px_per_led=20, rotation_deg=3, keystone=(0.05, 0.02))
    photo = camera.photograph(cam, hom, xyz, exposure=50000.0)
    got = photo.astype(float).sum(axis=(0, 1)) * cam.full_well / 65535
    want = 50000.0 * cam.colour @ xyz[3, 5]
    np.testing.assert_allclose(got, want, rtol=0.02)


def test_the_camera_clips_and_writes_16_bit_png(tmp_path):
    cam = camera.Camera(bits=12)
    wall = photometry.make_wall(16, 16, 16, 16, seed=0)
    hom = camera.view(cam, 16, 16, px_per_led=10)
    xyz = photometry.emit(wall, full(wall))
    photo = camera.photograph(cam, hom, xyz, camera.exposure_for(cam, hom, xyz, peak=3.0))
    assert photo.max() == 4095 << 4 and (photo % 16 == 0).all()
    path = tmp_path / "white.png"
    camera.write_png(path, photo)
    back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert back.dtype == np.uint16 and np.array_equal(back, photo)
    again = camera.photograph(cam, hom, xyz, camera.exposure_for(cam, hom, xyz, peak=3.0))
    assert np.array_equal(again, photo)
