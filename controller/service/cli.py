"""``ledwarden controller …``: the commands run on the board itself.

``run`` starts the service (bus, frame loop, jobs, HTTPS API); ``token``
manages the API's bearer tokens; ``forget`` drops a pinned certificate on
the host side (it is the laptop's, so ``host/cli.py`` adds it to this group).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

from aiohttp import web

from controller import fastpath
from controller.cliargs import (DEFAULT_STATE, add_rs485_arguments, host_port, rs485_from_args,
                                state_dir)
from controller.config import load_screen, load_screen_data
from controller.errors import ConfigError
from controller.picture.live import Picture
from controller.picture.settings import parse_correction
from controller.picture.store import PictureStore
from controller.power import PowerLimiter, parse_power
from controller.protocol.bus import DEFAULT_BAUD, DEFAULT_RETRIES, Bus
from controller.screenmap import CardSettings
from controller.service import tokens_cli, trust_cli
from controller.service.app import make_app
from controller.service.auth import RateLimiter, TokenStore
from controller.service.busowner import BusOwner
from controller.service.connguard import HEADER_TIMEOUT_S, PER_SOURCE, TOTAL, ConnectionGuard, GuardedSite
from controller.service.frameloop import FrameLoop, frame_sink
from controller.service.jobs import QUESTION_TIMEOUT_S
from controller.service.state import Service
from controller.service.tls import certificate_fingerprint, server_ssl_context
from controller.service.videosource import note_startup, open_startup
from controller.upgrade.bundles import boardcli
from controller.fleet import cli as fleet_cli



def positive_seconds(text: str) -> float:
    """A duration in seconds, more than zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} s: give a duration above 0")
    return value


def register(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add ``controller`` and its actions; return its subparsers, to which the host adds ``forget``."""
    ctl = sub.add_parser("controller", help="run and administer the controller service (on the board)")
    ctl_sub = ctl.add_subparsers(dest="controller_command", metavar="ACTION", required=True)
    p = ctl_sub.add_parser("run", help="run the controller service",
                           description="Own the card bus, run the frame loop and jobs, and serve "
                                       "the HTTPS API.")
    p.add_argument("--screen", required=True, help="the screen file (TOML)")
    p.add_argument("--bus", required=True, metavar="URL", help="serial device or pyserial URL")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD)
    p.add_argument("--retries", type=int, default=DEFAULT_RETRIES)
    add_rs485_arguments(p)
    p.add_argument("--listen", type=host_port("0.0.0.0"), default=("0.0.0.0", 8443),
                   metavar="HOST:PORT",
                   help="address of the HTTPS API (default 0.0.0.0:8443; port 0 picks a free one)")
    p.add_argument("--state", default=DEFAULT_STATE, metavar="DIR", type=state_dir,
                   help=f"state directory: certificate, tokens, reports (default {DEFAULT_STATE})")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate of the frame loop (default 30)")
    p.add_argument("--source", default="pattern:bars",
                   help="frames: pattern:NAME, a .npy or image file, a folder, file:VIDEO (a video, "
                        "folder of videos or playlist; ?scale=fit|fill|stretch&fps=N), or ddp: "
                        "to listen for DDP on port 4048 (default pattern:bars)")
    p.add_argument("--sink", default="null",
                   help="where corrected frames go: null, udp://HOST:PORT, ddp://HOST:PORT or "
                        "colorlight:IFACE (see docs/video-io.md)")
    p.add_argument("--threads", type=int, help="fast-path threads (default: all cores)")
    p.add_argument("--no-frames", action="store_true", help="do not run the frame loop")
    p.add_argument("--schedule", choices=("builtin", "off"), default="builtin",
                   help="run the quarterly inspection on the service's own calendar (builtin, the "
                        "default) or leave it to systemd's ledwarden-selftest.timer (off)")
    p.add_argument("--watch-interval", type=float, default=30.0, metavar="S",
                   help="seconds between the watch's status polls of every card, which file "
                        "faults between inspections (default 30; 0 turns the watch off)")
    p.add_argument("--question-timeout", type=positive_seconds, default=QUESTION_TIMEOUT_S,
                   metavar="S",
                   help="seconds a job's question (\"does every cabinet show red?\") waits for an "
                        "answer before it counts as not confirmed and the job stops, freeing the "
                        f"bus (default {QUESTION_TIMEOUT_S:g})")
    p.add_argument("--header-timeout", type=positive_seconds, default=HEADER_TIMEOUT_S,
                   metavar="S",
                   help="seconds a connection may take for its TLS handshake, for a whole "
                        "request header, and may sit idle between requests before it is closed "
                        f"(default {HEADER_TIMEOUT_S:g})")
    p.add_argument("--max-connections-per-source", type=int, default=PER_SOURCE, metavar="N",
                   help="connections one client address may hold; the oldest is closed to "
                        f"make room for a new one (default {PER_SOURCE})")
    p.add_argument("--max-connections", type=int, default=TOTAL, metavar="N",
                   help=f"connections all clients together may hold (default {TOTAL})")
    p.add_argument("--max-refusals", type=int, default=5, metavar="N",
                   help="refused API requests one token (or none) may meet from one address "
                        "in 60 s before its refusals become 429 for 60 s; an address gets 4 "
                        "times as many across tokens; a valid token always gets what its role "
                        "allows (default 5)")
    p.set_defaults(func=run)
    tokens_cli.register(ctl_sub)
    trust_cli.register(ctl_sub)
    boardcli.register(ctl_sub)
    fleet_cli.register(ctl_sub)
    return ctl_sub


def build_service(args: argparse.Namespace, fingerprint: str) -> Service:
    layout = load_screen(args.screen)
    data = load_screen_data(args.screen)
    try:
        settings = CardSettings.from_screen_file(data)
    except TypeError as exc:
        raise ConfigError(f"{args.screen}: [cards]: {exc}") from None
    # The picture: the screen file's [correction] with what was changed at run time over it.
    screen_correction = parse_correction(data, args.screen,
                                         tuple(cab.address for cab in layout.cabinets))
    power_model = parse_power(data, layout, args.screen)
    picture = Picture(layout, screen_correction, PictureStore(Path(args.state)),
                      threads=args.threads)
    frame_loop = power = startup = None
    if not args.no_frames:
        power = PowerLimiter(power_model, layout) if power_model is not None else None
        # the source last chosen through the API wins over --source (controller.service.videosource)
        startup = open_startup(Path(args.state), args.source, layout.width, layout.height)
        frame_loop = FrameLoop(layout, picture.start(), startup.source, frame_sink(args.sink, layout),
                               args.fps, startup.spec, power=power)
        picture.frame_loop = frame_loop
    bus = Bus(args.bus, args.baud, retries=args.retries, rs485=rs485_from_args(args))
    service = Service(layout, settings, BusOwner(bus), Path(args.state), screen_file=args.screen,
                      bus_url=args.bus, fingerprint=fingerprint, frame_loop=frame_loop,
                      schedule=args.schedule, watch_interval_s=args.watch_interval,
                      question_timeout_s=args.question_timeout, picture=picture)
    picture.journal = service.faults
    picture.file_notes()
    if power is not None:   # the limiter files power.limiting in the service's fault log
        power.faults = service.faults
        # The estimate is taken at full dimming; the cards dim after the pipeline (docs/correction.md).
        power.dimming = service.brightness.fraction
        service.power = power
    if startup is not None:
        note_startup(service.faults, startup)
    return service


async def serve(args: argparse.Namespace) -> None:
    state = Path(args.state)
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the state directory {state}: {exc.strerror or exc}; "
                          f"give --state a directory this user may create") from None
    host, port = args.listen
    names = sorted({"localhost", "127.0.0.1", socket.gethostname(), host} - {"0.0.0.0", "::"})
    ssl_context = server_ssl_context(state, names)
    fingerprint = certificate_fingerprint(state)
    service = build_service(args, fingerprint)
    guard = ConnectionGuard(args.max_connections_per_source, args.max_connections,
                            args.header_timeout)
    app = make_app(service, TokenStore(state / "tokens.db"), RateLimiter(limit=args.max_refusals),
                   connections=guard)
    # keepalive_timeout closes a connection idle between requests; the guard times the first one
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=args.header_timeout)
    await runner.setup()
    try:
        await GuardedSite(runner, host, port, ssl_context, guard).start()
    except OSError as exc:
        await runner.cleanup()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConfigError(f"cannot listen on {host}:{port}: {reason}; is another "
                          f"controller running there? Stop it, or give --listen another port"
                          ) from None
    bound = runner.addresses[0][1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    # The URL and fingerprint alone on the first stdout line, for scripts; the rest for people.
    print(f"https://{shown}:{bound} {fingerprint}", flush=True)
    print(f"ledwarden controller: serving https://{shown}:{bound} (certificate {fingerprint}); "
          f"bus {args.bus} at {args.baud} baud; fast path {fastpath.backend}; state in {state}",
          file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    asyncio.run(serve(args))
    return 0
