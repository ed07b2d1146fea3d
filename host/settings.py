"""Which controller the host tool talks to, and with which token.

A controller is named on the command line (``--controller https://HOST:PORT``)
or by a profile in ``config.toml`` in the config directory
(``$LEDWARDEN_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/ledwarden``, else
``~/.config/ledwarden``)::

    default_profile = "hall-a"            # optional: used when neither is given

    [profiles.hall-a]
    controller = "https://10.20.0.5:8443"
    token_file = "hall-a.token"            # relative to the config directory

The token comes from ``--token-file``, else ``$LEDWARDEN_TOKEN``, else the
profile's ``token_file``.  There is deliberately no option that takes the
token itself: command lines end up in shell history, ``ps`` output and
support tickets, and a ``service`` token is the key to the wall's firmware.
"""

from __future__ import annotations

import logging
import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from controller.errors import ConfigError, LedwardenError
from controller.jsonin import JsonObject

log = logging.getLogger("ledwarden.settings")

TOKEN_ENV = "LEDWARDEN_TOKEN"
CONFIG_DIR_ENV = "LEDWARDEN_CONFIG_DIR"


def config_dir() -> Path:
    """Where ``config.toml`` and ``known_controllers.json`` live."""
    if os.environ.get(CONFIG_DIR_ENV):
        return Path(os.environ[CONFIG_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "ledwarden"


@dataclass(frozen=True)
class Target:
    """A controller to talk to: its normalised URL, the token, and where they came from.

    ``source`` is for messages ("token from $LEDWARDEN_TOKEN"), so a user who
    gets a 401 can tell which token was sent.  The token is kept out of
    ``repr`` so it cannot leak into a traceback or a debug log.
    """

    url: str
    token: str | None = field(repr=False)
    source: str

    @property
    def hostport(self) -> str:
        return hostport_of(self.url)


def normalise_url(url: str) -> str:
    """``https://HOST:PORT`` with a lower-case host, or a ConfigError saying what is wrong."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{url!r} is not a controller address like https://HOST:8443 ({exc})"
                          ) from None
    if parts.scheme == "http":
        raise ConfigError(f"{url!r}: the controller only speaks HTTPS; use https://")
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(f"{url!r} is not a controller address like https://HOST:8443")
    if port is None:
        raise ConfigError(f"{url!r} has no port: give the one `ledwarden controller run` "
                          "prints, e.g. https://HOST:8443")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ConfigError(f"{url!r}: give only https://HOST:PORT, no path, query or user")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}"


def hostport_of(url: str) -> str:
    """``HOST:PORT`` of a controller URL (``[v6]:PORT`` for IPv6): the key pins are kept under."""
    return normalise_url(url).removeprefix("https://")


def load_config(path: Path | None = None) -> JsonObject:
    """The parsed ``config.toml``, or ``{}`` if there is none."""
    path = path or config_dir() / "config.toml"
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def read_token_file(path: Path) -> str:
    """The token in ``path`` (surrounding whitespace ignored); warns if others can read it."""
    if str(path).startswith("lw_") and not path.exists():
        # Someone typed the secret where a file name goes (or `--token`, which
        # argparse expands to --token-file).  Do not echo it back.
        raise LedwardenError("that looks like a token, not a file: tokens are never taken on "
                             "the command line — put it in a file for --token-file, or in "
                             f"${TOKEN_ENV}; it is now in your shell history, so consider "
                             "revoking it and making a new one")
    path = path.expanduser()
    try:
        text = path.read_text(encoding="utf-8").strip()
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise LedwardenError(f"token file {path} does not exist") from None
    except (OSError, UnicodeError) as exc:
        raise LedwardenError(f"cannot read token file {path}: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("token file %s can be read by other users; `chmod 600 %s`", path, path)
    check_token(text, f"token file {path}")
    return text


def check_token(token: str, where: str) -> None:
    if not token:
        raise LedwardenError(f"{where} is empty")
    if not token.isascii() or not token.isprintable() or " " in token:
        raise LedwardenError(f"{where} does not hold a token (expected one word like lw_…)")


def resolve_target(controller: str | None, profile: str | None, token_file: str | None,
                   *, require_token: bool = True, config_path: Path | None = None) -> Target:
    """Work out the controller URL and the token from options, environment and config.

    ``require_token=False`` is for requests that need none (health, the
    OpenAPI document, ``controller forget``); the token is then None when
    nothing provides one.
    """
    config_path = config_path or config_dir() / "config.toml"
    config = load_config(config_path)
    profiles = config.get("profiles", {})
    if controller and profile:
        raise LedwardenError("give --controller or --profile, not both")
    if not controller and not profile:
        profile = config.get("default_profile")
    entry: JsonObject = {}
    if profile:
        if profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(f"no profile {profile!r} in {config_path} (profiles: {known})")
        entry = profiles[profile]
        controller = entry.get("controller")
        if not controller:
            raise ConfigError(f"{config_path}: [profiles.{profile}] has no controller = "
                              "\"https://HOST:PORT\"")
    if not controller:
        raise LedwardenError("which controller? give --controller https://HOST:PORT, or "
                             f"--profile NAME with profiles in {config_path}")
    url = normalise_url(controller)
    named = f"profile {profile!r}" if profile else "--controller"

    token: str | None = None
    if token_file:
        token, source = read_token_file(Path(token_file)), f"token from --token-file {token_file}"
    elif os.environ.get(TOKEN_ENV):
        token = os.environ[TOKEN_ENV].strip()
        check_token(token, f"${TOKEN_ENV}")
        source = f"token from ${TOKEN_ENV}"
    elif entry.get("token_file"):
        path = Path(entry["token_file"]).expanduser()
        if not path.is_absolute():
            path = config_path.parent / path
        token, source = read_token_file(path), f"token from {path} (profile {profile!r})"
    elif require_token:
        raise LedwardenError(
            f"no token for {url}: put it in a file and pass --token-file FILE, or set "
            f"${TOKEN_ENV}, or add token_file = \"FILE\" to the profile in {config_path} "
            "(tokens are made on the controller with `ledwarden controller token create`)")
    else:
        source = "no token"
    return Target(url=url, token=token, source=f"{named}, {source}")


def add_target_arguments(parser) -> None:
    """``--controller``, ``--profile`` and ``--token-file``: the top-level options that name
    the controller every remote command talks to (a parser or an argument group)."""
    parser.add_argument("--controller", metavar="URL",
                        help="the controller, https://HOST:PORT")
    parser.add_argument("--profile", metavar="NAME",
                        help="a [profiles.NAME] entry of config.toml in the config directory")
    parser.add_argument("--token-file", metavar="FILE",
                        help=f"file holding the API token (else ${TOKEN_ENV}, else the profile's "
                             "token_file); tokens are never taken on the command line")
