"""Per-card results: one shape on the wire, built in one place, read back in one place.

An action on many cards (a detection, a brightness change, a test pattern
on chosen cards) never stops at the first card that fails: one card's fault
must not leave the rest of the wall untouched.  Each card's outcome is
therefore reported in that card's place, keyed by its address as text::

    {"0x01": <what the card gave>, "0x05": {"error": "no card at 0x05 after 4 tries"}}

That shape is the API's (the OpenAPI document names it) and the host's
command line prints from it.  It used to be built three times in the service
and taken apart by ``isinstance`` in the host; :class:`CardResult`,
:func:`per_card`, :func:`to_json` and :func:`from_json` are now the one
definition both sides use.  A success is never an object holding only
``error``, which is what makes the shape unambiguous to read back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from controller.cardaddress import ADDR_FIRST_CARD, ADDR_LAST_CARD, hex_address, is_card_address
from controller.errors import LedwardenError, PayloadError

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class CardResult(Generic[T]):
    """One card's outcome: ``value`` when it did what was asked, else ``error`` (a sentence)."""

    address: int
    value: T | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


async def per_card(addresses: Iterable[int], action: Callable[[int], Awaitable[T]], *,
                   before: Callable[[int, int], None] | None = None,
                   on_error: Callable[[int, LedwardenError], None] | None = None,
                   ) -> list[CardResult[T]]:
    """Run ``action(address)`` on each card in turn; a card that fails (a
    :class:`~controller.errors.LedwardenError`) gets its error in its place and the next card
    is still asked.  ``before(n, address)`` is told before each card (a job's progress step),
    ``on_error(address, exc)`` of each failure (a job's log)."""
    results: list[CardResult[T]] = []
    for n, address in enumerate(addresses):
        if before is not None:
            before(n, address)
        try:
            results.append(CardResult(address, value=await action(address)))
        except LedwardenError as exc:
            results.append(CardResult(address, error=str(exc)))
            if on_error is not None:
                on_error(address, exc)
    return results


def _same(value: Any) -> Any:
    return value


def to_json(results: Iterable[CardResult[T]],
            encode: Callable[[T], Any] = _same) -> dict[str, Any]:
    """The wire shape: ``{"0x05": encode(value)}`` or ``{"0x05": {"error": "…"}}``, in order."""
    return {hex_address(r.address): ({"error": r.error} if r.error is not None
                                      else encode(r.value))  # type: ignore[arg-type]
            for r in results}


def is_error(item: Any) -> bool:
    """Whether one card's place in the wire shape holds an error rather than a value."""
    return isinstance(item, dict) and set(item) == {"error"} and isinstance(item["error"], str)


def _address_of(key: str) -> int:
    try:
        address = int(key, 16) if key[:2].lower() == "0x" else -1
    except ValueError:
        address = -1
    if not is_card_address(address):
        raise PayloadError(f"{key!r} is not a card address ({hex_address(ADDR_FIRST_CARD)}.."
                           f"{hex_address(ADDR_LAST_CARD)}): this answer is not a per-card result")
    return address


def from_json(doc: Mapping[str, Any], decode: Callable[[Any], U] = _same) -> list[CardResult[U]]:
    """Read the wire shape back: each card's value through ``decode``, or its error.

    A key that is no card address is refused with :class:`PayloadError`: the
    document is not a per-card result, and reading on would print nonsense.
    """
    results: list[CardResult[U]] = []
    for key, item in doc.items():
        address = _address_of(key)
        if is_error(item):
            results.append(CardResult(address, error=item["error"]))
        else:
            results.append(CardResult(address, value=decode(item)))
    return results


__all__ = ["CardResult", "from_json", "is_error", "per_card", "to_json"]
