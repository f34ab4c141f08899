"""Which tests run where: ``vm`` tests only inside the QEMU guest, everything else only outside.

On the host a ``vm`` test would fail (no ipvlan, 802.1q or dummy links) or, worse, pass for the
wrong reason, so it is skipped with a reason that points at the one host test that runs it in the
guest. Inside the guest (``DANM_TEST_IN_GUEST=1``) every other test is deselected: they already
ran on the host, Python is about 13 times slower there, and the guest-tier test must not boot a
guest from inside a guest.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from tests.vm.initramfs import GUEST_ENV_FLAG

VM_MARKER = "vm"
HOST_SKIP_REASON = "runs inside the QEMU guest via tests/vm/test_guest_tier.py"
_APPLIED = pytest.StashKey[bool]()
VM_TEST_FILES = pytest.StashKey[frozenset[Path]]()


def in_guest(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(GUEST_ENV_FLAG) == "1"


def apply_guest_tier_policy(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The body of a ``pytest_collection_modifyitems`` hook; safe to call more than once."""
    if config.stash.get(_APPLIED, False):
        return
    config.stash[_APPLIED] = True
    config.stash[VM_TEST_FILES] = frozenset(
        item.path for item in items if item.get_closest_marker(VM_MARKER) is not None
    )
    if in_guest():
        kept = [item for item in items if item.get_closest_marker(VM_MARKER) is not None]
        dropped = [item for item in items if item.get_closest_marker(VM_MARKER) is None]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept
        return
    skip = pytest.mark.skip(reason=HOST_SKIP_REASON)
    for item in items:
        if item.get_closest_marker(VM_MARKER) is not None:
            item.add_marker(skip)


def files_mentioning_vm_marker(test_files: Iterable[Path]) -> set[Path]:
    """Test files whose source says ``mark.vm``: the guest tier's fallback when the host
    session did not collect them itself (e.g. only test_guest_tier.py was selected)."""
    return {path for path in test_files if _uses_vm_marker(path.read_text())}


def _uses_vm_marker(source: str) -> bool:
    # NB: parsed, not grepped, so prose and string literals that mention the marker do not count.
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == VM_MARKER:
            owner = node.value
            if isinstance(owner, ast.Attribute) and owner.attr == "mark":
                return True
            if isinstance(owner, ast.Name) and owner.id == "mark":
                return True
    return False


def vm_test_files(config: pytest.Config, tests_root: Path) -> list[Path]:
    """Every file with ``vm`` tests: those this session collected plus those found by scanning.

    NB: the guest collects only these files. Collecting all of tests/ there took 28 s (Python is
    ~13x slower under TCG) and let any other test module's import error break the tier.
    """
    collected = config.stash.get(VM_TEST_FILES, frozenset())
    scanned = files_mentioning_vm_marker(tests_root.rglob("test_*.py"))
    return sorted(set(collected) | scanned)


def missing_tools_outcome(
    problems: Iterable[str], install_hint: str, environ: Mapping[str, str] = os.environ
) -> tuple[str, str] | None:
    """``("fail" | "skip", message)`` when host tools are missing, else None.

    Under CI the guest tier must run, so a missing tool fails; a developer machine skips.
    """
    listed = list(problems)
    if not listed:
        return None
    message = "; ".join(listed) + f". Install them with: {install_hint}"
    if environ.get("CI"):
        return "fail", f"CI must run the guest tier: {message}"
    return "skip", message
