"""The controller's state as Prometheus metrics (issue 17 item 3; ``docs/metrics.md``).

One custom collector reads the live state at scrape time — what the card
watch last heard, the bus's statistics snapshot, the frame loop's counters,
the current limiter, the fault log, the self-test history and the A/B slot
store — so there is no second bookkeeping to keep in step, and a scrape
never puts a transaction on the bus: a wall whose bus is busy with a
firmware upgrade still answers ``/metrics`` at once.

Names follow Prometheus' conventions: one ``ledwarden_`` prefix, base units
(``_celsius``, ``_volts``, ``_amperes``, ``_seconds``), ``_total`` for
counters, ``_info`` for versions, timestamps rather than ages (an age is
stale the moment it is scraped; ``time() - x`` is exact in a query).  A
cabinet is labelled by its bus address in decimal (``cabinet="5"``), the way
fault texts and reports name it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily,
                                    Metric, SummaryMetricFamily)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from controller.percentile import percentile
from controller.protocol import commands as c
from controller.selftest.model import OUTCOMES
from controller.selftest.profiles import PROFILES
from controller.timeutil import epoch_of
from controller.upgrade.bundles.slots import SLOTS, SlotStore
from controller.version import software_version

if TYPE_CHECKING:
    from controller.service.state import Service

log = logging.getLogger("ledwarden.metrics")

PREFIX = "ledwarden_"
#: The quantiles the round-trip and frame-time summaries give, over their sliding windows.
QUANTILES = (0.5, 0.9, 0.99)
#: The status flags as words, the order the card's bit field has them.
FLAGS = [(f, (f.name or "").lower()) for f in c.StatusFlag if f.name]
#: The link counters of :class:`~controller.protocol.bus.LinkStats`: field, metric, help.
LINK_COUNTERS = (
    ("requests", "link_requests", "Transactions started with the cabinet's card."),
    ("retries", "link_retries", "Extra tries after a timeout."),
    ("timeouts", "link_timeouts", "Tries that got no matching answer in time."),
    ("failures", "link_failures", "Transactions that ran out of tries."),
    ("errors", "link_error_answers", "Error answers (RESP|ERR) from the card."),
    ("bad_frames", "link_bad_frames", "Frames the deframer dropped during this card's transactions."),
    ("late", "link_late_answers", "Well-formed answers that matched no outstanding request."),
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _g(name: str, doc: str, labels: Iterable[str] = (), unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, labels=list(labels), unit=unit)


def _c(name: str, doc: str, labels: Iterable[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, doc, labels=list(labels))


class ControllerCollector(Collector):
    """Yields every ``ledwarden_*`` family from the service's live state at each scrape.

    A part that is not wired (no frame loop with ``--no-frames``, no watch
    with ``--watch-interval 0``, no ``[power]`` in the screen file) yields
    its families without samples, so a dashboard shows "no data" rather than
    a made-up zero.
    """

    def __init__(self, service: Service) -> None:
        self.service = service
        self.slots = SlotStore(service.state_dir)
        #: (run id, {address: dead LEDs}) of the last self-test that ran LED detection: the
        #: report is parsed once per new run, not at every scrape.
        self._dead: tuple[int, dict[int, int]] | None = None

    def describe(self) -> list[Metric]:
        """Nothing: registering must not read the state (it may not be open yet)."""
        return []

    def collect(self) -> Iterator[Metric]:
        yield from self._cabinets()
        yield from self._power()
        yield from self._links()
        yield from self._frame_loop()
        yield from self._selftest()
        yield from self._faults()
        yield from self._upgrade()

    # ------------------------------------------------------------------ cabinets (the watch)

    def _cabinets(self) -> Iterator[Metric]:
        service = self.service
        watch = service.watch
        addresses = [cab.address for cab in service.layout.cabinets]
        up = _g("cabinet_up", "1 if the cabinet's card answered the watch's last poll, else 0 "
                "(absent while the watch is off).", ["cabinet"])
        heard = _g("cabinet_last_answer_timestamp_seconds",
                   "When the cabinet's card last answered the watch (Unix time).", ["cabinet"])
        temp = _g("cabinet_temperature_celsius", "The card's temperature at the last poll.",
                  ["cabinet"])
        supply = _g("cabinet_supply_volts", "The card's supply voltage at the last poll.",
                    ["cabinet"])
        fan = _g("cabinet_fan_rpm", "The cabinet fan's speed at the last poll (0: stopped).",
                 ["cabinet"])
        flag = _g("cabinet_status_flag", "1 if the card's status flag is set at the last poll.",
                  ["cabinet", "flag"])
        rx = _c("cabinet_received_frames", "Bus frames the card received, good and bad "
                "(the card's own counters; reset when it reboots).", ["cabinet", "result"])
        if watch is not None:
            for address in addresses:
                label = str(address)
                up.add_metric([label], 1.0 if address in watch.answered else 0.0)
                if address in watch.answered:
                    heard.add_metric([label], watch.answered[address])
                status = watch.last_status.get(address)
                if status is None:
                    continue
                temp.add_metric([label], status.temperature_c)
                supply.add_metric([label], status.supply_mv / 1000)
                fan.add_metric([label], float(status.fan_rpm))
                for f, name in FLAGS:
                    flag.add_metric([label, name], 1.0 if status.status & f else 0.0)
                rx.add_metric([label, "ok"], float(status.rx_ok))
                rx.add_metric([label, "bad"], float(status.rx_bad))
        yield from (up, heard, temp, supply, fan, flag, rx)
        yield self._dead_leds()
        yield from self._cards_info()

    def _dead_leds(self) -> Metric:
        dead = _g("cabinet_dead_leds", "Dead LED channels the last self-test with LED detection "
                  "found in the cabinet.", ["cabinet"])
        for address, count in self._dead_counts().items():
            dead.add_metric([str(address)], float(count))
        return dead

    def _dead_counts(self) -> dict[int, int]:
        history = self.service.history
        runs = [run for name, p in PROFILES.items() if p.detect for run in history.runs(1, name)]
        if not runs:
            return {}
        newest = max(run["id"] for run in runs)
        if self._dead is None or self._dead[0] != newest:
            report = history.report(newest)
            counts = {cab["address"]: len(cab.get("dead_leds") or [])
                      for cab in report.get("cabinets", []) if "address" in cab}
            self._dead = (newest, counts)
        return self._dead[1]

    def _cards_info(self) -> Iterator[Metric]:
        info = InfoMetricFamily(PREFIX + "card", "The card a discovery or commissioning "
                                "identified in each cabinet.", labels=["cabinet"])
        for address, card in sorted(self.service.cards.items()):
            info.add_metric([str(address)], {k: str(card.get(k, "")) for k in
                                             ("serial", "model", "firmware", "bank")})
        yield info

    # ------------------------------------------------------------------ current (power, GET_OUTPUT)

    def _power(self) -> Iterator[Metric]:
        service = self.service
        measured = _g("cabinet_led_current_amperes", "The LEDs' current the card's own sensor "
                      "measured (GET_OUTPUT).", ["cabinet"])
        shown = _c("cabinet_frames_shown", "Video frames the card reports showing.", ["cabinet"])
        dropped = _c("cabinet_frames_dropped", "Video frames the card reports dropping.",
                     ["cabinet"])
        if service.output_watch is not None:
            for address, r in sorted(service.output_watch.readings.items()):
                if r.current_ma is not None:
                    measured.add_metric([str(address)], r.current_ma / 1000)
                if r.frames_shown is not None:
                    shown.add_metric([str(address)], float(r.frames_shown))
                if r.frames_dropped is not None:
                    dropped.add_metric([str(address)], float(r.frames_dropped))
        estimate = _g("cabinet_current_estimate_amperes", "The current limiter's estimate of "
                      "the cabinet's current (corrected by the card's reading when it reports "
                      "one).", ["cabinet"])
        budget = _g("cabinet_current_budget_amperes", "The cabinet's current budget.",
                    ["cabinet"])
        scale = _g("cabinet_current_scale_ratio", "The gain the limiter applies (1: none).",
                   ["cabinet"])
        limiting = _g("cabinet_current_limiting", "1 while the limiter dims the cabinet.",
                      ["cabinet"])
        if service.power is not None:
            for cab in service.power.status()["cabinets"]:
                label = [str(cab["address"])]
                estimate.add_metric(label, cab["estimate_a"])
                if cab["budget_a"] is not None:
                    budget.add_metric(label, cab["budget_a"])
                scale.add_metric(label, cab["scale"])
                limiting.add_metric(label, 1.0 if cab["limiting"] else 0.0)
        yield from (measured, shown, dropped, estimate, budget, scale, limiting)

    # ------------------------------------------------------------------ the bus

    def _links(self) -> Iterator[Metric]:
        stats = self.service.owner.statistics()
        counters = {name: _c(name, doc, ["cabinet"]) for _, name, doc in LINK_COUNTERS}
        rtt = _g("link_round_trip_seconds", "Round-trip time over the last 1000 transactions "
                 "with the card (a sliding window, hence a gauge per quantile).",
                 ["cabinet", "quantile"])
        for address, link in sorted(stats.links.items()):
            label = str(address)
            for field, name, _ in LINK_COUNTERS:
                counters[name].add_metric([label], float(getattr(link, field)))
            ordered = sorted(link.rtt_s)
            for q in QUANTILES:
                value = percentile(ordered, q)
                if value is not None:
                    rtt.add_metric([label, str(q)], value)
        yield from counters.values()
        yield rtt
        bus_dropped = _c("bus_dropped_frames", "Frames the deframer dropped, by reason.",
                         ["reason"])
        for reason, count in sorted(stats.dropped.items()):
            bus_dropped.add_metric([str(reason)], float(count))
        yield bus_dropped
        frames = _c("bus_frames", "Well-formed frames the deframer delivered.")
        frames.add_metric([], float(stats.frames))
        yield frames
        ops = _c("bus_operations", "Operations the service ran on the bus.")
        ops.add_metric([], float(stats.operations))
        yield ops

    # ------------------------------------------------------------------ the frame loop

    def _frame_loop(self) -> Iterator[Metric]:
        loop = self.service.frame_loop
        running = _g("frameloop_running", "1 while the frame loop runs.")
        fps = _g("frameloop_fps", "Frames finished in the last second.")
        target = _g("frameloop_target_fps", "The frame rate the loop aims at.")
        frames = _c("frameloop_frames", "Frames the loop finished.")
        overruns = _c("frameloop_overruns", "Frames that took longer than a frame period.")
        drops = _c("frameloop_source_dropped_frames", "Frames the live source dropped "
                   "because the loop had not taken the previous one.")
        frame_time = SummaryMetricFamily(PREFIX + "frameloop_frame_seconds",
                                         "Time to correct and send one frame (quantiles over "
                                         "the last 1000 frames).", labels=[])
        if loop is not None:
            stats = loop.stats()
            running.add_metric([], 1.0 if stats["running"] else 0.0)
            fps.add_metric([], float(stats["fps"]))
            target.add_metric([], float(stats["target_fps"]))
            frames.add_metric([], float(stats["frames"]))
            overruns.add_metric([], float(stats["overruns"]))
            source = stats["source_stats"]
            if "dropped" in source:
                drops.add_metric([], float(source["dropped"]))
            ordered = sorted(loop.times)
            frame_time.add_metric([], count_value=loop.frames, sum_value=loop.busy_s)
            for q in QUANTILES:
                value = percentile(ordered, q)
                if value is not None:
                    frame_time.samples.append(Sample(frame_time.name, {"quantile": str(q)}, value))
        yield from (running, fps, target, frames, overruns, drops, frame_time)

    # ------------------------------------------------------------------ self-tests

    def _selftest(self) -> Iterator[Metric]:
        when = _g("selftest_last_run_timestamp_seconds", "When the last self-test of each "
                  "profile started (Unix time); age is time() minus this.", ["profile"])
        outcome = _g("selftest_last_outcome", "1 for the outcome of each profile's last run, "
                     "0 for the others.", ["profile", "outcome"])
        history = self.service.history
        for name in PROFILES:
            runs = history.runs(1, name)
            if not runs:
                continue
            run = runs[0]
            try:
                when.add_metric([name], epoch_of(run["started"]))
            except ValueError as exc:
                log.warning("self-test run %s has an unreadable start time: %s", run["id"], exc)
            for o in OUTCOMES:
                outcome.add_metric([name, o], 1.0 if run["result"] == o else 0.0)
        yield from (when, outcome)

    # ------------------------------------------------------------------ faults

    def _faults(self) -> Iterator[Metric]:
        active = _g("faults_active", "Active faults in the fault log, by code and severity.",
                    ["code", "severity"])
        counts: dict[tuple[str, str], int] = {}
        for fault in self.service.faults.active():
            key = (fault.code, fault.severity)
            counts[key] = counts.get(key, 0) + 1
        for (code, severity), n in sorted(counts.items()):
            active.add_metric([code, severity], float(n))
        by_severity = _g("faults_active_by_severity", "Active faults by severity (every "
                         "severity, zeros included).", ["severity"])
        for severity, n in self.service.faults.counts()["by_severity"].items():
            by_severity.add_metric([severity], float(n))
        yield from (active, by_severity)

    # ------------------------------------------------------------------ upgrades

    def _upgrade(self) -> Iterator[Metric]:
        build = InfoMetricFamily(PREFIX + "build", "The controller software running now.")
        build.add_metric([], {"version": software_version()})
        yield build
        described = self.slots.describe()
        slot = InfoMetricFamily(PREFIX + "upgrade_slot", "Each A/B slot: its role (current, "
                                "trial, previous, rolled-back, inactive, empty) and version.",
                                labels=["slot"])
        for name in SLOTS:
            s = described["slots"][name]
            slot.add_metric([name], {"role": s["role"], "version": str(s["version"] or ""),
                                     "confirmed": "true" if s["confirmed"] else "false"})
        yield slot
        trial = _g("upgrade_trial", "1 while a controller upgrade runs on trial, waiting for "
                   "its health check to confirm it.")
        since = _g("upgrade_trial_since_timestamp_seconds", "When the running trial began.")
        t = described["trial"]
        trial.add_metric([], 1.0 if t else 0.0)
        # the installer stamps the trial's record "time" (slots.py's comment says "since")
        began = t and (t.get("time") or t.get("since"))
        if began:
            try:
                since.add_metric([], epoch_of(began))
            except ValueError:
                log.warning("the trial in state.json has an unreadable time %r", began)
        yield from (trial, since)
        problem = _g("upgrade_slot_state_problem", "1 if the slot store's state.json is "
                     "unreadable (the boot guard falls back to a confirmed slot).")
        problem.add_metric([], 1.0 if described["problem"] else 0.0)
        yield problem


def registry_for(service: Service) -> CollectorRegistry:
    """A registry holding only the controller's collector: no process or platform collectors,
    whose names would not carry the ``ledwarden_`` prefix."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ControllerCollector(service))
    return registry


class Collected(Collector):
    """Metric families already read, to be formatted elsewhere: the route reads the state on the
    event loop (the watch's dictionaries are only safe there) and leaves the formatting, three
    quarters of a scrape's time, to a worker thread."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def collected(registry: CollectorRegistry) -> Collected:
    """Every family of ``registry``, read now (call on the event loop)."""
    return Collected(list(registry.collect()))


def exposition(source: CollectorRegistry | Collected) -> bytes:
    """The text format Prometheus scrapes, of a registry (read now) or of families read before."""
    return generate_latest(source)
