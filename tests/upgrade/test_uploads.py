"""The resumable upload store: where to resume, what a wrong offset or hash does, limits."""

from __future__ import annotations

import hashlib
import os

import pytest

from controller.errors import LedwardenError, NotFound, PayloadError
from controller.upgrade.uploads import UploadConflict, UploadStore

DATA = os.urandom(300_000)
ID = hashlib.sha256(DATA).hexdigest()


def test_an_upload_resumes_where_the_board_says_and_seals_on_the_right_hash(tmp_path):
    store = UploadStore(tmp_path, max_size=1 << 20)
    assert store.status(ID) == {"size": 0, "complete": False}
    store.append(ID, 0, DATA[:100_000])
    # A client that lost track and resends from 0 is told where to go on.
    with pytest.raises(UploadConflict) as err:
        store.append(ID, 0, DATA[:100_000])
    assert err.value.size == 100_000 and "resume with offset=100000" in str(err.value)
    # A fresh store on the same directory (the service restarted) knows the same.
    store = UploadStore(tmp_path, max_size=1 << 20)
    assert store.status(ID) == {"size": 100_000, "complete": False}
    with pytest.raises(NotFound, match="not complete"):
        store.path(ID)
    store.append(ID, 100_000, DATA[100_000:])
    path = store.complete(ID, ID.upper())
    assert path.read_bytes() == DATA and store.path(ID) == path
    assert store.status(ID) == {"size": len(DATA), "complete": True}
    with pytest.raises(UploadConflict, match="already complete"):
        store.append(ID, len(DATA), b"x")
    store.remove(ID)
    assert store.status(ID) == {"size": 0, "complete": False}


def test_damaged_bytes_are_deleted_at_completion_and_limits_hold(tmp_path):
    store = UploadStore(tmp_path, max_size=200_000)
    with pytest.raises(PayloadError, match="exceed 200000"):
        store.append(ID, 0, DATA)
    store.append(ID, 0, b"not the same bytes")
    with pytest.raises(LedwardenError, match="damaged or is of another file"):
        store.complete(ID, ID)
    assert store.status(ID) == {"size": 0, "complete": False}
    with pytest.raises(PayloadError, match="SHA-256"):
        store.complete(ID, "0" * 64)
    for bad in ("../etc", ID[:10], ID + ".part"):
        with pytest.raises(NotFound, match="64 lower-case hex"):
            store.status(bad)


def test_ids_are_exactly_64_hex_digits_and_the_board_keeps_room_to_work(tmp_path, monkeypatch):
    from controller.upgrade import uploads
    store = UploadStore(tmp_path, max_size=1 << 20)
    for bad in (ID + "\n", ID[:63], "../" + ID[3:], ID.upper()):
        with pytest.raises(NotFound):
            store.append(bad, 0, b"x")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(uploads, "RESERVE_BYTES", 1 << 62)
    with pytest.raises(LedwardenError, match="free"):
        store.append(ID, 0, DATA[:1000])
    monkeypatch.setattr(uploads, "RESERVE_BYTES", 0)
    other = hashlib.sha256(b"other").hexdigest()
    store.append(ID, 0, DATA[:200_000])
    monkeypatch.setattr(uploads, "MAX_UPLOADS_FACTOR", 0.25)      # all uploads together: 256 KiB
    with pytest.raises(LedwardenError, match="already hold"):
        store.append(other, 0, DATA[:100_000])
