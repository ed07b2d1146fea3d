"""``ledwarden controller trust add|list|remove``: the public keys a board accepts bundles from.

Run on the board as the service's user, like ``token``: which keys a board
trusts is decided by whoever holds the board, never over the network, so a
stolen service token cannot make a board accept its thief's bundles.  Keys
live in ``STATE/trusted-keys/NAME.pub`` (read by
:meth:`~controller.upgrade.signing.TrustedKeys.from_directory` at each
install).  Only public keys: a private key offered here is refused, because a
board that holds one could sign its own "upgrades".
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from controller.cliargs import board_admin_parent, existing_state
from controller.cliout import emit, table
from controller.errors import ConfigError, NotFound
from controller.jsonin import JsonObject
from controller.upgrade import signing
from controller.upgrade.steps import Steps

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _dir(args: argparse.Namespace) -> Path:
    return Path(args.state) / "trusted-keys"


def trusted(directory: Path) -> list[dict]:
    """Each trusted key file with its key id, sorted by file name."""
    out = []
    for path in sorted(directory.glob("*.pub")) if directory.is_dir() else []:
        out.append({"name": path.stem, "key_id": signing.key_id(signing.load_public(path)),
                    "file": str(path)})
    return out


def _add(args: argparse.Namespace) -> int:
    source = Path(args.key)
    try:
        pem = source.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc.strerror}") from None
    if b"PRIVATE KEY" in pem:
        raise ConfigError(f"{source} is a private key: boards hold public keys only. Give the "
                          f".pub file that 'ledwarden keys generate' wrote beside it, and keep "
                          f"the private key off the board")
    key = signing.load_public(source)
    kid = signing.key_id(key)
    name = args.name or source.stem
    if not NAME.match(name):
        raise ConfigError(f"{name!r} is not a key name: use letters, digits, '.', '_' and '-' "
                          f"(or give --name)")
    directory = _dir(args)
    known = trusted(directory)
    same = next((k for k in known if k["key_id"] == kid), None)
    if same is not None:
        return emit(args, same | {"already": True},
                    lambda _: print(f"key {kid} is already trusted (as {same['name']})"))
    if any(k["name"] == name for k in known):
        raise ConfigError(f"another key is already trusted as {name!r}: choose another --name")
    directory.mkdir(parents=True, exist_ok=True)
    steps = Steps()
    steps.replace(directory / f"{name}.pub", signing.public_pem(key))
    return emit(args, {"name": name, "key_id": kid, "file": str(directory / f"{name}.pub")},
                lambda _: print(f"trusted key {kid} as {name}: bundles signed with it can now be installed"))


def _list(args: argparse.Namespace) -> int:
    existing_state(args)
    keys = trusted(_dir(args))
    return emit(args, keys, _show_keys)


def _show_keys(keys: list[JsonObject]) -> None:
    if not keys:
        print("this board trusts no key yet, so it accepts no bundle: add the service centre's "
              "public key with 'ledwarden controller trust add KEY.pub'")
    else:
        print(table([(k["name"], k["key_id"], k["file"]) for k in keys], ["name", "key id", "file"]))


def _remove(args: argparse.Namespace) -> int:
    existing_state(args)
    keys = trusted(_dir(args))
    wanted = args.key.removesuffix(".pub").rsplit("/", 1)[-1]
    match = [k for k in keys if wanted in (k["name"], k["key_id"])]
    if not match:
        raise NotFound(f"no trusted key named or with id {wanted!r} "
                       f"(see 'ledwarden controller trust list')")
    if len(keys) == 1 and not args.force:
        raise ConfigError(f"{match[0]['name']} is the only trusted key: without one this board "
                          f"can never be upgraded again. Add its successor first, or give --force")
    steps = Steps()
    steps.unlink(Path(match[0]["file"]))
    steps.fsync_dir(_dir(args))
    return emit(args, match[0], lambda key: print(f"no longer trusting {key['name']} ({key['key_id']}): "
                                                  f"bundles signed with it are refused from now on"))


def register(controller_sub) -> None:
    """Add ``trust add|list|remove`` to the ``controller`` command's subparsers."""
    common = board_admin_parent()
    trust = controller_sub.add_parser(
        "trust", help="the public keys this board accepts update bundles from (run on the board)",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    actions = trust.add_subparsers(dest="trust_action", metavar="ACTION", required=True)
    add = actions.add_parser("add", parents=[common], help="trust a public key (a .pub file)")
    add.add_argument("key", metavar="KEY.pub")
    add.add_argument("--name", help="what to call it (default: the file name without .pub)")
    add.set_defaults(func=_add)
    lst = actions.add_parser("list", parents=[common], help="list the trusted keys")
    lst.set_defaults(func=_list)
    rm = actions.add_parser("remove", parents=[common], help="stop trusting a key")
    rm.add_argument("key", metavar="NAME|KEY-ID")
    rm.add_argument("--force", action="store_true", help="even if it is the last one")
    rm.set_defaults(func=_remove)
