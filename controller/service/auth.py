"""Who may do what on the controller: bearer tokens with roles, checked on every request.

Roles are cumulative — ``viewer`` reads status, faults and reports;
``installer`` also commissions, shows patterns, sets brightness and runs
self-tests; ``service`` also upgrades and manages tokens — so a route states
one minimum role with :func:`requires` and the check is a comparison.

Tokens are made on the board (``ledwarden controller token create``) and
only their SHA-256 is stored.  A plain hash is enough, and a slow password
hash would be wrong here: a secret is 256 random bits, not something a
person chose, so there is nothing to brute-force offline, and the Pi pays
for every request.

:func:`auth_middleware` fails closed: a route whose handler carries neither
:func:`requires` nor :func:`public` answers 500 instead of running, so a new
endpoint cannot ship unguarded by forgetting a decorator.  Every refusal is
logged on ``ledwarden.auth`` and counted by :class:`RateLimiter` per client
address *and* per presented token (its fingerprint): a token refused
``limit`` times in a minute is answered 429 for a minute, and an address
refused ``limit`` × :data:`SOURCE_FACTOR` times across tokens (fresh guesses)
has every further refusal answered 429.  A token that authenticates is never
locked out of what its role allows: the board's own timer-driven self-test on
127.0.0.1 keeps working while someone types wrong tokens from the same
address.

The web console's browsers present a session cookie instead of the token
(:mod:`.sessions`, opened by ``POST /console/login``); the middleware turns
it into the session's token, looked up again on every request, and applies
the same role check, plus the session's CSRF token on every state change.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
import math
import os
import re
import secrets
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from controller.errors import LedwardenError, NotFound
from controller.service.sessions import COOKIE, CSRF_HEADER, SessionStore, csrf_ok
from controller.timeutil import utc_clock, utc_text

log = logging.getLogger("ledwarden.auth")

ROLES = ("viewer", "installer", "service")
#: What :func:`public` records in place of a role.
PUBLIC = "public"
#: The handler attribute :func:`requires` and :func:`public` set.
ACCESS_ATTR = "required_role"

TOKEN_PREFIX = "lw_"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
#: ``last_used`` is written at most this often per token: every write is an
#: SD-card write, and "used in the last minute" is all anyone needs to know.
LAST_USED_EVERY = dt.timedelta(seconds=60)


class TokenError(LedwardenError, ValueError):
    """A token cannot be created as asked (bad role, bad or duplicate name)."""


class UnknownToken(NotFound):
    """No active token has the given name (a 404 if the API ever revokes by name)."""


def role_allows(have: str, need: str) -> bool:
    """True if a token with role ``have`` may use a route needing ``need``.

    Unknown roles on either side allow nothing: this is the last check
    before a state change, so it fails closed rather than raising.
    """
    if have not in ROLES or need not in ROLES:
        return False
    return ROLES.index(have) >= ROLES.index(need)


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise TokenError(f"unknown role {role!r}: choose one of {', '.join(ROLES)} "
                         "(each includes the rights of the ones before it)")
    return role


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


@dataclass(frozen=True)
class TokenInfo:
    """What may be known about a token without its secret."""

    id: int
    name: str
    role: str
    created: str
    last_used: str | None
    revoked: bool


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    hash       BLOB NOT NULL UNIQUE,
    created    TEXT NOT NULL,
    last_used  TEXT,
    revoked_at TEXT
);
-- Names are unique among live tokens; a revoked token keeps its row (the log
-- names it) and its name may be given to a new token.
CREATE UNIQUE INDEX IF NOT EXISTS tokens_live_name ON tokens(name) WHERE revoked_at IS NULL;
"""


#: Where the middleware leaves the caller's :class:`TokenInfo` on the request.
TOKEN = web.RequestKey("token", TokenInfo)
#: Where it leaves the console session's id, when the request came with a session cookie.
SESSION_ID = web.RequestKey("session_id", str)


class TokenStore:
    """Tokens in SQLite at ``path`` (normally ``STATE/tokens.db``), secrets never stored.

    Each call opens its own connection: the service and the ``token``
    command line are separate processes, and a revocation made on the
    command line must stop the very next request, so nothing is cached.
    WAL mode lets the service read while the command line writes.
    ``now`` is injectable for tests.
    """

    def __init__(self, path: Path, now: Callable[[], dt.datetime] | None = None) -> None:
        self.path = Path(path)
        self._now = now or utc_clock
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.path.exists():
            # Hashes only, but still nobody else's business.
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=5.0)
        db.row_factory = sqlite3.Row
        return db

    @staticmethod
    def _info(row: sqlite3.Row) -> TokenInfo:
        return TokenInfo(id=row["id"], name=row["name"], role=row["role"],
                         created=row["created"], last_used=row["last_used"],
                         revoked=row["revoked_at"] is not None)

    def create(self, name: str, role: str) -> str:
        """Make a token and return its secret — the only time anyone sees it."""
        _check_role(role)
        if not NAME_RE.fullmatch(name):
            raise TokenError(f"bad token name {name!r}: use 1-64 letters, digits and . _ @ - "
                             "(starting with a letter or digit), e.g. the person or site it is for")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            with closing(self._connect()) as db, db:
                db.execute("INSERT INTO tokens (name, role, hash, created) VALUES (?, ?, ?, ?)",
                           (name, role, _hash(secret), utc_text(self._now())))
        except sqlite3.IntegrityError:
            raise TokenError(f"a token named {name!r} already exists: choose another name, "
                             f"or revoke it first (`ledwarden controller token revoke {name}`)"
                             ) from None
        log.info("created token %r with role %r", name, role)
        return secret

    def list(self) -> list[TokenInfo]:
        """Every token, revoked ones included (they explain old log lines), oldest first."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM tokens ORDER BY id").fetchall()
        return [self._info(r) for r in rows]

    def revoke(self, name: str) -> TokenInfo:
        """Revoke the live token called ``name``; requests with it fail from now on."""
        with closing(self._connect()) as db, db:
            row = db.execute("SELECT * FROM tokens WHERE name = ? AND revoked_at IS NULL",
                             (name,)).fetchone()
            if row is None:
                raise UnknownToken(f"no active token named {name!r} "
                                   "(see `ledwarden controller token list`)")
            db.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?",
                       (utc_text(self._now()), row["id"]))
            row = db.execute("SELECT * FROM tokens WHERE id = ?", (row["id"],)).fetchone()
        log.info("revoked token %r", name)
        return self._info(row)

    def authenticate(self, secret: str) -> TokenInfo | None:
        """The live token whose secret this is, or None.

        Every live hash is compared with :func:`hmac.compare_digest` and the
        loop never stops early, so the time taken says nothing about which
        token, or how much of one, matched.
        """
        if not secret.startswith(TOKEN_PREFIX):
            return None
        wanted = _hash(secret)
        with closing(self._connect()) as db:
            match = None
            for row in db.execute("SELECT id, hash FROM tokens WHERE revoked_at IS NULL"):
                if hmac.compare_digest(row["hash"], wanted):
                    match = row["id"]
            if match is None:
                return None
            row = db.execute("SELECT * FROM tokens WHERE id = ?", (match,)).fetchone()
            now = self._now()
            last = row["last_used"]
            if last is None or now - dt.datetime.fromisoformat(last) >= LAST_USED_EVERY:
                with db:
                    db.execute("UPDATE tokens SET last_used = ? WHERE id = ?", (utc_text(now), match))
                row = db.execute("SELECT * FROM tokens WHERE id = ?", (match,)).fetchone()
        return self._info(row)

    def live(self, token_id: int) -> TokenInfo | None:
        """The token with row id ``token_id`` if it is still live: a console session names its
        token by id, and a revoked token must end its sessions at the next request."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM tokens WHERE id = ? AND revoked_at IS NULL",
                             (token_id,)).fetchone()
        return None if row is None else self._info(row)


# ------------------------------------------------------------------ route marking

def requires(role: str):
    """Mark an aiohttp handler (or a ``web.View`` method) as needing at least ``role``."""
    _check_role(role)

    def mark(handler):
        setattr(handler, ACCESS_ATTR, role)
        return handler
    return mark


def public(handler):
    """Mark a handler as open to anyone (the OpenAPI document, health)."""
    setattr(handler, ACCESS_ATTR, PUBLIC)
    return handler


def access_of(handler) -> str | None:
    """A handler's mark: a role, :data:`PUBLIC`, or None if it has neither."""
    return getattr(handler, ACCESS_ATTR, None)


def _route_access(request: web.Request) -> tuple[str | None, str]:
    """The mark on the handler routing chose for ``request``, and a name for logs."""
    info = request.match_info
    if info.http_exception is not None:
        # No route (404/405): answer only to a valid token, so unauthenticated
        # scanning learns nothing and still counts as refused attempts.
        return ROLES[0], "<no route>"
    handler = info.handler
    if isinstance(handler, type) and issubclass(handler, web.View):
        method = getattr(handler, request.method.lower(), None)
        return (access_of(method) or access_of(handler)), handler.__qualname__
    return access_of(handler), getattr(handler, "__qualname__", repr(handler))


# ------------------------------------------------------------------ rate limiting

#: An address may be refused this many times ``limit`` across all the tokens it presents.
SOURCE_FACTOR = 4


def token_fingerprint(secret: str | None) -> str:
    """What the limiter keys a presented credential by: never the secret itself."""
    if not secret:
        return "none"
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()[:16]


class RateLimiter:
    """Per key (an address and a token fingerprint, or an address): ``limit`` refusals
    within ``window`` seconds block it for ``block`` s.

    Successes do not clear the count — otherwise a client holding a viewer
    token could interleave good requests with guesses at a service token.
    ``clock`` is injectable for tests.  At most ``max_clients`` keys
    are tracked; the least recently refused are dropped first, so a flood
    of addresses cannot grow memory on the board without bound.
    """

    def __init__(self, limit: int = 5, window: float = 60.0, block: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, max_clients: int = 4096) -> None:
        self.limit = limit
        self.window = window
        self.block = block
        self.clock = clock
        self.max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}

    def retry_after(self, client: str) -> float | None:
        """Seconds until ``client`` may try again, or None if it is not blocked."""
        until = self._blocked_until.get(client)
        if until is None:
            return None
        left = until - self.clock()
        if left <= 0:
            del self._blocked_until[client]
            return None
        return left

    def record_failure(self, client: str) -> bool:
        """Count a refusal; True if this one starts a block."""
        now = self.clock()
        times = self._failures.pop(client, None) or deque()
        times.append(now)
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.limit:
            self._blocked_until[client] = now + self.block
            if len(self._blocked_until) > self.max_clients:
                self._blocked_until = {c: t for c, t in self._blocked_until.items() if t > now}
            return True
        self._failures[client] = times  # re-inserted last: dict order is recency
        while len(self._failures) > self.max_clients:
            del self._failures[next(iter(self._failures))]
        return False


# ------------------------------------------------------------------ middleware

CHALLENGE = 'Bearer realm="ledwarden"'


def _refuse(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def auth_middleware(store: TokenStore, limiter: RateLimiter, sessions: SessionStore | None = None):
    """The aiohttp middleware that authenticates and authorises every request.

    Order: an unmarked handler gets 500; a public one runs; otherwise the
    caller's credential must be live and its role high enough.  The
    credential is the bearer token, or, without an ``Authorization`` header,
    a console session cookie (:mod:`.sessions`) whose state-changing requests
    must carry the session's CSRF token; both end in the same
    :class:`TokenInfo` and the same role check, so the console can do exactly
    what its token could.  A refusal is 429 instead of 401/403 while the
    presented credential (from this address) or the address as a whole is
    blocked; a request its token may make always runs.  On success
    ``request[TOKEN]`` holds the :class:`TokenInfo` (and ``request[SESSION_ID]``
    the session's id on the cookie path).
    """
    sources = RateLimiter(limiter.limit * SOURCE_FACTOR, limiter.window, limiter.block,
                          limiter.clock, limiter.max_clients)

    def refused(request: web.Request, client: str, secret: str | None, status: int, message: str,
                token: TokenInfo | None = None, challenge: str | None = None) -> web.Response:
        key = f"{client} token:{token_fingerprint(secret)}"
        wait = max(limiter.retry_after(key) or 0, sources.retry_after(client) or 0)
        if wait:
            # Not logged at WARNING: a client hammering away would fill the
            # SD card with one line per request; the block itself was logged.
            log.debug("429 for %s %s from %s", request.method, request.path, client)
            return _refuse(429, f"too many refused requests from {client} with this token: try "
                                f"again in {math.ceil(wait)} s (a valid token is not affected)",
                           {"Retry-After": str(math.ceil(wait))})
        log.warning("refused %s %s from %s%s: %s", request.method, request.path, client,
                    f" (token {token.name!r})" if token else "", message)
        if limiter.record_failure(key):
            log.warning("blocking a token from %s for %.0f s after %d refused requests",
                        client, limiter.block, limiter.limit)
        if sources.record_failure(client):
            log.warning("blocking %s for %.0f s after %d refused requests (valid tokens still "
                        "pass)", client, sources.block, sources.limit)
        headers = None if challenge is None else {"WWW-Authenticate": challenge}
        return _refuse(status, message, headers)

    async def bearer(request: web.Request, client: str,
                     header: str) -> tuple[TokenInfo, str] | web.Response:
        scheme, _, secret = header.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            return refused(request, client, None, 401,
                           "malformed Authorization header: expected 'Bearer <token>'",
                           challenge=CHALLENGE + ', error="invalid_request"')
        # Off the event loop: a last_used write waits for the SD card.
        token = await asyncio.to_thread(store.authenticate, secret)
        if token is None:
            return refused(request, client, secret, 401, "the token is unknown or has been revoked",
                           challenge=CHALLENGE + ', error="invalid_token"')
        return token, secret

    async def cookie(request: web.Request, client: str, session_id: str,
                     sessions: SessionStore) -> tuple[TokenInfo, str] | web.Response:
        session = sessions.get(session_id)
        if session is None:
            return refused(request, client, session_id, 401,
                           "your console session has expired or has ended: log in again")
        token = await asyncio.to_thread(store.live, session.token_id)
        if token is None:
            sessions.close(session_id)
            return refused(request, client, session_id, 401,
                           "the token this console session was opened with has been revoked: "
                           "log in again with a live token")
        if not csrf_ok(session, request):
            return refused(request, client, session_id, 403,
                           f"this request changes the controller and needs the console's "
                           f"{CSRF_HEADER} header: reload the console and try again", token)
        request[SESSION_ID] = session_id
        return token, session_id

    @web.middleware
    async def middleware(request: web.Request, handler):
        client = request.remote or "unknown"
        need, name = _route_access(request)
        if need is None:
            log.error("handler %s for %s %s has neither @requires(role) nor @public: "
                      "refusing to run it", name, request.method, request.path)
            return _refuse(500, "this endpoint has no access rule; the request was not run "
                                "(a bug in the controller: please report it)")
        if need == PUBLIC:
            return await handler(request)

        header = request.headers.get("Authorization")
        session_id = request.cookies.get(COOKIE)
        if header is not None:
            found = await bearer(request, client, header)
        elif session_id and sessions is not None:
            found = await cookie(request, client, session_id, sessions)
        else:
            return refused(request, client, None, 401,
                           "this needs a token: send 'Authorization: Bearer <token>' "
                           "(make one on the controller with `ledwarden controller token create`)",
                           challenge=CHALLENGE)
        if isinstance(found, web.StreamResponse):
            return found
        token, secret = found
        if not role_allows(token.role, need):
            return refused(request, client, secret, 403,
                           f"this needs the {need!r} role; your token {token.name!r} "
                           f"has {token.role!r}", token)
        request[TOKEN] = token
        return await handler(request)

    return middleware
