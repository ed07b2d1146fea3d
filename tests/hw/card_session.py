"""Drive one card through a scripted session; runs unchanged on MicroPython and CPython.

The test (``test_firmware_on_micropython.py``) writes the session as text,
one step a line, runs this module under real MicroPython (from the flat
layout a card's filesystem has) and on CPython (through the ``hw.firmware``
package, as the simulator imports it), and compares the two transcripts
byte for byte.  So this file may use only what both interpreters have: no
f-strings with conversions, no ``bytes.hex``/``fromhex`` (``binascii``
instead), no CPython-only modules.

Steps (arguments are integers unless said otherwise)::

    provision SERIAL HW_MODEL ADDRESS   factory-program the card's flash
    power                               power on: a new Flash and Card, boot(0)
    boot REASON                         reboot the same Card (1 commanded, 2 watchdog)
    rx HEX [LABEL [PIECE]]              bytes heard on the bus (in PIECE-byte reads, as a
                                        UART delivers them); logs what the card sends
    poll                                the ~100 ms housekeeping call
    service                             the main loop's background flash work
    clock MS                            let MS milliseconds pass
    sense TEMP MV RPM FITTED            sensor readings (0.1 C, mV, rpm, 0/1)
    link MODULE OK                      a module's data link up (1) or down (0)
    dead MODULE X Y CHANNEL             an LED the driver ICs report as faulty
    flash_fails 0|1                     every flash write raises OSError while 1
    output MA SHOWN DROPPED             what the display side reports (MA -1: no current
                                        sensor); ``output none``: it reports nothing
    state                               logs the card's RAM view of itself

Every ``rx`` logs ``tx`` and the hex of each frame sent (or ``-``); every
step that raises logs ``raised`` and the exception's type, which the test
treats as a failure.  The CPU time of each ``rx`` goes to a second file,
``cpu.txt``, since it differs between runs and interpreters.
"""

import binascii
import time

try:
    from hw.firmware import card as _card
    from hw.firmware import flash as _flash
except ImportError:  # MicroPython: the firmware's modules lie flat beside this one
    import card as _card  # type: ignore
    import flash as _flash  # type: ignore


class SessionHw:
    """The card's platform with a settable clock and readings, and a log of what it was told."""

    def __init__(self):
        self.now = 1000
        self.temp, self.mv, self.rpm, self.fitted = 250, 5000, 3000, True
        self.down = []
        self.dead = {}
        self.log = []
        self.flash_free_at = 0
        self.out = None  # (mA or None, shown, dropped), or None: no GET_OUTPUT on this board

    def millis(self):
        return self.now

    def sensors(self):
        return self.temp, self.mv, self.rpm, self.fitted

    def module_link_ok(self, module_index):
        return module_index not in self.down

    def detect_leds(self, module_index, width, height):
        return list(self.dead.get(module_index, ()))

    def show(self, pattern, level, brightness):
        self.log.append("show %d %d %d" % (pattern, level, brightness))

    def output(self):
        return self.out

    def flash_ready(self):
        return self.now >= self.flash_free_at

    def flash_started(self, op, nbytes):
        # A chip that takes 1 ms per KiB for anything, so a session sees erases in progress.
        self.flash_free_at = self.now + (nbytes + 1023) // 1024
        self.log.append("flash %s %d" % (op, nbytes))

    def booted(self, bank, version):
        self.log.append("booted %d %d.%d.%d" % (bank, version[0], version[1], version[2]))


class SessionFlash(_flash.Flash):
    """The card's flash, with writes that fail on demand (the ``STORAGE`` error)."""

    failing = False

    def _write(self, name, data, offset=None):
        if SessionFlash.failing:
            raise OSError(5)
        _flash.Flash._write(self, name, data, offset)


def _state(card):
    return "state addr=%d ver=%d.%d.%d bank=%d trial=%d reboot=%d ok=%d bad=%d bright=%d pat=%d cfg=%s" % (
        card.address, card.version[0], card.version[1], card.version[2], card.active_bank,
        int(card.on_trial), int(card.reboot_requested), card.rx_ok, card.rx_bad, card.brightness,
        card.pattern, ",".join([str(v) for v in card.config]))


def run(steps_path, out_dir, card_dir):
    """Run every step of ``steps_path``; the transcript goes to ``out_dir``/transcript.txt."""
    hw = SessionHw()
    card = None
    out = open(out_dir + "/transcript.txt", "w")
    cpu = open(out_dir + "/cpu.txt", "w")
    with open(steps_path) as steps:
        for number, line in enumerate(steps):
            words = line.split()
            if not words:
                continue
            op, args = words[0], words[1:]
            out.write("%d %s\n" % (number, op))
            try:
                if op == "provision":
                    _flash.Flash.provision(card_dir, int(args[0]), int(args[1]), address=int(args[2]))
                elif op == "power":
                    card = _card.Card(SessionFlash(card_dir), hw)
                    card.boot(0)
                elif op == "boot":
                    card.boot(int(args[0]))
                elif op == "rx":
                    data = binascii.unhexlify(args[0])
                    piece = int(args[2]) if len(args) > 2 else len(data)
                    began = time.ticks_us() if hasattr(time, "ticks_us") else 0
                    frames = []
                    for at in range(0, len(data), piece):
                        frames += card.receive(data[at:at + piece])
                    if hasattr(time, "ticks_us"):
                        cpu.write("%s %d %d\n" % (args[1] if len(args) > 1 else "-", len(data),
                                                  time.ticks_diff(time.ticks_us(), began)))
                    out.write("tx %s\n" % (" ".join([binascii.hexlify(f).decode() for f in frames]) or "-"))
                elif op == "poll":
                    card.poll()
                elif op == "service":
                    card.service()
                elif op == "clock":
                    hw.now += int(args[0])
                elif op == "sense":
                    hw.temp, hw.mv, hw.rpm, hw.fitted = int(args[0]), int(args[1]), int(args[2]), args[3] == "1"
                elif op == "link":
                    module = int(args[0])
                    hw.down = [m for m in hw.down if m != module] + ([] if args[1] == "1" else [module])
                elif op == "dead":
                    module = int(args[0])
                    hw.dead[module] = hw.dead.get(module, []) + [(int(args[1]), int(args[2]), int(args[3]))]
                elif op == "flash_fails":
                    SessionFlash.failing = args[0] == "1"
                elif op == "output":
                    if args[0] == "none":
                        hw.out = None
                    else:
                        ma = int(args[0])
                        hw.out = (None if ma < 0 else ma, int(args[1]), int(args[2]))
                elif op == "state":
                    out.write(_state(card) + "\n")
                else:
                    out.write("unknown step %s\n" % op)
            except Exception as e:  # noqa: BLE001 - the transcript names it; the test fails on it
                out.write("raised %s %s\n" % (type(e).__name__, e))
            for entry in hw.log:
                out.write(entry + "\n")
            hw.log = []
    out.close()
    cpu.close()


def main():
    """Entry point under MicroPython (tests/support/micropython/run.mjs), in /board."""
    run("/board/session.txt", "/board/out", "/board/card")
