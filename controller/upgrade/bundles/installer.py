"""Installing a controller bundle into the inactive slot, in RAUC's order.

1. **Signature** — :func:`~controller.upgrade.package.open_package` reads the
   manifest and its signature and checks it against ``STATE/trusted-keys``
   before anything else in the file is looked at.
2. **Compatibility and version limits** — product, platform, the
   anti-rollback floor, the lowest version the bundle may replace
   (:func:`~controller.upgrade.bundles.bundle.check_manifest`); no trial in progress;
   enough free space.
3. **Write the inactive slot** — its old content is renamed away and deleted
   first (it is not referenced: ``previous`` is cleared if it pointed there),
   then a staging directory gets the wheels (each verified against the
   manifest as it streams out), a venv, the dependencies (hard-linked from
   the current slot when they are the same wheels, else installed by the
   bundle's own pip), the project, and a smoke test that imports the whole
   service from the new environment and checks its version.  A ``sync``, then
   ``slot.json``, then the rename of staging onto the slot's name.
4. **Switch** — one atomic rewrite of ``state.json``: the new slot becomes
   current *on trial*, the old one ``previous``.  Until then a crash or a
   power cut leaves the board on the old version, and the boot guard removes
   the leftovers; from then on the guard starts the new one.
5. **Mark good** happens later, when the new version has passed its health
   check (:mod:`~controller.upgrade.bundles.confirm`); until then the boot guard
   rolls back (:mod:`~controller.upgrade.bundles.bootguard`).

Every write, fsync and rename goes through :class:`~controller.upgrade.steps.Steps`,
so ``tests/upgrade/test_install_cut_points.py`` can kill the installer after
each one.  One transaction id names the install in ``state.json``, in
``slot.json`` and in every journal line (:mod:`~controller.upgrade.bundles.events`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import subprocess
import time
import venv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from controller.errors import LedwardenError, UpgradeRejected
from controller.timeutil import utc_compact, utc_now
from controller.upgrade.bundles import events
from controller.upgrade.bundles.bundle import KIND, board_platform, check_manifest
from controller.upgrade.bundles.slots import (FORMAT, SLOT_FILE, STAGING, TRASH, BootState,
                                              SlotStore, clean_env)
from controller.upgrade.steps import Steps
from controller.upgrade.package import CHUNK, open_package
from controller.upgrade.signing import TrustedKeys

log = logging.getLogger("ledwarden.upgrade")

MiB = 1024 * 1024
#: Largest bundle a board accepts (ours are about 30 MiB).
MAX_BUNDLE = 512 * MiB
#: Space left free after an install, for logs, reports and the next upload.
RESERVE = 64 * MiB
#: Installed size / wheel size, measured: about 4 for the dependencies, 6 for ledwarden
#: itself (byte-compiled sources and the C kernel); 6 is the safe bound.
EXPANSION = 6
#: What the smoke test imports: the whole service, the guard, and the C kernel (required).
SMOKE = ("import controller.service.cli, controller.upgrade.bundles.bootguard, controller.fastpath as f; "
         "from controller.version import software_version as v; print(v(), f.backend)")

#: How the ``sh`` form of a script's launcher begins and ends (pip's, and ours).
SH_LAUNCHER, SH_LAUNCHER_END = b"#!/bin/sh\n'''exec' ", b"\n' '''\n"

Progress = Callable[[str, int, int], None]
STAGES = 8


class InstallFailed(LedwardenError):
    """A bundle passed every check but its slot could not be built; nothing was switched."""


class InstallCancelled(LedwardenError):
    """The install was cancelled before the switch; the board is as it was."""


def transaction_id() -> str:
    """Sortable and unique: UTC time of the start plus 24 random bits."""
    return utc_compact() + "-" + secrets.token_hex(3)


@dataclass
class InstallResult:
    transaction: str
    slot: str
    version: str
    from_version: str
    key_id: str
    reused_dependencies: bool
    seconds: float

    def as_dict(self) -> dict:
        return self.__dict__.copy()


class Installer:
    """Installs bundles into one state directory's slots (see the module docstring).

    ``running_version`` is the version the board runs now (the one
    ``min_version`` is compared with); ``should_stop()`` is polled between
    stages and cancels the install if true, which is only possible before
    the switch.
    """

    def __init__(self, state_dir: Path, *, running_version: str, trusted: TrustedKeys | None = None,
                 max_bundle: int = MAX_BUNDLE, reserve: int = RESERVE,
                 progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
                 steps: Steps | None = None) -> None:
        self.state_dir = Path(state_dir).absolute()   # children run elsewhere (the smoke test)
        self.store = SlotStore(self.state_dir)
        self.running_version = running_version
        self.trusted = trusted
        self.max_bundle = max_bundle
        self.reserve = reserve
        self.progress = progress or (lambda step, done, total: None)
        self.should_stop = should_stop or (lambda: False)
        self.steps = steps or Steps()

    def install(self, bundle: Path) -> InstallResult:
        txn, t0 = transaction_id(), time.monotonic()
        details = {"transaction": txn, "bundle": Path(bundle).name, "from_version": self.running_version}
        try:
            with self.store.lock(self.steps):
                try:
                    result = self._install(Path(bundle), txn, t0, details)
                except BaseException:
                    self._clean_up()
                    raise
        except UpgradeRejected as exc:
            events.record(self.state_dir, "rejected", details | {"reason": exc.reason,
                                                                  "message": str(exc)}, self.steps)
            raise
        except InstallCancelled:
            raise
        except (LedwardenError, OSError, subprocess.SubprocessError) as exc:
            message = exc.args[0] if isinstance(exc, LedwardenError) else f"{exc!r}"
            events.record(self.state_dir, "failed", details | {"message": message}, self.steps)
            if isinstance(exc, InstallFailed):
                raise
            raise InstallFailed(f"the install failed before the switch and the board is "
                                f"unchanged: {message}") from exc
        return result

    # ---------------------------------------------------------------- the transaction

    def _install(self, bundle: Path, txn: str, t0: float, details: dict) -> InstallResult:
        steps, store = self.steps, self.store
        self.progress("checking the signature", 0, STAGES)
        trusted = self.trusted or TrustedKeys.from_directory(self.state_dir / "trusted-keys")
        if not trusted.keys:
            raise UpgradeRejected("untrusted-key", "this board trusts no signing key yet: install "
                                  "the service centre's public key with 'ledwarden controller "
                                  "trust add KEY.pub' on the board")
        with open_package(bundle, trusted, kind=KIND, max_size=self.max_bundle) as pkg:
            self.progress("checking compatibility and versions", 1, STAGES)
            state = store.load()
            manifest = check_manifest(pkg.manifest, platform=board_platform(),
                                      running=self.running_version, floor=state.floor)
            version = manifest["version"]
            details |= {"version": version, "key_id": pkg.key_id}
            if state.trial:
                raise UpgradeRejected("busy", f"slot {state.trial['slot']} "
                                      f"({state.trial['version']}) is still on trial: wait until "
                                      f"it confirms its health or is rolled back")
            target = store.inactive(state)
            reuse = self._reusable(state, manifest)
            self._check_space(manifest, target, reuse)
            self._check_stop()

            # ---- unpack and verify the whole payload before the inactive slot is touched
            store.recover(steps)
            staging = store.root / f"{STAGING}{txn}"
            steps.mkdir(staging)
            steps.mkdir(staging / "wheels")
            self.progress(f"unpacking {len(manifest['files'])} wheels", 2, STAGES)
            for entry, reader in pkg.files():
                steps.write(staging / "wheels" / entry["name"],
                            iter(lambda: reader.read(CHUNK), b""), fsync=False)
            # Every file's size and SHA-256 matched the signed manifest when files() ended.
            self._check_stop()

            # ---- write the inactive slot: nothing refers to it from here on
            if state.previous == target:
                state.previous = None
                store.save(state, steps)
            slot_dir = store.slot_dir(target)
            if slot_dir.exists():
                trash = store.root / f"{TRASH}{txn}"
                steps.rename(slot_dir, trash)
                steps.fsync_dir(store.root)
                steps.rmtree(trash)
            meta = self._build(staging, manifest, target, txn, reuse, pkg.key_id)
            steps.rmtree(staging / "wheels")
            steps.fsync_dir(staging)
            steps.rename(staging, slot_dir)
            steps.fsync_dir(store.root)
            self._check_stop()

        # ---- switch: the one rename that makes the new slot current (on trial)
        self.progress(f"switching to slot {target}", 7, STAGES)
        record = {"transaction": txn, "from_version": self.running_version, "version": version,
                  "slot": target, "time": utc_now()}
        store.save(BootState(current=target, previous=state.current, floor=state.floor,
                             trial=record | {"from_slot": state.current, "boots": 0},
                             last=record | {"outcome": "trial"}), steps)
        try:
            events.record(self.state_dir, "installed", details | {"slot": target,
                                                                  "reused_dependencies": bool(reuse)}, steps)
        except OSError as exc:
            # Past the switch the install has happened whatever the journal says: reporting a
            # failure now would leave the new slot on trial with nobody restarting into it.
            log.error("installed %s in slot %s, but the journal could not be written: %s",
                      version, target, exc)
        self.progress(f"installed {version} in slot {target}, on trial", STAGES, STAGES)
        return InstallResult(txn, target, version, self.running_version, meta["key_id"],
                             bool(reuse), round(time.monotonic() - t0, 2))

    def _build(self, staging: Path, manifest: dict, target: str, txn: str, reuse: Path | None,
               key_id: str) -> dict:
        """Make the slot's environment in ``staging`` (its final name comes later: nothing in
        it refers to its own path, see :meth:`_relocate`) and return its metadata, written last."""
        steps, wheels = self.steps, staging / "wheels"
        groups = manifest["wheels"]
        self.progress("creating the environment", 3, STAGES)
        env = staging / "env"
        venv.EnvBuilder(symlinks=True, with_pip=False).create(env)
        for script in (env / "bin").glob("[Aa]ctivate*"):
            script.unlink()  # they name the staging path; nothing needs them
        steps.done("venv", env)
        python = env / "bin" / "python"
        steps.mkdir(staging / "lib")
        deps = Path("lib") / f"deps-{dependency_id(manifest)}"
        project_sha = next(e["sha256"] for e in manifest["files"] if e["name"] == groups["project"])
        project = Path("lib") / f"ledwarden-{project_sha[:16]}"
        if reuse is not None:
            self.progress(f"reusing the dependencies of slot {reuse.parent.parent.name}", 4, STAGES)
            steps.link_tree(reuse, staging / deps)
        else:
            self.progress(f"installing {len(groups['dependencies'])} dependencies", 4, STAGES)
            self._pip(python, wheels, staging / deps, groups["dependencies"], "dependencies")
        self._check_stop()
        self.progress(f"installing ledwarden {manifest['version']}", 5, STAGES)
        self._pip(python, wheels, staging / project, [groups["project"]], "ledwarden")
        site = next((env / "lib").glob("python3*/site-packages"))
        steps.write(site / "ledwarden-slot.pth",   # relative: the slot is renamed into place
                    "".join(f"{os.path.relpath(staging / p, site)}\n" for p in (deps, project)).encode(),
                    fsync=False)        # the sync below covers it with everything pip wrote
        self._relocate(staging)
        self.progress("testing the new slot", 6, STAGES)
        self._smoke_test(python, manifest["version"])
        steps.sync()
        meta = {"format": FORMAT, "slot": target, "version": manifest["version"],
                "transaction": txn, "installed": utc_now(), "key_id": key_id,
                "platform": manifest["platform"], "min_version": manifest.get("min_version", "0"),
                "deps_id": dependency_id(manifest), "paths": ["env", str(deps), str(project)],
                "wheels": groups, "reused_dependencies": reuse is not None}
        steps.write(staging / SLOT_FILE, json.dumps(meta, indent=1, sort_keys=True).encode() + b"\n")
        return meta

    # ---------------------------------------------------------------- parts

    def _pip(self, python: Path, wheels: Path, target: Path, names: list[str], what: str) -> None:
        """Install wheels into ``target`` with the bundle's own pip, offline."""
        pip = wheels / next(n for n in os.listdir(wheels) if n.startswith("pip-")) / "pip"
        argv = [str(python), str(pip), "install", "--no-index", "--no-deps", "--no-cache-dir",
                "--disable-pip-version-check", "--no-warn-script-location", "--quiet",
                "--target", str(target), *[str(wheels / n) for n in names]]
        try:
            self.steps.run(argv, what=f"pip install {what} -> {target}", env=clean_env())
        except subprocess.CalledProcessError as exc:
            tail = "\n".join((exc.stderr or exc.stdout or "").strip().splitlines()[-10:])
            raise InstallFailed(f"installing the {what} wheels failed; the board is unchanged:\n"
                                f"{tail}") from None

    def _relocate(self, staging: Path) -> None:
        """Take the staging path out of what venv and pip wrote, so the slot works, and says
        nothing false, once it is renamed into place.

        Three kinds of file name it: the scripts' ``#!`` lines (made relative to the script),
        ``pyvenv.cfg``'s informational ``command`` line (dropped), and each package's
        ``direct_url.json``, the wheel's URL in a staging directory about to vanish (dropped:
        ``slot.json`` names the wheels).  Changed files are written anew and renamed over the
        old name, never edited in place, because dependencies may be hard links shared with
        the other slot.
        """
        marker = str(staging).encode()
        cfg = staging / "env" / "pyvenv.cfg"
        lines = cfg.read_bytes().splitlines(keepends=True)
        self._rewrite(cfg, b"".join(x for x in lines if not x.startswith(b"command")))
        for record in staging.glob("lib/*/*.dist-info/direct_url.json"):
            if marker in record.read_bytes():
                self.steps.unlink(record)
        python = staging / "env" / "bin" / "python"
        for script in staging.glob("lib/*/bin/*"):
            if not script.is_file() or script.is_symlink():
                continue
            prelude, rest = launcher_prelude(script.read_bytes())
            if marker in prelude:
                self._rewrite(script, relocatable_shebang(os.path.relpath(python, script.parent))
                              + rest, mode=0o755)

    def _rewrite(self, path: Path, data: bytes, mode: int = 0o644) -> None:
        tmp = path.with_name(path.name + ".tmp")
        self.steps.write(tmp, data, fsync=False, mode=mode)  # the slot's sync covers it
        self.steps.rename(tmp, path)

    def _smoke_test(self, python: Path, version: str) -> None:
        """Import the service from the new environment, as the guard will start it."""
        done = subprocess.run([str(python), "-P", "-s", "-c", SMOKE], capture_output=True,
                              text=True, timeout=300, cwd=python.parent,
                              env=clean_env(LEDWARDEN_FASTPATH="cffi"))
        got = done.stdout.split()
        if done.returncode != 0 or got[:1] != [version]:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
            raise InstallFailed(f"the new environment does not start (expected version {version}, "
                                f"got {got[:1] or 'nothing'}); the board is unchanged:\n{tail}")

    def _reusable(self, state: BootState, manifest: dict) -> Path | None:
        """The current slot's dependency directory if it holds exactly these wheels."""
        if state.current is None:
            return None
        meta = self.store.meta(state.current)
        if meta is None or meta.get("deps_id") != dependency_id(manifest):
            return None
        path = self.store.slot_dir(state.current) / "lib" / f"deps-{meta['deps_id']}"
        return path if path.is_dir() else None

    def _check_space(self, manifest: dict, target: str, reuse: Path | None) -> None:
        sizes = {e["name"]: e["size"] for e in manifest["files"]}
        wheels = manifest["wheels"]
        unpacked = sizes[wheels["project"]] + (0 if reuse else sum(sizes[n] for n in wheels["dependencies"]))
        need = sum(sizes.values()) + EXPANSION * unpacked + self.reserve
        have = self.store.free_bytes() + (self.store.reclaimable(target)
                                         if self.store.slot_dir(target).exists() else 0)
        if need > have:
            raise UpgradeRejected("no-space", f"installing {manifest['version']} needs about "
                                  f"{need / MiB:.0f} MiB (keeping {self.reserve / MiB:.0f} MiB "
                                  f"spare) and {have / MiB:.0f} MiB are free: free space under "
                                  f"{self.state_dir} (old reports, uploads) and try again")

    def _clean_up(self) -> None:
        """Remove this attempt's staging directory now rather than at the next boot."""
        try:
            self.store.recover(self.steps)
        except OSError as exc:
            log.warning("could not remove the leftovers of a failed install (the boot guard "
                        "will): %s", exc)

    def _check_stop(self) -> None:
        if self.should_stop():
            raise InstallCancelled("the install was cancelled before the switch; the board is "
                                   "unchanged")


def relocatable_shebang(python: str) -> bytes:
    """The first lines of a script that runs it with ``python``, a path relative to the script's
    own directory: ``sh`` reads the ``exec`` line, Python reads it as a string (the form pip's
    launcher uses for interpreter paths too long for ``#!``)."""
    here = '"$(dirname -- "$(readlink -f -- "$0")")"'
    return f"#!/bin/sh\n'''exec' {here}/'{python}' \"$0\" \"$@\"\n' '''\n".encode()


def launcher_prelude(script: bytes) -> tuple[bytes, bytes]:
    """A script split into the lines that start its interpreter and the rest.  pip writes a
    ``#!`` line, or, when the interpreter's path is too long for ``#!`` (127 bytes on Linux),
    the three-line ``sh`` form that :func:`relocatable_shebang` also uses."""
    if script.startswith(SH_LAUNCHER) and SH_LAUNCHER_END in script:
        end = script.index(SH_LAUNCHER_END) + len(SH_LAUNCHER_END)
    elif script.startswith(b"#!"):
        end = script.find(b"\n") + 1 or len(script)
    else:
        end = 0
    return script[:end], script[end:]


def dependency_id(manifest: dict) -> str:
    """Names the exact set of dependency wheels, so two slots can share their installation."""
    by_name = {e["name"]: e["sha256"] for e in manifest["files"]}
    text = "\n".join(sorted(by_name[n] for n in manifest["wheels"]["dependencies"]))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def running_version(state_dir: Path) -> str:
    """The version the board runs: the current slot's, or this installation's (the base)."""
    from controller.version import software_version
    store = SlotStore(state_dir)
    state = store.load()
    meta = store.meta(state.current) if state.current else None
    return meta["version"] if meta else software_version()
