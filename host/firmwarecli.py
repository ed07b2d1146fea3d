"""``ledwarden bundle build-firmware|verify-firmware``: signed receiving-card firmware packages.

``build-firmware`` wraps a card image with its manifest (hw_model, version,
size, SHA-256) and signs it with the service centre's private key;
``verify-firmware`` checks a package as the controller will before a byte of
it goes on the bus: signature, manifest, image.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from controller.cliout import emit_json
from controller.errors import ConfigError
from controller.upgrade import package, signing
from controller.upgrade.cards import firmware
from host.keyscli import add_verify_key_arguments, verifying_keys


def _hw_model(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (e.g. 0x0A01)") from None
    if not 0 <= value <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"hw_model {text} must be 0..0xFFFF")
    return value


def cmd_build(args: argparse.Namespace) -> int:
    key = signing.load_private(Path(args.key))
    image = Path(args.image)
    if not image.is_file():
        raise ConfigError(f"no firmware image at {image}")
    version = firmware.version_text(firmware.parse_version(args.version))
    out = Path(args.out or f"card-{args.hw_model:04X}-{version}.lwf")
    manifest = firmware.build_firmware(out, image, hw_model=args.hw_model, version=version,
                                       private_key=key, notes=args.notes or "")
    summary = {"package": str(out.resolve()), "package_sha256": package.sha256_file(out),
               "hw_model": manifest["hw_model"], "version": manifest["version"],
               "size": manifest["size"], "sha256": manifest["sha256"],
               "key_id": signing.key_id(key.public_key())}
    if args.json:
        emit_json(summary)
    else:
        print(f"{out}: card firmware {version} for hw_model 0x{args.hw_model:04X}, "
              f"{manifest['size']} bytes, SHA-256 {manifest['sha256'][:16]}…, signed by key "
              f"{summary['key_id']}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    trusted = verifying_keys(args)
    fw = firmware.open_firmware(Path(args.package), trusted)
    summary = {"package": args.package, "ok": True, **fw.describe()}
    if args.json:
        emit_json(summary)
    else:
        print(f"{args.package}: good signature by key {fw.key_id}; card firmware "
              f"{fw.version_text} for hw_model 0x{fw.hw_model:04X}, {fw.size} bytes whose "
              f"SHA-256 matches the manifest")
    return 0


def register_actions(actions: argparse._SubParsersAction) -> None:
    """Add ``build-firmware`` and ``verify-firmware`` to the ``bundle`` group."""
    b = actions.add_parser("build-firmware", help="sign a receiving-card firmware image",
                           description=__doc__.split("\n\n")[1].replace("\n", " "))
    b.add_argument("image", metavar="IMAGE", help="the card firmware image (at most 512 KiB)")
    b.add_argument("--hw-model", required=True, type=_hw_model, metavar="MODEL",
                   help="the card model it is for, as PING reports it (e.g. 0x0A01)")
    b.add_argument("--version", required=True, metavar="X.Y.Z",
                   help="its version as the card will report it (major, minor 0..255; patch "
                        "0..65535)")
    b.add_argument("--key", required=True, metavar="KEY",
                   help="the private key to sign with (NAME.key from 'ledwarden keys generate')")
    b.add_argument("--notes", help="release notes kept in the manifest")
    b.add_argument("--out", metavar="FILE", help="where to write it (default ./card-MODEL-VERSION.lwf)")
    b.add_argument("--json", action="store_true", help="print JSON")
    b.set_defaults(func=cmd_build)

    v = actions.add_parser("verify-firmware",
                           help="check a card firmware package's signature, manifest and image",
                           description="Check a card firmware package as the controller will: "
                                       "signature first, then the manifest, then the image.")
    v.add_argument("package", metavar="PACKAGE")
    add_verify_key_arguments(v)
    v.add_argument("--json", action="store_true", help="print JSON")
    v.set_defaults(func=cmd_verify)
