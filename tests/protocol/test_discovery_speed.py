"""Discovery of a sparse bus is quick and still right on a noisy line (issue 15 item 4).

Eight cards among 240 addresses: the silent 232 dominate, so each gets one
try unless the line showed noise (see ``controller.protocol.cards.Scan``).
"""

from __future__ import annotations

from collections import Counter

from controller.protocol import cards as ops
from controller.protocol import commands as c
from controller.protocol.bus import Bus
from hw.sim.faults import FaultPlan
from hw.sim.server import Simulator


def pings_per_address(bus_url: str, **kw) -> tuple[ops.Discovery, Counter]:
    """Discovery, and the PINGs sent to each address (under ``"late"``: answers that came after
    their window)."""
    tries: Counter = Counter()

    def trace(kind, item, when):
        if kind == "tx" and item.cmd == c.Cmd.PING:
            tries[item.dst] += 1
        elif kind == "late":
            tries["late"] += 1
    with Bus(bus_url, trace=trace) as bus:
        return ops.discover(bus, **kw), tries


def test_a_clean_sparse_bus_costs_one_try_per_silent_address():
    """One try each, unless an answer came late: then some address may have been silent only
    for being late (a loaded host stalls the simulator), and every silent one gets its retry."""
    with Simulator(8, tcp=("127.0.0.1", 0)) as sim:
        found, tries = pings_per_address(sim.url)
    assert [k.address for k in found.cards] == list(range(1, 9)) and not found.garbled
    silent = [a for a in ops.ALL_ADDRESSES if a > 8]
    assert {tries[a] for a in silent} == ({2} if tries["late"] else {1})


def test_a_noisy_line_still_finds_every_card():
    """Three tries per address (``--retries-scan 2``), as on a line this noisy, find every card
    every time: the fast first pass must not cost a card its retries."""
    with Simulator(8, tcp=("127.0.0.1", 0), plan=FaultPlan(ber=1e-4), seed=15) as sim:
        for _ in range(6):
            found, _ = pings_per_address(sim.url, addresses=range(1, 61), retries=2)
            assert [k.address for k in found.cards] == list(range(1, 9))


def test_noise_on_the_line_gives_the_silent_addresses_their_retries():
    with Simulator(8, tcp=("127.0.0.1", 0), plan=FaultPlan(ber=3e-3), seed=15) as sim:
        _, tries = pings_per_address(sim.url, addresses=range(1, 31))
    assert all(tries[a] == 2 for a in range(9, 31))
