"""Every durable change an install makes, one counted step at a time, so a harness can cut after any.

An install is only as safe as the order of its writes, fsyncs and renames,
and the only convincing proof of that order is to stop the installer after
each of them and look at what a reboot finds.  So the installer, the slot
store and the boot guard never touch the file system directly: they call a
:class:`Steps`, which performs one action, counts it, and — when the
``LEDWARDEN_CUT_AFTER=N`` environment variable names this step — kills the
process with SIGKILL on the spot, exactly as a crash or a pulled plug would
stop it (minus the lost page cache, which is what the fsyncs are for).
``LEDWARDEN_STEP_LOG=FILE`` appends one line per step (``N<TAB>kind<TAB>path``)
so the harness can count the steps of a real install and name the one it cut.

Without those variables this is a thin wrapper with no cost worth measuring.
What counts as a step: a file written, an fsync (of a file, a directory or
the whole file system), a rename, a directory made or removed, a hard-link
copy, a child process that writes (the venv, pip).  Writes to the step log
itself are not steps.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

CUT_ENV = "LEDWARDEN_CUT_AFTER"
LOG_ENV = "LEDWARDEN_STEP_LOG"


class Steps:
    """Performs and counts durable file-system actions; see the module docstring.

    The count is shared by every instance in the process, so "step N" means
    the Nth durable action of the process whichever part made it.
    """

    _count = 0

    def __init__(self) -> None:
        cut = os.environ.get(CUT_ENV, "")
        self._cut = int(cut) if cut.isdigit() else 0
        self._log = os.environ.get(LOG_ENV) or None

    @property
    def count(self) -> int:
        return Steps._count

    def done(self, kind: str, path: Path | str) -> None:
        """Count one step (also for actions done elsewhere, such as building a venv)."""
        Steps._count += 1
        if self._log:
            fd = os.open(self._log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{Steps._count}\t{kind}\t{path}\n".encode())
            finally:
                os.close(fd)
        if Steps._count == self._cut:
            os.kill(os.getpid(), signal.SIGKILL)

    # ---------------------------------------------------------------- files

    def write(self, path: Path, chunks: bytes | Iterable[bytes], *, fsync: bool = True,
              mode: int = 0o644) -> None:
        """Create or truncate ``path`` and write ``chunks``: one step, plus one for the fsync."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            for chunk in ([chunks] if isinstance(chunks, bytes) else chunks):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            self.done("write", path)
            if fsync:
                os.fsync(fd)
                self.done("fsync", path)
        finally:
            os.close(fd)

    def append(self, path: Path, data: bytes) -> None:
        """Append ``data`` with one write call and fsync it (a journal line)."""
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            self.done("append", path)
            os.fsync(fd)
            self.done("fsync", path)
        finally:
            os.close(fd)

    def replace(self, path: Path, data: bytes, *, mode: int = 0o644) -> None:
        """Replace ``path`` atomically: temporary file, fsync, rename, fsync of the directory.

        A reader (or a reboot) sees the old content or the new, never a mix
        or an empty file: the rename is the switch, and the two fsyncs make
        sure the new content is on disk before the name points at it and the
        name itself is on disk before this returns.
        """
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        self.write(tmp, data, mode=mode)
        self.rename(tmp, path)
        self.fsync_dir(path.parent)

    # ---------------------------------------------------------------- names

    def rename(self, src: Path, dst: Path) -> None:
        os.rename(src, dst)
        self.done("rename", f"{src} -> {dst}")

    def fsync_dir(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.done("fsync-dir", path)

    def mkdir(self, path: Path) -> None:
        os.mkdir(path)
        self.done("mkdir", path)

    def rmtree(self, path: Path) -> None:
        shutil.rmtree(path)
        self.done("rmtree", path)

    def unlink(self, path: Path) -> None:
        os.unlink(path)
        self.done("unlink", path)

    def link_tree(self, src: Path, dst: Path) -> None:
        """Copy a directory tree as hard links (same file system): instant, no extra space.

        Safe for installed packages because nothing writes into them in
        place: a new version arrives as new files, never as edits.
        """
        shutil.copytree(src, dst, symlinks=True, copy_function=os.link)
        self.done("link-tree", f"{src} -> {dst}")

    def sync(self) -> None:
        """Flush every file system: one call instead of an fsync per installed file
        (numpy alone installs over a thousand)."""
        os.sync()
        self.done("sync", "/")

    # ---------------------------------------------------------------- children

    def run(self, argv: list[str], *, what: str, env: dict | None = None,
            timeout: float = 900) -> subprocess.CompletedProcess:
        """Run a child that writes files (pip, venv); a failure raises ``CalledProcessError``.

        The child leads its own process group, and whatever ends this call early (a timeout,
        Ctrl-C, an exception) kills and reaps the whole group before it propagates: a child
        that outlived its installer could write into a staging directory after recovery has
        removed it.  A SIGKILL of the installer itself runs no code here, which is why
        recovery also stops the children it finds (:func:`stop_children_under`).
        """
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            _kill_group(proc.pid)
            proc.communicate()
            raise
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, argv, out, err)
        self.done("run", what)
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def stop_children_under(path: Path, timeout: float = 10.0) -> list[int]:
    """Kill the process group of every process whose command line names ``path`` (an installer's
    pip, its smoke test) and wait until they are gone; returns their PIDs.

    Recovery calls this before it removes a staging directory, so a child of a killed
    installer cannot re-create the directory after recovery removed it.  It reads
    ``/proc``; where there is none (not the board's Linux) it finds nothing.
    """
    needle = os.fsencode(f"{path}/")
    ours = os.getpgrp()
    found = []
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmdline = f.read()
            group = os.getpgid(int(entry.name))
        except OSError:
            continue            # gone meanwhile, or not ours to look at
        if needle in cmdline and group != ours:
            found.append(int(entry.name))
            _kill_group(group)
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in found) and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def _kill_group(group: int) -> None:
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _alive(pid: int) -> bool:
    """True until ``pid`` has exited (a zombie nobody reaps counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return False
