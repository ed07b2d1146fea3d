"""How much full-HD LWV1 video the simulated cards take: frames shown and dropped per card.

Run: ``python benchmarks/sim_video_hd.py [FPS] [SECONDS]`` (default 30 fps, 5 s).

A 1920 × 1080 wall (``ledwarden bench``'s layout, 16 cabinets of 480 × 270,
with a scan a card's config can hold) runs as ``ledwarden sim --screen …
--video …`` in its own process; this process sends one corrected frame
through the frame loop's ``udp://`` sink at FPS, paced, then reads every
card's ``GET_OUTPUT`` with ``ledwarden bus output --json``.  Both sides are
Python handling one datagram of 1 400 bytes at a time (8 890 a frame), so
this measures what the simulator can stand for at that size, not a card.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from controller import fastpath
from controller.fastpath.settings import gains_from, power_lut
from controller.service.frameloop import UdpSink
from host.bench import wall_layout


def screen_text(layout) -> str:
    lines = [f'[screen]\nname = "hd"\nwidth = {layout.width}\nheight = {layout.height}\n']
    for m in layout.modules:          # 1/45 scan is not a scan a card's config holds; 1/2 is
        lines.append(f"[modules.{m.name}]\nwidth = {m.width}\nheight = {m.height}\nscan = 2\n")
    for c in layout.cabinets:
        lines.append(f'[[cabinets]]\naddress = {c.address}\nx = {c.x}\ny = {c.y}\n'
                     f'module = "{c.module.name}"\nmodules_x = {c.modules_x}\n'
                     f'modules_y = {c.modules_y}\nchain = "{c.chain}"\nrotation = {c.rotation}\n')
    return "\n".join(lines)


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    fps = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    layout = wall_layout(1920, 1080)
    with tempfile.TemporaryDirectory() as tmp:
        screen = Path(tmp) / "hd.toml"
        screen.write_text(screen_text(layout))
        port, vport = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
        sim = subprocess.Popen([sys.executable, "-m", "host.cli", "sim", "--tcp",
                                f"127.0.0.1:{port}", "--screen", str(screen), "--video",
                                f"127.0.0.1:{vport}"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
        try:
            url = sim.stdout.readline().strip() if sim.stdout else ""
            pipe = fastpath.Pipeline(layout, power_lut(2.2), gains_from(1.0), threads=1)
            scan = pipe.process(np.full((1080, 1920, 3), 128, np.uint8))
            sink = UdpSink("127.0.0.1", vport)
            frames = int(fps * seconds)
            started = time.monotonic()
            for i in range(frames):
                sink.send(scan, i)
                time.sleep(max(0.0, started + (i + 1) / fps - time.monotonic()))
            took = time.monotonic() - started
            time.sleep(1.0)
            out = subprocess.run([sys.executable, "-m", "host.cli", "bus", "output", "--port",
                                  url, "-a", f"1-{len(layout.cabinets)}", "--json"],
                                 capture_output=True, text=True)
        finally:
            sim.terminate()
            sim.wait()
    answers = json.loads(out.stdout).values()
    cards = [c for c in answers if "error" not in c]
    if len(cards) < len(answers):
        print(f"{len(answers) - len(cards)} card(s) did not answer GET_OUTPUT")
    shown = [c["frames_shown"] for c in cards]
    dropped = [c["frames_dropped"] for c in cards]
    print(f"{len(shown)} cards; {frames} frames sent in {took:.1f} s ({frames / took:.1f} fps "
          f"reached by the sender); shown per card {min(shown)}..{max(shown)}, dropped "
          f"{min(dropped)}..{max(dropped)}")


if __name__ == "__main__":
    main()
