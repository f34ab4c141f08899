"""The pure parts of ``common.io.netns_exec`` and the adapter's mapping of its errors.

The fork + setns itself needs root and lives in tests/netns/test_netns_exec.py; here the child is
replaced by a stub so the mapping to ``NamespaceNotFound``/``SysctlFailure`` runs anywhere.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import common.io.netlink_pyroute as netlink_pyroute
from common.io.netlink import NamespaceNotFound, PyrouteNetlink, SysctlFailure
from common.io.netns_exec import (
    SETNS_STEP,
    NetnsHelperError,
    NetnsWriteError,
    _encode_report,
    decode_report,
    error_for_report,
)

PATHS = ["/proc/sys/net/ipv6/conf/all/disable_ipv6", "/proc/sys/net/ipv6/conf/eth1/accept_ra"]


@pytest.mark.parametrize(
    ("step", "error_number"), [(SETNS_STEP, errno.EPERM), (0, errno.ENOENT), (1, errno.EACCES)]
)
def test_report_round_trips(step: int, error_number: int) -> None:
    assert decode_report(_encode_report(step, error_number)) == (step, error_number)


def test_empty_report_is_success() -> None:
    assert decode_report(b"") is None


@pytest.mark.parametrize("data", [b"\x00", b"\x00" * 9])
def test_truncated_report_is_a_helper_error(data: bytes) -> None:
    with pytest.raises(NetnsHelperError, match="malformed report"):
        decode_report(data)


@pytest.mark.parametrize(
    ("step", "error_number", "text"),
    [
        (SETNS_STEP, errno.EPERM, "[Errno 1] setns: Operation not permitted"),
        (0, errno.ENOENT, f"[Errno 2] {PATHS[0]}: No such file or directory"),
        (1, errno.EACCES, f"[Errno 13] {PATHS[1]}: Permission denied"),
    ],
)
def test_report_becomes_an_oserror_naming_the_step(step: int, error_number: int, text: str) -> None:
    error = error_for_report(step, error_number, PATHS)
    assert isinstance(error, OSError)
    assert (error.errno, error.step, str(error)) == (error_number, step, text)


@pytest.mark.parametrize("step", [2, -2])
def test_report_of_an_unknown_step_is_a_helper_error(step: int) -> None:
    with pytest.raises(NetnsHelperError, match="unknown step"):
        error_for_report(step, errno.EIO, PATHS)


# -- the adapter's mapping -----------------------------------------------------------------------


@pytest.fixture
def fake_netns_fd(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Pretend every path is a network namespace; record the descriptors handed out."""
    handed_out: list[int] = []

    def open_fd(path: str, operation: str) -> int:
        fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        handed_out.append(fd)
        return fd

    monkeypatch.setattr(netlink_pyroute, "_open_netns_fd", open_fd)
    return handed_out


def _child_fails_with(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def write(fd: int, items: Sequence[tuple[str, str]], *, timeout_s: float) -> None:
        raise error

    monkeypatch.setattr(netlink_pyroute, "write_files_in_netns", write)


@pytest.mark.parametrize(
    ("error", "reason", "error_number"),
    [
        pytest.param(
            NetnsWriteError(errno.ENOENT, "/proc/sys/x: No such file or directory", step=0),
            "[Errno 2] /proc/sys/x: No such file or directory",
            errno.ENOENT,
            id="write",
        ),
        pytest.param(
            NetnsWriteError(errno.EPERM, "setns: Operation not permitted", step=SETNS_STEP),
            "[Errno 1] setns: Operation not permitted",
            errno.EPERM,
            id="setns",
        ),
        pytest.param(
            NetnsHelperError("helper process did not finish within 10 s"),
            "helper process failed: helper process did not finish within 10 s",
            None,
            id="helper",
        ),
    ],
)
def test_child_failures_become_sysctl_failures(
    monkeypatch: pytest.MonkeyPatch,
    fake_netns_fd: list[int],
    error: Exception,
    reason: str,
    error_number: int | None,
) -> None:
    _child_fails_with(monkeypatch, error)

    with pytest.raises(SysctlFailure) as caught:
        PyrouteNetlink().set_interface_sysctls("eth1", {"accept_ra": "0"}, netns="/run/netns/p")

    assert caught.value.reason == reason
    assert caught.value.errno == error_number
    assert caught.value.operation == (
        "write ipv6 sysctls ['accept_ra'] of eth1 in netns /run/netns/p"
    )
    assert caught.value.__cause__ is error
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fake_netns_fd[0])  # the namespace descriptor was closed


def test_writes_go_to_the_child_in_order(
    monkeypatch: pytest.MonkeyPatch, fake_netns_fd: list[int]
) -> None:
    seen: list[list[tuple[str, str]]] = []

    def write(fd: int, items: Sequence[tuple[str, str]], *, timeout_s: float) -> None:
        seen.append(list(items))

    monkeypatch.setattr(netlink_pyroute, "write_files_in_netns", write)
    PyrouteNetlink().set_interface_sysctls(
        "eth0.100", {"disable_ipv6": "0", "accept_ra": "0"}, netns="/run/netns/p"
    )
    assert seen == [
        [
            ("/proc/sys/net/ipv6/conf/eth0.100/disable_ipv6", "0"),
            ("/proc/sys/net/ipv6/conf/eth0.100/accept_ra", "0"),
        ]
    ]


@pytest.mark.parametrize(
    ("make_path", "reason"),
    [
        pytest.param(lambda tmp: str(tmp / "gone"), "does not exist", id="missing"),
        pytest.param(lambda tmp: _plain_file(tmp), "is not a namespace", id="plain_file"),
    ],
)
def test_bad_namespace_path_is_namespace_not_found_before_any_fork(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    make_path: Callable[[Path], str],
    reason: str,
) -> None:
    _child_fails_with(monkeypatch, AssertionError("no child may be started"))
    path = make_path(tmp_path)

    with pytest.raises(NamespaceNotFound) as caught:
        PyrouteNetlink().write_sysctls({"net/ipv6/conf/all/disable_ipv6": "0"}, netns=path)

    assert caught.value.reason == f"{path} {reason}"


def _plain_file(folder: Path) -> str:
    path = folder / "not-a-netns"
    path.write_text("")
    return str(path)
