"""``video.output``: the picture really leaves the controller, and reaches the right cards.

``frameloop.budget`` says the loop keeps time; this check says the video
output works: over the profile's window the sink is handed frames, sends
them without errors and in time, and every receiving card the sink found by
its own discovery (Colorlight) still answers, did not restart, and is set up
for the screen's size.  A card set up for another size shows a cropped or
repeated picture that every frame-level counter calls healthy, which is why
the discovery reply is compared here.  It only reads the loop's counters, so
it is safe while the wall shows content.
"""

from __future__ import annotations

import asyncio

from controller.selftest.model import CheckResult

#: Send errors or slow frames in more than this share of the window's frames fail the check.
FAIL_SHARE = 0.01


def _delta(before: dict, after: dict, key: str) -> int:
    return int(after.get(key) or 0) - int(before.get(key) or 0)


async def video_output(ix, result: CheckResult) -> None:
    loop = ix.frame_loop
    if loop is None or not loop.stats()["running"]:
        result.add("pass", "video.off")
        return
    window = ix.params["frame_window_s"]
    before, cards_before = loop.sink_stats(), {c["sink"]: c for c in loop.video_cards()}
    await asyncio.sleep(window)
    after, cards = loop.sink_stats(), loop.video_cards()
    sink = after["sink"]
    frames = _delta(before, after, "frames")
    errors = _delta(before, after, "send_errors")
    slow = _delta(before, after, "slow_frames")
    latency = loop.latency()
    result.values.update(sink=sink, frames=frames, send_errors=errors, slow_frames=slow,
                         window_s=window, send_p99_ms=after["send_p99_ms"],
                         latency_p50_ms=latency["p50_ms"], latency_p99_ms=latency["p99_ms"],
                         cards=cards)
    if frames == 0:
        result.add("fail", "video.not_sending", sink=sink, window_s=window)
    for key, count, extra in (("video.send_errors", errors, {}),
                              ("video.slow", slow, {"send_p99_ms": after["send_p99_ms"]})):
        if count:
            outcome = "fail" if count > FAIL_SHARE * max(frames, 1) else "warn"
            result.add(outcome, key, sink=sink, count=count, frames=frames, **extra)
    if not result.findings:
        result.add("pass", "video.ok", sink=sink, frames=frames, latency_p99_ms=latency["p99_ms"])
    for card in cards:
        _judge_card(result, card, cards_before.get(card["sink"]), ix.layout)


def _judge_card(result: CheckResult, card: dict, before: dict | None, layout) -> None:
    """One card the sink discovered: answering, not restarted in the window, the screen's size."""
    sink = card["sink"]
    if not card["found"]:
        result.add("fail", "video.card_missing", sink=sink)
        return
    if card["silent"]:
        result.add("fail", "video.card_silent", sink=sink, seen_s_ago=card["seen_s_ago"])
    restarts = card["restarts"] - (before["restarts"] if before else card["restarts"])
    if restarts:
        result.add("warn", "video.card_restarted", sink=sink, count=restarts,
                   uptime_s=card["uptime_s"])
    if not card["matches_screen"]:
        result.add("fail", "video.card_size", sink=sink, card_width=card["width"],
                   card_height=card["height"], width=layout.width, height=layout.height)
    elif not card["silent"] and not restarts:
        result.add("pass", "video.card_ok", sink=sink, model=card["model"],
                   firmware=card["firmware"], uptime_s=card["uptime_s"])
