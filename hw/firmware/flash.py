"""The card's flash, modelled as a directory of small files.

Layout (all names inside the directory; see docs/firmware.md)::

    ident.json   serial and hw_model, written once at the factory (last, so
                 a torn provisioning is simply redone)
    meta0.bin    metadata slot 0 \\ written alternately; each holds
    meta1.bin    metadata slot 1 / "LWM1", generation, length, JSON, CRC-32C
    bank0.bin    firmware bank A image (exactly `size` bytes)
    bank1.bin    firmware bank B image
    bank0.hdr    bank A record: "LWB1", size, version, SHA-256, CRC-32C
    bank1.hdr    bank B record (empty file = bank empty or being written)
    events.bin   256 event records of 18 bytes, slot = index % 256

Why two metadata slots and not a rename: FAT on MicroPython has no atomic
rename over an existing file, and a power cut may land in the middle of any
write.  Writing always goes to the slot that does *not* hold the newest valid
copy, so the newest valid copy survives whatever happens to the write; the
loader takes the valid slot with the highest generation.  The same idea makes
the event log safe: a torn record fails its CRC and is skipped.

Every write goes through ``_write`` so tests can cut the power part-way
through any of them.
"""

import hashlib
import json
import os
import struct

try:
    from . import framing
except ImportError:  # flat layout on a board
    import framing  # type: ignore

crc32c = framing.crc32c

#: Factory config: 64x32 modules, 1/16 scan, 4x4 modules, rows, no rotation, 3840 Hz.
DEFAULT_CONFIG = (64, 32, 16, 4, 4, 0, 0, 3840)
DEFAULT_ADDRESS = 0xF0
DEFAULT_BRIGHTNESS = 0xFFFF
EVENT_SLOTS = 256

_META_MAGIC = b"LWM1"
_BANK_MAGIC = b"LWB1"
_BANK_FMT = "<4sIBBH32s"
_BANK_LEN = struct.calcsize(_BANK_FMT)
_EVENT_FMT = "<IIHI"
_EVENT_LEN = struct.calcsize(_EVENT_FMT)
_EVENT_REC = _EVENT_LEN + 4
_BLOCK = 4096


def valid_config(cfg):
    """True if a config tuple obeys the firmware's limits (docs/firmware.md)."""
    try:
        w, h, scan, mx, my, chain, rot, hz = cfg
    except (TypeError, ValueError):
        return False
    for v in cfg:
        if not isinstance(v, int):
            return False
    return (1 <= w <= 512 and 1 <= h <= 512 and scan in (1, 2, 4, 8, 16, 32)
            and h % scan == 0 and 1 <= mx <= 64 and 1 <= my <= 64
            and chain in (0, 1) and rot in (0, 2) and 30 <= hz <= 7680)


def default_meta(active=0):
    """Metadata a card falls back to when no slot is readable."""
    return {"addr": DEFAULT_ADDRESS, "bright": DEFAULT_BRIGHTNESS,
            "cfg": list(DEFAULT_CONFIG), "cfg_ok": False,
            "active": active, "trial": False, "boots": 0}


def _valid_meta(m):
    try:
        return (isinstance(m, dict) and 0 <= m["addr"] <= 0xFF
                and 0 <= m["bright"] <= 0xFFFF and valid_config(tuple(m["cfg"]))
                and m["active"] in (0, 1) and m["trial"] in (True, False)
                and 0 <= m["boots"] <= 255 and m["cfg_ok"] in (True, False))
    except (KeyError, TypeError):
        return False


def _makedirs(path):
    cur = ""
    for i, part in enumerate(path.split("/")):
        cur = part if i == 0 else cur + "/" + part
        if part:
            try:
                os.mkdir(cur)
            except OSError:
                pass


def default_image(version, hw_model):
    """Deterministic stand-in image for factory provisioning (2 KiB)."""
    line = "ledwarden card firmware %d.%d.%d for hw_model %d\n" % (
        version[0], version[1], version[2], hw_model)
    data = (line * (2048 // len(line) + 1)).encode()
    return data[:2048]


class Flash:
    """Persistent state of one card: identity, metadata, banks, event log."""

    def __init__(self, directory, load=True):
        # ``load=False`` is for provisioning, which writes the files ``load`` reads.  (Not
        # ``Flash.__new__``: MicroPython's classes have no ``__new__`` attribute.)
        self.dir = directory.rstrip("/") or "/"
        if load:
            self.load()

    # -- low level -------------------------------------------------------
    def _path(self, name):
        return self.dir + "/" + name

    def _write(self, name, data, offset=None):
        """The only way bytes reach flash: whole file (offset None) or in place."""
        if offset is None:
            with open(self._path(name), "wb") as f:
                f.write(data)
        else:
            with open(self._path(name), "r+b") as f:
                f.seek(offset)
                f.write(data)

    def _size(self, name):
        try:
            return os.stat(self._path(name))[6]
        except OSError:
            return -1

    def _read(self, name):
        try:
            with open(self._path(name), "rb") as f:
                return f.read()
        except OSError:
            return None

    # -- provisioning ------------------------------------------------------
    @staticmethod
    def provision(directory, serial, hw_model, version=(1, 0, 0), address=DEFAULT_ADDRESS,
                  config=None, image=None):
        """Factory programming; a no-op if the directory already holds a card."""
        directory = directory.rstrip("/") or "/"
        try:
            with open(directory + "/ident.json", "rb") as f:
                if json.loads(f.read().decode()).get("serial") is not None:
                    return
        except (OSError, ValueError):
            pass
        if config is None:
            config = DEFAULT_CONFIG
        if not valid_config(tuple(config)):
            raise ValueError("factory config %r breaks the firmware's limits" % (config,))
        if image is None:
            image = default_image(version, hw_model)
        image = bytes(image)
        _makedirs(directory)
        fl = Flash(directory, False)
        fl._write("bank0.bin", image)
        fl._write("bank1.bin", b"")
        fl._write("bank1.hdr", b"")
        fl.set_bank_info(0, len(image), version, hashlib.sha256(image).digest())
        fl._write("events.bin", bytes(EVENT_SLOTS * _EVENT_REC))
        meta = default_meta(0)
        meta["addr"] = address
        meta["cfg"] = list(config)
        meta["cfg_ok"] = True
        fl._write("meta1.bin", b"")
        fl._put_meta(0, 1, meta)
        fl._write("ident.json", json.dumps({"serial": serial, "hw_model": hw_model}).encode())

    # -- loading -----------------------------------------------------------
    def load(self):
        """Read everything from the files, as a card does at every boot."""
        raw = self._read("ident.json")
        try:
            ident = json.loads(raw.decode())
            self.serial = int(ident["serial"])
            self.hw_model = int(ident["hw_model"])
        except (AttributeError, TypeError, ValueError, KeyError):
            raise OSError("%s holds no provisioned card; call Flash.provision first" % self.dir)
        best = None
        for slot in (0, 1):
            got = self._get_meta(slot)
            if got is not None and (best is None or got[0] > best[0]):
                best = (got[0], slot, got[1])
        if best is None:
            self.gen, self.slot, self.meta, self.meta_valid = 0, 1, None, False
        else:
            self.gen, self.slot, self.meta = best
            self.meta_valid = True
        self._load_events()

    def _get_meta(self, slot):
        raw = self._read("meta%d.bin" % slot)
        if not raw or len(raw) < 14 or raw[:4] != _META_MAGIC:
            return None
        gen, n = struct.unpack_from("<IH", raw, 4)
        if len(raw) != 10 + n + 4 or crc32c(raw[:-4]) != struct.unpack_from("<I", raw, len(raw) - 4)[0]:
            return None
        try:
            meta = json.loads(raw[10:10 + n].decode())
        except ValueError:
            return None
        if not _valid_meta(meta):
            return None
        return gen, meta

    def _put_meta(self, slot, gen, meta):
        body = json.dumps(meta).encode()
        blob = _META_MAGIC + struct.pack("<IH", gen, len(body)) + body
        self._write("meta%d.bin" % slot, blob + struct.pack("<I", crc32c(blob)))

    def save_meta(self, meta):
        """Persist ``meta`` into the slot not holding the newest valid copy."""
        slot = 1 - self.slot
        self._put_meta(slot, self.gen + 1, meta)
        self.gen += 1
        self.slot = slot
        self.meta = meta
        self.meta_valid = True

    # -- banks -------------------------------------------------------------
    def bank_info(self, bank):
        """``(size, (major, minor, patch), sha256)`` recorded for a bank, or None."""
        raw = self._read("bank%d.hdr" % bank)
        if not raw or len(raw) != _BANK_LEN + 4:
            return None
        if crc32c(raw[:_BANK_LEN]) != struct.unpack_from("<I", raw, _BANK_LEN)[0]:
            return None
        magic, size, major, minor, patch, sha = struct.unpack_from(_BANK_FMT, raw, 0)
        if magic != _BANK_MAGIC:
            return None
        return size, (major, minor, patch), sha

    def set_bank_info(self, bank, size, version, sha):
        blob = struct.pack(_BANK_FMT, _BANK_MAGIC, size, version[0], version[1], version[2], sha)
        self._write("bank%d.hdr" % bank, blob + struct.pack("<I", crc32c(blob)))

    def clear_bank_info(self, bank):
        if self._read("bank%d.hdr" % bank):
            self._write("bank%d.hdr" % bank, b"")

    def bank_erase_range(self, bank, offset, length):
        """Erase ``length`` bytes of a bank from ``offset`` (0xFF, as erased NOR flash reads).

        Erases go in order from offset 0, which starts the bank afresh, so
        the bank ends exactly as long as the image it will hold.
        """
        name = "bank%d.bin" % bank
        if offset == 0:
            self._write(name, b"")
        block = b"\xff" * _BLOCK
        end = offset + length
        while offset < end:
            n = min(_BLOCK, end - offset)
            self._write(name, block if n == _BLOCK else block[:n], offset)
            offset += n

    def bank_write(self, bank, offset, data):
        self._write("bank%d.bin" % bank, data, offset)

    def bank_sha256(self, bank, size):
        """SHA-256 of the first ``size`` bytes of a bank; None if it is shorter."""
        h = hashlib.sha256()
        left = size
        try:
            with open(self._path("bank%d.bin" % bank), "rb") as f:
                while left:
                    piece = f.read(min(_BLOCK, left))
                    if not piece:
                        return None
                    h.update(piece)
                    left -= len(piece)
        except OSError:
            return None
        return h.digest()

    def bank_ok(self, bank):
        """True if the bank has a record and its bytes hash to the recorded SHA-256."""
        info = self.bank_info(bank)
        return info is not None and self.bank_sha256(bank, info[0]) == info[2]

    # -- event log ---------------------------------------------------------
    def _load_events(self):
        self.events = {}
        self.next_event = 0
        raw = self._read("events.bin") or b""
        for slot in range(min(EVENT_SLOTS, len(raw) // _EVENT_REC)):
            off = slot * _EVENT_REC
            rec = raw[off:off + _EVENT_LEN]
            if crc32c(rec) != struct.unpack_from("<I", raw, off + _EVENT_LEN)[0]:
                continue
            ev = struct.unpack(_EVENT_FMT, rec)
            if ev[0] % EVENT_SLOTS != slot:
                continue
            self.events[slot] = ev
            if ev[0] >= self.next_event:
                self.next_event = ev[0] + 1

    def log_event(self, uptime_s, code, arg):
        """Append one event; returns its index (indexes increase forever)."""
        index = self.next_event
        rec = struct.pack(_EVENT_FMT, index, uptime_s & 0xFFFFFFFF, code, arg & 0xFFFFFFFF)
        if self._size("events.bin") < EVENT_SLOTS * _EVENT_REC:
            self._write("events.bin", bytes(EVENT_SLOTS * _EVENT_REC))
            self.events = {}
        slot = index % EVENT_SLOTS
        self.next_event = index + 1
        self._write("events.bin", rec + struct.pack("<I", crc32c(rec)), slot * _EVENT_REC)
        self.events[slot] = struct.unpack(_EVENT_FMT, rec)
        return index

    def events_from(self, first, limit):
        """Up to ``limit`` events ``(index, uptime_s, code, arg)`` with index >= first, oldest first."""
        found = [ev for ev in self.events.values() if ev[0] >= first]
        found.sort()
        return found[:limit]
