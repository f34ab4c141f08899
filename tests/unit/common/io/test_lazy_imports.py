"""The CNI path must never load the Kubernetes client or pyroute2 at import time.

Checked in a fresh interpreter, because this test process has long imported everything.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[4]
HEAVY = ("kubernetes", "pyroute2", "urllib3")

_PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})))
"""


def _modules_under(package: str) -> list[str]:
    folder = REPO / package.replace(".", "/")
    if not folder.is_dir():
        return []
    return [f"{package}.{p.stem}" for p in sorted(folder.glob("*.py")) if p.stem != "__init__"]


LIGHT_MODULES = [
    "common.io.kube",
    "common.cni.skel",
    "common.cni.types",
    "common.cni.version",
    "common.model.resources",
    "danm.cli",
    "fakeipam.cli",
    *_modules_under("common.model"),
    *_modules_under("common.ipam"),
]


@pytest.mark.parametrize("module", sorted(set(LIGHT_MODULES)))
def test_import_does_not_load_heavy_libraries(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} does not exist yet")
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=set(HEAVY)), module],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == []


def test_probe_does_detect_a_heavy_import() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=set(HEAVY)), "urllib3"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "urllib3" in json.loads(probe.stdout)
