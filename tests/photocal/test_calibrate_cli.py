"""``ledwarden calibrate``: a folder of photo files (the whole screen, or cabinet by cabinet
at one exposure) to each cabinet's .npz and into a running controller's calibration store;
bad folders refused in one sentence with nothing imported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from controller.picture import calibration
from hw.sim import camera, photometry
from host.cli import main
from hw.sim.server import Simulator
from support import controller_process
from support.photocal_rig import LAYOUT, MODULE, SCREEN, Rig, nonuniformity

SIZE = 64


def write_set(folder: Path, reg, fields) -> None:
    folder.mkdir(parents=True)
    camera.write_png(folder / reg.name, reg.image)
    for shots in fields:
        for photo in shots:
            camera.write_png(folder / photo.name, photo.image)


@pytest.fixture(scope="module")
def wall() -> photometry.Wall:
    return photometry.make_wall(SIZE, SIZE, MODULE, MODULE, seed=61)


@pytest.fixture(scope="module")
def kit(tmp_path_factory, wall) -> dict[str, Path]:
    """The screen file, the camera profile, and the photos both ways."""
    root = tmp_path_factory.mktemp("photocal")
    (root / "screen.toml").write_text(SCREEN)
    rig = Rig(wall)
    profile = rig.profile()
    (root / "camera.json").write_text(json.dumps(
        {"colour": profile.colour.tolist(), "vignetting": list(profile.vignetting)}))
    write_set(root / "whole", *rig.photos())
    # cabinet by cabinet: each alone at 8 px per LED, all at the exposure the first one needed
    exposure = None
    for cab in LAYOUT.cabinets:
        reg, fields = rig.photos((cab.x, cab.y, cab.width, cab.height), exposure=exposure)
        exposure = rig.exposure
        write_set(root / "cabinets" / f"cabinet-{cab.address}", reg, fields)
    return {"root": root, "screen": root / "screen.toml", "camera": root / "camera.json"}


def run(kit, folder: str, *more: str, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(["calibrate", str(kit["root"] / folder), "--screen", str(kit["screen"]),
                   "--camera", str(kit["camera"]), *more])
    out = capsys.readouterr()
    return status, out.out, out.err


def screen_from(files: dict[int, Path]) -> np.ndarray:
    arrays = {cab.address: calibration.read_file(files[cab.address], cab) for cab in LAYOUT.cabinets}
    out = calibration.screen_array(LAYOUT, arrays)
    assert out is not None
    return out


@pytest.mark.parametrize("folder", ["whole", "cabinets"])
def test_photos_to_npz_files_make_the_wall_uniform(kit, wall, folder, tmp_path, capsys):
    status, out, err = run(kit, folder, "--out", str(tmp_path), "--json", capsys=capsys)
    assert status == 0, err
    report = json.loads(out)
    assert len(report["photo_sets"]) == (1 if folder == "whole" else 4)
    files = {a: tmp_path / f"cabinet-{a}.npz" for a in (1, 2, 3, 4)}
    assert sorted(report["written"]) == sorted(str(p) for p in files.values())
    after = nonuniformity(wall, screen_from(files))
    print(f"\nledwarden calibrate ({folder}): measured spread {report['measured_nonuniformity_percent']}"
          f" %, after (ground truth) {np.round(100 * after, 2)} %")
    assert 5 < min(report["measured_nonuniformity_percent"]) and (after < 0.01).all()


def test_the_summary_for_people(kit, tmp_path, capsys):
    status, out, _ = run(kit, "whole", "--out", str(tmp_path), capsys=capsys)
    assert status == 0
    assert "luminance spread R" in out and "of the average LED's light" in out
    assert f"written       {tmp_path / 'cabinet-4.npz'}" in out


def test_bad_folders_are_one_sentence(kit, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    for p in (kit["root"] / "whole").iterdir():
        if not p.name.startswith("green"):
            (broken / p.name).write_bytes(p.read_bytes())
    (kit["root"] / "broken").symlink_to(broken)
    status, _, err = run(kit, "broken", "--out", str(tmp_path / "out"), capsys=capsys)
    assert status == 1 and err.count("\n") == 1 and "no green photo" in err
    assert not (tmp_path / "out").exists()
    status, _, err = run(kit, "whole", capsys=capsys)
    assert status == 1 and "say where the calibration goes" in err
    (kit["root"] / "bad.json").write_text("{}")
    capsys.readouterr()
    assert main(["calibrate", str(kit["root"] / "whole"), "--screen", str(kit["screen"]),
                 "--camera", str(kit["root"] / "bad.json"), "--out", str(tmp_path)]) == 1
    assert "not a camera profile" in capsys.readouterr().err


@pytest.mark.timeout(240)
def test_imported_into_a_running_controller(kit, tmp_path, monkeypatch, capsys):
    """Through the controller's calibration import (installer token): each cabinet gets a
    stored version equal to the file written; a refused run imports nothing."""
    broken = tmp_path / "photos"
    write_set(broken, *Rig(photometry.make_wall(SIZE, SIZE, MODULE, MODULE, seed=62),
                           peak=3.0, shots=1).photos())
    (kit["root"] / "clipped").symlink_to(broken)
    with Simulator(4, pty=True) as sim, controller_process.running(
            tmp_path, sim.url, "installer", "--watch-interval", "0", "--schedule", "off",
            screen=kit["screen"]) as ctl:
        monkeypatch.setenv("LEDWARDEN_TOKEN", ctl.token)
        base = ["--controller", ctl.url]
        capsys.readouterr()
        assert main([*base, "calibrate", str(kit["root"] / "clipped"), "--screen",
                     str(kit["screen"]), "--camera", str(kit["camera"]), "--import"]) == 1
        assert "clipped (over-exposed)" in capsys.readouterr().err
        assert not (ctl.state / "calibration").exists()
        assert main([*base, "calibrate", str(kit["root"] / "whole"), "--screen", str(kit["screen"]),
                     "--camera", str(kit["camera"]), "--import", "--activate",
                     "--out", str(tmp_path / "out"), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert [(i["cabinet"], i["version"], i["active"]) for i in report["imported"]] == [
            (1, 1, 1), (2, 1, 1), (3, 1, 1), (4, 1, 1)]
        assert main([*base, "calibration", "list", "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)["cabinets"]
        assert [c["in_use"] for c in listed] == [{"from": "stored", "version": 1}] * 4
        for a in (1, 2, 3, 4):
            stored = np.load(ctl.state / "calibration" / f"0x{a:02x}" / "v1.npz")["matrix"]
            written = np.load(tmp_path / "out" / f"cabinet-{a}.npz")["matrix"]
            assert np.array_equal(stored, written)


def test_the_registration_frames_to_show(kit, tmp_path, capsys):
    """Screen-sized 8-bit frames the controller's image source plays: the whole screen's
    pattern, and each cabinet's alone; what they light is what the calibration looks for."""
    import cv2

    from controller.picture.photocal.photos import registration_lit
    assert main(["calibrate", "--patterns", str(tmp_path), "--screen", str(kit["screen"])]) == 0
    whole = cv2.imread(str(tmp_path / "registration.png"), cv2.IMREAD_UNCHANGED)
    assert whole.dtype == np.uint8 and whole.shape == (SIZE, SIZE, 3)
    assert np.array_equal(whole.any(axis=2), registration_lit(SIZE, SIZE))
    four = cv2.imread(str(tmp_path / "cabinet-4-registration.png"), cv2.IMREAD_UNCHANGED)
    assert not four[:32].any() and not four[:, :32].any()
    assert np.array_equal(four[32:, 32:].any(axis=2), registration_lit(32, 32))
    capsys.readouterr()
    assert main(["calibrate", "--screen", str(kit["screen"]), "--out", str(tmp_path)]) == 1
    assert "give the folder of photos" in capsys.readouterr().err


def test_a_replaced_module_matched_from_the_command_line(kit, wall, tmp_path, capsys):
    """``--module X,Y --current FOLDER``: the calibration in use (written by an earlier run),
    the replaced module photographed with its neighbours; only its cabinet's file is written,
    and in it only the module's LEDs differ."""
    from support.photocal_rig import REPLACED, white_difference
    status, _, err = run(kit, "whole", "--out", str(tmp_path / "cal"), capsys=capsys)
    assert status == 0, err
    new = wall.replace_module(*REPLACED)                       # module (16..31, 32..47), cabinet 3
    write_set(kit["root"] / "module-set", *Rig(new).photos((0, 16, 48, 48)))
    status, out, err = run(kit, "module-set", "--module", "20,40", "--current",
                           str(tmp_path / "cal"), "--out", str(tmp_path / "new"), "--json",
                           capsys=capsys)
    assert status == 0, err
    report = json.loads(out)
    assert (report["cabinet"], report["module"], report["region"]) == (3, [16, 32, 16, 16],
                                                                        [0, 16, 48, 48])
    assert [Path(p).name for p in report["written"]] == ["cabinet-3.npz"]
    old_files = {a: tmp_path / "cal" / f"cabinet-{a}.npz" for a in (1, 2, 3, 4)}
    before = white_difference(new, screen_from(old_files), *REPLACED)
    after = white_difference(new, screen_from({**old_files, 3: tmp_path / "new" / "cabinet-3.npz"}),
                             *REPLACED)
    with capsys.disabled():
        print(f"\nledwarden calibrate --module: white Δu'v' {before:.4f} -> {after:.5f} (ground truth), "
              f"measured {report['white_delta_uv_before']} -> {report['white_delta_uv_after']}")
    assert before > 0.007 and after < 0.002 and report["white_delta_uv_after"] < 0.001
    old3 = np.load(old_files[3])["matrix"]
    new3 = np.load(tmp_path / "new" / "cabinet-3.npz")["matrix"]
    outside = np.ones((32, 32), bool)
    outside[:16, 16:] = False                                  # cabinet 3 is at (0, 32)
    assert np.array_equal(old3[outside], new3[outside]) and not np.array_equal(old3, new3)
    capsys.readouterr()
    assert main(["calibrate", "--patterns", str(tmp_path / "frames"), "--module", "20,40",
                 "--screen", str(kit["screen"])]) == 0
    assert (tmp_path / "frames" / "module-registration.png").exists()
    assert main(["calibrate", "--patterns", str(tmp_path / "frames"), "--module", "99,40",
                 "--screen", str(kit["screen"])]) == 1
    assert "pixel (x=99, y=40) is on no cabinet" in capsys.readouterr().err


def test_the_verification_round_agrees_with_the_walls_own_light(kit, wall, tmp_path, capsys):
    """``--verify`` on photos taken before and after (the full fields through the video, the
    calibration applied) measures what the physical model says, within 0.3 points."""
    status, _, err = run(kit, "whole", "--out", str(tmp_path / "cal"), capsys=capsys)
    assert status == 0, err
    calib = screen_from({a: tmp_path / "cal" / f"cabinet-{a}.npz" for a in (1, 2, 3, 4)})
    write_set(kit["root"] / "after", *Rig(wall).photos(calib=calib))
    for folder, truth in (("whole", nonuniformity(wall, None)), ("after", nonuniformity(wall, calib))):
        status, out, err = run(kit, folder, "--verify", "--json", capsys=capsys)
        assert status == 0, err
        measured = np.array(json.loads(out)["nonuniformity_percent"])
        with capsys.disabled():
            print(f"\n--verify {folder}: measured {measured} %, ground truth "
                  f"{np.round(100 * truth, 2)} %")
        assert np.abs(measured - 100 * truth).max() < 0.3
    assert (measured < 1).all()
    status, out, _ = run(kit, "after", "--verify", capsys=capsys)
    assert status == 0 and "luminance spread R" in out and "worst module" in out


def test_the_calibration_report(kit, wall, tmp_path, capsys):
    """``--verify --before --report``: JSON and one self-contained HTML page (well-formed, four
    maps, the figures), PASS when every primary is under 1 %; Chinese from the same record."""
    import xml.etree.ElementTree as ET

    from controller.report.calibration import render_calibration_html
    status, _, err = run(kit, "whole", "--out", str(tmp_path / "cal"), capsys=capsys)
    assert status == 0, err
    calib = screen_from({a: tmp_path / "cal" / f"cabinet-{a}.npz" for a in (1, 2, 3, 4)})
    write_set(kit["root"] / "report-after", *Rig(wall).photos(calib=calib))
    (tmp_path / "settings.json").write_text(json.dumps(
        {"camera": "simulated, 800 x 700", "exposure": "1/60 s, f/8, ISO 100"}))
    status, out, err = run(kit, "report-after", "--verify", "--before", str(kit["root"] / "whole"),
                           "--report", str(tmp_path / "reports"), "--camera-settings",
                           str(tmp_path / "settings.json"), "--json", capsys=capsys)
    assert status == 0, err
    done = json.loads(out)
    assert done["result"] == "pass"
    record = json.loads(Path(done["json"]).read_text())
    before = record["figures"]["spread_percent"]["before"]
    after = record["figures"]["spread_percent"]["after"]
    assert min(before) > 5 and max(after) < 1
    page = Path(done["html"]).read_text()
    root = ET.fromstring(page.split("\n", 1)[1])                  # after the doctype: XML
    svgs = [e for e in root.iter() if e.tag.endswith("svg")]
    assert len(svgs) == 4 and all(len(list(s)) == 32 * 32 for s in svgs)   # blocks of 2 x 2 LEDs
    assert "Uniformity calibration report" in page and "1/60 s, f/8, ISO 100" in page
    assert f"{before[0]:.2f}".rstrip("0") in page
    zh = render_calibration_html(record, lang="zh")
    assert "均匀性校正报告" in zh and "合格" in zh and "签字" in zh
    status, _, err = run(kit, "report-after", "--verify", "--report", str(tmp_path / "r2"),
                         capsys=capsys)
    assert status == 1 and "--report needs --before FOLDER" in err
