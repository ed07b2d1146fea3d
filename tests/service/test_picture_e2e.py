"""Done-when of issue 14 (items 1, 2, 6): a real ``ledwarden controller run`` with a screen
file holding ``[correction]`` and a calibration file shows the corrected picture (the UDP
sink's buffers for a known frame equal the NumPy reference built from the same settings);
``correction set --gamma 2.4`` and ``calibration import/activate/rollback`` through the API
change it with no mixed frame, are refused with the reason for bad input, and survive a
restart; the self-test's ``fastpath.golden`` checks the wall's own settings."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from controller.config import load_screen
from controller.fastpath import reference
from controller.picture import calibration
from controller.picture.settings import Correction
from host.cli import main
from host.client import ControllerClient
from host.pinning import KnownControllers
from hw.sim.server import Simulator
from support import controller_process
from support.picture_screen import csv_text, matrix, q14, write_screen

HEADER = struct.Struct("<4sB3xII")
FRAME = np.random.default_rng(21).integers(0, 256, (16, 64, 3), dtype=np.uint8)


class Collector:
    """Receives the controller's UDP video (``LWV1``) and keeps every complete frame."""

    def __init__(self, layout) -> None:
        self.sizes = {cab.address: cab.width * cab.height * 3 * 2 for cab in layout.cabinets}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.frames: list[dict[int, np.ndarray]] = []
        self._partial: dict[int, dict[int, bytearray]] = {}
        self._got: dict[int, int] = {}
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            magic, address, frame_no, offset = HEADER.unpack_from(data)
            body = data[HEADER.size:]
            bufs = self._partial.setdefault(frame_no, {a: bytearray(n) for a, n in self.sizes.items()})
            bufs[address][offset:offset + len(body)] = body
            self._got[frame_no] = self._got.get(frame_no, 0) + len(body)
            if self._got[frame_no] == sum(self.sizes.values()):
                done = self._partial.pop(frame_no)
                self.frames.append({a: np.frombuffer(bytes(b), np.uint16) for a, b in done.items()})

    def wait_for(self, want: dict[int, np.ndarray], timeout: float = 30.0) -> int:
        """Index of the first frame received from now on equal to ``want``."""
        start, deadline = len(self.frames), time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i in range(start, len(self.frames)):
                if same(self.frames[i], want):
                    return i
            time.sleep(0.02)
        raise AssertionError("the wall never showed the expected picture")

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()


def same(a, b) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def want(layout, settings: Correction, arrays: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """The NumPy reference's buffers for the known frame, built from the same settings."""
    scan = reference.Pipeline(layout, settings.lut(), settings.gains(),
                              calibration.screen_array(layout, arrays)).process(FRAME)
    return {a: np.array(b) for a, b in scan.buffers.items()}


def quick_selftest(client: ControllerClient) -> dict:
    job = client.post("/api/v1/selftest/run", {"profile": "quick"})
    deadline = time.monotonic() + 120
    while job["state"] not in ("succeeded", "failed", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = client.get(f"/api/v1/jobs/{job['id']}")
    assert job["state"] == "succeeded", job
    return client.get(f"/api/v1/selftest/runs/{job['result']['id']}")


def cli(url: str, *args: str, capsys) -> dict:
    capsys.readouterr()
    status = main(["--controller", url, *args, "--json"])
    out = capsys.readouterr()
    assert status == 0, out.err
    return json.loads(out.out)


def cli_refused(url: str, *args: str, capsys) -> str:
    capsys.readouterr()
    assert main(["--controller", url, *args]) == 1
    return capsys.readouterr().err


@pytest.mark.timeout(240)
def test_the_running_controller_shows_changes_and_keeps_them(tmp_path, monkeypatch, capsys):
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "one.csv").write_text(csv_text(matrix(1)))
    screen = write_screen(tmp_path, '\n[correction]\ngamma = 2.0\nwhite = [1.0, 0.9, 0.8]\n'
                                    'brightness = 80\n[correction.calibration]\n1 = "cal/one.csv"\n')
    np.save(tmp_path / "frame.npy", FRAME)
    layout = load_screen(screen)
    settings, arrays = Correction("power", 2.0, (1.0, 0.9, 0.8)), {1: q14(matrix(1))}
    (tmp_path / "two.npz").write_bytes(calibration.to_npz(q14(matrix(2))))
    collector = Collector(layout)
    options = ("--source", str(tmp_path / "frame.npy"), "--sink", f"udp://127.0.0.1:{collector.port}",
               "--fps", "20", "--watch-interval", "0", "--schedule", "off", "--threads", "2")
    try:
        with Simulator(2, pty=True) as sim, controller_process.running(
                tmp_path, sim.url, "installer", *options, name="ann", screen=screen) as run:
            monkeypatch.setenv("LEDWARDEN_TOKEN", run.token)
            # 1. the screen file's correction and calibration are on the wall
            collector.wait_for(want(layout, settings, arrays))
            shown = cli(run.url, "correction", "show", capsys=capsys)
            assert (shown["gamma"], shown["white"], shown["brightness"]) == (2.0, [1.0, 0.9, 0.8], 80)

            # 2. gamma 2.4, live; every frame in between is the old picture or the new one
            first = len(collector.frames)
            cli(run.url, "correction", "set", "--gamma", "2.4", capsys=capsys)
            old, settings = want(layout, settings, arrays), Correction("power", 2.4, (1.0, 0.9, 0.8))
            new = want(layout, settings, arrays)
            at = collector.wait_for(new)
            assert all(same(f, old) or same(f, new) for f in collector.frames[first:at + 5])

            # 3. a calibration imported for cabinet 2, activated, rolled back
            data = cli(run.url, "calibration", "import", str(tmp_path / "two.npz"), "--cabinet", "2",
                       capsys=capsys)
            assert (data["active"], data["versions"][0]["imported_by"]) == (None, "ann")
            cli(run.url, "calibration", "activate", "--cabinet", "2", "--version", "1", capsys=capsys)
            collector.wait_for(want(layout, settings, {**arrays, 2: q14(matrix(2))}))
            cli(run.url, "calibration", "rollback", "--cabinet", "2", capsys=capsys)
            collector.wait_for(want(layout, settings, arrays))
            cli(run.url, "calibration", "activate", "--cabinet", "2", "--version", "1", capsys=capsys)
            final = want(layout, settings, {**arrays, 2: q14(matrix(2))})
            collector.wait_for(final)

            # 4. bad input: refused with the reason, the picture unchanged
            err = cli_refused(run.url, "correction", "set", "--curve", "cie1931", "--gamma", "2",
                              capsys=capsys)
            assert 'gamma applies to curve "power" only' in err and "HTTP 400" in err
            bad = tmp_path / "bad.csv"
            bad.write_text(csv_text(matrix(3, 16, 16)))
            err = cli_refused(run.url, "calibration", "import", str(bad), "--cabinet", "1",
                              capsys=capsys)
            assert "cabinet 1 (bad.csv)" in err and "have no row" in err
            collector.wait_for(final)
            listed = cli(run.url, "calibration", "list", capsys=capsys)["cabinets"]
            assert [c["in_use"] for c in listed] == [
                {"from": "screen file", "file": str(tmp_path / "cal" / "one.csv")},
                {"from": "stored", "version": 1}]

            # 5. the self-test checks the wall's own settings and calibration
            report = quick_selftest(ControllerClient(run.url, run.token,
                                                     known=KnownControllers(tmp_path / "k.json")))

            # 6. a restart shows the same picture
            controller_process.stop(run.proc)
            proc, url = controller_process.start(run.state, sim.url, *options, screen=screen)
            try:
                collector.wait_for(final)
                assert cli(url, "correction", "show", capsys=capsys)["gamma"] == 2.4
            finally:
                controller_process.stop(proc)
    finally:
        collector.close()
    golden = [c for c in report["checks"] if c["id"] == "fastpath.golden"][0]
    assert golden["outcome"] == "pass"
    assert golden["values"]["settings"]["gamma"] == 2.4
    assert golden["values"]["calibrated_cabinets"] == [1, 2]
