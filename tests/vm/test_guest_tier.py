"""The host-side entry of the guest tier: boot the QEMU guest once and run every ``vm`` test.

``make test`` collects this test like any other, so CI runs the guest tier with no extra step.
Only the files holding ``vm`` tests are handed to the guest's pytest (see
``tests.vm.policy.vm_test_files``). It fails when any in-guest test fails, errors or skips, or
when none ran. Without QEMU or a static busybox it skips on a developer machine but fails under
``CI`` (CI must not skip it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.vm import guest
from tests.vm.junit import summarise_junit
from tests.vm.policy import vm_test_files

# NB: a cold tier takes well under a minute here; the watchdog only catches a hung guest.
GUEST_WATCHDOG_S = 420
CONSOLE_TAIL_LINES = 60


def _tail(text: str, lines: int = CONSOLE_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


@pytest.mark.timeout(GUEST_WATCHDOG_S + 120)
@pytest.mark.usefixtures("guest_tools")
def test_vm_marked_tests_pass_in_guest(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    results = tmp_path / "results"
    results.mkdir()
    junit_path = results / "junit.xml"
    files = vm_test_files(pytestconfig, guest.REPO_ROOT / "tests")
    if not files:
        pytest.fail("no vm-marked tests were found under tests/: the guest tier would run nothing")
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "vm",
        "-p",
        "no:cacheprovider",
        "--color=no",
        f"--junitxml={junit_path}",
        *(str(path) for path in files),
    ]
    env = {"TERM": "dumb", "PYTHONDONTWRITEBYTECODE": "1"}
    if "CI" in os.environ:
        env["CI"] = os.environ["CI"]
    result = guest.run_in_guest(
        command,
        cwd=guest.REPO_ROOT,
        timeout_s=GUEST_WATCHDOG_S,
        env=env,
        results_dir=results,
    )
    print(f"guest tier: {result.duration_s:.1f} s, exit status {result.exit_status}")

    if result.exit_status is None:
        why = "timed out" if result.timed_out else "never reported an exit status"
        pytest.fail(f"the guest {why}; console tail:\n{_tail(result.console_output)}")
    if not junit_path.is_file():
        pytest.fail(
            f"the guest wrote no {junit_path.name} (exit {result.exit_status}); "
            f"console tail:\n{_tail(result.console_output)}"
        )
    summary = summarise_junit(junit_path.read_text())
    if summary.total == 0 or summary.problems or result.exit_status != 0:
        pytest.fail(
            f"in-guest pytest exited {result.exit_status}: {summary.describe()}\n"
            f"console tail:\n{_tail(result.console_output)}"
        )
