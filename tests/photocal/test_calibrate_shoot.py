"""``ledwarden calibrate --shoot``: the command drives a real controller's patterns and files the
photos a tethered camera drops into a folder; the camera here is the simulated one, and it
photographs what the wall shows at that moment — the controller's video source and the
simulated cards' own test patterns, read from the running parts — so a step shown wrong, or a
photo filed under the wrong step, gives a wrong calibration or a refused photo."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from controller.picture.photocal import photos
from host.cli import main
from host.client import ControllerClient
from host.pinning import KnownControllers
from hw.sim import camera, photometry
from hw.sim.server import Simulator
from support import controller_process
from support.photocal_rig import LAYOUT, MODULE, SCREEN, Rig, nonuniformity
from test_calibrate_cli import screen_from

SIZE = 64
SHOTS = 2


class TetheredCamera(threading.Thread):
    """Watches the wall (source spec over the API, each card's test pattern) and, each time it
    changes to a calibration step, saves the photos of it into the inbox, as a photographer
    with a tethered camera does."""

    def __init__(self, client: ControllerClient, sim: Simulator, wall: photometry.Wall,
                 inbox: Path) -> None:
        super().__init__(daemon=True)
        self.client, self.sim, self.wall, self.inbox = client, sim, wall, inbox
        self.rig = Rig(wall)
        whole = camera.view(self.rig.cam, SIZE, SIZE, px_per_led=self.rig.px_per_led)
        white = photometry.emit(wall, np.full((SIZE, SIZE, 3), 65535, np.uint16))
        self.exposure = camera.exposure_for(self.rig.cam, whole, white, 0.6)
        self.stop = threading.Event()
        self.taken = 0
        self.error: BaseException | None = None

    def state(self) -> tuple[str, tuple[int, ...]]:
        return (self.client.get("/api/v1/source")["spec"],
                tuple(card.platform.pattern for card in self.sim.cards))

    def run(self) -> None:
        try:
            last = self.state()
            while not self.stop.is_set():
                now = self.state()
                if now != last:
                    time.sleep(0.3)                   # the new picture settles
                    if self.state() == now:
                        self.photograph(*now)
                        last = now
                time.sleep(0.05)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc

    def photograph(self, spec: str, patterns: tuple[int, ...]) -> None:
        frame = np.zeros((SIZE, SIZE, 3), np.uint8)
        region = None
        if spec.startswith("pattern:registration:"):
            x, y, w, h = (int(v) for v in spec.rsplit(":", 1)[1].split(","))
            frame[y:y + h, x:x + w] = photos.registration_pattern(w, h)
            region, count = (x, y, w, h), 1
        lit = [c for c, p in zip(LAYOUT.cabinets, patterns) if p in (1, 2, 3)]
        for cab, p in zip(LAYOUT.cabinets, patterns):
            if p in (1, 2, 3):
                frame[cab.y:cab.y + cab.height, cab.x:cab.x + cab.width] = 0
                frame[cab.y:cab.y + cab.height, cab.x:cab.x + cab.width, p - 1] = 255
        if lit:
            region = ((0, 0, SIZE, SIZE) if len(lit) == len(LAYOUT.cabinets)
                      else (lit[0].x, lit[0].y, lit[0].width, lit[0].height))
            count = SHOTS
        if region is None:
            return                                       # not a calibration step: no photo
        x, y, w, h = region
        hom = camera.view(self.rig.cam, w, h, px_per_led=self.rig.px_per_led,
                          rotation_deg=self.rig.rotation_deg, keystone=self.rig.keystone)
        xyz = photometry.emit(self.wall, frame.astype(np.uint16) * 257)[y:y + h, x:x + w]
        for _ in range(count):
            self.taken += 1
            part = self.inbox / f".IMG_{self.taken:04d}.png"   # written aside, then renamed
            camera.write_png(part, camera.photograph(self.rig.cam, hom, xyz, self.exposure,
                                                     shot=self.taken))
            part.rename(self.inbox / f"IMG_{self.taken:04d}.png")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("by_cabinet", [False, True], ids=["whole-screen", "by-cabinet"])
def test_the_command_drives_the_wall_and_files_the_photos(tmp_path, monkeypatch, capsys,
                                                          by_cabinet):
    wall = photometry.make_wall(SIZE, SIZE, MODULE, MODULE, seed=71)
    screen = tmp_path / "screen.toml"
    screen.write_text(SCREEN)
    profile = Rig(wall).profile()
    (tmp_path / "camera.json").write_text(json.dumps({"colour": profile.colour.tolist(),
                                                      "vignetting": list(profile.vignetting)}))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with Simulator(4, pty=True) as sim, controller_process.running(
            tmp_path, sim.url, "installer", "--watch-interval", "0", "--schedule", "off",
            screen=screen) as ctl:
        monkeypatch.setenv("LEDWARDEN_TOKEN", ctl.token)
        client = ControllerClient(ctl.url, ctl.token, known=KnownControllers(tmp_path / "k.json"))
        shown_before = client.get("/api/v1/source")["spec"]
        cam = TetheredCamera(client, sim, wall, inbox)
        cam.start()
        try:
            status = main(["--controller", ctl.url, "calibrate", str(tmp_path / "photos"),
                           "--shoot", str(inbox), "--shots", str(SHOTS), "--wait", "60",
                           *(["--by-cabinet"] if by_cabinet else []),
                           "--screen", str(screen), "--camera", str(tmp_path / "camera.json"),
                           "--out", str(tmp_path / "cal"), "--json"])
        finally:
            cam.stop.set()
            cam.join(10)
        out = capsys.readouterr()
        assert cam.error is None, cam.error
        assert status == 0, out.err
        assert client.get("/api/v1/source")["spec"] == shown_before
        assert all(card.platform.pattern == 0 for card in sim.cards)
    sets = 4 if by_cabinet else 1
    assert cam.taken == sets * (1 + 3 * SHOTS) and not list(inbox.iterdir())
    assert "photograph the registration pattern on" in out.err
    calib = screen_from({a: tmp_path / "cal" / f"cabinet-{a}.npz" for a in (1, 2, 3, 4)})
    after = nonuniformity(wall, calib)
    with capsys.disabled():
        print(f"\n--shoot ({'by cabinet' if by_cabinet else 'whole screen'}): "
              f"{cam.taken} photos, sd/mean after {np.round(100 * after, 2)} %")
    assert (after < 0.01).all()


def test_a_busy_inbox_is_refused_before_the_wall_changes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LEDWARDEN_TOKEN", "lw_test")
    monkeypatch.setenv("LEDWARDEN_CONFIG_DIR", str(tmp_path))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "old.png").write_bytes(b"x")
    screen = tmp_path / "screen.toml"
    screen.write_text(SCREEN)
    (tmp_path / "camera.json").write_text(json.dumps({"colour": np.eye(3).tolist()}))
    status = main(["--controller", "https://127.0.0.1:9", "calibrate", str(tmp_path / "photos"),
                   "--shoot", str(inbox), "--screen", str(screen), "--camera",
                   str(tmp_path / "camera.json"), "--out", str(tmp_path / "cal")])
    err = capsys.readouterr().err
    assert status == 1 and "holds 1 photo(s) already" in err and err.count("\n") == 1
