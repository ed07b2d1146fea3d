"""One master per serial port (issue 15 item 2): a second opener is refused, naming the holder.

The port is a pseudo-terminal served by ``ledwarden sim --pty``; the holder
is a real ``ledwarden controller run`` process, and the second opener is the
host tool's ``bus status``, as an installer would type it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from controller.errors import PortError
from controller.protocol import commands as c
from controller.protocol import portlock
from controller.protocol.bus import Bus
from host.cli import main
from support import controller_process

ROOT = controller_process.ROOT


@pytest.fixture
def pty_sim():
    """``ledwarden sim --cards 2 --pty`` as its own process; yields the slave path."""
    proc = subprocess.Popen([sys.executable, "-m", "host.cli", "sim", "--cards", "2", "--pty"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url, proc.stderr.read()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_bus_status_beside_a_running_controller_is_refused_naming_it(pty_sim, tmp_path, capsys):
    proc, _ = controller_process.start(tmp_path / "state", pty_sim, "--no-frames",
                                       "--watch-interval", "0")
    try:
        assert main(["bus", "status", "--port", pty_sim]) == 1
        err = capsys.readouterr().err
        assert f"{pty_sim} is in use by PID {proc.pid} (ledwarden controller run)" in err
        assert "stop it first" in err
        # a second controller on the same port refuses to start, and says why
        with pytest.raises(AssertionError, match=f"in use by PID {proc.pid}"):
            controller_process.start(tmp_path / "state2", pty_sim, "--no-frames")
    finally:
        controller_process.stop(proc)
    # once the holder has stopped the port is free again
    with Bus(pty_sim) as bus:
        assert bus.call(1, c.Cmd.PING).serial


def test_the_flock_alone_names_the_holder_when_no_lock_file_is_there(pty_sim):
    with Bus(pty_sim):
        lock = portlock.lock_dir()
        if lock is not None:
            (lock / portlock.lock_file_name(pty_sim)).unlink()
        with pytest.raises(PortError, match=f"in use by PID {os.getpid()}"):
            Bus(pty_sim)


def test_a_lock_file_left_by_a_dead_process_is_stale(pty_sim):
    lock = portlock.lock_dir()
    if lock is None:
        pytest.skip("no writable /run/lock or /var/lock here")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    path = lock / portlock.lock_file_name(pty_sim)
    path.write_text(f"{int(dead):10d}\n")
    with Bus(pty_sim) as bus:
        assert path.read_text() == f"{os.getpid():10d}\n"
        assert bus.call(2, c.Cmd.PING).serial
    assert not path.exists()


def test_a_lock_file_naming_a_zombie_is_stale(pty_sim):
    """A controller SIGKILLed together with its boot guard is a zombie until init reaps it:
    it holds nothing, and its lock file must not stop the next start (the DDI kill test)."""
    lock = portlock.lock_dir()
    if lock is None:
        pytest.skip("no writable /run/lock or /var/lock here")
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        while open(f"/proc/{zombie.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
            pass                                  # exited, not yet waited for: a zombie
        path = lock / portlock.lock_file_name(pty_sim)
        path.write_text(f"{zombie.pid:10d}\n")
        with Bus(pty_sim) as bus:
            assert path.read_text() == f"{os.getpid():10d}\n"
            assert bus.call(2, c.Cmd.PING).serial
    finally:
        zombie.wait()


def test_urls_without_a_device_have_nothing_to_lock():
    assert portlock.device_of("socket://127.0.0.1:4000") is None
    assert portlock.device_of("loop://") is None
    assert portlock.device_of("spy:///dev/ttyUSB0?file=x") == "/dev/ttyUSB0"
    assert portlock.device_of("/dev/ttyAMA0") == "/dev/ttyAMA0"
    assert portlock.lock_file_name("/dev/ttyAMA0") == "LCK..ttyAMA0"
