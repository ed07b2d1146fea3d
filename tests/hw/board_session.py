"""Run the card's board entry, ``main.main()``, on the stand-in ``machine``; both interpreters.

``test_firmware_main.py`` writes ``uart.txt`` (one ``AT_MS HEX`` line per
burst of bytes the UART receives) and runs this under MicroPython and on
CPython.  ``main()`` runs until the script is spent; a ``machine.reset()``
restarts it the way a board restarts (RAM gone, flash kept, ``reset_cause``
saying why).  The transcript is the stand-in's log: UART traffic with the
driver-enable level, pin changes, resets, and at the end the longest time
the watchdog went unfed.
"""

try:
    from hw.firmware import main as _main   # CPython: the test installed the stand-in first
except ImportError:  # MicroPython: flat layout, the stand-in is machine.py beside main.py
    import main as _main  # type: ignore
import machine

#: Sensor ADC readings: 25.0 C (750 mV on a 10 mV/C sensor with 500 mV at 0 C) and 5.0 V
#: (2.5 V behind the 1:2 divider), as read_u16 values of a 3.3 V ADC.
TEMP_U16 = 750 * 65535 // 3300
SUPPLY_U16 = 2500 * 65535 // 3300


def run(uart_path, out_path, flash_dir):
    machine.script = []
    with open(uart_path) as f:
        for line in f:
            words = line.split()
            if words:
                machine.script.append((int(words[0]), bytes([int(words[1][i:i + 2], 16)
                                                              for i in range(0, len(words[1]), 2)])))

    class Config(_main.BoardConfig):
        pass

    Config.flash_dir = flash_dir
    machine.de_pin = Config.de_pin
    machine.sensors = {Config.temp_adc_pin: TEMP_U16, Config.supply_adc_pin: SUPPLY_U16}
    _main.time = machine.clock   # main.py's clock is the stand-in's
    longest = 0
    while True:
        try:
            _main.main(Config)
        except machine.Reset:
            machine.cause = machine.SOFT_RESET
        except machine.ScriptDone:
            break
        finally:
            for w in machine._watchdog:
                longest = max(longest, w.longest)
    machine.log.append("longest unfed %d" % longest)
    with open(out_path, "w") as out:
        out.write("\n".join(machine.log) + "\n")


def main():
    """Entry point under MicroPython (tests/support/micropython/run.mjs), in /board."""
    run("/board/uart.txt", "/board/out/transcript.txt", "/board/lw")
