"""Card firmware over the bus: one image to many cards at once, resumable, canary first.

:class:`CardFlasher` runs on the synchronous :class:`~controller.protocol.bus.Bus`
(in the service, inside the bus owner's thread) and goes through these steps;
``docs/card-upgrades.md`` explains each choice and gives the measured times.

1. **Check** every target: ``PING`` (model, version, bank), ``GET_STATUS``
   and ``GET_CONFIG`` (the baseline the health check compares against) and
   ``FW_STATUS`` (a transfer to resume).  A card of another hw_model refuses
   the whole run before a byte of the image is sent; a card already on the
   version is skipped unless forced; one on trial with this version goes
   straight to its health check.
2. **Begin.**  ``FW_BEGIN`` makes a card erase its inactive bank: 0.6 s for
   256 KiB on the modelled NOR flash, far past the 250 ms answer deadline,
   so a card answers first and erases afterwards, answering ``BUSY`` to
   ``FW_STATUS`` until it is done.  When every known card on the bus is to
   receive the image, ``FW_BEGIN`` is broadcast once, and every target then
   gets the same ``FW_BEGIN`` unicast: the identical payload resumes, and the
   answer proves the card holds *this* transfer.  With any other card on the
   bus (not a target, skipped, or done), ``FW_BEGIN`` goes by unicast only: a
   bystander that heard it would lose its fallback bank.  Either way the
   cards erase at the same time, and the run waits for ``FW_STATUS`` to stop
   answering ``BUSY`` before any chunk goes out.
3. **Stream** every chunk a target lacks, once, by broadcast, at the largest
   chunk size the spec allows; broadcasts are unanswered, so only wire time
   paces them.
4. **Repair.**  ``FW_STATUS`` bitmaps say what each card missed.  A chunk
   that two or more cards miss is broadcast again; a chunk only one card
   misses goes to it by unicast, whose answer confirms it.  A card that
   stops answering may stay away for ``drop_grace_s`` and then continues
   where its bitmap says; one that lost its transfer (a power cut) begins
   again.
5. **Commit, boot, check, confirm** (:mod:`controller.upgrade.cards.commit`):
   the canary cards first, one by one, then the rest together.

The run stops at the first failure: no card is committed after another card
failed.  Everything a later run needs is on the cards themselves (their
``FW_STATUS``, version, bank and trial flag), so running again resumes.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable

from controller.cardaddress import hex_address
from controller.errors import BusTimeout, CardError, LedwardenError, UpgradeRejected
from controller.protocol import cards as ops
from controller.protocol import commands as c
from controller.protocol.bus import Bus
from controller.upgrade.cards.commit import Rollout
from controller.upgrade.cards.firmware import CardFirmware
from controller.upgrade.cards.run import (BOOTING, CHECKING, FAILED, FINAL, HEALTH_FLAGS, HELD,
                                          NOT_STARTED, PENDING, RECEIVED, RECEIVING, ROLLED_BACK,
                                          SKIPPED, CardRun, FlashOptions, FlashReport)

#: Broadcast chunks written ahead of the wire: enough to keep the line busy, few enough
#: that a stop request or progress report is never more than ~50 ms behind the line.
STREAM_WINDOW = 8
AWAY_POLL_S = 0.2
MAX_RESTARTS = 3

Progress = Callable[[FlashReport], None]


class Stopped(LedwardenError):
    """The caller asked the run to stop (a cancelled job)."""


class CardFlasher:
    """One run of one firmware image to a set of cards on one bus."""

    def __init__(self, bus: Bus, firmware: CardFirmware, addresses: Iterable[int],
                 options: FlashOptions = FlashOptions(), *, others: Iterable[int] = (),
                 baselines: dict[int, tuple[int, c.CardConfig | None]] | None = None,
                 progress: Progress | None = None,
                 should_stop: Callable[[], bool] | None = None) -> None:
        self.bus = bus
        self.fw = firmware
        self.options = options
        self.others = sorted(set(others) - set(addresses))
        self.baselines = baselines or {}
        self._progress = progress
        self._should_stop = should_stop or (lambda: False)
        self._last_report = 0.0
        self.begin_request = firmware.begin(options.chunk_size)
        self.report = FlashReport(firmware.version_text, firmware.hw_model, firmware.size,
                                  options.chunk_size, firmware.chunks(options.chunk_size),
                                  {a: CardRun(a) for a in sorted(set(addresses))})

    # ------------------------------------------------------------ the run

    def run(self) -> FlashReport:
        """Run to the end (or the first failure) and return the report; never raises for a
        card's failure, which is in the report.  Raises :class:`UpgradeRejected` for a card of
        another model, before anything is sent."""
        report = self.report
        try:
            self.set_phase("checking")
            for card in report.cards.values():
                self._check(card)
            resumed = [k for k in report.cards.values() if k.state == BOOTING]
            if resumed and not self.any_failed():
                self.set_phase("confirming")   # committed by an earlier run: check, confirm
                Rollout(self).finish(resumed)
            todo = [k for k in report.cards.values() if k.state == PENDING]
            if todo and not self.any_failed():
                self.set_phase("beginning")
                self._begin(todo)
            if todo and not self.any_failed():
                self.set_phase("transferring")
                self._transfer(todo)
            if todo and not self.any_failed():
                Rollout(self).run([k for k in todo if k.state == RECEIVED])
        except Stopped:
            report.result = "stopped"
            report.failure = "stopped on request"
        finally:
            self._close()
        return report

    def _close(self) -> None:
        report = self.report
        for card in report.cards.values():
            if card.state == PENDING and not card.received:
                # Nothing of this image is on the card: there is nothing to hold or resume.
                card.state = NOT_STARTED
                card.detail = card.detail or ("not started: nothing was sent to it, because the "
                                              "run ended before its transfer began")
            elif card.state not in FINAL:
                committed = card.state in (BOOTING, CHECKING)
                card.state = HELD
                card.detail = card.detail or (
                    f"committed but not confirmed: it runs the new firmware on trial and returns "
                    f"to {card.version_before} by itself after a few restarts; run the upgrade "
                    f"again to check and confirm it" if committed else
                    "not committed: the run stopped first; running the upgrade again resumes "
                    "from what the card holds")
        failed = [k for k in report.cards.values() if k.state in (FAILED, ROLLED_BACK)]
        if report.result == "running":
            report.result = ("failed" if failed or report.count(HELD) or report.count(NOT_STARTED)
                             else "succeeded")
        if failed and report.failure is None:
            first = failed[0]
            report.failure = f"card {hex_address(first.address)} {first.state}: {first.detail}"
        report.phase = "done"
        report.seconds = time.monotonic() - report.started
        self.changed(force=True)

    # ------------------------------------------------------------ helpers for both halves

    def set_phase(self, name: str) -> None:
        self.report.phase = name
        self.changed(force=True)

    def changed(self, force: bool = False) -> None:
        """Tell the caller (at most five times a second unless forced)."""
        now = time.monotonic()
        if self._progress is not None and (force or now - self._last_report >= 0.2):
            self._last_report = now
            self.report.seconds = now - self.report.started
            self._progress(self.report)

    def stop_point(self) -> None:
        if self._should_stop():
            raise Stopped("stopped on request")

    def fail(self, card: CardRun, detail: str, state: str = FAILED) -> None:
        card.state, card.detail = state, detail
        self.report.note(f"card {hex_address(card.address)} {state}: {detail}")
        self.changed(force=True)

    def any_failed(self) -> bool:
        return any(k.state in (FAILED, ROLLED_BACK) for k in self.report.cards.values())

    # ------------------------------------------------------------ 1. check

    def _check(self, card: CardRun) -> None:
        self.stop_point()
        a = card.address
        try:
            ping = self.bus.call(a, c.Cmd.PING)
            self.fw.check_card(a, ping)
            status = self.bus.call(a, c.Cmd.GET_STATUS)
            config = self.bus.call(a, c.Cmd.GET_CONFIG)
            fws = ops.fw_status_when_erased(self.bus, a)  # an earlier run may have left it erasing
        except UpgradeRejected as exc:
            self.fail(card, str(exc))
            raise
        except (BusTimeout, CardError) as exc:
            self.fail(card, f"not upgraded: {exc}")
            return
        card.version_before, card.bank_before = ping.version, ping.bank
        card.serial, card.uptime_s, card.checked_at = ping.serial, ping.uptime_s, time.monotonic()
        card.flags_before, card.config_before = status.flags & HEALTH_FLAGS, config
        if status.flags & c.StatusFlag.TRIAL_FIRMWARE:
            if ping.version == self.fw.version_text:
                # A run that stopped after committing this card: check it and confirm it now.
                flags, config_before = self.baselines.get(a, (0, None))
                card.flags_before, card.config_before = flags & HEALTH_FLAGS, config_before
                card.state, card.version_after, card.bank_after = BOOTING, ping.version, ping.bank
                card.bank_before = "AB"[1 - ping.active_bank] if ping.active_bank in (0, 1) else "?"
                card.detail = "on trial with this version from an earlier run: checking it"
            else:
                self.fail(card, f"runs firmware {ping.version} on trial, not yet confirmed; "
                                f"finish that upgrade first (upgrade to {ping.version} again to "
                                f"confirm it, or power-cycle the card three times to roll it back)")
            return
        if ping.version == self.fw.version_text and not self.options.force:
            card.state, card.detail = SKIPPED, f"already runs {ping.version} (--force to reinstall)"
            return
        card.missing = set(range(self.report.chunks))
        if (fws.state in (c.FwState.RECEIVING, c.FwState.COMPLETE) and fws.size == self.fw.size
                and fws.chunk_size == self.options.chunk_size):
            card.missing = set(fws.missing())
            card.received = fws.received
            if card.received:
                card.detail = f"resuming: holds {card.received} of {self.report.chunks} chunks"

    # ------------------------------------------------------------ 2. begin

    def bystanders(self, cards: list[CardRun]) -> list[int]:
        """Known cards that would hear a broadcast meant for ``cards``: non-targets, and
        targets skipped, already done, or in another wave."""
        return self.others + [k.address for k in self.report.cards.values() if k not in cards]

    def _begin(self, cards: list[CardRun]) -> None:
        # A card erases its inactive bank on hearing FW_BEGIN, so the broadcast is only for a
        # bus where every known card is to receive the image: nothing said afterwards could
        # give a bystander its fallback bank back.
        if (self.options.group and len(cards) >= self.options.group_min
                and not self.bystanders(cards)):
            self.report.group_begin = True
            self.bus.broadcast(c.Cmd.FW_BEGIN, self.begin_request)
        for card in cards:
            self.stop_point()
            self._begin_one(card)
            if self.any_failed():
                return
        self._await_erase(cards)

    def _begin_one(self, card: CardRun) -> bool:
        """Unicast FW_BEGIN: resumes a transfer of this image, else starts one (the card answers
        at once and erases its inactive bank afterwards: see :meth:`_await_erase`)."""
        try:
            self.bus.call(card.address, c.Cmd.FW_BEGIN, self.begin_request)
        except CardError as exc:
            self.fail(card, f"refused the transfer: {exc}")
            return False
        except BusTimeout as exc:
            self.fail(card, f"dropped off before the transfer: {exc}")
            return False
        card.state = RECEIVING
        return True

    def _await_erase(self, cards: list[CardRun]) -> None:
        """Wait until every card that began has erased its bank (they erase at the same time,
        so the first wait is the long one); no chunk goes out before."""
        for card in cards:
            if card.state != RECEIVING:
                continue
            self.stop_point()
            try:
                ops.fw_status_when_erased(self.bus, card.address)
            except (BusTimeout, CardError) as exc:
                self.fail(card, f"did not finish erasing its inactive bank: {exc}")
                return

    # ------------------------------------------------------------ 3.–4. stream and repair

    def _transfer(self, cards: list[CardRun]) -> None:
        active = [k for k in cards if k.state == RECEIVING]
        self._stream(sorted(set().union(*(k.missing for k in active))))
        rounds_left = self.options.max_rounds
        while True:
            self._sweep(active)
            if self.any_failed():
                return
            short = [k for k in active if k.state == RECEIVING]
            if not short:
                return
            here = [k for k in short if k.away_since is None]
            if not here:
                time.sleep(AWAY_POLL_S)  # everyone still missing chunks is away: wait for them
                continue
            if rounds_left == 0:
                for card in here:
                    self.fail(card, f"still lacks {len(card.missing)} chunks after "
                                    f"{self.options.max_rounds} repair rounds: the line to it is "
                                    f"too noisy; check its bus cable and termination")
                return
            rounds_left -= 1
            self.report.rounds += 1
            self.set_phase("repairing")
            self._repair(here)

    def _stream(self, indices: list[int]) -> None:
        """Broadcast these chunks once each, keeping a few frames ahead of the wire."""
        report = self.report
        report.sent, report.pass_size = 0, len(indices)
        for n, index in enumerate(indices):
            if n % STREAM_WINDOW == 0:
                self.bus.wait_idle()
                self.stop_point()
                self.changed()
            self.bus.broadcast(c.Cmd.FW_CHUNK, self.fw.chunk(index, self.options.chunk_size))
            report.broadcast_chunks += 1
            report.sent = n + 1
        self.bus.wait_idle()
        self.changed(force=True)

    def _sweep(self, cards: list[CardRun]) -> None:
        """FW_STATUS from every card still missing chunks: what it lacks, or that it is away."""
        now = time.monotonic()
        for card in cards:
            if card.state != RECEIVING:
                continue
            self.stop_point()
            try:
                status = self.bus.call(card.address, c.Cmd.FW_STATUS)
            except (BusTimeout, CardError) as exc:
                self._away(card, now, exc)
                continue
            if card.away_since is not None:
                self.report.note(f"card {hex_address(card.address)} answers again after "
                                 f"{now - card.away_since:.1f} s")
                card.away_since = None
            if (status.state in (c.FwState.RECEIVING, c.FwState.COMPLETE)
                    and status.size == self.fw.size and status.chunk_size == self.options.chunk_size):
                card.missing, card.received = set(status.missing()), status.received
                if not card.missing:
                    card.state = RECEIVED
                continue
            card.restarts += 1  # idle or another transfer: it lost ours (a power cut, a reset)
            if card.restarts > MAX_RESTARTS:
                self.fail(card, f"lost its transfer {card.restarts} times (power cuts or resets "
                                f"during the transfer); check its power supply")
                return
            self.report.note(f"card {hex_address(card.address)} lost its transfer (FW_STATUS "
                             f"{c.FwState(status.state).name.lower()}); beginning again")
            if self._begin_one(card):
                card.missing, card.received = set(range(self.report.chunks)), 0
                self._await_erase([card])
        self.changed(force=True)

    def _away(self, card: CardRun, now: float, exc: LedwardenError) -> None:
        if card.away_since is None:
            card.away_since = now
            self.report.note(f"card {hex_address(card.address)} does not answer; waiting up to "
                             f"{self.options.drop_grace_s:g} s for it")
        elif now - card.away_since > self.options.drop_grace_s:
            self.fail(card, f"dropped off the bus during the transfer and did not come back "
                            f"within {self.options.drop_grace_s:g} s ({exc})")

    def _repair(self, cards: list[CardRun]) -> None:
        """Rebroadcast what several cards miss; unicast what one card alone misses."""
        wanted: dict[int, list[CardRun]] = defaultdict(list)
        for card in cards:
            for index in card.missing:
                wanted[index].append(card)
        again = sorted(i for i, who in wanted.items() if len(who) >= self.options.rebroadcast_min)
        if again:
            self.report.note(f"round {self.report.rounds}: broadcasting {len(again)} chunks again")
            self._stream(again)
        lost: set[int] = set()
        for index in sorted(i for i, who in wanted.items() if len(who) < self.options.rebroadcast_min):
            for card in wanted[index]:
                if card.address in lost:
                    continue
                self.stop_point()
                try:
                    self.bus.call(card.address, c.Cmd.FW_CHUNK,
                                  self.fw.chunk(index, self.options.chunk_size))
                except (BusTimeout, CardError):
                    lost.add(card.address)  # the next sweep says whether it is away or restarted
                    continue
                self.report.unicast_chunks += 1
                card.repairs += 1
                card.missing.discard(index)
                self.changed()
