"""The victim of the SIGKILL test: writes faults as fast as it can and says what is committed.

Run as ``python crash_writer.py DB RUN SEED [burst]``.  Prints ``ready`` once
the log is open, then, each line flushed only after the call it reports
returned:

- ``new ID CODE SOURCE`` — a new fault, committed;
- ``resolved ID`` — a fault of this run, cleared and committed;
- ``rep ID COUNT T`` — the repeating fault now has COUNT (T: monotonic time
  just before the call);
- ``flushed ID COUNT`` — after :meth:`FaultLog.flush`: COUNT is on disk.

With ``burst`` it records the repeating fault 50 times, prints ``burst ID
COUNT`` and then idles: only the flush timer can put the count on disk.

Small ``max_rows`` and ``PRUNE_EVERY`` make retention run often, so kills land
inside deletes and checkpoints too, not only inside inserts.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from controller.faultlog import SEVERITIES, FaultLog, card_source

MAX_ROWS = 400
FLUSH_INTERVAL_S = 0.05


def main() -> None:
    path, run, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    FaultLog.PRUNE_EVERY = 25
    log = FaultLog(path, max_rows=MAX_ROWS, flush_interval_s=FLUSH_INTERVAL_S)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    if sys.argv[4:] == ["burst"]:
        for i in range(50):
            rep = log.record("crash.repeat", "warning", "controller", {"i": i})
        out.write(f"burst {rep.id} {rep.count}\n")
        out.flush()
        time.sleep(3600)
    mine: list[tuple[int, str, str]] = []
    i = 0
    while True:
        i += 1
        code, source = f"crash.r{run}.n{i}", card_source(rng.randrange(1, 241), rng.choice([None, 0, 7]))
        fault = log.record(code, rng.choice(SEVERITIES), source, {"run": run, "i": i})
        out.write(f"new {fault.id} {code} {source}\n")
        out.flush()
        mine.append((fault.id, code, source))
        if len(mine) > 3:                      # keep a few of each run active for good
            old_id, old_code, old_source = mine.pop(rng.randrange(len(mine) - 1))
            if log.resolve(old_code, old_source) is not None:
                out.write(f"resolved {old_id}\n")
                out.flush()
        before = time.monotonic()
        rep = log.record("crash.repeat", "warning", "controller", {"i": i})
        out.write(f"rep {rep.id} {rep.count} {before:.6f}\n")
        out.flush()
        if i % 150 == 0:               # rarer than an interval: the other writers must hold the bound
            log.flush()
            now = log.get(rep.id)
            out.write(f"flushed {now.id} {now.count}\n")
            out.flush()


if __name__ == "__main__":
    main()
