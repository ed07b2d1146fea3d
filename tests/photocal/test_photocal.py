"""Calibration from photographs, judged by the wall's own light (the physical model), not by
the camera: a whole wall of four cabinets made uniform, a replaced module matched to its
neighbours without touching the rest, a sweep of camera conditions, and every bad photo
refused with a sentence naming it.

The figures each case reaches are printed (``pytest -s tests/photocal``) for the closing note.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from controller.picture import calibration
from controller.picture.photocal import measure, solve
from controller.picture.photocal.photos import Photo, PhotoError, read_photo
from hw.sim import camera, photometry
from support.photocal_rig import LAYOUT, MODULE, REPLACED, Rig, neighbours, nonuniformity, \
    white_difference

SIZE = 64


def wall(seed: int = 11) -> photometry.Wall:
    return photometry.make_wall(SIZE, SIZE, MODULE, MODULE, seed=seed)


def calibrate(rig: Rig) -> solve.Result:
    reg, fields = rig.photos()
    found = measure.measure(reg, fields, SIZE, SIZE, rig.profile())
    return solve.calibrate(found.primaries)


@pytest.fixture(scope="module")
def calibrated() -> tuple[photometry.Wall, solve.Result]:
    w = wall()
    return w, calibrate(Rig(w))


def test_the_whole_wall_becomes_uniform(calibrated):
    w, result = calibrated
    before = nonuniformity(w, None)
    after = nonuniformity(w, result.q14())
    print(f"\nwhole wall: sd/mean R G B before {np.round(100 * before, 2)} %, "
          f"after {np.round(100 * after, 2)} %, level {result.level:.3f}, "
          f"desaturation {result.desaturation:.3f}")
    assert ((0.05 <= before) & (before <= 0.10)).all()
    assert (after < 0.01).all()
    assert not result.dead


def test_the_coefficients_are_what_the_calibration_import_takes(calibrated):
    """Per cabinet, in its own orientation (cabinet 4 hangs upside down), within the spec's
    bound, through the .npz the store keeps and back to the same screen array."""
    _, result = calibrated
    q = result.q14()
    cabinets = solve.per_cabinet(LAYOUT, q)
    assert sorted(cabinets) == [1, 2, 3, 4]
    for cab in LAYOUT.cabinets:
        again = calibration.parse(calibration.to_npz(cabinets[cab.address]), "npz", cab, "t")
        assert np.array_equal(again, cabinets[cab.address])
    assert np.array_equal(cabinets[4], q[32:, 32:][::-1, ::-1])
    assert np.array_equal(calibration.screen_array(LAYOUT, cabinets), q)
    assert (np.abs(q.astype(np.int32)).sum(axis=-1) <= 16384).all()


def test_a_replaced_module_is_matched_to_its_neighbours_and_nothing_else_changes(calibrated):
    old, result = calibrated
    q = result.q14()
    new = old.replace_module(*REPLACED)
    before = white_difference(new, q, *REPLACED)
    mx, my = REPLACED
    x0, y0 = (mx - 1) * MODULE, (my - 1) * MODULE         # the module and its ring of neighbours
    rows, cols = slice(y0, y0 + 3 * MODULE), slice(x0, x0 + 3 * MODULE)
    rig = Rig(new)
    reg, fields = rig.photos((x0, y0, 3 * MODULE, 3 * MODULE))
    found = measure.measure(reg, fields, 3 * MODULE, 3 * MODULE, rig.profile())
    current = q[rows, cols].astype(float) / calibration.ONE
    inner = (slice(MODULE, 2 * MODULE), slice(MODULE, 2 * MODULE))
    matched = solve.match_module(found.primaries, current, inner,
                                 neighbours(new, mx, my)[rows, cols])
    after_q = q.copy()
    after_q[rows, cols] = matched.q14()
    after = white_difference(new, after_q, *REPLACED)
    print(f"\nreplaced module: white Δu'v' to its neighbours {before:.4f} before, "
          f"{after:.5f} after matching (desaturation {matched.desaturation:.3f})")
    assert 0.007 < before < 0.013
    assert after < 0.002
    outside = np.ones((SIZE, SIZE), bool)
    outside[new.module_slice(mx, my)] = False
    assert np.array_equal(after_q[outside], q[outside])
    assert not np.array_equal(after_q[~outside], q[~outside])


SWEEP = {
    "square": {},
    "perspective": {"rotation_deg": 4.0, "keystone": (0.10, 0.06)},
    "blur": {"cam": dataclasses.replace(Rig(wall()).cam, psf_sigma=0.3)},
    "noise": {"cam": dataclasses.replace(Rig(wall()).cam, read_noise=25.0, ambient=0.02)},
    "12-bit-dark": {"peak": 0.25},
    "bright": {"peak": 0.85},
    "16-bit-small": {"cam": dataclasses.replace(Rig(wall()).cam, bits=16), "px_per_led": 5.0},
}


@pytest.mark.parametrize("case", SWEEP)
def test_robustness_sweep(case):
    w = wall(seed=21)
    result = calibrate(Rig(w, **SWEEP[case]))
    before, after = nonuniformity(w, None), nonuniformity(w, result.q14())
    print(f"\nsweep {case}: sd/mean R G B {np.round(100 * before, 2)} % -> "
          f"{np.round(100 * after, 2)} %")
    assert (after < 0.01).all()


def test_dead_leds_are_left_out_and_named():
    """Dead LEDs (one of them in a corner block, one a registration LED) neither stop the
    grid from being found nor pull the target down; they keep the identity."""
    dead = [(1, 1), (4, 4), (20, 33), (50, 7)]
    w = wall(seed=31).kill(dead)
    result = calibrate(Rig(w))
    assert sorted(result.dead) == sorted(dead)
    skip = np.zeros((SIZE, SIZE), bool)
    for x, y in dead:
        skip[y, x] = True
    assert (nonuniformity(w, result.q14(), skip) < 0.01).all()
    assert np.array_equal(result.q14()[4, 4], np.eye(3) * calibration.ONE)


# ---------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def shots() -> tuple[Rig, Photo, list[list[Photo]]]:
    rig = Rig(wall(seed=41), shots=1)
    reg, fields = rig.photos()
    return rig, reg, fields


def refused(rig: Rig, reg: Photo, fields: list[list[Photo]], *words: str) -> str:
    with pytest.raises(PhotoError) as err:
        measure.measure(reg, fields, SIZE, SIZE, rig.profile())
    text = str(err.value)
    assert "\n" not in text and all(word in text for word in words), text
    return text


def test_a_full_field_given_as_the_registration_photo(shots):
    rig, reg, fields = shots
    refused(rig, fields[0][0], fields, "red-1.png", "registration pattern", "full-field")


def test_the_registration_pattern_given_as_a_full_field(shots):
    rig, reg, fields = shots
    refused(rig, reg, [fields[0], [reg], fields[2]], "registration.png", "lit",
            "full-field green")


def test_photos_in_the_wrong_order(shots):
    rig, reg, fields = shots
    refused(rig, reg, [fields[1], fields[0], fields[2]], "green-1.png", "shows green",
            "not the full-field red")


def test_over_exposed_photos():
    rig = Rig(wall(seed=41), shots=1, peak=2.0)
    reg, fields = rig.photos()
    refused(rig, reg, fields, "registration.png", "clipped", "lower the exposure")


def test_under_exposed_photos():
    rig = Rig(wall(seed=41), shots=1, peak=0.01)
    reg, fields = rig.photos()
    refused(rig, reg, fields, "under-exposed", "lengthen the exposure")


def test_a_blurred_photo():
    rig = Rig(wall(seed=41), shots=1, cam=dataclasses.replace(Rig(wall()).cam, psf_sigma=0.6))
    reg, fields = rig.photos()
    refused(rig, reg, fields, "registration.png", "blurred", "focus")


def test_a_region_that_runs_out_of_the_frame():
    rig = Rig(wall(seed=41), shots=1, px_per_led=11.5)
    reg, fields = rig.photos()
    refused(rig, reg, fields, "registration.png", "take the photo again")


def test_the_wrong_region_size_is_not_a_grid(shots):
    rig, reg, fields = shots
    with pytest.raises(PhotoError, match="registration.png: the corner blocks are not where a "
                                         "64x48 region.s are; check the region.s size"):
        measure.measure(reg, fields, SIZE, SIZE - 16, rig.profile())


def test_a_target_no_led_reaches():
    """One LED at a third of its light: a common target would dim the wall too far."""
    w = wall(seed=51)
    primaries = w.primaries.copy()
    primaries[9, 40] *= 0.4
    with pytest.raises(solve.UnreachableError, match=r"LED \(x=40, y=9\) reaches only"):
        solve.calibrate(primaries)


def test_a_module_dimmer_than_its_neighbours_cannot_be_matched():
    w = wall(seed=51)
    primaries = w.primaries[:48, :48].copy()
    primaries[16:32, 16:32] *= 0.8
    ring = np.ones((48, 48), bool)
    ring[16:32, 16:32] = False
    current = np.broadcast_to(np.eye(3), (48, 48, 3, 3)).copy()
    with pytest.raises(solve.UnreachableError, match="calibrate the whole wall"):
        solve.match_module(primaries, current, (slice(16, 32), slice(16, 32)), ring)


def test_photo_files_round_trip_and_8_bit_files_are_refused(tmp_path, shots):
    _, reg, _ = shots
    path = tmp_path / "registration.png"
    camera.write_png(path, reg.image)
    assert np.array_equal(read_photo(path).image, reg.image)
    eight = tmp_path / "jpeg-like.png"
    cv2.imwrite(str(eight), (reg.image >> 8).astype(np.uint8))
    with pytest.raises(PhotoError, match="jpeg-like.png: is uint8.*linear 16-bit"):
        read_photo(eight)
    with pytest.raises(PhotoError, match="cannot be read as an image"):
        read_photo(tmp_path / "missing.png")
