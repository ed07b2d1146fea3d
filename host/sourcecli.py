"""``ledwarden source show|set SPEC``: what the wall plays, switched live from a laptop.

``set`` needs an installer (or service) token; the controller opens the new
source before it lets go of the old one, so a typo or a missing clip is one
sentence here and the wall keeps its picture.  The choice survives a restart
of the controller (it wins over ``--source``).  Paths in ``file:`` specs are
the controller's paths, not this laptop's: the clip must be on the board.
"""

from __future__ import annotations

import argparse

from controller.cliout import add_json_flag, emit
from controller.jsonin import JsonObject
from host.remote import client_for


def _describe(state: JsonObject) -> list[str]:
    stats, chosen = state["stats"], state["chosen"]
    lines = [f"source     {state['spec']} (since {stats['since']}, {stats['frames']} frames, "
             f"{stats['new_frames']} new)"]
    extra = {k: stats[k] for k in ("produced", "dropped", "repeated") if k in stats}
    if extra:
        lines.append("           " + ", ".join(f"{v} {k}" for k, v in extra.items()))
    if stats.get("error"):
        lines.append(f"           error: {stats['error']}")
    if chosen:
        lines.append(f"chosen     {chosen['spec']} by {chosen['by']} at {chosen['at']} "
                     f"(kept across restarts)")
    else:
        lines.append("chosen     none: the controller's --source plays")
    return lines


def cmd_show(args, client) -> int:
    return emit(args, client.get("/api/v1/source"), lambda state: print("\n".join(_describe(state))))


def cmd_set(args, client) -> int:
    def show(state: JsonObject) -> None:
        print(f"now playing {state['spec']}" if state["changed"]
              else f"already playing {state['spec']}")
        if state.get("note"):
            print(f"note: {state['note']}")
    return emit(args, client.post("/api/v1/source", {"spec": args.spec}), show)


def register(sub: argparse._SubParsersAction) -> None:
    summary = "the frame loop's source: show it, or switch it live (installer role)"
    source = sub.add_parser("source", help=summary, description=summary[0].upper() + summary[1:] + ".")
    actions = source.add_subparsers(dest="source_action", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    add_json_flag(common)
    p = actions.add_parser("show", parents=[common], help="what plays now and what was chosen",
                           description="What the frame loop plays now, its counters, and the "
                                       "choice kept across restarts.")
    p.set_defaults(func=lambda args: cmd_show(args, client_for(args)))
    p = actions.add_parser("set", parents=[common], help="play another source from the next frame",
                           description="Play another source from the next frame; kept across "
                                       "restarts. A source that cannot be opened changes nothing.")
    p.add_argument("spec", help="file:PATH[?scale=fit|fill|stretch&fps=N] (a path on the "
                                "controller), ddp: (listen for DDP on port 4048), ddp://HOST:PORT, "
                                "pattern:NAME (bars, gradient, white, black, red, green, blue)")
    p.set_defaults(func=lambda args: cmd_set(args, client_for(args)))
