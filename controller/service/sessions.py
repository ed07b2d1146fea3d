"""Console sessions: a token presented once at login, then a cookie, a CSRF token and an expiry.

A browser cannot hold a bearer token safely: anything a page's script can
read, an injected script can steal.  So the console trades the token for a
session at ``POST /console/login`` and from then on the browser sends only a
random session id in a cookie the page's scripts cannot read (``HttpOnly``),
that never leaves HTTPS (``Secure``) and that another site's page cannot
make the browser send (``SameSite=Strict``).

Sessions live in memory only, keyed by the SHA-256 of their id: a restart
ends every session (the engineer logs in again), nothing about them touches
the SD card, and a memory dump does not hold a usable id.  A session
records the *token's* row id, not its role: the auth middleware looks the
token up on every request, so revoking the token ends its sessions at the
next request and the role is always the token's current one.

Each session carries its own CSRF token, which the page learns from the
login answer (or ``GET /console/session``) and sends back in the
``X-CSRF-Token`` header of every state-changing request.  A page on another
origin can make the browser send the cookie (not with ``SameSite=Strict``,
but defence in depth), never read the CSRF token, so it cannot forge a
request the middleware accepts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

COOKIE = "lw_session"
CSRF_HEADER = "X-CSRF-Token"
#: Methods that change nothing; every other method needs the CSRF header on the cookie path.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: A session lasts a working shift, then the engineer logs in again.
SESSION_TTL_S = 8 * 3600.0
#: At most this many sessions are held; the oldest is dropped to make room, so a client that
#: logs in over and over cannot grow the board's memory.
MAX_SESSIONS = 64


@dataclass(frozen=True)
class Session:
    """One console login: which token opened it, its CSRF token and when it ends."""

    token_id: int
    csrf: str
    expires: float          # on the store's clock (monotonic)
    expires_utc: float      # wall clock, for the page and the cookie


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


class SessionStore:
    """The live sessions, in memory, oldest first; ``clock`` is injectable for tests."""

    def __init__(self, ttl_s: float = SESSION_TTL_S, max_sessions: int = MAX_SESSIONS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def open(self, token_id: int) -> tuple[str, Session]:
        """A new session for the token with row id ``token_id``: its secret id and the session."""
        session_id = secrets.token_urlsafe(32)
        session = Session(token_id, secrets.token_urlsafe(32), self.clock() + self.ttl_s,
                          time.time() + self.ttl_s)
        self._sessions[_key(session_id)] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session_id, session

    def get(self, session_id: str) -> Session | None:
        """The live session with this id, or None (unknown, ended or expired)."""
        key = _key(session_id)
        session = self._sessions.get(key)
        if session is not None and session.expires <= self.clock():
            del self._sessions[key]
            return None
        return session

    def close(self, session_id: str) -> bool:
        """End a session (logout); True if it was live."""
        return self._sessions.pop(_key(session_id), None) is not None

    def __len__(self) -> int:
        return len(self._sessions)


def csrf_ok(session: Session, request: web.Request) -> bool:
    """True if the request may change state: a safe method, or the session's CSRF token sent in
    the header (compared in constant time)."""
    if request.method in SAFE_METHODS:
        return True
    sent = request.headers.get(CSRF_HEADER, "")
    return hmac.compare_digest(sent.encode("utf-8", "replace"), session.csrf.encode())


def set_cookie(response: web.StreamResponse, session_id: str, ttl_s: float) -> None:
    """The session cookie: unreadable by scripts, HTTPS only, never sent from another site."""
    response.set_cookie(COOKIE, session_id, max_age=int(ttl_s), path="/", secure=True,
                        httponly=True, samesite="Strict")


def clear_cookie(response: web.StreamResponse) -> None:
    """Tell the browser to forget the session cookie (logout, or a session that has ended)."""
    response.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
