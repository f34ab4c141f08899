"""Build ``danm`` and ``fakeipam`` as self-contained executables for ``/opt/cni/bin``.

Why it exists: on a node the CNI binaries are exec'ed by the runtime for every Pod (and
``fakeipam`` by the delegate for every interface), with the node's own ``python3`` and no
virtualenv. Each one is a zipapp (stdlib ``zipapp``): our packages plus the pure-Python
third-party modules the CNI path imports (``yaml`` for kubeconfig files, ``pyroute2`` for the
built-in IPVLAN path and namespace work), each ``x.py`` with its precompiled ``x.pyc`` beside it
(the legacy layout, the only one ``zipimport`` reads), so no process ever compiles anything.

Start-up is the product here, so the shebang runs the interpreter as ``-IS`` by default:

* ``-S`` skips ``site`` (the ``.pth`` processing of a system or virtualenv ``site-packages``
  costs ~15 ms per process); nothing in the bundle needs ``site``, and it keeps the node's
  ``dist-packages`` off ``sys.path``, so the bundle imports only itself and the standard library;
* ``-I`` (isolated: ``-E -s -P``) ignores ``PYTHON*`` variables a runtime might pass through.
  The archive itself is still ``sys.path[0]``: CPython always adds the path of a zip it runs.

The ``.pyc`` files are unchecked-hash pycs: valid without comparing timestamps (zip entry times
have a 2-second grain), reproducible, and, if the node's Python has another bytecode magic number,
ignored by ``zipimport`` in favour of the ``.py`` beside them, so a mismatch costs speed, never
correctness. File times in the archive are fixed, so the same sources give the same bytes.

Run as ``python -m common.cni.bundle --output build/cni`` (``make cni-bundle``); see ``--help``.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipapp
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The node's interpreter, isolated and without ``site`` (see the module docstring).
DEFAULT_INTERPRETER = "/usr/bin/python3 -IS"
#: 2000-01-01T00:00:00Z: every archived file gets this time, for reproducible archives.
FIXED_MTIME = 946684800
#: Imports in our own packages that the CNI binaries never reach (the official Kubernetes
#: client, used by the long-running components through ``common.io.kube.KubernetesApi``).
NOT_ON_CNI_PATH = frozenset({"kubernetes", "urllib3", "aiohttp", "cryptography", "netaddr"})


class BundleError(Exception):
    """The bundle cannot be built as asked (bad interpreter line, missing package, ...)."""


@dataclass(frozen=True)
class BundleSpec:
    """One executable: the module whose ``main()`` it runs and what it carries.

    Our own code is carried as the import closure of ``entry_module`` (lazy imports included),
    computed from the sources, so ``fakeipam`` does not ship the API client; ``third_party``
    packages are carried whole.
    """

    name: str
    entry_module: str
    third_party: tuple[str, ...]
    #: Store the compiled dataclass methods (``common.cni.startup``); worth it only when the
    #: common path imports dataclasses anyway (fakeipam's ADD does not).
    dataclass_code: bool


DANM = BundleSpec(
    name="danm", entry_module="danm.cli", third_party=("yaml", "pyroute2"), dataclass_code=True
)
FAKEIPAM = BundleSpec(
    name="fakeipam", entry_module="fakeipam.cli", third_party=(), dataclass_code=False
)
BUNDLES = (DANM, FAKEIPAM)
#: The top-level packages of this repository that bundles may draw modules from.
OWN_PACKAGES = ("common", "danm", "fakeipam")
#: Run by every bundle's ``__main__`` before its entry module.
STARTUP_MODULE = "common.cni.startup"

# NB: exit status of main() must reach the runtime; zipapp's own template discards it.
MAIN_TEMPLATE = """\
import sys

from common.cni import startup

{prelude}from {module} import main

sys.exit(startup.exit_status(main()))
"""
USE_DATACLASS_CODE = "startup.use_dataclass_code(__loader__)\n"
RECORD_DATACLASS_CODE = """\
import sys
from pathlib import Path

staging = Path(sys.argv[1])
sys.path.insert(0, str(staging))
from common.cni.startup import DATACLASS_CODE, record_dataclass_code

(staging / DATACLASS_CODE).write_bytes(record_dataclass_code(sys.argv[2:]))
"""


def check_interpreter(interpreter: str) -> str:
    """Validate a shebang interpreter line: an absolute path plus at most one argument.

    NB: Linux hands everything after the path to the interpreter as *one* argument, so
    ``python3 -I -S`` would reach Python as the single, invalid option ``-I -S``.
    """
    parts = interpreter.split()
    if not parts or not parts[0].startswith("/"):
        raise BundleError(f"the interpreter must be an absolute path, got {interpreter!r}")
    if len(parts) > 2:
        raise BundleError(
            f"a shebang passes one argument at most; combine flags as in "
            f"'{parts[0]} -IS', got {interpreter!r}"
        )
    return " ".join(parts)


def _package_dir(name: str) -> Path:
    """The directory of an importable package, as the building interpreter finds it."""
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise BundleError(
            f"package {name!r} is not importable by {sys.executable}; install it there first"
        )
    return Path(locations[0])


def _sources(package_dir: Path) -> Iterable[Path]:
    """The ``.py`` files of a package (C extensions and caches cannot run from a zip)."""
    for path in sorted(package_dir.rglob("*.py")):
        if "__pycache__" not in path.parts:
            yield path


def _module_path(root: Path, module: str) -> Path | None:
    """The source file of ``module`` under ``root`` (a package's ``__init__.py``), if any."""
    base = root.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(source: str, filename: str, module: str) -> set[str]:
    """Every module name a source file may import, anywhere in it (lazy imports included).

    ``from a.b import c`` yields ``a.b`` and ``a.b.c`` (``c`` may be a submodule); relative
    imports are resolved against ``module``.
    """
    package = module if filename.endswith("__init__.py") else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def import_closure(root: Path, entry_module: str) -> tuple[dict[str, Path], set[str]]:
    """Our modules reachable from ``entry_module`` (name to file), and the foreign names seen.

    A module's parent packages are included, as importing it runs their ``__init__``.
    """
    found: dict[str, Path] = {}
    foreign: set[str] = set()
    pending = [entry_module]
    while pending:
        module = pending.pop()
        if module in found:
            continue
        if module.split(".")[0] not in OWN_PACKAGES:
            foreign.add(module.split(".")[0])
            continue
        path = _module_path(root, module)
        if path is None:
            continue  # NB: a name from "from pkg import name" that is not a submodule
        found[module] = path
        parts = module.split(".")
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        pending.extend(imported_modules(path.read_text(), str(path), module))
    return found, foreign


def _check_foreign(spec: BundleSpec, foreign: set[str]) -> None:
    allowed = set(sys.stdlib_module_names) | set(spec.third_party) | NOT_ON_CNI_PATH
    missing = sorted(foreign - allowed - {"__future__"})
    if missing:
        raise BundleError(
            f"{spec.name} imports {', '.join(missing)}, which the bundle does not carry; add "
            f"them to its third_party list, or to NOT_ON_CNI_PATH if the CNI path never runs them"
        )


def _stage(spec: BundleSpec, staging: Path) -> None:
    modules, foreign = import_closure(REPO_ROOT, spec.entry_module)
    modules.update(import_closure(REPO_ROOT, STARTUP_MODULE)[0])
    _check_foreign(spec, foreign)
    for path in modules.values():
        target = staging / path.relative_to(REPO_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    for package in spec.third_party:
        source_dir = _package_dir(package)
        for path in _sources(source_dir):
            target = staging / package / path.relative_to(source_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    prelude = USE_DATACLASS_CODE if spec.dataclass_code else ""
    (staging / "__main__.py").write_text(
        MAIN_TEMPLATE.format(module=spec.entry_module, prelude=prelude)
    )
    if spec.dataclass_code:
        _record_dataclass_code(staging, sorted(modules))


def _record_dataclass_code(staging: Path, modules: list[str]) -> None:
    """Store the dataclass methods the modules build (see ``common.cni.startup``).

    NB: in a fresh ``-I -S -B`` interpreter: the modules must be imported for the first time,
    from the staging copy, without writing ``__pycache__`` into it.
    """
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", RECORD_DATACLASS_CODE, str(staging), *modules],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise BundleError(f"recording the dataclass code failed:\n{done.stderr.strip()}")


def _compile(staging: Path, archive_name: str) -> None:
    for path in sorted(staging.rglob("*.py")):
        relative = path.relative_to(staging)
        py_compile.compile(
            str(path),
            cfile=str(path) + "c",
            dfile=f"{archive_name}/{relative}",
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )


def _fix_times(staging: Path) -> None:
    for path in staging.rglob("*"):
        os.utime(path, (FIXED_MTIME, FIXED_MTIME))


def build_one(spec: BundleSpec, output_dir: Path, interpreter: str = DEFAULT_INTERPRETER) -> Path:
    """Write ``output_dir/<spec.name>`` (mode 0755) and return its path."""
    shebang = check_interpreter(interpreter)
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / spec.name
    with tempfile.TemporaryDirectory(prefix=f"bundle-{spec.name}-") as tmp:
        staging = Path(tmp) / spec.name
        staging.mkdir()
        _stage(spec, staging)
        _compile(staging, str(target))
        _fix_times(staging)
        partial = output_dir / f".{spec.name}.partial"
        zipapp.create_archive(staging, partial, interpreter=shebang)
        # NB: rename, never rewrite in place: a runtime may be executing the old file right now.
        partial.chmod(0o755)
        partial.replace(target)
    return target


def build(output_dir: Path, interpreter: str = DEFAULT_INTERPRETER) -> list[Path]:
    """Build every CNI executable into ``output_dir``; return their paths."""
    return [build_one(spec, output_dir, interpreter) for spec in BUNDLES]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m common.cni.bundle",
        description="Build the danm and fakeipam CNI executables (zipapps) for /opt/cni/bin.",
    )
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "build" / "cni")
    parser.add_argument(
        "--interpreter",
        default=DEFAULT_INTERPRETER,
        help=f"shebang: a path and at most one argument (default {DEFAULT_INTERPRETER!r})",
    )
    options = parser.parse_args(argv)
    try:
        for path in build(options.output, options.interpreter):
            print(path)
    except BundleError as error:
        print(f"cni-bundle: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
