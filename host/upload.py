"""Sending a large file to a controller so that a broken connection costs nothing.

The board names an upload by the file's SHA-256 (``controller/upgrade/uploads.py``),
so this side asks first how much of *this content* the board already holds —
from an earlier attempt, even one by somebody else — and sends only the
rest, in chunks under the API's 1 MiB request limit.  A chunk that fails on
the way (the link drops, the board restarts) is retried from whatever size
the board then reports; the board decides where to resume, never a guess
here.  Shared by controller bundles and card firmware.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

from controller.jsonin import JsonObject
from host.client import ApiError, ControllerClient, ControllerTimeout, ControllerUnreachable

#: Bytes per request: under the controller's 1 MiB body limit, with room to spare.
CHUNK = 960 * 1024
RETRIES = 5


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def upload_file(client: ControllerClient, path: Path, *,
                progress: Callable[[int, int], None] | None = None,
                resumed: Callable[[int], None] | None = None, chunk: int = CHUNK,
                retries: int = RETRIES) -> str:
    """Upload ``path`` (resuming what the board already has) and seal it; return the upload id.

    ``progress(done, total)`` is called after each chunk; ``resumed(offset)``
    once if the board already held ``offset`` > 0 bytes of it.
    """
    path = Path(path)
    upload_id, total = sha256_of(path), path.stat().st_size
    base = f"/api/v1/uploads/{upload_id}"
    progress = progress or (lambda done, total: None)
    status = client.get(base)
    if status["size"] and resumed:
        resumed(status["size"])
    failures = 0
    with open(path, "rb") as f:
        while not status["complete"] and status["size"] < total:
            offset = status["size"]
            progress(offset, total)
            f.seek(offset)
            data = f.read(chunk)
            try:
                status = client.put_bytes(f"{base}?offset={offset}", data, {})
                failures = 0
            except (ControllerUnreachable, ControllerTimeout, ApiError) as exc:
                if isinstance(exc, ApiError) and exc.status != 409:
                    raise
                failures += 1
                if failures > retries:
                    raise
                time.sleep(min(2 ** failures, 30) if not isinstance(exc, ApiError) else 0)
                status = _status_when_back(client, base, retries)
    if not status["complete"]:
        client.post(f"{base}/complete", {"sha256": upload_id})
    progress(total, total)
    return upload_id


def _status_when_back(client: ControllerClient, base: str, retries: int) -> JsonObject:
    """Ask where to resume, waiting for the board to answer again."""
    for attempt in range(retries):
        try:
            return client.get(base)
        except (ControllerUnreachable, ControllerTimeout):
            time.sleep(min(2 ** (attempt + 1), 30))
    return client.get(base)
