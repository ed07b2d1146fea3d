"""The base of every LWP/1 payload type: bytes both ways, fields checked when built.

Split from :mod:`controller.protocol.commands` so the command table and the
payload families (:mod:`controller.protocol.transfer` for firmware and events)
can each stay a module of readable size while sharing one ``pack``/``unpack``.
"""

from __future__ import annotations

import struct
from dataclasses import astuple, dataclass
from typing import Any, ClassVar, Protocol, Self

from controller.errors import PayloadError


def check(name: str, value: int, low: int, high: int) -> None:
    """:class:`PayloadError` unless ``value`` is an int in ``low..high``: every field's check."""
    if not isinstance(value, int) or not low <= value <= high:
        raise PayloadError(f"{name}={value!r} is outside {low}..{high}")


class Message(Protocol):
    """What the engine needs of a request or answer type: bytes both ways.

    :class:`Payload`'s fixed layouts and the variable-length messages (pixel
    scan, firmware chunks and status, events) are all one, so the command
    table can name either.
    """

    def pack(self) -> bytes:
        """The payload bytes of this message, as the wire carries them."""
        ...

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        """Parse payload bytes; :class:`PayloadError` when the length or a field is wrong."""
        ...


class Payload:
    """Base of every fixed-layout payload: ``FORMAT`` lists the fields in order."""

    FORMAT: ClassVar[struct.Struct] = struct.Struct("<")
    #: Every subclass is a dataclass; declared so the type checker lets ``astuple`` take it.
    __dataclass_fields__: ClassVar[dict[str, Any]]

    def pack(self) -> bytes:
        """The fields in declaration order, packed by ``FORMAT``."""
        return self.FORMAT.pack(*astuple(self))

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        """Parse exactly ``FORMAT.size`` bytes; the fields are validated as when built."""
        if len(payload) != cls.FORMAT.size:
            raise PayloadError(f"{cls.__name__} takes {cls.FORMAT.size} bytes, got {len(payload)}")
        return cls(*cls.FORMAT.unpack(payload))


# ---------------------------------------------------------------- empty requests

@dataclass(frozen=True)
class Empty(Payload):
    """A request or response with no payload."""
