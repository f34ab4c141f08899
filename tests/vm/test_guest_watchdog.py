"""The watchdog's promise: QEMU never outlives ``run_in_guest``, nor does its scratch folder.

These boot a real QEMU (host side, not ``vm``-marked) but stop it within seconds: the guest's
command sleeps for an hour, so the outcome does not depend on how fast the machine is.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.vm import guest

pytestmark = pytest.mark.usefixtures("guest_tools")


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


@pytest.fixture
def scratch_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "scratch"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    path = tmp_path / "results"
    path.mkdir()
    return path


def test_a_hung_guest_is_killed_at_the_timeout(scratch_root: Path, results_dir: Path) -> None:
    result = guest.run_in_guest(
        ["sleep", "3600"], cwd=Path("/"), timeout_s=3, env={}, results_dir=results_dir
    )
    assert result.timed_out
    assert result.exit_status is None
    assert "[watchdog: killed QEMU after 3 s]" in result.console_output
    assert _processes_mentioning(str(results_dir)) == []
    assert list(scratch_root.iterdir()) == []


def test_an_interrupted_run_kills_qemu(
    scratch_root: Path, results_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = guest.prepare_kernel()
    started: list[int] = []
    real_popen = subprocess.Popen

    class InterruptedPopen(subprocess.Popen[bytes]):
        def wait(self, timeout: float | None = None) -> int:
            if not started:
                started.append(self.pid)
                raise KeyboardInterrupt
            return super().wait(timeout)

    def popen(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        # NB: only QEMU's wait is interrupted; any other child runs as usual.
        if argv[0] == guest.QEMU:
            return InterruptedPopen(argv, **kwargs)
        return real_popen(argv, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen)
    with pytest.raises(KeyboardInterrupt):
        guest.run_in_guest(
            ["sleep", "3600"],
            cwd=Path("/"),
            timeout_s=600,
            env={},
            results_dir=results_dir,
            kernel=kernel,
        )
    assert started, "QEMU was never started"
    assert not Path(f"/proc/{started[0]}").exists()
    assert _processes_mentioning(str(results_dir)) == []
    assert list(scratch_root.iterdir()) == []
