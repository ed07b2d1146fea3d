"""The HTTP half of hawkBit's Direct Device Integration (DDI) API, as a device speaks it.

Only what a device needs, each answer checked before it is believed (a
server that answers garbage gets :class:`DdiError` with what was wrong, never
a ``KeyError`` three calls later)::

    GET  {base}                                  what to do: config.polling.sleep, _links
    PUT  {base}/configData                       {"mode": "merge", "data": {…attributes…}}
    GET  {base}/deploymentBase/{id}              the action: download/update/maintenanceWindow,
                                                 chunks[].artifacts[] with hashes and links
    POST {base}/deploymentBase/{id}/feedback     {"id", "status": {"execution", "result":
                                                 {"finished", "progress": {"cnt", "of"}},
                                                 "details": […]}}
    GET  {base}/cancelAction/{id}                {"id", "cancelAction": {"stopId"}}
    POST {base}/cancelAction/{id}/feedback       the same feedback shape

``{base}`` is ``{url}/{tenant}/controller/v1/{controllerId}``; every request
carries ``Authorization: TargetToken …``, but only to the server's own origin:
an artifact link to another host (a CDN) is fetched without it.

Artifacts arrive in the board's resumable upload store
(:class:`controller.upgrade.uploads.UploadStore`, named by SHA-256), so a
download cut in the middle goes on with an HTTP ``Range`` request from the
bytes already on disk, and a finished one is sealed only when its SHA-256 is
the one the server gave — the same store and the same check a hand upload
goes through.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from controller.errors import LedwardenError
from controller.fleet.settings import DdiSettings
from controller.upgrade.uploads import UPLOAD_ID, UploadStore

#: Largest JSON answer believed: hawkBit's biggest (a deployment with many chunks) is a few kB.
MAX_ANSWER = 1 << 20
#: Bytes read from a download before they are appended (and fsync'd) to the upload store.
CHUNK = 1 << 20
TIMEOUT = aiohttp.ClientTimeout(total=None, connect=20, sock_read=60)
#: Backoff while the server cannot be reached: doubling from BACKOFF_MIN_S up to BACKOFF_MAX_S.
BACKOFF_MIN_S, BACKOFF_MAX_S = 15.0, 3600.0
SHA1 = re.compile(r"[0-9a-f]{40}")
SLEEP = re.compile(r"^(\d{1,3}):([0-5]\d):([0-5]\d)$")
#: The polling intervals a server may ask for: hawkBit's own limits are 30 s .. 1 day.
MIN_SLEEP_S, MAX_SLEEP_S = 10, 7 * 86400
EXECUTIONS = ("proceeding", "closed", "scheduled", "resumed", "canceled", "rejected", "downloading",
              "downloaded")
HANDLING = ("skip", "attempt", "forced")


class DdiError(LedwardenError):
    """The server answered, but not with what the DDI API promises (or refused the request)."""


class Unreachable(LedwardenError):
    """No answer at all (refused, timed out, reset): retried with backoff."""


def parse_sleep(text: object) -> int:
    """``config.polling.sleep`` (``HH:MM:SS``) in seconds, refused outside 10 s .. 7 days."""
    m = SLEEP.match(text) if isinstance(text, str) else None
    if not m:
        raise DdiError(f"the server's polling interval {text!r} is not HH:MM:SS")
    seconds = int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3])
    if not MIN_SLEEP_S <= seconds <= MAX_SLEEP_S:
        raise DdiError(f"the server's polling interval {text} is outside {MIN_SLEEP_S} s .. 7 days")
    return seconds


def backoff(failures: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after ``failures`` unanswered polls in a row: exponential, capped, and
    jittered by ±50 % so that a hundred walls cut off together do not return together."""
    base = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** max(0, min(failures - 1, 20)))
    return base * (rng or random).uniform(0.5, 1.5)


@dataclass(frozen=True)
class Poll:
    """What the base resource asked for."""

    sleep_s: int
    deployment: str | None      # href of deploymentBase/{id}
    cancel: str | None          # href of cancelAction/{id}
    config_data: str | None     # present when the server wants the attributes (again)


@dataclass(frozen=True)
class Artifact:
    filename: str
    size: int
    sha256: str             # the store id: the SHA-256, or a staging id when the server sent SHA-1 only
    href: str
    sha1: str | None = None  # set when the server (gooseBit) sent SHA-1 only: a transport check


@dataclass(frozen=True)
class Deployment:
    action_id: str
    download: str           # skip | attempt | forced
    update: str             # skip | attempt | forced
    window: str | None      # maintenanceWindow: available | unavailable | None (no window)
    artifacts: tuple[Artifact, ...]
    #: The software modules' versions (chunks[].version), joined with "+": what gooseBit compares
    #: with the device's ``sw_version`` attribute to decide whether to offer its rollout again.
    version: str = ""


def _link(links: object, name: str) -> str | None:
    if not isinstance(links, dict) or name not in links:
        return None
    href = links[name].get("href") if isinstance(links[name], dict) else None
    if not isinstance(href, str) or urlsplit(href).scheme not in ("http", "https"):
        raise DdiError(f"the server's {name} link {href!r} is not an http(s) address")
    return href


def parse_poll(doc: object) -> Poll:
    if not isinstance(doc, dict):
        raise DdiError("the server's answer to a poll is not a JSON object")
    try:
        sleep = doc["config"]["polling"]["sleep"]
    except (KeyError, TypeError):
        raise DdiError("the server's answer to a poll has no config.polling.sleep") from None
    links = doc.get("_links", {})
    return Poll(parse_sleep(sleep), _link(links, "deploymentBase"), _link(links, "cancelAction"),
                _link(links, "configData"))


def parse_deployment(doc: object) -> Deployment:
    """A deploymentBase answer; every artifact must carry a SHA-256 (the only hash trusted)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("deployment"), dict):
        raise DdiError("the server's deployment is not a JSON object with a 'deployment'")
    action_id, dep = doc.get("id"), doc["deployment"]
    if not isinstance(action_id, (str, int)) or isinstance(action_id, bool) or \
            not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(action_id)):
        raise DdiError(f"the server's action id {action_id!r} is not a short name or number")
    handling = {k: dep.get(k, "forced") for k in ("download", "update")}
    for k, v in handling.items():
        if v not in HANDLING:
            raise DdiError(f"the deployment's {k} handling {v!r} is not one of {', '.join(HANDLING)}")
    window = dep.get("maintenanceWindow")
    if window not in (None, "available", "unavailable"):
        raise DdiError(f"the deployment's maintenanceWindow {window!r} is not available/unavailable")
    artifacts = []
    chunks = dep.get("chunks")
    if not isinstance(chunks, list) or not chunks:
        raise DdiError("the deployment names no chunks (software modules) to install")
    for chunk in chunks:
        for art in (chunk.get("artifacts") if isinstance(chunk, dict) else None) or []:
            if not isinstance(art, dict):
                raise DdiError("an artifact of the deployment is not a JSON object")
            name, size = art.get("filename"), art.get("size")
            sha = (art.get("hashes") or {}).get("sha256") if isinstance(art.get("hashes"), dict) else None
            if not isinstance(name, str) or not isinstance(size, int) or isinstance(size, bool) \
                    or size < 0:
                raise DdiError(f"artifact {name!r} has no filename or size")
            sha1 = (art.get("hashes") or {}).get("sha1") if isinstance(art.get("hashes"), dict) else None
            if isinstance(sha, str) and UPLOAD_ID.fullmatch(sha.lower()):
                key, weak = sha.lower(), None
            elif isinstance(sha1, str) and SHA1.fullmatch(sha1.lower()):
                # gooseBit sends SHA-1 only: a transport check; the signature is what is trusted.
                key, weak = staging_id(sha1.lower()), sha1.lower()
            else:
                raise DdiError(f"artifact {name!r} carries no SHA-256 or SHA-1 hash; the board "
                               f"installs only what it can check")
            href = _link(art.get("_links"), "download") or _link(art.get("_links"), "download-http")
            if href is None:
                raise DdiError(f"artifact {name!r} has no download link")
            artifacts.append(Artifact(name, size, key, href, weak))
    if not artifacts:
        raise DdiError("the deployment's chunks hold no artifacts")
    versions = [str(c["version"]) for c in chunks if isinstance(c, dict)
                and isinstance(c.get("version"), (str, int, float)) and str(c["version"]).strip()]
    return Deployment(str(action_id), handling["download"], handling["update"], window,
                      tuple(artifacts), "+".join(versions)[:200])


def action_id_of(href: str | None) -> str | None:
    """The action id a ``deploymentBase/{id}`` link names (None without a link)."""
    if href is None:
        return None
    parts = urlsplit(href).path.rstrip("/").rsplit("/", 2)
    return parts[-1] if len(parts) == 3 and parts[-2] == "deploymentBase" else None


def staging_id(sha1: str) -> str:
    """The upload-store id a SHA-1-only artifact downloads under until its SHA-256 is known."""
    return hashlib.sha256(b"ledwarden-ddi-sha1:" + sha1.encode()).hexdigest()


def feedback_doc(action_id: str, execution: str, finished: str = "none", *,
                 progress: tuple[int, int] | None = None, details: list[str] | None = None) -> dict:
    """A feedback body hawkBit (old and new) and gooseBit accept: ``id`` is ignored by newer
    servers, ``progress`` only meaningful while proceeding."""
    assert execution in EXECUTIONS and finished in ("none", "success", "failure")
    result: dict = {"finished": finished}
    if progress is not None:
        result["progress"] = {"cnt": progress[0], "of": progress[1]}
    return {"id": action_id, "status": {"execution": execution, "result": result,
                                        "details": [d[:1000] for d in (details or [])]}}


class DdiClient:
    """One server, one target; ``session`` is the caller's (so tests and the service close it)."""

    def __init__(self, settings: DdiSettings, token: str, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self._token = token
        self.session = session
        origin = urlsplit(settings.url)
        self._origin = (origin.scheme, origin.netloc)
        #: Requests and bytes (bodies in and out) since start: the poll-cost figure in docs/fleet.md.
        self.requests = 0
        self.bytes = 0

    def _headers(self, url: str) -> dict:
        own = (urlsplit(url).scheme, urlsplit(url).netloc) == self._origin
        return {"Accept": "application/hal+json, application/json",
                **({"Authorization": f"TargetToken {self._token}"} if own else {})}

    async def _json(self, method: str, url: str, body: dict | None = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        headers = self._headers(url) | ({"Content-Type": "application/json"} if data else {})
        try:
            async with self.session.request(method, url, data=data, headers=headers,
                                            timeout=TIMEOUT) as resp:
                raw = await resp.content.read(MAX_ANSWER + 1)
                self.requests += 1
                self.bytes += len(raw) + len(data or b"")
                if resp.status in (401, 403):
                    raise DdiError(f"the server refused the target token ({resp.status}) for "
                                   f"{method} {url}: check the token and controller id")
                if resp.status >= 400:
                    raise DdiError(f"the server answered {resp.status} to {method} {url}: "
                                   f"{raw[:200].decode('utf-8', 'replace')}")
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError, OSError) as exc:
            raise Unreachable(f"{method} {url} got no answer ({exc.__class__.__name__}: "
                              f"{exc})") from None
        if len(raw) > MAX_ANSWER:
            raise DdiError(f"the server's answer to {method} {url} is over {MAX_ANSWER} bytes")
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise DdiError(f"the server's answer to {method} {url} is not JSON") from None

    async def poll(self) -> Poll:
        return parse_poll(await self._json("GET", self.settings.base))

    async def put_config_data(self, attributes: dict[str, str]) -> None:
        await self._json("PUT", f"{self.settings.base}/configData",
                         {"mode": "merge", "data": attributes})

    async def deployment(self, href: str) -> Deployment:
        return parse_deployment(await self._json("GET", href))

    async def cancel_stop_id(self, href: str) -> tuple[str, str]:
        """(cancel action id, the id of the action to stop)."""
        doc = await self._json("GET", href)
        try:
            assert isinstance(doc, dict)
            return str(doc["id"]), str(doc["cancelAction"]["stopId"])
        except (AssertionError, KeyError, TypeError):
            raise DdiError("the server's cancelAction answer has no id and cancelAction.stopId") from None

    async def feedback(self, action_id: str, execution: str, finished: str = "none", *,
                       progress: tuple[int, int] | None = None, details: list[str] | None = None,
                       cancel: bool = False) -> None:
        kind = "cancelAction" if cancel else "deploymentBase"
        await self._json("POST", f"{self.settings.base}/{kind}/{action_id}/feedback",
                         feedback_doc(action_id, execution, finished, progress=progress,
                                      details=details))

    async def download(self, art: Artifact, store: UploadStore,
                       progress: Callable[[int], None] | None = None) -> str:
        """Fetch ``art`` into ``store`` under its SHA-256, resuming from what is on disk, and seal
        it only when the whole file hashes to what the server said (raises LedwardenError).
        Returns the sealed upload's id (its SHA-256, learnt here when the server sent SHA-1)."""
        status = await asyncio.to_thread(store.status, art.sha256)
        have = status["size"]
        if status["complete"]:
            return art.sha256
        if have > art.size:
            await asyncio.to_thread(store.remove, art.sha256)
            have = 0
        if have < art.size:
            headers = self._headers(art.href) | ({"Range": f"bytes={have}-"} if have else {})
            buf = bytearray()
            try:
                async with self.session.get(art.href, headers=headers, timeout=TIMEOUT) as resp:
                    self.requests += 1
                    if resp.status == 200 and have:          # the server ignores Range: start over
                        await asyncio.to_thread(store.remove, art.sha256)
                        have = 0
                    elif resp.status not in (200, 206):
                        raise DdiError(f"downloading {art.filename} got {resp.status} from the server")
                    async for block in resp.content.iter_chunked(64 * 1024):
                        buf += block
                        if have + len(buf) > art.size:
                            raise DdiError(f"{art.filename} is longer than the {art.size} bytes "
                                           f"the server announced")
                        if len(buf) >= CHUNK:
                            have = await self._append(store, art, have, bytes(buf), progress)
                            buf.clear()
                    if buf:
                        have = await self._append(store, art, have, bytes(buf), progress)
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError,
                    asyncio.TimeoutError, OSError) as exc:
                if buf:                                 # keep what arrived: resume after it
                    have = await self._append(store, art, have, bytes(buf), progress)
                raise Unreachable(f"the download of {art.filename} stopped at byte {have} of "
                                  f"{art.size} ({exc.__class__.__name__}); it resumes there") from None
        if have != art.size:
            raise Unreachable(f"the download of {art.filename} ended at byte {have} of {art.size}; "
                              f"it resumes there")
        if art.sha1:
            return await asyncio.to_thread(store.complete_sha1, art.sha256, art.sha1)
        await asyncio.to_thread(store.complete, art.sha256, art.sha256)
        return art.sha256

    async def _append(self, store: UploadStore, art: Artifact, have: int, data: bytes,
                      progress: Callable[[int], None] | None) -> int:
        await asyncio.to_thread(store.append, art.sha256, have, data)
        self.bytes += len(data)
        if progress:
            progress(have + len(data))
        return have + len(data)
