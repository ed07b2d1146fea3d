"""The web console: its pages, login and logout, the live wall and the event stream.

The console is static files (``console/`` beside this module: HTML, ES
modules, CSS, no build step) served by the API's own application, and it
does everything over the API with the same roles.  What it adds is the
browser's way in (:mod:`.sessions`): ``POST /console/login`` trades a token,
sent once in the body, for a session cookie; ``POST /console/logout`` ends
it.  From then on the auth middleware (:func:`.auth.auth_middleware`) takes
the cookie where it would take a bearer token and checks the same role.

Failed logins are counted per client address by a limiter of their own:
``LOGIN_LIMIT`` failures in a minute and that address's logins are answered
429 for a minute, right or wrong, so guessing at the login form is slow.
The board's own timers use bearer tokens on the API, never the login, so
they cannot be locked out by someone mistyping at the login form.

Every answer the application gives carries a strict Content-Security-Policy
(scripts, styles, images and connections from this origin only, no inline
script or style, no framing): the console's pages need nothing more, and
the JSON API needs nothing at all.

These routes are the console's, not the API's: they are not in
``openapi.json`` (a login form and an endless event stream are not API
calls a generated client should make) and ``docs/console.md`` describes
them.  Each still carries ``@public`` or ``@requires`` like every route.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import math
import re
import time
from pathlib import Path

from aiohttp import web

from controller.errors import PayloadError
from controller.report.i18n import LANGS
from controller.service.apikit import SERVICE, body_of, int_query
from controller.service.auth import SESSION_ID, TOKEN, RateLimiter, TokenStore, public, requires
from controller.service.consolefeed import LiveFeed, wall_picture
from controller.service.sessions import SessionStore, clear_cookie, set_cookie

log = logging.getLogger("ledwarden.console")

STATIC = Path(__file__).with_name("console")
#: The console's files by name: lower-case names, these types only, nothing outside the folder.
STATIC_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,40}\.(html|js|css|svg)")
TYPES = {"html": "text/html", "js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
LOGIN_LIMIT = 5
#: The wall picture's width in CSS pixels: the reports' by default, the page asks for its own.
WALL_WIDTH, WALL_WIDTH_MIN, WALL_WIDTH_MAX = 960, 320, 1600
#: How often an open event stream looks its token up again (a revoked token's stream ends).
TOKEN_RECHECK_S = 10.0

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
#: Report pages (``/api/v1/reports/…``, ``/api/v1/selftest/runs/N?format=html``): no script,
#: their own style elements by hash, pictures inline.
REPORT_CSP = ("default-src 'none'; style-src {styles}; img-src 'self' data:; base-uri 'none'; "
              "form-action 'none'; frame-ancestors 'none'")
STYLE_ELEMENT = re.compile(rb"<style>(.*?)</style>", re.S)
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}

SESSIONS = web.AppKey("sessions", SessionStore)
LOGINS = web.AppKey("login_limiter", RateLimiter)
TOKENS = web.AppKey("tokens", TokenStore)
FEED = web.AppKey("console_feed", LiveFeed)


def preferred_lang(accept_language: str | None) -> str:
    """The console's language from the browser's ``Accept-Language``: the first of ours it names
    with the highest weight, English when it names neither."""
    best, best_q = "en", -1.0
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if lang in LANGS and q > best_q and q > 0:
            best, best_q = lang, q - i * 1e-6      # equal weights: the first named wins
    return best


# ------------------------------------------------------------------ pages

def _file(name: str) -> web.Response:
    if not STATIC_NAME.fullmatch(name) or not (STATIC / name).is_file():
        raise web.HTTPNotFound()
    ext = name.rsplit(".", 1)[1]
    response = web.Response(body=(STATIC / name).read_bytes(), content_type=TYPES[ext],
                            charset="utf-8", headers={"Cache-Control": "no-cache"})
    # Compressed when the browser takes it: these files hold no secret for a compression side
    # channel to reveal (the CSRF token travels only in JSON answers, never compressed).
    response.enable_compression()
    return response


@public
async def page(request: web.Request) -> web.Response:
    """The console's one page, in the browser's language; public (it holds no data: everything
    on it comes from calls that need a session)."""
    response = _file("index.html")
    lang = preferred_lang(request.headers.get("Accept-Language"))
    assert isinstance(response.body, bytes)
    response.body = response.body.replace(b'<html lang="en">', f'<html lang="{lang}">'.encode(), 1)
    return response


@public
async def asset(request: web.Request) -> web.Response:
    """A script, style sheet or page of the console, by name; public like the page."""
    return _file(request.match_info["name"])


@public
async def favicon(request: web.Request) -> web.Response:
    """The console's icon, so the browser's own request for one is not a refused request."""
    return _file("favicon.svg")


@public
async def to_console(request: web.Request) -> web.Response:
    """``/console`` as typed: the page is ``/console/``, where its relative world begins."""
    raise web.HTTPFound("/console/")


# ------------------------------------------------------------------ sessions

@public
async def login(request: web.Request) -> web.Response:
    """Trade a token (in the JSON body, never the URL) for a session cookie; answers the
    session's CSRF token, role and expiry.  Failed logins are limited per client address."""
    client = request.remote or "unknown"
    limiter = request.app[LOGINS]
    wait = limiter.retry_after(client)
    if wait:
        return web.json_response(
            {"error": f"too many failed logins from {client}: try again in {math.ceil(wait)} s"},
            status=429, headers={"Retry-After": str(math.ceil(wait))})
    if request.content_type != "application/json":
        raise PayloadError('log in with a JSON body {"token": "lw_…"} (Content-Type: application/json)')
    body = await body_of(request, ("token",))
    secret = body.get("token")
    token = (await asyncio.to_thread(request.app[TOKENS].authenticate, secret)
             if isinstance(secret, str) and secret else None)
    if token is None:
        log.warning("failed console login from %s", client)
        if limiter.record_failure(client):
            log.warning("blocking console logins from %s for %.0f s after %d failures",
                        client, limiter.block, limiter.limit)
        return web.json_response({"error": "that token is unknown or has been revoked: check it "
                                           "(`ledwarden controller token list` on the board)"},
                                 status=401)
    sessions = request.app[SESSIONS]
    session_id, session = sessions.open(token.id)
    log.info("console login by token %r (%s) from %s", token.name, token.role, client)
    response = web.json_response({"name": token.name, "role": token.role, "csrf": session.csrf,
                                  "expires_in_s": round(sessions.ttl_s)})
    set_cookie(response, session_id, sessions.ttl_s)
    return response


@requires("viewer")
async def logout(request: web.Request) -> web.Response:
    """End the console session this request came with (its CSRF token required, like any
    state change) and clear the cookie."""
    session_id = request.get(SESSION_ID)
    if session_id is None:
        raise PayloadError("logout ends a console session; this request came with a bearer token")
    request.app[SESSIONS].close(session_id)
    await request.app[FEED].wake()          # its event streams end now, not at the next change
    log.info("console logout by token %r", request[TOKEN].name)
    response = web.json_response({"logged_out": True})
    clear_cookie(response)
    return response


@requires("viewer")
async def session_info(request: web.Request) -> web.Response:
    """Who this console is logged in as, and its CSRF token: what a reloaded page needs."""
    session_id = request.get(SESSION_ID)
    session = request.app[SESSIONS].get(session_id) if session_id else None
    if session is None:
        raise PayloadError("this call describes a console session; this request came with a "
                           "bearer token")
    token = request[TOKEN]
    return web.json_response({"name": token.name, "role": token.role, "csrf": session.csrf,
                              "lang": preferred_lang(request.headers.get("Accept-Language"))})


# ------------------------------------------------------------------ live

@requires("viewer")
async def wall(request: web.Request) -> web.Response:
    """The wall as the reports draw it, from what the watch and the last LED detection know."""
    lang = request.query.get("lang", "en")
    if lang not in LANGS:
        raise PayloadError(f"lang must be one of {', '.join(LANGS)}")
    # drawn for the width it is shown at, so a phone's picture keeps readable labels
    width = int_query(request, "width", WALL_WIDTH, WALL_WIDTH_MIN, WALL_WIDTH_MAX)
    feed = request.app[FEED]
    await asyncio.to_thread(feed.inspection.refresh, request.app[SERVICE])     # SQLite, off the loop
    response = web.Response(text=wall_picture(request.app[SERVICE], lang, feed.inspection, width),
                            content_type="image/svg+xml", headers={"Cache-Control": "no-store"})
    response.enable_compression()          # the picture holds no secret either
    return response


@requires("viewer")
async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the console's snapshot now and on every change, until the session
    ends (logout, expiry, a revoked token) or the browser goes."""
    sessions, tokens = request.app[SESSIONS], request.app[TOKENS]
    session_id, token_id = request.get(SESSION_ID), request[TOKEN].id
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store"})
    await response.prepare(request)
    revoked = False

    def still_allowed() -> bool:
        return not revoked and (session_id is None or sessions.get(session_id) is not None)

    checked = time.monotonic()
    try:
        async for text in request.app[FEED].stream(still_allowed):
            await response.write(b": keep-alive\n\n" if text is None
                                 else f"event: snapshot\ndata: {text}\n\n".encode())
            if time.monotonic() - checked >= TOKEN_RECHECK_S:
                # a stream is one long request: look its token up again now and then, so a
                # revoked token stops receiving too
                checked = time.monotonic()
                revoked = await asyncio.to_thread(tokens.live, token_id) is None
                if revoked and session_id is not None:
                    sessions.close(session_id)
        await response.write(b"event: ended\ndata: {}\n\n")
    except ConnectionResetError:     # the browser went away (closed tab, lost Wi-Fi): nothing to do
        log.debug("console event stream closed by %s", request.remote)
    return response


ROUTES = [
    ("GET", "/console", to_console),
    ("GET", "/console/", page),
    ("GET", "/console/{name:[a-z0-9][a-z0-9-]*\\.(?:html|js|css)}", asset),
    ("GET", "/console/favicon.svg", favicon),
    ("POST", "/console/login", login),
    ("POST", "/console/logout", logout),
    ("GET", "/console/session", session_info),
    ("GET", "/console/wall.svg", wall),
    ("GET", "/console/events", events),
]


def _report_policy(html: bytes) -> str:
    """The policy of a report page (an HTML answer outside the console): no script at all, and
    only the page's own ``<style>`` elements, named by their SHA-256, so a report opened from the
    console keeps its look without allowing inline style in general."""
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(css).digest()).decode()}'"
                      for css in STYLE_ELEMENT.findall(html))
    return REPORT_CSP.format(styles=hashes or "'none'")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if (not request.path.startswith("/console") and isinstance(response, web.Response)
            and response.content_type == "text/html" and isinstance(response.body, bytes)):
        response.headers["Content-Security-Policy"] = _report_policy(response.body)


def setup(app: web.Application, tokens: TokenStore, sessions: SessionStore,
          login_limiter: RateLimiter | None = None) -> None:
    """Add the console's routes, its state and the security headers to the API's application."""
    app[SESSIONS] = sessions
    app[TOKENS] = tokens
    app[LOGINS] = login_limiter or RateLimiter(limit=LOGIN_LIMIT)
    feed = LiveFeed(app[SERVICE])
    app[FEED] = feed
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    app.on_response_prepare.append(_security_headers)

    async def stop_feed(app: web.Application) -> None:
        await feed.stop()
    app.on_shutdown.append(stop_feed)
