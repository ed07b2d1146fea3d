"""Real-board entry: UART loop, RS-485 driver enable, watchdog, platform.

This is the only firmware module that imports ``machine``; everything else
is plain Python so the simulator can run it on CPython.  Pin numbers, the
UART id and the sensor wiring below are those of the reference card
(docs/firmware.md); a board variant changes ``BoardConfig`` only.

Why the loop looks the way it does:

- ``uart.read()`` is non-blocking with a short ``timeout``, so the loop also
  polls sensors every 100 ms, takes the next step of any background flash
  work (``card.service()``: a bank erase goes block by block while the chip
  works) and feeds the watchdog on every turn; a firmware that hangs stops
  feeding it and the card resets with reason 2 (watchdog), which the
  trial-boot rule turns into a rollback after three tries;
- the driver-enable pin goes high only while an answer is on the wire and
  drops as soon as the last stop bit left, because on a half-duplex bus the
  master's next request may follow within microseconds;
- a reboot is ``machine.reset()``: the bootloader picks the bank the card
  recorded in flash, exactly as ``Card.boot`` does in the simulator.
"""

import time

import machine

try:
    from . import card as _card
    from . import flash as _flash
except ImportError:  # flat layout on the board's filesystem
    import card as _card  # type: ignore
    import flash as _flash  # type: ignore


class BoardConfig:
    uart_id = 1
    baudrate = 921600
    tx_pin = 4
    rx_pin = 5
    de_pin = 6
    fan_tach_pin = 7
    fan_present_pin = 8
    temp_adc_pin = 26
    supply_adc_pin = 27
    link_pins = ()  # one input per module connector on boards that have them
    flash_dir = "/lw"
    watchdog_ms = 2000
    poll_ms = 100


class Board:
    """The platform interface of ``Card`` over real peripherals."""

    def __init__(self, cfg):
        self.cfg = cfg
        self._ticks = time.ticks_ms()
        self._millis = 0
        self._temp = machine.ADC(machine.Pin(cfg.temp_adc_pin))
        self._supply = machine.ADC(machine.Pin(cfg.supply_adc_pin))
        self._fan_present = machine.Pin(cfg.fan_present_pin, machine.Pin.IN, machine.Pin.PULL_UP)
        self._tach = machine.Pin(cfg.fan_tach_pin, machine.Pin.IN, machine.Pin.PULL_UP)
        self._pulses = 0
        self._tach_since = self.millis()
        self._rpm = 0
        self._tach.irq(trigger=machine.Pin.IRQ_FALLING, handler=self._tach_irq)
        self._links = [machine.Pin(p, machine.Pin.IN) for p in cfg.link_pins]

    def _tach_irq(self, pin):
        self._pulses += 1

    def millis(self):
        """Monotonic milliseconds; ticks_ms wraps, so accumulate differences."""
        now = time.ticks_ms()
        self._millis += time.ticks_diff(now, self._ticks)
        self._ticks = now
        return self._millis

    def sensors(self):
        # Temperature: an analog sensor with 10 mV/C and 500 mV at 0 C on a 3.3 V ADC.
        mv_t = self._temp.read_u16() * 3300 // 65535
        temp_dc = (mv_t - 500)
        # Supply: 5 V rail through a 1:2 divider.
        supply = self._supply.read_u16() * 3300 * 2 // 65535
        now = self.millis()
        span = now - self._tach_since
        if span >= 1000:
            # Two tach pulses per revolution.
            self._rpm = self._pulses * 30000 // span
            self._pulses = 0
            self._tach_since = now
        fitted = self._fan_present.value() == 0
        return temp_dc, supply, self._rpm if fitted else 0, fitted

    def module_link_ok(self, module_index):
        if module_index < len(self._links):
            return self._links[module_index].value() == 1
        return True  # no link sense wired for that connector

    def detect_leds(self, module_index, width, height):
        # The driver ICs' open/short registers are read over the module chain;
        # the reference card has no such read-back wired, so nothing is found.
        return []

    def show(self, pattern, level, brightness):
        # Handed to the display pipeline (outside this firmware's scope).
        pass

    def output(self):
        # GET_OUTPUT: the reference card's display pipeline (outside this firmware) gives the
        # MCU no frame counters and no LED current sensor is wired, so the card answers
        # UNKNOWN_COMMAND, as the spec asks of a card without the command.
        return None

    def flash_ready(self):
        # The reference card keeps its banks in files: a write returns when the flash is done.
        return True

    def flash_started(self, op, nbytes):
        pass  # on silicon the work takes its real time

    def booted(self, bank, version):
        print("ledwarden card: bank %d, firmware %d.%d.%d" % (bank, version[0], version[1], version[2]))


def _reset_reason():
    cause = machine.reset_cause()
    if cause == getattr(machine, "WDT_RESET", -1):
        return 2
    if cause == getattr(machine, "SOFT_RESET", -1):
        return 1
    return 0


def _transmit(uart, de, frame):
    de.value(1)
    uart.write(frame)
    if hasattr(uart, "flush"):
        uart.flush()  # returns once the last byte left the shift register
    else:
        while not uart.txdone():
            pass
    de.value(0)


def main(cfg=BoardConfig):
    reason = _reset_reason()
    wdt = machine.WDT(timeout=cfg.watchdog_ms)
    uart = machine.UART(cfg.uart_id, baudrate=cfg.baudrate, bits=8, parity=None, stop=1,
                        tx=machine.Pin(cfg.tx_pin), rx=machine.Pin(cfg.rx_pin),
                        timeout=2, rxbuf=2048)
    de = machine.Pin(cfg.de_pin, machine.Pin.OUT, value=0)
    board = Board(cfg)
    try:
        store = _flash.Flash(cfg.flash_dir)
    except OSError:
        # Unprovisioned board: identity from the MCU's unique id, factory defaults.
        uid = machine.unique_id()
        serial = 0
        for b in uid[-8:]:
            serial = (serial << 8) | b
        _flash.Flash.provision(cfg.flash_dir, serial, 1)
        store = _flash.Flash(cfg.flash_dir)
    card = _card.Card(store, board)
    card.boot(reason)
    next_poll = board.millis()
    while True:
        data = uart.read()
        if data:
            for frame in card.receive(data):
                _transmit(uart, de, frame)
            if card.reboot_requested:
                time.sleep_ms(2)
                machine.reset()
        card.service()
        now = board.millis()
        if now >= next_poll:
            card.poll()
            next_poll = now + cfg.poll_ms
        wdt.feed()


if __name__ == "__main__":
    main()
