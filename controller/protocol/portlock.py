"""One owner per serial port, the way serial tools agree on it on Linux.

Two masters on one half-duplex bus garble each other's frames: a second
``controller run``, or ``ledwarden bus status`` while the service runs,
turns every transaction into a timeout and files false "does not answer"
faults.  So a device port is held two ways, as minicom, picocom and
pyserial's ``exclusive=True`` do:

* ``flock(LOCK_EX | LOCK_NB)`` on the open device (pyserial's ``exclusive``),
  which the kernel drops when the holder dies, so it can never go stale;
* a UUCP lock file ``LCK..ttyAMA0`` holding the owner's PID in HDB format
  (ten characters and a newline), in ``/run/lock`` or ``/var/lock`` —
  only where that directory is writable (it is not for every user on every
  system; the ``flock`` still holds).  It is what tools that never ``flock``
  look at, and it names the owner.  A lock file whose PID is gone is stale
  and is removed.

A refusal names the holder: the lock file's PID or, failing that, the PID
the kernel lists for the device's ``flock`` in ``/proc/locks``, with the
program read from ``/proc/PID/cmdline``.

``socket://``, ``loop://`` and other network or virtual URLs have no device
to lock: the simulator's TCP port serves one master at a time by itself.
``spy://DEVICE`` locks the device it wraps.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from controller.errors import PortError

LOCK_DIRS = (Path("/run/lock"), Path("/var/lock"))


def device_of(url: str) -> str | None:
    """The device file a port URL opens, or None for ports with nothing to lock."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.scheme == "spy":
        return (parts.netloc + parts.path) or None
    return None


def lock_dir() -> Path | None:
    """The first writable UUCP lock directory, or None."""
    return next((d for d in LOCK_DIRS if d.is_dir() and os.access(d, os.W_OK | os.X_OK)), None)


def lock_file_name(device: str) -> str:
    """``/dev/ttyAMA0`` → ``LCK..ttyAMA0``; ``/dev/pts/3`` → ``LCK..pts_3``."""
    path = os.path.realpath(device)
    name = path[len("/dev/"):] if path.startswith("/dev/") else path.lstrip("/")
    return "LCK.." + name.replace("/", "_")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """True for a process that has exited but was not yet reaped: it holds no device.  A
    controller killed together with its parent (the boot guard) stays one for as long as the
    init that inherits it takes to reap it, and its lock file must not block the next start."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:][:1] == "Z"


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_bytes().strip() or b"0") or None
    except (OSError, ValueError):
        return None


def program_of(pid: int) -> str:
    """A short name for what PID runs: ``ledwarden controller run``, ``minicom``, …"""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return ""
    argv = [a for a in argv if a]
    for i, word in enumerate(argv):
        if os.path.basename(word) == "ledwarden" or word == "host.cli":
            actions = [w for w in argv[i + 1:] if not w.startswith("-")][:2]
            return " ".join(["ledwarden", *actions])
    text = " ".join([os.path.basename(argv[0]), *argv[1:3]]) if argv else ""
    return " ".join(text.split())[:60]


def flock_holder(device: str) -> int | None:
    """The PID the kernel lists as holding a ``flock`` on ``device`` (``/proc/locks``)."""
    try:
        st = os.stat(device)
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            major, minor, inode = fields[5].split(":")
            if (int(inode) == st.st_ino and int(major, 16) == os.major(st.st_dev)
                    and int(minor, 16) == os.minor(st.st_dev)):
                return int(fields[4])
        except ValueError:
            continue
    return None


def in_use(device: str, pid: int | None) -> PortError:
    """The refusal for a port someone else holds, naming them if they are known."""
    who = "another program"
    if pid is not None:
        program = program_of(pid)
        who = f"PID {pid}" + (f" ({program})" if program else "")
    return PortError(f"{device} is in use by {who}; stop it first, or, if it is the controller "
                     f"service, work through its API (e.g. 'ledwarden --controller URL cards') "
                     f"instead of the port")


class LockFile:
    """A UUCP lock file for one device, held until :meth:`release`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def take(cls, device: str) -> LockFile | None:
        """Create ``LCK..name`` with our PID; refuse if a live process holds it.

        None when no lock directory is writable (the ``flock`` still guards the port).
        """
        directory = lock_dir()
        if directory is None:
            return None
        path = directory / lock_file_name(device)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                pid = _pid_in(path)
                if pid is not None and _alive(pid):
                    raise in_use(device, pid) from None
                path.unlink(missing_ok=True)            # stale: its owner is gone
                continue
            except OSError:
                return None                             # e.g. a read-only /run/lock
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid():10d}\n")
            return cls(path)
        raise in_use(device, None)

    def release(self) -> None:
        if _pid_in(self.path) == os.getpid():
            self.path.unlink(missing_ok=True)
