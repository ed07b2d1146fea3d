"""Quick actions on the cards: a test pattern — answered at once, not a job.

They take a second, not minutes, so the API answers with their outcome
instead of a job to follow; they still go through the bus owner, queued with
everything else.  Each card's outcome is reported in its place
(:mod:`controller.cardresults`): one card that does not answer must not keep
the rest of the wall from changing.  Brightness is no quick action any more:
it is the wall's state, held and scheduled by :mod:`.brightness`.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

from controller.boardcontext import BoardContext
from controller.cardresults import per_card, to_json
from controller.protocol import commands as c


class CardFailure(TypedDict):
    """A card that did not take a request: one card's failure never stops the rest of the wall,
    so it is reported in that card's place (``"0x05": {"error": "…"}``)."""

    error: str


class PatternShown(TypedDict):
    """The answer to ``POST /pattern``: a broadcast has no per-card answers to report."""

    broadcast: bool
    pattern: str
    cards: NotRequired[dict[str, Literal["ok"] | CardFailure]]


async def show_pattern(board: BoardContext, request: c.TestPattern,
                       addresses: list[int] | None) -> PatternShown:
    """Show a test pattern on the given cards, or on every card at once (a broadcast)."""
    name = c.Pattern(request.pattern).name.lower()
    if addresses is None:
        await board.bus.broadcast(c.Cmd.TEST_PATTERN, request)
        return {"broadcast": True, "pattern": name}

    async def show(address: int) -> Literal["ok"]:
        await board.bus.call(address, c.Cmd.TEST_PATTERN, request)
        return "ok"
    return {"broadcast": False, "pattern": name,
            "cards": to_json(await per_card(addresses, show))}
