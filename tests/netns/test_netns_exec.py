"""``common.io.netns_exec`` against the real kernel: writes land in the Pod namespace only, each
failure names its step, and the sysctl-only adapter path never loads pyroute2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from common.io.netns_exec import SETNS_STEP, NetnsWriteError, write_files_in_netns
from tests.netns_helpers import netns_path, requires_netns, throwaway_netns

pytestmark = [pytest.mark.netns, requires_netns]

REPO = Path(__file__).resolve().parents[2]
ACCEPT_RA = "/proc/sys/net/ipv6/conf/default/accept_ra"


def read_in(netns: str, path: str) -> str:
    done = subprocess.run(
        ["ip", "netns", "exec", netns, "cat", path], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_writes_land_in_the_namespace_and_not_here() -> None:
    here_before = Path(ACCEPT_RA).read_text().strip()
    with throwaway_netns() as name:
        fd = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            write_files_in_netns(fd, [(ACCEPT_RA, "0")])
        finally:
            os.close(fd)
        assert read_in(name, ACCEPT_RA) == "0"
    assert Path(ACCEPT_RA).read_text().strip() == here_before


def test_first_failing_file_is_reported_with_its_errno_and_later_ones_are_skipped() -> None:
    missing = "/proc/sys/net/ipv6/conf/nosuch0/accept_ra"
    with throwaway_netns() as name:
        fd = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            with pytest.raises(NetnsWriteError) as caught:
                write_files_in_netns(fd, [(missing, "0"), (ACCEPT_RA, "0")])
        finally:
            os.close(fd)
        assert read_in(name, ACCEPT_RA) == "1", "writing stops at the first failure"
    assert caught.value.errno == 2
    assert caught.value.step == 0
    assert str(caught.value) == f"[Errno 2] {missing}: No such file or directory"


def test_descriptor_of_another_namespace_kind_fails_in_setns() -> None:
    fd = os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with pytest.raises(NetnsWriteError) as caught:
            write_files_in_netns(fd, [(ACCEPT_RA, "0")])
    finally:
        os.close(fd)
    assert caught.value.step == SETNS_STEP
    assert caught.value.errno == 22


def test_forking_while_other_threads_run_is_safe() -> None:
    stop = threading.Event()
    lock = threading.Lock()

    def hold_the_lock() -> None:
        while not stop.is_set():
            with lock:
                pass

    busy = [threading.Thread(target=hold_the_lock) for _ in range(4)]
    for thread in busy:
        thread.start()
    try:
        with throwaway_netns() as name:
            fd = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
            try:
                for _ in range(20):
                    write_files_in_netns(fd, [(ACCEPT_RA, "0")], timeout_s=10)
            finally:
                os.close(fd)
    finally:
        stop.set()
        for thread in busy:
            thread.join()


_SYSCTL_ONLY_FLOW = """
import json, sys
from common.io.netlink import PyrouteNetlink, ipv6_interface_sysctls
netlink = PyrouteNetlink()
netlink.write_sysctls({"net/ipv6/conf/all/disable_ipv6": "0"}, netns=sys.argv[1])
netlink.set_interface_sysctls("lo", ipv6_interface_sysctls(False), netns=sys.argv[1])
netlink.add_routes([], device="lo", netns=sys.argv[1])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "pyroute2")))
"""


def test_sysctl_only_adapter_calls_never_import_pyroute2() -> None:
    with throwaway_netns() as name:
        probe = subprocess.run(
            [sys.executable, "-c", _SYSCTL_ONLY_FLOW, netns_path(name)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert probe.returncode == 0, probe.stderr
        assert read_in(name, "/proc/sys/net/ipv6/conf/lo/disable_ipv6") == "1"
    assert json.loads(probe.stdout) == []
