"""The import names are ours: PyPI has an unrelated distribution called ``common``."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "package", ["common", "danm", "fakeipam", "netwatcher", "svcwatcher", "webhook"]
)
def test_package_is_imported_from_this_repository(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().parent == REPO / package
