"""The second half of a card upgrade: commit, boot, health check, confirm — canary first.

A card that has every chunk is committed (``FW_COMMIT``: it hashes the bank,
switches to it on trial and reboots).  It is confirmed (``FW_CONFIRM``) only
after it answers ``PING`` with the new version on the other bank and passes a
health check: no status fault it did not have before the upgrade, and the
same config read back.  A card that fails the check is never confirmed; the
controller reboots it and its own trial-boot rule (three boots without
``FW_CONFIRM``, the fourth reverts) brings the previous bank back.  A card
whose new image does not start at all comes back by the same rule on its
own.  Either way the run reports it as ``rolled-back`` and stops.

Why no retry is trusted here: the card's duplicate memory is in RAM, so a
``FW_COMMIT`` or ``REBOOT`` retried after a lost answer either runs again or
meets ``BAD_STATE`` on a card that has already rebooted.  Whatever happened,
``PING`` (version and bank), ``FW_STATUS`` and the event log say what the card
really did, and that is what this module goes by.

Waves: the canary cards are committed by unicast, and booted, checked and
confirmed, before anything happens to the rest.  The rest are committed
together: many cards by one ``FW_COMMIT`` broadcast, so they hash and reboot
in parallel (each would otherwise hold the line ~70 ms for 256 KiB), then
each is checked and confirmed.  Before that broadcast every other known card
gets ``FW_ABORT``: a card still holding an image from an earlier, stopped run
would otherwise switch to it.
"""

from __future__ import annotations

import time
from typing import Protocol

from controller.cardaddress import hex_address
from controller.errors import BusTimeout, CardError
from controller.protocol import cards as ops
from controller.protocol import commands as c
from controller.protocol.bus import Bus
from controller.upgrade.cards.firmware import CardFirmware
from controller.upgrade.cards.run import (BOOTING, CHECKING, FAILED, HEALTH_FLAGS, INSTALLED,
                                          RECEIVED, ROLLED_BACK, CardRun, FlashOptions, FlashReport)

#: Boots a card on trial may make without FW_CONFIRM (spec §5, boot rule); the next reverts.
TRIAL_BOOTS = 3
MAX_COMMITS = 3


class FlashRun(Protocol):
    """What a rollout needs of the run it belongs to (a :class:`~.flash.CardFlasher`): its
    bus, image, options and report, and the run's own rules for failing a card, telling the
    caller and stopping on request.  Naming only these keeps the two halves of an upgrade from
    importing each other."""

    bus: Bus
    fw: CardFirmware
    options: FlashOptions
    report: FlashReport

    def set_phase(self, name: str) -> None: ...

    def changed(self, force: bool = False) -> None: ...

    def stop_point(self) -> None: ...

    def fail(self, card: CardRun, detail: str, state: str = FAILED) -> None: ...

    def any_failed(self) -> bool: ...

    def bystanders(self, cards: list[CardRun]) -> list[int]: ...


class Rollout:
    """Commits, boots, checks and confirms the cards of a run, wave by wave."""

    def __init__(self, flasher: FlashRun) -> None:
        self.flasher = flasher
        self.bus = flasher.bus
        self.fw = flasher.fw
        self.options = flasher.options
        self.report = flasher.report

    def run(self, cards: list[CardRun]) -> None:
        """The canary wave, then — only if every canary is installed — everyone else."""
        canary, rest = cards[:self.options.canary], cards[self.options.canary:]
        for name, wave, group in (("canary", canary, False), ("rollout", rest, True)):
            if not wave or self.flasher.any_failed():
                return
            self.flasher.set_phase(name)
            # Only the last wave may be committed by broadcast: every card holding the image
            # acts on it, and in the canary wave the others hold it too.
            group = group and self.options.group and len(wave) >= self.options.group_min
            self._commit_wave(wave, group)
            self.finish(wave)

    def finish(self, cards: list[CardRun]) -> None:
        """Wait for committed cards to boot, then check and confirm each."""
        self._await_boot([k for k in cards if k.state == BOOTING])
        for card in cards:
            if card.state == CHECKING:
                self.flasher.stop_point()
                self._check_and_confirm(card)

    # ------------------------------------------------------------ commit

    def _commit_wave(self, cards: list[CardRun], group: bool) -> None:
        if group and self._bystanders_aborted(cards):
            self._broadcast_commit(cards)
            return
        for card in cards:
            if self.flasher.any_failed():
                return          # no card is committed after another card failed
            self.flasher.stop_point()
            self._commit(card)

    def _bystanders_aborted(self, cards: list[CardRun]) -> bool:
        """Tell every other known card to drop any image it holds (from an earlier, stopped
        run) before a broadcast FW_COMMIT; False if one did not take it — then the wave is
        committed card by card, because that card would act on the broadcast."""
        for address in self.flasher.bystanders(cards):
            self.flasher.stop_point()
            try:
                self.bus.call(address, c.Cmd.FW_ABORT)
            except (BusTimeout, CardError) as exc:
                self.report.note(f"card {hex_address(address)} (not in this wave) did not take FW_ABORT "
                                 f"({exc}); committing this wave card by card instead of by "
                                 f"broadcast")
                return False
        return True

    def _broadcast_commit(self, cards: list[CardRun]) -> None:
        """One FW_COMMIT for all: every card holding a complete image acts on it (the other
        known cards have just dropped theirs, :meth:`_bystanders_aborted`)."""
        self.bus.broadcast(c.Cmd.FW_COMMIT)
        self.bus.wait_idle()
        self.report.group_commits += 1
        for card in cards:
            card.state, card.commits = BOOTING, card.commits + 1
        self.flasher.changed(force=True)

    def _commit(self, card: CardRun) -> None:
        card.state, card.commits = BOOTING, card.commits + 1
        self.flasher.changed(force=True)
        try:
            self.bus.call(card.address, c.Cmd.FW_COMMIT)
        except CardError as exc:
            if exc.code == c.ErrorCode.VERIFY_FAILED:
                self.flasher.fail(card, f"the card refused the image at FW_COMMIT: its SHA-256 "
                                        f"does not match (VERIFY_FAILED), so the card discarded it "
                                        f"and keeps {card.version_before}; its flash may be failing")
            elif exc.code != c.ErrorCode.BAD_STATE:  # BAD_STATE: maybe a retry after a reboot
                self.flasher.fail(card, f"FW_COMMIT refused: {exc}")
        except BusTimeout:
            pass  # the answer may be lost while the card reboots: PING will say

    # ------------------------------------------------------------ boot

    def _await_boot(self, cards: list[CardRun]) -> None:
        """PING the committed cards (one try each, round after round) until each answers;
        commit again, card by card, those the commit did not reach."""
        pending = list(cards)
        deadline = time.monotonic() + self.options.boot_timeout_s
        while pending:
            again: list[CardRun] = []
            for card in list(pending):
                self.flasher.stop_point()
                try:
                    ping = self.bus.call(card.address, c.Cmd.PING, retries=0)
                except BusTimeout:
                    continue  # hashing, rebooting, or its new image does not answer (yet)
                pending.remove(card)
                if self._booted(card, ping) == "commit again":
                    again.append(card)
            if again and not self.flasher.any_failed():
                # card by card: a broadcast would make the wave's cards still booting drop
                # their image (they are bystanders of "again") or act on it twice
                self._commit_wave(again, False)
                pending += [k for k in again if k.state == BOOTING]
            if pending and time.monotonic() > deadline:
                for card in pending:
                    self.flasher.fail(card, f"did not answer for {self.options.boot_timeout_s:g} s "
                                            f"after FW_COMMIT; if its new image does not start, the "
                                            f"card returns to {card.version_before} by itself after "
                                            f"{TRIAL_BOOTS} boots")
                return

    def _booted(self, card: CardRun, ping: c.PingReply) -> str:
        if ping.bank != card.bank_before and ping.version == self.fw.version_text:
            card.state, card.version_after, card.bank_after = CHECKING, ping.version, ping.bank
            self.flasher.changed(force=True)
            return "booted"
        if ping.bank != card.bank_before:
            self.flasher.fail(card, f"came back running {ping.version} on bank {ping.bank}; "
                                    f"expected {self.fw.version_text}")
            return "failed"
        return self._not_switched(card, ping)

    def _not_switched(self, card: CardRun, ping: c.PingReply) -> str:
        """The card answers from its old bank: the commit never reached it, or it reverted."""
        try:
            status = self.bus.call(card.address, c.Cmd.FW_STATUS)
            if status.state == c.FwState.COMPLETE and status.size == self.fw.size:
                if card.commits < MAX_COMMITS:
                    card.state = RECEIVED
                    return "commit again"  # a lost FW_COMMIT: the card still holds the image
                self.flasher.fail(card, f"did not act on {card.commits} FW_COMMITs")
                return "failed"
            rolled = self._rolled_back_at_boot(card)
        except (BusTimeout, CardError) as exc:
            self.flasher.fail(card, f"stopped answering after FW_COMMIT: {exc}")
            return "failed"
        card.version_after, card.bank_after = ping.version, ping.bank
        if rolled:
            self.flasher.fail(card, f"firmware {self.fw.version_text} did not start: the card "
                                    f"went back to {ping.version} by its trial-boot rule (event 6, "
                                    f"rolled back)", ROLLED_BACK)
        elif self._rebooted(card, ping):
            self.flasher.fail(card, f"restarted during the commit and lost the image (a power cut?); "
                                    f"it keeps {ping.version}: run the upgrade again")
        else:
            self.flasher.fail(card, f"the card refused the image at FW_COMMIT: its SHA-256 does not "
                                    f"match (VERIFY_FAILED), so it discarded it and keeps "
                                    f"{ping.version}; its flash may be failing")
        return "failed"

    def _rolled_back_at_boot(self, card: CardRun) -> bool:
        """Did the card's last boot revert a trial bank (event 6 after the last boot event)?"""
        events = ops.read_events(self.bus, card.address)
        boots = [e.index for e in events if e.code == c.EventCode.BOOT]
        return any(e.code == c.EventCode.FIRMWARE_ROLLED_BACK and (not boots or e.index > boots[-1])
                   for e in events)

    @staticmethod
    def _rebooted(card: CardRun, ping: c.PingReply) -> bool:
        """Uptime says so: it should have grown by the time since the check (1 s resolution)."""
        expected = card.uptime_s + (time.monotonic() - card.checked_at)
        return ping.uptime_s < expected - 1.5

    # ------------------------------------------------------------ check and confirm

    def _check_and_confirm(self, card: CardRun) -> None:
        a = card.address
        try:
            status = self.bus.call(a, c.Cmd.GET_STATUS)
            config = self.bus.call(a, c.Cmd.GET_CONFIG)
        except (BusTimeout, CardError) as exc:
            self._roll_back(card, f"it stopped answering after booting ({exc})")
            return
        problems = []
        new_faults = c.StatusFlag(status.flags & ~card.flags_before & HEALTH_FLAGS)
        if new_faults:
            problems.append("new status faults: " + ", ".join(
                str(f.name).lower() for f in c.StatusFlag if f in new_faults))
        if card.config_before is not None and config != card.config_before:
            problems.append(f"its config reads back {config}, not {card.config_before}")
        if problems:
            self._roll_back(card, "; ".join(problems))
            return
        if status.flags & c.StatusFlag.TRIAL_FIRMWARE:
            try:
                self.bus.call(a, c.Cmd.FW_CONFIRM)
            except (BusTimeout, CardError) as exc:
                self.flasher.fail(card, f"passed its health check but FW_CONFIRM failed: {exc}; "
                                        f"it runs {self.fw.version_text} on trial")
                return
        card.state, card.detail = INSTALLED, f"{card.version_before} → {self.fw.version_text}"
        self.flasher.changed(force=True)

    def _roll_back(self, card: CardRun, reason: str) -> None:
        """Never confirm; reboot the card until its own trial-boot rule reverts it."""
        self.report.note(f"card {hex_address(card.address)} failed its health check ({reason}); not "
                         f"confirming, rebooting it until its trial-boot rule reverts it")
        for _ in range(TRIAL_BOOTS + 2):  # spare tries for a REBOOT lost on the line
            self.flasher.stop_point()
            try:
                self.bus.call(card.address, c.Cmd.REBOOT)
            except (BusTimeout, CardError):
                pass  # lost answer or already rebooting: PING says what happened
            ping = self._wait_for(card)
            if ping is None:
                break
            if ping.bank == card.bank_before:
                card.version_after, card.bank_after = ping.version, ping.bank
                self.flasher.fail(card, f"firmware {self.fw.version_text} failed its health check "
                                        f"({reason}); not confirmed, the card went back to "
                                        f"{ping.version} by its trial-boot rule", ROLLED_BACK)
                return
        self.flasher.fail(card, f"failed its health check ({reason}) and did not roll back")

    def _wait_for(self, card: CardRun) -> c.PingReply | None:
        deadline = time.monotonic() + self.options.boot_timeout_s
        while time.monotonic() < deadline:
            self.flasher.stop_point()
            try:
                return self.bus.call(card.address, c.Cmd.PING, retries=0)
            except BusTimeout:
                continue
        return None

