"""Every card command: happy path, error codes, addressing, duplicates, events."""

import struct

import pytest

from hw.firmware import card as fw
from test_firmware_kit import HW_MODEL, SERIAL, Bench, frame, parse

DEFAULT_CFG = (64, 32, 16, 4, 4, 0, 0, 3840)


@pytest.fixture
def b(tmp_path):
    return Bench(tmp_path)


# -- identity, status, counters -------------------------------------------------

def test_ping(b):
    b.hw.now += 7500
    body = b.ok(fw.PING)
    assert struct.unpack("<HBBHQBIH", body) == (HW_MODEL, 1, 0, 0, SERIAL, 0, 7, 640)


def test_answer_header_mirrors_request(b):
    (ans,) = b.send(fw.PING, seq=0xBEEF)
    flags, dst, src, seq, cmd, _ = ans
    assert (flags, dst, src, seq, cmd) == (1, 0x00, 0x05, 0xBEEF, fw.PING)


def test_status_healthy_and_counters(b):
    temp, mv, rpm, flags, rx_ok, rx_bad = b.status()
    assert (temp, mv, rpm, flags, rx_ok, rx_bad) == (250, 5000, 3000, 0, 1, 0)
    b.card.receive(b"\x13\x37\x00" + b"\xff" * 800 + b"\x00")
    assert b.status()[4:] == (2, 2)


@pytest.mark.parametrize("setup,flag", [
    (dict(temp=850), 0x01), (dict(temp=849), 0),
    (dict(mv=4499), 0x02), (dict(mv=4500), 0),
    (dict(rpm=499), 0x04), (dict(rpm=0, fan=False), 0), (dict(rpm=500), 0),
    (dict(lost={3}), 0x08),
])
def test_status_fault_flags(b, setup, flag):
    for k, v in setup.items():
        setattr(b.hw, k, v)
    temp, mv, rpm, flags, _, _ = b.status()
    assert flags == flag
    assert temp == b.hw.temp and mv == b.hw.mv
    assert rpm == (b.hw.rpm if b.hw.fan else 0)


def test_negative_temperature_is_signed(b):
    b.hw.temp = -125
    assert b.status()[0] == -125


def test_unknown_command_and_bad_lengths(b):
    assert b.err(0x7E) == fw.UNKNOWN_COMMAND
    for cmd, n in [(fw.PING, 0), (fw.GET_STATUS, 0), (fw.SET_ADDRESS, 9), (fw.REBOOT, 0),
                   (fw.GET_CONFIG, 0), (fw.SET_CONFIG, 11), (fw.SET_BRIGHTNESS, 2),
                   (fw.GET_BRIGHTNESS, 0), (fw.TEST_PATTERN, 3), (fw.PIXEL_SCAN, 6),
                   (fw.DETECT_START, 0), (fw.FW_BEGIN, 44), (fw.FW_STATUS, 0), (fw.FW_COMMIT, 0),
                   (fw.FW_CONFIRM, 0), (fw.FW_ABORT, 0), (fw.GET_EVENTS, 4)]:
        assert b.err(cmd, b"\x01" * (n + 1)) == fw.BAD_LENGTH, cmd
        if n:
            assert b.err(cmd, b"\x01" * (n - 1)) == fw.BAD_LENGTH, cmd
    assert not b.card.reboot_requested


def test_ignores_other_traffic_without_counting_bad(b):
    card = b.card
    quiet = [
        frame(0x06, 1, fw.PING),                      # another card
        frame(0x00, 1, fw.PING, flags=1, src=0x06),   # another card's answer
        frame(0x05, 1, fw.PING, flags=1),             # RESP set
        frame(0x05, 1, fw.PING, src=0x07),            # not from the master
        frame(0xF0, 1, fw.PING),                      # the factory address
    ]
    for w in quiet:
        assert card.receive(w) == []
    assert (card.rx_ok, card.rx_bad) == (0, 0)


def test_broadcast_is_executed_never_answered(b):
    wire = bytes.fromhex("02 01 02 ff 02 07 03 20 03 08 04 ff ff 2c a7 4c 54 00")  # spec vector
    assert b.card.receive(wire) == []
    assert b.hw.shown[-1] == (4, 0xFFFF, 0xFFFF)
    assert b.card.rx_ok == 1
    assert b.send(fw.PING, dst=0xFF) == []
    assert b.send(0x7E, dst=0xFF) == []  # errors stay silent too


def test_spec_vector_set_brightness_reaches_card_5(b):
    wire = bytes.fromhex("02 01 02 05 05 34 12 12 02 01 06 80 07 df a0 ca 00")
    (ans,) = b.card.receive(wire)
    assert parse(ans) == (1, 0, 5, 0x1234, 0x12, b"")
    assert b.card.brightness == 0x8000


# -- duplicate suppression ----------------------------------------------------------

def test_retry_is_answered_from_memory_not_executed(b):
    cfg = struct.pack("<HHBBBBBH", 32, 16, 8, 2, 2, 1, 2, 1920)
    first = b.card.receive(frame(5, 77, fw.SET_CONFIG, cfg))
    again = b.card.receive(frame(5, 77, fw.SET_CONFIG, cfg))
    assert first == again and len(first) == 1
    assert b.event_codes().count(fw.EV_CONFIG) == 1
    # a new seq is a new request
    b.card.receive(frame(5, 78, fw.SET_CONFIG, cfg))
    assert b.event_codes().count(fw.EV_CONFIG) == 2


def test_retry_returns_the_old_answer_even_if_state_moved(b):
    (a1,) = b.card.receive(frame(5, 9, fw.GET_STATUS))
    b.hw.temp = 900
    (a2,) = b.card.receive(frame(5, 9, fw.GET_STATUS))
    assert a1 == a2
    assert b.status()[0] == 900


def test_same_seq_other_payload_executes(b):
    b.card.receive(frame(5, 9, fw.SET_BRIGHTNESS, b"\x01\x00"))
    b.card.receive(frame(5, 9, fw.SET_BRIGHTNESS, b"\x02\x00"))
    assert b.card.brightness == 2


def test_broadcast_does_not_disturb_memory(b):
    cfg = struct.pack("<HHBBBBBH", *DEFAULT_CFG)
    (a1,) = b.card.receive(frame(5, 50, fw.SET_CONFIG, cfg))
    b.card.receive(frame(0xFF, 51, fw.TEST_PATTERN, b"\x01\x00\x10"))
    b.card.receive(frame(0xFF, 50, fw.SET_CONFIG, cfg))  # broadcast: executed, not remembered
    assert b.card.receive(frame(5, 50, fw.SET_CONFIG, cfg)) == [a1]
    assert b.event_codes().count(fw.EV_CONFIG) == 2


def test_memory_does_not_survive_boot(b):
    b.card.receive(frame(5, 60, fw.SET_CONFIG, struct.pack("<HHBBBBBH", *DEFAULT_CFG)))
    b.reboot(1)
    b.card.receive(frame(5, 60, fw.SET_CONFIG, struct.pack("<HHBBBBBH", *DEFAULT_CFG)))
    assert b.event_codes().count(fw.EV_CONFIG) == 2


# -- SET_ADDRESS ----------------------------------------------------------------------

def _addr(serial, new):
    return struct.pack("<QB", serial, new)


def test_set_address_unicast_answers_from_old_address_and_persists(b):
    (ans,) = b.send(fw.SET_ADDRESS, _addr(SERIAL, 0x21))
    assert ans[:3] == (1, 0x00, 0x05)
    assert b.card.address == 0x21
    assert b.send(fw.PING, dst=0x05) == []
    assert b.ok(fw.PING, dst=0x21)
    b.power_cycle()
    assert b.card.address == 0x21


def test_set_address_retry_at_old_address_is_answered_from_memory(b):
    w = frame(5, 300, fw.SET_ADDRESS, _addr(SERIAL, 0x21))
    (a1,) = b.card.receive(w)
    assert b.card.receive(w) == [a1]
    assert b.card.address == 0x21


def test_set_address_unicast_serial_mismatch(b):
    b2 = b
    assert b2.err(fw.SET_ADDRESS, _addr(SERIAL + 1, 0x21)) == fw.BAD_VALUE
    assert b2.card.address == 0x05


@pytest.mark.parametrize("new", [0, 241, 0xF0 + 1, 0xFF])
def test_set_address_range(b, new):
    assert b.err(fw.SET_ADDRESS, _addr(SERIAL, new)) == fw.BAD_VALUE
    assert b.card.address == 0x05


def test_set_address_broadcast_only_matching_serial_acts(tmp_path):
    fresh = Bench(tmp_path, address=0xF0)
    assert fresh.send(fw.SET_ADDRESS, _addr(SERIAL + 1, 9), dst=0xFF) == []
    assert fresh.card.address == 0xF0
    assert fresh.send(fw.SET_ADDRESS, _addr(SERIAL, 9), dst=0xFF) == []
    assert fresh.card.address == 9
    fresh.power_cycle()
    assert fresh.card.address == 9


def test_factory_card_answers_at_f0(tmp_path):
    fresh = Bench(tmp_path, address=0xF0)
    assert struct.unpack("<HBBHQBIH", fresh.ok(fw.PING, dst=0xF0))[4] == SERIAL


# -- config, brightness, patterns -----------------------------------------------------

def test_config_default_roundtrip_and_persist(b):
    assert struct.unpack("<HHBBBBBH", b.ok(fw.GET_CONFIG)) == DEFAULT_CFG
    cfg = (128, 64, 32, 8, 2, 1, 2, 7680)
    assert b.ok(fw.SET_CONFIG, struct.pack("<HHBBBBBH", *cfg)) == b""
    assert struct.unpack("<HHBBBBBH", b.ok(fw.GET_CONFIG)) == cfg
    assert b.events()[-1][2:] == (fw.EV_CONFIG, 0)
    b.power_cycle()
    assert struct.unpack("<HHBBBBBH", b.ok(fw.GET_CONFIG)) == cfg


@pytest.mark.parametrize("cfg", [
    (0, 32, 16, 4, 4, 0, 0, 3840), (513, 32, 16, 4, 4, 0, 0, 3840), (64, 0, 1, 4, 4, 0, 0, 3840),
    (64, 513, 1, 4, 4, 0, 0, 3840), (64, 32, 3, 4, 4, 0, 0, 3840), (64, 32, 64, 4, 4, 0, 0, 3840),
    (64, 24, 16, 4, 4, 0, 0, 3840), (64, 32, 16, 0, 4, 0, 0, 3840), (64, 32, 16, 4, 65, 0, 0, 3840),
    (64, 32, 16, 4, 4, 2, 0, 3840), (64, 32, 16, 4, 4, 0, 1, 3840), (64, 32, 16, 4, 4, 0, 0, 29),
    (64, 32, 16, 4, 4, 0, 0, 7681),
])
def test_config_rejects_out_of_range(b, cfg):
    assert b.err(fw.SET_CONFIG, struct.pack("<HHBBBBBH", *cfg)) == fw.BAD_VALUE
    assert struct.unpack("<HHBBBBBH", b.ok(fw.GET_CONFIG)) == DEFAULT_CFG
    assert fw.EV_CONFIG not in b.event_codes()


def test_brightness_default_set_persist_and_write_only_on_change(b):
    assert b.ok(fw.GET_BRIGHTNESS) == b"\xff\xff"
    b.ok(fw.SET_BRIGHTNESS, b"\x34\x12")
    assert b.ok(fw.GET_BRIGHTNESS) == b"\x34\x12"
    assert b.hw.shown[-1] == (0, 0xFFFF, 0x1234)
    gen = b.card.flash.gen
    b.ok(fw.SET_BRIGHTNESS, b"\x34\x12")
    assert b.card.flash.gen == gen
    b.power_cycle()
    assert b.ok(fw.GET_BRIGHTNESS) == b"\x34\x12"


def test_test_pattern(b):
    for p in range(8):
        b.ok(fw.TEST_PATTERN, struct.pack("<BH", p, 0x100 * p))
        assert b.hw.shown[-1] == (p, 0x100 * p, 0xFFFF)
    assert b.err(fw.TEST_PATTERN, struct.pack("<BH", 8, 1)) == fw.BAD_VALUE
    assert b.hw.shown[-1] == (7, 0x700, 0xFFFF)


# -- detection and PIXEL_SCAN ---------------------------------------------------------

def _scan(b, module, first, rows):
    return b.call(fw.PIXEL_SCAN, struct.pack("<HHH", module, first, rows))


def test_pixel_scan_before_detection_is_bad_state(b):
    flags, body = _scan(b, 0, 0, 1)
    assert flags == 3 and body[0] == fw.BAD_STATE and b"DETECT_START" in body


def test_detection_busy_then_bitmaps(b):
    b.hw.faulty = {2: [(0, 0, 0), (63, 1, 2), (5, 3, 1), (9, 31, 0)], 15: [(1, 1, 1)]}
    b.ok(fw.DETECT_START)
    assert b.status()[3] == 0x80
    assert b.err(fw.DETECT_START) == fw.BUSY
    assert b.err(fw.PIXEL_SCAN, struct.pack("<HHH", 0, 0, 1)) == fw.BUSY
    b.hw.now += 149
    assert b.err(fw.PIXEL_SCAN, struct.pack("<HHH", 0, 0, 1)) == fw.BUSY
    b.hw.now += 1
    b.card.poll()
    assert b.status()[3] == 0x40
    body = b.ok(fw.PIXEL_SCAN, struct.pack("<HHH", 2, 0, 4))
    assert struct.unpack_from("<HHHH", body) == (2, 0, 4, 64)
    n = 64 * 4 // 8
    assert len(body) == 8 + 3 * n
    r, g, bl = body[8:8 + n], body[8 + n:8 + 2 * n], body[8 + 2 * n:]
    assert r == bytes([1]) + bytes(n - 1)
    bit = 1 * 64 + 63
    assert bl == bytes(bit // 8) + bytes([1 << (bit % 8)]) + bytes(n - bit // 8 - 1)
    bit = 3 * 64 + 5
    assert g[bit // 8] == 1 << (bit % 8) and sum(g) == g[bit // 8]
    # a window not starting at row 0
    body = b.ok(fw.PIXEL_SCAN, struct.pack("<HHH", 2, 31, 1))
    assert body[8:16] == bytes([0, 2, 0, 0, 0, 0, 0, 0])
    # a clean module
    body = b.ok(fw.PIXEL_SCAN, struct.pack("<HHH", 0, 0, 8))
    assert body[8:] == bytes(3 * 64)


@pytest.mark.parametrize("module,first,rows", [(16, 0, 1), (0, 0, 0), (0, 31, 2), (0, 32, 1), (0, 0, 27)])
def test_pixel_scan_bad_values(b, module, first, rows):
    b.ok(fw.DETECT_START)
    b.hw.now += 200
    assert b.err(fw.PIXEL_SCAN, struct.pack("<HHH", module, first, rows)) == fw.BAD_VALUE


def test_pixel_scan_largest_window_fits(b):
    b.ok(fw.DETECT_START)
    b.hw.now += 200
    body = b.ok(fw.PIXEL_SCAN, struct.pack("<HHH", 0, 0, 26))  # 8 + 3*208 = 632 bytes
    assert len(body) == 632


def test_new_config_forgets_detection(b):
    b.ok(fw.DETECT_START)
    b.hw.now += 200
    b.ok(fw.SET_CONFIG, struct.pack("<HHBBBBBH", 32, 16, 8, 1, 1, 0, 0, 3840))
    assert b.err(fw.PIXEL_SCAN, struct.pack("<HHH", 0, 0, 1)) == fw.BAD_STATE


def test_detection_uses_configured_geometry(b):
    seen = []
    b.hw.detect_leds = lambda m, w, h: seen.append((m, w, h)) or []
    b.ok(fw.SET_CONFIG, struct.pack("<HHBBBBBH", 32, 16, 8, 3, 2, 0, 0, 3840))
    b.ok(fw.DETECT_START)
    assert seen == [(m, 32, 16) for m in range(6)]


# -- events, polling, reboot ------------------------------------------------------------

def test_boot_event_and_paging(b):
    evs = b.events()
    assert [e[2] for e in evs] == [fw.EV_BOOT]
    assert evs[0][0] == 0 and evs[0][3] == 0  # power-on, bank A
    for _ in range(60):
        b.ok(fw.SET_CONFIG, struct.pack("<HHBBBBBH", *DEFAULT_CFG))
    first = b.events(0)
    assert len(first) == 40 and [e[0] for e in first] == list(range(40))
    rest = b.events(40)
    assert [e[0] for e in rest] == list(range(40, 61))
    assert b.events(61) == []


def test_poll_logs_transitions_into_faults_once(b):
    b.hw.now += 5000
    b.hw.temp, b.hw.mv, b.hw.rpm, b.hw.lost = 861, 4400, 100, {6, 9}
    b.card.poll()
    b.card.poll()
    evs = b.events()[1:]
    assert [(e[2], e[3]) for e in evs] == [(2, 861), (3, 4400), (4, 100), (5, 6)]
    assert all(e[1] == 5 for e in evs)
    b.hw.temp = 845  # below the threshold but inside the hysteresis: no re-arm
    b.card.poll()
    b.hw.temp = 850
    b.card.poll()
    assert b.event_codes().count(2) == 1
    b.hw.temp, b.hw.lost = 300, set()
    b.card.poll()
    b.hw.temp, b.hw.lost = 900, {1}
    b.card.poll()
    assert b.event_codes().count(2) == 2 and b.events()[-1][2:] == (5, 1)


def test_fan_not_fitted_is_no_fault(b):
    b.hw.fan, b.hw.rpm = False, 0
    b.card.poll()
    assert b.event_codes() == [fw.EV_BOOT]


def test_reboot_answers_then_goes_deaf_until_boot(b):
    (ans,) = b.card.receive(frame(5, 1, fw.REBOOT) + frame(5, 2, fw.PING))
    assert parse(ans)[4] == fw.REBOOT and parse(ans)[0] == 1
    assert b.card.reboot_requested
    assert b.card.receive(frame(5, 3, fw.PING)) == []
    b.hw.now += 4000
    b.reboot(1)
    assert not b.card.reboot_requested
    assert struct.unpack("<HBBHQBIH", b.ok(fw.PING))[6] == 0  # uptime restarted
    assert b.events()[-1][2:] == (fw.EV_BOOT, 1)
    assert b.status()[4:] == (3, 0)  # counters restart at boot: PING, GET_EVENTS, GET_STATUS


def test_watchdog_boot_logs_8_then_1(b):
    b.reboot(2)
    assert b.event_codes() == [fw.EV_BOOT, fw.EV_WATCHDOG, fw.EV_BOOT]


def test_boot_tells_the_platform(b):
    assert b.hw.booted_as == [(0, (1, 0, 0))]
    assert (b.card.version, b.card.active_bank, b.card.on_trial) == ((1, 0, 0), 0, False)


def test_storage_failure_is_reported(b, monkeypatch):
    def broken(*a, **k):
        raise OSError(28, "no space")
    monkeypatch.setattr(b.card.flash, "_write", broken)
    assert b.err(fw.SET_BRIGHTNESS, b"\x01\x00") == fw.STORAGE
    assert b.card.brightness == 0xFFFF
    assert b.ok(fw.GET_BRIGHTNESS) == b"\xff\xff"


def test_flash_work_stays_inside_the_answer_budget(b):
    """SET_CONFIG writes metadata and logs an event: two page programs on the modelled chip."""
    from hw.sim import nor
    b.hw.flash_ops.clear()
    b.ok(fw.SET_CONFIG, struct.pack("<HHBBBBBH", *DEFAULT_CFG))
    assert b.hw.flash_ops == [("program", 256), ("program", 256)]
    assert 0 < sum(nor.busy_ms(op, n) for op, n in b.hw.flash_ops) <= 5
