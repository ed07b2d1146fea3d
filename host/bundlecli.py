"""``ledwarden bundle build|verify``: make and check signed controller bundles (service centre side).

``build`` turns a ledwarden source tree into a bundle of a given version —
the project and every dependency as wheels for the board's platform, plus
pip to install them, under a manifest signed with the service centre's
private key (``ledwarden keys generate``).  ``verify`` checks a bundle the
way a board will: the signature against trusted public keys first, then the
manifest, then every file's SHA-256.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from controller.cliout import emit_json
from controller.errors import UpgradeRejected
from controller.upgrade import package, signing
from controller.upgrade.bundles import bundle
from host.keyscli import add_verify_key_arguments, verifying_keys


def cmd_build(args: argparse.Namespace) -> int:
    key = signing.load_private(Path(args.key))
    version = bundle.normal_version(args.version)
    platform = args.platform or bundle.board_platform()
    out = Path(args.out or f"ledwarden-{version}-{platform}.lwb")
    t0 = time.monotonic()
    if not args.json:
        print(f"building ledwarden {version} for {platform} (pip wheel: a few seconds with a warm "
              f"pip cache, minutes without) …")
    manifest = bundle.build_bundle(out, version, key, min_version=args.min_version,
                                   source=Path(args.source) if args.source else None,
                                   platform=platform,
                                   project_wheel=Path(args.project_wheel) if args.project_wheel else None,
                                   find_links=[Path(d) for d in args.find_links or []])
    summary = {"bundle": str(out.resolve()), "sha256": package.sha256_file(out),
               "size": out.stat().st_size, "version": manifest["version"],
               "min_version": manifest["min_version"], "platform": manifest["platform"],
               "key_id": signing.key_id(key.public_key()), "files": len(manifest["files"]),
               "seconds": round(time.monotonic() - t0, 1)}
    if args.json:
        emit_json(summary)
    else:
        print(f"{out}: ledwarden {summary['version']} (replaces {summary['min_version']} or newer) "
              f"for {summary['platform']}, {summary['files']} wheels, "
              f"{summary['size'] / 2**20:.1f} MiB, signed by key {summary['key_id']}, "
              f"in {summary['seconds']} s")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    trusted = verifying_keys(args)
    with package.open_package(Path(args.bundle), trusted, kind=bundle.KIND) as pkg:
        version, min_version = bundle.check_contents(pkg.manifest)
        if args.platform and pkg.manifest["platform"] != args.platform:
            raise UpgradeRejected("platform", f"the bundle is for {pkg.manifest['platform']}, "
                                  f"not {args.platform}")
        total = pkg.verify_all()
        manifest, kid = pkg.manifest, pkg.key_id
    summary = {"bundle": args.bundle, "ok": True, "key_id": kid, "version": str(version),
               "min_version": str(min_version), "platform": manifest["platform"],
               "files": len(manifest["files"]), "payload_bytes": total,
               "project": manifest["wheels"]["project"]}
    if args.json:
        emit_json(summary)
    else:
        print(f"{args.bundle}: good signature by key {kid}; ledwarden {version} (replaces "
              f"{min_version} or newer) for {manifest['platform']}; all {summary['files']} "
              f"wheels match the manifest")
    return 0


def register_actions(actions: argparse._SubParsersAction) -> None:
    """Add ``build`` and ``verify`` to the ``bundle`` group."""
    b = actions.add_parser("build", help="build and sign a controller bundle",
                           description="Build a controller bundle of a given version: the project "
                                       "and every dependency as wheels for the board's platform, "
                                       "plus pip, under a manifest signed with the service "
                                       "centre's private key.")
    b.add_argument("--version", required=True, help="the version inside (PEP 440, e.g. 1.4.0)")
    b.add_argument("--key", required=True, metavar="KEY",
                   help="the private key to sign with (NAME.key from 'ledwarden keys generate')")
    b.add_argument("--min-version", default="0", metavar="V",
                   help="the lowest version this bundle may replace; a board that confirms it "
                        "refuses anything older from then on (default 0: any)")
    b.add_argument("--out", metavar="FILE",
                   help="where to write it (default ./ledwarden-VERSION-PLATFORM.lwb)")
    b.add_argument("--source", metavar="DIR", help="the ledwarden source tree (default: this one)")
    b.add_argument("--platform", metavar="cpXY-linux-ARCH",
                   help=f"the board's platform (default this machine's, {bundle.board_platform()}; "
                        f"64-bit Raspberry Pi OS 12 is cp311-linux-aarch64)")
    b.add_argument("--project-wheel", metavar="WHEEL",
                   help="for another platform: the ledwarden wheel built on such a machine")
    b.add_argument("--find-links", action="append", metavar="DIR",
                   help="also take wheels from DIR (e.g. ones built for the board's platform)")
    b.add_argument("--json", action="store_true", help="print JSON")
    b.set_defaults(func=cmd_build)

    v = actions.add_parser("verify", help="check a bundle's signature, manifest and every file",
                           description="Check a bundle as a board will: signature first, then "
                                       "the manifest, then each file's SHA-256.")
    v.add_argument("bundle", metavar="BUNDLE")
    add_verify_key_arguments(v)
    v.add_argument("--platform", help="also require this platform")
    v.add_argument("--json", action="store_true", help="print JSON")
    v.set_defaults(func=cmd_verify)
