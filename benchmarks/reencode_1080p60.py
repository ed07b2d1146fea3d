"""1080p60 end to end: decode (PyAV), correct, re-encode, send (DDP to loopback) — and the ratio.

    python benchmarks/reencode_1080p60.py [--seconds 5] [--mode gain] [--gamma 2.2]

Not a test: it prints figures for the closing note of issue 16.

1. **Ratio**, measured in one run with the two calls interleaved frame by
   frame (so a busy machine slows both alike): the fused correct + re-encode
   into Colorlight row payloads (``fastpath.Encoder``) against correction
   alone (``Pipeline.process``), and against the old path (``process`` +
   NumPy ``ScreenPicture`` + row packets), per calibration mode.
2. **1080p60 run**: a clip generated here with PyAV (MPEG-4 part 2, which
   every FFmpeg build has) is decoded on its own thread, paced at 60 fps; the
   frame loop's worker takes the newest frame, encodes it straight into the
   DDP sink's datagrams and sends them (``sendmmsg``) to a receiver on
   loopback, in a process of its own, which counts every datagram and frame.  Per stage: wall time, and
   CPU time of the thread doing it (the encoder's pool threads add to the
   process's CPU time, reported per frame as well).  Frames dropped: decoded
   frames the sender never took because a newer one was ready first (the
   sender fell behind).  Latency: from a frame's decode to its last datagram
   sent, p50 and p99.
"""

from __future__ import annotations

import argparse
import os
import queue
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller import fastpath  # noqa: E402
from controller.percentile import percentile  # noqa: E402
from controller.video.colorlight import RowPackets  # noqa: E402
from controller.video.ddp import DdpSink  # noqa: E402
from controller.video.picture import ScreenPicture  # noqa: E402
from host.bench import bench_inputs, wall_layout  # noqa: E402

W, H, FPS = 1920, 1080, 60


def ratios(gamma: str, frames: int, kernel: str | None = None) -> None:
    layout = wall_layout(W, H)
    table = fastpath.encode_table(gamma)
    print(f"ratio at {W}x{H}, card gamma {gamma}, median of {frames} interleaved frames "
          f"({fastpath.default_threads()} threads):")
    for mode in ("none", "gain", "matrix"):
        frame, lut, gains, calib = bench_inputs(layout, mode)
        pipe = fastpath.Pipeline(layout, lut, gains, calib, kernel=kernel)
        rows = RowPackets(H, W)
        enc = fastpath.Encoder((H, W), lut, gains, calib, table, rows.payloads, threads=pipe.threads,
                               kernel=kernel)
        old = ScreenPicture(layout, table)
        t_proc, t_enc, t_old = [], [], []
        for k in range(frames):
            t0 = time.perf_counter()
            pipe.process(frame)
            t1 = time.perf_counter()
            enc.encode_into(frame, rows.buffer)
            t2 = time.perf_counter()
            if k % 4 == 0:      # the old path is slow: a quarter of the frames suffice
                rows.fill(old.picture(pipe.process(frame)))
                t_old.append(time.perf_counter() - t2)
            t_proc.append(t1 - t0)
            t_enc.append(t2 - t1)
        p, e, o = (float(np.median(t)) * 1000 for t in (t_proc, t_enc, t_old))
        print(f"  {mode:6}  correct alone {p:6.2f} ms ({pipe.kernel})   fused re-encode {e:6.2f} ms "
              f"({enc.kernel})   ratio {e / p:4.2f}   old path {o:6.2f} ms ({o / e:4.1f}x the fused)")


def make_clip(path: Path, seconds: float) -> None:
    import av
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.bit_rate = 20_000_000
        x = np.arange(W, dtype=np.int32)[None, :]
        y = np.arange(H, dtype=np.int32)[:, None]
        for n in range(int(seconds * FPS)):
            rgb = np.empty((H, W, 3), np.uint8)
            rgb[..., 0] = (x + 4 * n) & 255
            rgb[..., 1] = (y + 2 * n) & 255
            rgb[..., 2] = ((x + y) // 8 + n) & 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _receive(port_out, counts_out, stop) -> None:
    """DDP on loopback in a process of its own (no GIL shared with the sender): counts
    frames (PUSH) and datagrams."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    port_out.send(sock.getsockname()[1])
    frames = datagrams = 0
    while not stop.is_set():
        try:
            packet = sock.recv(2048)
        except TimeoutError:
            continue
        datagrams += 1
        frames += packet[0] & 1
    counts_out.send((frames, datagrams))


def run(seconds: float, mode: str, gamma: str) -> None:
    import av
    layout = wall_layout(W, H)
    _, lut, gains, calib = bench_inputs(layout, mode)
    pipe = fastpath.Pipeline(layout, lut, gains, calib)
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    port_rx, port_tx = ctx.Pipe(False)
    counts_rx, counts_tx = ctx.Pipe(False)
    stop = ctx.Event()
    receiver = ctx.Process(target=_receive, args=(port_tx, counts_tx, stop), daemon=True)
    receiver.start()
    sink = DdpSink(layout, "127.0.0.1", port_rx.recv(), gamma=gamma)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.avi"
        t = time.perf_counter()
        make_clip(clip, seconds)
        print(f"\n1080p60 run: {seconds:g} s clip made in {time.perf_counter() - t:.1f} s "
              f"({clip.stat().st_size / 1e6:.1f} MB MPEG-4), mode {mode}, card gamma {gamma}, "
              f"DDP to loopback, {pipe.threads} threads")
        ready: queue.Queue = queue.Queue(maxsize=1)
        decode_cpu: list[float] = []
        dropped = [0]

        def decode() -> None:
            start = time.monotonic()
            with av.open(str(clip)) as container:
                container.streams.video[0].thread_type = "NONE"   # one thread: its CPU time is the stage's
                c0 = time.thread_time()
                for n, vf in enumerate(container.decode(video=0)):
                    rgb = vf.to_ndarray(format="rgb24")
                    decode_cpu.append(time.thread_time() - c0)   # decode + to RGB (sleep not counted)
                    done = time.monotonic()
                    try:
                        ready.put_nowait((n, rgb, done))
                    except queue.Full:      # the sender has not taken the last one: drop it
                        try:
                            ready.get_nowait()
                            dropped[0] += 1
                        except queue.Empty:
                            pass
                        ready.put_nowait((n, rgb, done))
                    time.sleep(max(0.0, start + (n + 1) / FPS - time.monotonic()))
                    c0 = time.thread_time()
            ready.put(None)

        decoder = threading.Thread(target=decode, daemon=True)
        enc_wall, enc_cpu, send_wall, send_cpu, latency = [], [], [], [], []
        p0 = time.process_time()
        w0 = time.perf_counter()
        decoder.start()
        sent = 0
        while (item := ready.get()) is not None:
            n, rgb, done = item
            c0, t0 = time.thread_time(), time.perf_counter()
            sink.encoder.encode(rgb, pipe, sink.buffer)
            c1, t1 = time.thread_time(), time.perf_counter()
            sink._send_packets(n, t1)
            c2, t2 = time.thread_time(), time.perf_counter()
            latency.append(time.monotonic() - done)
            enc_wall.append(t1 - t0), enc_cpu.append(c1 - c0)
            send_wall.append(t2 - t1), send_cpu.append(c2 - c1)
            sent += 1
        decoder.join()
        wall = time.perf_counter() - w0
        process_cpu = time.process_time() - p0
        time.sleep(0.3)
        stop.set()
        got_frames, got_datagrams = counts_rx.recv()
        receiver.join()
    sink.close()
    decoded = sent + dropped[0]

    def ms(values: list[float], p: float | None = None) -> str:
        v = np.median(values) if p is None else percentile(sorted(values), p)
        return f"{float(v) * 1000:6.2f}"
    print(f"  frames decoded {decoded}, sent {sent}, dropped {dropped[0]}; receiver got "
          f"{got_frames} frames, {got_datagrams} datagrams "
          f"(expected {sent * len(sink.spans)}); {sent / wall:.1f} fps over {wall:.1f} s")
    print(f"  per frame, median: decode + to RGB {ms(decode_cpu)} ms CPU (decoder thread)")
    print(f"                     correct+re-encode {ms(enc_wall)} ms wall, {ms(enc_cpu)} ms CPU "
          f"on the calling thread (+ pool threads)")
    print(f"                     send {len(sink.spans)} datagrams {ms(send_wall)} ms wall, "
          f"{ms(send_cpu)} ms CPU")
    print(f"  sender process CPU per decoded frame (all threads; the receiver is another process) "
          f"{process_cpu / max(decoded, 1) * 1000:.2f} ms")
    print(f"  latency decode -> last datagram sent: p50 {ms(latency, 0.5)} ms, p99 {ms(latency, 0.99)} ms")
    print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--mode", choices=("none", "gain", "matrix"), default="gain")
    parser.add_argument("--gamma", default="2.2")
    parser.add_argument("--ratio-frames", type=int, default=40)
    parser.add_argument("--kernel", default=None,
                        help="the kernel for both sides of the ratio (portable: what ARM boards run)")
    args = parser.parse_args()
    ratios(args.gamma, args.ratio_frames, args.kernel)
    run(args.seconds, args.mode, args.gamma)


if __name__ == "__main__":
    main()
