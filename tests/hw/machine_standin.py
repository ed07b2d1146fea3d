"""A stand-in ``machine`` module, so the card's ``main.py`` runs off the board.

Copied as ``machine.py`` beside the firmware for MicroPython, and installed as
``sys.modules["machine"]`` on CPython, it gives ``main()`` what an RP2040
board's MicroPython gives it — ``UART``, ``Pin``, ``ADC``, ``WDT``,
``unique_id``, ``reset_cause``, ``reset`` — over a simulated clock:

- the UART plays a script of ``(at_ms, bytes)``: ``read()`` returns what has
  arrived by now, or waits out its read timeout; when the script is spent
  (and the last answer is out) it raises ``ScriptDone``, which ends ``main()``;
- everything the UART writes is logged with the driver-enable pin's level at
  that moment, and every level change of that pin is logged too;
- the watchdog raises ``WatchdogExpired`` if it is fed later than its timeout
  on the simulated clock, and logs every feed;
- ``reset()`` raises ``Reset`` (the board would restart); the driver then
  calls ``main()`` again with ``reset_cause()`` saying why.

``clock`` (``ticks_ms``, ``ticks_diff``, ``sleep_ms``) is what ``main.py``'s
``time`` is replaced with, so waiting and reading move the same clock.
It uses only what MicroPython and CPython both have.
"""


class ScriptDone(Exception):
    """The UART script is spent: the test run of ``main()`` is over."""


class Reset(Exception):
    """``machine.reset()`` was called."""


class WatchdogExpired(Exception):
    """The watchdog was not fed in time: on a board, the card would reset."""


PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET = 1, 2, 3, 4, 5

script = []        # [(at_ms, bytes)] still to arrive on the UART
log = []           # what happened, one line each
sensors = {26: 0, 27: 0}   # ADC pin -> read_u16 value
cause = PWRON_RESET
uid = b"\xe6\x61\x41\x04\x03\x2f\x27\x2a"
de_pin = 6         # which pin is the transceiver's driver enable (the board config's)
_now = [0]
_pins = {}
_watchdog = []


class _Clock:
    """``ticks_ms``/``ticks_diff``/``sleep_ms`` on the simulated clock (ms, no wrap)."""

    def ticks_ms(self):
        return _now[0]

    def ticks_diff(self, a, b):
        return a - b

    def sleep_ms(self, ms):
        _now[0] += ms


clock = _Clock()


def advance(ms):
    _now[0] += ms


def reset_cause():
    return cause


def unique_id():
    return uid


def reset():
    log.append("%d reset" % _now[0])
    raise Reset()


class Pin:
    IN, OUT = 0, 1
    PULL_UP, PULL_DOWN = 1, 2
    IRQ_FALLING, IRQ_RISING = 4, 8

    def __init__(self, number, mode=-1, pull=-1, value=None):
        self.number = number
        self.mode = mode
        self._value = 1 if pull == Pin.PULL_UP else 0
        if value is not None:
            self._value = value
        _pins[number] = self

    def value(self, v=None):
        if v is None:
            return self._value
        if v != self._value:
            log.append("%d pin %d %d" % (_now[0], self.number, v))
        self._value = v
        return None

    def irq(self, trigger=0, handler=None):
        self.handler = handler


class ADC:
    def __init__(self, pin):
        self.pin = pin.number

    def read_u16(self):
        return sensors.get(self.pin, 0)


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.fed = _now[0]
        self.longest = 0
        _watchdog[:] = [self]
        log.append("%d watchdog %d" % (_now[0], timeout))

    def check(self):
        if _now[0] - self.fed > self.timeout:
            raise WatchdogExpired("not fed for %d ms" % (_now[0] - self.fed))

    def feed(self):
        self.check()
        self.longest = max(self.longest, _now[0] - self.fed)
        self.fed = _now[0]


class UART:
    def __init__(self, id, baudrate=115200, bits=8, parity=None, stop=1, tx=None, rx=None,
                 timeout=0, rxbuf=256):
        self.timeout = timeout
        self.byte_ms = 10000 / baudrate / 1000   # ms per byte, 8N1
        self.de = None
        log.append("%d uart %d %d" % (_now[0], id, baudrate))

    def read(self, nbytes=-1):
        for w in _watchdog:
            w.check()
        if not script:
            raise ScriptDone()
        at, data = script[0]
        if at > _now[0]:
            _now[0] = min(at, _now[0] + self.timeout)   # wait out the read timeout
            if at > _now[0]:
                return None
        script.pop(0)
        return data

    def write(self, data):
        de = _pins.get(de_pin)
        log.append("%d tx de=%d %s" % (_now[0], de.value() if de else -1,
                                       "".join(["%02x" % b for b in data])))
        _now[0] += int(len(data) * self.byte_ms) + 1
        return len(data)

    def flush(self):
        pass
