"""Trust on first use for controller certificates, the way SSH trusts host keys.

Controllers sign their own certificates (``controller/service/tls.py``), so
no CA can say a connection really reaches the board.  Instead the first
connection to ``HOST:PORT`` remembers the certificate's fingerprint in
``known_controllers.json`` in the config directory, and every later
connection must present the same one.  A different one stops the client
before it sends a byte — above all before the bearer token — with a
message that says what changed and what to do.

Pins are per ``HOST:PORT`` as typed (``localhost:8443`` and
``127.0.0.1:8443`` are two entries), as in SSH's ``known_hosts``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from controller.errors import ConfigError, LedwardenError
from host.settings import config_dir, hostport_of


class PinMismatch(LedwardenError):
    """The controller presented a certificate other than the one pinned for its address."""

    def __init__(self, hostport: str, expected: str, presented: str) -> None:
        super().__init__(
            f"the controller at {hostport} presented a DIFFERENT certificate from the one "
            "remembered on first use:\n"
            f"  remembered: {expected}\n"
            f"  presented:  {presented}\n"
            "Someone could be intercepting the connection (an attack), or the controller was "
            "reinstalled or its state wiped and it made a new certificate. Nothing was sent to "
            "it, not even your token.\n"
            "Compare the presented fingerprint with the one `ledwarden controller run` prints "
            "on the controller itself; only if they match, forget the old one with\n"
            f"  ledwarden controller forget {hostport}\n"
            "and connect again."
        )
        self.hostport = hostport
        self.expected = expected
        self.presented = presented


class KnownControllers:
    """``known_controllers.json``: ``{"HOST:PORT": "SHA256:…"}``.

    Read afresh on every check, written atomically (temporary file, then
    rename), so two ``ledwarden`` processes never see a half-written file.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else config_dir() / "known_controllers.json"

    def load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path} cannot be read ({exc}): fix or remove it — "
                              "removing it forgets every pinned controller") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ConfigError(f"{self.path} is not a map of HOST:PORT to fingerprint")
        return data

    def _save(self, data: dict[str, str]) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)

    def get(self, hostport: str) -> str | None:
        return self.load().get(hostport)

    def check_or_remember(self, hostport: str, fingerprint: str) -> bool:
        """True if ``fingerprint`` was just pinned (first use), False if it matches the pin.

        Raises :class:`PinMismatch` if a different one is pinned.
        """
        known = self.load()
        pinned = known.get(hostport)
        if pinned == fingerprint:
            return False
        if pinned is not None:
            raise PinMismatch(hostport, pinned, fingerprint)
        known[hostport] = fingerprint
        self._save(known)
        return True

    def forget(self, hostport: str) -> bool:
        """Drop the pin for ``hostport``; True if there was one."""
        known = self.load()
        if known.pop(hostport, None) is None:
            return False
        self._save(known)
        return True


def _forget(args: argparse.Namespace) -> int:
    given = args.hostport
    hostport = hostport_of(given if given.startswith("https://") else f"https://{given}")
    if not KnownControllers().forget(hostport):
        raise LedwardenError(f"no certificate is remembered for {hostport}")
    print(f"Forgot the certificate of {hostport}; the next connection will remember "
          "whatever certificate it presents.")
    return 0


def register_forget(controller_sub) -> None:
    """Add ``forget HOST:PORT`` to the ``controller`` command's subparsers."""
    p = controller_sub.add_parser(
        "forget", help="forget a controller's pinned certificate (after a reinstall)")
    p.add_argument("hostport", metavar="HOST:PORT", help="as in the warning, e.g. 10.20.0.5:8443")
    p.set_defaults(func=_forget)
