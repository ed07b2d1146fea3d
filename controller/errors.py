"""The one exception root of ledwarden, with stdlib mix-ins.

Every error the project raises on purpose derives from :class:`LedwardenError`
so the command line can report it in words and exit non-zero, while the
stdlib mix-ins (``TimeoutError``, ``ValueError``, ``OSError``) let generic
callers catch them the way they already catch such errors.  Messages say what
was wrong and, where there is something to do, what to do.
"""

from __future__ import annotations

from controller.cardaddress import hex_address


class LedwardenError(Exception):
    """Root of every error ledwarden raises deliberately."""


class FrameError(LedwardenError, ValueError):
    """A frame on the bus is malformed; ``reason`` is a short machine tag.

    Reasons: ``cobs`` (bad COBS block), ``short`` (fewer bytes than a header
    and CRC), ``length`` (the len field does not add up), ``crc``,
    ``version``, ``flags`` (a reserved flag is set), ``oversize`` (more than
    700 bytes before a delimiter).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class PayloadError(LedwardenError, ValueError):
    """A command payload has the wrong length or a field out of range."""


class PortError(LedwardenError, OSError):
    """The serial port (or the URL standing for it) cannot be used."""


class BusTimeout(LedwardenError, TimeoutError):
    """A card did not answer a unicast request after every try."""

    def __init__(self, address: int, command: str, tries: int) -> None:
        super().__init__(
            f"no card at {hex_address(address)} after {tries} {'try' if tries == 1 else 'tries'} "
            f"({command}): check the card's power, its bus cable and its address"
        )
        self.address = address
        self.command = command
        self.tries = tries


class CardError(LedwardenError):
    """A card answered a request with ``RESP|ERR``; ``code`` is the LWP/1 error code."""

    def __init__(self, address: int, command: str, code: int, name: str, text: str = "") -> None:
        detail = f": {text}" if text else ""
        super().__init__(f"card {hex_address(address)} refused {command}: {name}{detail}")
        self.address = address
        self.command = command
        self.code = code
        self.name = name
        self.text = text


class ConfigError(LedwardenError, ValueError):
    """A screen file (or other configuration) breaks a rule; the message names where."""

    #: One line per broken rule, set by the screen file's parser (one error reports them all).
    problems: list[str]


class NotFound(LedwardenError, LookupError):
    """A named thing (a job, a report, a token) does not exist."""


class ReportError(LedwardenError, ValueError):
    """A report cannot be rendered: wrong kind or version, or an unknown language."""


class UpgradeRejected(LedwardenError, ValueError):
    """An update bundle or firmware package was refused before anything was installed.

    ``reason`` is a short machine tag (``unsigned``, ``untrusted-key``,
    ``bad-signature``, ``manifest``, ``payload``, ``truncated``, ``platform``,
    ``product``, ``hw-model``, ``downgrade``, ``min-version``, ``unsafe-path``,
    ``oversized``, ``no-space``, ``kind``, ``busy``, ``not-guarded``, ``altered``,
    ``container``); the
    message says what was wrong and what to do.  Whatever was
    running before keeps running.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
