"""The pure parts of the CNI bundle builder: shebang rules and the import closure."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.cni.bundle import (
    DANM,
    FAKEIPAM,
    REPO_ROOT,
    BundleError,
    BundleSpec,
    _check_foreign,
    check_interpreter,
    import_closure,
    imported_modules,
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/usr/bin/python3 -IS", "/usr/bin/python3 -IS"),
        ("/usr/bin/python3", "/usr/bin/python3"),
        ("  /opt/py/bin/python3.11   -I ", "/opt/py/bin/python3.11 -I"),
    ],
)
def test_valid_interpreter_lines(line: str, expected: str) -> None:
    assert check_interpreter(line) == expected


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("python3 -IS", "absolute path"),
        ("", "absolute path"),
        ("/usr/bin/python3 -I -S", "combine flags"),
    ],
)
def test_invalid_interpreter_lines(line: str, problem: str) -> None:
    with pytest.raises(BundleError, match=problem):
        check_interpreter(line)


@pytest.mark.parametrize(
    ("source", "filename", "module", "expected"),
    [
        ("import os, a.b as c", "m.py", "pkg.m", {"os", "a.b"}),
        ("from a.b import c, d", "m.py", "pkg.m", {"a.b", "a.b.c", "a.b.d"}),
        ("def f():\n    import lazy.mod\n", "m.py", "pkg.m", {"lazy.mod"}),
        ("from . import x", "m.py", "pkg.sub.m", {"pkg.sub", "pkg.sub.x"}),
        ("from .. import y", "m.py", "pkg.sub.m", {"pkg", "pkg.y"}),
        ("from .z import w", "__init__.py", "pkg.sub", {"pkg.sub.z", "pkg.sub.z.w"}),
        ("from a import *", "m.py", "pkg.m", {"a"}),
    ],
)
def test_imported_modules(source: str, filename: str, module: str, expected: set[str]) -> None:
    assert imported_modules(source, filename, module) == expected


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_closure_follows_lazy_imports_and_parents_and_reports_foreign(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "danm/__init__.py": "",
            "danm/cli.py": "import json\ndef main():\n    from danm.verbs import run\n",
            "danm/verbs.py": "import yaml\nfrom common.io.thing import helper\n",
            "danm/unused.py": "import kubernetes\n",
            "common/__init__.py": "",
            "common/io/__init__.py": "",
            "common/io/thing.py": "def helper(): ...\n",
        },
    )

    modules, foreign = import_closure(tmp_path, "danm.cli")

    assert set(modules) == {
        "danm",
        "danm.cli",
        "danm.verbs",
        "common",
        "common.io",
        "common.io.thing",
    }
    assert foreign == {"json", "yaml"}


def test_foreign_modules_must_be_stdlib_carried_or_declared_off_path() -> None:
    spec = BundleSpec(name="x", entry_module="x.cli", third_party=("yaml",), dataclass_code=False)
    _check_foreign(spec, {"json", "yaml", "kubernetes", "__future__"})
    with pytest.raises(BundleError, match="requests"):
        _check_foreign(spec, {"json", "requests"})


def test_real_closures_carry_what_each_binary_needs_and_no_more() -> None:
    danm_modules, danm_foreign = import_closure(REPO_ROOT, DANM.entry_module)
    fakeipam_modules, fakeipam_foreign = import_closure(REPO_ROOT, FAKEIPAM.entry_module)

    assert {"danm.cni", "danm.add", "common.io.kube_lean", "common.io.netlink_pyroute"} <= set(
        danm_modules
    )
    assert {"fakeipam.lean", "fakeipam.plugin", "common.cni.skel"} <= set(fakeipam_modules)
    assert not any(m.startswith(("common.io", "common.model", "danm")) for m in fakeipam_modules)
    _check_foreign(DANM, danm_foreign)
    _check_foreign(FAKEIPAM, fakeipam_foreign)
