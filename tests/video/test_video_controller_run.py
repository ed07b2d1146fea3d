"""Issue 16's done-when, through a real ``ledwarden controller run`` process.

* ``--source file:clip --sink colorlight:IFACE`` inside a network namespace,
  with the card emulator of ``test_video_colorlight`` on the other end of the
  veth pair: every picture the emulator shows is exactly the NumPy
  reference's prediction for one of the clip's frames; the card appears in
  ``ledwarden cards`` with its firmware and uptime; a power cycle of the card
  is noticed and the picture keeps coming without restarting the controller;
  the quick self-test's ``video.output`` says the card answers.
* DDP from a sender process, through the controller's correction, out as DDP
  to this process: pixel-exact against the same prediction.

The first test runs the controller with its default curve (power, gamma
2.2; no calibration, full brightness), so the prediction is that curve
through the reference, re-encoded to 8 bits as ``docs/correction.md``
defines.  The second runs it at identity settings (gamma 1.0), where the
card must show the clip itself, and with a real curve and a matrix
calibration sent to a card with its own gamma, where it must show the
reference's ``correct_encode``.  The DDP test runs at identity.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_video_colorlight import WIDE, Emulator, H, W, netns  # noqa: F401 - netns is a fixture

from controller.fastpath import encode_table, reference
from controller.fastpath.settings import gains_from, power_lut
from controller.service.auth import TokenStore
from host.cli import main
from hw.sim.server import Simulator

ROOT = Path(__file__).resolve().parents[2]
FRAMES = [np.random.default_rng(40 + n).integers(0, 256, (H, W, 3), dtype=np.uint8)
          for n in range(3)]


#: The screen's ``[correction]`` for identity: gamma 1.0, no calibration, full brightness.
IDENTITY = "\n[correction]\ncurve = \"power\"\ngamma = 1.0\n"


def predicted(frame: np.ndarray) -> np.ndarray:
    """What the wall must show for ``frame``: the controller's curve through the reference, in 8 bits."""
    corrected = reference.correct(frame, power_lut(2.2), gains_from(1.0)).astype(np.int64)
    return ((corrected * 255 + 32767) // 65535).astype(np.uint8)


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 5) -> Path:
    """A lossless clip (PNG in .mov), so decoding gives back exactly these pictures."""
    import av
    with av.open(str(path), "w") as out:
        stream = out.add_stream("png", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "rgb24"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def start_controller(tmp: Path, bus: str, *options: str, namespace: str | None = None,
                     correction: str = ""):
    """``controller run`` on the wide screen (one cabinet, address 1), with ``correction``
    appended to the screen file; returns (process, url, token)."""
    screen = tmp / "wide.toml"
    screen.write_text(WIDE + correction)
    state = tmp / "state"
    state.mkdir(exist_ok=True)
    token = TokenStore(state / "tokens.db").create(f"svc-{time.monotonic_ns()}", "service")
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "host.cli", "controller", "run", "--screen", str(screen),
         "--bus", bus, "--listen", "127.0.0.1:0", "--state", str(state), "--fps", "10",
         "--watch-interval", "0", "--schedule", "off", *options],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    if len(line) != 2:
        proc.kill()
        raise AssertionError(f"controller did not start: {proc.stderr.read()}")
    return proc, line[0], token


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    assert proc.wait(timeout=20) == 0, proc.stderr.read()


def host_json(url: str, token: str, capsys, *argv: str, run=lambda f, *a: f(*a)) -> dict:
    """``ledwarden … --json`` in-process (``run`` puts the call inside the namespace)."""
    os.environ["LEDWARDEN_TOKEN"] = token
    try:
        status = run(main, ["--controller", url, *argv, "--json"])
    finally:
        del os.environ["LEDWARDEN_TOKEN"]
    out, err = capsys.readouterr()
    assert status in (0, 1), err
    return json.loads(out)


def test_a_clip_onto_a_colorlight_card_through_the_controller(netns, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LEDWARDEN_CONFIG_DIR", str(tmp_path / "host-config"))
    clip = write_clip(tmp_path / "clip.mov", FRAMES)
    wanted = [predicted(f) for f in FRAMES] + [np.zeros((H, W, 3), np.uint8)]  # black before the first
    emulator = netns.run(Emulator, firmware=(13, 2))
    with Simulator(1, pty=True) as sim:
        proc, url, token = start_controller(tmp_path, sim.url, "--source", f"file:{clip}",
                                            "--sink", "colorlight:clhost", namespace=netns.name)
        try:
            matched: list[int | None] = []
            for count in range(12, 60, 6):   # until the clip has played through (5 fps, looped)
                emulator.wait_shown(count, timeout=20)
                matched = [next((i for i, w in enumerate(wanted) if np.array_equal(s, w)), None)
                           for s in list(emulator.shown)]
                if {0, 1, 2} <= set(matched) or None in matched:
                    break
            assert None not in matched, f"a shown picture matches no predicted frame: {matched}"
            assert {0, 1, 2} <= set(matched)

            cards = host_json(url, token, capsys, "cards", run=netns.run)["video_cards"]
            assert len(cards) == 1 and cards[0]["firmware"] == "13.2" and cards[0]["model"] == "5A"
            assert cards[0]["uptime_s"] >= 3600 and cards[0]["matches_screen"]
            os.environ["LEDWARDEN_TOKEN"] = token
            try:
                assert netns.run(main, ["--controller", url, "cards"]) == 0
                table = capsys.readouterr().out
                assert netns.run(main, ["--controller", url, "status"]) == 0
                lines = capsys.readouterr().out
            finally:
                del os.environ["LEDWARDEN_TOKEN"]
            assert "video receiving cards" in table and "13.2" in table and "answers" in table
            assert "video card colorlight:clhost: 5A firmware 13.2, up" in lines
            assert f"video      file:{clip} → colorlight:clhost: latency p50" in lines
            status = host_json(url, token, capsys, "status", run=netns.run)["frame_loop"]
            assert status["sink_stats"]["send_errors"] == 0 and status["sink_stats"]["frames"] >= 12
            assert status["latency"]["p99_ms"] is not None

            emulator.power_cycle()                     # rediscovery comes every 5 s
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                cards = host_json(url, token, capsys, "cards", run=netns.run)["video_cards"]
                if cards[0]["restarts"]:
                    break
                time.sleep(0.5)
            assert cards[0]["restarts"] == 1 and cards[0]["uptime_s"] < 60 and not cards[0]["silent"]
            before = len(emulator.shown)
            emulator.wait_shown(before + 5)
            assert len(emulator.shown) >= before + 5   # the picture keeps coming, no restart
            assert any(np.array_equal(emulator.shown[-1], w) for w in wanted[:3])

            report = host_json(url, token, capsys, "selftest", "run", "--profile", "quick",
                               "--out", str(tmp_path / "reports"), run=netns.run)
            text = json.dumps(report)
            assert "video.card_ok" in text and "firmware 13.2" in text
        finally:
            stop(proc)
            emulator.close()


def calibrated_screen(tmp: Path) -> tuple[str, np.ndarray]:
    """A real curve (gamma 2.4) and a per-pixel matrix calibration for the one cabinet, as the
    screen file gives them; returns (the ``[correction]`` text, the matrix)."""
    rng = np.random.default_rng(7)
    matrix = np.zeros((H, W, 3, 3), np.int16)
    for c in range(3):
        matrix[..., c, c] = rng.integers(12000, 16384, (H, W))
        matrix[..., c, (c + 1) % 3] = rng.integers(-1500, 1500, (H, W))
    np.savez(tmp / "cab01.npz", matrix=matrix)
    return ("\n[correction]\ncurve = \"power\"\ngamma = 2.4\n"
            "[correction.calibration]\n1 = \"cab01.npz\"\n"), matrix


@pytest.mark.parametrize("variant", ["identity", "curve+calibration"])
def test_the_colorlight_card_shows_the_reference_frames(netns, tmp_path, monkeypatch, variant):
    """Identity settings show the clip itself; a real curve with a matrix calibration, sent to a
    card with its own gamma 2.2, shows exactly the reference's correct-and-re-encode."""
    monkeypatch.setenv("LEDWARDEN_CONFIG_DIR", str(tmp_path / "host-config"))
    clip = write_clip(tmp_path / "clip.mov", FRAMES)
    if variant == "identity":
        correction, sink, wanted = IDENTITY, "colorlight:clhost", list(FRAMES)
    else:
        correction, matrix = calibrated_screen(tmp_path)
        sink, table = "colorlight:clhost?gamma=2.2", encode_table(2.2)
        wanted = [reference.correct_encode(f, power_lut(2.4), gains_from(1.0), matrix, table)
                  for f in FRAMES]
    wanted.append(np.zeros((H, W, 3), np.uint8))          # black before the first frame
    emulator = netns.run(Emulator, firmware=(13, 2))
    with Simulator(1, pty=True) as sim:
        proc, _url, _token = start_controller(tmp_path, sim.url, "--source", f"file:{clip}",
                                              "--sink", sink, namespace=netns.name,
                                              correction=correction)
        try:
            emulator.wait_shown(15, timeout=30)
            matched = [next((i for i, w in enumerate(wanted) if np.array_equal(s, w)), None)
                       for s in list(emulator.shown)]
            assert None not in matched, f"a shown picture matches no predicted frame: {matched}"
            assert {0, 1, 2} <= set(matched)
        finally:
            stop(proc)
            emulator.close()


def test_ddp_from_one_process_through_the_controller_to_another(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LEDWARDEN_CONFIG_DIR", str(tmp_path / "host-config"))
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        ddp_in = probe.getsockname()[1]
    frame = FRAMES[0]
    sender = (f"import socket, sys, time\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
              "import numpy as np\nfrom test_video_ddp import spec_send\n"
              f"frame = np.random.default_rng(40).integers(0, 256, ({H}, {W}, 3), dtype=np.uint8)\n"
              "sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              "for _ in range(100):\n"
              f"    spec_send(sock, ('127.0.0.1', {ddp_in}), frame.tobytes())\n"
              "    time.sleep(0.05)\n")
    with Simulator(1, pty=True) as sim:
        proc, url, token = start_controller(tmp_path, sim.url, "--source", f"ddp://127.0.0.1:{ddp_in}",
                                            "--sink", f"ddp://127.0.0.1:{listener.getsockname()[1]}",
                                            correction=IDENTITY)
        send = subprocess.Popen([sys.executable, "-c", sender], cwd=ROOT)
        try:
            want = frame.tobytes()          # identity settings: pixel-exact, the input itself
            listener.settimeout(5)
            got = None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and got != want:
                got = receive_frame(listener, W * H * 3)
            assert got == want
            video = host_json(url, token, capsys, "status")["frame_loop"]
            assert video["source_stats"]["frames"] > 0 and video["latency"]["frames"] > 0
        finally:
            send.kill()
            send.wait()
            stop(proc)
            listener.close()


def receive_frame(sock: socket.socket, size: int) -> bytes:
    """One DDP frame assembled by offset until its PUSH (written from the DDP description)."""
    buffer = bytearray(size)
    while True:
        packet = sock.recv(2048)
        start = 14 if packet[0] & 0x10 else 10
        offset = int.from_bytes(packet[4:8], "big")
        buffer[offset:offset + len(packet) - start] = packet[start:]
        if packet[0] & 0x01:
            return bytes(buffer)
