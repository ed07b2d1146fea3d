"""``ledwarden controller ddi set|show|off``: point the board at a DDI server, on the board itself.

Like the API tokens, run where the state lives (``sudo -u ledwarden …``).  The
target token is read from a file or standard input (``--token-file -``),
never from the command line, where shell history and ``ps`` would keep it.
The service reads the settings when it starts: restart it after a change.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controller.cliargs import board_admin_parent, existing_state
from controller.cliout import emit
from controller.errors import ConfigError
from controller.fleet import settings as ddi


def _read_token(source: str) -> str:
    if source == "-":
        return sys.stdin.readline()
    try:
        return Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the target token from {source} ({exc}); give a file "
                          f"holding only the token, or '-' to type it") from None


def _set(args: argparse.Namespace) -> int:
    state = existing_state(args)
    old = ddi.load(state)
    settings = ddi.check(args.url or (old.url if old else ""),
                         args.tenant or (old.tenant if old else "DEFAULT"),
                         args.controller_id or (old.controller_id if old else ""),
                         args.poll_s if args.poll_s is not None else
                         (old.poll_s if old else ddi.DEFAULT_POLL_S))
    token_path = state / ddi.TOKEN
    if args.token_file is None and not token_path.exists():
        raise ConfigError("give the target token once with --token-file FILE (or --token-file - "
                          "to type it): the board cannot talk to the server without it")
    if args.token_file is not None:
        ddi.save_token(state, _read_token(args.token_file))
    ddi.save(state, settings)
    return emit(args, settings.as_dict() | {"token": "stored"},
                lambda _: print(f"The board will poll {settings.base} once the service restarts; "
                                f"the target token is in {token_path} (mode 0600)."))


def _show(args: argparse.Namespace) -> int:
    state = existing_state(args)
    settings = ddi.load(state)
    doc = {"enabled": settings is not None, **(settings.as_dict() if settings else {}),
           "token": "stored" if (state / ddi.TOKEN).exists() else "missing"}
    return emit(args, doc, lambda d: print(
        f"polls {settings.base} (token {d['token']})" if settings else
        "the DDI client is off: turn it on with 'ledwarden controller ddi set --url … "
        "--controller-id … --token-file FILE'"))


def _off(args: argparse.Namespace) -> int:
    state = existing_state(args)
    for name in (ddi.SETTINGS, ddi.TOKEN):
        (state / name).unlink(missing_ok=True)
    return emit(args, {"enabled": False}, lambda _: print(
        "The DDI client is off after the next restart; its settings and token are removed."))


def register(controller_sub) -> None:
    """Add ``ddi set|show|off`` to the ``controller`` command's subparsers."""
    common = board_admin_parent()
    cmd = controller_sub.add_parser("ddi", help="rollouts from a hawkBit DDI server (docs/fleet.md)",
                                    description="Point the board at a hawkBit (DDI) server.")
    actions = cmd.add_subparsers(dest="ddi_action", metavar="ACTION", required=True)
    s = actions.add_parser("set", parents=[common], help="server, tenant, controller id, token")
    s.add_argument("--url", help="the server's root, e.g. https://hawkbit.example:8443")
    s.add_argument("--tenant", help="the tenant (default DEFAULT)")
    s.add_argument("--controller-id", help="this board's target name on the server")
    s.add_argument("--poll-s", type=int, help="poll interval until the server names its own")
    s.add_argument("--token-file", metavar="FILE",
                   help="file holding the target token, or - to read it from standard input")
    s.set_defaults(func=_set)
    actions.add_parser("show", parents=[common], help="the settings (never the token)"
                       ).set_defaults(func=_show)
    actions.add_parser("off", parents=[common], help="stop polling and forget the token"
                       ).set_defaults(func=_off)
