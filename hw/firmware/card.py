"""The receiving card: LWP/1 commands over a flash store and a platform.

``Card`` is the whole card application, written from the wire spec
(docs/spec/wire-protocol.md) alone.  It does no I/O of its own: bytes heard
on the bus go in through ``receive`` and the frames to transmit come back out,
sensors and LED drivers are reached through the platform object ``hw``, and
persistent state lives in ``flash.Flash``.  That is what lets the same code run
on a board (``main.py``) and, 64 at a time, inside the simulator.

Choices the spec leaves open are listed in docs/firmware.md; the ones that
shape this module:

- a request is executed at most once: the last unicast request (with its
  encoded answer) is remembered and an identical repeat gets the same bytes
  back, because the master retries with the same ``seq`` when an answer is
  lost;
- broadcasts execute but are never answered, so their errors are silent;
- RAM state (receiver, that memory, a firmware transfer, detection results,
  counters) starts afresh at every boot, persistent state is re-read.
"""

import struct

try:
    from . import framing
    from . import flash as _flash
except ImportError:  # flat layout on a board
    import framing  # type: ignore
    import flash as _flash  # type: ignore

BANK_SIZE = 512 * 1024
MAX_PAYLOAD = framing.MAX_PAYLOAD
TRIAL_BOOTS = 3  # a trial bank may boot this often without FW_CONFIRM
DETECT_MS = 150  # how long open/short detection keeps status bit7 set
MAX_CHUNK = 512
EVENTS_PER_ANSWER = 40

# Commands (spec §5).
PING, GET_STATUS, SET_ADDRESS, REBOOT = 0x01, 0x02, 0x03, 0x04
GET_CONFIG, SET_CONFIG, SET_BRIGHTNESS, GET_BRIGHTNESS = 0x10, 0x11, 0x12, 0x13
GET_OUTPUT = 0x14
TEST_PATTERN, PIXEL_SCAN, DETECT_START = 0x20, 0x21, 0x22
FW_BEGIN, FW_CHUNK, FW_STATUS, FW_COMMIT, FW_CONFIRM, FW_ABORT = 0x30, 0x31, 0x32, 0x33, 0x34, 0x35
GET_EVENTS = 0x40

# Error codes (spec §6).
UNKNOWN_COMMAND, BAD_LENGTH, BAD_VALUE, BUSY, BAD_STATE, VERIFY_FAILED, STORAGE = 1, 2, 3, 4, 5, 6, 7

# Event codes (spec §5).
EV_BOOT, EV_OVERTEMP, EV_UNDERVOLT, EV_FAN, EV_LINK = 1, 2, 3, 4, 5
EV_ROLLBACK, EV_CONFIG, EV_WATCHDOG, EV_CONFIRMED = 6, 7, 8, 9

# Status flags (GET_STATUS).
F_OVERTEMP, F_UNDERVOLT, F_FAN, F_LINK = 0x01, 0x02, 0x04, 0x08
F_CONFIG_INVALID, F_TRIAL, F_PIXEL_FAULTS, F_DETECTING = 0x10, 0x20, 0x40, 0x80

# Transfer states (FW_STATUS).
XF_IDLE, XF_RECEIVING, XF_COMPLETE, XF_VERIFIED = 0, 1, 2, 3

#: Bank erases go in 64 KiB blocks while that much is left, the rest in 4 KiB sectors: the
#: erase sizes NOR flash offers (docs/firmware.md, "Flash timing").
ERASE_BLOCK = 64 * 1024
ERASE_SECTOR = 4 * 1024
#: Bytes a metadata slot or an event record costs to program: one 256-byte page each.
PAGE = 256


class CommandError(Exception):
    """A request the card refuses; becomes a ``RESP|ERR`` answer."""

    def __init__(self, code, text=""):
        # super(), not Exception.__init__(self, …): MicroPython's built-in types have no
        # __init__ attribute to call, and the AttributeError would escape every handler.
        super().__init__(text)
        self.code = code
        self.text = text


def config_problem(cfg):
    """Why a config block is refused, or None if the card accepts it."""
    w, h, scan, mx, my, chain, rot, hz = cfg
    if not (1 <= w <= 512 and 1 <= h <= 512):
        return "module size must be 1..512"
    if scan not in (1, 2, 4, 8, 16, 32) or h % scan:
        return "scan must be 1,2,4,8,16,32 and divide module_h"
    if not (1 <= mx <= 64 and 1 <= my <= 64):
        return "modules_x/y must be 1..64"
    if chain not in (0, 1):
        return "chain must be 0 or 1"
    if rot not in (0, 2):
        return "rotation must be 0 or 2"
    if not (30 <= hz <= 7680):
        return "refresh_hz must be 30..7680"
    return None


# cmd -> (method name, exact payload length or None when the handler checks)
_HANDLERS = {
    PING: ("_ping", 0), GET_STATUS: ("_get_status", 0), SET_ADDRESS: ("_set_address", 9),
    REBOOT: ("_reboot", 0), GET_CONFIG: ("_get_config", 0), SET_CONFIG: ("_set_config", 11),
    SET_BRIGHTNESS: ("_set_brightness", 2), GET_BRIGHTNESS: ("_get_brightness", 0),
    GET_OUTPUT: ("_get_output", 0),
    TEST_PATTERN: ("_test_pattern", 3), PIXEL_SCAN: ("_pixel_scan", 6),
    DETECT_START: ("_detect_start", 0), FW_BEGIN: ("_fw_begin", 44), FW_CHUNK: ("_fw_chunk", None),
    FW_STATUS: ("_fw_status", 0), FW_COMMIT: ("_fw_commit", 0), FW_CONFIRM: ("_fw_confirm", 0),
    FW_ABORT: ("_fw_abort", 0), GET_EVENTS: ("_get_events", 4),
}


class Card:
    """One receiving card; call ``boot()`` before feeding it bytes."""

    def __init__(self, flash, hw):
        self.flash = flash
        self.hw = hw
        self.serial = flash.serial
        self.hw_model = flash.hw_model
        meta = flash.meta if flash.meta_valid else _flash.default_meta()
        self._meta = meta
        self.address = meta["addr"]
        self.brightness = meta["bright"]
        self.config = tuple(meta["cfg"])
        self.version = (0, 0, 0)
        self.active_bank = meta["active"]
        self.on_trial = False
        self.reboot_requested = False
        self.booted = False
        self._origin = 0
        self._reset_ram()

    def _reset_ram(self):
        self._rx = framing.Deframer()
        self._last = None  # ((dst, seq, cmd, payload), encoded answer)
        self._xfer = None
        self._detect = None  # {module: [(x, y, ch), ...]} of the last finished detection
        self._detect_pending = None
        self._detect_until = None
        self._latched = 0  # fault bits already logged (see poll)
        self.rx_ok = 0
        self.rx_bad = 0
        self.pattern = 0
        self.level = 0xFFFF

    # -- boot --------------------------------------------------------------
    def boot(self, reason=0):
        """Start (again) as after a reset: bank choice, events, fresh RAM."""
        fl = self.flash
        fl.load()
        self._reset_ram()
        self._origin = self.hw.millis()
        self.reboot_requested = False
        if fl.meta_valid:
            meta = dict(fl.meta)
        else:
            meta = _flash.default_meta(1 if fl.bank_ok(1) and not fl.bank_ok(0) else 0)
        dirty = rolled = False
        if meta["trial"]:
            if meta["boots"] >= TRIAL_BOOTS:
                meta["active"] = 1 - meta["active"]
                meta["trial"], meta["boots"] = False, 0
                rolled = True
            else:
                meta["boots"] += 1
            dirty = True
        if not fl.bank_ok(meta["active"]) and fl.bank_ok(1 - meta["active"]):
            meta["active"] = 1 - meta["active"]
            meta["trial"], meta["boots"] = False, 0
            rolled = dirty = True
        self._meta = meta
        if dirty:
            try:
                fl.save_meta(dict(meta))  # the trial count is on flash before we run
            except OSError:
                pass
        bank = meta["active"]
        info = fl.bank_info(bank)
        self.version = info[1] if info else (0, 0, 0)
        self.active_bank = bank
        self.on_trial = meta["trial"]
        self.address = meta["addr"]
        self.brightness = meta["bright"]
        self.config = tuple(meta["cfg"])
        if reason == 2:
            self._log(EV_WATCHDOG, 0)
        self._log(EV_BOOT, (reason & 0xFF) | (bank << 8))
        if rolled:
            self._log(EV_ROLLBACK, bank)
        self.booted = True
        self.hw.show(self.pattern, self.level, self.brightness)
        self.hw.booted(bank, self.version)

    # -- bus -----------------------------------------------------------------
    def receive(self, data):
        """Bytes heard on the bus in, list of frames to transmit out."""
        if not self.booted:
            raise RuntimeError("card not booted: call boot() first")
        out = []  # type: list
        if self.reboot_requested:
            return out  # between answering REBOOT/FW_COMMIT and boot(): deaf
        self.service()
        for frame in self._rx.feed(data):
            if frame is None:
                self.rx_bad += 1
                continue
            flags, dst, src, seq, cmd, payload = frame
            if flags or src != framing.CONTROLLER:
                continue  # answers of other cards, or not from the master
            key = (dst, seq, cmd, payload)
            last = self._last
            if dst == framing.BROADCAST:
                self.rx_ok += 1
                try:
                    self._execute(cmd, payload, True)
                except CommandError:
                    pass
            elif dst == self.address:
                self.rx_ok += 1
                if last is not None and last[0] == key:
                    out.append(last[1])
                else:
                    answer = self._answer(dst, seq, cmd, payload)
                    self._last = (key, answer)
                    out.append(answer)
            elif last is not None and last[0] == key and cmd == SET_ADDRESS:
                # retry of the SET_ADDRESS we answered at our old address
                self.rx_ok += 1
                out.append(last[1])
            if self.reboot_requested:
                break  # the rest of the bytes arrive while we reboot
        return out

    def _answer(self, dst, seq, cmd, payload):
        try:
            body = self._execute(cmd, payload, False)
            return framing.encode(framing.RESP, framing.CONTROLLER, dst, seq, cmd, body)
        except CommandError as e:
            body = bytes([e.code]) + e.text.encode()[:100]
            return framing.encode(framing.RESP | framing.ERR, framing.CONTROLLER, dst, seq, cmd, body)

    def _execute(self, cmd, payload, bcast):
        entry = _HANDLERS.get(cmd)
        if entry is None:
            raise CommandError(UNKNOWN_COMMAND, "unknown command 0x%02x" % cmd)
        name, length = entry
        if length is not None and len(payload) != length:
            raise CommandError(BAD_LENGTH, "payload must be %d bytes, got %d" % (length, len(payload)))
        try:
            return getattr(self, name)(payload, bcast)
        except OSError as e:
            # The errno, not str(e): MicroPython spells an OSError "[Errno 5] EIO" where
            # CPython says "5", and the answer must be the same bytes on both.
            code = e.args[0] if e.args and isinstance(e.args[0], int) else 0
            raise CommandError(STORAGE, "flash failed (errno %d)" % code)

    # -- helpers -------------------------------------------------------------
    def uptime_s(self):
        return (self.hw.millis() - self._origin) // 1000

    def _log(self, code, arg):
        """Log an event; a failing log write never fails the command."""
        try:
            self.flash.log_event(self.uptime_s(), code, arg)
            self.hw.flash_started("program", PAGE)
        except OSError:
            pass

    # -- background flash work ---------------------------------------------------
    def service(self):
        """One step of background flash work; the main loop calls it between requests.

        Erasing a bank takes NOR flash seconds (docs/firmware.md, "Flash timing"):
        far past the 250 ms ``FW_BEGIN`` answer and the 2 s watchdog.  So
        ``FW_BEGIN`` answers at once and the erase goes on here, one block
        at a time, each started only when the chip says the last one is done
        (``hw.flash_ready()``): the card keeps answering the bus, and the
        watchdog is fed, while the chip works.  Until the whole bank is
        erased, ``FW_STATUS`` and ``FW_CHUNK`` answer ``BUSY``.
        """
        x = self._xfer
        if x is None or x["ready"] or not self.hw.flash_ready():
            return
        done = x["erased"]
        if done >= x["size"]:
            x["ready"] = True
            return
        left = x["size"] - done
        n = ERASE_BLOCK if left >= ERASE_BLOCK else min(left, ERASE_SECTOR)
        self.flash.bank_erase_range(x["bank"], done, n)
        self.hw.flash_started("erase", n)
        x["erased"] = done + n

    @property
    def erasing(self):
        """True while a transfer's bank erase is still under way (for the main loop's pacing)."""
        return self._xfer is not None and not self._xfer["ready"]

    def _refuse_while_erasing(self, x):
        self.service()
        if not x["ready"]:
            raise CommandError(BUSY, "erasing the bank: %d of %d KiB done" % (
                x["erased"] // 1024, (x["size"] + 1023) // 1024))

    def _persist(self, changes):
        """Write metadata with ``changes``; RAM follows only if flash took it."""
        meta = dict(self._meta)
        meta.update(changes)
        self.flash.save_meta(meta)
        self._meta = meta
        self.hw.flash_started("program", PAGE)

    def _modules(self):
        return self.config[3] * self.config[4]

    def _first_lost_link(self):
        for m in range(self._modules()):
            if not self.hw.module_link_ok(m):
                return m
        return None

    @staticmethod
    def _sensor_faults(temp, mv, rpm, fitted):
        flags = 0
        if temp >= 850:
            flags |= F_OVERTEMP
        if mv < 4500:
            flags |= F_UNDERVOLT
        if fitted and rpm < 500:
            flags |= F_FAN
        return flags

    def _detect_tick(self):
        if self._detect_until is not None and self.hw.millis() >= self._detect_until:
            self._detect = self._detect_pending
            self._detect_pending = self._detect_until = None

    # -- periodic --------------------------------------------------------------
    def poll(self):
        """Every ~100 ms: finish detection, log transitions into a fault.

        A fault is logged once when it appears and re-armed only when the
        reading is clear of the threshold by a margin (1 C, 100 mV, 100 rpm),
        so a sensor hovering at a threshold cannot flood the 256-event log.
        """
        if not self.booted or self.reboot_requested:
            return
        self._detect_tick()
        temp, mv, rpm, fitted = self.hw.sensors()
        now = self._sensor_faults(temp, mv, rpm, fitted)
        lost = self._first_lost_link()
        if lost is not None:
            now |= F_LINK
        new = now & ~self._latched
        if new & F_OVERTEMP:
            self._log(EV_OVERTEMP, temp)
        if new & F_UNDERVOLT:
            self._log(EV_UNDERVOLT, mv)
        if new & F_FAN:
            self._log(EV_FAN, rpm)
        if new & F_LINK:
            self._log(EV_LINK, lost)
        clear = 0
        if temp < 840:
            clear |= F_OVERTEMP
        if mv >= 4600:
            clear |= F_UNDERVOLT
        if not fitted or rpm >= 600:
            clear |= F_FAN
        if lost is None:
            clear |= F_LINK
        self._latched = (self._latched & ~clear) | now

    # -- commands: identity and status ------------------------------------------
    def _ping(self, payload, bcast):
        v = self.version
        return struct.pack("<HBBHQBIH", self.hw_model, v[0], v[1], v[2], self.serial,
                           self.active_bank, self.uptime_s() & 0xFFFFFFFF, MAX_PAYLOAD)

    def _get_status(self, payload, bcast):
        temp, mv, rpm, fitted = self.hw.sensors()
        flags = self._sensor_faults(temp, mv, rpm, fitted)
        if self._first_lost_link() is not None:
            flags |= F_LINK
        if not self._meta["cfg_ok"]:
            flags |= F_CONFIG_INVALID
        if self.on_trial:
            flags |= F_TRIAL
        self._detect_tick()
        if self._detect:
            flags |= F_PIXEL_FAULTS
        if self._detect_until is not None:
            flags |= F_DETECTING
        temp = max(-32768, min(32767, temp))
        return struct.pack("<hHHHII", temp, max(0, min(0xFFFF, mv)),
                           max(0, min(0xFFFF, rpm)) if fitted else 0, flags,
                           self.rx_ok & 0xFFFFFFFF, self.rx_bad & 0xFFFFFFFF)

    def _set_address(self, payload, bcast):
        serial, new = struct.unpack("<QB", payload)
        if serial != self.serial:
            if bcast:
                return b""  # meant for another card
            raise CommandError(BAD_VALUE, "serial mismatch")
        if not 1 <= new <= 240:
            raise CommandError(BAD_VALUE, "address must be 1..240")
        if new != self.address:
            self._persist({"addr": new})
            self.address = new  # the answer still leaves from the old address
        return b""

    def _reboot(self, payload, bcast):
        self.reboot_requested = True
        return b""

    # -- commands: display ---------------------------------------------------
    def _get_config(self, payload, bcast):
        return struct.pack("<HHBBBBBH", *self.config)

    def _set_config(self, payload, bcast):
        cfg = struct.unpack("<HHBBBBBH", payload)
        problem = config_problem(cfg)
        if problem:
            raise CommandError(BAD_VALUE, problem)
        self._persist({"cfg": list(cfg), "cfg_ok": True})
        if cfg != self.config:
            self._detect = self._detect_pending = self._detect_until = None  # other geometry
        self.config = cfg
        self._log(EV_CONFIG, 0)
        return b""

    def _set_brightness(self, payload, bcast):
        level = struct.unpack("<H", payload)[0]
        if level != self.brightness:
            self._persist({"bright": level})
            self.brightness = level
            self.hw.show(self.pattern, self.level, self.brightness)
        return b""

    def _get_brightness(self, payload, bcast):
        return struct.pack("<H", self.brightness)

    def _get_output(self, payload, bcast):
        """``hw.output()``: (mA or None, shown, dropped), or None on a board without counters,
        which answers as a card built before the command (docs/firmware.md, "Interface")."""
        out = self.hw.output()
        if out is None:
            raise CommandError(UNKNOWN_COMMAND, "unknown command 0x%02x" % GET_OUTPUT)
        ma, shown, dropped = out
        ma = 0xFFFFFFFF if ma is None else max(0, min(0xFFFFFFFE, ma))  # None: no sensor
        return struct.pack("<III", ma, shown & 0xFFFFFFFF, dropped & 0xFFFFFFFF)

    def _test_pattern(self, payload, bcast):
        pattern, level = struct.unpack("<BH", payload)
        if pattern > 7:
            raise CommandError(BAD_VALUE, "pattern must be 0..7")
        self.pattern, self.level = pattern, level
        self.hw.show(pattern, level, self.brightness)
        return b""

    def _detect_start(self, payload, bcast):
        self._detect_tick()
        if self._detect_until is not None:
            raise CommandError(BUSY, "detection running")
        w, h = self.config[0], self.config[1]
        found = {}
        for m in range(self._modules()):
            faults = []
            for x, y, ch in self.hw.detect_leds(m, w, h):
                if 0 <= x < w and 0 <= y < h and 0 <= ch <= 2:
                    faults.append((x, y, ch))
            if faults:
                found[m] = faults
        self._detect_pending = found
        self._detect_until = self.hw.millis() + DETECT_MS
        return b""

    def _pixel_scan(self, payload, bcast):
        self._detect_tick()
        if self._detect_until is not None:
            raise CommandError(BUSY, "detection running")
        if self._detect is None:
            raise CommandError(BAD_STATE, "run DETECT_START first")
        module, first, rows = struct.unpack("<HHH", payload)
        w, h = self.config[0], self.config[1]
        if module >= self._modules():
            raise CommandError(BAD_VALUE, "module must be < %d" % self._modules())
        if rows == 0 or first + rows > h:
            raise CommandError(BAD_VALUE, "rows must be 1.. and end by row %d" % h)
        nbytes = (w * rows + 7) // 8
        if 8 + 3 * nbytes > MAX_PAYLOAD:
            raise CommandError(BAD_VALUE, "answer too long; ask for <= %d rows" % (
                ((MAX_PAYLOAD - 8) // 3 * 8) // w))
        maps = [bytearray(nbytes), bytearray(nbytes), bytearray(nbytes)]
        for x, y, ch in self._detect.get(module, ()):
            if first <= y < first + rows:
                bit = (y - first) * w + x
                maps[ch][bit >> 3] |= 1 << (bit & 7)
        return struct.pack("<HHHH", module, first, rows, w) + bytes(maps[0]) + bytes(maps[1]) + bytes(maps[2])

    # -- commands: firmware ----------------------------------------------------
    def _fw_begin(self, payload, bcast):
        size, model, major, minor, patch, chunk, sha = struct.unpack("<IHBBHH32s", payload)
        x = self._xfer
        if x is not None and x["state"] == XF_VERIFIED:
            raise CommandError(BAD_STATE, "image committed; reboot pending")
        if self.on_trial:
            raise CommandError(BAD_STATE, "running trial firmware; FW_CONFIRM first")
        if model != self.hw_model:
            raise CommandError(BAD_VALUE, "image for hw_model %d, card is %d" % (model, self.hw_model))
        if size == 0 or size > BANK_SIZE:
            raise CommandError(BAD_VALUE, "size must be 1..%d" % BANK_SIZE)
        if chunk == 0 or chunk > MAX_CHUNK:
            raise CommandError(BAD_VALUE, "chunk size must be 1..%d" % MAX_CHUNK)
        count = (size + chunk - 1) // chunk
        if 11 + (count + 7) // 8 > MAX_PAYLOAD:
            raise CommandError(BAD_VALUE, "too many chunks; use bigger chunks")
        if x is not None and x["begin"] == payload:
            return b""  # the same transfer again: resume where it stands (erasing or not)
        bank = 1 - self.active_bank
        self._xfer = None
        self.flash.clear_bank_info(bank)
        self.hw.flash_started("program", PAGE)
        self._xfer = {"begin": payload, "state": XF_RECEIVING, "bank": bank, "size": size,
                      "chunk": chunk, "count": count, "got": 0, "map": bytearray((count + 7) // 8),
                      "version": (major, minor, patch), "sha": sha, "erased": 0, "ready": False}
        self.service()  # the first erase starts now; the answer does not wait for the rest
        return b""

    def _fw_chunk(self, payload, bcast):
        x = self._xfer
        if x is None:
            raise CommandError(BAD_STATE, "no transfer; send FW_BEGIN first")
        if x["state"] == XF_VERIFIED:
            raise CommandError(BAD_STATE, "image committed; reboot pending")
        if len(payload) < 4:
            raise CommandError(BAD_LENGTH, "chunk index missing")
        self._refuse_while_erasing(x)
        index = struct.unpack_from("<I", payload, 0)[0]
        if index >= x["count"]:
            raise CommandError(BAD_VALUE, "chunk index must be < %d" % x["count"])
        want = x["chunk"] if index < x["count"] - 1 else x["size"] - index * x["chunk"]
        if len(payload) - 4 != want:
            raise CommandError(BAD_LENGTH, "chunk %d must be %d bytes" % (index, want))
        bit = 1 << (index & 7)
        if not x["map"][index >> 3] & bit:
            self.flash.bank_write(x["bank"], index * x["chunk"], payload[4:])
            self.hw.flash_started("program", want)
            x["map"][index >> 3] |= bit
            x["got"] += 1
            if x["got"] == x["count"]:
                x["state"] = XF_COMPLETE
        return b""

    def _fw_status(self, payload, bcast):
        x = self._xfer
        if x is None:
            return struct.pack("<BIHI", XF_IDLE, 0, 0, 0)
        self._refuse_while_erasing(x)
        return struct.pack("<BIHI", x["state"], x["size"], x["chunk"], x["got"]) + bytes(x["map"])

    def _fw_commit(self, payload, bcast):
        x = self._xfer
        if x is None:
            raise CommandError(BAD_STATE, "no transfer")
        if x["state"] == XF_VERIFIED:
            self.reboot_requested = True
            return b""
        if x["state"] != XF_COMPLETE:
            raise CommandError(BAD_STATE, "%d chunks missing" % (x["count"] - x["got"]))
        digest = self.flash.bank_sha256(x["bank"], x["size"])
        self.hw.flash_started("read", x["size"])
        if digest != x["sha"]:
            self._xfer = None
            raise CommandError(VERIFY_FAILED, "SHA-256 mismatch; transfer discarded")
        self.flash.set_bank_info(x["bank"], x["size"], x["version"], x["sha"])
        self.hw.flash_started("program", PAGE)
        self._persist({"active": x["bank"], "trial": True, "boots": 0})
        x["state"] = XF_VERIFIED
        self.reboot_requested = True
        return b""

    def _fw_confirm(self, payload, bcast):
        if self.on_trial:
            self._persist({"trial": False, "boots": 0})
            self.on_trial = False
            self._log(EV_CONFIRMED, self.active_bank)
        return b""

    def _fw_abort(self, payload, bcast):
        if self._xfer is not None and self._xfer["state"] == XF_VERIFIED:
            raise CommandError(BAD_STATE, "image committed; reboot pending")
        self._xfer = None
        return b""

    # -- commands: event log -----------------------------------------------------
    def _get_events(self, payload, bcast):
        first = struct.unpack("<I", payload)[0]
        events = self.flash.events_from(first, EVENTS_PER_ANSWER)
        out = [struct.pack("<B", len(events))]
        for ev in events:
            out.append(struct.pack("<IIHI", ev[0], ev[1], ev[2], ev[3]))
        return b"".join(out)
