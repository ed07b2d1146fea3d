"""Controller bundles: the project and every dependency as wheels, in a signed package.

A bundle is a :mod:`~controller.upgrade.package` of kind ``controller`` whose
payload is wheels only, so a board installs it with no network.  Its
manifest adds, under the signature::

    product       "ledwarden"
    version       the version inside (PEP 440)
    platform      the board it runs on: "cp311-linux-aarch64" (CPython 3.11 on
                  64-bit Raspberry Pi OS); the wheels hold compiled code (numpy,
                  cryptography, our own C kernel), so nothing else can run them
    min_version   the lowest version this bundle may replace; once a board has
                  confirmed this version it also refuses anything older (the
                  anti-rollback floor, see docs/upgrades.md)
    wheels        {"project": ledwarden-….whl, "installer": pip-….whl,
                   "dependencies": [….whl, …]}

``pip`` travels in the bundle because a slot's environment is built without
one, and the board's own tools are not to be trusted to match.

Building copies the source tree with the version in ``pyproject.toml``
replaced, so the wheel's metadata — what ``software_version()`` reads on the
board — says the bundle's version, and runs ``pip wheel`` on it (the project
and its dependencies, from pip's cache when it can).  For another board type
(``platform`` not this machine's) the dependencies are downloaded as binary
wheels for that platform, and the project wheel, which holds C code, must be
built on such a machine and given as ``project_wheel``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
import zipfile
from email.parser import Parser
from fnmatch import fnmatch
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

import controller
from controller.errors import ConfigError, UpgradeRejected
from controller.upgrade import package

KIND = "controller"
PRODUCT = "ledwarden"
#: The glibc of Raspberry Pi OS 12 (bookworm): the newest manylinux a foreign build accepts.
DEFAULT_GLIBC = (2, 36)
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.o", "*.egg-info", "build")


def board_platform() -> str:
    """This interpreter's platform as bundles name it: ``cp311-linux-x86_64``."""
    impl = "cp" if sys.implementation.name == "cpython" else sys.implementation.name
    return f"{impl}{sys.version_info.major}{sys.version_info.minor}-{sysconfig.get_platform()}"


def normal_version(text: str) -> str:
    try:
        return str(Version(text))
    except InvalidVersion:
        raise ConfigError(f"{text!r} is not a version: use PEP 440, e.g. 1.4.0 or 1.4.0rc1") from None


def default_source() -> Path:
    """The source tree this ledwarden runs from, if it is one (a checkout, not a wheel).

    Found from the top-level package, not from this file's depth, so moving this module
    within the project (as the upgrade split did) cannot point it at the wrong directory."""
    root = Path(controller.__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "setup.py").is_file():
        return root
    raise ConfigError("this ledwarden was installed from a wheel, so there is no source tree to "
                      "build from: give --source DIR (a ledwarden checkout)")


# ------------------------------------------------------------------ building

def copy_source(source: Path, dest: Path, version: str) -> Path:
    """Copy what the wheel is built from into ``dest`` with ``version`` written into it."""
    source = Path(source)
    pyproject = source / "pyproject.toml"
    try:
        meta = tomllib.loads(pyproject.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{source} is not a ledwarden source tree ({pyproject}: {exc})") from None
    if meta.get("project", {}).get("name") != PRODUCT:
        raise ConfigError(f"{pyproject} is not the {PRODUCT} project")
    dest.mkdir(parents=True)
    readme = meta["project"].get("readme", "README.md")
    for name in ("pyproject.toml", "setup.py", readme if isinstance(readme, str) else "README.md"):
        if (source / name).is_file():
            shutil.copy2(source / name, dest / name)
    include = meta.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {}).get(
        "include", ["*"])
    for item in sorted(source.iterdir()):
        if item.is_dir() and (item / "__init__.py").is_file() and any(fnmatch(item.name, p) for p in include):
            shutil.copytree(item, dest / item.name, ignore=_IGNORE)
    text = (dest / "pyproject.toml").read_text()
    project = re.search(r"(?ms)^\[project\]\s*$(.*?)(?=^\[|\Z)", text)
    if project is None or len(re.findall(r'(?m)^version\s*=\s*"[^"\n]*"\s*$', project.group(1))) != 1:
        raise ConfigError(f"{pyproject}: expected one static 'version = \"…\"' line in [project]")
    body = re.sub(r'(?m)^version\s*=\s*"[^"\n]*"\s*$', f'version = "{version}"', project.group(1))
    (dest / "pyproject.toml").write_text(text[:project.start(1)] + body + text[project.end(1):])
    return dest


def _pip(*args: str, hint: str = "") -> None:
    try:
        subprocess.run([sys.executable, "-m", "pip", *args], check=True, capture_output=True,
                       text=True)
    except FileNotFoundError:
        raise ConfigError("building a bundle needs pip in this Python") from None
    except subprocess.CalledProcessError as exc:
        tail = "\n".join((exc.stderr or exc.stdout or "").strip().splitlines()[-15:])
        raise ConfigError(f"pip {args[0]} failed:\n{tail}{hint}") from None


def _requirements(wheel: Path) -> list[str]:
    """The wheel's Requires-Dist lines that apply without extras."""
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(z.read(name).decode())
    return [r for r in meta.get_all("Requires-Dist") or [] if "extra ==" not in r]


def _foreign_platforms(platform: str, glibc: tuple[int, int]) -> tuple[str, list[str]]:
    match = re.fullmatch(r"cp(\d)(\d+)-linux-([a-z0-9_]+)", platform)
    if match is None:
        raise ConfigError(f"--platform {platform!r}: expected cpXY-linux-ARCH, e.g. "
                          f"cp311-linux-aarch64 (run 'python3 -c \"import sysconfig; "
                          f"print(sysconfig.get_platform())\"' on the board for ARCH)")
    major, minor, arch = match.groups()
    tags = [f"manylinux_{glibc[0]}_{n}_{arch}" for n in range(glibc[1], 16, -1)]
    return f"{major}.{minor}", tags + [f"manylinux2014_{arch}", f"linux_{arch}"]


def collect_wheels(wheels: Path, version: str, *, source: Path, platform: str,
                   project_wheel: Path | None, find_links: list[Path], glibc=DEFAULT_GLIBC) -> None:
    """Fill ``wheels`` with the project's wheel, its dependencies' and pip's."""
    import pip  # the running pip's version is the one whose options we know work
    links = [a for d in find_links for a in ("--find-links", str(d))]
    if platform == board_platform() and project_wheel is None:
        with tempfile.TemporaryDirectory(prefix="ledwarden-src-") as tmp:
            tree = copy_source(source, Path(tmp) / "src", version)
            _pip("wheel", "-q", "--wheel-dir", str(wheels), *links, str(tree), f"pip=={pip.__version__}")
        return
    if project_wheel is None:
        raise ConfigError(f"the project wheel holds C code, so for {platform} it must be built on "
                          f"such a board: run 'pip wheel --no-deps .' there with version {version} "
                          f"in pyproject.toml and pass the wheel with --project-wheel")
    try:
        name, wheel_version, _build, tags = parse_wheel_filename(Path(project_wheel).name)
    except InvalidWheelFilename as exc:
        raise ConfigError(f"{project_wheel}: {exc}") from None
    arch = platform.split("-", 2)[2]
    if canonicalize_name(name) != PRODUCT or str(wheel_version) != version:
        raise ConfigError(f"{project_wheel} is {name} {wheel_version}, not {PRODUCT} {version}")
    if not any(t.platform.endswith(arch) or t.platform == "any" for t in tags):
        raise ConfigError(f"{project_wheel} is not built for {platform}")
    shutil.copy2(project_wheel, wheels / Path(project_wheel).name)
    python, platforms = _foreign_platforms(platform, glibc)
    target = ["--only-binary=:all:", "--implementation", "cp", "--python-version", python,
              *[a for p in platforms for a in ("--platform", p)]]
    _pip("download", "-q", "--dest", str(wheels), *target, *links,
         *_requirements(Path(project_wheel)), f"pip=={pip.__version__}",
         hint=f"\nA dependency published only as source (crcmod, cobs) has no wheel for "
              f"{platform}: build it there ('pip wheel crcmod cobs') and give the directory "
              f"with --find-links")


def build_bundle(out: Path, version: str, private_key, *, min_version: str = "0",
                 source: Path | None = None, platform: str | None = None,
                 project_wheel: Path | None = None, find_links: list[Path] | None = None) -> dict:
    """Build and sign a controller bundle at ``out``; return its manifest."""
    version, min_version = normal_version(version), normal_version(min_version)
    if Version(min_version) > Version(version):
        raise ConfigError(f"--min-version {min_version} is above the version {version} itself")
    platform = platform or board_platform()
    with tempfile.TemporaryDirectory(prefix="ledwarden-bundle-") as tmp:
        wheels = Path(tmp) / "wheels"
        wheels.mkdir()
        collect_wheels(wheels, version, source=Path(source) if source else default_source(),
                       platform=platform, project_wheel=project_wheel,
                       find_links=list(find_links or []))
        groups = classify(sorted(p.name for p in wheels.glob("*.whl")), version)
        manifest = {"kind": KIND, "product": PRODUCT, "version": version, "platform": platform,
                    "min_version": min_version, "wheels": groups}
        payload = {name: wheels / name for name in
                   [groups["project"], groups["installer"], *groups["dependencies"]]}
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        return package.build(out, manifest, payload, private_key)


def classify(names: list[str], version: str) -> dict:
    """Sort wheel file names into the project's, pip's and the dependencies'."""
    project, installer, deps = [], [], []
    for name in names:
        dist, wheel_version = parse_wheel_filename(name)[:2]
        if canonicalize_name(dist) == PRODUCT:
            project.append((name, str(wheel_version)))
        elif canonicalize_name(dist) == "pip":
            installer.append(name)
        else:
            deps.append(name)
    if len(project) != 1 or project[0][1] != version:
        raise ConfigError(f"expected one {PRODUCT} {version} wheel, found {project or 'none'}")
    if len(installer) != 1:
        raise ConfigError(f"expected one pip wheel, found {installer or 'none'}")
    return {"project": project[0][0], "installer": installer[0], "dependencies": deps}


# ------------------------------------------------------------------ checking on the board

def check_contents(manifest: dict) -> tuple[Version, Version]:
    """What any verified controller manifest must say, board or not: the product, two PEP 440
    versions, and a wheel list that matches the signed file list.  Returns (version, min_version)."""
    if manifest.get("product") != PRODUCT:
        raise UpgradeRejected("product", f"this bundle is for {manifest.get('product')!r}, "
                              f"not {PRODUCT}")
    try:
        version, min_version = Version(manifest["version"]), Version(manifest.get("min_version", "0"))
    except (KeyError, TypeError, InvalidVersion):
        raise UpgradeRejected("manifest", "the manifest's version or min_version is missing or "
                              "not a PEP 440 version") from None
    wheels = manifest.get("wheels")
    names = {e["name"] for e in manifest["files"]}
    if (not isinstance(wheels, dict) or not isinstance(wheels.get("dependencies"), list)
            or {wheels.get("project"), wheels.get("installer"), *wheels["dependencies"]} != names
            or not all(n.endswith(".whl") for n in names)):
        raise UpgradeRejected("manifest", "the manifest's wheel list does not match its files; "
                              "rebuild the bundle with 'ledwarden bundle build'")
    return version, min_version


def check_manifest(manifest: dict, *, platform: str, running: str, floor: str) -> dict:
    """The board-side checks of a verified manifest, in RAUC's order after the signature:
    what it is, whether it fits this board, then the version limits.  Returns the manifest."""
    version, min_version = check_contents(manifest)
    if manifest.get("platform") != platform:
        raise UpgradeRejected("platform", f"this bundle is built for {manifest.get('platform')}, "
                              f"and this board is {platform}: build one with "
                              f"'ledwarden bundle build --platform {platform}'")
    if version < Version(floor):
        raise UpgradeRejected("downgrade", f"version {version} is below this board's floor "
                              f"{floor} (no version older than the last confirmed one's "
                              f"min_version may return): build {floor} or newer")
    if Version(running) < min_version:
        raise UpgradeRejected("min-version", f"version {version} may only replace {min_version} "
                              f"or newer, and this board runs {running}: install an "
                              f"intermediate version first")
    return manifest
