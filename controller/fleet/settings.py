"""Where the board's DDI client points: ``STATE/ddi.toml`` and the target token beside it.

The client is off until ``STATE/ddi.toml`` exists (``ledwarden controller ddi
set`` writes it, or an installer drops it in place)::

    [ddi]
    url = "https://hawkbit.example.net:8443"   # the server's root, without the tenant
    tenant = "DEFAULT"
    controller_id = "hall-a-wall"
    # poll_s = 300    # only used until the server has named its own interval

The *target token* authenticates the board to the server
(``Authorization: TargetToken …``).  Unlike the API tokens the board checks
(``tokens.db`` keeps only their hashes), this one the board must present, so
it is kept in clear in ``STATE/ddi-token``, mode 0600, written atomically,
and never accepted on a command line (shell history, ``ps``): the CLI reads
it from standard input or a file.  The toml file never holds it, so the
settings can be shown and copied without leaking it.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from controller.errors import ConfigError
from controller.upgrade.steps import Steps

SETTINGS, TOKEN = "ddi.toml", "ddi-token"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
#: hawkBit's target tokens are 32 characters; allow what other servers make, but not a document.
MAX_TOKEN = 512
DEFAULT_POLL_S = 300


@dataclass(frozen=True)
class DdiSettings:
    url: str
    tenant: str
    controller_id: str
    poll_s: int = DEFAULT_POLL_S

    @property
    def base(self) -> str:
        """``{url}/{tenant}/controller/v1/{controllerId}``: every DDI resource is below it."""
        return f"{self.url.rstrip('/')}/{self.tenant}/controller/v1/{self.controller_id}"

    def as_dict(self) -> dict:
        return asdict(self)


def check(url: str, tenant: str, controller_id: str, poll_s: int = DEFAULT_POLL_S) -> DdiSettings:
    """The settings, or a :class:`ConfigError` naming every problem in one sentence each."""
    problems = []
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(f"url {url!r} is not an http:// or https:// address of the DDI server")
    elif parts.query or parts.fragment:
        problems.append(f"url {url!r} must be the server's root, without ?query or #fragment")
    for what, value in (("tenant", tenant), ("controller id", controller_id)):
        if not isinstance(value, str) or not NAME.match(value):
            problems.append(f"{what} {value!r} must be 1-128 letters, digits, '.', '_', ':' or '-'")
    if isinstance(poll_s, bool) or not isinstance(poll_s, int) or not 10 <= poll_s <= 86400:
        problems.append(f"poll_s {poll_s!r} must be a whole number of seconds from 10 to 86400")
    if problems:
        raise ConfigError("; ".join(problems))
    return DdiSettings(url.rstrip("/"), tenant, controller_id, poll_s)


def load(state_dir: Path) -> DdiSettings | None:
    """The board's settings, or None when the client is off (no ``ddi.toml``)."""
    path = Path(state_dir) / SETTINGS
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}); fix it or run 'ledwarden controller "
                          f"ddi set' again") from None
    table = data.get("ddi")
    if not isinstance(table, dict):
        raise ConfigError(f"{path} has no [ddi] table; run 'ledwarden controller ddi set'")
    unknown = sorted(set(table) - {"url", "tenant", "controller_id", "poll_s"})
    if unknown:
        raise ConfigError(f"{path}: unknown setting {', '.join(unknown)} in [ddi] (known: url, "
                          f"tenant, controller_id, poll_s)")
    try:
        return check(table.get("url", ""), table.get("tenant", ""), table.get("controller_id", ""),
                     table.get("poll_s", DEFAULT_POLL_S))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save(state_dir: Path, settings: DdiSettings, steps: Steps | None = None) -> Path:
    """Write ``ddi.toml`` atomically (the client reads it whole or not at all)."""
    path = Path(state_dir) / SETTINGS
    text = (f"[ddi]\nurl = {_quote(settings.url)}\ntenant = {_quote(settings.tenant)}\n"
            f"controller_id = {_quote(settings.controller_id)}\npoll_s = {settings.poll_s}\n")
    (steps or Steps()).replace(path, text.encode())
    return path


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_token(text: str) -> str:
    """The token from a file or stdin, stripped; refused if empty, multi-line or too long."""
    token = text.strip()
    if not token:
        raise ConfigError("the target token is empty: give the token hawkBit shows for this "
                          "target (its 'Security token') on standard input or in a file")
    if len(token) > MAX_TOKEN or any(c.isspace() for c in token) or not token.isprintable():
        raise ConfigError(f"that is not a target token (one word of at most {MAX_TOKEN} printable "
                          f"characters): give only the token, on one line")
    return token


def save_token(state_dir: Path, token: str, steps: Steps | None = None) -> Path:
    """Keep the target token in ``STATE/ddi-token``, mode 0600, replaced atomically."""
    path = Path(state_dir) / TOKEN
    (steps or Steps()).replace(path, check_token(token).encode() + b"\n", mode=0o600)
    os.chmod(path, 0o600)        # an older file's mode survives no replace, but umask might widen
    return path


def load_token(state_dir: Path) -> str:
    path = Path(state_dir) / TOKEN
    try:
        return check_token(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing: store the target token with 'ledwarden controller "
                          f"ddi set --token-file FILE' (or '--token-file -' and type it)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc})") from None
