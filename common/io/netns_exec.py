"""Write files from inside another network namespace, with the standard library only.

Why it exists: ``/proc/sys/net`` shows the namespace of the task that opens it, so a Pod's
per-namespace sysctls can only be written by a process inside the Pod's namespace. pyroute2 can
fork such a process, but importing it costs ~0.1 s at start and ~30 ms at exit, which a CNI ADD
that needs nothing else from the kernel (a delegated macvlan/static connection) should not pay.

How: ``os.fork()``; the child ``setns()``es into the namespace (libc via ctypes; ``os.setns``
only exists from Python 3.12), writes the files, reports the first failure as two integers
through a pipe and leaves with ``os._exit``. The parent process never changes namespace (the
hazard containernetworking's ``pkg/ns/README.md`` describes).

NB: the CNI ADD forks from a multi-threaded process (one thread per connection). Only the forking
thread exists in the child, and any lock another thread held at fork time stays held forever, so
the child must do nothing but raw syscalls (``os.open``/``os.write``/``os.close``, ``setns``) and
``os._exit``: no logging, no buffered ``open()``, no imports, no allocations we can avoid. All
data (paths, encoded values) is prepared in the parent before forking.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import select
import signal
from collections.abc import Sequence
from typing import Final, NoReturn

CLONE_NEWNET: Final = 0x40000000
SETNS_STEP: Final = -1
"""``NetnsWriteError.step`` of a failed ``setns()``; file failures use the file's index."""

_REPORT_BYTES: Final = 8
_DEFAULT_TIMEOUT_SECONDS: Final = 10.0


class NetnsWriteError(OSError):
    """A write inside the namespace (or entering it) failed; ``step`` says which one."""

    def __init__(self, error_number: int, message: str, *, step: int) -> None:
        super().__init__(error_number, message)
        self.step = step


class NetnsHelperError(RuntimeError):
    """The helper child died, timed out or reported garbage (not an error of the writes)."""


@functools.cache
def _setns() -> ctypes._NamedFuncPointer:
    function = ctypes.CDLL(None, use_errno=True).setns
    function.argtypes = (ctypes.c_int, ctypes.c_int)
    function.restype = ctypes.c_int
    return function


def _encode_report(step: int, error_number: int) -> bytes:
    return step.to_bytes(4, "little", signed=True) + error_number.to_bytes(4, "little", signed=True)


def decode_report(data: bytes) -> tuple[int, int] | None:
    """``(step, errno)`` of a child's failure report, None for success (an empty report).

    Raises ``NetnsHelperError`` for a report of the wrong size (a child that died mid-write).
    """
    if not data:
        return None
    if len(data) != _REPORT_BYTES:
        raise NetnsHelperError(f"helper process sent a malformed report ({len(data)} bytes)")
    return (
        int.from_bytes(data[:4], "little", signed=True),
        int.from_bytes(data[4:], "little", signed=True),
    )


def error_for_report(step: int, error_number: int, paths: Sequence[str]) -> NetnsWriteError:
    """The ``NetnsWriteError`` a child's ``(step, errno)`` report stands for."""
    strerror = os.strerror(error_number)
    if step == SETNS_STEP:
        return NetnsWriteError(error_number, f"setns: {strerror}", step=step)
    if 0 <= step < len(paths):
        return NetnsWriteError(error_number, f"{paths[step]}: {strerror}", step=step)
    raise NetnsHelperError(f"helper process reported an unknown step {step}")


def _child(
    setns: ctypes._NamedFuncPointer,
    netns_fd: int,
    items: Sequence[tuple[bytes, bytes]],
    report_fd: int,
) -> NoReturn:
    """Runs in the forked child; never returns (see the module docstring for what it may do)."""
    status = 1
    step = SETNS_STEP
    try:
        if setns(netns_fd, CLONE_NEWNET) != 0:
            os.write(report_fd, _encode_report(step, ctypes.get_errno()))
        else:
            for step, (path, value) in enumerate(items):  # noqa: B007 - reported on failure
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.write(fd, value)
                finally:
                    os.close(fd)
            status = 0
    except OSError as error:
        os.write(report_fd, _encode_report(step, error.errno or errno.EIO))
    finally:
        os._exit(status)


def _read_report(read_fd: int, pid: int, timeout_s: float) -> bytes:
    poller = select.poll()
    poller.register(read_fd, select.POLLIN | select.POLLHUP)
    data = b""
    while True:
        if not poller.poll(int(timeout_s * 1000)):
            os.kill(pid, signal.SIGKILL)
            raise NetnsHelperError(f"helper process did not finish within {timeout_s:g} s")
        chunk = os.read(read_fd, 64)
        if not chunk:
            return data
        data += chunk


def write_files_in_netns(
    netns_fd: int,
    items: Sequence[tuple[str, str]],
    *,
    timeout_s: float = _DEFAULT_TIMEOUT_SECONDS,
) -> None:
    """Write each ``(path, value)`` in order from inside the network namespace ``netns_fd``.

    ``netns_fd`` is an open (read-only is enough) descriptor of a network namespace; the caller
    checks what it is and closes it. Stops at the first failure and raises ``NetnsWriteError``
    (errno, "<path>: <strerror>" or "setns: <strerror>"); ``NetnsHelperError`` if the child
    misbehaved. The calling process never changes namespace.
    """
    encoded = [(os.fsencode(path), value.encode()) for path, value in items]
    setns = _setns()  # NB: loaded in the parent, so the child only calls it
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _child(setns, netns_fd, encoded, write_fd)
        os.close(write_fd)
        write_fd = -1
        try:
            data = _read_report(read_fd, pid, timeout_s)
        finally:
            _, wait_status = os.waitpid(pid, 0)
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    report = decode_report(data)
    if report is not None:
        raise error_for_report(*report, [path for path, _ in items])
    if wait_status != 0:
        raise NetnsHelperError(f"helper process ended abnormally (wait status {wait_status})")
