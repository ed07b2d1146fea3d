"""Firmware transfer, commit, the trial-boot rule and rollback."""

import hashlib
import os
import struct

import pytest

from hw.firmware import card as fw
from test_firmware_kit import Bench, begin_payload, chunks, image_of, upload

OLD = (1, 0, 0)
NEW = (2, 3, 258)


@pytest.fixture
def b(tmp_path):
    return Bench(tmp_path)


def fw_status(b):
    body = b.ok(fw.FW_STATUS)
    state, size, chunk, got = struct.unpack_from("<BIHI", body)
    return state, size, chunk, got, body[11:]


def commit_and_boot(b, reason=1):
    assert b.ok(fw.FW_COMMIT) == b""
    assert b.card.reboot_requested
    b.reboot(reason)


def test_idle_status(b):
    assert b.ok(fw.FW_STATUS) == bytes(11)


def test_full_upgrade_trial_then_confirm(b):
    img = image_of(5000)
    upload(b, img, NEW, chunk=512)
    assert fw_status(b) == (2, 5000, 512, 10, b"\xff\x03")
    commit_and_boot(b)
    assert b.card.version == NEW and b.card.active_bank == 1 and b.card.on_trial
    assert b.hw.booted_as[-1] == (1, NEW)
    ping = struct.unpack("<HBBHQBIH", b.ok(fw.PING))
    assert ping[1:4] == NEW and ping[5] == 1
    assert b.status()[3] & 0x20
    assert b.ok(fw.FW_STATUS) == bytes(11)
    b.ok(fw.FW_CONFIRM)
    assert not b.card.on_trial and not b.status()[3] & 0x20
    assert b.events()[-1][2:] == (fw.EV_CONFIRMED, 1)
    b.ok(fw.FW_CONFIRM)  # idempotent, logs nothing
    assert b.event_codes().count(fw.EV_CONFIRMED) == 1
    for _ in range(5):
        b.reboot(1)
    assert b.card.version == NEW and b.card.active_bank == 1


def answer_ms(ops):
    """What the modelled chip keeps the card from answering: everything but the erases,
    which run in the chip while the card goes on."""
    from hw.sim import nor
    return sum(nor.busy_ms(op, n) for op, n in ops if op != "erase")


def test_flash_work_stays_inside_answer_deadlines(tmp_path):
    """A full bank on the datasheet chip: no answer waits for an erase, none breaks its deadline."""
    b = Bench(tmp_path, settle=False)
    img = image_of(fw.BANK_SIZE)
    b.hw.flash_ops.clear()
    b.ok(fw.FW_BEGIN, begin_payload(img, NEW, 512))
    assert b.hw.flash_ops == [("program", 256), ("erase", 64 * 1024)]  # record cleared, 1st block
    assert answer_ms(b.hw.flash_ops) <= 250
    assert b.err(fw.FW_STATUS) == fw.BUSY and b.err(fw.FW_CHUNK, chunks(img, 512)[0]) == fw.BUSY
    while b.card.erasing:
        b.card.service()
    assert [op for op in b.hw.flash_ops if op[0] == "erase"] == [("erase", 64 * 1024)] * 8
    for c in chunks(img, 512):
        b.hw.flash_ops.clear()
        b.ok(fw.FW_CHUNK, c)
        assert b.hw.flash_ops == [("program", 512)] and answer_ms(b.hw.flash_ops) <= 5
    state, size, chunk, got, bitmap = fw_status(b)
    assert (state, size, chunk, got, bitmap) == (2, fw.BANK_SIZE, 512, 1024, b"\xff" * 128)
    b.hw.flash_ops.clear()
    b.ok(fw.FW_COMMIT)
    assert ("read", fw.BANK_SIZE) in b.hw.flash_ops
    assert 20 < answer_ms(b.hw.flash_ops) <= 1000


def test_chunk_repair(b):
    img = image_of(3000)
    upload(b, img, NEW, chunk=256, skip={0, 5, 11})
    state, size, chunk, got, bitmap = fw_status(b)
    assert (state, got) == (1, 9)
    assert bitmap == bytes([0b11011110, 0b00000111])
    assert b.err(fw.FW_COMMIT) == fw.BAD_STATE
    cs = chunks(img, 256)
    for i in (11, 0, 5):
        b.ok(fw.FW_CHUNK, cs[i])
    b.ok(fw.FW_CHUNK, cs[3])  # a repeat changes nothing
    assert fw_status(b)[:4] == (2, 3000, 256, 12)
    commit_and_boot(b)
    assert b.card.version == NEW


def test_broadcast_transfer_with_unicast_repair(tmp_path):
    b = Bench(tmp_path)
    img = image_of(2000, salt=3)
    cs = chunks(img, 128)
    assert b.send(fw.FW_BEGIN, begin_payload(img, NEW, 128), dst=0xFF) == []
    for i, c in enumerate(cs):
        if i != 4:
            assert b.send(fw.FW_CHUNK, c, dst=0xFF) == []
    assert b.send(fw.FW_CHUNK, b"\x00\x00", dst=0xFF) == []  # broken chunk: silently dropped
    assert fw_status(b)[3] == len(cs) - 1
    b.ok(fw.FW_CHUNK, cs[4])
    commit_and_boot(b)
    assert b.card.version == NEW


def test_verify_failed_discards(b):
    img = image_of(1000)
    b.ok(fw.FW_BEGIN, begin_payload(img, NEW, 256, sha=hashlib.sha256(b"other").digest()))
    for c in chunks(img, 256):
        b.ok(fw.FW_CHUNK, c)
    assert b.err(fw.FW_COMMIT) == fw.VERIFY_FAILED
    assert not b.card.reboot_requested
    assert b.ok(fw.FW_STATUS) == bytes(11)
    assert b.err(fw.FW_COMMIT) == fw.BAD_STATE
    b.reboot(1)
    assert b.card.version == OLD and b.card.active_bank == 0


def test_corrupted_chunk_is_caught_at_commit(b):
    img = image_of(1000)
    b.ok(fw.FW_BEGIN, begin_payload(img, NEW, 256))
    cs = chunks(img, 256)
    cs[2] = cs[2][:10] + bytes([cs[2][10] ^ 1]) + cs[2][11:]
    for c in cs:
        b.ok(fw.FW_CHUNK, c)
    assert b.err(fw.FW_COMMIT) == fw.VERIFY_FAILED


@pytest.mark.parametrize("kw,code", [
    (dict(hw_model=8), fw.BAD_VALUE),
    (dict(size=0), fw.BAD_VALUE),
    (dict(size=fw.BANK_SIZE + 1), fw.BAD_VALUE),
    (dict(chunk=0), fw.BAD_VALUE),
    (dict(chunk=513), fw.BAD_VALUE),
    (dict(size=fw.BANK_SIZE, chunk=64), fw.BAD_VALUE),  # 8192 chunks: bitmap > 629 bytes
    (dict(size=5032 * 100, chunk=100), None),  # exactly fits: 11 + 629 = 640
    (dict(size=5033 * 100, chunk=100), fw.BAD_VALUE),
])
def test_fw_begin_limits(b, kw, code):
    size = kw.get("size", 1000)
    payload = struct.pack("<IHBBHH32s", size, kw.get("hw_model", 7), 2, 0, 0,
                          kw.get("chunk", 256), bytes(32))
    if code is None:
        b.ok(fw.FW_BEGIN, payload)
        assert len(b.ok(fw.FW_STATUS)) == 640
    else:
        assert b.err(fw.FW_BEGIN, payload) == code
        assert b.ok(fw.FW_STATUS) == bytes(11)


def test_fw_begin_resume_and_restart(b):
    img = image_of(2000)
    upload(b, img, NEW, chunk=256, skip={1, 2})
    b.ok(fw.FW_BEGIN, begin_payload(img, NEW, 256))  # identical: resume
    assert fw_status(b)[3] == 6
    b.ok(fw.FW_BEGIN, begin_payload(img, NEW, 128))  # different: start anew
    assert fw_status(b)[:4] == (1, 2000, 128, 0)


def test_fw_chunk_errors(b):
    img = image_of(1000)
    assert b.err(fw.FW_CHUNK, chunks(img, 256)[0]) == fw.BAD_STATE
    b.ok(fw.FW_BEGIN, begin_payload(img, NEW, 256))
    assert b.err(fw.FW_CHUNK, b"\x00\x00") == fw.BAD_LENGTH
    assert b.err(fw.FW_CHUNK, struct.pack("<I", 4) + bytes(256)) == fw.BAD_VALUE
    assert b.err(fw.FW_CHUNK, struct.pack("<I", 0) + bytes(255)) == fw.BAD_LENGTH
    assert b.err(fw.FW_CHUNK, struct.pack("<I", 3) + bytes(256)) == fw.BAD_LENGTH  # last is 232
    b.ok(fw.FW_CHUNK, struct.pack("<I", 3) + bytes(232))
    assert fw_status(b)[3] == 1


def test_fw_abort(b):
    img = image_of(1000)
    upload(b, img, NEW)
    b.ok(fw.FW_ABORT)
    assert b.ok(fw.FW_STATUS) == bytes(11)
    assert b.err(fw.FW_COMMIT) == fw.BAD_STATE
    b.ok(fw.FW_ABORT)


def test_committed_state_before_reboot(b):
    img = image_of(1000)
    upload(b, img, NEW)
    b.ok(fw.FW_COMMIT)
    # The main loop would reboot now; before it does the card hears nothing.
    assert b.send(fw.FW_STATUS) == []


def test_transfer_is_lost_on_power_cut(b):
    img = image_of(1000)
    upload(b, img, NEW, skip={2})
    b.power_cycle()
    assert b.ok(fw.FW_STATUS) == bytes(11)
    assert b.card.version == OLD


# -- the trial-boot rule -------------------------------------------------------------------

def test_trial_boots_three_times_then_rolls_back(b):
    upload(b, image_of(3000), NEW)
    commit_and_boot(b)  # trial boot 1
    assert b.card.on_trial and b.card.version == NEW
    b.reboot(2)  # 2 (a watchdog reset counts too)
    b.power_cycle()  # 3
    assert b.card.on_trial and b.card.version == NEW
    assert b.err(fw.FW_BEGIN, begin_payload(image_of(100), NEW)) == fw.BAD_STATE
    b.reboot(1)  # 4th: back to the old bank
    assert (b.card.version, b.card.active_bank, b.card.on_trial) == (OLD, 0, False)
    assert b.event_codes()[-2:] == [fw.EV_BOOT, fw.EV_ROLLBACK]
    assert b.events()[-1][3] == 0
    assert b.hw.booted_as[-1] == (0, OLD)
    b.reboot(1)
    assert b.card.version == OLD and fw.EV_ROLLBACK not in b.event_codes()[-1:]
    b.ok(fw.FW_CONFIRM)  # not on trial: no-op
    assert fw.EV_CONFIRMED not in b.event_codes()


def test_confirm_on_third_boot_keeps_new(b):
    upload(b, image_of(3000), NEW)
    commit_and_boot(b)
    b.reboot(1)
    b.reboot(1)
    b.ok(fw.FW_CONFIRM)
    for _ in range(4):
        b.power_cycle()
    assert b.card.version == NEW and not b.card.on_trial


def test_upgrade_again_after_confirm_uses_the_other_bank(b):
    upload(b, image_of(3000), NEW)
    commit_and_boot(b)
    b.ok(fw.FW_CONFIRM)
    upload(b, image_of(4000, salt=9), (3, 0, 0))
    commit_and_boot(b)
    assert b.card.active_bank == 0 and b.card.version == (3, 0, 0)
    for _ in range(3):
        b.reboot(1)
    assert b.card.active_bank == 1 and b.card.version == NEW  # rolled back to 2.3.258


def test_corrupt_active_bank_falls_back(b):
    upload(b, image_of(3000), NEW)
    commit_and_boot(b)
    b.ok(fw.FW_CONFIRM)
    with open(os.path.join(b.dir, "bank1.bin"), "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x00")
    b.power_cycle()
    assert (b.card.version, b.card.active_bank) == (OLD, 0)
    assert b.event_codes()[-2:] == [fw.EV_BOOT, fw.EV_ROLLBACK]


def test_fw_begin_invalidates_fallback_bank_record(b):
    upload(b, image_of(3000), NEW)
    commit_and_boot(b)
    b.ok(fw.FW_CONFIRM)
    assert b.card.flash.bank_info(0) is not None
    b.ok(fw.FW_BEGIN, begin_payload(image_of(100), (3, 0, 0)))
    assert b.card.flash.bank_info(0) is None
