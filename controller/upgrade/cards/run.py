"""What a card firmware upgrade reports: one record per card, one report per run.

Kept apart from the engine so the service, the host tool and the tests share
one vocabulary of card states and run options without importing the bus
machinery, and so both halves of the engine (:mod:`.flash`,
:mod:`.commit`) use them without importing each other.

Card states, in the order a card normally passes through them::

    pending → receiving → received → booting → checking → installed

and the ends a card may reach instead: ``skipped`` (already on the version),
``rolled-back`` (the new image did not start or failed its health check, and
the card's trial-boot rule brought the previous bank back), ``failed``
(refused, stopped answering, or its image failed verification), ``held``
(received but not committed, because the run stopped at another card's
failure; running the upgrade again resumes it), ``not-started`` (nothing was
sent to it: the run stopped or was refused before its transfer began).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from controller.protocol import commands as c
from controller.upgrade.cards.firmware import CHUNK_SIZE

PENDING, RECEIVING, RECEIVED = "pending", "receiving", "received"
BOOTING, CHECKING, INSTALLED = "booting", "checking", "installed"
SKIPPED, ROLLED_BACK, FAILED, HELD = "skipped", "rolled-back", "failed", "held"
NOT_STARTED = "not-started"
#: States a card does not leave during a run.
FINAL = frozenset({INSTALLED, SKIPPED, ROLLED_BACK, FAILED, HELD, NOT_STARTED})
#: Status flags a new firmware must not raise (GET_STATUS bits 0..4): a card that was
#: already hot before the upgrade does not fail it, one that turns hot after it does.
HEALTH_FLAGS = (c.StatusFlag.OVER_TEMPERATURE | c.StatusFlag.UNDER_VOLTAGE | c.StatusFlag.FAN_FAULT
                | c.StatusFlag.MODULE_LINK_LOST | c.StatusFlag.CONFIG_INVALID)
MAX_NOTES = 300


@dataclass(frozen=True)
class FlashOptions:
    """How a run behaves; the defaults are those of ``ledwarden upgrade cards``."""

    chunk_size: int = CHUNK_SIZE
    canary: int = 1            # cards committed, booted and confirmed one by one before the rest
    force: bool = False        # also cards already on the version
    #: Broadcast FW_BEGIN (only when no other known card is on the bus) and FW_COMMIT (after
    #: FW_ABORT to the others) for this many cards or more; fewer, or ``group=False``: unicast
    #: each.  "Known" is the targets and ``others``: a card on the bus that is neither would
    #: hear the broadcasts too.
    group: bool = True
    group_min: int = 4
    rebroadcast_min: int = 2   # a chunk this many cards miss is broadcast again
    max_rounds: int = 12       # repair rounds before a card that keeps missing chunks fails
    drop_grace_s: float = 5.0  # how long a card may stay silent mid-transfer
    boot_timeout_s: float = 30.0  # from FW_COMMIT to the card answering again


@dataclass
class CardRun:
    """One card's part in a run; the public fields are what :meth:`as_dict` reports."""

    address: int
    state: str = PENDING
    version_before: str | None = None
    bank_before: str | None = None
    version_after: str | None = None
    bank_after: str | None = None
    received: int = 0        # chunks the card holds, as of its last FW_STATUS
    repairs: int = 0         # chunks sent to this card alone
    detail: str = ""
    # Working memory of the engine, not reported.
    serial: int = 0
    uptime_s: int = 0
    checked_at: float = 0.0
    flags_before: int = 0
    config_before: c.CardConfig | None = None
    missing: set[int] = field(default_factory=set, repr=False)
    away_since: float | None = None
    restarts: int = 0        # times it lost its transfer and began again
    commits: int = 0         # FW_COMMITs sent to it (or broadcast while it waited)

    def as_dict(self) -> dict:
        return {"address": self.address, "state": self.state,
                "version_before": self.version_before, "bank_before": self.bank_before,
                "version_after": self.version_after, "bank_after": self.bank_after,
                "received": self.received, "repairs": self.repairs, "detail": self.detail}


@dataclass
class FlashReport:
    """The whole run as the job, the host tool and the tests see it."""

    version: str
    hw_model: int
    size: int
    chunk_size: int
    chunks: int
    cards: dict[int, CardRun]
    phase: str = "checking"
    result: str = "running"          # running, succeeded, failed, stopped
    failure: str | None = None
    sent: int = 0                    # chunks of the current broadcast pass sent so far
    pass_size: int = 0               # chunks in the current broadcast pass
    broadcast_chunks: int = 0        # FW_CHUNK frames broadcast, first pass and repairs
    unicast_chunks: int = 0          # FW_CHUNK frames sent to one card
    rounds: int = 0                  # FW_STATUS sweeps after the first pass
    group_begin: bool = False        # whether FW_BEGIN went out as a broadcast
    group_commits: int = 0           # FW_COMMIT broadcasts
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    def note(self, text: str) -> None:
        self.notes.append(text)
        del self.notes[:-MAX_NOTES]

    def count(self, state: str) -> int:
        return sum(card.state == state for card in self.cards.values())

    def as_dict(self) -> dict:
        return {"version": self.version, "hw_model": self.hw_model, "size": self.size,
                "chunk_size": self.chunk_size, "chunks": self.chunks, "phase": self.phase,
                "result": self.result, "failure": self.failure,
                "stream": {"sent": self.sent, "of": self.pass_size},
                "broadcast_chunks": self.broadcast_chunks, "unicast_chunks": self.unicast_chunks,
                "rounds": self.rounds, "group_begin": self.group_begin,
                "group_commits": self.group_commits, "seconds": round(self.seconds, 3),
                "cards": [card.as_dict() for _, card in sorted(self.cards.items())]}
