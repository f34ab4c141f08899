"""Hooks for the guest tier; see tests/vm/policy.py for which tests run where.

NB: a hook here only exists once pytest has collected tests/vm. ``vm`` tests elsewhere in
tests/ are covered when the same call sits in tests/conftest.py; the policy applies itself once.
"""

from __future__ import annotations

import pytest

from tests.vm import guest
from tests.vm.policy import apply_guest_tier_policy, missing_tools_outcome


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    apply_guest_tier_policy(config, items)


@pytest.fixture
def guest_tools() -> None:
    """Require QEMU and a static busybox: skip without them, but fail under CI."""
    outcome = missing_tools_outcome(guest.missing_host_tools(), guest.install_hint())
    if outcome is not None:
        verdict, message = outcome
        if verdict == "fail":
            pytest.fail(message)
        pytest.skip(message)
