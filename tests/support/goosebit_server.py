"""A real gooseBit (a small DDI server, FastAPI and SQLite) on 127.0.0.1 for the fleet tests.

Why a real one: ``tests/support/ddi_server.py`` is written from hawkBit's
document, so it can only agree with our reading of it.  gooseBit is someone
else's reading, and what the controller meets in a shop without Java.

gooseBit pins its own FastAPI, Tortoise and pydantic versions, so it lives in a
venv of its own, never the project's: ``tests/support/.goosebit-venv``
(gitignored), made by ``ensure()`` on first use (``pip install
goosebit==0.2.12``) — or beforehand by ``.ci/run`` with
``python3 tests/support/goosebit_server.py``.  Where it cannot be made (no
network), a test skips with the reason on a developer's machine and fails in
CI (``CI`` set).

Each :class:`GooseBit` gets a temporary SQLite database migrated with
gooseBit's own ``aerich upgrade``, its own artifacts directory, a free port,
device authentication off (its default) and a 10 s poll time; the first
admin is made through ``POST /setup`` and the API is used with the bearer
token ``POST /login`` returns — the same calls its web UI makes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import json
import uuid
from pathlib import Path

VERSION = "0.2.12"
HERE = Path(__file__).resolve().parent
VENV = HERE / ".goosebit-venv"
PYTHON = VENV / "bin" / "python"
ADMIN, PASSWORD = "admin@ledwarden.test", "goosebit-test-pw"


def _missing(what: str) -> None:
    import pytest
    if os.environ.get("CI"):
        pytest.fail(f"{what}; CI must run the gooseBit tests (.ci/run prepares its venv)")
    pytest.skip(f"{what}: the gooseBit tests need its venv (python3 tests/support/goosebit_server.py)")


def _installed() -> bool:
    return PYTHON.exists() and subprocess.run(
        [str(PYTHON), "-c", f"import importlib.metadata as m; assert m.version('goosebit') == '{VERSION}'"],
        capture_output=True).returncode == 0


def prepare() -> str | None:
    """Make the venv with the pinned gooseBit; returns why it failed, or None."""
    if _installed():
        return None
    done = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True)
    if done.returncode == 0:
        done = subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", f"goosebit=={VERSION}"],
                              capture_output=True, text=True, timeout=900)
    if done.returncode or not _installed():
        return f"pip install goosebit=={VERSION} failed: {(done.stderr or done.stdout).strip()[-400:]}"
    return None


def ensure() -> None:
    """The venv is there (made on first use); else skip, or fail in CI."""
    why = prepare()
    if why:
        _missing(why)


def _site_packages() -> Path:
    out = subprocess.run([str(PYTHON), "-c", "import goosebit, pathlib; "
                          "print(pathlib.Path(goosebit.__file__).parent)"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


class GooseBit:
    """One gooseBit process: ``start()``, its admin API, ``stop()``."""

    def __init__(self, workdir: Path, port: int, poll: str = "00:00:10") -> None:
        self.workdir, self.port, self.poll = workdir, port, poll
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.token = ""
        self.log = workdir / "goosebit.log"

    def _env(self) -> dict:
        return os.environ | {
            "GOOSEBIT_DB_URI": f"sqlite://{self.workdir / 'db.sqlite3'}",
            "GOOSEBIT_ARTIFACTS_DIR": str(self.workdir / "artifacts"),
            "GOOSEBIT_PORT": str(self.port),
            "GOOSEBIT_POLL_TIME": self.poll,
            "GOOSEBIT_SECRET_KEY": uuid.uuid4().hex,
        }

    def start(self) -> "GooseBit":
        ensure()
        self.workdir.mkdir(parents=True, exist_ok=True)
        pkg = _site_packages()
        # aerich reads its settings from a TOML file; the wheel ships the migrations, not that file.
        conf = self.workdir / "aerich.toml"
        conf.write_text(f'[tool.aerich]\ntortoise_orm = "goosebit.db.config.TORTOISE_CONF"\n'
                        f'location = "{pkg / "db" / "migrations"}"\nsrc_folder = "{pkg}"\n')
        done = subprocess.run([str(VENV / "bin" / "aerich"), "-c", str(conf), "upgrade"],
                              cwd=self.workdir, env=self._env(), capture_output=True, text=True,
                              timeout=120)
        if done.returncode:
            raise RuntimeError(f"gooseBit's database migration failed: {done.stderr[-800:]}")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [str(PYTHON), "-m", "uvicorn", "goosebit:app", "--host", "127.0.0.1",
                 "--port", str(self.port)], cwd=self.workdir, env=self._env(), stdout=log,
                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                self._form("/setup", {"username": ADMIN, "password": PASSWORD})
                break
            except (urllib.error.URLError, ConnectionError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"gooseBit did not answer on {self.url}: "
                                       f"{self.log.read_text()[-800:]}") from None
                time.sleep(0.3)
        self.token = self._form("/login", {"username": ADMIN, "password": PASSWORD})["access_token"]
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "GooseBit":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the admin API ---------------------------------------------------------------------
    def _request(self, method: str, path: str, body: bytes | None, ctype: str | None) -> object:
        req = urllib.request.Request(self.url + path, data=body, method=method)
        if ctype:
            req.add_header("Content-Type", ctype)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def _form(self, path: str, fields: dict) -> dict:
        return self._request("POST", path, urllib.parse.urlencode(fields).encode(),
                             "application/x-www-form-urlencoded")

    def upload(self, swu: Path) -> int:
        """``PUT /api/v1/software`` (multipart ``file``); returns the software id."""
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"{swu.name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ).encode() + swu.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        out = self._request("PUT", "/api/v1/software", body, f"multipart/form-data; boundary={boundary}")
        return int(out["id"])  # type: ignore[index]

    def rollout(self, name: str, software_id: int, feed: str = "default") -> None:
        """``PUT /api/v1/rollouts``: every device on ``feed`` whose hardware matches gets it."""
        self._request("PUT", "/api/v1/rollouts",
                      json.dumps({"name": name, "feed": feed, "software_id": software_id}).encode(),
                      "application/json")

    def devices(self) -> list[dict]:
        return self._request("GET", "/api/v1/devices", None, None)["devices"]  # type: ignore[index]

    def device_log(self, device: str) -> str:
        """``GET /api/v1/devices/{id}/log``: the feedback details the device sent, joined."""
        return self._request("GET", f"/api/v1/devices/{urllib.parse.quote(device)}/log", None,
                             None)["log"] or ""  # type: ignore[index]

    def rollouts(self) -> list[dict]:
        return self._request("GET", "/api/v1/rollouts", None, None)["rollouts"]  # type: ignore[index]


if __name__ == "__main__":                    # .ci/run: prepare the venv before the tests
    why = prepare()
    if why:
        sys.exit(why)
