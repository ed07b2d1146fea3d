"""Flash layout under power cuts: metadata slots, bank records, the event log."""

import os
import struct

import pytest

from hw.firmware import card as fw
from hw.firmware.flash import Flash
from test_firmware_kit import SERIAL, Bench, image_of, upload

OLD, NEW, THIRD = (1, 0, 0), (2, 0, 0), (3, 0, 0)
CFG = struct.pack("<HHBBBBBH", 32, 16, 8, 2, 2, 1, 0, 1920)


class PowerCut(Exception):
    """Not an OSError: the card must not catch it, as it cannot catch a power cut."""


class CuttableFlash(Flash):
    """Flash whose power goes away after ``budget`` more bytes were written."""

    budget = None
    log = None
    only = None  # if set, only writes to this file spend the budget

    def _write(self, name, data, offset=None):
        if CuttableFlash.log is not None:
            CuttableFlash.log.append((name, len(data)))
        if CuttableFlash.budget is not None and CuttableFlash.only in (None, name):
            if len(data) > CuttableFlash.budget:
                Flash._write(self, name, data[:CuttableFlash.budget], offset)
                CuttableFlash.budget = None
                raise PowerCut()
            CuttableFlash.budget -= len(data)
        Flash._write(self, name, data, offset)


def scenario(b):
    """Upgrade, trial boots, confirm, config, a second upgrade rolled back."""
    upload(b, image_of(1500), NEW, chunk=512)
    b.ok(fw.FW_COMMIT)
    b.reboot(1)
    b.ok(fw.SET_CONFIG, CFG)
    b.ok(fw.FW_CONFIRM)
    b.ok(fw.SET_BRIGHTNESS, b"\x00\x10")
    upload(b, image_of(1200, salt=5), THIRD, chunk=512)
    b.ok(fw.FW_COMMIT)
    for _ in range(4):
        b.reboot(1)
    b.card.poll()


def _cut_points():
    CuttableFlash.log = []
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        from pathlib import Path
        b = Bench(Path(d), flash_class=CuttableFlash)
        scenario(b)
    writes, CuttableFlash.log = CuttableFlash.log, None
    points, done = set(), 0
    for name, n in writes:
        points.add(done)
        points.add(done + n // 2)
        done += n
    return sorted(points), done


CUTS, TOTAL = _cut_points()


@pytest.fixture(autouse=True)
def _no_cut_left():
    yield
    CuttableFlash.budget = None
    CuttableFlash.log = None
    CuttableFlash.only = None


def test_scenario_without_cut(tmp_path):
    b = Bench(tmp_path)
    scenario(b)
    assert (b.card.version, b.card.active_bank, b.card.on_trial) == (NEW, 1, False)
    assert b.event_codes().count(fw.EV_ROLLBACK) == 1
    assert b.ok(fw.GET_CONFIG) == CFG and b.ok(fw.GET_BRIGHTNESS) == b"\x00\x10"


@pytest.mark.parametrize("budget", CUTS + [TOTAL])
def test_power_cut_anywhere_boots_a_good_bank(tmp_path, budget):
    b = Bench(tmp_path, flash_class=CuttableFlash)
    CuttableFlash.budget = budget
    try:
        scenario(b)
    except PowerCut:
        pass
    CuttableFlash.budget = None
    for _ in range(5):  # and keeps doing so, trial or not
        b.power_cycle(Flash)
        card = b.card
        assert card.flash.bank_ok(card.active_bank)
        assert card.version in (OLD, NEW, THIRD)
        assert b.hw.booted_as[-1] == (card.active_bank, card.version)
        assert struct.unpack("<HBBHQBIH", b.ok(fw.PING))[4] == SERIAL
        assert b.ok(fw.GET_CONFIG) in (CFG, struct.pack("<HHBBBBBH", 64, 32, 16, 4, 4, 0, 0, 3840))
        assert not b.status()[3] & 0x10
    assert card.version in (OLD, NEW) and not card.on_trial


def test_torn_metadata_write_keeps_previous_copy(tmp_path):
    b = Bench(tmp_path, flash_class=CuttableFlash)
    b.ok(fw.SET_BRIGHTNESS, b"\x11\x00")
    for cut in (0, 5, 20, 60):
        CuttableFlash.budget = cut
        with pytest.raises(PowerCut):
            b.ok(fw.SET_BRIGHTNESS, b"\x22\x00")
        b.power_cycle()
        assert b.ok(fw.GET_BRIGHTNESS) == b"\x11\x00"
        assert b.card.address == 0x05
    b.ok(fw.SET_BRIGHTNESS, b"\x33\x00")
    b.power_cycle()
    assert b.ok(fw.GET_BRIGHTNESS) == b"\x33\x00"


def test_metadata_slots_alternate(tmp_path):
    b = Bench(tmp_path)
    gens = []
    for level in (1, 2, 3):
        b.ok(fw.SET_BRIGHTNESS, struct.pack("<H", level))
        gens.append((b.card.flash.slot, b.card.flash.gen))
    assert [s for s, g in gens] == [1, 0, 1]
    assert [g for s, g in gens] == [2, 3, 4]


def test_both_slots_unreadable_runs_on_defaults(tmp_path):
    b = Bench(tmp_path)
    b.ok(fw.SET_CONFIG, CFG)
    for slot in (0, 1):
        with open(os.path.join(b.dir, "meta%d.bin" % slot), "r+b") as f:
            f.seek(12)
            f.write(b"XX")
    b.power_cycle()
    assert b.card.address == 0xF0
    assert b.card.version == OLD
    flags = b.status()[3]
    assert flags & 0x10
    assert b.ok(fw.GET_CONFIG) == struct.pack("<HHBBBBBH", 64, 32, 16, 4, 4, 0, 0, 3840)
    b.ok(fw.SET_ADDRESS, struct.pack("<QB", SERIAL, 0x05))
    b.power_cycle()
    assert b.card.address == 0x05 and b.status()[3] & 0x10  # config still never written
    b.ok(fw.SET_CONFIG, CFG)
    assert not b.status()[3] & 0x10
    b.power_cycle()
    assert not b.status()[3] & 0x10 and b.ok(fw.GET_CONFIG) == CFG


def test_provision_is_idempotent(tmp_path):
    b = Bench(tmp_path)
    b.ok(fw.SET_BRIGHTNESS, b"\x01\x00")
    Flash.provision(b.dir, 999, 3)
    b.power_cycle()
    assert b.card.serial == SERIAL and b.ok(fw.GET_BRIGHTNESS) == b"\x01\x00"


def test_provision_with_image_and_nested_directory(tmp_path):
    d = str(tmp_path / "a" / "b")
    Flash.provision(d, 5, 9, version=(4, 5, 6), address=0x10, image=b"hello")
    fl = Flash(d)
    assert (fl.serial, fl.hw_model) == (5, 9)
    assert fl.bank_info(0)[:2] == (5, (4, 5, 6)) and fl.bank_ok(0) and fl.bank_info(1) is None


def test_unprovisioned_directory_is_refused(tmp_path):
    with pytest.raises(OSError, match="provision"):
        Flash(str(tmp_path))


def test_event_ring_keeps_last_256_and_counts_on(tmp_path):
    b = Bench(tmp_path)
    fl = b.card.flash
    for i in range(299):
        fl.log_event(i, 7, i)
    b.power_cycle()  # one more event: boot
    evs = b.card.flash.events_from(0, 1000)
    assert [e[0] for e in evs] == list(range(45, 301))
    assert b.events(0)[0][0] == 45  # older than kept: start at the oldest kept
    assert b.events(300)[0][2] == fw.EV_BOOT


def test_torn_event_record_is_skipped(tmp_path):
    b = Bench(tmp_path, flash_class=CuttableFlash)
    b.ok(fw.SET_CONFIG, CFG)  # event 1
    b.ok(fw.SET_CONFIG, CFG)  # event 2
    with open(os.path.join(b.dir, "events.bin"), "r+b") as f:
        f.seek(18 * 1 + 3)
        f.write(b"\x99")  # event 1 rots
    CuttableFlash.only, CuttableFlash.budget = "events.bin", 9
    with pytest.raises(PowerCut):
        b.ok(fw.SET_CONFIG, CFG)  # event 3 torn half-way
    b.power_cycle()
    assert [(e[0], e[2]) for e in b.events()] == [(0, 1), (2, 7), (3, 1)]
