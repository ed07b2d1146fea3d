"""``ledwarden keys generate|show``: the service centre's signing keys for updates.

The private key signs controller bundles and card firmware packages
(``ledwarden bundle …``); its ``.pub`` twin is what a board trusts (installed
with ``ledwarden controller trust add``).  Keys default to the host tool's
config directory under ``keys/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from controller.cliout import add_json_flag, emit
from controller.errors import ConfigError
from controller.upgrade import signing
from host.settings import config_dir


def _keys_dir(args: argparse.Namespace) -> Path:
    return Path(args.dir) if args.dir else config_dir() / "keys"


def add_verify_key_arguments(parser: argparse.ArgumentParser) -> None:
    """``--key KEY.pub`` (repeatable) for the ``bundle verify…`` actions."""
    parser.add_argument("--key", action="append", metavar="KEY.pub",
                        help="a public key to accept (repeatable; default: every .pub in the "
                             "config directory's keys/)")
    parser.add_argument("--dir", help=argparse.SUPPRESS)


def verifying_keys(args: argparse.Namespace) -> signing.TrustedKeys:
    """The keys a host-side verify accepts: those given with ``--key``, else every ``.pub``
    in the keys directory — as a board trusts its own directory."""
    paths = [Path(k) for k in args.key] if args.key else sorted(_keys_dir(args).glob("*.pub"))
    if not paths:
        raise ConfigError(f"no public keys to verify with: give --key KEY.pub (none in "
                          f"{_keys_dir(args)})")
    return signing.TrustedKeys.of(*[signing.load_public(p) for p in paths])


def cmd_generate(args: argparse.Namespace) -> int:
    private, public = signing.generate(_keys_dir(args), args.name)
    kid = signing.key_id(signing.load_public(public))
    return emit(args, {"key_id": kid, "private": str(private), "public": str(public)}, lambda _: print(
        f"key {kid}\n  private (keep it off the boards, back it up): {private}\n"
        f"  public (install on each board): {public}"))


def cmd_show(args: argparse.Namespace) -> int:
    path = Path(args.key)
    key = (signing.load_private(path).public_key() if path.suffix == ".key"
           else signing.load_public(path))
    kid = signing.key_id(key)
    return emit(args, {"key_id": kid, "public_pem": signing.public_pem(key).decode()},
                lambda doc: print(f"key {kid}\n{doc['public_pem'].rstrip()}"))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="make and inspect the Ed25519 keys that sign updates",
                       description=__doc__.split("\n\n")[0])
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    g = actions.add_parser("generate", help="make a new key pair NAME.key and NAME.pub")
    g.add_argument("--name", required=True, help="file name stem, for example service-centre-2026")
    g.add_argument("--dir", help="where to write them (default: the config directory's keys/)")
    add_json_flag(g)
    g.set_defaults(func=cmd_generate)
    s = actions.add_parser("show", help="print a key's id and public key (from .key or .pub)")
    s.add_argument("key", help="a .key or .pub file")
    add_json_flag(s)
    s.set_defaults(func=cmd_show)
