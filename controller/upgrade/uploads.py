"""Resumable uploads of large files (controller bundles, card firmware) to the board.

A bundle is tens of megabytes and a service centre's link to a screen may be
a mobile modem, so an upload must survive a dropped connection and go on
where it stopped.  An upload is named by the SHA-256 of the whole file,
which the client knows before it starts: asking for the same id later finds
what already arrived, whoever sent it, and completing it proves the bytes
are the ones meant.

Protocol (``controller/service/api_upgrade_controller.py`` serves it)::

    GET  /api/v1/uploads/ID                 {"size": bytes received, "complete": bool}
    PUT  /api/v1/uploads/ID?offset=N        raw chunk; N must equal the size received,
                                            else 409 naming the size to resume from
    POST /api/v1/uploads/ID/complete        checks the SHA-256, then the file is usable

Files live in ``STATE/uploads/``: ``ID.part`` while arriving (each chunk
fsync'd, so the size the board reports survives a power cut), ``ID`` once
complete (renamed after the hash matched).  Uploads untouched for a week are
removed when the store opens.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
import time
from pathlib import Path

from controller.errors import LedwardenError, NotFound, PayloadError

UPLOAD_ID = re.compile(r"[0-9a-f]{64}")
MAX_AGE_S = 7 * 24 * 3600
#: Free space an upload must leave on the state directory's disk: the slot store, the
#: journals and the fault log must still be writable after it, or a trial cannot confirm.
RESERVE_BYTES = 256 * 1024 * 1024
#: All uploads together (partial and complete) may take at most this many times max_size.
MAX_UPLOADS_FACTOR = 2


class UploadConflict(LedwardenError):
    """A chunk does not start where the upload stands; ``size`` is where to resume."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class UploadStore:
    """Resumable, content-addressed uploads in ``directory``, each at most ``max_size`` bytes."""

    def __init__(self, directory: Path, max_size: int) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_size = max_size
        self._lock = threading.Lock()
        self.prune()

    def _check(self, upload_id: str) -> None:
        if not UPLOAD_ID.fullmatch(upload_id):
            raise NotFound(f"no upload {upload_id!r}: upload ids are the file's SHA-256 in "
                           f"64 lower-case hex digits")

    def _part(self, upload_id: str) -> Path:
        return self.directory / f"{upload_id}.part"

    def _done(self, upload_id: str) -> Path:
        return self.directory / upload_id

    def status(self, upload_id: str) -> dict:
        """How much of ``upload_id`` has arrived; an unknown id has 0 bytes."""
        self._check(upload_id)
        done = self._done(upload_id)
        if done.is_file():
            return {"size": done.stat().st_size, "complete": True}
        part = self._part(upload_id)
        return {"size": part.stat().st_size if part.is_file() else 0, "complete": False}

    def append(self, upload_id: str, offset: int, data: bytes) -> dict:
        """Add ``data`` at ``offset``, which must be the number of bytes received so far."""
        self._check(upload_id)
        with self._lock:
            if self._done(upload_id).is_file():
                raise UploadConflict(f"upload {upload_id[:12]}… is already complete; nothing "
                                     f"more to send", self._done(upload_id).stat().st_size)
            part = self._part(upload_id)
            size = part.stat().st_size if part.is_file() else 0
            if offset != size:
                raise UploadConflict(f"this chunk starts at byte {offset}, but the board has "
                                     f"{size} bytes of upload {upload_id[:12]}…: resume with "
                                     f"offset={size}", size)
            if size + len(data) > self.max_size:
                raise PayloadError(f"the upload would exceed {self.max_size} bytes, the most this "
                                   f"board accepts")
            held = sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())
            if held + len(data) > MAX_UPLOADS_FACTOR * self.max_size:
                raise LedwardenError(f"uploads already hold {held} bytes on the board; finish or "
                                     f"let old ones expire ({MAX_AGE_S // 86400} days) first")
            if shutil.disk_usage(self.directory).free - len(data) < RESERVE_BYTES:
                raise LedwardenError(f"the board would keep less than {RESERVE_BYTES >> 20} MiB "
                                     f"free after this chunk; free space on the board and resume")
            try:
                with open(part, "ab") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:
                try:
                    with open(part, "ab") as f:   # drop a partly written chunk: resume stays exact
                        f.truncate(size)
                except OSError:
                    pass                          # the next status says where to resume
                raise LedwardenError(f"the board could not store the chunk ({exc.strerror}); "
                                     f"free space on the board and resume") from None
            return {"size": size + len(data), "complete": False}

    def complete(self, upload_id: str, sha256: str) -> Path:
        """Check the received bytes against ``sha256`` (which must be the id) and seal them."""
        self._check(upload_id)
        if sha256.lower() != upload_id:
            raise PayloadError(f"upload ids are the file's SHA-256; {sha256[:12]}… is not "
                               f"{upload_id[:12]}…")
        with self._lock:
            done = self._done(upload_id)
            if done.is_file():
                return done
            part = self._part(upload_id)
            if not part.is_file():
                raise NotFound(f"no upload {upload_id[:12]}… has started")
            h = hashlib.sha256()
            with open(part, "rb") as f:
                while block := f.read(1 << 20):
                    h.update(block)
            if h.hexdigest() != upload_id:
                size = part.stat().st_size
                part.unlink()
                raise LedwardenError(f"the {size} bytes received do not have SHA-256 "
                                     f"{upload_id[:12]}…: the upload was damaged or is of another "
                                     f"file, and is deleted; start it again")
            self._seal(part, done)
            return done

    def _seal(self, part: Path, done: Path) -> None:
        os.rename(part, done)
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def complete_sha1(self, staging_id: str, sha1: str) -> str:
        """Seal a download its server named only by SHA-1 (gooseBit) under its SHA-256, returned.

        The SHA-1 is a transport check only (it tells a damaged download apart; it is not
        collision-proof and proves nothing about the sender): trust comes from the package
        signature checked afterwards.  ``staging_id`` is the id the bytes arrived under."""
        self._check(staging_id)
        part = self._part(staging_id)
        with self._lock:
            if not part.is_file():
                raise NotFound(f"no upload {staging_id[:12]}… has started")
            h1, h256 = hashlib.sha1(usedforsecurity=False), hashlib.sha256()
            with open(part, "rb") as f:
                while block := f.read(1 << 20):
                    h1.update(block)
                    h256.update(block)
            if h1.hexdigest() != sha1.lower():
                size = part.stat().st_size
                part.unlink()
                raise LedwardenError(f"the {size} bytes received do not have SHA-1 {sha1[:12]}…: "
                                     f"the download was damaged, and is deleted")
            upload_id = h256.hexdigest()
            self._seal(part, self._done(upload_id))
            return upload_id

    def add_file(self, source: Path) -> str:
        """Copy a local file (a package unwrapped from a container) into the store under its
        SHA-256, sealed; returns that id."""
        h = hashlib.sha256()
        tmp = self.directory / f".adding-{os.getpid()}-{threading.get_ident()}"
        with open(source, "rb") as src, open(tmp, "wb") as dst:
            while block := src.read(1 << 20):
                h.update(block)
                dst.write(block)
            dst.flush()
            os.fsync(dst.fileno())
        with self._lock:
            self._seal(tmp, self._done(h.hexdigest()))
        return h.hexdigest()

    def path(self, upload_id: str) -> Path:
        """The file of a completed upload."""
        self._check(upload_id)
        done = self._done(upload_id)
        if not done.is_file():
            part = self._part(upload_id)
            state = (f"has {part.stat().st_size} bytes and is not complete" if part.is_file()
                     else "does not exist")
            raise NotFound(f"upload {upload_id[:12]}… {state}: finish it with POST "
                           f"/api/v1/uploads/{upload_id}/complete first")
        return done

    def remove(self, upload_id: str) -> None:
        self._check(upload_id)
        for p in (self._done(upload_id), self._part(upload_id)):
            p.unlink(missing_ok=True)

    def prune(self, max_age: float = MAX_AGE_S) -> None:
        cutoff = time.time() - max_age
        for p in self.directory.iterdir():
            if UPLOAD_ID.match(p.name.removesuffix(".part")) and p.stat().st_mtime < cutoff:
                p.unlink(missing_ok=True)

