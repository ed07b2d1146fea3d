"""``ledwarden controller token …``: make, list and revoke API tokens, on the board itself.

Tokens are managed where the state lives rather than over the API, so the
first ``service`` token can exist before anyone can authenticate, and so
losing every token never locks the owner of the board out.  Run it as the
user the service runs as (``sudo -u ledwarden …``), so ``tokens.db`` stays
writable by the service.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from controller.cliargs import board_admin_parent, existing_state
from controller.cliout import emit, table
from controller.service.auth import ROLES, TokenStore


def _store(args: argparse.Namespace) -> TokenStore:
    return TokenStore(Path(args.state) / "tokens.db")


def _create(args: argparse.Namespace) -> int:
    store = _store(args)
    secret = store.create(args.name, args.role)
    info = next(t for t in store.list() if t.name == args.name and not t.revoked)

    def show(_: object) -> None:
        print(f"Created token {info.name!r} with role {info.role!r}. Its secret, shown only this once:")
        print()
        print(secret)
        print()
        print("Store it in a file only you can read and use `ledwarden --token-file FILE …`, "
              "or put it in the LEDWARDEN_TOKEN environment variable. Never put it on a command line.")

    return emit(args, {**asdict(info), "secret": secret}, show)


def _list(args: argparse.Namespace) -> int:
    tokens = _store(args).list() if (existing_state(args) / "tokens.db").exists() else []

    def show(_: object) -> None:
        if not tokens:
            print("no tokens yet: make one with `ledwarden controller token create "
                  "--role service --name NAME`")
            return
        print(table([(t.id, t.name, t.role, t.created, t.last_used or "never",
                      "revoked" if t.revoked else "active") for t in tokens],
                    ["id", "name", "role", "created", "last used", "state"]))

    return emit(args, [asdict(t) for t in tokens], show)


def _revoke(args: argparse.Namespace) -> int:
    existing_state(args)
    info = _store(args).revoke(args.name)
    return emit(args, asdict(info), lambda _: print(f"Revoked token {info.name!r} ({info.role}): "
                                                    "requests with it are refused from now on."))


def register(controller_sub) -> None:
    """Add ``token create|list|revoke`` to the ``controller`` command's subparsers."""
    common = board_admin_parent()

    token = controller_sub.add_parser(
        "token", help="make, list and revoke API tokens (run on the controller)",
        description="API tokens for the host tool. Roles: viewer (status, faults, reports), "
                    "installer (also commissioning, patterns, brightness, self-tests), "
                    "service (also upgrades and tokens).")
    actions = token.add_subparsers(dest="token_action", metavar="ACTION", required=True)

    create = actions.add_parser("create", parents=[common],
                                help="make a token and print its secret once")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True,
                        help="who or what it is for (unique among active tokens)")
    create.set_defaults(func=_create)

    lst = actions.add_parser("list", parents=[common], help="list tokens, revoked ones included")
    lst.set_defaults(func=_list)

    revoke = actions.add_parser("revoke", parents=[common], help="revoke a token by name")
    revoke.add_argument("name", metavar="NAME")
    revoke.set_defaults(func=_revoke)
