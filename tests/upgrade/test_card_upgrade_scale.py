"""The issue's targets, on the simulated bus at 921 600 baud with wire time modelled.

1. 64 cards with a 256 KiB image finish in at most 1.5 times the time one card
   takes alone.  Asserted on **modelled time** (:class:`card_cases.ModelledTime`:
   the line time the simulator models, plus the broadcast gaps and the answer
   windows the master must wait out), best of three runs each, not on wall
   time: this machine is shared, and under load the Python overhead of ~650
   unicast transactions (64 × check, begin, status, boot, health, confirm)
   stretched the 64-card wall time from 5.0 s to 7.6 s between two runs of the
   same code while the modelled time moved by 3 %.  Only a simulator starved
   of CPU outright (a load average of 168 was seen) moves the modelled time
   too — answers come late, the master times out and retries — and the best
   of three runs sees past such a stall, while a real regression (chunks sent
   card by card, say) slows all three.  Wall times are printed beside it.
2. At a bit error rate of 1e-5, all 64 cards end on the new version, and every
   card keeps two working banks: the new one it runs and the old one beneath.
3. With the cards' flash chip on its datasheet times (:mod:`hw.sim.nor`) and
   their CPU as MicroPython on an RP2040 (:mod:`hw.sim.cardcpu`), every answer
   leaves within the spec's deadline for its command, no card's main loop is
   held up anywhere near its 2 s watchdog, and no card's receive buffer
   overflows: the simulator counts all three on every exchange.

``python3 dev.py test -k card_upgrade_scale -s`` prints the figures quoted in
docs/card-upgrades.md.
"""

from __future__ import annotations

import pytest

from card_cases import ModelledTime, firmware, run, states
from controller.protocol import commands as c
from hw.sim.bus import WATCHDOG_S
from hw.sim.faults import FaultPlan
from hw.sim.server import Simulator

SIZE = 256 * 1024


def measure(cards: int, plan: FaultPlan | None = None, seed: int = 7) -> dict:
    fw = firmware(SIZE)
    with Simulator(cards, tcp=("127.0.0.1", 0), plan=plan, seed=seed) as sim:
        clock = ModelledTime(sim)
        report, wall = run(sim, fw, range(1, cards + 1), trace=clock, boot_timeout_s=30.0)
        line = sim.bus.line_stats()
        banks = [(k.card.version, k.card.active_bank, k.card.on_trial,
                  k.card.flash.bank_ok(k.card.active_bank),
                  k.card.flash.bank_ok(1 - k.card.active_bank),
                  k.card.flash.bank_info(1 - k.card.active_bank)[1])
                 for k in sim.cards]
    return {"report": report, "wall": wall, "modelled": clock.seconds, "late": clock.late,
            "per_card": (line["bytes_down"] + line["bytes_up"]) / cards, "line": line,
            "banks": banks, "delays": dict(sim.bus.answer_delay_s)}


def assert_card_timing_kept(m: dict) -> None:
    """No answer after its deadline, no main loop held near the watchdog, no overrun.

    An answer can only be late in the model if the simulator itself fell behind (this
    machine starved it of CPU: the master saw an answer after its window and retried, and the
    retry met a card still busy with the first try), so misses are allowed only up to the
    late answers the master counted.  (Retries that piled up unread while the simulator lagged
    arrive as one read; the bus leaves those out of its count: ``SimBus.bursts``.)
    """
    line = m["line"]
    misses = sum(line["deadline_misses"].values())
    assert misses <= m["late"], (line["deadline_misses"], m["delays"])
    assert line["longest_hold_s"] < WATCHDOG_S / 2
    assert line["rx_overruns"] == 0


def best_of(runs: int, cards: int) -> dict:
    return min((measure(cards) for _ in range(runs)), key=lambda m: m["modelled"])


def describe(label: str, m: dict) -> str:
    r = m["report"]
    delays = ", ".join(f"{c.Cmd(cmd).name} {s * 1000:.2f}" for cmd, s in sorted(m["delays"].items()))
    return (f"{label}: modelled {m['modelled']:.2f} s, wall {m['wall']:.2f} s, "
            f"{m['per_card']:.0f} bytes on the wire per card, {r.broadcast_chunks} chunk "
            f"broadcasts, {r.unicast_chunks} unicast repairs, {r.rounds} repair rounds, "
            f"{m['line']['flipped_bits']} bits flipped, {m['late']} late answers; longest "
            f"answer delay per command (ms): {delays}; longest main-loop hold "
            f"{m['line']['longest_hold_s'] * 1000:.1f} ms; deadline misses "
            f"{m['line']['deadline_misses'] or 0}; receive overruns {m['line']['rx_overruns']}; "
            f"retry bursts (simulator lag) {m['line']['bursts']}")


@pytest.mark.slow
def test_sixty_four_cards_take_at_most_one_and_a_half_times_one_card(capsys):
    one = best_of(3, 1)
    many = best_of(3, 64)
    ratio = many["modelled"] / one["modelled"]
    with capsys.disabled():
        print(f"\n{describe('1 card  ', one)}\n{describe('64 cards', many)}\n"
              f"ratio {ratio:.2f} modelled, {many['wall'] / one['wall']:.2f} wall")
    for m in (one, many):
        assert m["report"].result == "succeeded"
        assert set(states(m["report"]).values()) == {"installed"}
        assert_card_timing_kept(m)
    assert one["modelled"] > SIZE * 10 / 921_600     # the image's own wire time is in it
    assert one["modelled"] <= one["wall"] and many["modelled"] <= many["wall"]
    assert ratio <= 1.5


@pytest.mark.slow
def test_sixty_four_cards_at_ber_1e5_all_end_on_the_new_version_with_two_working_banks(capsys):
    m = measure(64, FaultPlan(ber=1e-5), seed=2026)
    with capsys.disabled():
        print(f"\n{describe('64 cards at BER 1e-5', m)}")
    assert m["line"]["flipped_bits"] > 10            # the noise was there
    assert m["report"].result == "succeeded"
    assert_card_timing_kept(m)
    assert set(states(m["report"]).values()) == {"installed"}
    for version, bank, trial, active_ok, other_ok, other_version in m["banks"]:
        assert (version, bank, trial) == ((2, 0, 0), 1, False)
        assert active_ok and other_ok and other_version == (1, 0, 0)
